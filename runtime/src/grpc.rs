//! A unary gRPC call over cleartext HTTP/2 (prior knowledge), on `std::net`, for
//! `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`.
//!
//! The OTLP exporter hands the transport a protobuf request body; for gRPC it is framed
//! as one length-prefixed message on one HTTP/2 stream, and the answer's trailers say
//! whether it was taken. A full HTTP/2 stack (h2, hyper) would bring an async runtime into
//! every instrumented program; one request per connection needs only a little of the
//! protocol: the preface, SETTINGS, HEADERS and DATA within the peer's flow-control
//! windows, and reading HEADERS/DATA/trailers back (answering PING and SETTINGS on the
//! way). Cleartext only, like the rest of the runtime's transport.

mod hpack;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;

const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

const STREAM: u32 = 1;
const DEFAULT_WINDOW: i64 = 65_535;
/// The largest frame we accept: SETTINGS_MAX_FRAME_SIZE's default, which we keep.
const MAX_FRAME: usize = 16_384;
/// An export answer is a few bytes; this bounds what a wrong peer can make us hold.
const MAX_ANSWER: usize = 4 * 1024 * 1024;

/// What a gRPC call came back with.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The response message (protobuf), already taken out of its length prefix.
    pub(crate) message: Vec<u8>,
}

/// A call that did not succeed: transport trouble, or a gRPC status other than OK.
#[derive(Debug)]
pub(crate) struct CallError {
    message: String,
    /// The gRPC status code, when the server answered with one.
    pub(crate) status: Option<u32>,
}

impl CallError {
    fn new(message: impl Into<String>) -> Self {
        CallError {
            message: message.into(),
            status: None,
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CallError {}

impl From<std::io::Error> for CallError {
    fn from(e: std::io::Error) -> Self {
        CallError::new(e.to_string())
    }
}

impl From<String> for CallError {
    fn from(e: String) -> Self {
        CallError::new(e)
    }
}

impl From<&str> for CallError {
    fn from(e: &str) -> Self {
        CallError::new(e.to_string())
    }
}

/// Where a call goes and how its message is sent.
pub(crate) struct Call<'a> {
    pub(crate) host: &'a str,
    pub(crate) port: u16,
    /// `:authority`, as the endpoint was written (`host:port`).
    pub(crate) authority: &'a str,
    /// The method, `/package.Service/Method`.
    pub(crate) path: &'a str,
    /// Extra headers (gRPC metadata), names in lowercase.
    pub(crate) metadata: &'a [(String, Vec<u8>)],
    /// Whether the message is gzip-compressed already.
    pub(crate) gzip: bool,
}

/// One unary call carrying `message` (protobuf), all within `timeout`.
fn http1_answer() -> CallError {
    CallError::new(
        "the server answered in HTTP/1, not gRPC (an OTLP/HTTP port? OTLP/gRPC listens on \
         4317; or set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf)",
    )
}

pub(crate) fn call(c: &Call<'_>, message: &[u8], timeout: Duration) -> Result<Reply, CallError> {
    let (authority, path, metadata, gzip) = (c.authority, c.path, c.metadata, c.gzip);
    let deadline = Instant::now() + timeout;
    let stream = crate::transport::connect(c.host, c.port, timeout)?;
    let mut conn = Conn {
        stream,
        deadline,
        decoder: hpack::Decoder::new(4096),
        send_window: DEFAULT_WINDOW,
        stream_window: DEFAULT_WINDOW,
        peer_initial_window: DEFAULT_WINDOW,
        peer_max_frame: MAX_FRAME,
    };
    // SETTINGS_ENABLE_PUSH = 0: a client that never reads pushes should not get them.
    let mut hello = PREFACE.to_vec();
    frame(&mut hello, SETTINGS, 0, 0, &[0, 2, 0, 0, 0, 0]);
    conn.write(&hello)?;

    let mut block = Vec::new();
    for (name, value) in [
        (":method", &b"POST"[..]),
        (":scheme", b"http"),
        (":path", path.as_bytes()),
        (":authority", authority.as_bytes()),
        ("content-type", b"application/grpc"),
        ("te", b"trailers"),
        ("grpc-accept-encoding", b"identity,gzip"),
        (
            "user-agent",
            concat!("instgo-runtime/", env!("CARGO_PKG_VERSION")).as_bytes(),
        ),
    ] {
        hpack::encode_literal(&mut block, name, value);
    }
    let millis = timeout.as_millis().clamp(1, 99_999_999);
    hpack::encode_literal(&mut block, "grpc-timeout", format!("{millis}m").as_bytes());
    if gzip {
        hpack::encode_literal(&mut block, "grpc-encoding", b"gzip");
    }
    for (name, value) in metadata {
        hpack::encode_literal(&mut block, name, value);
    }
    if block.len() > MAX_FRAME {
        return Err(CallError::new(format!(
            "request headers take {} bytes, more than one HTTP/2 frame (check OTEL_EXPORTER_OTLP_HEADERS)",
            block.len()
        )));
    }
    let mut out = Vec::new();
    frame(&mut out, HEADERS, END_HEADERS, STREAM, &block);
    conn.write(&out)?;

    let len = u32::try_from(message.len()).map_err(|_| "message over 4 GiB".to_string())?;
    let mut body = Vec::with_capacity(message.len() + 5);
    body.push(u8::from(gzip));
    body.extend_from_slice(&len.to_be_bytes());
    body.extend_from_slice(message);

    let mut answer = Answer::default();
    conn.send_body(&body, &mut answer)?;
    while !answer.ended {
        conn.read_one(&mut answer)?;
    }
    answer.finish()
}

/// What came back on our stream so far.
#[derive(Default)]
struct Answer {
    headers: Vec<(String, Vec<u8>)>,
    data: Vec<u8>,
    /// A header block split over CONTINUATION frames, until END_HEADERS.
    partial: Option<(Vec<u8>, bool)>,
    ended: bool,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    fn finish(self) -> Result<Reply, CallError> {
        let status = self.header(":status").unwrap_or(b"?");
        if status != b"200" {
            return Err(CallError::new(format!(
                "HTTP/2 status {} (is this a gRPC endpoint? OTLP/gRPC listens on 4317)",
                String::from_utf8_lossy(status)
            )));
        }
        let Some(code) = self.header("grpc-status") else {
            return Err(CallError::new("the answer has no grpc-status"));
        };
        let code = String::from_utf8_lossy(code).into_owned();
        if code != "0" {
            let message = percent_decode(self.header("grpc-message").unwrap_or_default());
            return Err(CallError {
                status: code.parse().ok(),
                message: format!(
                    "gRPC status {code} ({}){}{message}",
                    status_name(&code),
                    if message.is_empty() { "" } else { ": " }
                ),
            });
        }
        let message = match self.data.get(..5) {
            None => Vec::new(),
            Some(prefix) => {
                let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]);
                let body = self
                    .data
                    .get(5..5 + len as usize)
                    .ok_or("truncated gRPC message in the answer")?;
                if prefix[0] == 1 {
                    crate::transport::gunzip(body)?
                } else {
                    body.to_vec()
                }
            }
        };
        Ok(Reply { message })
    }
}

struct Conn {
    stream: TcpStream,
    deadline: Instant,
    decoder: hpack::Decoder,
    /// Connection-level and stream-level windows the peer gives us to send DATA in.
    send_window: i64,
    stream_window: i64,
    peer_initial_window: i64,
    peer_max_frame: usize,
}

impl Conn {
    fn remaining(&self) -> Result<Duration, CallError> {
        self.deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| CallError::new("deadline passed"))
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), CallError> {
        self.stream.set_write_timeout(Some(self.remaining()?))?;
        match self.stream.write_all(bytes) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.closed_after_answering(e)),
        }
    }

    /// A write failed: when the peer closed, what it said before closing explains it
    /// better than the broken pipe (an HTTP/1 server answers the preface and closes
    /// while the request's frames are still being written).
    fn closed_after_answering(&mut self, e: std::io::Error) -> CallError {
        use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
        if matches!(e.kind(), BrokenPipe | ConnectionReset | ConnectionAborted) {
            let mut head = [0u8; 7];
            let _ = self
                .stream
                .set_read_timeout(Some(Duration::from_millis(200)));
            if self.stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") {
                return http1_answer();
            }
        }
        CallError::from(e)
    }

    /// Sends `body` as DATA frames within the peer's windows, reading what the peer
    /// sends meanwhile (window updates, settings; or an early answer, which ends it).
    fn send_body(&mut self, body: &[u8], answer: &mut Answer) -> Result<(), CallError> {
        let mut at = 0;
        loop {
            let room = self
                .send_window
                .min(self.stream_window)
                .min(self.peer_max_frame as i64)
                .max(0) as usize;
            let n = room.min(body.len() - at);
            if n > 0 || body.is_empty() {
                let last = at + n == body.len();
                let mut out = Vec::with_capacity(n + 9);
                frame(
                    &mut out,
                    DATA,
                    if last { END_STREAM } else { 0 },
                    STREAM,
                    &body[at..at + n],
                );
                self.write(&out)?;
                self.send_window -= n as i64;
                self.stream_window -= n as i64;
                at += n;
                if last {
                    return Ok(());
                }
            } else {
                self.read_one(answer)?;
                if answer.ended {
                    return Ok(()); // refused before the whole body was sent
                }
            }
        }
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), CallError> {
        self.stream.set_read_timeout(Some(self.remaining()?))?;
        self.stream.read_exact(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                CallError::new("the server closed the connection before answering")
            }
            _ => CallError::from(e),
        })
    }

    /// Reads one frame and acts on it.
    fn read_one(&mut self, answer: &mut Answer) -> Result<(), CallError> {
        let mut head = [0u8; 9];
        self.read_exact(&mut head)?;
        if head.starts_with(b"HTTP/1.") {
            return Err(http1_answer());
        }
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let (kind, flags) = (head[3], head[4]);
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        if len > MAX_FRAME {
            return Err(CallError::new(format!(
                "frame of {len} bytes, over our 16384"
            )));
        }
        let mut payload = vec![0u8; len];
        self.read_exact(&mut payload)?;
        match kind {
            SETTINGS if flags & ACK == 0 => {
                for setting in payload.chunks_exact(6) {
                    let id = u16::from_be_bytes([setting[0], setting[1]]);
                    let value =
                        u32::from_be_bytes([setting[2], setting[3], setting[4], setting[5]]);
                    match id {
                        0x4 => {
                            // INITIAL_WINDOW_SIZE moves every open stream's window by the change.
                            self.stream_window += i64::from(value) - self.peer_initial_window;
                            self.peer_initial_window = i64::from(value);
                        }
                        0x5 => self.peer_max_frame = (value as usize).clamp(MAX_FRAME, 1 << 24),
                        _ => {}
                    }
                }
                let mut out = Vec::new();
                frame(&mut out, SETTINGS, ACK, 0, &[]);
                self.write(&out)?;
            }
            PING if flags & ACK == 0 => {
                let mut out = Vec::new();
                frame(&mut out, PING, ACK, 0, &payload);
                self.write(&out)?;
            }
            WINDOW_UPDATE if payload.len() == 4 => {
                let n = i64::from(
                    u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]])
                        & 0x7fff_ffff,
                );
                if stream == 0 {
                    self.send_window += n;
                } else if stream == STREAM {
                    self.stream_window += n;
                }
            }
            GOAWAY => {
                let code = payload
                    .get(4..8)
                    .map_or(0, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                let debug =
                    String::from_utf8_lossy(payload.get(8..).unwrap_or_default()).into_owned();
                return Err(CallError::new(format!(
                    "the server ended the connection (GOAWAY {code}) {debug}"
                )));
            }
            RST_STREAM if stream == STREAM => {
                let code = payload
                    .get(..4)
                    .map_or(0, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                return Err(CallError::new(format!(
                    "the server reset the call (RST_STREAM {code})"
                )));
            }
            HEADERS if stream == STREAM => {
                let mut fragment = unpad(&payload, flags)?;
                if flags & PRIORITY != 0 {
                    fragment = fragment.get(5..).ok_or("short HEADERS frame")?;
                }
                let ends = flags & END_STREAM != 0;
                if flags & END_HEADERS != 0 {
                    answer.headers.extend(self.decoder.decode(fragment)?);
                    answer.ended |= ends;
                } else {
                    answer.partial = Some((fragment.to_vec(), ends));
                }
            }
            CONTINUATION if stream == STREAM => {
                let (mut block, ends) = answer
                    .partial
                    .take()
                    .ok_or("CONTINUATION without HEADERS")?;
                block.extend_from_slice(&payload);
                if block.len() > MAX_ANSWER {
                    return Err(CallError::new("answer headers too large"));
                }
                if flags & END_HEADERS != 0 {
                    answer.headers.extend(self.decoder.decode(&block)?);
                    answer.ended |= ends;
                } else {
                    answer.partial = Some((block, ends));
                }
            }
            DATA if stream == STREAM => {
                answer.data.extend_from_slice(unpad(&payload, flags)?);
                if answer.data.len() > MAX_ANSWER {
                    return Err(CallError::new("answer too large"));
                }
                answer.ended |= flags & END_STREAM != 0;
            }
            _ => {} // PRIORITY, acknowledgements, frames of other streams, unknown types
        }
        Ok(())
    }
}

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len() as u32;
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

fn unpad(payload: &[u8], flags: u8) -> Result<&[u8], String> {
    if flags & PADDED == 0 {
        return Ok(payload);
    }
    let pad = usize::from(*payload.first().ok_or("empty padded frame")?);
    payload
        .get(1..payload.len().saturating_sub(pad))
        .filter(|_| pad < payload.len())
        .ok_or_else(|| "padding longer than the frame".into())
}

/// grpc-message is percent-encoded (gRPC over HTTP/2 spec).
fn percent_decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            raw[i],
            raw.get(i + 1).and_then(|b| hex(*b)),
            raw.get(i + 2).and_then(|b| hex(*b)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn status_name(code: &str) -> &'static str {
    match code {
        "1" => "CANCELLED",
        "2" => "UNKNOWN",
        "3" => "INVALID_ARGUMENT",
        "4" => "DEADLINE_EXCEEDED",
        "5" => "NOT_FOUND",
        "7" => "PERMISSION_DENIED",
        "8" => "RESOURCE_EXHAUSTED",
        "12" => "UNIMPLEMENTED",
        "13" => "INTERNAL",
        "14" => "UNAVAILABLE",
        "16" => "UNAUTHENTICATED",
        _ => "see the gRPC status codes",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode(b"a%20b%zz%4"), "a b%zz%4");
        assert_eq!(percent_decode("é%C3%A9".as_bytes()), "éé");
    }

    #[test]
    fn padding() {
        assert_eq!(unpad(&[2, b'a', b'b', 0, 0], PADDED).unwrap(), b"ab");
        assert!(unpad(&[9, b'a'], PADDED).is_err());
        assert_eq!(unpad(b"ab", 0).unwrap(), b"ab");
    }
}
