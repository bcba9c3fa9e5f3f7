//! Recent traces, kept in memory for the viewer, the API and `cargo instrument traces`.
//!
//! Spans are flattened into rows as they arrive (ids as hex, attributes as text), grouped
//! by trace. The store is bounded by a number of traces: the oldest trace (by arrival of
//! its first span) goes when a new one comes in over the bound.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use serde::{Deserialize, Serialize};

/// One span as the viewer shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SpanRow {
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_id: String,
    pub name: String,
    pub service: String,
    /// OTLP's span kind number (1 internal, 2 server, 3 client, 4 producer, 5 consumer).
    pub kind: i32,
    pub start_ns: u64,
    pub end_ns: u64,
    /// OTLP's status code number (0 unset, 1 ok, 2 error).
    pub status_code: i32,
    pub status_message: String,
    pub attributes: Vec<(String, String)>,
    pub resource: Vec<(String, String)>,
    pub events: Vec<EventRow>,
    /// Linked spans, as `trace_id:span_id`.
    pub links: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventRow {
    pub name: String,
    pub time_ns: u64,
    pub attributes: Vec<(String, String)>,
}

impl SpanRow {
    pub fn is_error(&self) -> bool {
        self.status_code == 2
    }

    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// One line of the trace list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TraceSummary {
    pub trace_id: String,
    /// The root span's service (or the earliest span's, while the root is missing).
    pub service: String,
    pub root: String,
    pub start_ns: u64,
    pub duration_ns: u64,
    pub spans: usize,
    pub errors: usize,
    pub services: Vec<String>,
}

/// What the trace list can be narrowed to; every field set must hold.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Query {
    pub service: Option<String>,
    /// A span name some span of the trace has.
    pub name: Option<String>,
    /// `key=value` some span of the trace has (as text).
    pub attr: Option<String>,
    pub min_ms: Option<f64>,
    #[serde(default)]
    pub errors: bool,
    pub limit: Option<usize>,
}

/// Spans of `req`, flattened.
pub fn rows(req: &ExportTraceServiceRequest) -> Vec<SpanRow> {
    let mut out = Vec::new();
    for rs in &req.resource_spans {
        let resource = rs
            .resource
            .as_ref()
            .map(|r| flat(&r.attributes))
            .unwrap_or_default();
        let service = service_name(&resource);
        for ss in &rs.scope_spans {
            for s in &ss.spans {
                let status = s.status.clone().unwrap_or_default();
                out.push(SpanRow {
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent_id: hex(&s.parent_span_id),
                    name: s.name.clone(),
                    service: service.clone(),
                    kind: s.kind,
                    start_ns: s.start_time_unix_nano,
                    end_ns: s.end_time_unix_nano,
                    status_code: status.code,
                    status_message: status.message,
                    attributes: flat(&s.attributes),
                    resource: resource.clone(),
                    events: s
                        .events
                        .iter()
                        .map(|e| EventRow {
                            name: e.name.clone(),
                            time_ns: e.time_unix_nano,
                            attributes: flat(&e.attributes),
                        })
                        .collect(),
                    links: s
                        .links
                        .iter()
                        .map(|l| format!("{}:{}", hex(&l.trace_id), hex(&l.span_id)))
                        .collect(),
                });
            }
        }
    }
    out
}

/// `service.name` of a resource's attributes, or OTLP's default for a missing one.
pub fn service_name(resource: &[(String, String)]) -> String {
    resource
        .iter()
        .find(|(k, _)| k == "service.name")
        .map_or_else(|| "unknown_service".to_string(), |(_, v)| v.clone())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn flat(kvs: &[KeyValue]) -> Vec<(String, String)> {
    kvs.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map(text).unwrap_or_default(),
            )
        })
        .collect()
}

fn text(v: &AnyValue) -> String {
    match &v.value {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::ArrayValue(a)) => {
            let items: Vec<String> = a.values.iter().map(text).collect();
            format!("[{}]", items.join(", "))
        }
        Some(Value::KvlistValue(l)) => {
            let items: Vec<String> = flat(&l.values)
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Some(Value::BytesValue(b)) => hex(b),
        Some(Value::StringValueStrindex(i)) => format!("#{i}"),
        None => String::new(),
    }
}

/// Summary of one trace's spans.
pub fn summarize(trace_id: &str, spans: &[SpanRow]) -> TraceSummary {
    let ids: std::collections::HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    // The root: no parent, or (while it has not arrived) a parent not in the trace.
    let root = spans
        .iter()
        .filter(|s| s.parent_id.is_empty())
        .chain(spans.iter().filter(|s| !ids.contains(s.parent_id.as_str())))
        .min_by_key(|s| (!s.parent_id.is_empty(), s.start_ns));
    let start = spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
    let end = spans.iter().map(|s| s.end_ns).max().unwrap_or(0);
    let mut services: Vec<String> = spans.iter().map(|s| s.service.clone()).collect();
    services.sort();
    services.dedup();
    TraceSummary {
        trace_id: trace_id.to_string(),
        service: root.map(|r| r.service.clone()).unwrap_or_default(),
        root: root.map(|r| r.name.clone()).unwrap_or_default(),
        start_ns: start,
        duration_ns: end.saturating_sub(start),
        spans: spans.len(),
        errors: spans.iter().filter(|s| s.is_error()).count(),
        services,
    }
}

/// The bounded in-memory store.
pub struct Store {
    max_traces: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    traces: HashMap<String, Vec<SpanRow>>,
    /// Trace ids by arrival of their first span, oldest first.
    order: VecDeque<String>,
}

impl Store {
    pub fn new(max_traces: usize) -> Store {
        Store {
            max_traces: max_traces.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn insert(&self, spans: Vec<SpanRow>) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for span in spans {
            let id = span.trace_id.clone();
            match inner.traces.get_mut(&id) {
                Some(list) => list.push(span),
                None => {
                    inner.traces.insert(id.clone(), vec![span]);
                    inner.order.push_back(id);
                }
            }
        }
        while inner.order.len() > self.max_traces {
            if let Some(old) = inner.order.pop_front() {
                inner.traces.remove(&old);
            }
        }
    }

    pub fn trace(&self, id: &str) -> Option<Vec<SpanRow>> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.traces.get(&id.to_ascii_lowercase()).cloned()
    }

    /// Traces matching `q`, newest first.
    pub fn search(&self, q: &Query) -> Vec<TraceSummary> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let attr = q.attr.as_deref().map(|a| match a.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (a.trim(), None),
        });
        let mut out: Vec<TraceSummary> = inner
            .order
            .iter()
            .rev()
            .filter_map(|id| Some((id, inner.traces.get(id)?)))
            .filter(|(_, spans)| {
                q.service
                    .as_ref()
                    .is_none_or(|s| spans.iter().any(|x| &x.service == s))
                    && q.name
                        .as_ref()
                        .is_none_or(|n| spans.iter().any(|x| &x.name == n))
                    && attr.is_none_or(|(k, v)| {
                        spans
                            .iter()
                            .any(|x| x.attr(k).is_some_and(|have| v.is_none_or(|v| have == v)))
                    })
                    && (!q.errors || spans.iter().any(SpanRow::is_error))
            })
            .map(|(id, spans)| summarize(id, spans))
            .filter(|t| {
                q.min_ms
                    .is_none_or(|ms| t.duration_ns as f64 >= ms * 1_000_000.0)
            })
            .collect();
        out.sort_by_key(|t| std::cmp::Reverse(t.start_ns));
        out.truncate(q.limit.unwrap_or(100));
        out
    }

    /// Runs `f` over every stored trace's spans, under the store's lock.
    pub fn with_traces<T>(&self, f: impl FnOnce(&mut dyn Iterator<Item = &[SpanRow]>) -> T) -> T {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut it = inner.traces.values().map(Vec::as_slice);
        f(&mut it)
    }

    /// Service names seen, sorted.
    pub fn services(&self) -> Vec<String> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut s: Vec<String> = inner
            .traces
            .values()
            .flatten()
            .map(|x| x.service.clone())
            .collect();
        s.sort();
        s.dedup();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(trace: &str, id: &str, parent: &str, service: &str, ms: u64, error: bool) -> SpanRow {
        SpanRow {
            trace_id: trace.into(),
            span_id: id.into(),
            parent_id: parent.into(),
            name: format!("{service} {id}"),
            service: service.into(),
            kind: 2,
            start_ns: 1_000,
            end_ns: 1_000 + ms * 1_000_000,
            status_code: if error { 2 } else { 0 },
            status_message: String::new(),
            attributes: vec![("http.route".into(), format!("/{id}"))],
            resource: vec![],
            events: vec![],
            links: vec![],
        }
    }

    fn ids(store: &Store, q: Query) -> Vec<String> {
        let mut v: Vec<String> = store.search(&q).into_iter().map(|t| t.trace_id).collect();
        v.sort();
        v
    }

    #[test]
    fn every_search_field_narrows() {
        let store = Store::new(10);
        store.insert(vec![
            span("t1", "a", "", "gateway", 50, false),
            span("t1", "b", "a", "users", 10, false),
        ]);
        store.insert(vec![span("t2", "c", "", "gateway", 5, true)]);
        store.insert(vec![span("t3", "d", "", "orders", 500, false)]);
        let q = Query::default;
        assert_eq!(ids(&store, q()), ["t1", "t2", "t3"]);
        let service = Query {
            service: Some("users".into()),
            ..q()
        };
        assert_eq!(ids(&store, service), ["t1"]);
        let name = Query {
            name: Some("gateway c".into()),
            ..q()
        };
        assert_eq!(ids(&store, name), ["t2"]);
        let attr = Query {
            attr: Some("http.route=/d".into()),
            ..q()
        };
        assert_eq!(ids(&store, attr), ["t3"]);
        let key_only = Query {
            attr: Some("http.route".into()),
            ..q()
        };
        assert_eq!(ids(&store, key_only).len(), 3);
        let slow = Query {
            min_ms: Some(40.0),
            ..q()
        };
        assert_eq!(ids(&store, slow), ["t1", "t3"]);
        let errors = Query {
            errors: true,
            ..q()
        };
        assert_eq!(ids(&store, errors), ["t2"]);
        let limit = Query {
            limit: Some(1),
            ..q()
        };
        assert_eq!(store.search(&limit).len(), 1);
        // The root and the trace's services.
        let t1 = &store.search(&Query {
            service: Some("users".into()),
            ..q()
        })[0];
        assert_eq!(
            (t1.root.as_str(), t1.service.as_str()),
            ("gateway a", "gateway")
        );
        assert_eq!(t1.services, ["gateway", "users"]);
    }

    #[test]
    fn the_oldest_trace_goes_past_the_bound() {
        let store = Store::new(2);
        for t in ["t1", "t2", "t3"] {
            store.insert(vec![span(t, "a", "", "svc", 1, false)]);
        }
        assert!(store.trace("t1").is_none());
        assert!(store.trace("t2").is_some() && store.trace("t3").is_some());
    }
}
