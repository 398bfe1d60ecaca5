#!/usr/bin/env bash
# frontend boot: Consul agent config with the `frontend` service (port 80), and dnsmasq's config.
set -euo pipefail
root=${ILB_ROOT:-}
"$(dirname "$0")/consul-bootstrap.sh" frontend frontend 80
# shellcheck source=/dev/null
. "$root/etc/ilb/instance.env"
consul_host=${CONSUL_HTTP_ADDR%:*}
# The image listens on 127.0.0.1; the sandbox gives each instance its own loopback address.
listen=${ILB_DNS_LISTEN:-127.0.0.1}
cat >"$root/etc/ilb/dnsmasq.conf" <<CONF
# .consul goes to the local agent's DNS; everything else to the system's upstream resolvers.
listen-address=$listen
bind-interfaces
port=53
server=/consul/$consul_host#8600
resolv-file=/etc/resolv.conf
no-hosts
no-negcache
cache-size=0
pid-file=
user=nobody
CONF
echo "ILB_DNS_SERVER=$listen:53" >>"$root/etc/ilb/instance.env"
