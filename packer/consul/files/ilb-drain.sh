#!/usr/bin/env bash
# Graceful leave: node maintenance (its services turn critical, so HAProxy stops sending new
# requests), wait for the drain window, then `consul leave`. Run by each role's shutdown.sh.
#   Metadata attribute ilb-drain-seconds (default 8) sets the window.
# `ilb-drain.sh --boot` (ilb-drain.service's start, after the role's services) lifts the maintenance
# a previous shutdown left: the agent keeps node maintenance across restarts. Only that one, told
# by its reason; a maintenance an operator set stays.
set -uo pipefail

root=${ILB_ROOT:-}
# shellcheck source=/dev/null
. "$root/etc/ilb/instance.env"
export CONSUL_HTTP_ADDR
md_host=${GCE_METADATA_HOST:-metadata.google.internal}
log() { printf '{"severity":"%s","component":"ilb-drain","message":"%s"}\n' "$1" "$2" >&2; }

# The agent's own token allows node maintenance and leave; read from its config into the
# environment (never an argument, never logged).
CONSUL_HTTP_TOKEN=$(jq -r '.acl.tokens.agent // empty' "$root/etc/consul.d/10-agent.json")
export CONSUL_HTTP_TOKEN
reason="ilb-drain: instance ${ILB_NODE_NAME:-?} shutting down"

if [ "${1:-}" = --boot ]; then
  # The node maintenance check's notes, once the agent answers (it may still be starting).
  answer=""
  for _ in $(seq 60); do
    if answer=$(printf 'header = "X-Consul-Token: %s"\n' "$CONSUL_HTTP_TOKEN" |
      curl -sS --max-time 2 -K - -w '\n%{http_code}' "http://$CONSUL_HTTP_ADDR/v1/agent/checks" 2>/dev/null); then
      break
    fi
    sleep 1
  done
  if [ "${answer##*$'\n'}" != 200 ]; then
    log WARNING "could not read this agent's checks; a maintenance of the last shutdown may remain"
    exit 0
  fi
  notes=$(jq -r '."_node_maintenance".Notes // empty' <<<"${answer%$'\n'*}")
  if [ "$notes" = "$reason" ]; then
    # Never fail the start: a failed ilb-drain.service would not drain at the next shutdown.
    if consul maint -disable >/dev/null; then log INFO "lifted the maintenance of the last shutdown"; else
      log ERROR "could not lift the maintenance of the last shutdown"
    fi
  elif [ -n "$notes" ]; then
    log WARNING "node maintenance set by someone else stays on"
  fi
  exit 0
fi

drain=$(curl -fsS --max-time 2 -H 'Metadata-Flavor: Google' \
  "http://$md_host/computeMetadata/v1/instance/attributes/ilb-drain-seconds" 2>/dev/null || true)
case $drain in '' | *[!0-9]*) drain=8 ;; esac

if consul maint -enable -reason "$reason" >/dev/null; then
  log INFO "maintenance enabled; draining for ${drain}s"
  sleep "$drain"
else
  log WARNING "could not enable maintenance; leaving without a drain window"
fi
# A client's login token is revoked before it leaves (servers keep theirs); the leave itself then
# goes with the agent's local recovery token, which only this agent honours.
recovery=$(jq -r '.acl.tokens.agent_recovery // empty' "$root/etc/consul.d/10-agent.json")
if [ -n "$recovery" ]; then
  "$(dirname "$0")/consul-identity.sh" logout || true
  CONSUL_HTTP_TOKEN=$recovery
fi
if consul leave >/dev/null; then log INFO "left the cluster"; else log WARNING "consul leave failed"; fi
