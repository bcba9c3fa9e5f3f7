//! HTTP clients — reqwest's blocking client, ureq 2, ureq 3, hyper-util's legacy client —
//! calling an axum server in the same process, and ureq 3 calling a hyper server made with
//! `service_fn`: built with `cargo instrument build` and no rules file, each
//! call is a CLIENT span with the server's span under it, in one trace. Prints what it
//! got, the same plain or instrumented.

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

fn serve() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let router = Router::new()
                .route("/items/{id}", get(|| async { "an item" }))
                .route(
                    "/fail",
                    get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "it broke") }),
                );
            axum::serve(listener, router).await.unwrap();
        })
    });
    format!("http://{}", rx.recv().unwrap())
}

/// hyper 1 used directly: `serve_connection` with a `service_fn` service.
fn serve_hyper() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        |req: hyper::Request<hyper::body::Incoming>| async move {
                            let status = if req.uri().path() == "/down" { 503 } else { 200 };
                            let body = http_body_util::Full::new(bytes::Bytes::from("from hyper"));
                            hyper::Response::builder().status(status).body(body)
                        },
                    );
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        })
    });
    format!("http://{}", rx.recv().unwrap())
}

fn main() {
    let base = serve();
    // Nothing listens on port 9 of loopback: a transport error.
    let refused = "http://127.0.0.1:9/";

    let client = reqwest::blocking::Client::new();
    let res = client.get(format!("{base}/items/1")).send().unwrap();
    println!("reqwest: {} {}", res.status().as_u16(), res.text().unwrap());
    let res = client.get(format!("{base}/fail")).send().unwrap();
    println!("reqwest: {}", res.status().as_u16());
    let err = client.get(refused).send().unwrap_err();
    println!("reqwest: connect error = {}", err.is_connect());

    let res = ureq2::get(&format!("{base}/items/2")).call().unwrap();
    println!("ureq2: {} {}", res.status(), res.into_string().unwrap());
    match ureq2::get(&format!("{base}/fail")).call() {
        Err(ureq2::Error::Status(code, _)) => println!("ureq2: {code}"),
        other => panic!("ureq2: {other:?}"),
    }
    let err = ureq2::get(refused).call().unwrap_err();
    println!("ureq2: {}", err.kind());

    let mut res = ureq::get(format!("{base}/items/3")).call().unwrap();
    let body = res.body_mut().read_to_string().unwrap();
    println!("ureq3: {} {body}", res.status().as_u16());
    match ureq::get(format!("{base}/fail")).call() {
        Err(ureq::Error::StatusCode(code)) => println!("ureq3: {code}"),
        other => panic!("ureq3: {other:?}"),
    }
    println!("ureq3: refused = {}", ureq::get(refused).call().is_err());

    hyper_util_calls(&base, refused);

    let hyper_base = serve_hyper();
    let mut res = ureq::get(format!("{hyper_base}/up")).call().unwrap();
    let body = res.body_mut().read_to_string().unwrap();
    println!("hyper server: {} {body}", res.status().as_u16());
    match ureq::get(format!("{hyper_base}/down")).call() {
        Err(ureq::Error::StatusCode(code)) => println!("hyper server: {code}"),
        other => panic!("hyper server: {other:?}"),
    }
}

/// hyper-util's legacy client (hyper 1) used directly, on a runtime of its own.
fn hyper_util_calls(base: &str, refused: &str) {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
        let res = client.get(format!("{base}/items/4").parse().unwrap()).await.unwrap();
        let status = res.status().as_u16();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        println!("hyper-util: {status} {}", String::from_utf8_lossy(&body));
        let res = client.get(format!("{base}/fail").parse().unwrap()).await.unwrap();
        println!("hyper-util: {}", res.status().as_u16());
        let err = client.get(refused.parse().unwrap()).await.unwrap_err();
        println!("hyper-util: connect error = {}", err.is_connect());
    });
}
