#!/usr/bin/env bash
# The version matrix of the HTTP rules: examples/http built against the lowest and the
# latest release of each axum and reqwest line the catalog claims, examples/grpc against
# each tonic line (0.12, 0.13, 0.14), and examples/services against the lowest actix-web 4,
# instrumented with --strict, and the same end-to-end assertions run on each
# (tests/e2e/http.rs, grpc.rs, services.rs). Too
# slow for every CI run (each line is a fresh build of the frameworks); run it when a
# rule or a range changes:  bash tests/matrix.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/instgo-rs/target}"
# features | versions pinned (PKG@FROM=TO, as `cargo update -p PKG@FROM --precise TO`)
lines=(
    "axum07 reqwest011|axum@0.7.9=0.7.0 reqwest@0.11.27=0.11.0"
    "axum07 reqwest011|"
    "axum08 reqwest012|axum@0.8.9=0.8.0 reqwest@0.12.28=0.12.0"
    "axum08 reqwest012|"
    "axum08 reqwest013|reqwest@0.13.5=0.13.0"
    "axum08 reqwest013|"
)
# examples/services (actix-web 4, tonic 0.14 and their neighbours): the lowest releases
# the actix-web and tonic rules claim on the lines whose glue the example is written in.
services=(
    "actix-web@4.18.1=4.0.0 tonic-prost@0.14.9=0.14.0 tonic@0.14.9=0.14.0"
    ""
)
# examples/grpc (tonic server and client): the lowest and the latest release of every tonic
# line the catalog claims, each with its own glue (feature).
grpc=(
    "tonic012|tonic@0.12.3=0.12.0"
    "tonic012|"
    "tonic013|tonic@0.13.1=0.13.0"
    "tonic013|"
    "tonic014|tonic-prost@0.14.9=0.14.0 tonic@0.14.9=0.14.0"
    "tonic014|"
)
failed=0
for line in "${grpc[@]}"; do
    features="${line%%|*}"
    precise="${line#*|}"
    echo "=== grpc features: $features; pinned: ${precise:-latest}"
    if INSTGO_GRPC_FEATURES="$features" INSTGO_GRPC_PRECISE="$precise" \
        cargo test -q -p instgo-rs --test e2e -- grpc:: 2>&1 | tail -n 3; then
        :
    else
        failed=1
    fi
done
for precise in "${services[@]}"; do
    echo "=== services; pinned: ${precise:-latest}"
    if INSTGO_SERVICES_PRECISE="$precise" \
        cargo test -q -p instgo-rs --test e2e -- services:: 2>&1 | tail -n 3; then
        :
    else
        failed=1
    fi
done
for line in "${lines[@]}"; do
    features="${line%%|*}"
    precise="${line#*|}"
    echo "=== features: $features; pinned: ${precise:-latest}"
    if INSTGO_HTTP_FEATURES="$features" INSTGO_HTTP_PRECISE="$precise" \
        cargo test -q -p instgo-rs --test e2e -- http:: 2>&1 | tail -n 3; then
        :
    else
        failed=1
    fi
done
exit $failed
