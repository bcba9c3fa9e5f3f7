//! The receivers over real sockets: OTLP/HTTP with protobuf, JSON and gzip, OTLP/gRPC with
//! tonic's client; bad input answered with the right status while the collector keeps
//! serving; the memory limiter's retryable refusal; what arrived read back from the
//! viewer's API and the file exporter.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use instgo_collector::store::TraceSummary;
use instgo_collector::{start, Config, Running};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

mod common;

fn request(service: &str, trace: u8, names: &[&str]) -> ExportTraceServiceRequest {
    let spans = names
        .iter()
        .enumerate()
        .map(|(i, n)| Span {
            trace_id: vec![trace; 16],
            span_id: vec![i as u8 + 1; 8],
            parent_span_id: if i == 0 { vec![] } else { vec![1; 8] },
            name: n.to_string(),
            start_time_unix_nano: 1_000 + i as u64,
            end_time_unix_nano: 5_000_000,
            ..Default::default()
        })
        .collect();
    common::export(service, spans)
}

fn config(file: Option<std::path::PathBuf>) -> Config {
    let any = "127.0.0.1:0".parse().ok();
    Config {
        grpc: any,
        http: any,
        ui: any,
        file,
        max_body: 64 * 1024,
        ..Config::default()
    }
}

/// One HTTP/1.1 exchange; returns the status code and the body.
fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.as_bytes().to_vec())
        .unwrap_or_default();
    (status, body)
}

fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n").unwrap().1.to_string()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

async fn traces(running: &Running, want: usize) -> Vec<TraceSummary> {
    let ui = running.ui.unwrap();
    for _ in 0..100 {
        let body = tokio::task::spawn_blocking(move || get(ui, "/api/traces"))
            .await
            .unwrap();
        let list: Vec<TraceSummary> = serde_json::from_str(&body).unwrap();
        if list.len() >= want {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {want} traces arrived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_json_gzip_and_bad_input() {
    let dir = std::env::temp_dir().join(format!("instgo-receivers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let file = dir.join("out.jsonl");
    let running = start(config(Some(file.clone()))).await.unwrap();
    let http = running.http.unwrap();
    let pb = request("alpha", 1, &["GET /a", "db"]).encode_to_vec();
    let json = serde_json::to_vec(&request("beta", 2, &["POST /b"])).unwrap();
    let gz = gzip(&serde_json::to_vec(&request("gamma", 3, &["gz"])).unwrap());
    let results = tokio::task::spawn_blocking(move || {
        let proto = [("Content-Type", "application/x-protobuf")];
        let js = [("Content-Type", "application/json")];
        vec![
            post(http, "/v1/traces", &proto, &pb),
            post(http, "/v1/traces", &js, &json),
            post(
                http,
                "/v1/traces",
                &[js[0], ("Content-Encoding", "gzip")],
                &gz,
            ),
            post(http, "/v1/traces", &proto, b"\xff\xff\xff garbage"),
            post(http, "/v1/traces", &js, b"{\"resourceSpans\": 7}"),
            post(http, "/v1/traces", &proto, &vec![0u8; 100 * 1024]),
            post(
                http,
                "/v1/traces",
                &[("Content-Type", "text/plain")],
                b"hello",
            ),
            post(http, "/v1/metrics", &proto, &[]),
        ]
    })
    .await
    .unwrap();
    let codes: Vec<u16> = results.iter().map(|r| r.0).collect();
    assert_eq!(codes, [200, 200, 200, 400, 400, 413, 415, 200]);
    assert_eq!(results[1].1, b"{}");
    let bad_json: serde_json::Value = serde_json::from_slice(&results[4].1).unwrap();
    assert_eq!(bad_json["code"], 3);
    assert!(
        bad_json["message"]
            .as_str()
            .unwrap()
            .contains("malformed OTLP traces request (JSON)"),
        "{bad_json}"
    );

    let list = traces(&running, 3).await;
    let mut services: Vec<&str> = list.iter().map(|t| t.service.as_str()).collect();
    services.sort();
    assert_eq!(services, ["alpha", "beta", "gamma"]);
    let alpha = list.iter().find(|t| t.service == "alpha").unwrap();
    assert_eq!((alpha.root.as_str(), alpha.spans), ("GET /a", 2));

    running.stop().await;
    // Stopped: every exporter flushed. Each accepted trace request is in the file.
    let text = std::fs::read_to_string(&file).unwrap();
    for name in ["GET /a", "POST /b", "\"gz\""] {
        assert!(text.contains(name), "{name} not in {text}");
    }
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_with_tonic_and_invalid_argument() {
    let running = start(config(None)).await.unwrap();
    let url = format!("http://{}", running.grpc.unwrap());
    let mut client = TraceServiceClient::connect(url.clone()).await.unwrap();
    client
        .export(request("delta", 4, &["Export", "child"]))
        .await
        .unwrap();
    let mut gz = TraceServiceClient::connect(url.clone())
        .await
        .unwrap()
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    gz.export(request("epsilon", 5, &["zipped"])).await.unwrap();

    // A message that is not an ExportTraceServiceRequest: field 1 holds a bad varint.
    #[derive(Clone, PartialEq, Message)]
    struct Garbage {
        #[prost(bytes = "vec", tag = "1")]
        data: Vec<u8>,
    }
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let status = grpc
        .unary::<_, ExportTraceServiceRequest, _>(
            tonic::Request::new(Garbage {
                data: vec![0x0a, 0xff],
            }),
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
                .parse()
                .unwrap(),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");

    // Still serving.
    client.export(request("zeta", 6, &["after"])).await.unwrap();
    let list = traces(&running, 3).await;
    let mut services: Vec<&str> = list.iter().map(|t| t.service.as_str()).collect();
    services.sort();
    assert_eq!(services, ["delta", "epsilon", "zeta"]);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_limiter_refuses_with_a_retryable_status() {
    let mut c = config(None);
    c.limits.memory_limit = 16;
    let running = start(c).await.unwrap();
    let http = running.http.unwrap();
    let pb = request("big", 7, &["a span name longer than the limit"]).encode_to_vec();
    let (code, _) = tokio::task::spawn_blocking(move || {
        post(
            http,
            "/v1/traces",
            &[("Content-Type", "application/x-protobuf")],
            &pb,
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 503);
    let mut client = TraceServiceClient::connect(format!("http://{}", running.grpc.unwrap()))
        .await
        .unwrap();
    let status = client
        .export(request("big", 8, &["another long span name"]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(
        running
            .pipeline
            .refused
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_interfaces_are_refused_and_taken_ports_named() {
    let mut c = config(None);
    c.http = "0.0.0.0:0".parse().ok();
    let e = start(c).await.err().unwrap().to_string();
    assert!(
        e.contains("0.0.0.0:0 (OTLP/HTTP) is not a loopback address"),
        "{e}"
    );

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = config(None);
    c.grpc = taken.local_addr().ok();
    let e = start(c).await.err().unwrap().to_string();
    assert!(
        e.starts_with(&format!(
            "cannot listen on {} (OTLP/gRPC)",
            taken.local_addr().unwrap()
        )),
        "{e}"
    );
}
