//! What the viewer computes over the stored spans: the service map (calls between
//! services, from parent/child links that cross a service boundary) and RED figures per
//! service (rate, errors, duration percentiles) with a per-bucket series for charts.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::SpanRow;

/// Calls from one service to another.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub calls: u64,
    pub errors: u64,
}

/// Parent→child pairs whose services differ, counted per (parent service, child service).
pub fn service_map<'a>(traces: impl Iterator<Item = &'a [SpanRow]>) -> Vec<Edge> {
    let mut edges: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for spans in traces {
        let by_id: std::collections::HashMap<&str, &SpanRow> =
            spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
        for s in spans {
            let Some(parent) = by_id.get(s.parent_id.as_str()) else {
                continue;
            };
            if parent.service != s.service {
                let e = edges
                    .entry((parent.service.clone(), s.service.clone()))
                    .or_default();
                e.0 += 1;
                e.1 += u64::from(s.is_error());
            }
        }
    }
    edges
        .into_iter()
        .map(|((from, to), (calls, errors))| Edge {
            from,
            to,
            calls,
            errors,
        })
        .collect()
}

/// RED figures of one service over a window.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Red {
    pub service: String,
    /// Entry spans (server or consumer spans, or roots) in the window.
    pub requests: u64,
    pub errors: u64,
    pub rate_per_s: f64,
    pub error_ratio: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Requests and errors per bucket, oldest first, for the charts.
    pub buckets: Vec<(u64, u64)>,
}

/// Spans through which work enters a service.
fn is_entry(s: &SpanRow) -> bool {
    matches!(s.kind, 2 | 5) || s.parent_id.is_empty()
}

/// RED per service over `[end - window_ns, end]`, in `buckets` equal buckets.
pub fn red<'a>(
    traces: impl Iterator<Item = &'a [SpanRow]>,
    end_ns: u64,
    window_ns: u64,
    buckets: usize,
) -> Vec<Red> {
    let start = end_ns.saturating_sub(window_ns);
    let buckets = buckets.max(1);
    // Per service: entry span durations, and (requests, errors) per bucket.
    type Series = (Vec<u64>, Vec<(u64, u64)>);
    let mut per: BTreeMap<String, Series> = BTreeMap::new();
    for s in traces.flatten() {
        if !is_entry(s) || s.end_ns < start || s.end_ns > end_ns {
            continue;
        }
        let (durations, series) = per
            .entry(s.service.clone())
            .or_insert_with(|| (Vec::new(), vec![(0, 0); buckets]));
        durations.push(s.duration_ns());
        let i = (((s.end_ns - start) as u128 * buckets as u128) / window_ns.max(1) as u128)
            .min(buckets as u128 - 1) as usize;
        series[i].0 += 1;
        series[i].1 += u64::from(s.is_error());
    }
    per.into_iter()
        .map(|(service, (mut d, series))| {
            d.sort_unstable();
            let pct = |p: f64| {
                let i = ((d.len() as f64 * p).ceil() as usize).clamp(1, d.len()) - 1;
                d[i] as f64 / 1e6
            };
            let requests = d.len() as u64;
            let errors = series.iter().map(|b| b.1).sum();
            Red {
                service,
                requests,
                errors,
                rate_per_s: requests as f64 / (window_ns as f64 / 1e9),
                error_ratio: errors as f64 / requests as f64,
                p50_ms: pct(0.50),
                p95_ms: pct(0.95),
                p99_ms: pct(0.99),
                buckets: series,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(
        id: &str,
        parent: &str,
        service: &str,
        kind: i32,
        end: u64,
        dur: u64,
        err: bool,
    ) -> SpanRow {
        SpanRow {
            trace_id: "t".into(),
            span_id: id.into(),
            parent_id: parent.into(),
            name: id.into(),
            service: service.into(),
            kind,
            start_ns: end - dur,
            end_ns: end,
            status_code: if err { 2 } else { 0 },
            status_message: String::new(),
            attributes: vec![],
            resource: vec![],
            events: vec![],
            links: vec![],
        }
    }

    #[test]
    fn map_counts_calls_that_cross_services() {
        let t1 = vec![
            span("a", "", "gateway", 2, 100, 50, false),
            span("b", "a", "gateway", 3, 90, 30, false),
            span("c", "b", "users", 2, 89, 20, true),
            span("d", "c", "users", 1, 88, 5, false),
        ];
        let t2 = vec![
            span("e", "", "gateway", 2, 200, 50, false),
            span("f", "e", "users", 2, 190, 20, false),
        ];
        let map = service_map([t1.as_slice(), t2.as_slice()].into_iter());
        assert_eq!(
            map,
            [Edge {
                from: "gateway".into(),
                to: "users".into(),
                calls: 2,
                errors: 1
            }]
        );
    }

    #[test]
    fn red_over_entry_spans_in_the_window() {
        let sec = 1_000_000_000;
        let spans: Vec<SpanRow> = (0..10)
            .map(|i| {
                span(
                    &format!("s{i}"),
                    "",
                    "api",
                    2,
                    (i + 1) * sec,
                    (i + 1) * 1_000_000,
                    i == 9,
                )
            })
            .chain([span("inner", "s1", "api", 1, 2 * sec, 1, false)])
            .collect();
        let r = red([spans.as_slice()].into_iter(), 10 * sec, 10 * sec, 5);
        assert_eq!(r.len(), 1);
        let api = &r[0];
        assert_eq!((api.requests, api.errors), (10, 1));
        assert_eq!(api.rate_per_s, 1.0);
        assert_eq!((api.p50_ms, api.p95_ms, api.p99_ms), (5.0, 10.0, 10.0));
        assert_eq!(api.buckets, [(1, 0), (2, 0), (2, 0), (2, 0), (3, 1)]);
    }
}
