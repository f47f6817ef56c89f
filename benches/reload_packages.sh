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
W=$(mktemp -d); mkdir -p $W/hooks/credentials-exchange
S=""; H=""
trap 'kill $H $S 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"' EXIT
cp -al tests/node-compat/hooks/node_modules $W/hooks/node_modules 2>/dev/null || cp -r tests/node-compat/hooks/node_modules $W/hooks/node_modules
cp tests/node-compat/hooks/package.json $W/hooks/
hook() { printf "var request = require('request');\nvar axios = require('axios');\nmodule.exports = function (client, scope, audience, context, cb) {\n  cb(null, { scope: scope, 'https://example.com/v': '%s' });\n};\n" "$1" > $W/hooks/credentials-exchange/stamp.js; }
hook start
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UP=$(port); HP=$(port); AP=$(port)
./target/release/hookgate keys generate --alg ES256 --out $W/key.pem >/dev/null
cat > $W/hookgate.toml <<TOML
[server]
listen = ["127.0.0.1:$HP"]
admin_listen = "127.0.0.1:$AP"
[upstream]
address = "127.0.0.1:$UP"
[token]
signing_key = "key.pem"
[[route]]
name = "token"
path = "/oauth/token"
point = "credentials-exchange"
upstream_path = "/token"
TOML
./target/release/examples/stub-idp 127.0.0.1:$UP > $W/idp.out 2>&1 & S=$!
sleep 0.5
RUST_LOG=warn,hookgate::reload=debug ./target/release/hookgate serve --config $W/hookgate.toml 2> $W/hg.log & H=$!
for _ in $(seq 1 100); do curl -fs http://127.0.0.1:$AP/readyz >/dev/null && break; sleep 0.1; done
run() { TOKEN_PATH=/oauth/token TOKEN_RESOURCE="" wrk -t1 -c8 -d${1}s --latency -s tests/oidc/token-post.lua http://127.0.0.1:$HP | grep -E "Requests/sec|^ +(50|99)%|non-200"; }
run 3 > /dev/null
echo "== steady"; run 8
echo "== a reload every second"
( for i in $(seq 1 7); do sleep 1; hook "v$i"; done ) & C=$!
run 8
wait $C
echo "== the last reloads (hookgate's log)"
grep -E "evaluated on the workers|reloaded:" $W/hg.log | tail -4 | sed 's/.*Z //' | cut -c1-200
