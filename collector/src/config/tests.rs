use super::*;

const EXAMPLE: &str = "\
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:14317 }
      http:
        endpoint: 127.0.0.1:14318
processors:
  batch: { send_batch_size: 100, timeout: 50ms }
  memory_limiter: { limit_mib: 64 }
exporters:
  debug: { verbosity: detailed }
  file: { path: out.jsonl, rotation: { max_megabytes: 5, max_backups: 1 } }
  otlp/gateway:
    endpoint: grpc://gateway:4317
    sending_queue: { storage: /tmp/q }
service:
  pipelines:
    traces: { receivers: [otlp], processors: [memory_limiter, batch], exporters: [debug, file, otlp/gateway] }
    metrics: { receivers: [otlp], exporters: [otlp/gateway] }
viewer: { endpoint: 127.0.0.1:14319, max_traces: 50 }
";

fn parse_err(text: &str) -> String {
    parse(text, "c.yaml", Path::new("."))
        .unwrap_err()
        .to_string()
}

#[test]
fn the_documented_shape() {
    let c = parse(EXAMPLE, "c.yaml", Path::new(".")).unwrap();
    assert_eq!(c.grpc, "127.0.0.1:14317".parse().ok());
    assert_eq!(c.http, "127.0.0.1:14318".parse().ok());
    assert_eq!(c.ui, "127.0.0.1:14319".parse().ok());
    assert_eq!(c.max_traces, 50);
    assert_eq!(c.limits.batch_size, 100);
    assert_eq!(c.limits.batch_timeout, Duration::from_millis(50));
    assert_eq!(c.limits.memory_limit, 64 * 1024 * 1024);
    let by_name = |n: &str| c.exporters.iter().find(|e| e.name == n).unwrap();
    assert_eq!(by_name("debug").signals, [Signal::Traces]);
    let gateway = &by_name("otlp/gateway").signals;
    assert!(
        gateway.len() == 2
            && gateway.contains(&Signal::Traces)
            && gateway.contains(&Signal::Metrics)
    );
    assert_eq!(
        by_name("otlp/gateway").kind,
        ExporterKind::Otlp {
            endpoint: "grpc://gateway:4317".into(),
            queue: Some("/tmp/q".into()),
            options: Default::default(),
        }
    );
    match &by_name("file").kind {
        ExporterKind::File { rotation, .. } => {
            assert_eq!(
                (rotation.max_bytes, rotation.max_backups),
                (5 * 1024 * 1024, 1)
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_keys_are_errors_with_a_position() {
    let e = parse_err(&EXAMPLE.replace("verbosity: detailed", "verbosty: detailed"));
    assert!(e.starts_with("c.yaml:11:"), "{e}");
    assert!(e.contains("unknown field `verbosty`"), "{e}");
    let e = parse_err(&format!("{EXAMPLE}extensions: {{}}\n"));
    assert!(
        e.starts_with("c.yaml:21:1: unknown field `extensions`"),
        "{e}"
    );
}

#[test]
fn references_and_values_are_checked_where_they_are() {
    let e = parse_err(&EXAMPLE.replace("exporters: [otlp/gateway]", "exporters: [otlp/nowhere]"));
    assert_eq!(
        e,
        "c.yaml:19:47: pipeline \"metrics\": no exporter \"otlp/nowhere\" is configured"
    );
    let e = parse_err(&EXAMPLE.replace("timeout: 50ms", "timeout: soon"));
    assert!(e.starts_with("c.yaml:8:"), "{e}");
    let e = parse_err(&EXAMPLE.replace("127.0.0.1:14318", "localhost"));
    assert!(
        e.starts_with("c.yaml:6:") && e.contains("is not HOST:PORT"),
        "{e}"
    );
    let e = parse_err(&EXAMPLE.replace("grpc://gateway:4317", "ftp://gateway"));
    assert!(e.starts_with("c.yaml:14:"), "{e}");
}

#[test]
fn env_and_file_substitution() {
    std::env::set_var("INSTGO_TEST_GATEWAY", "grpc://from-env:4317");
    let dir = std::env::temp_dir().join(format!("instgo-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("path.txt"), "from-file.jsonl\n").unwrap();
    let text = EXAMPLE
        .replace("grpc://gateway:4317", "${env:INSTGO_TEST_GATEWAY}")
        .replace("out.jsonl", "${file:path.txt}");
    let c = parse(&text, "c.yaml", &dir).unwrap();
    let kinds: Vec<_> = c.exporters.iter().map(|e| e.kind.clone()).collect();
    assert!(kinds.contains(&ExporterKind::Otlp {
        endpoint: "grpc://from-env:4317".into(),
        queue: Some("/tmp/q".into()),
        options: Default::default(),
    }));
    assert!(kinds.iter().any(
        |k| matches!(k, ExporterKind::File { path, .. } if path == Path::new("from-file.jsonl"))
    ));
    let e = parse(
        &EXAMPLE.replace("50ms", "${env:INSTGO_TEST_UNSET_VARIABLE}"),
        "c.yaml",
        &dir,
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "c.yaml:8:43: ${env:INSTGO_TEST_UNSET_VARIABLE}: the variable is not set"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
