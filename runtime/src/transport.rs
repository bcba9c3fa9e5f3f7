//! A small blocking client for OTLP export: HTTP/1.1 for `http/protobuf` and `http/json`,
//! HTTP/2 for `grpc` (see `grpc.rs`).
//!
//! The exporters run on the SDK's own threads (batch span processor, periodic metric
//! reader), so blocking I/O there never touches the application's threads or executor.
//! Writing it on `std::net` keeps the runtime free of an async runtime and of any C code
//! (two copies of a crate with C symbols, ours and the app's, would clash at link time).
//! Plain `http://` only: the default destination is the bundled collector on loopback.
//!
//! The OTLP exporter always hands over protobuf; the wire format is chosen here.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;

const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Which export request the client carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Signal {
    Traces,
    Metrics,
}

/// `OTEL_EXPORTER_OTLP_PROTOCOL`'s three values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Wire {
    HttpProtobuf,
    HttpJson,
    Grpc,
}

#[derive(Debug, Clone)]
pub(crate) struct StdHttpClient {
    timeout: Duration,
    signal: Signal,
    wire: Wire,
}

impl StdHttpClient {
    pub(crate) fn new(timeout: Duration, signal: Signal, wire: Wire) -> Self {
        StdHttpClient {
            timeout,
            signal,
            wire,
        }
    }
}

#[async_trait::async_trait]
impl HttpClient for StdHttpClient {
    /// One export, retried here rather than by the exporter (its retry policy is off):
    /// up to 3 retries with doubling delays (100 ms to 1.6 s, with jitter, or the
    /// server's Retry-After) for the failures OTLP calls transient, all within the export
    /// timeout, and none once the process is exiting. At exit a collector that is not
    /// there must cost the program nothing, not a backoff per batch.
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        crate::call::mark_runtime_thread();
        let request = self.prepare(request)?;
        self.send_with_retries(&request)
    }
}

impl StdHttpClient {
    /// The request as it goes out, made once for every attempt: a metrics request gets
    /// the histograms `aggregate` keeps, and for `http/json` the exporter's protobuf is
    /// written out as OTLP/JSON (compressed again if it was). Unchanged when neither
    /// applies.
    fn prepare(&self, request: Request<Bytes>) -> Result<Request<Bytes>, HttpError> {
        let json = self.wire == Wire::HttpJson;
        let own = match self.signal {
            Signal::Metrics => crate::aggregate::metrics(),
            Signal::Traces => Vec::new(),
        };
        if !json && own.is_empty() {
            return Ok(request);
        }
        let gzip = gzipped(&request);
        let raw = if gzip {
            gunzip(request.body())?
        } else {
            request.body().to_vec()
        };
        let body = match self.signal {
            // Only reached for http/json: traces have nothing to add.
            Signal::Traces => {
                crate::otlp_json::traces(&ExportTraceServiceRequest::decode(&raw[..])?).into_bytes()
            }
            Signal::Metrics => {
                let mut message = ExportMetricsServiceRequest::decode(&raw[..])?;
                crate::aggregate::join(&mut message, own);
                if json {
                    crate::otlp_json::metrics(&message).into_bytes()
                } else {
                    message.encode_to_vec()
                }
            }
        };
        let body = if gzip { gzip_bytes(&body)? } else { body };
        let (mut parts, _) = request.into_parts();
        parts.headers.remove(http::header::CONTENT_LENGTH);
        if json {
            parts.headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
        }
        Ok(Request::from_parts(parts, Bytes::from(body)))
    }

    fn send_with_retries(&self, request: &Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let start = Instant::now();
        let mut delay = Duration::from_millis(100);
        for attempt in 0.. {
            let result = self.once(request, self.timeout.saturating_sub(start.elapsed()));
            let wait = match retry_delay(&result) {
                Some(server_says) => server_says.unwrap_or(delay) + jitter(),
                None => return self.done(request, result),
            };
            if attempt == 3 || crate::sdk::exiting() || start.elapsed() + wait >= self.timeout {
                return self.done(request, result);
            }
            std::thread::sleep(wait);
            delay = (delay * 2).min(Duration::from_millis(1600));
        }
        unreachable!("the loop returns")
    }

    fn once(
        &self,
        request: &Request<Bytes>,
        timeout: Duration,
    ) -> Result<Response<Bytes>, HttpError> {
        let timeout = timeout.max(Duration::from_millis(1));
        match self.wire {
            Wire::HttpProtobuf => send(request, timeout),
            Wire::HttpJson => {
                let mut response = send(request, timeout)?;
                // The answer is JSON too; the exporter would read it as protobuf. An
                // accepted export has nothing else to say to it.
                if response.status().is_success() {
                    *response.body_mut() = Bytes::new();
                }
                Ok(response)
            }
            Wire::Grpc => send_grpc(request, self.signal, timeout),
        }
    }

    fn done(
        &self,
        request: &Request<Bytes>,
        result: Result<Response<Bytes>, HttpError>,
    ) -> Result<Response<Bytes>, HttpError> {
        report(self.wire, request, &result);
        result
    }
}

/// Whether an outcome is worth another try (OTLP's transient failures), and after how
/// long if the server said (Retry-After, at most 30 s).
fn retry_delay(result: &Result<Response<Bytes>, HttpError>) -> Option<Option<Duration>> {
    match result {
        Ok(resp) => match resp.status().as_u16() {
            429 | 503 => Some(
                resp.headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
                    .map(|secs| Duration::from_secs(secs.min(30))),
            ),
            502 | 504 => Some(None),
            _ => None,
        },
        Err(e) => match e
            .downcast_ref::<crate::grpc::CallError>()
            .and_then(|c| c.status)
        {
            // CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, OUT_OF_RANGE,
            // UNAVAILABLE, DATA_LOSS.
            Some(1 | 4 | 8 | 10 | 11 | 14 | 15) => Some(None),
            Some(_) => None,
            // No answer at all: refused, reset, unreachable.
            None => Some(None),
        },
    }
}

/// Up to 100 ms, so that programs started together do not retry together.
fn jitter() -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Duration::from_millis(u64::from(nanos % 101))
}

static EXPORT_FAILING: crate::diag::Once = crate::diag::Once::new();

/// Says once that export fails (and once more after it recovered and failed again), so an
/// absent collector costs one line on stderr, not one per batch.
fn report(wire: Wire, request: &Request<Bytes>, result: &Result<Response<Bytes>, HttpError>) {
    let via = match wire {
        Wire::HttpProtobuf => "",
        Wire::HttpJson => " (http/json)",
        Wire::Grpc => " (grpc)",
    };
    crate::opamp::export_outcome(match result {
        Ok(resp) if resp.status().is_success() => None,
        Ok(resp) => Some(format!(
            "export to {} refused: HTTP {}",
            request.uri(),
            resp.status()
        )),
        Err(e) => Some(format!("cannot export to {}: {e}", request.uri())),
    });
    match result {
        Ok(resp) if resp.status().is_success() => {
            EXPORT_FAILING.reset();
        }
        Ok(resp) => EXPORT_FAILING.log(
            crate::diag::Level::Warn,
            format_args!(
                "export to {}{via} refused: HTTP {} {}",
                request.uri(),
                resp.status(),
                String::from_utf8_lossy(&resp.body()[..resp.body().len().min(200)])
            ),
        ),
        Err(e) => EXPORT_FAILING.log(
            crate::diag::Level::Warn,
            format_args!(
                "cannot export to {}{via}: {e} (telemetry is dropped until it is reachable; \
                 start one with `cargo instrument collector` or set OTEL_EXPORTER_OTLP_ENDPOINT)",
                request.uri()
            ),
        ),
    }
}

pub(crate) fn send(
    request: &Request<Bytes>,
    timeout: Duration,
) -> Result<Response<Bytes>, HttpError> {
    exchange(request, timeout).map_err(|e| plain_timeout(e, timeout))
}

/// A socket timeout reads as "Resource temporarily unavailable"; say what happened.
fn plain_timeout(e: HttpError, timeout: Duration) -> HttpError {
    match e.downcast_ref::<std::io::Error>().map(|io| io.kind()) {
        Some(std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
            format!("no answer within {timeout:?} (OTEL_EXPORTER_OTLP_TIMEOUT)").into()
        }
        _ => e,
    }
}

fn gzipped(request: &Request<Bytes>) -> bool {
    request
        .headers()
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"))
}

fn send_grpc(
    request: &Request<Bytes>,
    signal: Signal,
    timeout: Duration,
) -> Result<Response<Bytes>, HttpError> {
    let uri = request.uri();
    let (host, port) = endpoint(uri, 4317)?;
    let authority = uri.authority().map_or(host, |a| a.as_str());
    let path = match signal {
        Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    };
    // OTEL_EXPORTER_OTLP_HEADERS go as gRPC metadata; the HTTP framing headers do not.
    let metadata: Vec<(String, Vec<u8>)> = request
        .headers()
        .iter()
        .filter(|(name, _)| {
            !matches!(
                name.as_str(),
                "content-type"
                    | "content-encoding"
                    | "content-length"
                    | "host"
                    | "connection"
                    | "te"
                    | "user-agent"
                    | "transfer-encoding"
            )
        })
        .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
        .collect();
    let call = crate::grpc::Call {
        host,
        port,
        authority,
        path,
        metadata: &metadata,
        gzip: gzipped(request),
    };
    let reply = crate::grpc::call(&call, request.body(), timeout)
        .map_err(|e| plain_timeout(Box::new(e), timeout))?;
    Ok(Response::builder()
        .status(200)
        .body(Bytes::from(reply.message))?)
}

/// Host and port of an `http://` endpoint.
fn endpoint(uri: &http::Uri, default_port: u16) -> Result<(&str, u16), HttpError> {
    if uri.scheme_str() != Some("http") {
        return Err(format!(
            "{uri}: only http:// endpoints are supported by the instgo runtime (send to a \
             local collector, which can forward over TLS)"
        )
        .into());
    }
    Ok(host_port(uri, default_port)?)
}

/// The host and port to [`connect`] to for `uri`. An IPv6 literal loses its brackets:
/// the URI keeps them (`http://[::1]:4318`), address parsing does not take them.
pub(crate) fn host_port(uri: &http::Uri, default_port: u16) -> Result<(&str, u16), String> {
    let host = uri.host().ok_or_else(|| format!("{uri}: no host"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Ok((host, uri.port_u16().unwrap_or(default_port)))
}

/// A connection to the first of `host`'s addresses that answers within `timeout`.
pub(crate) fn connect(host: &str, port: u16, timeout: Duration) -> std::io::Result<TcpStream> {
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    for addr in (host, port).to_socket_addrs()? {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => {
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, format!("{host}: no address"))
    }))
}

pub(crate) fn gunzip(data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .take(64 * 1024 * 1024)
        .read_to_end(&mut out)
        .map_err(|e| format!("gzip: {e}"))?;
    Ok(out)
}

fn gzip_bytes(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data)?;
    enc.finish()
}

fn exchange(request: &Request<Bytes>, timeout: Duration) -> Result<Response<Bytes>, HttpError> {
    let deadline = Instant::now() + timeout;
    let uri = request.uri();
    let (host, port) = endpoint(uri, 80)?;
    let mut stream = connect(host, port, timeout)?;
    stream.set_write_timeout(Some(remaining(deadline)?))?;

    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        request.method(),
        path,
        uri.authority().map(|a| a.as_str()).unwrap_or(host),
        request.body().len()
    );
    for (name, value) in request.headers() {
        if name == "host" || name == "content-length" || name == "connection" {
            continue;
        }
        let value = value
            .to_str()
            .map_err(|_| format!("header {name} is not visible ASCII"))?;
        head.push_str(name.as_str());
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(request.body())?;
    stream.flush()?;

    stream.set_read_timeout(Some(remaining(deadline)?))?;
    read_response(BufReader::new(stream), deadline)
}

fn remaining(deadline: Instant) -> Result<Duration, HttpError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err("timed out".into())
    } else {
        Ok(left)
    }
}

fn read_response<R: BufRead>(mut r: R, deadline: Instant) -> Result<Response<Bytes>, HttpError> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.trim_end().splitn(3, ' ');
    let (version, status) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1 response: {:?}", line.trim_end()).into());
    }
    let status: u16 = status
        .parse()
        .map_err(|_| format!("bad status line {:?}", line.trim_end()))?;
    let mut builder = Response::builder().status(status);
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    loop {
        remaining(deadline)?;
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err("connection closed in the response headers".into());
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((name, value)) = l.split_once(':') {
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.parse().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            }
            builder = builder.header(name, value);
        }
    }
    let body = if chunked {
        read_chunked(&mut r)?
    } else if let Some(n) = content_length {
        if n > MAX_RESPONSE_BYTES {
            return Err(format!("response body of {n} bytes is too large").into());
        }
        let mut body = vec![0; n];
        r.read_exact(&mut body)?;
        body
    } else {
        let mut body = Vec::new();
        r.take(MAX_RESPONSE_BYTES as u64 + 1)
            .read_to_end(&mut body)?;
        if body.len() > MAX_RESPONSE_BYTES {
            return Err("response body too large".into());
        }
        body
    };
    Ok(builder.body(Bytes::from(body))?)
}

fn read_chunked<R: BufRead>(r: &mut R) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let size_text = line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        if size == 0 {
            // Trailers end with an empty line.
            loop {
                line.clear();
                if r.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > MAX_RESPONSE_BYTES {
            return Err("response body too large".into());
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        line.clear();
        r.read_line(&mut line)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    use std::sync::Arc;

    fn parse(raw: &str) -> Result<Response<Bytes>, HttpError> {
        read_response(raw.as_bytes(), Instant::now() + Duration::from_secs(5))
    }

    #[test]
    fn content_length_and_chunked_bodies() {
        let r = parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc").unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(&r.body()[..], b"abc");
        let r = parse(
            "HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(&r.body()[..], b"abc");
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse("SSH-2.0-OpenSSH\r\n").is_err());
        assert!(parse("HTTP/1.1 abc\r\n\r\n").is_err());
        assert!(parse("HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n").is_err());
    }

    /// A server answering every request with `status`; returns its address and a count
    /// of the requests it got.
    fn answering(status: &'static str) -> (String, Arc<AtomicUsize>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let _ = r.read_exact(&mut [0u8; 1]);
                seen.fetch_add(1, Relaxed);
                let _ = write!(
                    &conn,
                    "HTTP/1.1 {status}\r\nRetry-After: 0\r\nContent-Length: 0\r\n\r\n"
                );
            }
        });
        (addr, count)
    }

    #[test]
    fn transient_failures_are_retried_and_others_not() {
        let client =
            StdHttpClient::new(Duration::from_secs(10), Signal::Traces, Wire::HttpProtobuf);
        for (status, tries) in [("503 Busy", 4), ("400 Bad Request", 1), ("200 OK", 1)] {
            let (addr, count) = answering(status);
            let req = Request::post(format!("http://{addr}/v1/traces"))
                .body(Bytes::from_static(b"x"))
                .unwrap();
            let _ = client.send_with_retries(&req);
            assert_eq!(count.load(Relaxed), tries, "{status}");
        }
    }

    #[test]
    fn ipv6_literals_are_reached() {
        let uri: http::Uri = "http://[::1]:4318/v1/traces".parse().unwrap();
        assert_eq!(host_port(&uri, 80).unwrap(), ("::1", 4318));
        let uri: http::Uri = "http://127.0.0.1/v1/traces".parse().unwrap();
        assert_eq!(host_port(&uri, 80).unwrap(), ("127.0.0.1", 80));
        // A real exchange over IPv6 loopback, where the machine has one.
        let Ok(listener) = std::net::TcpListener::bind("[::1]:0") else {
            return;
        };
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = std::io::Read::read(&mut s, &mut buf);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        });
        let request = Request::post(format!("http://[::1]:{port}/v1/traces"))
            .body(Bytes::from_static(b"x"))
            .unwrap();
        let response = exchange(&request, Duration::from_secs(5)).unwrap();
        assert_eq!(&response.body()[..], b"ok");
    }

    #[test]
    fn closed_port_fails_fast() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let req = Request::post(format!("http://{addr}/v1/traces"))
            .body(Bytes::new())
            .unwrap();
        assert!(send(&req, Duration::from_secs(2)).is_err());
    }

    #[test]
    fn a_server_that_never_answers_is_a_timeout_said_plainly() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let req = Request::post(format!("http://{addr}/v1/traces"))
            .body(Bytes::from_static(b"x"))
            .unwrap();
        // The connection is accepted by the kernel's backlog and never answered.
        let e = send(&req, Duration::from_millis(200)).unwrap_err();
        assert!(e.to_string().starts_with("no answer within 200ms"), "{e}");
        drop(l);
    }
}
