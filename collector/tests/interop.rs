//! The official OpenTelemetry Python SDK exporters from PyPI
//! (`opentelemetry-exporter-otlp-proto-http` and `-proto-grpc`) sending to the collector.
//!
//! Needs a Python with those packages: `.ci/run` makes one and runs this test with
//! `INSTGO_PYTHON` pointing at it (`cargo test -p instgo-collector --test interop --
//! --ignored`). Run without it, the test fails and says so.

use std::process::Command;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use instgo_collector::signal::Signal;
use instgo_collector::{start, Config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs INSTGO_PYTHON with the OTLP exporters; .ci/run provides it"]
async fn python_sdk_exporters_over_http_and_grpc() {
    let python = std::env::var("INSTGO_PYTHON").expect(
        "INSTGO_PYTHON must name a python with opentelemetry-exporter-otlp-proto-http and \
         -proto-grpc installed (.ci/run makes one)",
    );
    let any = "127.0.0.1:0".parse().ok();
    let running = start(Config {
        grpc: any,
        http: any,
        ui: None,
        ..Config::default()
    })
    .await
    .unwrap();
    // Where the package is now (cargo sets this for the test process): a binary reused
    // from a shared target directory may have been compiled in another checkout.
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR").into());
    let script = format!("{dir}/tests/python/send.py");
    for (protocol, endpoint, service) in [
        (
            "http",
            format!("http://{}", running.http.unwrap()),
            "py-http",
        ),
        ("grpc", running.grpc.unwrap().to_string(), "py-grpc"),
    ] {
        let out = tokio::task::spawn_blocking({
            let python = python.clone();
            let script = script.clone();
            move || {
                Command::new(python)
                    .args([&script, protocol, &endpoint, service])
                    .output()
                    .unwrap()
            }
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "{protocol}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut found = Vec::new();
    for _ in 0..100 {
        found = running.store.search(&Default::default());
        if found.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut services: Vec<&str> = found.iter().map(|t| t.service.as_str()).collect();
    services.sort();
    assert_eq!(services, ["py-grpc", "py-http"]);
    for t in &found {
        assert_eq!(
            (t.root.as_str(), t.spans, t.errors),
            ("GET /python", 2, 1),
            "{t:?}"
        );
        let spans = running.store.trace(&t.trace_id).unwrap();
        let child = spans.iter().find(|s| s.name == "call upstream").unwrap();
        let root = spans.iter().find(|s| s.name == "GET /python").unwrap();
        assert_eq!(child.parent_id, root.span_id);
        assert_eq!((root.kind, child.kind), (2, 3));
        assert_eq!(child.status_message, "upstream said no");
        assert_eq!(root.attr("http.request.method"), Some("GET"));
    }
    // The counter came too: the script fails unless each flush was accepted, and the
    // SDK exports once more at shutdown.
    assert!(running.pipeline.accepted(Signal::Metrics) >= 2);
    assert_eq!(running.pipeline.refused.load(Relaxed), 0);
    running.stop().await;
}
