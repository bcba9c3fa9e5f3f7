//! An axum service that calls itself with reqwest: built with `cargo instrument build`
//! and no rules file, each request from `main` becomes one trace
//! (client → server → client → server). Prints what it got, the same plain or
//! instrumented. (URLs are passed as `&str`: reqwest 0.11.0, the lowest the catalog
//! claims, takes no `String`.)

#[cfg(feature = "axum07")]
extern crate axum07 as axum;
#[cfg(feature = "reqwest011")]
extern crate reqwest011 as reqwest;
#[cfg(feature = "reqwest012")]
extern crate reqwest012 as reqwest;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

#[derive(Clone)]
struct App {
    base: String,
    client: reqwest::Client,
}

async fn hello(Path(name): Path<String>) -> String {
    format!("hello {name}")
}

/// Calls `/hello/{id}` on this same server: a client span inside the server span.
async fn chain(State(app): State<App>, Path(id): Path<u32>) -> Result<String, StatusCode> {
    let res = app
        .client
        .get(format!("{}/hello/{id}", app.base).as_str())
        .send()
        .await
        .map_err(|_| StatusCode::BAD_GATEWAY)?;
    let body = res.text().await.map_err(|_| StatusCode::BAD_GATEWAY)?;
    Ok(format!("chain got: {body}"))
}

async fn fail() -> (StatusCode, &'static str) {
    (StatusCode::INTERNAL_SERVER_ERROR, "it broke")
}

/// A route with one parameter, in the syntax of the axum in the build.
fn route(prefix: &str, param: &str) -> String {
    if cfg!(feature = "axum07") {
        format!("{prefix}:{param}")
    } else {
        format!("{prefix}{{{param}}}")
    }
}

#[tokio::main]
async fn main() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = reqwest::Client::new();
    let app = App {
        base: format!("http://{addr}"),
        client: client.clone(),
    };
    let router = Router::new()
        .route(&route("/hello/", "name"), get(hello))
        .route(&route("/chain/", "id"), get(chain))
        .route("/fail", get(fail).post(fail))
        .with_state(app);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    // Credentials in the URL and in headers must never reach the telemetry.
    let res = client
        .get(format!("http://alice:s3cret@{addr}/chain/7?sig=abc&page=2").as_str())
        .header("authorization", "Bearer t0ken")
        .header("cookie", "session=c00kie")
        .header("user-agent", "httpdemo/1")
        .send()
        .await
        .unwrap();
    println!("chain: {} {}", res.status(), res.text().await.unwrap());

    let res = client.post(format!("http://{addr}/fail").as_str()).send().await.unwrap();
    println!("fail: {}", res.status());

    let req = client.get(format!("http://{addr}/missing").as_str()).build().unwrap();
    let res = client.execute(req).await.unwrap();
    println!("missing: {}", res.status());

    let purge = reqwest::Method::from_bytes(b"PURGE").unwrap();
    let res = client
        .request(purge, format!("http://{addr}/hello/x").as_str())
        .send()
        .await
        .unwrap();
    println!("purge: {}", res.status());

    // Nothing listens on port 9 of loopback: a transport error.
    let err = client.get("http://127.0.0.1:9/").send().await.unwrap_err();
    println!("unreachable: connect error = {}", err.is_connect());

    if std::env::var_os("HTTPDEMO_LOAD").is_some() {
        load(&client, &format!("http://{addr}")).await;
    }
}

/// Steady load until stdin closes: `/chain/{n}` requests one after another (each a
/// client span and two server spans), and every 100 ms a line `load N UNIX_MS` with the
/// number of requests made so far, so a test can count the requests of any window.
async fn load(client: &reqwest::Client, base: &str) {
    let (tx, mut closed) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        let _ = tx.send(());
    });
    let mut n: u64 = 0;
    let mut said = std::time::Instant::now();
    let report = |n: u64| {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        println!("load {n} {ms}");
    };
    report(0);
    loop {
        let url = format!("{base}/chain/{}", 100_000 + n);
        tokio::select! {
            _ = &mut closed => break,
            res = client.get(url.as_str()).send() => {
                if let Ok(r) = res {
                    let _ = r.text().await;
                }
            }
        }
        n += 1;
        if said.elapsed() >= std::time::Duration::from_millis(100) {
            report(n);
            said = std::time::Instant::now();
        }
    }
    report(n);
}
