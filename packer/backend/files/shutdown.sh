#!/usr/bin/env bash
# backend: leave HAProxy's rotation first; systemd then stops the app, which finishes in-flight requests.
set -uo pipefail
exec "$(dirname "$0")/ilb-drain.sh"
