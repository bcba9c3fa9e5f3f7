//! Metrics: instruments for hook code, and the duration histograms of the HTTP, RPC and
//! database semantic conventions that the catalog records into.
//!
//! The meter provider starts on first use, from `OTEL_METRICS_EXPORTER` (`otlp` default,
//! `console` to stderr, `none`) and the OTLP variables (per-signal `..._METRICS_...` first),
//! and exports every `OTEL_METRIC_EXPORT_INTERVAL` milliseconds (default 60 s) on the SDK's
//! own thread. Recording never blocks: it updates an in-memory aggregate. The semantic
//! conventions' durations are aggregated by `aggregate`, not the SDK, and join the SDK's
//! metrics at export.

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::metrics::SdkMeterProvider;

use crate::diag::{debug, warning};

/// Bucket boundaries (seconds) the semantic conventions recommend for request durations.
const DURATION_BOUNDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

static PROVIDER: OnceLock<Option<SdkMeterProvider>> = OnceLock::new();

pub(crate) fn provider() -> Option<&'static SdkMeterProvider> {
    PROVIDER.get_or_init(init).as_ref()
}

fn init() -> Option<SdkMeterProvider> {
    if crate::build_time::is_build_time() {
        return None;
    }
    if crate::sdk::env("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return None;
    }
    let exporter = crate::sdk::env("OTEL_METRICS_EXPORTER").unwrap_or_else(|| "otlp".into());
    let builder = SdkMeterProvider::builder().with_resource(crate::sdk::resource().clone());
    let provider = match exporter.trim() {
        "none" => {
            debug!("OTEL_METRICS_EXPORTER=none: no metrics");
            return None;
        }
        "console" => builder
            .with_periodic_exporter(crate::sink::ConsoleMetrics)
            .build(),
        other => {
            if other != "otlp" {
                warning!("OTEL_METRICS_EXPORTER={other:?} is not supported (otlp, console, none): using otlp");
            }
            let timeout = crate::sdk::otlp_timeout("METRICS");
            let (client, endpoint) = crate::sdk::otlp_client("METRICS");
            let mut built = opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_timeout(timeout)
                // Retries happen in the transport, which knows when the process exits.
                .with_retry_policy(opentelemetry_otlp::RetryPolicy::disabled())
                .with_http_client(client);
            if let Some(endpoint) = endpoint {
                built = built.with_endpoint(endpoint);
            }
            match built.build() {
                Ok(e) => builder.with_periodic_exporter(e).build(),
                Err(e) => {
                    warning!(
                        "cannot set up the OTLP metric exporter: {e}; no metrics will be exported"
                    );
                    return None;
                }
            }
        }
    };
    crate::sdk::register_exit_flush();
    self_metrics(&provider);
    Some(provider)
}

/// The runtime's own health, read from its counters at each export (nothing per span):
/// the SDK self-metrics of the semantic conventions for the span queue.
fn self_metrics(provider: &SdkMeterProvider) {
    let meter = provider.meter_with_scope(crate::sdk::scope());
    let component = KeyValue::new("otel.component.type", "batching_span_processor");
    let c = component.clone();
    meter
        .u64_observable_counter("otel.sdk.processor.span.processed")
        .with_unit("{span}")
        .with_description("Spans handed to the export queue, and those dropped because it was full")
        .with_callback(move |o| {
            let q = crate::queue::counts();
            o.observe(q.admitted, std::slice::from_ref(&c));
            o.observe(
                q.dropped,
                &[c.clone(), KeyValue::new("error.type", "queue_full")],
            );
        })
        .build();
    type Read = fn(&crate::queue::Counts) -> usize;
    let gauges: [(&str, Read); 2] = [
        ("otel.sdk.processor.span.queue.size", |q| q.waiting),
        ("otel.sdk.processor.span.queue.capacity", |q| q.capacity),
    ];
    for (name, read) in gauges {
        let c = component.clone();
        meter
            .i64_observable_up_down_counter(name)
            .with_unit("{span}")
            .with_callback(move |o| {
                let n = read(&crate::queue::counts());
                o.observe(
                    i64::try_from(n).unwrap_or(i64::MAX),
                    std::slice::from_ref(&c),
                );
            })
            .build();
    }
}

/// The meter hook code records through: scope `instgo`, this runtime's version.
pub fn meter() -> Option<Meter> {
    provider().map(|p| p.meter_with_scope(crate::sdk::scope()))
}

/// A histogram of `f64` values; a no-op when metrics are off.
#[derive(Clone)]
pub struct Histogram(Option<Recorder>);

#[derive(Clone)]
enum Recorder {
    Sdk(opentelemetry::metrics::Histogram<f64>),
    /// The semantic conventions' durations, recorded on every request (`aggregate`).
    Own(&'static crate::aggregate::Aggregate),
}

impl Histogram {
    /// Records one value with its attributes.
    pub fn record(&self, value: f64, attributes: &[KeyValue]) {
        match &self.0 {
            Some(Recorder::Sdk(h)) => h.record(value, attributes),
            Some(Recorder::Own(a)) => a.record(value, attributes),
            None => {}
        }
    }

    /// Records a duration in seconds, the unit of the semantic conventions' durations.
    pub fn record_duration(&self, d: Duration, attributes: &[KeyValue]) {
        self.record(d.as_secs_f64(), attributes)
    }
}

/// A monotonic `u64` counter; a no-op when metrics are off.
#[derive(Clone)]
pub struct Counter(Option<opentelemetry::metrics::Counter<u64>>);

impl Counter {
    /// Adds `n` with its attributes.
    pub fn add(&self, n: u64, attributes: &[KeyValue]) {
        if let Some(c) = &self.0 {
            c.add(n, attributes);
        }
    }
}

/// A new histogram (create it once, e.g. in a `static OnceLock`, and record many times).
pub fn histogram(
    name: &'static str,
    unit: &'static str,
    description: &'static str,
    bounds: Option<&[f64]>,
) -> Histogram {
    Histogram(meter().map(|m| {
        let b = m
            .f64_histogram(name)
            .with_unit(unit)
            .with_description(description);
        Recorder::Sdk(match bounds {
            Some(bounds) => b.with_boundaries(bounds.to_vec()).build(),
            None => b.build(),
        })
    }))
}

/// A new counter.
pub fn counter(name: &'static str, unit: &'static str, description: &'static str) -> Counter {
    Counter(meter().map(|m| {
        m.u64_counter(name)
            .with_unit(unit)
            .with_description(description)
            .build()
    }))
}

macro_rules! semconv_duration {
    ($(#[$doc:meta] $fn:ident => $name:literal, $what:literal;)*) => {$(
        #[$doc]
        pub fn $fn() -> &'static Histogram {
            static H: OnceLock<Histogram> = OnceLock::new();
            H.get_or_init(|| {
                Histogram(provider().map(|_| {
                    Recorder::Own(crate::aggregate::Aggregate::register(
                        $name,
                        "s",
                        $what,
                        DURATION_BOUNDS,
                    ))
                }))
            })
        }
    )*};
}

semconv_duration! {
    /// `http.server.request.duration` (s).
    http_server_duration => "http.server.request.duration", "Duration of HTTP server requests.";
    /// `http.client.request.duration` (s).
    http_client_duration => "http.client.request.duration", "Duration of HTTP client requests.";
    /// `rpc.server.call.duration` (s).
    rpc_server_duration => "rpc.server.call.duration", "Duration of incoming RPCs.";
    /// `rpc.client.call.duration` (s).
    rpc_client_duration => "rpc.client.call.duration", "Duration of outgoing RPCs.";
    /// `db.client.operation.duration` (s).
    db_client_duration => "db.client.operation.duration", "Duration of database client operations.";
}

/// The duration metric of one call in progress, kept in its [`CallContext`] between
/// enter and exit: where it goes, which side of the call it is, and the attributes
/// gathered so far.
///
/// [`CallContext`]: crate::hook::CallContext
pub(crate) struct CallMetric {
    pub server: bool,
    histogram: &'static Histogram,
    pub attributes: Vec<KeyValue>,
}

impl CallMetric {
    pub fn new(server: bool, histogram: &'static Histogram, attributes: Vec<KeyValue>) -> Self {
        CallMetric {
            server,
            histogram,
            attributes,
        }
    }

    /// Records the call's duration with the gathered attributes.
    pub fn record(&self, elapsed: Duration) {
        self.histogram.record_duration(elapsed, &self.attributes);
    }
}

/// Exports what has been recorded, waiting at most `timeout`; `true` when it finished.
pub(crate) fn flush(timeout: Duration) -> bool {
    let Some(Some(p)) = PROVIDER.get() else {
        return true;
    };
    let p = p.clone();
    crate::sdk::bounded(timeout, move || {
        let _ = p.force_flush();
    })
}
