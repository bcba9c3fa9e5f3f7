//! Per-call cost of an instrumented function against the plain one, in one run:
//! switched off, on but not sampled, sampled (sync and async), and the same span written
//! by hand with opentelemetry_sdk and with tracing + tracing-opentelemetry.
//!
//! Run with `bash bench/run.sh` (it sets the environment the runtime reads at start).

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use criterion::{criterion_group, criterion_main, Criterion};
use instgo_bench::*;
use opentelemetry::trace::TracerProvider as _;

fn poll_once<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("the benchmarked futures are ready at once"),
    }
}

/// A provider like the runtime's: batch processor, exporter that keeps nothing.
fn sdk_provider() -> opentelemetry_sdk::trace::SdkTracerProvider {
    #[derive(Debug)]
    struct Discard;
    impl opentelemetry_sdk::trace::SpanExporter for Discard {
        fn export(
            &self,
            _: Vec<opentelemetry_sdk::trace::SpanData>,
        ) -> impl Future<Output = opentelemetry_sdk::error::OTelSdkResult> + Send {
            std::future::ready(Ok(()))
        }
    }
    opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(Discard)
        .build()
}

fn spans(c: &mut Criterion) {
    instgo_runtime::control::set_rule_switches(None, vec!["bench-off".into()]);
    let mut g = c.benchmark_group("span");
    g.bench_function("plain", |b| b.iter(|| plain(black_box(7))));
    g.bench_function("instgo_off", |b| b.iter(|| rewritten_off(black_box(7))));
    instgo_runtime::control::set_sampling_ratio(0.0);
    g.bench_function("instgo_not_sampled", |b| b.iter(|| rewritten(black_box(7))));
    instgo_runtime::control::set_sampling_ratio(1.0);
    g.bench_function("instgo_sampled", |b| b.iter(|| rewritten(black_box(7))));
    g.bench_function("instgo_sampled_async", |b| {
        b.iter(|| poll_once(rewritten_async(black_box(7))))
    });
    g.bench_function("plain_async", |b| {
        b.iter(|| poll_once(async { plain(black_box(7)) }))
    });

    let provider = sdk_provider();
    let tracer = provider.tracer("bench");
    g.bench_function("hand_sdk_sampled", |b| {
        b.iter(|| hand_sdk(&tracer, black_box(7)))
    });

    use tracing_subscriber::layer::SubscriberExt;
    let tp = sdk_provider();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(tp.tracer("bench")));
    tracing::subscriber::with_default(subscriber, || {
        g.bench_function("tracing_opentelemetry_sampled", |b| {
            b.iter(|| with_tracing(black_box(7)))
        });
    });
    g.finish();
}

criterion_group!(benches, spans);
criterion_main!(benches);
