//! A program with its own OpenTelemetry SDK, of another version than the instrumentation's:
//! each exports its own spans through its own provider, and the two make one tree
//! (`main` → the app's `app-own-work` → `handle`). Prints its spans as
//! `span NAME TRACE SPAN PARENT` for the test to join with the receiver's.

use std::future::Future;
use std::sync::{Arc, Mutex};

use opentelemetry::trace::Tracer as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};

#[derive(Debug, Clone, Default)]
struct Collect(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Collect {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        self.0.lock().unwrap().extend(batch);
        std::future::ready(Ok(()))
    }
}

fn main() {
    let seen = Collect::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(seen.clone())
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    let tracer = opentelemetry::global::tracer("own-otel");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let n = tracer.in_span("app-own-work", |_| rt.block_on(rt_work::handle(30)));
    provider.shutdown().unwrap();
    println!("own-otel: {n}");
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
