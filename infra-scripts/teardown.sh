#!/usr/bin/env bash
# Deletes, in reverse order, what infra-scripts/deploy.sh created for a deployment (found by its
# labels and descriptions), after asking for confirmation unless --yes.
#   infra-scripts/teardown.sh --project ID [--config FILE] [--deployment NAME] [--dry-run] [--yes]
set -euo pipefail
# shellcheck source=infra-scripts/deploy/run.sh
. "$(dirname "$0")/deploy/run.sh"
run_deploy teardown "$@"
