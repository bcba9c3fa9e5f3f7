//! Forwarding upstream, collector to collector: over OTLP/HTTP and OTLP/gRPC, and through
//! the on-disk queue across a stop while the upstream is down.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use instgo_collector::{start, Config, Running};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

mod common;

fn request(service: &str, trace: u8) -> Vec<u8> {
    let span = Span {
        trace_id: vec![trace; 16],
        span_id: vec![1; 8],
        name: format!("op {trace}"),
        start_time_unix_nano: 1,
        end_time_unix_nano: 2,
        ..Default::default()
    };
    common::export(service, vec![span]).encode_to_vec()
}

fn post(addr: SocketAddr, body: Vec<u8>) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(&body).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out[9..12].parse().unwrap()
}

fn local(port: u16) -> Option<SocketAddr> {
    format!("127.0.0.1:{port}").parse().ok()
}

fn collector(http: u16, grpc: u16) -> Config {
    Config {
        grpc: local(grpc),
        http: local(http),
        ui: None,
        ..Config::default()
    }
}

async fn services(c: &Running, want: usize) -> Vec<String> {
    for _ in 0..200 {
        let mut s: Vec<String> = c
            .store
            .search(&Default::default())
            .into_iter()
            .map(|t| t.service)
            .collect();
        if s.len() >= want {
            s.sort();
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {want} traces upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_over_http_and_grpc() {
    let upstream = start(collector(0, 0)).await.unwrap();
    let mut agents = Vec::new();
    for url in [
        format!("http://{}", upstream.http.unwrap()),
        format!("grpc://{}", upstream.grpc.unwrap()),
    ] {
        let mut c = collector(0, 0);
        c.grpc = None;
        c.forward = Some(url);
        agents.push(start(c).await.unwrap());
    }
    for (i, a) in agents.iter().enumerate() {
        let addr = a.http.unwrap();
        let body = request(&format!("via-{i}"), i as u8 + 1);
        let code = tokio::task::spawn_blocking(move || post(addr, body))
            .await
            .unwrap();
        assert_eq!(code, 200);
    }
    assert_eq!(services(&upstream, 2).await, ["via-0", "via-1"]);
    for a in agents {
        a.stop().await;
    }
    upstream.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disk_queue_keeps_what_was_acknowledged_until_the_upstream_is_back() {
    let dir = std::env::temp_dir().join(format!("instgo-forward-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // The upstream's port, with nothing listening yet.
    let up_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let agent_config = || {
        let mut c = collector(0, 0);
        c.grpc = None;
        c.forward = Some(format!("http://127.0.0.1:{up_port}"));
        c.forward_queue = Some(dir.clone());
        c
    };
    let agent = start(agent_config()).await.unwrap();
    let addr = agent.http.unwrap();
    for i in 0..3u8 {
        let code = tokio::task::spawn_blocking(move || {
            post(addr, request(&format!("queued-{i}"), i + 10))
        })
        .await
        .unwrap();
        assert_eq!(code, 200);
    }
    agent.stop().await;

    let upstream = start(collector(up_port, 0)).await.unwrap();
    let agent = start(agent_config()).await.unwrap();
    assert_eq!(
        services(&upstream, 3).await,
        ["queued-0", "queued-1", "queued-2"]
    );
    // Delivered: a third start sends nothing twice.
    agent.stop().await;
    let agent = start(agent_config()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let spans: usize = upstream
        .store
        .search(&Default::default())
        .iter()
        .map(|t| t.spans)
        .sum();
    assert_eq!(spans, 3);
    agent.stop().await;
    upstream.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_forward_settings_are_named() {
    let mut c = collector(0, 0);
    c.forward = Some("ftp://collector.example:4318".into());
    let e = start(c).await.err().unwrap().to_string();
    assert!(
        e.starts_with("--forward: ftp://collector.example:4318: forward to http(s)://"),
        "{e}"
    );
    let mut c = collector(0, 0);
    c.forward_queue = Some(std::env::temp_dir());
    let e = start(c).await.err().unwrap().to_string();
    assert!(e.contains("--forward-queue needs --forward"), "{e}");
}

/// An upstream behind TLS (its own CA) and a token: forwarding trusts the CA file and
/// sends the token, over OTLP/HTTP and over gRPC; without the token it is refused for
/// good, not retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_over_tls_with_headers() {
    use instgo_collector::exporter::ForwardOptions;
    let dir = std::env::temp_dir().join(format!("instgo-forward-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), certified.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), certified.key_pair.serialize_pem()).unwrap();
    let upstream = start(Config {
        tls: Some(instgo_collector::tls::TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }),
        token: Some("up-token".into()),
        ..collector(0, 0)
    })
    .await
    .unwrap();
    let (up_http, up_grpc) = (upstream.http.unwrap().port(), upstream.grpc.unwrap().port());
    let options = |token: &str| ForwardOptions {
        headers: vec![("authorization".into(), format!("Bearer {token}"))],
        ca_file: Some(dir.join("cert.pem")),
    };
    let mut agents = Vec::new();
    for (i, (url, token)) in [
        (format!("https://localhost:{up_http}"), "up-token"),
        (format!("grpcs://localhost:{up_grpc}"), "up-token"),
        (format!("https://localhost:{up_http}"), "wrong"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = collector(0, 0);
        c.grpc = None;
        c.forward = Some(url);
        c.forward_options = options(token);
        let agent = start(c).await.unwrap();
        let addr = agent.http.unwrap();
        let body = request(&format!("tls-{i}"), 40 + i as u8);
        assert_eq!(
            tokio::task::spawn_blocking(move || post(addr, body))
                .await
                .unwrap(),
            200
        );
        agents.push(agent);
    }
    assert_eq!(services(&upstream, 2).await, ["tls-0", "tls-1"]);
    // The wrong token: refused for good (401), counted as dropped, not retried for a minute.
    let refused = &agents[2].forward.as_ref().unwrap().dropped;
    for _ in 0..100 {
        if refused.load(std::sync::atomic::Ordering::Relaxed) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(refused.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(upstream.store.search(&Default::default()).len(), 2);
    for a in agents {
        a.stop().await;
    }
    upstream.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
