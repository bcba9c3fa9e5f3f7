//! A trace as an indented tree of text, for the terminal (`cargo instrument traces`) and
//! the debug exporter.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use crate::store::{summarize, SpanRow};

/// The header line and one line per span, children under their parent in start order.
/// Spans whose parent is not in the trace (yet) are shown as roots.
pub fn render(spans: &[SpanRow]) -> String {
    let Some(first) = spans.first() else {
        return String::new();
    };
    let t = summarize(&first.trace_id, spans);
    let mut out = format!(
        "trace {}  {}  {}  {} span{}",
        t.trace_id,
        t.services.join(","),
        duration(t.duration_ns),
        t.spans,
        if t.spans == 1 { "" } else { "s" }
    );
    if t.errors > 0 {
        let _ = write!(
            out,
            "  {} error{}",
            t.errors,
            if t.errors == 1 { "" } else { "s" }
        );
    }
    out.push('\n');

    let ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let mut children: HashMap<&str, Vec<&SpanRow>> = HashMap::new();
    let mut roots = Vec::new();
    for s in spans {
        if s.parent_id.is_empty() || !ids.contains(s.parent_id.as_str()) {
            roots.push(s);
        } else {
            children.entry(s.parent_id.as_str()).or_default().push(s);
        }
    }
    roots.sort_by_key(|s| s.start_ns);
    for list in children.values_mut() {
        list.sort_by_key(|s| s.start_ns);
    }
    let mut seen = HashSet::new();
    for root in roots {
        line(&mut out, root, &children, 1, &t.service, &mut seen);
    }
    out
}

fn line<'a>(
    out: &mut String,
    s: &'a SpanRow,
    children: &HashMap<&str, Vec<&'a SpanRow>>,
    depth: usize,
    service: &str,
    seen: &mut HashSet<&'a str>,
) {
    // A span listed twice, or a cycle of parent ids from a broken sender, prints once.
    if !seen.insert(s.span_id.as_str()) {
        return;
    }
    let _ = write!(out, "{:indent$}{}", "", s.name, indent = depth * 2);
    if s.kind != 1 && s.kind != 0 {
        let _ = write!(out, " [{}]", kind(s.kind));
    }
    if s.service != service {
        let _ = write!(out, " ({})", s.service);
    }
    let _ = write!(out, "  {}", duration(s.duration_ns()));
    if s.is_error() {
        out.push_str("  ✗ ERROR");
        if !s.status_message.is_empty() {
            let _ = write!(out, ": {}", s.status_message);
        }
    }
    out.push('\n');
    for c in children.get(s.span_id.as_str()).into_iter().flatten() {
        line(out, c, children, depth + 1, service, seen);
    }
}

pub fn kind(k: i32) -> &'static str {
    match k {
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        _ => "internal",
    }
}

pub fn duration(ns: u64) -> String {
    if ns >= 1_000_000_000 {
        format!("{:.2} s", ns as f64 / 1e9)
    } else if ns >= 1_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else {
        format!("{:.1} µs", ns as f64 / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: &str, parent: &str, name: &str, start: u64, end: u64) -> SpanRow {
        SpanRow {
            trace_id: "t1".into(),
            span_id: id.into(),
            parent_id: parent.into(),
            name: name.into(),
            service: "svc".into(),
            kind: 1,
            start_ns: start,
            end_ns: end,
            status_code: 0,
            status_message: String::new(),
            attributes: vec![],
            resource: vec![],
            events: vec![],
            links: vec![],
        }
    }

    #[test]
    fn children_nest_in_start_order_and_errors_show() {
        let mut failing = span("c", "a", "parse", 3_000, 4_000);
        failing.status_code = 2;
        failing.status_message = "bad input".into();
        let mut server = span("a", "", "GET /users/{id}", 1_000, 2_001_000);
        server.kind = 2;
        let mut remote = span("d", "b", "Export", 2_500, 2_600);
        remote.service = "other".into();
        let text = render(&[
            failing,
            server,
            span("b", "a", "load", 2_000, 3_000),
            remote,
            span("e", "missing", "orphan", 9_000, 9_500),
        ]);
        assert_eq!(
            text,
            "trace t1  other,svc  2.00 ms  5 spans  1 error\n\
             \x20 GET /users/{id} [server]  2.00 ms\n\
             \x20   load  1.0 µs\n\
             \x20     Export (other)  0.1 µs\n\
             \x20   parse  1.0 µs  ✗ ERROR: bad input\n\
             \x20 orphan  0.5 µs\n"
        );
    }
}
