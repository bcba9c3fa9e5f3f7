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
