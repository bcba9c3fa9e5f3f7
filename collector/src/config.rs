//! The collector's config file, in the OpenTelemetry Collector's shape:
//!
//! ```yaml
//! receivers:
//!   otlp:
//!     protocols:
//!       grpc: { endpoint: 127.0.0.1:4317 }
//!       http: { endpoint: 127.0.0.1:4318 }
//! processors:
//!   batch: { send_batch_size: 8192, timeout: 200ms }
//!   memory_limiter: { limit_mib: 256 }
//! exporters:
//!   debug: { verbosity: detailed }
//!   file: { path: /var/log/traces.jsonl, rotation: { max_megabytes: 100, max_backups: 3 } }
//!   otlp/gateway:
//!     endpoint: grpcs://gateway:4317              # http(s)://, grpc(s)://
//!     headers: { authorization: "Bearer ${env:GATEWAY_TOKEN}" }
//!     tls: { ca_file: /etc/instgo/ca.pem }       # beside the system's roots
//!     sending_queue: { storage: /var/lib/instgo/queue }
//! service:
//!   pipelines:
//!     traces: { receivers: [otlp], processors: [memory_limiter, batch], exporters: [debug, file, otlp/gateway] }
//!     metrics: { receivers: [otlp], exporters: [otlp/gateway] }
//! viewer: { endpoint: 127.0.0.1:4319, max_traces: 10000, storage: /var/lib/instgo/traces, max_megabytes: 512 }
//! auth: { token: "${file:/etc/instgo/token}" }   # required to bind other than loopback
//! tls: { cert_file: cert.pem, key_file: key.pem } # every listener over TLS
//! ```
//!
//! `${env:VAR}` and `${file:PATH}` are replaced before parsing (a missing variable or
//! file is an error naming where it was used). Unknown keys are errors. Every error says
//! `FILE:LINE:COL`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::signal::Signal;

/// A config that cannot be used, and where.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    receivers: BTreeMap<String, Receiver>,
    #[serde(default)]
    processors: BTreeMap<String, Processor>,
    #[serde(default)]
    exporters: BTreeMap<String, ExporterSpec>,
    service: Service,
    #[serde(default)]
    viewer: Option<Viewer>,
    #[serde(default)]
    auth: Option<Auth>,
    #[serde(default)]
    tls: Option<Tls>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Tls {
    cert_file: PathBuf,
    key_file: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Auth {
    token: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Receiver {
    protocols: Protocols,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Protocols {
    grpc: Option<Endpoint>,
    http: Option<Endpoint>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Endpoint {
    endpoint: Option<String>,
    max_request_body_size: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Processor {
    send_batch_size: Option<usize>,
    timeout: Option<String>,
    limit_mib: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExporterSpec {
    verbosity: Option<String>,
    path: Option<PathBuf>,
    rotation: Option<RotationSpec>,
    endpoint: Option<String>,
    sending_queue: Option<QueueSpec>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    tls: Option<ClientTls>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientTls {
    ca_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotationSpec {
    max_megabytes: Option<u64>,
    max_backups: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueSpec {
    storage: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Service {
    pipelines: BTreeMap<String, PipelineSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PipelineSpec {
    receivers: Vec<String>,
    #[serde(default)]
    processors: Vec<String>,
    exporters: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Viewer {
    endpoint: Option<String>,
    max_traces: Option<usize>,
    storage: Option<PathBuf>,
    max_megabytes: Option<u64>,
}

/// One exporter as configured, and the signals whose pipelines name it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExporterConfig {
    pub name: String,
    pub kind: ExporterKind,
    pub signals: Vec<Signal>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExporterKind {
    Debug(crate::exporter::Verbosity),
    File {
        path: PathBuf,
        rotation: crate::exporter::Rotation,
    },
    Otlp {
        endpoint: String,
        queue: Option<PathBuf>,
        options: crate::exporter::ForwardOptions,
    },
}

/// Replaces `${env:VAR}` and `${file:PATH}` in `text`.
fn substitute(text: &str, file: &str, base: &Path) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let mut rest = line;
        let mut col = 1;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            col += rest[..start].chars().count();
            let err = |message: String| ConfigError {
                file: file.to_string(),
                line: n + 1,
                column: col,
                message,
            };
            let end = rest[start..]
                .find('}')
                .ok_or_else(|| err("`${` without a closing `}`".into()))?;
            let inner = &rest[start + 2..start + end];
            let value = match inner.split_once(':') {
                Some(("env", var)) => std::env::var(var)
                    .map_err(|_| err(format!("${{env:{var}}}: the variable is not set")))?,
                Some(("file", path)) => {
                    let p = base.join(path);
                    std::fs::read_to_string(&p)
                        .map_err(|e| err(format!("${{file:{path}}}: {e}")))?
                        .trim_end_matches(['\n', '\r'])
                        .to_string()
                }
                _ => {
                    return Err(err(format!(
                        "${{{inner}}}: expected ${{env:VAR}} or ${{file:PATH}}"
                    )))
                }
            };
            if value.contains('\n') {
                return Err(err(format!(
                    "${{{inner}}} has several lines; one is allowed"
                )));
            }
            out.push_str(&value);
            col += inner.chars().count() + 3;
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
    }
    Ok(out)
}

/// 1-based line and column of the first `needle` that is a whole YAML token.
fn locate(text: &str, needle: &str) -> (usize, usize) {
    for (n, line) in text.lines().enumerate() {
        if let Some(c) = line.find(needle) {
            return (n + 1, c + 1);
        }
    }
    (1, 1)
}

fn duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit() && c != '.')?);
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

/// Reads and checks the config file at `path` into a collector config.
pub fn load(path: &Path) -> Result<crate::Config, ConfigError> {
    let name = path.display().to_string();
    let raw = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: name.clone(),
        line: 0,
        column: 0,
        message: e.to_string(),
    })?;
    parse(&raw, &name, path.parent().unwrap_or(Path::new(".")))
}

/// Parses config text (`file` names it in errors; `${file:…}` paths are relative to `base`).
pub fn parse(raw: &str, file: &str, base: &Path) -> Result<crate::Config, ConfigError> {
    let text = substitute(raw, file, base)?;
    let f: File = serde_norway::from_str(&text).map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        // The location is in the message too; keep it once.
        let message = e.to_string();
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_string();
        ConfigError {
            file: file.to_string(),
            line,
            column,
            message,
        }
    })?;
    let at = |needle: &str, message: String| {
        let (line, column) = locate(&text, needle);
        ConfigError {
            file: file.to_string(),
            line,
            column,
            message,
        }
    };
    let mut c = crate::Config {
        grpc: None,
        http: None,
        ..crate::Config::default()
    };
    let addr = |s: &str, what: &str| {
        s.parse().map_err(|_| {
            at(
                s,
                format!("{what}: {s:?} is not HOST:PORT (e.g. 127.0.0.1:4318)"),
            )
        })
    };
    for (name, r) in &f.receivers {
        if name != "otlp" && !name.starts_with("otlp/") {
            return Err(at(
                name,
                format!("receiver {name:?}: only otlp receivers exist here"),
            ));
        }
        if let Some(g) = &r.protocols.grpc {
            c.grpc = Some(addr(
                g.endpoint.as_deref().unwrap_or(crate::DEFAULT_GRPC),
                "grpc endpoint",
            )?);
            c.max_body = g.max_request_body_size.unwrap_or(c.max_body);
        }
        if let Some(h) = &r.protocols.http {
            c.http = Some(addr(
                h.endpoint.as_deref().unwrap_or(crate::DEFAULT_HTTP),
                "http endpoint",
            )?);
            c.max_body = h.max_request_body_size.unwrap_or(c.max_body);
        }
    }
    for (name, p) in &f.processors {
        match name.split('/').next().unwrap_or("") {
            "batch" => {
                if let Some(n) = p.send_batch_size {
                    c.limits.batch_size = n;
                }
                if let Some(t) = &p.timeout {
                    c.limits.batch_timeout = duration(t)
                        .ok_or_else(|| at(t, format!("timeout {t:?}: expected e.g. 200ms, 1s")))?;
                }
            }
            "memory_limiter" => {
                if let Some(mib) = p.limit_mib {
                    c.limits.memory_limit = mib * 1024 * 1024;
                }
            }
            _ => {
                return Err(at(
                    name,
                    format!("processor {name:?}: batch and memory_limiter exist here"),
                ))
            }
        }
    }
    let mut exporters: Vec<ExporterConfig> = Vec::new();
    for (name, e) in &f.exporters {
        let kind = match name.split('/').next().unwrap_or("") {
            "debug" => ExporterKind::Debug(match e.verbosity.as_deref().unwrap_or("basic") {
                "basic" | "normal" => crate::exporter::Verbosity::Basic,
                "detailed" => crate::exporter::Verbosity::Detailed,
                v => return Err(at(v, format!("verbosity {v:?}: basic or detailed"))),
            }),
            "file" => {
                let path = e
                    .path
                    .clone()
                    .ok_or_else(|| at(name, format!("exporter {name:?} needs a path")))?;
                let mut rotation = crate::exporter::Rotation::default();
                if let Some(r) = &e.rotation {
                    rotation.max_bytes = r
                        .max_megabytes
                        .map_or(rotation.max_bytes, |m| m * 1024 * 1024);
                    rotation.max_backups = r.max_backups.unwrap_or(rotation.max_backups);
                }
                ExporterKind::File { path, rotation }
            }
            "otlp" | "otlphttp" => {
                let endpoint = e
                    .endpoint
                    .clone()
                    .ok_or_else(|| at(name, format!("exporter {name:?} needs an endpoint")))?;
                crate::exporter::Upstream::parse(&endpoint).map_err(|m| at(&endpoint, m))?;
                ExporterKind::Otlp {
                    endpoint,
                    queue: e.sending_queue.as_ref().and_then(|q| q.storage.clone()),
                    options: crate::exporter::ForwardOptions {
                        headers: e.headers.clone().into_iter().collect(),
                        ca_file: e
                            .tls
                            .as_ref()
                            .and_then(|t| t.ca_file.as_ref())
                            .map(|c| base.join(c)),
                    },
                }
            }
            other => {
                return Err(at(
                    name,
                    format!(
                        "exporter {name:?}: type {other:?} does not exist here (debug, file, otlp)"
                    ),
                ))
            }
        };
        exporters.push(ExporterConfig {
            name: name.clone(),
            kind,
            signals: Vec::new(),
        });
    }
    for (pname, p) in &f.service.pipelines {
        let signal = match pname.split('/').next().unwrap_or("") {
            "traces" => Signal::Traces,
            "metrics" => Signal::Metrics,
            "logs" => Signal::Logs,
            _ => {
                return Err(at(
                    pname,
                    format!("pipeline {pname:?}: traces, metrics or logs"),
                ))
            }
        };
        for r in &p.receivers {
            if !f.receivers.contains_key(r) {
                return Err(at(
                    r,
                    format!("pipeline {pname:?}: no receiver {r:?} is configured"),
                ));
            }
        }
        for pr in &p.processors {
            if !f.processors.contains_key(pr) {
                return Err(at(
                    pr,
                    format!("pipeline {pname:?}: no processor {pr:?} is configured"),
                ));
            }
        }
        for e in &p.exporters {
            let Some(x) = exporters.iter_mut().find(|x| &x.name == e) else {
                return Err(at(
                    e,
                    format!("pipeline {pname:?}: no exporter {e:?} is configured"),
                ));
            };
            if !x.signals.contains(&signal) {
                x.signals.push(signal);
            }
        }
    }
    let queues: Vec<_> = exporters
        .iter()
        .filter(|x| matches!(x.kind, ExporterKind::Otlp { queue: Some(_), .. }))
        .collect();
    if queues.len() > 1 {
        return Err(at(
            &queues[1].name,
            "only one otlp exporter can have a sending_queue storage".into(),
        ));
    }
    c.exporters = exporters;
    c.token = f.auth.as_ref().map(|a| a.token.clone());
    c.tls = f.tls.as_ref().map(|t| crate::tls::TlsFiles {
        cert: base.join(&t.cert_file),
        key: base.join(&t.key_file),
    });
    if let Some(v) = &f.viewer {
        if let Some(e) = &v.endpoint {
            c.ui = Some(addr(e, "viewer endpoint")?);
        }
        c.max_traces = v.max_traces.unwrap_or(c.max_traces);
        c.storage = v.storage.clone();
        if let Some(mb) = v.max_megabytes {
            c.storage_max_bytes = mb * 1024 * 1024;
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests;
