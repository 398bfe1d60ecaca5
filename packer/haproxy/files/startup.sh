#!/usr/bin/env bash
# haproxy boot: Consul agent config with the `haproxy-internal` service, checked on HAProxy's monitor-uri.
set -euo pipefail
root=${ILB_ROOT:-}
"$(dirname "$0")/consul-bootstrap.sh" haproxy haproxy-internal 8080
# HAProxy's stats page listens where the agent's HTTP API does: loopback only, never the VPC. The
# sandbox gives each instance its own loopback address instead of 127.0.0.1.
echo "ILB_LOCAL_ADDR=${CONSUL_CLIENT_ADDR:-127.0.0.1}" >>"$root/etc/ilb/instance.env"
# Routing policy (services/haproxy-sync/gate.ts): the backend tier's subnets, and whether only gossip
# members are routed to (always on GCE; "false" only for the sandbox's catalog-only stand-ins).
attr() {
  curl -fsS --max-time 5 -H 'Metadata-Flavor: Google' \
    "http://${GCE_METADATA_HOST:-metadata.google.internal}/computeMetadata/v1/instance/attributes/$1" 2>/dev/null || true
}
cidrs=$(attr ilb-backend-cidrs)
members=$(attr ilb-route-members-only)
if ! [[ $cidrs =~ ^[0-9./,]{0,1024}$ ]]; then cidrs=""; fi
if [ "$members" != false ]; then members=true; fi
printf 'ILB_BACKEND_CIDRS=%s\nILB_ROUTE_MEMBERS_ONLY=%s\n' "$cidrs" "$members" >>"$root/etc/ilb/instance.env"
