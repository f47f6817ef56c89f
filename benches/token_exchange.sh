#!/usr/bin/env bash
# Token-exchange cost of hookgate, measured in one run against the same upstream:
# node-oidc-provider direct vs. through hookgate with a credentials-exchange hook that adds two
# claims and re-signs with ES256 (or $ALG). Loopback only; every load run is bounded by -d.
#
#   benches/token_exchange.sh            # 10 s per load run
#   DURATION=30s ALG=RS256 benches/token_exchange.sh
#
# Two measurements per path:
#   latency    — one connection (-c1): what one request costs, p50 and p99, no queueing;
#   throughput — eight connections (-c8): requests/s, where the upstream is the bottleneck.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
ALG=${ALG:-ES256}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
scripts/setup >/dev/null
cargo build --release --locked -q

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

node tests/oidc/server.mjs --port 0 > "$work/idp.out" 2> "$work/idp.log" &
pids+=($!)
for _ in $(seq 1 100); do grep -q '"ready"' "$work/idp.out" 2>/dev/null && break; sleep 0.1; done
IDP_PORT=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$work/idp.out")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HG_PORT=$(free_port); ADMIN_PORT=$(free_port)
mkdir -p "$work/hooks/credentials-exchange"
cat > "$work/hooks/credentials-exchange/two-claims.js" <<'JS'
module.exports = function (client, scope, audience, context, cb) {
  var access_token = {};
  access_token.scope = scope;
  access_token['https://example.com/tier'] = client.metadata.tier || 'standard';
  access_token['https://example.com/region'] = 'eu';
  cb(null, access_token);
};
JS
./target/release/hookgate keys generate --alg "$ALG" --out "$work/key.pem" >/dev/null
cat > "$work/hookgate.toml" <<TOML
[server]
listen = ["127.0.0.1:$HG_PORT"]
admin_listen = "127.0.0.1:$ADMIN_PORT"
[upstream]
address = "127.0.0.1:$IDP_PORT"
[token]
signing_key = "key.pem"
[clients.m2m-post]
metadata = { tier = "gold" }
[[route]]
name = "token"
path = "/oauth/token"
point = "credentials-exchange"
upstream_path = "/token"
audience_param = "resource"
TOML
RUST_LOG=warn ./target/release/hookgate serve --config "$work/hookgate.toml" 2> "$work/hookgate.log" &
pids+=($!)
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

direct="http://127.0.0.1:$IDP_PORT"
through="http://127.0.0.1:$HG_PORT"
# Both paths send the same form body; hookgate's route maps /oauth/token to /token.
run() { # url path conns -> "rps p50_ms p99_ms non200"
  local out
  out=$(TOKEN_PATH=$2 wrk -t1 -c"$3" -d"$DURATION" --latency -s tests/oidc/token-post.lua "$1")
  local rps p50 p99 bad
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  bad=$(awk '/non-200/ {print $3}' <<<"$out")
  echo "$rps $(to_ms "$p50") $(to_ms "$p99") $bad"
}
to_ms() { awk -v v="$1" 'BEGIN { n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /ms$/) n=n; else if (v ~ /s$/) n*=1000; printf "%.3f", n }'; }

check=$(curl -s "$through/oauth/token" -d grant_type=client_credentials -d client_id=m2m-post -d client_secret=m2m-post-secret -d scope=read:users)
grep -q '"access_token"' <<<"$check" || { echo "hookgate does not issue tokens: $check"; cat "$work/hookgate.log"; exit 1; }

echo "warming up (node-oidc-provider needs a few seconds to reach speed)..."
TOKEN_PATH=/token wrk -t1 -c8 -d5s -s tests/oidc/token-post.lua "$direct" >/dev/null
TOKEN_PATH=/oauth/token wrk -t1 -c8 -d5s -s tests/oidc/token-post.lua "$through" >/dev/null

read -r d1_rps d1_p50 d1_p99 d1_bad < <(run "$direct" /token 1)
read -r h1_rps h1_p50 h1_p99 h1_bad < <(run "$through" /oauth/token 1)
read -r d8_rps d8_p50 d8_p99 d8_bad < <(run "$direct" /token 8)
read -r h8_rps h8_p50 h8_p99 h8_bad < <(run "$through" /oauth/token 8)

printf '\ntoken exchange, %s re-signing, hook adding two claims, %s per run, %s cores\n' "$ALG" "$DURATION" "$(nproc)"
printf '%-28s %10s %10s %10s %8s\n' "" "req/s" "p50 ms" "p99 ms" "non-200"
printf '%-28s %10s %10s %10s %8s\n' "direct, 1 conn" "$d1_rps" "$d1_p50" "$d1_p99" "$d1_bad"
printf '%-28s %10s %10s %10s %8s\n' "through hookgate, 1 conn" "$h1_rps" "$h1_p50" "$h1_p99" "$h1_bad"
printf '%-28s %10s %10s %10s %8s\n' "direct, 8 conns" "$d8_rps" "$d8_p50" "$d8_p99" "$d8_bad"
printf '%-28s %10s %10s %10s %8s\n' "through hookgate, 8 conns" "$h8_rps" "$h8_p50" "$h8_p99" "$h8_bad"
awk -v a="$d1_p50" -v b="$h1_p50" -v c="$d1_p99" -v d="$h1_p99" -v r1="$d8_rps" -v r2="$h8_rps" 'BEGIN {
  printf "\nadded latency (1 conn): p50 %+.3f ms, p99 %+.3f ms\n", b-a, d-c;
  printf "throughput through hookgate / direct (8 conns): %.1f%%\n", 100*r2/r1 }'
