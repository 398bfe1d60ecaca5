#!/usr/bin/env bash
# haproxy boot: Consul agent config with the `haproxy-internal` service, checked on HAProxy's monitor-uri.
set -euo pipefail
exec "$(dirname "$0")/consul-bootstrap.sh" haproxy haproxy-internal 8080
