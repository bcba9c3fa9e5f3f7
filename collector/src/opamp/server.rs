//! OpAMP's two transports on `/v1/opamp`.
//!
//! - Plain HTTP: `POST` with an `AgentToServer` body (`application/x-protobuf`, gzip
//!   allowed), answered with a `ServerToAgent`.
//! - WebSocket: a `GET` upgrade, then binary messages both ways, each a varint header (0)
//!   and the protobuf. The server answers each agent message, and sends a pushed config
//!   the moment it is pushed instead of at the next poll.

use std::io::{Read, Write};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use prost::Message as _;
use tokio::sync::watch;

use super::agents::Agents;
use super::proto::{self, ServerToAgent};

/// The largest message accepted, after decompression; the spec asks servers for a limit.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
const PROTOBUF: &str = "application/x-protobuf";

#[derive(Clone)]
struct Server {
    agents: Arc<Agents>,
    /// Turns true when the collector stops: WebSocket connections close then, since a
    /// graceful shutdown waits for every connection to end.
    stopped: watch::Receiver<bool>,
}

/// The OpAMP routes over `agents`; `stopped` ends the WebSocket connections.
pub fn router(agents: Arc<Agents>, stopped: watch::Receiver<bool>) -> Router {
    Router::new()
        .route("/v1/opamp", post(opamp).get(upgrade))
        .layer(DefaultBodyLimit::max(MAX_MESSAGE_BYTES))
        .with_state(Server { agents, stopped })
}

fn refuse(status: StatusCode, why: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain")], why + "\n").into_response()
}

async fn opamp(State(server): State<Server>, headers: HeaderMap, body: Bytes) -> Response {
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
    let reply = server.agents.handle(msg, None).encode_to_vec();
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

/// Numbers WebSocket connections, so the registry can tell a reconnect from a goodbye.
static SOCKETS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Close codes from RFC 6455.
const GOING_AWAY: u16 = 1001;
const UNSUPPORTED: u16 = 1003;
const TOO_BIG: u16 = 1009;

async fn upgrade(State(server): State<Server>, ws: WebSocketUpgrade) -> Response {
    // The limit applies to the whole message, header included, as the spec asks.
    ws.max_message_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| connection(server, socket))
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

async fn connection(server: Server, mut socket: WebSocket) {
    let Server {
        agents,
        mut stopped,
    } = server;
    let number = SOCKETS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut pushes = agents.pushes();
    // Which agent speaks here (set by its first message), and the config hash last sent
    // to it unasked, so a push is not sent twice before the agent reports on it.
    let mut uid: Option<Vec<u8>> = None;
    let mut sent: Option<Vec<u8>> = None;
    loop {
        let reply = tokio::select! {
            // The guard it returns is not `Send`; only the wait matters.
            _ = async { drop(stopped.wait_for(|s| *s).await) } => {
                close(&mut socket, GOING_AWAY, "the collector is stopping").await;
                break;
            }
            changed = pushes.changed() => {
                if changed.is_err() {
                    break;
                }
                let Some(id) = &uid else { continue };
                let Some(config) = agents.pending(id) else { continue };
                if sent.as_ref() == Some(&config.config_hash) {
                    continue;
                }
                sent = Some(config.config_hash.clone());
                ServerToAgent {
                    instance_uid: id.clone(),
                    remote_config: Some(config),
                    ..Default::default()
                }
            }
            received = socket.recv() => match received {
                Some(Ok(Message::Binary(data))) => match proto::ws_unframe::<proto::AgentToServer>(&data, "an OpAMP AgentToServer") {
                    Ok(msg) => {
                        let bye = msg.agent_disconnect.is_some();
                        if msg.instance_uid.len() == 16 {
                            uid = Some(msg.instance_uid.clone());
                        }
                        let reply = agents.handle(msg, Some(number));
                        if let Some(c) = &reply.remote_config {
                            sent = Some(c.config_hash.clone());
                        }
                        if bye {
                            // The agent closes next; nothing more is sent to it.
                            break;
                        }
                        reply
                    }
                    Err(why) => super::bad_request(Vec::new(), why),
                },
                Some(Ok(Message::Text(_))) => {
                    close(&mut socket, UNSUPPORTED, "OpAMP messages are binary").await;
                    break;
                }
                Some(Ok(Message::Close(_))) | None => break,
                Some(Ok(_)) => continue, // pings are answered by the library
                Some(Err(e)) => {
                    if is_too_big(&e) {
                        let why = format!("an OpAMP message is at most {MAX_MESSAGE_BYTES} bytes");
                        close(&mut socket, TOO_BIG, &why).await;
                    }
                    break;
                }
            },
        };
        if socket
            .send(Message::Binary(proto::ws_frame(&reply).into()))
            .await
            .is_err()
        {
            break;
        }
    }
    if let Some(id) = uid {
        agents.socket_closed(&id, number);
    }
}

/// Whether the library refused a message over [`MAX_MESSAGE_BYTES`].
fn is_too_big(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(t) = s.downcast_ref::<tungstenite::Error>() {
            return matches!(t, tungstenite::Error::Capacity(_));
        }
        source = s.source();
    }
    false
}
