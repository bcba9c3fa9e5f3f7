//! RED from metrics: the request-duration histograms of the semantic conventions
//! (`http.server.request.duration`, `rpc.server.call.duration`, `rpc.server.duration`), as
//! services export them.
//!
//! For each series (service, metric, attributes) the two latest cumulative points are
//! kept; RED over a window comes from their difference: requests and errors from the
//! count, percentiles interpolated inside the histogram buckets. A series counts as
//! errors when its attributes say so (`error.type`, or an HTTP status of 500 or more).
//! Delta temporality is summed as it comes.

use std::collections::HashMap;
use std::sync::Mutex;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, HistogramDataPoint};

use crate::store::{flat, service_name};

/// `rpc.server.duration` (ms) is the older RPC conventions' name, still what many SDKs
/// send; `rpc.server.call.duration` (s) the current one, which instgo's runtime sends.
const RED_METRICS: [&str; 3] = [
    "http.server.request.duration",
    "rpc.server.call.duration",
    "rpc.server.duration",
];

#[derive(Debug, Clone)]
struct Point {
    time_ns: u64,
    count: u64,
    bounds: Vec<f64>,
    buckets: Vec<u64>,
}

#[derive(Debug, Default)]
struct Series {
    error: bool,
    /// Seconds per unit of the metric (`s` → 1, `ms` → 0.001).
    scale: f64,
    cumulative: bool,
    last: Option<Point>,
    previous: Option<Point>,
    /// Delta points as they came (for delta temporality), newest last.
    deltas: Vec<Point>,
}

/// (service, metric, attributes) of one series.
type SeriesKey = (String, String, Vec<(String, String)>);

/// What the collector keeps of the RED histograms.
#[derive(Default)]
pub struct MetricStore {
    series: Mutex<HashMap<SeriesKey, Series>>,
}

/// One service and metric's figures while they are summed over its series.
struct Sum {
    requests: u64,
    errors: u64,
    buckets: Vec<u64>,
    bounds: Vec<f64>,
    scale: f64,
    secs: f64,
}

/// RED of one service from its histograms.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MetricRed {
    pub service: String,
    pub metric: String,
    pub requests: u64,
    pub errors: u64,
    pub rate_per_s: f64,
    pub error_ratio: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

fn point(p: &HistogramDataPoint) -> Point {
    Point {
        time_ns: p.time_unix_nano,
        count: p.count,
        bounds: p.explicit_bounds.clone(),
        buckets: p.bucket_counts.clone(),
    }
}

fn is_error(attrs: &[(String, String)]) -> bool {
    attrs.iter().any(|(k, v)| {
        k == "error.type"
            || (k == "http.response.status_code" && v.parse::<u16>().is_ok_and(|c| c >= 500))
            || (k == "rpc.grpc.status_code" && v != "0")
    })
}

impl MetricStore {
    pub fn insert(&self, req: &ExportMetricsServiceRequest) {
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        for rm in &req.resource_metrics {
            let resource = rm
                .resource
                .as_ref()
                .map(|r| flat(&r.attributes))
                .unwrap_or_default();
            let service = service_name(&resource);
            for sm in &rm.scope_metrics {
                for m in &sm.metrics {
                    if !RED_METRICS.contains(&m.name.as_str()) {
                        continue;
                    }
                    let Some(Data::Histogram(h)) = &m.data else {
                        continue;
                    };
                    for p in &h.data_points {
                        let mut attrs = flat(&p.attributes);
                        attrs.sort();
                        let s = series
                            .entry((service.clone(), m.name.clone(), attrs.clone()))
                            .or_default();
                        s.error = is_error(&attrs);
                        s.scale = if m.unit == "ms" { 0.001 } else { 1.0 };
                        // 2 = cumulative (AggregationTemporality).
                        s.cumulative = h.aggregation_temporality == 2;
                        let new = point(p);
                        if s.cumulative {
                            if s.last.as_ref().is_none_or(|l| l.time_ns < new.time_ns) {
                                s.previous = s.last.replace(new);
                            }
                        } else {
                            s.deltas.push(new);
                            if s.deltas.len() > 1000 {
                                s.deltas.remove(0);
                            }
                        }
                    }
                }
            }
        }
    }

    /// RED per (service, metric) from what arrived in `[end - window, end]`.
    pub fn red(&self, end_ns: u64, window_ns: u64) -> Vec<MetricRed> {
        let start = end_ns.saturating_sub(window_ns);
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let mut per: HashMap<(String, String), Sum> = HashMap::new();
        for ((service, metric, _), s) in series.iter() {
            let (count, buckets, bounds, secs) = if s.cumulative {
                match (&s.previous, &s.last) {
                    (Some(a), Some(b)) if b.time_ns >= start && a.bounds == b.bounds => (
                        b.count.saturating_sub(a.count),
                        b.buckets
                            .iter()
                            .zip(a.buckets.iter().chain(std::iter::repeat(&0)))
                            .map(|(x, y)| x.saturating_sub(*y))
                            .collect::<Vec<_>>(),
                        b.bounds.clone(),
                        (b.time_ns - a.time_ns) as f64 / 1e9,
                    ),
                    _ => continue,
                }
            } else {
                let recent: Vec<&Point> = s.deltas.iter().filter(|p| p.time_ns >= start).collect();
                let Some(first) = recent.first() else {
                    continue;
                };
                let mut buckets = vec![0u64; first.buckets.len()];
                for p in recent.iter().filter(|p| p.bounds == first.bounds) {
                    for (b, n) in buckets.iter_mut().zip(&p.buckets) {
                        *b += n;
                    }
                }
                let count = buckets.iter().sum();
                (count, buckets, first.bounds.clone(), window_ns as f64 / 1e9)
            };
            let e = per
                .entry((service.clone(), metric.clone()))
                .or_insert_with(|| Sum {
                    requests: 0,
                    errors: 0,
                    buckets: vec![0; buckets.len()],
                    bounds: bounds.clone(),
                    scale: s.scale,
                    secs,
                });
            e.requests += count;
            if s.error {
                e.errors += count;
            }
            if e.bounds == bounds {
                for (a, b) in e.buckets.iter_mut().zip(&buckets) {
                    *a += b;
                }
            }
            e.secs = e.secs.max(secs);
        }
        let mut out: Vec<MetricRed> = per
            .into_iter()
            .filter(|(_, v)| v.requests > 0)
            .map(|((service, metric), v)| {
                let pct = |q: f64| percentile(&v.buckets, &v.bounds, q) * v.scale * 1000.0;
                MetricRed {
                    service,
                    metric,
                    requests: v.requests,
                    errors: v.errors,
                    rate_per_s: v.requests as f64 / v.secs.max(1e-9),
                    error_ratio: v.errors as f64 / v.requests as f64,
                    p50_ms: pct(0.50),
                    p95_ms: pct(0.95),
                    p99_ms: pct(0.99),
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.service, &a.metric).cmp(&(&b.service, &b.metric)));
        out
    }
}

/// The `q` quantile of a histogram, interpolated linearly inside its bucket (the last,
/// unbounded bucket answers with its lower bound).
fn percentile(buckets: &[u64], bounds: &[f64], q: f64) -> f64 {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let rank = q * total as f64;
    let mut seen = 0.0;
    for (i, &n) in buckets.iter().enumerate() {
        if n > 0 && seen + n as f64 >= rank {
            let lower = if i == 0 { 0.0 } else { bounds[i - 1] };
            let Some(&upper) = bounds.get(i) else {
                return lower;
            };
            return lower + (upper - lower) * ((rank - seen) / n as f64);
        }
        seen += n as f64;
    }
    bounds.last().copied().unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::metrics::v1::{
        Histogram, Metric, ResourceMetrics, ScopeMetrics,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;

    fn kv(k: &str, v: Value) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }

    /// One cumulative export: per status code, (count, buckets) at `time`.
    fn export(time: u64, series: &[(i64, u64, [u64; 4])]) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", Value::StringValue("api".into()))],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "http.server.request.duration".into(),
                        unit: "s".into(),
                        data: Some(Data::Histogram(Histogram {
                            aggregation_temporality: 2,
                            data_points: series
                                .iter()
                                .map(|(status, count, buckets)| HistogramDataPoint {
                                    attributes: vec![kv(
                                        "http.response.status_code",
                                        Value::IntValue(*status),
                                    )],
                                    time_unix_nano: time,
                                    count: *count,
                                    bucket_counts: buckets.to_vec(),
                                    explicit_bounds: vec![0.01, 0.1, 1.0],
                                    ..Default::default()
                                })
                                .collect(),
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                schema_url: String::new(),
            }],
        }
    }

    #[test]
    fn red_from_the_difference_of_cumulative_points() {
        let m = MetricStore::default();
        let sec = 1_000_000_000;
        m.insert(&export(
            10 * sec,
            &[(200, 100, [100, 0, 0, 0]), (503, 0, [0, 0, 0, 0])],
        ));
        // Ten seconds later: 100 more OK requests between 10 and 100 ms, 10 failures.
        m.insert(&export(
            20 * sec,
            &[(200, 200, [100, 100, 0, 0]), (503, 10, [0, 0, 10, 0])],
        ));
        let red = m.red(20 * sec, 60 * sec);
        assert_eq!(red.len(), 1);
        let r = &red[0];
        assert_eq!((r.requests, r.errors), (110, 10));
        assert_eq!(r.rate_per_s, 11.0);
        // The median is inside the 10–100 ms bucket; the p99 inside 100 ms–1 s.
        assert!((10.0..100.0).contains(&r.p50_ms), "{r:?}");
        assert!((100.0..1000.0).contains(&r.p99_ms), "{r:?}");
    }

    #[test]
    fn percentile_interpolates_inside_buckets() {
        assert_eq!(percentile(&[0, 10, 0], &[1.0, 2.0], 0.5), 1.5);
        assert_eq!(percentile(&[0, 0, 4], &[1.0, 2.0], 0.9), 2.0);
        assert_eq!(percentile(&[], &[], 0.5), 0.0);
    }
}
