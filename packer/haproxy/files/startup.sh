#!/usr/bin/env bash
# haproxy boot: Consul agent config with the `haproxy-internal` service, checked on HAProxy's monitor-uri.
set -euo pipefail
root=${ILB_ROOT:-}
"$(dirname "$0")/consul-bootstrap.sh" haproxy haproxy-internal 8080
# HAProxy's stats page listens where the agent's HTTP API does: loopback only, never the VPC. The
# sandbox gives each instance its own loopback address instead of 127.0.0.1.
echo "ILB_LOCAL_ADDR=${CONSUL_CLIENT_ADDR:-127.0.0.1}" >>"$root/etc/ilb/instance.env"
