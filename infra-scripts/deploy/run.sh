#!/usr/bin/env bash
# Shared by deploy.sh and teardown.sh: builds the TypeScript (and the functions deploy uploads)
# when the sources are newer than dist/, then runs the deploy program.
run_deploy() {
  local root main
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  main="$root/dist/infra-scripts/deploy/main.js"
  if [ ! -f "$main" ] ||
    [ -n "$(find "$root/infra-scripts/deploy" "$root/functions" "$root/shared" -name '*.ts' -newer "$main" -print -quit)" ]; then
    echo "building dist/ (tsc -p tsconfig.build.json)" >&2
    (cd "$root" && node_modules/.bin/tsc -p tsconfig.build.json)
  fi
  exec node "$main" "$@"
}
