#!/usr/bin/env bash
# Image build: Node.js (pinned, checked against the release's SHASUMS256) and the built app in /opt/ilb/app.
#   install-app.sh APP_DIR    APP_DIR holds dist/, package.json and package-lock.json
set -euo pipefail

node_version=${NODE_VERSION:-22.12.0}
app=${1:?app directory}
tarball="node-v${node_version}-linux-x64.tar.xz"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(
  cd "$work"
  curl -fsSLO "https://nodejs.org/dist/v${node_version}/$tarball"
  curl -fsSLO "https://nodejs.org/dist/v${node_version}/SHASUMS256.txt"
  grep " $tarball\$" SHASUMS256.txt | sha256sum -c -
)
tar -xJf "$work/$tarball" -C /usr/local --strip-components=1
ln -sf /usr/local/bin/node /usr/bin/node

install -d -m 0755 /opt/ilb/app
cp -r "$app/dist" "$app/package.json" "$app/package-lock.json" /opt/ilb/app/
(cd /opt/ilb/app && npm ci --omit=dev --ignore-scripts --no-audit --no-fund)
chown -R root:root /opt/ilb/app
