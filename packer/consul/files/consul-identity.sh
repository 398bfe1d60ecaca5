#!/usr/bin/env bash
# This client VM's Consul token, from its GCE instance identity token (no shared role secret):
#   consul-identity.sh direct   before the agent starts (consul.service's ExecStartPre): log in at a
#                               server's HTTP API (HTTPS :8501 with the CA when TLS is on, as
#                               `server.<dc>.consul`) and put the token in the agent's config. With
#                               auto_encrypt the agent needs it to get its certificate at all.
#   consul-identity.sh ensure   once the agent is up (ExecStartPost): `login` unless the config holds a
#                               token already (without TLS the servers' API is loopback-only).
#   consul-identity.sh login    log in through the local agent (ACL auth method, type jwt) with a fresh
#                               identity token, make the result the agent's token (reload), revoke the
#                               token it replaces.
#   consul-identity.sh renew    login every ILB_IDENTITY_RENEW_SECONDS (default 1200), well inside the
#                               auth method's MaxTokenTTL (1h): consul-identity.service. A failed
#                               renewal keeps the current token and retries every
#                               ILB_IDENTITY_RETRY_SECONDS (default 60) until one succeeds. SIGTERM
#                               lets a renewal under way finish (stored, reloaded, old one revoked).
#   consul-identity.sh logout   revoke the agent's token (ilb-drain.sh, just before `consul leave`).
# The login token holds a node identity (this instance's name) and a service identity (the role's
# service): Consul's binding rules derive both from the token's claims (acl-setup.sh). A VM that dies
# without a shutdown keeps its token until the TTL ends; it can only ever write its own node name.
# Reads /etc/ilb/instance.env (ILB_CONSUL_AUTH_METHOD, ILB_CONSUL_AUDIENCE, CONSUL_HTTP_ADDR) and
# /etc/consul.d/10-agent.json (pid_file, the current token). Never prints a token.
set -euo pipefail

root=${ILB_ROOT:-}
# shellcheck source=/dev/null
. "$root/etc/ilb/instance.env"
conf="$root/etc/consul.d/10-agent.json"
md_host=${GCE_METADATA_HOST:-metadata.google.internal}
log() { printf '{"severity":"%s","component":"consul-identity","message":"%s"}\n' "$1" "$2" >&2; }

current_token() { jq -r '.acl.tokens.agent // empty' "$conf"; }

# The identity token: the instance's own, for the deployment's audience, with the instance claims.
identity_token() {
  curl -fsS --retry 5 --retry-connrefused --max-time 5 -H 'Metadata-Flavor: Google' -G \
    --data-urlencode "audience=$ILB_CONSUL_AUDIENCE" --data-urlencode format=full \
    "http://$md_host/computeMetadata/v1/instance/service-accounts/default/identity"
}

# The login request; the JWT goes to curl on stdin, never on a command line.
login_body() {
  identity_token | jq -Rc --arg m "$ILB_CONSUL_AUTH_METHOD" --arg n "$ILB_NODE_NAME" \
    '{AuthMethod: $m, BearerToken: ., Meta: {node: $n}}'
}

# POST /v1/acl/login (no token needed) through the local agent.
login_once() {
  login_body | curl -fsS --max-time 10 -X POST --data @- "http://$CONSUL_HTTP_ADDR/v1/acl/login" |
    jq -r '.SecretID // empty'
}

# POST /v1/acl/logout revokes the token the request carries (one a login made): by default the
# agent's, or the one given.
logout() {
  local token=${1:-$(current_token)}
  [ -n "$token" ] || return 0
  printf 'header = "X-Consul-Token: %s"\n' "$token" |
    curl -fsS --max-time 10 -K - -X POST "http://$CONSUL_HTTP_ADDR/v1/acl/logout" >/dev/null
}

# The agent's config with this token as its agent and config-file registration token.
store_token() {
  local tmp
  tmp=$(mktemp "$conf.XXXXXX")
  # The token reaches jq through its environment, not its command line.
  ILB_TOKEN=$1 jq '.acl.tokens.agent = env.ILB_TOKEN
    | .acl.tokens.config_file_service_registration = env.ILB_TOKEN' "$conf" >"$tmp"
  chmod 0640 "$tmp"
  mv "$tmp" "$conf"
}

# A server's HTTP API for one request before the agent runs: `at_server IP PATH [curl args]`.
at_server() {
  local ip=$1 path=$2 ca="$root/etc/consul.d/tls/ca.pem" dc
  shift 2
  dc=$(jq -r '.datacenter // "dc1"' "$conf")
  if [ -f "$ca" ]; then
    curl -fsS --connect-timeout 3 --max-time 10 --cacert "$ca" --resolve "server.$dc.consul:8501:$ip" "$@" \
      "https://server.$dc.consul:8501$path"
  else
    curl -fsS --connect-timeout 3 --max-time 10 "$@" "http://$ip:8500$path"
  fi
}

direct() {
  local new="" server token deadline=$((SECONDS + 60))
  token=$(current_token)
  while [ "$SECONDS" -lt "$deadline" ]; do
    for server in ${ILB_CONSUL_SERVERS:-}; do
      # A restart keeps a token the servers still know.
      if [ -n "$token" ] && printf 'header = "X-Consul-Token: %s"\n' "$token" |
        at_server "$server" /v1/acl/token/self -K - >/dev/null 2>&1; then
        return 0
      fi
      new=$(login_body | at_server "$server" /v1/acl/login -X POST --data @- 2>/dev/null |
        jq -r '.SecretID // empty') || new=""
      if [ -n "$new" ]; then
        store_token "$new"
        log INFO "logged in to Consul as this instance (at a server, before the agent starts)"
        return 0
      fi
    done
    sleep 1
  done
  log WARNING "no server answered the login; the agent logs in once it is up"
  return 1
}

# `login [ATTEMPTS]`: at boot the agent forwards the login to the servers only once it has joined,
# so it is retried (120 attempts, half a second apart); a renewal tries once and retries later.
# Runs where errexit is off (`login || ...`): every step checks its own failure.
login() {
  local old new="" pid attempts=${1:-120}
  old=$(current_token)
  for _ in $(seq 1 "$attempts"); do
    if new=$(login_once 2>/dev/null) && [ -n "$new" ]; then break; fi
    sleep 0.5
  done
  if [ -z "$new" ]; then
    log ERROR "could not log in to Consul with this instance's identity (auth method $ILB_CONSUL_AUTH_METHOD)"
    return 1
  fi
  if ! store_token "$new"; then
    logout "$new" || true
    log ERROR "could not store the new token; the agent keeps the current one"
    return 1
  fi
  # A reload (SIGHUP) loads the new tokens; `consul reload` would need agent:write, which this token lacks.
  if ! pid=$(cat "$(jq -r .pid_file "$conf")") || ! kill -HUP "$pid"; then
    # The old token stays valid: the agent uses it until it restarts with the new one.
    log ERROR "could not signal the agent to load its new token"
    return 1
  fi
  if [ -n "$old" ] && [ "$old" != "$new" ]; then
    if logout "$old"; then log INFO "renewed this node's Consul token"; else
      log WARNING "could not revoke the previous token; it expires with its TTL"
    fi
  else
    log INFO "logged in to Consul as this instance"
  fi
}

renew() {
  local interval=${ILB_IDENTITY_RENEW_SECONDS:-1200} retry=${ILB_IDENTITY_RETRY_SECONDS:-60}
  local wait=$interval stop="" sleeper
  # The trap only marks the stop: a renewal under way runs to its end.
  trap 'stop=1' TERM INT
  while [ -z "$stop" ]; do
    sleep "$wait" &
    sleeper=$!
    # `wait` returns as soon as the trap ran; `sleep` in the foreground would hold the stop.
    wait "$sleeper" || kill "$sleeper" 2>/dev/null || true
    [ -z "$stop" ] || break
    if login 1; then wait=$interval; else
      wait=$retry
      log WARNING "renewal failed; the current token stays, retrying in ${retry}s"
    fi
  done
}

# Consul servers hold a token of their own (consul-agent-token); they never log in.
if [ "${ILB_ROLE:-}" = consul ]; then exit 0; fi

case ${1:-} in
  direct) direct ;;
  ensure) if [ -z "$(current_token)" ]; then login; fi ;;
  login) login ;;
  renew) renew ;;
  logout)
    if logout; then log INFO "revoked this node's Consul token"; else log WARNING "logout failed"; fi
    ;;
  *)
    echo "usage: consul-identity.sh direct|ensure|login|renew|logout" >&2
    exit 2
    ;;
esac
