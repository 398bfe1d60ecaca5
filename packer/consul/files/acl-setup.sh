#!/usr/bin/env bash
# One-off, by an operator or the deploy, with a management token.
# 1. One least-privilege policy and one token per file acl/<name>.hcl: `consul` for the servers'
#    agents (consul-agent-token), `<role>-default` for requests without a token (read only).
# 2. Client VMs hold no shared token: the jwt auth method ILB_AUTH_METHOD (default
#    gce-instance-identity) trusts GCE instance identity tokens (issuer https://accounts.google.com,
#    keys from ILB_IDENTITY_JWKS_URL, default Google's https://www.googleapis.com/oauth2/v3/certs) for
#    the audience ILB_IDENTITY_AUDIENCE (default https://consul.ilb.internal/<project>) of the
#    project ILB_IDENTITY_PROJECT (required for this part; the step is skipped without it). Per role
#    two binding rules: a node identity named as the instance, a service identity for the role's
#    service, for instances of the project whose name starts with `<role>-`. Tokens live 1 h.
# Idempotent (policies and the auth method updated, tokens reused, binding rules replaced).
#   CONSUL_HTTP_ADDR=... CONSUL_HTTP_TOKEN=<management> acl-setup.sh [--secret-manager PROJECT]
# Without --secret-manager it prints {"<name>": "<token secret>", ...} on stdout for the caller to
# store; with it, each token goes to the Secret Manager secret consul-agent-token-<name> and nothing
# secret is printed.
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

# Consul 1.15 reads nested claims by JSON pointer (ClaimMappings keys starting with `/`), see
# internal/go-sso/oidcauth/oidcjwt.go getClaim; Google's claim set:
# https://cloud.google.com/compute/docs/instances/verifying-instance-identity
identity_project=${ILB_IDENTITY_PROJECT:-$project}
if [ -n "$identity_project" ]; then
  method=${ILB_AUTH_METHOD:-gce-instance-identity}
  config=$(jq -nc --arg jwks "${ILB_IDENTITY_JWKS_URL:-https://www.googleapis.com/oauth2/v3/certs}" \
    --arg aud "${ILB_IDENTITY_AUDIENCE:-https://consul.ilb.internal/$identity_project}" '
    {JWKSURL: $jwks, BoundIssuer: "https://accounts.google.com", BoundAudiences: [$aud],
     JWTSupportedAlgs: ["RS256"],
     ClaimMappings: {"/google/compute_engine/instance_name": "instance_name",
                     "/google/compute_engine/instance_id": "instance_id",
                     "/google/compute_engine/project_id": "project_id",
                     "/google/compute_engine/zone": "zone"}}')
  # `update` takes no -type (and keeps it).
  verb=(create -type jwt)
  if consul acl auth-method read -name "$method" >/dev/null 2>&1; then verb=(update); fi
  consul acl auth-method "${verb[@]}" -name "$method" -max-token-ttl 1h -token-locality local \
    -description "GCE instance identity tokens of $identity_project" -config "$config" >/dev/null
  for id in $(consul acl binding-rule list -method "$method" -format=json | jq -r '.[].ID'); do
    consul acl binding-rule delete -id "$id" >/dev/null
  done
  for pair in backend:backend haproxy:haproxy-internal frontend:frontend; do
    role=${pair%%:*}
    selector="value.project_id == \"$identity_project\" and value.instance_name matches \"^$role-[a-z0-9-]+\$\""
    # shellcheck disable=SC2016 # ${value.instance_name} is Consul's interpolation, not the shell's
    consul acl binding-rule create -method "$method" -bind-type node -bind-name '${value.instance_name}' \
      -selector "$selector" -description "$role instances: their own node" >/dev/null
    consul acl binding-rule create -method "$method" -bind-type service -bind-name "${pair#*:}" \
      -selector "$selector" -description "$role instances: the $role service" >/dev/null
  done
fi
if [ -z "$project" ]; then printf '%s\n' "$tokens"; fi
