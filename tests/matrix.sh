#!/usr/bin/env bash
# The version matrix of the framework rules: examples/http against the lowest and the
# latest release of each axum and reqwest line the catalog claims, examples/grpc against
# each tonic line (0.12, 0.13, 0.14), examples/clients against the lowest ureq 2 and 3,
# examples/carriers against the lowest tokio and rayon-core, examples/services against the
# lowest actix-web 4; each instrumented with --strict and checked by the same end-to-end
# test as in CI (tests/e2e/http.rs, grpc.rs, clients.rs, carriers.rs, services.rs). Too slow for every CI run (each line is a
# fresh build of the frameworks); run it when a rule or a range changes:
#   bash tests/matrix.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/instgo-rs/target}"
# Each line: features | versions pinned (PKG@FROM=TO, as `cargo update -p PKG@FROM
# --precise TO`); empty features are the example's defaults, no pins its latest releases.
http=(
    "axum07 reqwest011|axum@0.7.9=0.7.0 reqwest@0.11.27=0.11.0"
    "axum07 reqwest011|"
    "axum08 reqwest012|axum@0.8.9=0.8.0 reqwest@0.12.28=0.12.0"
    "axum08 reqwest012|"
    "axum08 reqwest013|reqwest@0.13.5=0.13.0"
    "axum08 reqwest013|"
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
# examples/services (actix-web 4, tonic 0.14 and their neighbours): the lowest releases
# the actix-web and tonic rules claim on the lines whose glue the example is written in.
clients=(
    "|ureq@2.12.1=2.1.0 ureq@3.5.1=3.0.0"
    "|"
)
carriers=(
    "|tokio@1.54.1=1.0.0 rayon@1.12.0=1.3.0 rayon-core@1.13.0=1.7.0"
    "joinset|tokio@1.54.1=1.28.0"
    "joinset|"
)
services=(
    "|actix-web@4.18.1=4.0.0 tonic-prost@0.14.9=0.14.0 tonic@0.14.9=0.14.0"
    "|"
)
failed=0
# One line of an example's matrix: its e2e test module, told what to build through
# INSTGO_<EXAMPLE>_FEATURES and INSTGO_<EXAMPLE>_PRECISE.
line() {
    local example=$1 features="${2%%|*}" precise="${2#*|}" var
    var=$(printf %s "$example" | tr '[:lower:]' '[:upper:]')
    echo "=== $example: features ${features:-default}; pinned ${precise:-latest}"
    if env "INSTGO_${var}_FEATURES=$features" "INSTGO_${var}_PRECISE=$precise" \
        cargo test -q -p instgo-rs --test e2e -- "$example::" 2>&1 | tail -n 3; then
        :
    else
        failed=1
    fi
}
for l in "${http[@]}"; do line http "$l"; done
for l in "${grpc[@]}"; do line grpc "$l"; done
for l in "${clients[@]}"; do line clients "$l"; done
for l in "${carriers[@]}"; do line carriers "$l"; done
for l in "${services[@]}"; do line services "$l"; done
exit $failed
