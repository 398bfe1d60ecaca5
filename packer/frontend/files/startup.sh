#!/usr/bin/env bash
# frontend boot: Consul agent config with the `frontend` service (port 80), and dnsmasq's config.
set -euo pipefail
root=${ILB_ROOT:-}
"$(dirname "$0")/consul-bootstrap.sh" frontend frontend 80
# shellcheck source=/dev/null
. "$root/etc/ilb/instance.env"
consul_host=${CONSUL_HTTP_ADDR%:*}
# Over UDP Consul DNS answers at most 3 records, silently: an HAProxy VM that registers its service
# many times would crowd the others out. With the truncation flag set, the resolver asks again over
# TCP and gets every record; the frontend then keeps each proven address once.
# (developer.hashicorp.com/consul/docs/reference/agent/configuration-file/dns: enable_truncate)
echo '{"dns_config": {"enable_truncate": true}}' >"$root/etc/consul.d/30-dns.json"
if id consul >/dev/null 2>&1; then chown consul:consul "$root/etc/consul.d/30-dns.json"; fi
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
# The HAProxy tier's subnets: the frontend uses only DNS answers inside them (services/frontend/proven.ts).
haproxy_cidrs=$(curl -fsS --max-time 5 -H 'Metadata-Flavor: Google' \
  "http://${GCE_METADATA_HOST:-metadata.google.internal}/computeMetadata/v1/instance/attributes/ilb-haproxy-cidrs" 2>/dev/null || true)
if ! [[ $haproxy_cidrs =~ ^[0-9./,]{0,1024}$ ]]; then haproxy_cidrs=""; fi
echo "ILB_HAPROXY_CIDRS=$haproxy_cidrs" >>"$root/etc/ilb/instance.env"
