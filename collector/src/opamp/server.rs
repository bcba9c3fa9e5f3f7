//! OpAMP's plain HTTP transport: `POST /v1/opamp` with an `AgentToServer` body
//! (`application/x-protobuf`, gzip allowed), answered with a `ServerToAgent`.

use std::io::{Read, Write};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use prost::Message as _;

use super::agents::Agents;
use super::proto;

/// The largest message accepted, after decompression; the spec asks servers for a limit.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
const PROTOBUF: &str = "application/x-protobuf";

pub fn router(agents: Arc<Agents>) -> Router {
    Router::new()
        .route("/v1/opamp", post(opamp))
        .layer(DefaultBodyLimit::max(MAX_MESSAGE_BYTES))
        .with_state(agents)
}

fn refuse(status: StatusCode, why: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain")], why + "\n").into_response()
}

async fn opamp(State(agents): State<Arc<Agents>>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with(PROTOBUF) {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("OpAMP over HTTP is {PROTOBUF}, got {content_type:?}"),
        );
    }
    let gzipped = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let data = if gzipped {
        let mut out = Vec::new();
        let read = flate2::read::GzDecoder::new(&body[..])
            .take(MAX_MESSAGE_BYTES as u64 + 1)
            .read_to_end(&mut out);
        match read {
            Ok(n) if n > MAX_MESSAGE_BYTES => {
                return refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("over {MAX_MESSAGE_BYTES} bytes once decompressed"),
                )
            }
            Ok(_) => Bytes::from(out),
            Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("gzip: {e}")),
        }
    } else {
        body
    };
    let msg = match proto::AgentToServer::decode(&data[..]) {
        Ok(m) => m,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("not an OpAMP AgentToServer message: {e}"),
            )
        }
    };
    let reply = agents.handle(msg).encode_to_vec();
    let accepts_gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    // Answers are small unless they carry a config; only those are worth compressing.
    if accepts_gzip && reply.len() > 1024 {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        if enc.write_all(&reply).is_ok() {
            if let Ok(z) = enc.finish() {
                return (
                    [
                        (header::CONTENT_TYPE, PROTOBUF),
                        (header::CONTENT_ENCODING, "gzip"),
                    ],
                    z,
                )
                    .into_response();
            }
        }
    }
    ([(header::CONTENT_TYPE, PROTOBUF)], reply).into_response()
}
