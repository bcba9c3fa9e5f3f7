//! An app instrumented by hand with `tracing` and tracing-opentelemetry, exporting its
//! spans with its own SDK, built with `cargo instrument`: its spans and the injected ones
//! make one tree (main → tracing spans → instrumented functions). It prints its own spans
//! as `span NAME TRACE SPAN PARENT` for the test to join with the receiver's.

use std::future::Future;
use std::sync::{Arc, Mutex};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracing::Instrument as _;
use tracing_subscriber::layer::SubscriberExt as _;

#[derive(Debug, Clone, Default)]
struct Collect(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Collect {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        self.0.lock().unwrap().extend(batch);
        std::future::ready(Ok(()))
    }
}

#[tracing::instrument]
fn inner(n: u64) -> u64 {
    rt_work::crunch(n)
}

#[tracing::instrument]
async fn serve(n: u32) -> u32 {
    rt_work::handle(n).await
}

fn main() {
    let seen = Collect::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(seen.clone())
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("mixed"));
    let subscriber = tracing_subscriber::registry().with(layer);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let total = tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("tracing-work");
        let _entered = span.enter();
        let a = rt_work::crunch(1) + inner(2);
        let b = rt.block_on(serve(40).instrument(tracing::info_span!("request")));
        a + u64::from(b)
    });
    provider.shutdown().unwrap();
    println!("mixed: {total}");
    for s in seen.0.lock().unwrap().iter() {
        println!(
            "span {} {} {} {}",
            s.name,
            s.span_context.trace_id(),
            s.span_context.span_id(),
            s.parent_span_id
        );
    }
}
