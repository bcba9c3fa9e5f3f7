//! The viewer's HTTP side on the UI address: a JSON API over the store, and the page.
//!
//! `GET /api/traces?service=&name=&attr=k=v&min_ms=&errors=true&limit=` — trace list,
//! newest first; `GET /api/traces/{id}` — one trace's spans; `GET /api/services`.

use std::sync::Arc;

use axum::extract::{Path, Query as Q, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::store::{Query, Store};

pub fn router(store: Arc<Store>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/traces", get(list))
        .route("/api/traces/{id}", get(one))
        .route("/api/services", get(services))
        .with_state(store)
}

async fn list(State(store): State<Arc<Store>>, Q(q): Q<Query>) -> Response {
    Json(store.search(&q)).into_response()
}

async fn one(State(store): State<Arc<Store>>, Path(id): Path<String>) -> Response {
    match store.trace(&id) {
        Some(spans) => Json(serde_json::json!({ "trace_id": id, "spans": spans })).into_response(),
        None => (StatusCode::NOT_FOUND, format!("no trace {id} in the store")).into_response(),
    }
}

async fn services(State(store): State<Arc<Store>>) -> Response {
    Json(store.services()).into_response()
}

async fn page() -> Html<&'static str> {
    Html(include_str!("ui/index.html"))
}
