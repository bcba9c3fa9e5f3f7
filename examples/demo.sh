#!/usr/bin/env bash
# The main job end to end on the embedded defaults: build the tool, build the shapes
# example instrumented (no change to its files), start the bundled collector, run the
# program (it sends to the collector's default OTLP/HTTP address), and print the trace
# as the collector received it.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p instgo-rs
tool="$repo/target/release/cargo-instrument"
cd "$repo/examples/shapes"
"$tool" instrument build

# --storage off: this run's traces only (by default the viewer keeps them across restarts).
"$tool" instrument collector --storage off &
collector=$!
trap 'kill $collector 2>/dev/null; wait $collector 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    (exec 3<>/dev/tcp/127.0.0.1/4318) 2>/dev/null && break
    kill -0 $collector 2>/dev/null || { echo "the collector did not start" >&2; exit 1; }
    sleep 0.2
done

echo "--- program output ---"
./target/instrument/debug/shapes-app
echo "--- its traces, from the bundled collector (viewer: http://127.0.0.1:4319) ---"
# The collector batches for 200 ms: print once two looks agree.
out=""
for _ in $(seq 50); do
    sleep 0.2
    now="$("$tool" instrument traces --service shapes-app --last 20 2>/dev/null)"
    [ -n "$now" ] && [ "$now" = "$out" ] && break
    out="$now"
done
echo "$out"
echo "--- the ones with errors ---"
"$tool" instrument traces --service shapes-app --errors --last 5
