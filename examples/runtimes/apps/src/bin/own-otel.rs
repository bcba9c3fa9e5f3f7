//! A program with its own OpenTelemetry SDK, of another version than the instrumentation's:
//! the two must not see each other's spans or share a global provider.

use std::future::Future;
use std::sync::{Arc, Mutex};

use opentelemetry::trace::Tracer as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};

#[derive(Debug, Clone, Default)]
struct Collect(Arc<Mutex<Vec<String>>>);

impl SpanExporter for Collect {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let names = batch.into_iter().map(|s| s.name.into_owned());
        self.0.lock().unwrap().extend(names);
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
    println!(
        "own-otel: {n}; the app's own exporter saw {:?}",
        seen.0.lock().unwrap()
    );
}
