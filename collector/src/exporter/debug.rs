//! `debug`: what arrives, on the collector's stdout.

use std::io::Write;

use crate::pipeline::Exporter;
use crate::signal::Payload;
use crate::store::rows;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// One line per batch: signal, item count, services.
    Basic,
    /// Traces as trees (see `tree`), other signals as one line.
    Detailed,
}

pub struct Debug {
    pub verbosity: Verbosity,
}

impl Exporter for Debug {
    fn name(&self) -> String {
        "debug".into()
    }

    fn export(&mut self, batch: &Payload) -> Result<(), String> {
        let mut out = std::io::stdout().lock();
        let text = match (self.verbosity, batch) {
            (Verbosity::Detailed, Payload::Traces(req)) => {
                let mut by_trace: Vec<(String, Vec<_>)> = Vec::new();
                for span in rows(req) {
                    match by_trace.iter_mut().find(|(id, _)| *id == span.trace_id) {
                        Some((_, list)) => list.push(span),
                        None => by_trace.push((span.trace_id.clone(), vec![span])),
                    }
                }
                by_trace
                    .iter()
                    .map(|(_, spans)| crate::tree::render(spans))
                    .collect::<String>()
            }
            _ => format!(
                "{}: {} {}\n",
                batch.signal().name(),
                batch.items(),
                match batch {
                    Payload::Traces(_) => "spans",
                    Payload::Metrics(_) => "data points",
                    Payload::Logs(_) => "log records",
                }
            ),
        };
        out.write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .map_err(|e| e.to_string())
    }
}
