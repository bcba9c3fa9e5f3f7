//! Per-call cost of an instrumented function against the plain one, in one run:
//! switched off, on but not sampled, sampled (sync and async), and the same span written
//! by hand with opentelemetry_sdk and with tracing + tracing-opentelemetry.
//!
//! Run with `python3 bench/run.py span` (it sets the environment the runtime reads at start).

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use criterion::{criterion_group, criterion_main, Criterion};
use instgo_bench::*;
use std::time::{Duration, Instant};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

fn poll_once<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("the benchmarked futures are ready at once"),
    }
}

/// A provider like the runtime's: batch processor, exporter that keeps nothing.
fn sdk_provider(sampler: Sampler) -> opentelemetry_sdk::trace::SdkTracerProvider {
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
        .with_sampler(sampler)
        .build()
}

/// Spans between two flushes: every sampled span is exported, none dropped (run.py sets
/// `OTEL_BSP_MAX_QUEUE_SIZE` above it for the runtime and the baselines alike), so each
/// side pays for its whole batch path and not for a full queue's cheap refusal.
const CHUNK: u64 = 16 * 1024;

/// Times `iters` calls of `f`, flushing every [`CHUNK`] calls and at the end, so the
/// time includes exporting what the calls produced.
fn exported(b: &mut criterion::Bencher<'_>, flush: &dyn Fn(), mut f: impl FnMut()) {
    b.iter_custom(|iters| {
        let start = Instant::now();
        for i in 0..iters {
            f();
            if i % CHUNK == CHUNK - 1 {
                flush();
            }
        }
        flush();
        start.elapsed()
    })
}

/// A provider's flush on a thread of its own, as the runtime's `control::flush` does it,
/// so both sides pay the same for the flushes.
fn flusher(p: SdkTracerProvider) -> impl Fn() {
    move || {
        let p = p.clone();
        std::thread::spawn(move || p.force_flush())
            .join()
            .unwrap()
            .unwrap();
    }
}

fn spans(c: &mut Criterion) {
    instgo_runtime::control::set_rule_switches(None, vec!["bench-off".into()]);
    let rt_flush = || assert!(instgo_runtime::control::flush(Duration::from_secs(60)));
    let mut g = c.benchmark_group("span");
    g.bench_function("plain", |b| b.iter(|| plain(black_box(7))));
    g.bench_function("instgo_off", |b| b.iter(|| rewritten_off(black_box(7))));
    instgo_runtime::control::set_sampling_ratio(0.0);
    g.bench_function("instgo_not_sampled", |b| b.iter(|| rewritten(black_box(7))));
    instgo_runtime::control::set_sampling_ratio(1.0);
    g.bench_function("instgo_sampled", |b| {
        exported(b, &rt_flush, || {
            black_box(rewritten(black_box(7)));
        })
    });
    g.bench_function("instgo_sampled_async", |b| {
        exported(b, &rt_flush, || {
            black_box(poll_once(rewritten_async(black_box(7))));
        })
    });
    g.bench_function("plain_async", |b| {
        b.iter(|| poll_once(async { plain(black_box(7)) }))
    });

    let unsampled = sdk_provider(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
        0.0,
    ))));
    let tracer = unsampled.tracer("bench");
    g.bench_function("hand_sdk_not_sampled", |b| {
        b.iter(|| hand_sdk(&tracer, black_box(7)))
    });

    let provider = sdk_provider(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)));
    let tracer = provider.tracer("bench");
    let sdk_flush = flusher(provider.clone());
    g.bench_function("hand_sdk_sampled", |b| {
        exported(b, &sdk_flush, || {
            black_box(hand_sdk(&tracer, black_box(7)));
        })
    });

    use tracing_subscriber::layer::SubscriberExt;
    let tp = sdk_provider(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)));
    let tp_flush = flusher(tp.clone());
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(tp.tracer("bench")));
    tracing::subscriber::with_default(subscriber, || {
        g.bench_function("tracing_opentelemetry_sampled", |b| {
            exported(b, &tp_flush, || {
                black_box(with_tracing(black_box(7)));
            })
        });
    });
    g.finish();
}

criterion_group!(benches, spans);
criterion_main!(benches);
