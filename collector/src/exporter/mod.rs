//! The exporters: `debug` (console), `file` (OTLP JSON lines), `otlp` (forwarding
//! upstream) and the viewer's store.

mod debug;
mod file;
mod otlp;

pub use debug::{Debug, Verbosity};
pub use file::{File, Rotation};
pub use otlp::{Forward, ForwardOptions, ForwardStats, Upstream};

use std::sync::Arc;

use crate::pipeline::Exporter;
use crate::signal::Payload;
use crate::store::{rows, Store};

/// Feeds the RED histograms to the viewer's metric store.
pub struct ToMetrics(pub Arc<crate::metrics::MetricStore>);

impl Exporter for ToMetrics {
    fn name(&self) -> String {
        "viewer metrics".into()
    }

    fn export(&mut self, batch: &Payload) -> Result<(), String> {
        if let Payload::Metrics(req) = batch {
            self.0.insert(req);
        }
        Ok(())
    }
}

/// Feeds the in-memory store that the viewer and `cargo instrument traces` read, and its
/// copy on disk when there is one.
pub struct ToStore(pub Arc<Store>, pub Option<crate::persist::Persist>);

impl Exporter for ToStore {
    fn name(&self) -> String {
        "viewer store".into()
    }

    fn export(&mut self, batch: &Payload) -> Result<(), String> {
        if let Payload::Traces(req) = batch {
            let spans = rows(req);
            let saved = match &self.1 {
                Some(p) => p.append(&spans).map_err(|e| format!("trace storage: {e}")),
                None => Ok(()),
            };
            self.0.insert(spans);
            return saved;
        }
        Ok(())
    }
}
