#!/usr/bin/env bash
# Replays the Dockerfile's runtime stage without Docker: a production-only install of the
# dependencies, the compiled dist/, NODE_ENV=production, then the image's HEALTHCHECK command.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d dist ] || npm run build

stage=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$stage"' EXIT
cp package.json package-lock.json "$stage/"
(cd "$stage" && npm ci --omit=dev --no-audit --no-fund --silent)
cp -r dist "$stage/dist"
mkdir -p "$stage/data"

port=$(node -e 'const s=require("net").createServer().listen(0,()=>{console.log(s.address().port);s.close()})')
health=$(node -e 'const s=require("net").createServer().listen(0,()=>{console.log(s.address().port);s.close()})')
(cd "$stage" && NODE_ENV=production API_KEY=container-smoke-key-0123456789 PORT=$port HEALTH_PORT=$health \
  DATA_DIR="$stage/data" WORKERS=2 LOG_LEVEL=warn node dist/src/primary/main.js) &
server=$!

for _ in $(seq 1 100); do
  if HEALTH_PORT=$health node -e "fetch('http://127.0.0.1:'+process.env.HEALTH_PORT+'/').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"; then
    echo "container smoke: health check passed"
    kill -TERM "$server"
    wait "$server"
    echo "container smoke: clean shutdown"
    exit 0
  fi
  sleep 0.2
done
echo "container smoke: server never became healthy" >&2
exit 1
