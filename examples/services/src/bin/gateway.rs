//! The gateway (axum): `GET /checkout/{item}` places an order with the orders service
//! over HTTP (reqwest), on `GATEWAY_PORT`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

#[derive(Clone)]
struct Gateway {
    orders: String,
    client: reqwest::Client,
}

async fn checkout(
    State(g): State<Gateway>,
    Path(item): Path<String>,
) -> (StatusCode, String) {
    let res = g
        .client
        .post(format!("{}/orders/{item}", g.orders))
        .send()
        .await;
    match res {
        Ok(res) => {
            let status = StatusCode::from_u16(res.status().as_u16()).unwrap();
            (status, res.text().await.unwrap_or_default())
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()),
    }
}

#[tokio::main]
async fn main() {
    let orders = std::env::var("ORDERS_URL").expect("ORDERS_URL");
    let listener = tokio::net::TcpListener::from_std(services::listen("GATEWAY_PORT")).unwrap();
    let router = Router::new()
        .route("/checkout/{item}", get(checkout))
        .with_state(Gateway {
            orders,
            client: reqwest::Client::new(),
        });
    axum::serve(listener, router).await.unwrap();
}
