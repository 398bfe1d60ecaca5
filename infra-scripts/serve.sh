#!/usr/bin/env bash
# Starts one Cloud Function locally in the Functions Framework on $PORT (default 8080), building
# first when a TypeScript source is newer than the build:  npm run serve -- instanceEvents
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
target=${1:-}
if [ -z "$target" ]; then
  echo "usage: npm run serve -- <functionName>   (e.g. instanceEvents)" >&2
  exit 2
fi
entry=dist/functions/index.js
if [ ! -f "$entry" ] || [ -n "$(find functions shared -name '*.ts' -newer "$entry" -print -quit)" ]; then
  echo "[serve] building" >&2
  npm run --silent build
fi
exec node node_modules/@google-cloud/functions-framework/build/src/main.js \
  --target="$target" --source="$entry" --port="${PORT:-8080}"
