#!/usr/bin/env bash
# One-off, by an operator or the deploy, with a management token: one least-privilege policy and one
# token per file acl/<name>.hcl: <role> for the agent itself (consul-agent-token), <role>-default
# for requests without a token (consul-default-token). Idempotent (policies updated, tokens reused).
#   CONSUL_HTTP_ADDR=... CONSUL_HTTP_TOKEN=<management> acl-setup.sh [--secret-manager PROJECT]
# Without --secret-manager it prints {"<role>": "<token secret>", ...} on stdout for the caller to
# store; with it, each token goes to the Secret Manager secret consul-agent-token-<role> and nothing
# secret is printed. Instances then get `consul-agent-token-secret: consul-agent-token-<role>`
# (and `consul-default-token-secret: consul-agent-token-<role>-default`).
set -euo pipefail

dir=$(cd "$(dirname "$0")/acl" && pwd)
project=""
if [ "${1:-}" = --secret-manager ]; then project=${2:?project}; fi
: "${CONSUL_HTTP_TOKEN:?a management token is required}"

tokens='{}'
for file in "$dir"/*.hcl; do
  role=$(basename "$file" .hcl)
  policy="ilb-$role"
  if consul acl policy read -name "$policy" >/dev/null 2>&1; then
    consul acl policy update -name "$policy" -rules "@$file" >/dev/null
  else
    consul acl policy create -name "$policy" -description "ilb $role agents" -rules "@$file" >/dev/null
  fi
  secret=$(consul acl token list -format=json |
    jq -r --arg d "ilb-$role agent token" 'map(select(.Description == $d)) | first | .SecretID // empty')
  if [ -z "$secret" ]; then
    secret=$(consul acl token create -description "ilb-$role agent token" -policy-name "$policy" -format=json |
      jq -r .SecretID)
  fi
  if [ -n "$project" ]; then
    name="consul-agent-token-$role"
    gcloud secrets describe "$name" --project "$project" >/dev/null 2>&1 ||
      gcloud secrets create "$name" --project "$project" --replication-policy automatic >/dev/null
    printf '%s' "$secret" | gcloud secrets versions add "$name" --project "$project" --data-file=- >/dev/null
  else
    # The secret reaches jq through its environment, not its command line.
    tokens=$(ILB_SECRET=$secret jq -c --arg r "$role" '. + {($r): env.ILB_SECRET}' <<<"$tokens")
  fi
done
if [ -z "$project" ]; then printf '%s\n' "$tokens"; fi
