# Sourced by benches/reload.sh and benches/reload_packages.sh: starts stub-idp and a release
# hookgate with one credentials-exchange route (ES256 re-signing) on the hooks in "$work/hooks",
# waits for both, and sets IDP_PORT, HG_PORT, ADMIN_PORT and url. Each started process's pid is
# appended to the caller's `pids` array, which its EXIT trap stops.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
IDP_PORT=$(free_port); HG_PORT=$(free_port); ADMIN_PORT=$(free_port)
./target/release/examples/stub-idp "127.0.0.1:$IDP_PORT" > "$work/idp.out" &
pids+=($!)
for _ in $(seq 1 100); do grep -q '"ready"' "$work/idp.out" 2>/dev/null && break; sleep 0.05; done
./target/release/hookgate keys generate --alg ES256 --out "$work/key.pem" >/dev/null
cat > "$work/hookgate.toml" <<TOML
[server]
listen = ["127.0.0.1:$HG_PORT"]
admin_listen = "127.0.0.1:$ADMIN_PORT"
[upstream]
address = "127.0.0.1:$IDP_PORT"
[token]
signing_key = "key.pem"
[[route]]
name = "token"
path = "/oauth/token"
point = "credentials-exchange"
upstream_path = "/token"
TOML
RUST_LOG=${RUST_LOG:-warn} ./target/release/hookgate serve --config "$work/hookgate.toml" 2> "$work/hookgate.log" &
pids+=($!)
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
url="http://127.0.0.1:$HG_PORT/oauth/token"
