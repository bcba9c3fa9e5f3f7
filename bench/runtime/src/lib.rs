//! The functions the span benchmark compares, written the way `cargo instrument` rewrites
//! them (see instgo-rs/tests/snapshots) and the ways people instrument by hand.

use std::hint::black_box;

use instgo_runtime::__private as rt;

/// The work every variant does: small, so that the instrumentation is what is measured.
#[inline(never)]
pub fn plain(x: u64) -> u64 {
    black_box(x).wrapping_mul(31).rotate_left(7)
}

macro_rules! site {
    ($rule:literal) => {{
        static SITE: rt::Site = rt::Site::new(
            $rule,
            "work",
            "bench::work",
            "src/lib.rs",
            1,
            rt::Kind::Internal,
        );
        &SITE
    }};
}

/// What the rewriter makes of `plain` (sync shape), under a rule of its own.
macro_rules! rewritten {
    ($(#[$doc:meta] $name:ident => $rule:literal;)*) => {$(
        #[$doc]
        #[inline(never)]
        pub fn $name(x: u64) -> u64 {
            let __instgo_cx = rt::enter(site!($rule));
            let __instgo_r: u64 = black_box(x).wrapping_mul(31).rotate_left(7);
            #[allow(unused_imports)]
            use rt::{ObserveAny as _, ObserveErrDebug as _, ObserveErrDisplay as _};
            (&&&rt::Observe(&__instgo_r)).__instgo_observe(&__instgo_cx);
            __instgo_r
        }
    )*};
}

rewritten! {
    /// Under rule `bench-on`.
    rewritten => "bench-on";
    /// Under rule `bench-off`, which the benchmark switches off.
    rewritten_off => "bench-off";
}

/// The async shape.
pub async fn rewritten_async(x: u64) -> u64 {
    let __instgo_cx = &rt::start_async(site!("bench-async"));
    __instgo_cx
        .instrument(async move { black_box(x).wrapping_mul(31).rotate_left(7) })
        .await
}

/// The same span written by hand with the OpenTelemetry SDK.
#[inline(never)]
pub fn hand_sdk(tracer: &opentelemetry_sdk::trace::SdkTracer, x: u64) -> u64 {
    use opentelemetry::trace::{TraceContextExt, Tracer};
    use opentelemetry::KeyValue;
    let span = tracer
        .span_builder("work")
        .with_kind(opentelemetry::trace::SpanKind::Internal)
        .with_attributes([
            KeyValue::new("code.function.name", "bench::work"),
            KeyValue::new("code.file.path", "src/lib.rs"),
            KeyValue::new("code.line.number", 1_i64),
        ])
        .start(tracer);
    let cx = opentelemetry::Context::current_with_span(span);
    let _guard = cx.clone().attach();
    let r = black_box(x).wrapping_mul(31).rotate_left(7);
    drop(_guard);
    cx.span().end();
    r
}

/// The usual way in Rust services: `#[tracing::instrument]` + tracing-opentelemetry.
#[tracing::instrument(skip_all, name = "work")]
#[inline(never)]
pub fn with_tracing(x: u64) -> u64 {
    black_box(x).wrapping_mul(31).rotate_left(7)
}
