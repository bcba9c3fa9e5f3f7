//! The bound on spans waiting for export, with every drop counted.
//!
//! The SDK's batch processor already drops when its queue is full, but it keeps the count
//! to itself. So the processor is wrapped: `Gate::on_end` admits a span only while fewer
//! than `OTEL_BSP_MAX_QUEUE_SIZE` are waiting (counted here), and `Counted` marks them gone
//! when the exporter takes a batch. The SDK's own queue is sized one batch larger, so it
//! never drops on its own. Drops show in one warning line and in the
//! `otel.sdk.processor.span.processed{error.type="queue_full"}` self-metric.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Span, SpanData, SpanExporter, SpanProcessor,
};
use opentelemetry_sdk::Resource;

use crate::diag::warning;

static WAITING: AtomicUsize = AtomicUsize::new(0);
static CAPACITY: AtomicUsize = AtomicUsize::new(DEFAULT_QUEUE);
static TAKEN: AtomicU64 = AtomicU64::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);
static WARNED: AtomicBool = AtomicBool::new(false);

const DEFAULT_QUEUE: usize = 2048;
const DEFAULT_BATCH: usize = 512;

fn env_usize(name: &str, default: usize) -> usize {
    crate::sdk::env(name)
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// The queue's counters as they are now.
pub(crate) struct Counts {
    /// Spans admitted to the export queue so far.
    pub(crate) admitted: u64,
    /// Spans dropped so far because the queue was full.
    pub(crate) dropped: u64,
    /// Spans waiting for export now.
    pub(crate) waiting: usize,
    pub(crate) capacity: usize,
}

pub(crate) fn counts() -> Counts {
    // Admitted = taken by the exporter + waiting: one counter fewer on the app's path.
    let waiting = WAITING.load(Relaxed);
    Counts {
        admitted: TAKEN.load(Relaxed) + waiting as u64,
        dropped: DROPPED.load(Relaxed),
        waiting,
        capacity: CAPACITY.load(Relaxed),
    }
}

/// A batch processor over `exporter` whose queue bound is ours to count.
pub(crate) fn processor<E: SpanExporter + 'static>(exporter: E) -> Gate {
    let cap = env_usize("OTEL_BSP_MAX_QUEUE_SIZE", DEFAULT_QUEUE);
    let batch = env_usize("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", DEFAULT_BATCH).min(cap);
    CAPACITY.store(cap, Relaxed);
    let config = BatchConfigBuilder::default()
        .with_max_queue_size(cap + batch)
        .with_max_export_batch_size(batch)
        .build();
    Gate {
        inner: BatchSpanProcessor::builder(Counted(exporter))
            .with_batch_config(config)
            .build(),
        cap,
    }
}

#[derive(Debug)]
pub(crate) struct Gate {
    inner: BatchSpanProcessor,
    cap: usize,
}

impl SpanProcessor for Gate {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if WAITING.fetch_add(1, Relaxed) >= self.cap {
            WAITING.fetch_sub(1, Relaxed);
            DROPPED.fetch_add(1, Relaxed);
            if !WARNED.swap(true, Relaxed) {
                warning!(
                    "{} spans are waiting for export (OTEL_BSP_MAX_QUEUE_SIZE): new spans are \
                     dropped until the exporter catches up; see the self-metric \
                     otel.sdk.processor.span.processed{{error.type=\"queue_full\"}}",
                    self.cap
                );
            }
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The exporter, marking each batch it takes as no longer waiting.
#[derive(Debug)]
struct Counted<E>(E);

impl<E: SpanExporter> SpanExporter for Counted<E> {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        crate::call::mark_runtime_thread();
        TAKEN.fetch_add(batch.len() as u64, Relaxed);
        WAITING.fetch_sub(batch.len(), Relaxed);
        self.0.export(batch)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }
}
