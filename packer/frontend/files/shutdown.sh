#!/usr/bin/env bash
# frontend: out of Consul (and so out of any upstream that reads it), drain, leave.
set -uo pipefail
exec "$(dirname "$0")/ilb-drain.sh"
