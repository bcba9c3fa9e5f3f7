//! OTLP/HTTP.

use std::io::Read;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use prost::Message;

use crate::pipeline::Pipeline;
use crate::signal::{Encoding, Payload, Signal};

use super::RpcStatus;

#[derive(Clone)]
struct Shared {
    pipeline: Arc<Pipeline>,
    max_body: usize,
}

/// The receiver's routes; bodies over `max_body` bytes (compressed or not) get 413.
pub fn router(pipeline: Arc<Pipeline>, max_body: usize) -> Router {
    let shared = Shared { pipeline, max_body };
    Router::new()
        .route("/v1/traces", post(traces))
        .route("/v1/metrics", post(metrics))
        .route("/v1/logs", post(logs))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(shared)
}

async fn traces(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    export(&s, Signal::Traces, &headers, &body)
}

async fn metrics(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    export(&s, Signal::Metrics, &headers, &body)
}

async fn logs(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    export(&s, Signal::Logs, &headers, &body)
}

fn export(s: &Shared, signal: Signal, headers: &HeaderMap, body: &[u8]) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let encoding = match content_type.split(';').next().unwrap_or("").trim() {
        "application/x-protobuf" | "application/protobuf" => Encoding::Protobuf,
        "application/json" => Encoding::Json,
        other => {
            return failure(
                Encoding::Protobuf,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                "Content-Type {other:?} is not OTLP (application/x-protobuf or application/json)"
            ),
            )
        }
    };
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let plain;
    let body = if gzip {
        let mut out = Vec::new();
        // The limit holds for the decompressed body too: a small bomb is still a bomb.
        let read = flate2::read::GzDecoder::new(body)
            .take(s.max_body as u64 + 1)
            .read_to_end(&mut out);
        match read {
            Err(e) => return failure(encoding, StatusCode::BAD_REQUEST, format!("gzip body: {e}")),
            Ok(n) if n > s.max_body => {
                return failure(
                    encoding,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("decompressed body over {} bytes", s.max_body),
                )
            }
            Ok(_) => {}
        }
        plain = out;
        &plain[..]
    } else {
        body
    };
    let payload = match Payload::decode(signal, encoding, body) {
        Ok(p) => p,
        Err(e) => return failure(encoding, StatusCode::BAD_REQUEST, e.to_string()),
    };
    if let Err(refused) = s.pipeline.accept(payload) {
        let mut r = failure(
            encoding,
            StatusCode::SERVICE_UNAVAILABLE,
            refused.to_string(),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return r;
    }
    // An empty Export*ServiceResponse: no partial success to report.
    match encoding {
        Encoding::Protobuf => (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            Vec::<u8>::new(),
        )
            .into_response(),
        Encoding::Json => ([(header::CONTENT_TYPE, "application/json")], "{}").into_response(),
    }
}

fn failure(encoding: Encoding, status: StatusCode, message: String) -> Response {
    // gRPC's code for the same failure, as OTLP/HTTP's Status body carries.
    let code = match status {
        StatusCode::SERVICE_UNAVAILABLE => 14,
        StatusCode::PAYLOAD_TOO_LARGE => 8,
        _ => 3,
    };
    match encoding {
        Encoding::Protobuf => (
            status,
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            RpcStatus { code, message }.encode_to_vec(),
        )
            .into_response(),
        Encoding::Json => (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({ "code": code, "message": message }).to_string(),
        )
            .into_response(),
    }
}
