#!/usr/bin/env bash
# haproxy: frontends stop resolving this node, in-flight requests finish during the drain window.
set -uo pipefail
exec "$(dirname "$0")/ilb-drain.sh"
