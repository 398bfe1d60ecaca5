#!/usr/bin/env bash
# Graceful leave: node maintenance (its services turn critical, so HAProxy stops sending new
# requests), wait for the drain window, then `consul leave`. Run by each role's shutdown.sh.
#   Metadata attribute ilb-drain-seconds (default 8) sets the window.
set -uo pipefail

root=${ILB_ROOT:-}
# shellcheck source=/dev/null
. "$root/etc/ilb/instance.env"
export CONSUL_HTTP_ADDR
md_host=${GCE_METADATA_HOST:-metadata.google.internal}
log() { printf '{"severity":"%s","component":"ilb-drain","message":"%s"}\n' "$1" "$2" >&2; }

# The agent's own token allows node maintenance and leave; read from its config, never logged.
CONSUL_HTTP_TOKEN=$(jq -r '.acl.tokens.agent // empty' "$root/etc/consul.d/10-agent.json")
export CONSUL_HTTP_TOKEN

drain=$(curl -fsS --max-time 2 -H 'Metadata-Flavor: Google' \
  "http://$md_host/computeMetadata/v1/instance/attributes/ilb-drain-seconds" 2>/dev/null || true)
case $drain in '' | *[!0-9]*) drain=8 ;; esac

if consul maint -enable -reason "instance ${ILB_NODE_NAME:-?} shutting down" >/dev/null; then
  log INFO "maintenance enabled; draining for ${drain}s"
  sleep "$drain"
else
  log WARNING "could not enable maintenance; leaving without a drain window"
fi
if consul leave >/dev/null; then log INFO "left the cluster"; else log WARNING "consul leave failed"; fi
