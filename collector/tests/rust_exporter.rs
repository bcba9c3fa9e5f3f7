//! The official Rust exporters (opentelemetry-otlp: tonic for gRPC, reqwest for
//! HTTP protobuf and HTTP JSON) sending to the collector through the SDK's batch
//! processor, as an application using them directly would.

use std::time::Duration;

use instgo_collector::{start, Config};
use opentelemetry::trace::{Tracer, TracerProvider as _};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;

fn send(service: &str, exporter: SpanExporter) {
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(service.to_string())
                .build(),
        )
        .build();
    let tracer = provider.tracer("interop");
    tracer.in_span("parent", |cx| {
        tracer.start_with_context("child", &cx);
    });
    provider.force_flush().unwrap();
    provider.shutdown().unwrap();
}

#[test]
fn opentelemetry_otlp_over_grpc_http_protobuf_and_http_json() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let any = "127.0.0.1:0".parse().ok();
    let running = rt
        .block_on(start(Config {
            grpc: any,
            http: any,
            ui: None,
            ..Config::default()
        }))
        .unwrap();
    let (grpc, http) = (running.grpc.unwrap(), running.http.unwrap());

    // tonic's channel lives on a tokio runtime: build it inside one.
    let exporter = rt
        .block_on(async {
            SpanExporter::builder()
                .with_tonic()
                .with_endpoint(format!("http://{grpc}"))
                .build()
        })
        .unwrap();
    send("rust-grpc", exporter);
    for (service, protocol) in [
        ("rust-http-protobuf", Protocol::HttpBinary),
        ("rust-http-json", Protocol::HttpJson),
    ] {
        let exporter = SpanExporter::builder()
            .with_http()
            .with_protocol(protocol)
            .with_endpoint(format!("http://{http}/v1/traces"))
            .build()
            .unwrap();
        send(service, exporter);
    }

    let mut found = Vec::new();
    for _ in 0..100 {
        found = running.store.search(&Default::default());
        if found.len() >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut services: Vec<&str> = found.iter().map(|t| t.service.as_str()).collect();
    services.sort();
    assert_eq!(
        services,
        ["rust-grpc", "rust-http-json", "rust-http-protobuf"]
    );
    for t in &found {
        let spans = running.store.trace(&t.trace_id).unwrap();
        let parent = spans.iter().find(|s| s.name == "parent").unwrap();
        let child = spans.iter().find(|s| s.name == "child").unwrap();
        assert_eq!(child.parent_id, parent.span_id, "{}", t.service);
    }
    rt.block_on(running.stop());
}
