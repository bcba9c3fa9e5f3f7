//! Sampled spans, paired: the runtime's rewritten call, the same span by hand with
//! opentelemetry_sdk, and tracing + tracing-opentelemetry, timed in alternating chunks
//! of calls (each chunk flushed, so every span is exported), in a rotating order.
//!
//! Criterion times each variant in a block of its own, seconds apart; on a shared 2-core
//! machine the load changes between blocks and moves a ratio by ±20 %. Here each round
//! times every variant back to back, so a ratio is taken between neighbours and the median
//! over rounds is what `bench/run.py` reports.
//!
//! Prints one JSON object: per variant the median ns per call, and per ratio the median
//! and the quartiles over rounds.

use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use instgo_bench::*;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_subscriber::layer::SubscriberExt;

const CHUNK: usize = 4096;
const ROUNDS: usize = 101;

fn poll_once<F: std::future::Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("the benchmarked futures are ready at once"),
    }
}

#[derive(Debug)]
struct Discard;

impl opentelemetry_sdk::trace::SpanExporter for Discard {
    fn export(
        &self,
        _: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> impl std::future::Future<Output = opentelemetry_sdk::error::OTelSdkResult> + Send {
        std::future::ready(Ok(()))
    }
}

fn provider() -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_batch_exporter(Discard)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
        .build()
}

/// A provider's flush on a thread of its own, as the runtime's `control::flush` does.
fn flush_provider(p: &SdkTracerProvider) {
    let p = p.clone();
    std::thread::spawn(move || p.force_flush())
        .join()
        .unwrap()
        .unwrap();
}

fn flush_runtime() {
    assert!(instgo_runtime::control::flush(Duration::from_secs(60)));
}

/// ns per call of one chunk of `f`, flush included.
fn chunk(mut f: impl FnMut(), flush: impl FnOnce()) -> f64 {
    let start = Instant::now();
    for _ in 0..CHUNK {
        f();
    }
    flush();
    start.elapsed().as_nanos() as f64 / CHUNK as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn quartiles(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    (v[n / 4], v[n / 2], v[3 * n / 4])
}

fn main() {
    // `cargo bench` passes `--bench`; nothing here takes arguments.
    instgo_runtime::control::set_sampling_ratio(1.0);
    let hand = provider();
    let hand_tracer = hand.tracer("bench");
    let traced = provider();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(traced.tracer("bench")));
    let dispatch = tracing::Dispatch::new(subscriber);

    const NAMES: [&str; 4] = [
        "instgo_sampled",
        "instgo_sampled_async",
        "hand_sdk_sampled",
        "tracing_opentelemetry_sampled",
    ];
    let run = |which: usize| -> f64 {
        match which {
            0 => chunk(
                || {
                    black_box(rewritten(black_box(7)));
                },
                flush_runtime,
            ),
            1 => chunk(
                || {
                    black_box(poll_once(rewritten_async(black_box(7))));
                },
                flush_runtime,
            ),
            2 => chunk(
                || {
                    black_box(hand_sdk(&hand_tracer, black_box(7)));
                },
                || flush_provider(&hand),
            ),
            _ => tracing::dispatcher::with_default(&dispatch, || {
                chunk(
                    || {
                        black_box(with_tracing(black_box(7)));
                    },
                    || flush_provider(&traced),
                )
            }),
        }
    };
    // `PAIRED_PROFILE=<variant>` runs one variant alone (`PAIRED_CHUNKS` chunks, default
    // 1000), for `perf record` or `valgrind --tool=callgrind`.
    if let Ok(name) = std::env::var("PAIRED_PROFILE") {
        let w = NAMES
            .iter()
            .position(|n| *n == name)
            .expect("a variant name");
        let chunks = std::env::var("PAIRED_CHUNKS").map_or(1000, |n| n.parse().unwrap());
        for _ in 0..chunks {
            run(w);
        }
        return;
    }
    // Warm-up: threads started, queues and allocator caches at their working size.
    for w in 0..4 {
        for _ in 0..10 {
            run(w);
        }
    }
    let mut ns: [Vec<f64>; 4] = Default::default();
    for round in 0..ROUNDS {
        for k in 0..4 {
            let w = (round + k) % 4;
            ns[w].push(run(w));
        }
    }
    let mut out = Vec::new();
    let ratio =
        |a: usize, b: usize| -> Vec<f64> { ns[a].iter().zip(&ns[b]).map(|(x, y)| x / y).collect() };
    for (label, a, b) in [
        ("instgo_sampled/hand_sdk_sampled", 0, 2),
        ("instgo_sampled_async/hand_sdk_sampled", 1, 2),
        ("instgo_sampled/tracing_opentelemetry_sampled", 0, 3),
    ] {
        let (q1, m, q3) = quartiles(&mut ratio(a, b));
        out.push(format!("\"{label}\": [{q1:.3}, {m:.3}, {q3:.3}]"));
    }
    for (name, v) in NAMES.iter().zip(ns.iter_mut()) {
        out.push(format!("\"{name}\": {:.1}", median(v)));
    }
    println!("{{{}}}", out.join(", "));
}
