#!/usr/bin/env bash
# Image build: Debian packages plus pinned HashiCorp releases, each checked against the release's
# SHA256SUMS, whose signature is verified with HashiCorp's release key (fingerprint pinned below).
#   install-packages.sh "pkg ..."   extra Debian packages for the role (haproxy, dnsmasq, nodejs)
set -euo pipefail

consul_version=${CONSUL_VERSION:-1.15.6}
consul_template_version=${CONSUL_TEMPLATE_VERSION:-0.41.1}
hashicorp_key_fpr=C874011F0AB405110D02105534365D9472D7468F
extra=${1:-}

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # the role's package list is meant to split
apt-get install -y -qq --no-install-recommends ca-certificates curl gnupg jq nftables unzip $extra

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GNUPGHOME="$work/gnupg"
install -d -m 0700 "$GNUPGHOME"
curl -fsSL https://www.hashicorp.com/.well-known/pgp-key.txt | gpg --batch --import
gpg --batch --with-colons --fingerprint | grep -q "^fpr:::::::::$hashicorp_key_fpr:" || {
  echo "HashiCorp release key fingerprint mismatch" >&2
  exit 1
}

# fetch_release NAME VERSION: downloads, verifies and installs /usr/local/bin/NAME.
fetch_release() {
  local name=$1 version=$2 zip="${1}_${2}_linux_amd64.zip"
  local base="https://releases.hashicorp.com/$name/$version"
  (
    cd "$work"
    curl -fsSLO "$base/$zip"
    curl -fsSLO "$base/${name}_${version}_SHA256SUMS"
    curl -fsSLO "$base/${name}_${version}_SHA256SUMS.sig"
    gpg --batch --verify "${name}_${version}_SHA256SUMS.sig" "${name}_${version}_SHA256SUMS"
    grep " $zip\$" "${name}_${version}_SHA256SUMS" | sha256sum -c -
    unzip -o -q "$zip" "$name" -d "$work/bin"
  )
  install -m 0755 "$work/bin/$name" "/usr/local/bin/$name"
}

fetch_release consul "$consul_version"
fetch_release consul-template "$consul_template_version"

id consul >/dev/null 2>&1 || useradd --system --home /opt/consul --shell /usr/sbin/nologin consul
id ilb >/dev/null 2>&1 || useradd --system --home /opt/ilb --shell /usr/sbin/nologin ilb
# The metadata server for root and the service users only (the rule names them: they exist now).
files=$(dirname "$0")
install -d -m 0755 /etc/ilb
install -m 0644 "$files/metadata-guard.nft" /etc/ilb/metadata-guard.nft
install -m 0644 "$files/ilb-metadata-guard.service" /etc/systemd/system/
nft -c -f /etc/ilb/metadata-guard.nft
systemctl enable ilb-metadata-guard.service
apt-get clean
rm -rf /var/lib/apt/lists/*
