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
# 3. Retires the role write tokens of the version before per-instance identity (tokens described
#    `ilb-<role> agent token`, policies `ilb-<role>`, for backend, haproxy, frontend; never
#    `ilb-consul` nor a `*-default`), once no client agent still needs one: only when every alive
#    client member (backend-*, haproxy-*, frontend-*) holds a login token of the auth method with its
#    own node identity. Otherwise it names the members without one and keeps the tokens: run the
#    script again once every group runs the new images.
# Idempotent (policies and the auth method updated, tokens reused, binding rules replaced, retired
# tokens stay gone).
#   CONSUL_HTTP_ADDR=... CONSUL_HTTP_TOKEN=<management> acl-setup.sh [--secret-manager PROJECT]
# Without --secret-manager it prints {"<name>": "<token secret>", ...} on stdout for the caller to
# store; with it, each token goes to the Secret Manager secret consul-agent-token-<name> and nothing
# secret is printed.
set -euo pipefail

dir=$(cd "$(dirname "$0")/acl" && pwd)
project=""
if [ "${1:-}" = --secret-manager ]; then project=${2:?project}; fi
: "${CONSUL_HTTP_TOKEN:?a management token is required}"

# Section 3 above. Reads both lists before deleting: a failed read stops the script (set -e).
retire_legacy_tokens() {
  local method=$1 all policies members missing id deleted=0
  all=$(consul acl token list -format=json)
  policies=$(consul acl policy list -format=json)
  members=$(consul members -status=alive | awk 'NR > 1 && $4 == "client" { print $1 }')
  missing=$(jq -r --arg m "$method" --arg members "$members" '
    [.[] | select(.AuthMethod == $m) | .NodeIdentities[]?.NodeName] as $proven
    | $members | split("\n")[] | select(test("^(backend|haproxy|frontend)-"))
    | select(. as $n | $proven | index($n) | not)' <<<"$all")
  if [ -n "$missing" ]; then
    echo "acl-setup: legacy role tokens kept: $(tr '\n' ' ' <<<"$missing")run without an identity login;" \
      "run acl-setup.sh again once every client group runs the new images" >&2
    return 0
  fi
  for role in backend haproxy frontend; do
    for id in $(jq -r --arg d "ilb-$role agent token" '.[] | select(.Description == $d) | .AccessorID' <<<"$all"); do
      consul acl token delete -id "$id" >/dev/null
      deleted=$((deleted + 1))
    done
    for id in $(jq -r --arg p "ilb-$role" '.[] | select(.Name == $p) | .ID' <<<"$policies"); do
      consul acl policy delete -id "$id" >/dev/null
      deleted=$((deleted + 1))
    done
  done
  if [ "$deleted" -gt 0 ]; then echo "acl-setup: retired $deleted legacy role tokens and policies" >&2; fi
}

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
retire_legacy_tokens "${ILB_AUTH_METHOD:-gce-instance-identity}"
if [ -z "$project" ]; then printf '%s\n' "$tokens"; fi
