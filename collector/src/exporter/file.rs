//! `file`: one OTLP/JSON export request per line (the OpenTelemetry Collector file
//! exporter's format), rotated by size.

use std::fs::{self, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::pipeline::Exporter;
use crate::signal::Payload;

#[derive(Debug, Clone, PartialEq)]
pub struct Rotation {
    /// Size at which the file is rotated (`path` → `path.1` → `path.2`…).
    pub max_bytes: u64,
    /// Rotated files kept; older ones are deleted.
    pub max_backups: usize,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            max_bytes: 100 * 1024 * 1024,
            max_backups: 3,
        }
    }
}

pub struct File {
    path: PathBuf,
    rotation: Rotation,
    out: Option<BufWriter<fs::File>>,
    size: u64,
}

impl File {
    pub fn new(path: impl Into<PathBuf>, rotation: Rotation) -> std::io::Result<File> {
        let path = path.into();
        let mut f = File {
            path,
            rotation,
            out: None,
            size: 0,
        };
        f.open()?;
        Ok(f)
    }

    fn open(&mut self) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = file.metadata()?.len();
        self.out = Some(BufWriter::new(file));
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        if let Some(mut out) = self.out.take() {
            out.flush()?;
        }
        let backup = |n: usize| -> PathBuf { numbered(&self.path, n) };
        let _ = fs::remove_file(backup(self.rotation.max_backups));
        for n in (1..self.rotation.max_backups).rev() {
            let _ = fs::rename(backup(n), backup(n + 1));
        }
        if self.rotation.max_backups > 0 {
            fs::rename(&self.path, backup(1))?;
        } else {
            fs::remove_file(&self.path)?;
        }
        self.open()
    }
}

fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(format!(".{n}"));
    PathBuf::from(p)
}

impl Exporter for File {
    fn name(&self) -> String {
        format!("file({})", self.path.display())
    }

    fn export(&mut self, batch: &Payload) -> Result<(), String> {
        let mut line = batch.to_json();
        line.push('\n');
        let path = self.path.display().to_string();
        let fail = |e: std::io::Error| format!("{path}: {e}");
        if self.size > 0 && self.size + line.len() as u64 > self.rotation.max_bytes {
            self.rotate().map_err(|e| format!("rotating {path}: {e}"))?;
        }
        if self.out.is_none() {
            self.open().map_err(fail)?;
        }
        let out = self.out.as_mut().expect("opened above");
        out.write_all(line.as_bytes())
            .and_then(|_| out.flush())
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn flush(&mut self) {
        if let Some(out) = self.out.as_mut() {
            let _ = out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn batch(name: &str) -> Payload {
        Payload::Traces(ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: vec![1; 16],
                        span_id: vec![2; 8],
                        name: name.into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
    }

    #[test]
    fn lines_read_back_and_rotation_keeps_the_newest() {
        let dir = std::env::temp_dir().join(format!("instgo-file-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let path = dir.join("out.jsonl");
        let one_line = batch("x0").to_json().len() as u64 + 1;
        let mut f = File::new(
            &path,
            Rotation {
                max_bytes: one_line * 2,
                max_backups: 2,
            },
        )
        .unwrap();
        for i in 0..7 {
            f.export(&batch(&format!("x{i}"))).unwrap();
        }
        let read = |p: &Path| -> Vec<String> {
            fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| {
                    match Payload::decode(
                        crate::signal::Signal::Traces,
                        crate::signal::Encoding::Json,
                        l.as_bytes(),
                    )
                    .unwrap()
                    {
                        Payload::Traces(r) => {
                            r.resource_spans[0].scope_spans[0].spans[0].name.clone()
                        }
                        _ => unreachable!(),
                    }
                })
                .collect()
        };
        assert_eq!(read(&path), ["x6"]);
        assert_eq!(read(&numbered(&path, 1)), ["x4", "x5"]);
        assert_eq!(read(&numbered(&path, 2)), ["x2", "x3"]);
        assert!(!numbered(&path, 3).exists());
        let _ = fs::remove_dir_all(&dir);
    }
}
