#!/usr/bin/env bash
# Lays out one role's files, as the image has them and as the local sandbox runs them.
#   install-role.sh ROLE SRC    SRC holds consul/files and ROLE/files (the packer/ tree)
# Under ILB_ROOT (default /) it writes: /opt/ilb/bin (scripts), /etc/systemd/system (units),
# /etc/consul-template, /etc/haproxy, and /etc/ilb/units (the units to enable, in start order).
set -euo pipefail

role=${1:?role}
src=${2:?source directory}
root=${ILB_ROOT:-}

case $role in
  consul) units="ilb-bootstrap consul ilb-drain" ;;
  backend) units="ilb-bootstrap consul consul-identity backend ilb-drain" ;;
  frontend) units="ilb-bootstrap consul consul-identity ilb-dnsmasq frontend ilb-drain" ;;
  haproxy) units="ilb-bootstrap consul consul-identity consul-template haproxy haproxy-sync ilb-drain" ;;
  *)
    echo "unknown role: $role" >&2
    exit 1
    ;;
esac

install -d -m 0755 "$root/opt/ilb/bin" "$root/etc/systemd/system" "$root/etc/ilb"
install -m 0755 "$src/consul/files/consul-bootstrap.sh" "$src/consul/files/consul-identity.sh" \
  "$src/consul/files/ilb-drain.sh" "$root/opt/ilb/bin/"
install -m 0755 "$src/$role/files/startup.sh" "$root/opt/ilb/bin/startup.sh"
install -m 0755 "$src/$role/files/shutdown.sh" "$root/opt/ilb/bin/shutdown.sh"
for unit in $units; do
  if [ -f "$src/$role/files/$unit.service" ]; then
    install -m 0644 "$src/$role/files/$unit.service" "$root/etc/systemd/system/"
  else
    install -m 0644 "$src/consul/files/$unit.service" "$root/etc/systemd/system/"
  fi
done
if [ "$role" = haproxy ]; then
  install -d -m 0755 "$root/etc/consul-template" "$root/etc/haproxy"
  install -m 0644 "$src/haproxy/files/consul-template.hcl" "$src/haproxy/files/haproxy.cfg.ctmpl" \
    "$root/etc/consul-template/"
  # The package's sample config must not pass for the first render at boot.
  rm -f "$root/etc/haproxy/haproxy.cfg"
fi
echo "$units" >"$root/etc/ilb/units"

# On the image, systemd starts them at boot; the sandbox reads /etc/ilb/units instead.
if [ -z "$root" ] && command -v systemctl >/dev/null 2>&1; then
  systemctl daemon-reload
  # shellcheck disable=SC2086 # one unit name per word
  systemctl enable $units
fi
