#!/usr/bin/env bash
# Side-by-side load test: the release build of `gatehouse serve` (embedded store) against
# node-oidc-provider (in memory, dynamic registration on), alternating A B A B under the same
# load generator (wrk), for registration and metadata. Prints requests/s for both, the ratio,
# and Gatehouse's resident memory under load.
#
#   benches/load.sh                       2 rounds of 10 s per target and endpoint
#   ROUNDS=3 DURATION=20s CONNECTIONS=64 benches/load.sh
#
# Needs: cargo, node/npm (installs oidc-provider from benches/node-oidc/package-lock.json),
# wrk (installed with apt-get when missing). Nothing here is a test: it asserts no timing.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
ROUNDS="${ROUNDS:-2}"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-2}"
work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

if ! command -v wrk >/dev/null; then
    echo "installing wrk (Debian)" >&2
    apt-get install -y --no-install-recommends wrk >/dev/null 2>&1 \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends wrk >/dev/null; }
fi
if [ ! -d benches/node-oidc/node_modules ]; then
    (cd benches/node-oidc && npm ci --no-audit --no-fund >/dev/null)
fi
cargo build --release -p gatehouse >&2
bin="$CARGO_TARGET_DIR/release/gatehouse"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 100); do
        if python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1', $1)))"; then return 0; fi
        sleep 0.1
    done
    echo "nothing listening on port $1" >&2
    exit 1
}

gh_port="$(free_port)"
# Cap 0: no pending cap and no per-IP limit (a 429 is not throughput). Pending clients live
# 10 s, so the embedded store holds about rate x 10 s of them: memory stays bounded.
GATEHOUSE_ADDR="127.0.0.1:$gh_port" GATEHOUSE_PENDING_CLIENT_CAP=0 GATEHOUSE_PENDING_CLIENT_TTL=10 \
    GATEHOUSE_LOG=warn "$bin" serve >"$work/gatehouse.log" 2>&1 &
gh_pid=$!
pids+=("$gh_pid")
node_port="$(free_port)"
node benches/node-oidc/server.mjs "$node_port" >"$work/node.log" 2>&1 &
node_pid=$!
pids+=("$node_pid")
wait_port "$gh_port"
wait_port "$node_port"

cat >"$work/register.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"client_name":"load test","redirect_uris":["https://client.example/cb"]}'
LUA

# One wrk run; prints requests/s. Fails loudly if more than 1% of answers were not 2xx.
run() {
    local url="$1" script="${2:-}" out
    if [ -n "$script" ]; then
        out="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$script" "$url")"
    else
        out="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "$url")"
    fi
    local total bad rps
    total="$(awk '/requests in/ {print $1}' <<<"$out")"
    bad="$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out")"
    rps="$(awk '/Requests\/sec:/ {print $2}' <<<"$out")"
    if [ -n "$bad" ] && [ "$((bad * 100))" -gt "$total" ]; then
        echo "$url: $bad of $total answers were not 2xx" >&2
        echo "$out" >&2
        exit 1
    fi
    echo "$rps"
}

declare -A sum
for name in gh_reg node_reg gh_meta node_meta; do sum[$name]=0; done
peak_rss=0
rss() { awk '/VmRSS/ {print $2}' "/proc/$gh_pid/status"; }
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round/$ROUNDS" >&2
    r="$(run "http://127.0.0.1:$gh_port/t/demo/oauth/register" "$work/register.lua")"
    sum[gh_reg]="$(python3 -c "print(${sum[gh_reg]} + $r)")"
    now_rss="$(rss)"; [ "$now_rss" -gt "$peak_rss" ] && peak_rss="$now_rss"
    r="$(run "http://127.0.0.1:$node_port/reg" "$work/register.lua")"
    sum[node_reg]="$(python3 -c "print(${sum[node_reg]} + $r)")"
    r="$(run "http://127.0.0.1:$gh_port/.well-known/oauth-authorization-server/t/demo")"
    sum[gh_meta]="$(python3 -c "print(${sum[gh_meta]} + $r)")"
    now_rss="$(rss)"; [ "$now_rss" -gt "$peak_rss" ] && peak_rss="$now_rss"
    r="$(run "http://127.0.0.1:$node_port/.well-known/openid-configuration")"
    sum[node_meta]="$(python3 -c "print(${sum[node_meta]} + $r)")"
done
hwm="$(awk '/VmHWM/ {print $2}' "/proc/$gh_pid/status")"

python3 - "$ROUNDS" "${sum[gh_reg]}" "${sum[node_reg]}" "${sum[gh_meta]}" "${sum[node_meta]}" "$peak_rss" "$hwm" <<'PY'
import sys
rounds = int(sys.argv[1])
gh_reg, node_reg, gh_meta, node_meta = (float(v) / rounds for v in sys.argv[2:6])
rss_kib, hwm_kib = int(sys.argv[6]), int(sys.argv[7])
print(f"{'endpoint':<14}{'gatehouse req/s':>18}{'node-oidc-provider req/s':>27}{'ratio':>9}")
print(f"{'registration':<14}{gh_reg:>18,.0f}{node_reg:>27,.0f}{gh_reg / node_reg:>8.1f}x")
print(f"{'metadata':<14}{gh_meta:>18,.0f}{node_meta:>27,.0f}{gh_meta / node_meta:>8.1f}x")
print(f"gatehouse RSS under load: {rss_kib / 1024:.1f} MiB (peak {hwm_kib / 1024:.1f} MiB)")
PY
