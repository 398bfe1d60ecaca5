#!/usr/bin/env bash
# Deploys the system (network, Consul servers, the three tiers) and the orchestrator's functions to
# a Google Cloud project with gcloud, idempotently: a second run changes nothing, a rerun after a
# failure resumes. See README.md, "Deploy to Google Cloud".
#   infra-scripts/deploy.sh --project ID [--config FILE] [--region R] [--zones a,b,c]
#                           [--set key.path=value ...] [--dry-run]
set -euo pipefail
# shellcheck source=infra-scripts/deploy/run.sh
. "$(dirname "$0")/deploy/run.sh"
run_deploy deploy "$@"
