//! The viewer's HTTP side on the UI address: a JSON API over the store, and the page.
//!
//! `GET /api/traces?service=&name=&attr=k=v&min_ms=&errors=true&limit=` — trace list,
//! newest first; `GET /api/traces/{id}` — one trace's spans; `GET /api/services`;
//! `GET /api/map` — calls between services; `GET /api/red?window_s=900&buckets=30` — rate,
//! errors and duration percentiles per service, from spans and from metrics.

use std::sync::Arc;

use axum::extract::{Path, Query as Q, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::metrics::MetricStore;
use crate::store::{Query, Store};

/// What the viewer reads.
pub struct Stores {
    pub traces: Arc<Store>,
    pub metrics: Arc<MetricStore>,
}

type S = State<Arc<Stores>>;

pub fn router(traces: Arc<Store>, metrics: Arc<MetricStore>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/traces", get(list))
        .route("/api/traces/{id}", get(one))
        .route("/api/services", get(services))
        .route("/api/map", get(map))
        .route("/api/red", get(red))
        .with_state(Arc::new(Stores { traces, metrics }))
}

async fn list(State(s): S, Q(q): Q<Query>) -> Response {
    Json(s.traces.search(&q)).into_response()
}

async fn one(State(s): S, Path(id): Path<String>) -> Response {
    match s.traces.trace(&id) {
        Some(spans) => Json(serde_json::json!({ "trace_id": id, "spans": spans })).into_response(),
        None => (StatusCode::NOT_FOUND, format!("no trace {id} in the store")).into_response(),
    }
}

async fn services(State(s): S) -> Response {
    Json(s.traces.services()).into_response()
}

async fn map(State(s): S) -> Response {
    Json(s.traces.with_traces(|t| crate::analysis::service_map(t))).into_response()
}

#[derive(serde::Deserialize)]
struct RedQuery {
    window_s: Option<u64>,
    buckets: Option<usize>,
}

/// RED per service from entry spans (`spans`, with a series for charts) and from the
/// request-duration histograms services exported (`metrics`).
async fn red(State(s): S, Q(q): Q<RedQuery>) -> Response {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let window = q.window_s.unwrap_or(900).max(1) * 1_000_000_000;
    let buckets = q.buckets.unwrap_or(30).clamp(1, 500);
    let spans = s
        .traces
        .with_traces(|t| crate::analysis::red(t, now, window, buckets));
    let metrics = s.metrics.red(now, window);
    Json(serde_json::json!({ "spans": spans, "metrics": metrics })).into_response()
}

async fn page() -> Html<&'static str> {
    Html(include_str!("ui/index.html"))
}
