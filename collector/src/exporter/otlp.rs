//! `otlp`: forwarding to an upstream OTLP endpoint (an OpenTelemetry Collector fleet, a
//! vendor's intake), over HTTP/protobuf (`http://host:4318`, `https://…`) or gRPC
//! (`grpc://host:4317`, `grpcs://…` over TLS), with headers of the user's (a token),
//! retrying transient failures with backoff. TLS trusts the system's roots, plus a CA
//! file when given.
//!
//! Two ways to feed it: as an ordinary exporter (batches from its in-memory queue; a
//! batch still failing after [`GIVE_UP_AFTER`] is dropped and counted), or from the
//! on-disk queue (`wal`), where nothing is dropped: it retries until the upstream takes
//! it, and resumes after a restart from the last delivered record.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::pipeline::Exporter;
use crate::signal::{Payload, Signal};
use crate::wal::Wal;

pub const GIVE_UP_AFTER: Duration = Duration::from_secs(60);
const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(5);

/// Where to forward.
#[derive(Debug, Clone, PartialEq)]
pub enum Upstream {
    /// `http://host:port` or `https://…` (paths `/v1/traces`… are added).
    Http { host: String, port: u16, tls: bool },
    /// `grpc://host:port` or `grpcs://…`.
    Grpc { host: String, port: u16, tls: bool },
}

/// What else forwarding needs: headers to send, and a CA to trust for TLS.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ForwardOptions {
    pub headers: Vec<(String, String)>,
    pub ca_file: Option<std::path::PathBuf>,
}

impl Upstream {
    pub fn parse(url: &str) -> Result<Upstream, String> {
        let authority = |rest: &str, default: u16| -> Result<(String, u16), String> {
            let a = rest.trim_end_matches('/');
            if a.contains('/') {
                return Err(format!("{url}: give the endpoint without a path"));
            }
            match a.rsplit_once(':') {
                Some((h, p)) => Ok((
                    h.to_string(),
                    p.parse().map_err(|_| format!("{url}: bad port {p:?}"))?,
                )),
                None => Ok((a.to_string(), default)),
            }
        };
        let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
        match scheme {
            "http" | "https" => {
                let (host, port) = authority(rest, if scheme == "https" { 443 } else { 4318 })?;
                Ok(Upstream::Http {
                    host,
                    port,
                    tls: scheme == "https",
                })
            }
            "grpc" | "grpcs" => {
                let (host, port) = authority(rest, 4317)?;
                Ok(Upstream::Grpc {
                    host,
                    port,
                    tls: scheme == "grpcs",
                })
            }
            _ => Err(format!(
                "{url}: forward to http(s)://HOST:PORT (OTLP/HTTP) or grpc(s)://HOST:PORT (OTLP/gRPC)"
            )),
        }
    }
}

enum Undelivered {
    /// Refused for good, or still failing when it was time to give up.
    Refused(String),
    /// The collector is stopping.
    Stopped,
}

/// One failed attempt, and whether trying again may help.
struct Failure {
    message: String,
    retry: bool,
}

pub struct Forward {
    upstream: Upstream,
    options: ForwardOptions,
    /// For TLS over HTTP: the client configuration (roots).
    tls: Option<Arc<rustls::ClientConfig>>,
    /// For gRPC: a runtime of the exporter thread's own, and the connection.
    grpc: Option<(tokio::runtime::Runtime, Option<tonic::transport::Channel>)>,
    pub stats: Arc<ForwardStats>,
}

#[derive(Debug, Default)]
pub struct ForwardStats {
    pub sent: AtomicU64,
    pub dropped: AtomicU64,
    warned: AtomicBool,
}

impl Forward {
    pub fn new(upstream: Upstream, options: ForwardOptions) -> Result<Forward, String> {
        let grpc = matches!(upstream, Upstream::Grpc { .. }).then(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime");
            (rt, None)
        });
        let tls = match &upstream {
            Upstream::Http { tls: true, .. } => {
                Some(crate::tls::client(options.ca_file.as_deref())?)
            }
            _ => None,
        };
        Ok(Forward {
            upstream,
            options,
            tls,
            grpc,
            stats: Arc::default(),
        })
    }

    fn describe(&self) -> String {
        match &self.upstream {
            Upstream::Http { host, port, tls } => {
                format!("{}://{host}:{port}", if *tls { "https" } else { "http" })
            }
            Upstream::Grpc { host, port, tls } => {
                format!("{}://{host}:{port}", if *tls { "grpcs" } else { "grpc" })
            }
        }
    }

    fn send_once(&mut self, signal: Signal, body: &[u8]) -> Result<(), Failure> {
        match &self.upstream {
            Upstream::Http { host, port, .. } => http_post(
                host,
                *port,
                self.tls.clone(),
                &self.options.headers,
                signal,
                body,
            ),
            Upstream::Grpc { host, port, tls } => {
                let target = GrpcTarget {
                    url: format!("{}://{host}:{port}", if *tls { "https" } else { "http" }),
                    host: host.clone(),
                    tls: *tls,
                    ca_file: self.options.ca_file.clone(),
                    headers: self.options.headers.clone(),
                };
                let (rt, channel) = self.grpc.as_mut().expect("made for gRPC upstreams");
                rt.block_on(grpc_export(&target, channel, signal, body))
            }
        }
    }

    /// Sends until it works, a permanent failure, `give_up` (None: never), or `stop`.
    fn deliver(
        &mut self,
        signal: Signal,
        body: &[u8],
        give_up: Option<Duration>,
        stop: Option<&AtomicBool>,
    ) -> Result<(), Undelivered> {
        let start = Instant::now();
        let mut delay = FIRST_DELAY;
        loop {
            match self.send_once(signal, body) {
                Ok(()) => {
                    self.stats.sent.fetch_add(1, Relaxed);
                    if self.stats.warned.swap(false, Relaxed) {
                        eprintln!("collector: forwarding to {} works again", self.describe());
                    }
                    return Ok(());
                }
                Err(f) if !f.retry => return Err(Undelivered::Refused(f.message)),
                Err(f) => {
                    if give_up.is_some_and(|g| start.elapsed() + delay > g) {
                        return Err(Undelivered::Refused(format!(
                            "{} (gave up after {:?})",
                            f.message,
                            start.elapsed()
                        )));
                    }
                    if stop.is_some_and(|s| s.load(Relaxed)) {
                        return Err(Undelivered::Stopped);
                    }
                    if !self.stats.warned.swap(true, Relaxed) {
                        eprintln!(
                            "collector: forwarding to {} failed: {}; retrying",
                            self.describe(),
                            f.message
                        );
                    }
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(MAX_DELAY);
                }
            }
        }
    }

    /// Forwards the on-disk queue's records, in order, until `stop` is set; each is
    /// marked delivered only once the upstream took it (or refused it for good).
    pub fn drain(mut self, wal: Arc<Wal>, stop: Arc<AtomicBool>) {
        let mut at = match wal.position() {
            Ok(p) => p,
            Err(e) => {
                eprintln!(
                    "collector: cannot read the forward queue in {}: {e}",
                    wal.dir().display()
                );
                return;
            }
        };
        while !stop.load(Relaxed) {
            let Some((signal, body, next)) = wal.next(at, Duration::from_millis(200)) else {
                continue;
            };
            match self.deliver(signal, &body, None, Some(&stop)) {
                Ok(()) => {}
                // Still queued on disk: the next start sends it.
                Err(Undelivered::Stopped) => return,
                Err(Undelivered::Refused(e)) => {
                    // Refused for good (a 400, say): keeping it would block the queue.
                    self.stats.dropped.fetch_add(1, Relaxed);
                    eprintln!(
                        "collector: {} refused a queued request for good: {e}",
                        self.describe()
                    );
                }
            }
            if let Err(e) = wal.commit(next) {
                eprintln!("collector: cannot save the forward queue's position: {e}");
            }
            at = next;
        }
    }
}

impl Exporter for Forward {
    fn name(&self) -> String {
        format!("otlp({})", self.describe())
    }

    fn export(&mut self, batch: &Payload) -> Result<(), String> {
        let body = batch.to_protobuf();
        self.deliver(batch.signal(), &body, Some(GIVE_UP_AFTER), None)
            .map_err(|e| {
                self.stats.dropped.fetch_add(1, Relaxed);
                match e {
                    Undelivered::Refused(m) => m,
                    Undelivered::Stopped => "stopped".into(),
                }
            })
    }
}

fn http_post(
    host: &str,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
    headers: &[(String, String)],
    signal: Signal,
    body: &[u8],
) -> Result<(), Failure> {
    let retry = |message: String| Failure {
        message,
        retry: true,
    };
    let tcp = TcpStream::connect((host, port)).map_err(|e| retry(e.to_string()))?;
    tcp.set_read_timeout(Some(Duration::from_secs(30))).ok();
    tcp.set_write_timeout(Some(Duration::from_secs(30))).ok();
    let mut s = crate::tls::over(tcp, host, tls).map_err(|e| Failure {
        retry: e.kind() != std::io::ErrorKind::InvalidInput,
        message: e.to_string(),
    })?;
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let head = format!(
        "POST /v1/{} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/x-protobuf\r\n\
         {extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        signal.name(),
        body.len()
    );
    s.write_all(head.as_bytes())
        .and_then(|_| s.write_all(body))
        .map_err(|e| retry(e.to_string()))?;
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status).map_err(|e| retry(e.to_string()))?;
    let code: u16 = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| retry(format!("not an HTTP answer: {:?}", status.trim())))?;
    if (200..300).contains(&code) {
        return Ok(());
    }
    let mut rest = Vec::new();
    let _ = r.take(64 * 1024).read_to_end(&mut rest);
    Err(Failure {
        message: format!("HTTP {code}"),
        retry: matches!(code, 429 | 502 | 503 | 504),
    })
}

struct GrpcTarget {
    url: String,
    host: String,
    tls: bool,
    ca_file: Option<std::path::PathBuf>,
    headers: Vec<(String, String)>,
}

async fn grpc_export(
    target: &GrpcTarget,
    channel: &mut Option<tonic::transport::Channel>,
    signal: Signal,
    body: &[u8],
) -> Result<(), Failure> {
    let permanent = |message: String| Failure {
        message,
        retry: false,
    };
    if channel.is_none() {
        let mut endpoint = tonic::transport::Endpoint::from_shared(target.url.clone())
            .map_err(|e| permanent(e.to_string()))?;
        if target.tls {
            let mut tls = tonic::transport::ClientTlsConfig::new()
                .with_native_roots()
                .domain_name(target.host.clone());
            if let Some(ca) = &target.ca_file {
                let pem =
                    std::fs::read(ca).map_err(|e| permanent(format!("{}: {e}", ca.display())))?;
                tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
            }
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| permanent(e.to_string()))?;
        }
        *channel = Some(endpoint.connect().await.map_err(|e| Failure {
            message: format!("connecting: {e}"),
            retry: true,
        })?);
    }
    let mut grpc = tonic::client::Grpc::new(channel.clone().expect("connected above"));
    grpc.ready().await.map_err(|e| Failure {
        message: e.to_string(),
        retry: true,
    })?;
    let path = match signal {
        Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    };
    let mut request = tonic::Request::new(body.to_vec());
    for (k, v) in &target.headers {
        let key = tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
            .map_err(|e| permanent(format!("header {k}: {e}")))?;
        let value = v
            .parse()
            .map_err(|e| permanent(format!("header {k}: {e}")))?;
        request.metadata_mut().insert(key, value);
    }
    let result = grpc
        .unary::<Vec<u8>, Bytes, _>(
            request,
            http::uri::PathAndQuery::from_static(path),
            crate::receiver::grpc::RawCodec,
        )
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(status) => {
            use tonic::Code::*;
            let retry = matches!(
                status.code(),
                Cancelled
                    | DeadlineExceeded
                    | ResourceExhausted
                    | Aborted
                    | OutOfRange
                    | Unavailable
                    | DataLoss
            );
            if retry {
                // The connection may be what failed: make a new one next time.
                *channel = None;
            }
            Err(Failure {
                message: format!("gRPC {:?}: {}", status.code(), status.message()),
                retry,
            })
        }
    }
}
