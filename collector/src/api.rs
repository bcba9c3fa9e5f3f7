//! The viewer's HTTP side on the UI address: a JSON API over the store, and the page.
//!
//! `GET /api/traces?service=&name=&attr=k=v&min_ms=&errors=true&limit=` — trace list,
//! newest first; `GET /api/traces/{id}` — one trace's spans; `GET /api/services`;
//! `GET /api/map` — calls between services; `GET /api/red?window_s=900&buckets=30` — rate,
//! errors and duration percentiles per service, from spans and from metrics.
//! `GET /api/agents` — the OpAMP agents; `POST /api/agents/{uid}/config` and
//! `POST /api/services/{name}/config` — push a config (the body, TOML, at most 64 KiB).

use std::sync::Arc;

use axum::extract::{Path, Query as Q, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::metrics::MetricStore;
use crate::opamp::agents::{Agents, PushError, MAX_CONFIG_BYTES};
use crate::store::{Query, Store};

/// What the viewer reads.
pub struct Stores {
    pub traces: Arc<Store>,
    pub metrics: Arc<MetricStore>,
    pub agents: Arc<Agents>,
}

type S = State<Arc<Stores>>;

pub fn router(traces: Arc<Store>, metrics: Arc<MetricStore>, agents: Arc<Agents>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/traces", get(list))
        .route("/api/traces/{id}", get(one))
        .route("/api/services", get(services))
        .route("/api/map", get(map))
        .route("/api/red", get(red))
        .route("/api/agents", get(agents_list))
        .route("/api/agents/{uid}/config", post(push_agent))
        .route("/api/services/{name}/config", post(push_service))
        // Room for the limit's own message rather than axum's bare 413.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_CONFIG_BYTES * 2))
        .with_state(Arc::new(Stores {
            traces,
            metrics,
            agents,
        }))
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

async fn agents_list(State(s): S) -> Response {
    Json(s.agents.list()).into_response()
}

fn pushed(r: Result<serde_json::Value, PushError>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => {
            let status = match e {
                PushError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                PushError::UnknownAgent(_) => StatusCode::NOT_FOUND,
                PushError::Persist { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            };
            (status, format!("{e}\n")).into_response()
        }
    }
}

// `String` bodies: axum answers 400 to one that is not UTF-8.
async fn push_agent(State(s): S, Path(uid): Path<String>, body: String) -> Response {
    pushed(
        s.agents
            .push_to_agent(&uid, body)
            .map(|p| serde_json::json!({ "hash": p.hash, "agents": 1 })),
    )
}

async fn push_service(State(s): S, Path(name): Path<String>, body: String) -> Response {
    pushed(
        s.agents
            .push_to_service(&name, body)
            .map(|(p, n)| serde_json::json!({ "hash": p.hash, "agents": n })),
    )
}
