//! What `cargo instrument traces` reads: a running collector's API, or a file of OTLP
//! JSON lines (the file exporter's, or the OpenTelemetry Collector's).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::opamp::agents::AgentView;
use crate::store::{rows, Query, SpanRow, Store, TraceSummary};

/// Whom `control set` pushes a config to.
pub enum Target {
    Agent(String),
    Service(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{url}: {reason}")]
    Endpoint { url: String, reason: String },
    #[error("{path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: not an OTLP/JSON export request: {reason}")]
    Line {
        path: String,
        line: usize,
        reason: String,
    },
}

/// A collector's viewer API (`http://127.0.0.1:4319` by default).
pub struct Endpoint {
    base: String,
    host: String,
    port: u16,
    token: Option<String>,
    /// For `https://` endpoints.
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Endpoint {
    /// The collector's token, sent as a bearer token.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// `http://` or `https://` (trusting the system's roots and `ca_file`).
    pub fn new(url: &str, ca_file: Option<&std::path::Path>) -> Result<Endpoint, ReadError> {
        let fail = |reason: &str| ReadError::Endpoint {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let (rest, tls) = match url.split_once("://") {
            Some(("http", rest)) => (rest, None),
            Some(("https", rest)) => (
                rest,
                Some(crate::tls::client(ca_file).map_err(|e| fail(&e))?),
            ),
            _ => {
                return Err(fail(
                    "expected http:// or https:// (the collector's viewer address)",
                ))
            }
        };
        let authority = rest.split('/').next().unwrap_or("");
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| fail("bad port"))?),
            None => (authority, if tls.is_some() { 443 } else { 80 }),
        };
        Ok(Endpoint {
            base: format!(
                "{}://{authority}",
                if tls.is_some() { "https" } else { "http" }
            ),
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            token: None,
            tls,
        })
    }

    fn get(&self, path: &str) -> Result<Vec<u8>, ReadError> {
        self.request("GET", path, None)
    }

    fn request(&self, method: &str, path: &str, body: Option<&[u8]>) -> Result<Vec<u8>, ReadError> {
        let fail = |reason: String| ReadError::Endpoint {
            url: format!("{}{path}", self.base),
            reason,
        };
        let tcp = TcpStream::connect((self.host.as_str(), self.port)).map_err(|e| {
            fail(format!(
                "{e} (is `cargo instrument collector` running? its viewer address is the endpoint)"
            ))
        })?;
        tcp.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let mut s =
            crate::tls::over(tcp, &self.host, self.tls.clone()).map_err(|e| fail(e.to_string()))?;
        let auth = self
            .token
            .as_ref()
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let length = body
            .map(|b| format!("Content-Length: {}\r\n", b.len()))
            .unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}:{}\r\n{auth}{length}Connection: close\r\n\r\n",
            self.host, self.port
        )
        .map_err(|e| fail(e.to_string()))?;
        if let Some(b) = body {
            s.write_all(b).map_err(|e| fail(e.to_string()))?;
        }
        let mut r = BufReader::new(s);
        let mut status = String::new();
        r.read_line(&mut status).map_err(|e| fail(e.to_string()))?;
        let mut chunked = false;
        loop {
            let mut h = String::new();
            r.read_line(&mut h).map_err(|e| fail(e.to_string()))?;
            if h.trim().is_empty() {
                break;
            }
            if h.to_ascii_lowercase().starts_with("transfer-encoding:") && h.contains("chunked") {
                chunked = true;
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                let mut size = String::new();
                r.read_line(&mut size).map_err(|e| fail(e.to_string()))?;
                let n = usize::from_str_radix(size.trim(), 16)
                    .map_err(|_| fail(format!("bad chunk size {size:?}")))?;
                if n == 0 {
                    break;
                }
                let start = body.len();
                body.resize(start + n, 0);
                r.read_exact(&mut body[start..])
                    .map_err(|e| fail(e.to_string()))?;
                r.read_line(&mut String::new())
                    .map_err(|e| fail(e.to_string()))?;
            }
        } else {
            r.read_to_end(&mut body).map_err(|e| fail(e.to_string()))?;
        }
        if !status.contains(" 200 ") {
            return Err(fail(format!(
                "{} {}",
                status.trim(),
                String::from_utf8_lossy(&body)
            )));
        }
        Ok(body)
    }

    pub fn search(&self, q: &Query) -> Result<Vec<TraceSummary>, ReadError> {
        let mut params = Vec::new();
        if let Some(s) = &q.service {
            params.push(format!("service={}", encode(s)));
        }
        if let Some(n) = q.limit {
            params.push(format!("limit={n}"));
        }
        if q.errors {
            params.push("errors=true".into());
        }
        let body = self.get(&format!("/api/traces?{}", params.join("&")))?;
        serde_json::from_slice(&body).map_err(|e| ReadError::Endpoint {
            url: self.base.clone(),
            reason: format!("unexpected answer: {e}"),
        })
    }

    /// The agents that reported over OpAMP.
    pub fn agents(&self) -> Result<Vec<AgentView>, ReadError> {
        let body = self.get("/api/agents")?;
        serde_json::from_slice(&body).map_err(|e| ReadError::Endpoint {
            url: self.base.clone(),
            reason: format!("unexpected answer: {e}"),
        })
    }

    /// Pushes a config to one agent (`Target::Agent`) or a service's agents; returns the
    /// config's hash and how many agents it reaches now.
    pub fn push(&self, target: &Target, config: &[u8]) -> Result<(String, usize), ReadError> {
        let path = match target {
            Target::Agent(uid) => format!("/api/agents/{}/config", encode(uid)),
            Target::Service(name) => format!("/api/services/{}/config", encode(name)),
        };
        #[derive(serde::Deserialize)]
        struct Pushed {
            hash: String,
            agents: usize,
        }
        let body = self.request("POST", &path, Some(config))?;
        serde_json::from_slice::<Pushed>(&body)
            .map(|p| (p.hash, p.agents))
            .map_err(|e| ReadError::Endpoint {
                url: self.base.clone(),
                reason: format!("unexpected answer: {e}"),
            })
    }

    pub fn trace(&self, id: &str) -> Result<Vec<SpanRow>, ReadError> {
        #[derive(serde::Deserialize)]
        struct One {
            spans: Vec<SpanRow>,
        }
        let body = self.get(&format!("/api/traces/{id}"))?;
        serde_json::from_slice::<One>(&body)
            .map(|o| o.spans)
            .map_err(|e| ReadError::Endpoint {
                url: self.base.clone(),
                reason: format!("unexpected answer: {e}"),
            })
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Reads the trace lines of an OTLP JSON-lines file into `store`, starting at byte
/// `from`; returns where it stopped (the start of an incomplete last line, if any), so
/// `--follow` can read on from there. Metric and log lines are skipped.
pub fn read_file(path: &Path, from: u64, store: &Store) -> Result<u64, ReadError> {
    let fail = |source| ReadError::File {
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(fail)?;
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(from)).map_err(fail)?;
    let mut text = String::new();
    f.read_to_string(&mut text).map_err(fail)?;
    let complete = text.rfind('\n').map_or(0, |i| i + 1);
    for (i, line) in text[..complete].lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() || !line.contains("\"resourceSpans\"") {
            continue;
        }
        let req: ExportTraceServiceRequest =
            serde_json::from_str(line).map_err(|e| ReadError::Line {
                path: path.display().to_string(),
                line: line_no,
                reason: e.to_string(),
            })?;
        store.insert(rows(&req));
    }
    Ok(from + complete as u64)
}
