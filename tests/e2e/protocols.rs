//! The three OTLP protocols the runtime speaks (`OTEL_EXPORTER_OTLP_PROTOCOL`), each
//! against a receiver that decodes it with code we did not write: protobuf with prost,
//! JSON with opentelemetry-proto's serde support, gRPC with tonic. Every protocol must
//! deliver the same spans as the default one.

use std::process::Command;
use std::time::Duration;

use crate::receiver::{Receiver, Span};
use crate::{binaries, export_to, lock, run, text};

/// Runs the instrumented shapes app against `rx` with `env`, and returns what arrived
/// once the last span and a self-metric are in.
fn deliver(rx: &Receiver, env: &[(&str, &str)]) -> Vec<Span> {
    let (_, inst) = binaries();
    let mut c = Command::new(inst);
    export_to(&mut c, &rx.endpoint).envs(env.iter().copied());
    let out = run(&mut c);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("instgo:"),
        "the runtime complained: {}",
        text(&out.stderr)
    );
    let points = rx.wait_for_points(Duration::from_secs(10), |p| {
        p.iter()
            .any(|x| x.metric == "otel.sdk.processor.span.processed")
    });
    assert!(!points.is_empty(), "no self-metric arrived over {env:?}");
    rx.wait_for(Duration::from_secs(10), |s| {
        s.iter().any(|x| x.name == "on_thread")
    })
}

/// What must be the same whatever the wire: names, kinds, parent links, attributes,
/// status, events, resource.
fn shape(spans: &[Span]) -> Vec<String> {
    let name_of = |id: &[u8]| {
        spans
            .iter()
            .find(|p| p.span_id == id)
            .map_or("-", |p| p.name.as_str())
    };
    let mut out: Vec<String> = spans
        .iter()
        .map(|s| {
            let mut attrs: Vec<_> = s
                .attributes
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            attrs.sort();
            format!(
                "{} kind={} parent={} status={}:{} events={:?} attrs={attrs:?} service={:?}",
                s.name,
                s.kind,
                name_of(&s.parent_span_id),
                s.status_code,
                s.status_message,
                s.events,
                s.resource_attr("service.name"),
            )
        })
        .collect();
    out.sort();
    out
}

fn baseline() -> Vec<String> {
    let rx = Receiver::start();
    let spans = deliver(&rx, &[]);
    assert!(
        rx.formats().iter().all(|f| f == "http/protobuf"),
        "{:?}",
        rx.formats()
    );
    shape(&spans)
}

#[test]
fn http_json_delivers_what_protobuf_does() {
    let _l = lock();
    let want = baseline();
    for (compression, format) in [("none", "http/json"), ("gzip", "http/json+gzip")] {
        let rx = Receiver::start();
        let spans = deliver(
            &rx,
            &[
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
                ("OTEL_EXPORTER_OTLP_COMPRESSION", compression),
            ],
        );
        assert_eq!(shape(&spans), want, "{format}");
        let formats = rx.formats();
        assert!(
            !formats.is_empty() && formats.iter().all(|f| f == format),
            "{formats:?}"
        );
    }
}

#[test]
fn grpc_delivers_what_protobuf_does_with_metadata_and_gzip() {
    let _l = lock();
    let want = baseline();
    for (compression, format) in [("none", "grpc"), ("gzip", "grpc+gzip")] {
        let rx = Receiver::start_grpc();
        let spans = deliver(
            &rx,
            &[
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_COMPRESSION", compression),
                (
                    "OTEL_EXPORTER_OTLP_HEADERS",
                    "x-tenant=blue,authorization=Bearer%20t0k",
                ),
            ],
        );
        assert_eq!(shape(&spans), want, "{format}");
        let formats = rx.formats();
        assert!(
            !formats.is_empty() && formats.iter().all(|f| f == format),
            "{formats:?}"
        );
        let md = rx.metadata();
        assert!(md.contains(&"x-tenant=blue".to_string()), "{md:?}");
        assert!(
            md.contains(&"authorization=Bearer t0k".to_string()),
            "{md:?}"
        );
        assert!(md.iter().any(|m| m.starts_with("grpc-timeout=")), "{md:?}");
    }
}

/// The signal-specific variables win over the general one, for gRPC as for HTTP.
#[test]
fn grpc_per_signal_endpoint_and_protocol() {
    let _l = lock();
    let grpc = Receiver::start_grpc();
    let http = Receiver::start();
    let (_, inst) = binaries();
    let mut c = Command::new(inst);
    export_to(&mut c, &http.endpoint)
        .env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")
        .env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &grpc.endpoint);
    let out = run(&mut c);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let spans = grpc.wait_for(Duration::from_secs(10), |s| {
        s.iter().any(|x| x.name == "on_thread")
    });
    assert!(spans.iter().any(|s| s.name == "on_thread"));
    // Metrics kept the general settings: OTLP/HTTP protobuf to the other receiver.
    let points = http.wait_for_points(Duration::from_secs(10), |p| !p.is_empty());
    assert!(!points.is_empty());
    assert!(http.formats().iter().all(|f| f == "http/protobuf"));
    assert!(grpc.formats().iter().all(|f| f == "grpc"));
}

/// gRPC pointed at an OTLP/HTTP port: the program is unchanged and the warning says what
/// is wrong instead of a framing error.
#[test]
fn grpc_to_an_http1_port_says_so() {
    let _l = lock();
    let (plain, inst) = binaries();
    let http = Receiver::start();
    let p = run(&mut Command::new(plain));
    let mut c = Command::new(inst);
    export_to(&mut c, &http.endpoint).env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc");
    let i = run(&mut c);
    assert!(i.status.success());
    assert_eq!(text(&p.stdout), text(&i.stdout));
    let err = text(&i.stderr);
    assert!(err.contains("(grpc)") && err.contains("HTTP/1"), "{err}");
    assert!(http.formats().is_empty());
}
