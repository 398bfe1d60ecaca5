#!/usr/bin/env bash
# Boot-time configuration of this node's Consul agent, from instance metadata; nothing secret is baked.
#   consul-bootstrap.sh ROLE [SERVICE PORT]
# Writes $ILB_ROOT/etc/consul.d/{10-agent,20-service}.json and $ILB_ROOT/etc/ilb/instance.env.
#   consul-bootstrap.sh --confirm-node-meta     (consul.service ExecStartPost, once the agent is up)
# Makes sure the catalog holds this node with the agent's node metadata: when a member joins, the
# leader registers it (serfHealth) from a read of the catalog made before the agent's own first sync
# committed, and that write can land after the sync and clear the node's Meta. The agent then counts
# its node info as synced until its next full anti-entropy sync (1-2 min later), so for that long the
# node has no gce-instance-id. Once the leader's serfHealth check is in, its registration is done and
# does not recur; this writes the node info the agent would, if it is still missing. Always exits 0.
# Metadata attributes read (a value inline or as a Secret Manager secret name, `*-secret`; secrets
# only as `*-secret` on GCE, inline only from a metadata stand-in, GCE_METADATA_HOST):
#   consul-servers           space-separated join addresses (or consul_servers); default: GCE tag
#                            auto-join (tag consul-server)
#   consul-datacenter        default dc1
#   consul-bootstrap-expect  servers only, default 3
#   consul-gossip-key        gossip encryption key (required)
#   consul-agent-token       servers only: their ACL agent token (required). Client VMs hold no
#                            shared agent token: consul-identity.sh logs in with the instance's
#                            identity token once the agent is up.
#   consul-auth-method       clients: the jwt auth method, default gce-instance-identity
#   consul-auth-audience     clients: the identity token's audience, default
#                            https://consul.ilb.internal/<project-id> (acl-setup.sh binds the same)
#   consul-default-token     read-only token for requests without one (DNS, apps); default: none
#                            (the anonymous token), never the agent's
#   consul-ca-cert           PEM CA; when present, RPC TLS with auto_encrypt is enabled
#   consul-server-cert/-key  servers with TLS: their certificate and key (the key: Secret Manager)
#   consul-initial-management-token  servers only, optional: ACL bootstrap token for a new cluster
# Overrides for the local sandbox (all default to the image's values): ILB_ROOT, GCE_METADATA_HOST,
# CONSUL_CLIENT_ADDR.
set -euo pipefail

log() { printf '{"severity":"%s","component":"consul-bootstrap","message":"%s"}\n' "$1" "$2" >&2; }

confirm_node_meta() {
  local conf="${ILB_ROOT:-}/etc/consul.d/10-agent.json" addr token local_token self name node body
  addr="http://$(jq -r .client_addr "$conf"):8500"
  token=$(jq -r .acl.tokens.agent "$conf")
  # A client's login token has no agent rights: /v1/agent/self takes the agent's local recovery token.
  local_token=$(jq -r '.acl.tokens.agent_recovery // .acl.tokens.agent' "$conf")
  # Tokens reach curl on stdin, never its command line.
  with() { printf 'header = "X-Consul-Token: %s"\n' "$1" | curl -fsS --max-time 5 -K - "${@:2}"; }
  api() { with "$token" "$@"; }
  for _ in $(seq 1 120); do
    if self=$(with "$local_token" "$addr/v1/agent/self") && name=$(jq -r .Config.NodeName <<<"$self") &&
      api "$addr/v1/health/node/$name" | jq -e 'any(.[]; .CheckID == "serfHealth")' >/dev/null &&
      node=$(api "$addr/v1/catalog/node/$name" | jq -c .Node); then
      if jq -e --argjson self "$self" '.Meta == $self.Meta' <<<"$node" >/dev/null; then
        log INFO "node metadata confirmed in the catalog"
        return 0
      fi
      # What the agent's own node sync sends (ID, addresses, metadata).
      body=$(jq -c '{ID: .Config.NodeID, Node: .Config.NodeName, Address: .Member.Addr,
                     TaggedAddresses: .DebugConfig.TaggedAddresses, NodeMeta: .Meta}' <<<"$self")
      if api -X PUT --data "$body" "$addr/v1/catalog/register" >/dev/null; then
        log WARNING "the catalog lacked this node's metadata after join; registered it again"
        return 0
      fi
    fi
    sleep 0.5
  done
  log WARNING "could not confirm this node's metadata in the catalog; the agent's anti-entropy will restore it"
}

if [ "${1:-}" = --confirm-node-meta ]; then
  confirm_node_meta || true
  exit 0
fi

role=${1:?role}
service=${2:-}
port=${3:-}
root=${ILB_ROOT:-}
md_host=${GCE_METADATA_HOST:-metadata.google.internal}
client_addr=${CONSUL_CLIENT_ADDR:-127.0.0.1}
conf_dir="$root/etc/consul.d"
env_file="$root/etc/ilb/instance.env"

md() { curl -fsS --retry 5 --retry-connrefused --max-time 5 -H 'Metadata-Flavor: Google' "http://$md_host/computeMetadata/v1/$1"; }
attr() { md "instance/attributes/$1" 2>/dev/null || true; }

# A value: the attribute itself, else the Secret Manager secret named by ATTR-secret.
setting() {
  local value
  value=$(attr "$1")
  if [ -n "$value" ]; then printf '%s' "$value"; else from_secret_manager "$1"; fi
}

# A secret: from Secret Manager on GCE, where any process on the VM and any project viewer reads
# the metadata; inline metadata is accepted only from a metadata stand-in (the sandbox, tests).
secret() {
  if [ -z "${GCE_METADATA_HOST:-}" ] && [ -n "$(attr "$1")" ]; then
    log ERROR "$1 is in instance metadata: on GCE, secrets come only from Secret Manager ($1-secret)"
    return 0
  fi
  setting "$1"
}

from_secret_manager() {
  local name token
  name=$(attr "$1-secret")
  [ -n "$name" ] || return 0
  if ! [[ $name =~ ^[A-Za-z0-9_-]{1,255}$ ]]; then
    log ERROR "$1-secret is not a Secret Manager secret name"
    return 0
  fi
  token=$(md 'instance/service-accounts/default/token' | jq -r .access_token)
  # The access token goes to curl on stdin, never on its command line.
  printf 'header = "Authorization: Bearer %s"\n' "$token" |
    curl -fsS --max-time 10 -K - \
      "https://secretmanager.googleapis.com/v1/projects/$project/secrets/$name/versions/latest:access" |
    jq -r .payload.data | base64 -d
}

id=$(md instance/id)
name=$(md instance/name)
zone=$(md instance/zone)
zone=${zone##*/}
ip=$(md instance/network-interfaces/0/ip)
project=$(md project/project-id)
created_by=$(attr created-by)
group=""
case $created_by in */instanceGroupManagers/*) group=${created_by##*/} ;; esac

datacenter=$(attr consul-datacenter)
servers=$(attr consul-servers)
# The original tutorial's spelling is accepted too.
if [ -z "$servers" ]; then servers=$(attr consul_servers); fi
gossip_key=$(secret consul-gossip-key)
agent_token=""
if [ "$role" = consul ]; then agent_token=$(secret consul-agent-token); fi
# Requests without a token (DNS, consul-template, the apps) get this read-only token when given;
# never the role's write token, which any local process could then use.
default_token=$(secret consul-default-token)
if [ -z "$default_token" ]; then log WARNING "no consul-default-token: requests without a token get the anonymous token's rights"; fi
ca_cert=$(setting consul-ca-cert)
initial_management=""
if [ "$role" = consul ]; then initial_management=$(secret consul-initial-management-token); fi
if [ -z "$gossip_key" ] || { [ "$role" = consul ] && [ -z "$agent_token" ]; }; then
  log ERROR "consul-gossip-key (and on servers consul-agent-token) are required (metadata or Secret Manager)"
  exit 1
fi
auth_method=$(attr consul-auth-method)
audience=$(attr consul-auth-audience)
# A local-only token for agent operations on this agent alone (`consul leave` after logout): random
# per boot, valid nowhere else, so it is no shared secret.
recovery=$(cat /proc/sys/kernel/random/uuid)

if [ -n "$servers" ]; then
  join=$(jq -n --arg s "$servers" '$s | split(" ") | map(select(. != ""))')
else
  join=$(jq -n --arg p "$project" '["provider=gce project_name=\($p) tag_value=consul-server"]')
fi

install -d -m 0750 "$conf_dir" "$root/etc/ilb" "$root/opt/consul/data"
if [ -n "$ca_cert" ]; then
  install -d -m 0750 "$conf_dir/tls"
  printf '%s\n' "$ca_cert" >"$conf_dir/tls/ca.pem"
  if [ "$role" = consul ]; then
    # Servers present their own certificate and hand clients theirs (auto_encrypt).
    server_cert=$(setting consul-server-cert)
    server_key=$(secret consul-server-key)
    if [ -z "$server_cert" ] || [ -z "$server_key" ]; then
      log ERROR "a server with consul-ca-cert needs consul-server-cert and consul-server-key"
      exit 1
    fi
    printf '%s\n' "$server_cert" >"$conf_dir/tls/server.pem"
    (umask 077 && printf '%s\n' "$server_key" >"$conf_dir/tls/server-key.pem")
  fi
  # Servers also serve the HTTPS API on their private address: the functions' only way in (their
  # egress is the sole source the firewall admits to 8501); agents' plain HTTP stays on loopback.
  tls=$(jq -n --arg dir "$conf_dir/tls" --arg role "$role" --arg ip "$ip" '
    if $role == "consul" then
      {tls: {defaults: {ca_file: "\($dir)/ca.pem", cert_file: "\($dir)/server.pem",
                        key_file: "\($dir)/server-key.pem", verify_incoming: true, verify_outgoing: true},
             internal_rpc: {verify_server_hostname: true}, https: {verify_incoming: false}},
       auto_encrypt: {allow_tls: true},
       ports: {https: 8501}, addresses: {https: $ip}}
    else
      {tls: {defaults: {ca_file: "\($dir)/ca.pem", verify_outgoing: true},
             internal_rpc: {verify_server_hostname: true}},
       auto_encrypt: {tls: true}}
    end')
else
  log WARNING "no consul-ca-cert: RPC without TLS"
  tls='{}'
fi

umask 027
# Secrets reach jq through its environment, never its command line (which any local user can read).
ILB_GOSSIP_KEY=$gossip_key ILB_AGENT_TOKEN=$agent_token ILB_DEFAULT_TOKEN=$default_token \
  ILB_MGMT_TOKEN=$initial_management ILB_RECOVERY_TOKEN=$recovery jq -n \
  --arg dc "${datacenter:-dc1}" --arg name "$name" --arg ip "$ip" --arg client "$client_addr" \
  --arg data "$root/opt/consul/data" --argjson join "$join" \
  --arg id "$id" --arg zone "$zone" --arg project "$project" --arg group "$group" --arg role "$role" \
  --arg expect "$(attr consul-bootstrap-expect)" --argjson tls "$tls" '
  env.ILB_GOSSIP_KEY as $key | env.ILB_AGENT_TOKEN as $token | env.ILB_DEFAULT_TOKEN as $default
  | env.ILB_MGMT_TOKEN as $mgmt | env.ILB_RECOVERY_TOKEN as $recovery |
  {
    datacenter: $dc, node_name: $name, data_dir: $data, pid_file: "\($data)/consul.pid",
    bind_addr: $ip, advertise_addr: $ip, client_addr: $client,
    retry_join: $join, encrypt: $key, leave_on_terminate: false, skip_leave_on_interrupt: true,
    disable_update_check: true, log_json: true, enable_script_checks: false,
    node_meta: {"gce-instance-id": $id, "gce-zone": $zone, "gce-project": $project,
                "gce-instance-group": $group, role: $role},
    acl: {enabled: true, default_policy: "deny", down_policy: "extend-cache",
          enable_token_persistence: false,
          tokens: ((if $token != "" then {agent: $token} else {} end)
                   + (if $default != "" then {default: $default} else {} end))}
  }
  + (if $role == "consul"
     then {server: true, bootstrap_expect: (($expect | select(. != "") | tonumber) // 3),
           ui_config: {enabled: true}, autopilot: {cleanup_dead_servers: true}}
     else {} end)
  + $tls
  # Clients: Consul reaps a failed member itself after 15 min (healthSweep acts within minutes; a
  # preempted VM restarts well inside it); their agent token comes from consul-identity.sh.
  | if $role != "consul"
    then .advertise_reconnect_timeout = "15m" | .acl.tokens.agent_recovery = $recovery else . end
  | if $mgmt != "" then .acl.tokens.initial_management = $mgmt else . end' >"$conf_dir/10-agent.json"

if [ -n "$service" ]; then
  # No token here: the agent registers it with acl.tokens.config_file_service_registration, which
  # consul-identity.sh sets to this instance's login token (its service identity).
  jq -n --arg svc "$service" --argjson port "$port" --arg ip "$ip" \
    --arg zone "$zone" --arg role "$role" --arg id "$id" '
    {service: {name: $svc, port: $port, address: $ip, tags: [$zone, $role],
               meta: {"gce-instance-id": $id, "gce-zone": $zone},
               check: {name: "\($svc) /healthz", http: "http://\($ip):\($port)/healthz",
                       interval: "2s", timeout: "1s", success_before_passing: 1,
                       failures_before_critical: 2}}}' >"$conf_dir/20-service.json"
fi

cat >"$env_file" <<ENV
ILB_ROLE=$role
ILB_NODE_NAME=$name
ILB_ZONE=$zone
ILB_BIND_ADDR=$ip
CONSUL_HTTP_ADDR=$client_addr:8500
GCE_METADATA_HOST=$md_host
ILB_CONSUL_AUTH_METHOD=${auth_method:-gce-instance-identity}
ILB_CONSUL_AUDIENCE=${audience:-https://consul.ilb.internal/$project}
ILB_CONSUL_SERVERS="$servers"
ENV

if id consul >/dev/null 2>&1; then chown -R consul:consul "$conf_dir" "$root/opt/consul"; fi
log INFO "consul agent configured: node $name ($id) in $zone, role $role"
