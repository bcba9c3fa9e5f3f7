//! The token: without it, other than loopback is refused at start; with it, every
//! request must carry it (HTTP 401, gRPC UNAUTHENTICATED), the viewer included.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use instgo_collector::{start, Config};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

fn exchange(addr: SocketAddr, request: &str, body: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn post(addr: SocketAddr, auth: &str) -> String {
    let body = ExportTraceServiceRequest::default().encode_to_vec();
    exchange(
        addr,
        &format!(
            "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n\
             {auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ),
        &body,
    )
}

fn get(addr: SocketAddr, path: &str, headers: &str) -> String {
    exchange(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n"),
        b"",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_carries_the_token() {
    let running = start(Config {
        grpc: "127.0.0.1:0".parse().ok(),
        http: "127.0.0.1:0".parse().ok(),
        ui: "127.0.0.1:0".parse().ok(),
        token: Some("s3cret".into()),
        ..Config::default()
    })
    .await
    .unwrap();
    let (http, ui) = (running.http.unwrap(), running.ui.unwrap());
    let answers = tokio::task::spawn_blocking(move || {
        [
            post(http, ""),
            post(http, "Authorization: Bearer wrong\r\n"),
            post(http, "Authorization: Bearer s3cret\r\n"),
            get(ui, "/api/traces", ""),
            get(ui, "/api/traces", "Authorization: Bearer s3cret\r\n"),
            get(ui, "/?token=wrong", ""),
            get(ui, "/?token=s3cret", ""),
            get(ui, "/api/services", "Cookie: instgo_token=s3cret\r\n"),
        ]
    })
    .await
    .unwrap();
    let status: Vec<&str> = answers.iter().map(|a| &a[9..12]).collect();
    assert_eq!(
        status,
        ["401", "401", "200", "401", "200", "401", "303", "200"]
    );
    assert!(answers[0].contains("OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20TOKEN"));
    assert!(
        answers[6].contains("instgo_token=s3cret; HttpOnly; SameSite=Strict"),
        "{}",
        answers[6]
    );

    let url = format!("http://{}", running.grpc.unwrap());
    let mut client = TraceServiceClient::connect(url).await.unwrap();
    let e = client
        .export(ExportTraceServiceRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    let mut req = tonic::Request::new(ExportTraceServiceRequest::default());
    req.metadata_mut()
        .insert("authorization", "Bearer s3cret".parse().unwrap());
    client.export(req).await.unwrap();
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_interfaces_need_a_token() {
    let all = Config {
        grpc: None,
        http: "0.0.0.0:0".parse().ok(),
        ui: None,
        ..Config::default()
    };
    let e = start(all.clone()).await.err().unwrap().to_string();
    assert!(
        e.contains("needs a token (--token-file FILE, or INSTGO_COLLECTOR_TOKEN)"),
        "{e}"
    );
    let running = start(Config {
        token: Some("s3cret".into()),
        ..all
    })
    .await
    .unwrap();
    assert!(!running.http.unwrap().ip().is_loopback());
    running.stop().await;
}
