//! `OTEL_TRACES_EXPORTER=console`: span trees on stderr.
//!
//! stdout belongs to the application, so the console exporter writes to stderr. Spans of
//! one trace that arrive in the same batch print as an indented tree.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use opentelemetry::trace::{SpanId, Status};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

#[derive(Debug, Default)]
pub(crate) struct ConsoleExporter;

impl SpanExporter for ConsoleExporter {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let text = render(&batch);
        let _ = std::io::stderr().write_all(text.as_bytes());
        std::future::ready(Ok(()))
    }
}

pub(crate) fn render(batch: &[SpanData]) -> String {
    let mut out = String::new();
    let mut traces: Vec<_> = Vec::new();
    let mut by_trace: HashMap<_, Vec<&SpanData>> = HashMap::new();
    for s in batch {
        let id = s.span_context.trace_id();
        if !by_trace.contains_key(&id) {
            traces.push(id);
        }
        by_trace.entry(id).or_default().push(s);
    }
    for id in traces {
        let spans = &by_trace[&id];
        out.push_str(&format!("instgo: trace {id}\n"));
        let present: Vec<SpanId> = spans.iter().map(|s| s.span_context.span_id()).collect();
        let mut roots: Vec<&SpanData> = spans
            .iter()
            .copied()
            .filter(|s| !present.contains(&s.parent_span_id))
            .collect();
        roots.sort_by_key(|s| s.start_time);
        for r in roots {
            tree(&mut out, spans, r, 1);
        }
    }
    out
}

fn tree(out: &mut String, spans: &[&SpanData], span: &SpanData, depth: usize) {
    let dur = span
        .end_time
        .duration_since(span.start_time)
        .unwrap_or(Duration::ZERO);
    let status = match &span.status {
        Status::Error { description } => format!("  ERROR: {description}"),
        _ => String::new(),
    };
    out.push_str(&format!(
        "{}{} [{:?}] {:.3} ms{}\n",
        "  ".repeat(depth),
        span.name,
        span.span_kind,
        dur.as_secs_f64() * 1000.0,
        status
    ));
    let mut children: Vec<&SpanData> = spans
        .iter()
        .copied()
        .filter(|c| c.parent_span_id == span.span_context.span_id())
        .collect();
    children.sort_by_key(|s| s.start_time);
    for c in children {
        tree(out, spans, c, depth + 1);
    }
}

fn attrs<'a>(kv: impl Iterator<Item = &'a opentelemetry::KeyValue>) -> String {
    kv.map(|kv| format!("{}={}", kv.key, kv.value))
        .collect::<Vec<_>>()
        .join(",")
}

/// One histogram data point's console line (the SDK's and `aggregate`'s).
pub(crate) fn histogram_line<'a>(
    out: &mut String,
    name: &str,
    attributes: impl Iterator<Item = &'a opentelemetry::KeyValue>,
    count: u64,
    sum: f64,
    unit: &str,
) {
    out.push_str(&format!(
        "instgo: metric {name} {{{}}} count={count} sum={sum:.6}{unit}\n",
        attrs(attributes)
    ));
}

/// `OTEL_METRICS_EXPORTER=console`: one line per data point on stderr.
#[derive(Debug, Default)]
pub(crate) struct ConsoleMetrics;

impl opentelemetry_sdk::metrics::exporter::PushMetricExporter for ConsoleMetrics {
    fn export(
        &self,
        metrics: &opentelemetry_sdk::metrics::data::ResourceMetrics,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
        let mut out = String::new();
        for scope in metrics.scope_metrics() {
            for m in scope.metrics() {
                let line = |out: &mut String, what: String| {
                    out.push_str(&format!("instgo: metric {} {what}\n", m.name()));
                };
                match m.data() {
                    AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                        for p in h.data_points() {
                            histogram_line(
                                &mut out,
                                m.name(),
                                p.attributes(),
                                p.count(),
                                p.sum(),
                                m.unit(),
                            );
                        }
                    }
                    AggregatedMetrics::U64(MetricData::Sum(s)) => {
                        for p in s.data_points() {
                            line(
                                &mut out,
                                format!("{{{}}} {}", attrs(p.attributes()), p.value()),
                            )
                        }
                    }
                    AggregatedMetrics::I64(MetricData::Sum(s)) => {
                        for p in s.data_points() {
                            line(
                                &mut out,
                                format!("{{{}}} {}", attrs(p.attributes()), p.value()),
                            )
                        }
                    }
                    _ => line(&mut out, "(kind not shown on the console)".to_string()),
                }
            }
        }
        crate::aggregate::console_lines(&mut out);
        let _ = std::io::stderr().write_all(out.as_bytes());
        std::future::ready(Ok(()))
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> opentelemetry_sdk::metrics::Temporality {
        opentelemetry_sdk::metrics::Temporality::Cumulative
    }
}

/// `OTEL_TRACES_EXPORTER=discard` (for benchmarks): export succeeds and keeps nothing.
#[derive(Debug, Default)]
pub(crate) struct Discard;

impl SpanExporter for Discard {
    fn export(
        &self,
        _batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        std::future::ready(Ok(()))
    }
}
