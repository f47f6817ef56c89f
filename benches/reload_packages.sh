#!/usr/bin/env bash
# Token-route latency while a hook that requires npm packages (request + axios: ~100 ms to
# evaluate on each JS worker) is rewritten every second, beside the same load with no reloads.
# Release build, stub-idp upstream, ES256 re-signing, wrk -t1 -c8, 8 s per run; needs wrk and
# scripts/setup (tests/node-compat/hooks/node_modules).
#
#   benches/reload_packages.sh
#
# Measured 2026-12-02 (2 cores): before every serving worker was kept from evaluating a new
# generation at the same moment, p99 went from 8.7 ms steady to 484 ms while reloading (and the
# pool grew from 2 to 8 workers); after, 3.0 ms steady and 5.0 ms while reloading.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
[ -d tests/node-compat/hooks/node_modules/axios ] || { echo "run scripts/setup first"; exit 1; }
cargo build --release --locked -q --bin hookgate --example stub-idp
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/hooks/credentials-exchange"
cp -al tests/node-compat/hooks/node_modules "$work/hooks/node_modules" 2>/dev/null || cp -r tests/node-compat/hooks/node_modules "$work/hooks/node_modules"
cp tests/node-compat/hooks/package.json "$work/hooks/"
hook() { printf "var request = require('request');\nvar axios = require('axios');\nmodule.exports = function (client, scope, audience, context, cb) {\n  cb(null, { scope: scope, 'https://example.com/v': '%s' });\n};\n" "$1" > "$work/hooks/credentials-exchange/stamp.js"; }
hook start
RUST_LOG=warn,hookgate::reload=debug
. benches/reload_setup.sh
run() { TOKEN_PATH=/oauth/token TOKEN_RESOURCE="" wrk -t1 -c8 -d"${1}s" --latency -s tests/oidc/token-post.lua "http://127.0.0.1:$HG_PORT" | grep -E "Requests/sec|^ +(50|99)%|non-200"; }
run 3 > /dev/null
echo "== steady"; run 8
echo "== a reload every second"
( for i in $(seq 1 7); do sleep 1; hook "v$i"; done ) & writer=$!
run 8
wait "$writer"
echo "== the last reloads (hookgate's log)"
grep -E "evaluated on the workers|reloaded:" "$work/hookgate.log" | tail -4 | sed 's/.*Z //' | cut -c1-200
