#!/usr/bin/env bash
# Builds the four role images (consul, haproxy, backend, frontend) with Packer into a project; the
# deploy's instance templates use their families (ilb-<role>). The app images carry dist/.
#   infra-scripts/build-images.sh --project ID [--zone ZONE] [--only role,role] [--dry-run]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
project=""
zone=us-central1-a
only="consul,haproxy,backend,frontend"
dry_run=false
while [ $# -gt 0 ]; do
  case $1 in
    --project) project=${2:?--project needs a value}; shift 2 ;;
    --project=*) project=${1#*=}; shift ;;
    --zone) zone=${2:?--zone needs a value}; shift 2 ;;
    --zone=*) zone=${1#*=}; shift ;;
    --only) only=${2:?--only needs a value}; shift 2 ;;
    --only=*) only=${1#*=}; shift ;;
    --dry-run) dry_run=true; shift ;;
    *) echo "unknown argument $1 (usage: build-images.sh --project ID [--zone Z] [--only a,b] [--dry-run])" >&2; exit 2 ;;
  esac
done
if [ -z "$project" ]; then echo "--project is required" >&2; exit 2; fi

run() {
  printf '+ %s\n' "$*"
  if [ "$dry_run" = false ]; then "$@"; fi
}

IFS=, read -r -a roles <<<"$only"
total=${#roles[@]}
# The images install the compiled apps from dist/ (app_dir holds dist/ and the package files).
if printf '%s\n' "${roles[@]}" | grep -qv '^consul$'; then
  run bash -c "cd '$root' && node_modules/.bin/tsc -p tsconfig.build.json"
fi
for role in "${roles[@]}"; do
  case $role in consul | haproxy | backend | frontend) ;; *) echo "unknown role $role" >&2; exit 2 ;; esac
done
# One template for every role (packer/image.pkr.hcl, chosen by -var role=); packer/<role>/ holds only
# that role's files. init installs the googlecompute plugin that packer/plugins.pkr.hcl requires.
run packer init "$root/packer"
n=0
for role in "${roles[@]}"; do
  n=$((n + 1))
  echo "step $n of $total: image ilb-$role"
  vars=(-var "role=$role" -var "project_id=$project" -var "zone=$zone")
  if [ "$role" != consul ]; then vars+=(-var "app_dir=$root"); fi
  if ! run packer build "${vars[@]}" "$root/packer"; then
    echo "step $n of $total failed (image ilb-$role); rerun with --only ${role}$(printf ',%s' "${roles[@]:n}")" >&2
    exit 1
  fi
done
