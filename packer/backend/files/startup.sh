#!/usr/bin/env bash
# backend boot: Consul agent config with the `backend` service (port 8080, HTTP /healthz).
set -euo pipefail
exec "$(dirname "$0")/consul-bootstrap.sh" backend backend 8080
