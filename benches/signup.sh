#!/usr/bin/env bash
# What the post-user-registration path adds to a signup's answer, measured in one run against the
# same upstream (benches/stub_idp.rs, which answers /dbconnections/signup at once):
#   /signup-plain — a signup route without post-user-registration hooks;
#   /signup-post  — the same route with a no-op post-user-registration hook, so every signup
#                   writes its event to the redb outbox (fsync'd) before the answer, and the
#                   dispatcher delivers it in the background meanwhile.
# One connection (-c1): what one signup costs, p50 and p99, no queueing. Every run bounded by -d.
#
#   benches/signup.sh                 # 10 s per load run
#   DURATION=30s benches/signup.sh
#
# The dispatcher's own throughput (events/s with a no-op hook) is `cargo bench --bench outbox`.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
cargo build --release --locked -q
cargo build --release --locked -q --example stub-idp

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UP_PORT=$(free_port); HG_PORT=$(free_port); ADMIN_PORT=$(free_port)
./target/release/examples/stub-idp "127.0.0.1:$UP_PORT" > "$work/stub.out" &
pids+=($!)
for _ in $(seq 1 100); do grep -q ready "$work/stub.out" 2>/dev/null && break; sleep 0.1; done

mkdir -p "$work/hooks/post-user-registration"
echo 'module.exports = function (user, context, cb) { cb(); };' > "$work/hooks/post-user-registration/noop.js"
cat > "$work/hookgate.toml" <<TOML
[server]
listen = ["127.0.0.1:$HG_PORT"]
admin_listen = "127.0.0.1:$ADMIN_PORT"
[upstream]
address = "127.0.0.1:$UP_PORT"
[[route]]
name = "plain"
path = "/signup-plain"
point = "pre-user-registration"
upstream_path = "/dbconnections/signup"
[[route]]
name = "with-post"
path = "/signup-post"
point = "pre-user-registration"
upstream_path = "/dbconnections/signup"
[hooks]
dir = "hooks"
[[hooks.hook]]
file = "post-user-registration/noop.js"
routes = ["with-post"]
[outbox]
path = "outbox.redb"
TOML
RUST_LOG=warn ./target/release/hookgate serve --config "$work/hookgate.toml" 2> "$work/hookgate.log" &
pids+=($!)
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

url="http://127.0.0.1:$HG_PORT"
run() { # path -> "rps p50_ms p99_ms non2xx"
  local out
  out=$(SIGNUP_PATH=$1 wrk -t1 -c1 -d"$DURATION" --latency -s benches/signup-post.lua "$url")
  echo "$(awk '/Requests\/sec/ {print $2}' <<<"$out") $(to_ms "$(awk '$1=="50%" {print $2}' <<<"$out")") $(to_ms "$(awk '$1=="99%" {print $2}' <<<"$out")") $(awk '/Non-2xx/ {print $4}' <<<"$out")"
}
to_ms() { awk -v v="$1" 'BEGIN { n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /ms$/) n=n; else if (v ~ /s$/) n*=1000; printf "%.3f", n }'; }

check=$(curl -s "$url/signup-post" -H 'content-type: application/json' -d '{"email":"a@b","password":"p"}')
grep -q '"_id"' <<<"$check" || { echo "signup does not go through: $check"; cat "$work/hookgate.log"; exit 1; }

SIGNUP_PATH=/signup-plain wrk -t1 -c1 -d2s -s benches/signup-post.lua "$url" >/dev/null
SIGNUP_PATH=/signup-post wrk -t1 -c1 -d2s -s benches/signup-post.lua "$url" >/dev/null
read -r p_rps p_p50 p_p99 p_bad < <(run /signup-plain)
read -r q_rps q_p50 q_p99 q_bad < <(run /signup-post)

printf '\nsignup through hookgate, 1 connection, %s per run, %s cores, outbox on %s\n' "$DURATION" "$(nproc)" "$(df -T "$work" | awk 'NR==2 {print $2}')"
printf '%-36s %10s %10s %10s %8s\n' "" "req/s" "p50 ms" "p99 ms" "non-2xx"
printf '%-36s %10s %10s %10s %8s\n' "no post hook" "$p_rps" "$p_p50" "$p_p99" "${p_bad:-0}"
printf '%-36s %10s %10s %10s %8s\n' "post hook (event fsync'd first)" "$q_rps" "$q_p50" "$q_p99" "${q_bad:-0}"
awk -v a="$p_p50" -v b="$q_p50" -v c="$p_p99" -v d="$q_p99" 'BEGIN {
  printf "\nadded by the post-event path: p50 %+.3f ms, p99 %+.3f ms (budget: p50 +0.5 ms)\n", b-a, d-c }'
