#!/usr/bin/env bash
# Consul server: leave gracefully so the remaining servers keep quorum arithmetic right.
set -uo pipefail
root=${ILB_ROOT:-}
# shellcheck source=/dev/null
. "$root/etc/ilb/instance.env"
CONSUL_HTTP_TOKEN=$(jq -r '.acl.tokens.agent // empty' "$root/etc/consul.d/10-agent.json")
export CONSUL_HTTP_ADDR CONSUL_HTTP_TOKEN
consul leave
