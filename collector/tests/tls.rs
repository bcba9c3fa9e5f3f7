//! TLS on every listener when a certificate and key are configured: OTLP/HTTP and the
//! viewer over rustls, OTLP/gRPC over tonic's TLS; plain connections get nowhere.

use std::sync::Arc;

use instgo_collector::tls::TlsFiles;
use instgo_collector::{start, Config};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn https(addr: std::net::SocketAddr, ca: &[u8], request: &[u8]) -> String {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

use rustls::pki_types::pem::PemObject;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listener_speaks_tls() {
    let dir = std::env::temp_dir().join(format!("instgo-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert, key) = (certified.cert.pem(), certified.key_pair.serialize_pem());
    std::fs::write(dir.join("cert.pem"), &cert).unwrap();
    std::fs::write(dir.join("key.pem"), &key).unwrap();
    let any = "127.0.0.1:0".parse().ok();
    let running = start(Config {
        grpc: any,
        http: any,
        ui: any,
        tls: Some(TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }),
        ..Config::default()
    })
    .await
    .unwrap();

    let body = ExportTraceServiceRequest::default().encode_to_vec();
    let mut req = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-protobuf\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    let answer = https(running.http.unwrap(), cert.as_bytes(), &req).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let answer = https(
        running.ui.unwrap(),
        cert.as_bytes(),
        b"GET /api/services HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // What `cargo instrument traces --endpoint https://… --ca-file …` reads with.
    let ui = running.ui.unwrap().port();
    let ca = dir.join("cert.pem");
    let listed = tokio::task::spawn_blocking(move || {
        instgo_collector::client::Endpoint::new(&format!("https://localhost:{ui}"), Some(&ca))
            .unwrap()
            .search(&Default::default())
    })
    .await
    .unwrap();
    assert!(listed.is_ok(), "{listed:?}");

    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut plain = tokio::net::TcpStream::connect(running.http.unwrap())
        .await
        .unwrap();
    plain.write_all(&req).await.unwrap();
    let mut out = Vec::new();
    let _ = plain.read_to_end(&mut out).await;
    assert!(!String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"));

    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&cert))
        .domain_name("localhost");
    let channel =
        tonic::transport::Endpoint::from_shared(format!("https://{}", running.grpc.unwrap()))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
            .unwrap();
    TraceServiceClient::new(channel)
        .export(ExportTraceServiceRequest::default())
        .await
        .unwrap();
    running.stop().await;

    // A key file that is not one is named at start.
    std::fs::write(dir.join("bad.pem"), "not a key").unwrap();
    let e = start(Config {
        grpc: None,
        http: any,
        ui: None,
        tls: Some(TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("bad.pem"),
        }),
        ..Config::default()
    })
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("bad.pem: no private key in it"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
