#!/usr/bin/env bash
# Consul server boot: the agent config from metadata (server mode, bootstrap_expect, retry_join).
set -euo pipefail
exec "$(dirname "$0")/consul-bootstrap.sh" consul
