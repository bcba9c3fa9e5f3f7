#!/usr/bin/env bash
# The main job end to end on the embedded defaults: build the tool; build the
# three-service example (examples/services: gateway on axum + reqwest, orders on
# actix-web + tonic, inventory on tonic) instrumented with no rules file and no change to
# its files; start the bundled collector; start the three services (they send to the
# collector's default OTLP/HTTP address); make two requests to the gateway; print the
# traces as the collector received them: one trace per request, across the three.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p instgo-rs
tool="$repo/target/release/cargo-instrument"
cd "$repo/examples/services"
"$tool" instrument build
bin="$repo/examples/services/target/instrument/debug"
work="$(mktemp -d)"
pids=()
cleanup() {
    # The services first: the collector goes last, so nothing they send is refused.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill "${pids[i]}" 2>/dev/null || true
        wait "${pids[i]}" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

# --storage off: this run's traces only (by default the viewer keeps them across restarts).
"$tool" instrument collector --storage off &
pids+=($!)
for _ in $(seq 50); do
    (exec 3<>/dev/tcp/127.0.0.1/4318) 2>/dev/null && break
    kill -0 "${pids[0]}" 2>/dev/null || { echo "the collector did not start" >&2; exit 1; }
    sleep 0.2
done

# Starts service $1 (environment: the rest) in the background and sets `addr` to the
# address it prints first.
launch() {
    local name=$1; shift
    env OTEL_SERVICE_NAME="$name" OTEL_BSP_SCHEDULE_DELAY=200 "$@" "$bin/$name" > "$work/$name.out" &
    pids+=($!)
    for _ in $(seq 100); do
        addr="$(head -n 1 "$work/$name.out" 2>/dev/null)"
        [ -n "$addr" ] && { addr="${addr#listening on }"; return; }
        sleep 0.1
    done
    echo "$name did not start" >&2
    exit 1
}
launch inventory
launch orders INVENTORY_URL="http://$addr"
launch gateway ORDERS_URL="http://$addr"
gateway="$addr"

request() {
    exec 3<>"/dev/tcp/${gateway%:*}/${gateway#*:}"
    printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$1" "$gateway" >&3
    local answer
    answer="$(cat <&3)"
    exec 3<&-
    echo "GET $1 -> $(head -n 1 <<<"$answer" | tr -d '\r')  ${answer##*$'\r\n\r\n'}"
}
echo "--- requests to the gateway ($gateway) ---"
request /checkout/widget
request /checkout/gadget

echo "--- their traces, from the bundled collector (viewer: http://127.0.0.1:4319) ---"
# The services export every 200 ms and the collector batches for 200 ms: print once two
# looks agree.
out=""
for _ in $(seq 100); do
    sleep 0.3
    now="$("$tool" instrument traces --service gateway --last 2 2>/dev/null)"
    [ -n "$now" ] && [ "$now" = "$out" ] && [ "$(grep -c '^trace' <<<"$now")" = 2 ] && break
    out="$now"
done
echo "$out"
echo "--- the ones with errors ---"
"$tool" instrument traces --service gateway --errors --last 5
