#!/usr/bin/env bash
# The main job end to end on the embedded defaults: build the tool, build the shapes
# example instrumented (no change to its files), run it, and show the trace.
#
# Until the bundled collector exists, the trace goes to the console exporter (stderr).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p instgo-rs
tool="$repo/target/release/cargo-instrument"
cd "$repo/examples/shapes"
"$tool" instrument build
echo "--- program output (stdout), then its trace (stderr) ---"
OTEL_TRACES_EXPORTER=console OTEL_BSP_SCHEDULE_DELAY=100 ./target/instrument/debug/shapes-app
