//! The semantic conventions' duration histograms (`http.server.request.duration` and the
//! like), aggregated here instead of by the SDK.
//!
//! The SDK finds a histogram's series by hashing the attribute set with SipHash on every
//! record: under callgrind that was 2.4 k of the 28.4 k instructions an instrumented
//! request cost in the axum benchmark. Here a record takes a multiply-rotate fingerprint of
//! the attributes (every byte of strings up to 32 bytes, four words of longer ones),
//! compares the attributes of the series under it (by address first: keys are literals
//! and values mostly shared), in a shard picked once per thread so two worker threads do
//! not share a lock. The values come from bounded sets (normalised methods, routes,
//! status codes) and the series are capped, so a fingerprint collision costs a comparison
//! and cannot grow a map without bound.
//!
//! Nothing leaves from here on its own: at each export the series are added to what the
//! SDK's periodic reader sends, as histograms of the `instgo` scope: to the OTLP request
//! on its way out (`transport`, whatever the wire), or to the console lines. Cumulative,
//! as the SDK's own.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::KeyValue;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    metric, AggregationTemporality, Histogram as ProtoHistogram, HistogramDataPoint, Metric,
    ResourceMetrics, ScopeMetrics,
};
use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;
use opentelemetry_proto::transform::common::tonic::{Attributes, ResourceAttributesWithSchema};

const SHARDS: usize = 8;
/// Series kept per histogram (the SDK's default cardinality limit); attribute sets beyond
/// it are counted in one series marked `otel.metric.overflow`, as the SDK does.
const LIMIT: usize = 2000;
const PER_SHARD: usize = LIMIT / SHARDS;

/// One histogram: its name, unit and bounds, and its series in shards.
pub(crate) struct Aggregate {
    name: &'static str,
    unit: &'static str,
    description: &'static str,
    bounds: &'static [f64],
    start: u64,
    shards: [Mutex<Shard>; SHARDS],
}

/// Series by the fingerprint of their attributes; the few that share one are told apart
/// by comparing the attributes.
type Series = HashMap<u64, Vec<(Vec<KeyValue>, Buckets)>, BuildHasherDefault<Fingerprint>>;

#[derive(Default)]
struct Shard {
    series: Series,
    /// Series held, over every fingerprint.
    len: usize,
}

impl Shard {
    fn holds(&self, print: u64, attributes: &[KeyValue]) -> bool {
        self.series
            .get(&print)
            .is_some_and(|same| same.iter().any(|(k, _)| same_set(k, attributes)))
    }

    /// The series of `attributes`, made (with `bounds` bounds) if it is new.
    fn series_mut(&mut self, print: u64, attributes: &[KeyValue], bounds: usize) -> &mut Buckets {
        let same = self.series.entry(print).or_default();
        let at = match same.iter().position(|(k, _)| same_set(k, attributes)) {
            Some(at) => at,
            None => {
                self.len += 1;
                same.push((attributes.to_vec(), Buckets::new(bounds)));
                same.len() - 1
            }
        };
        &mut same[at].1
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Buckets {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    counts: Vec<u64>,
}

impl Buckets {
    fn new(bounds: usize) -> Self {
        Buckets {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            counts: vec![0; bounds + 1],
        }
    }

    fn add(&mut self, value: f64, bucket: usize) {
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.counts[bucket] += 1;
    }

    fn merge(&mut self, other: &Buckets) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }
}

/// Every aggregate made, for the exporters to read.
static ALL: Mutex<Vec<&'static Aggregate>> = Mutex::new(Vec::new());

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while a shard is held; should it, the counts are still whole.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Aggregate {
    /// A new histogram, registered for export for the rest of the process.
    pub(crate) fn register(
        name: &'static str,
        unit: &'static str,
        description: &'static str,
        bounds: &'static [f64],
    ) -> &'static Aggregate {
        let a: &'static Aggregate = Box::leak(Box::new(Aggregate {
            name,
            unit,
            description,
            bounds,
            start: now_nanos(),
            shards: std::array::from_fn(|_| Mutex::default()),
        }));
        locked(&ALL).push(a);
        a
    }

    /// Counts `value` in the series of `attributes`.
    pub(crate) fn record(&self, value: f64, attributes: &[KeyValue]) {
        if value.is_nan() {
            return;
        }
        // Bucket i holds (bounds[i-1], bounds[i]]; the last one everything above.
        let bucket = self.bounds.partition_point(|b| *b < value);
        let print = fingerprint(attributes);
        let mut shard = locked(&self.shards[shard_of_this_thread()]);
        let n = self.bounds.len();
        let buckets = if shard.len < PER_SHARD || shard.holds(print, attributes) {
            shard.series_mut(print, attributes, n)
        } else {
            let overflow = [KeyValue::new("otel.metric.overflow", true)];
            shard.series_mut(fingerprint(&overflow), &overflow, n)
        };
        buckets.add(value, bucket);
    }

    /// The series of every shard, merged by attribute set (sorted by key, so the same set
    /// recorded in another order is one series).
    fn snapshot(&self) -> Vec<(Vec<KeyValue>, Buckets)> {
        let mut merged: HashMap<Vec<KeyValue>, Buckets> = HashMap::new();
        for shard in &self.shards {
            for (attributes, b) in locked(shard).series.values().flatten() {
                let mut key = attributes.clone();
                key.sort_by(|x, y| x.key.as_str().cmp(y.key.as_str()));
                key.dedup_by(|later, kept| later.key == kept.key);
                match merged.get_mut(&key) {
                    Some(m) => m.merge(b),
                    None => {
                        merged.insert(key, b.clone());
                    }
                }
            }
        }
        let mut out: Vec<_> = merged.into_iter().collect();
        out.sort_by_cached_key(|(attributes, _)| format!("{attributes:?}"));
        out
    }

    fn metric(&self, now: u64) -> Option<Metric> {
        let series = self.snapshot();
        if series.is_empty() {
            return None;
        }
        let data_points = series
            .into_iter()
            .map(|(attributes, b)| HistogramDataPoint {
                attributes: Attributes::from(attributes).0,
                start_time_unix_nano: self.start,
                time_unix_nano: now,
                count: b.count,
                sum: Some(b.sum),
                bucket_counts: b.counts,
                explicit_bounds: self.bounds.to_vec(),
                min: Some(b.min),
                max: Some(b.max),
                ..Default::default()
            })
            .collect();
        Some(Metric {
            name: self.name.into(),
            description: self.description.into(),
            unit: self.unit.into(),
            data: Some(metric::Data::Histogram(ProtoHistogram {
                data_points,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            })),
            ..Default::default()
        })
    }
}

fn shard_of_this_thread() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Relaxed) % SHARDS;
    }
    // A thread being torn down still records (a span guard dropped by a TLS destructor).
    SHARD.try_with(|s| *s).unwrap_or(0)
}

/// The histograms recorded so far, as OTLP metrics.
pub(crate) fn metrics() -> Vec<Metric> {
    let all: Vec<&'static Aggregate> = locked(&ALL).clone();
    let now = now_nanos();
    all.iter().filter_map(|a| a.metric(now)).collect()
}

/// Adds `metrics` to an export request of the SDK's: into its `instgo` scope, made if the
/// SDK had nothing of its own in it (or no resource at all).
pub(crate) fn join(request: &mut ExportMetricsServiceRequest, metrics: Vec<Metric>) {
    if metrics.is_empty() {
        return;
    }
    if request.resource_metrics.is_empty() {
        let resource = ResourceAttributesWithSchema::from(crate::sdk::resource());
        request.resource_metrics.push(ResourceMetrics {
            resource: Some(ProtoResource {
                attributes: resource.attributes.0,
                ..Default::default()
            }),
            schema_url: resource.schema_url.unwrap_or_default(),
            ..Default::default()
        });
    }
    let scopes = &mut request.resource_metrics[0].scope_metrics;
    let ours = crate::sdk::scope();
    let at = scopes
        .iter()
        .position(|s| s.scope.as_ref().is_some_and(|s| s.name == ours.name()));
    let at = at.unwrap_or_else(|| {
        scopes.push(ScopeMetrics {
            scope: Some((ours, None).into()),
            ..Default::default()
        });
        scopes.len() - 1
    });
    scopes[at].metrics.extend(metrics);
}

/// The histograms as console lines, as `sink::ConsoleMetrics` prints the SDK's.
pub(crate) fn console_lines(out: &mut String) {
    for a in locked(&ALL).clone() {
        for (attributes, b) in a.snapshot() {
            crate::sink::histogram_line(out, a.name, attributes.iter(), b.count, b.sum, a.unit);
        }
    }
}

#[inline]
fn mix(h: u64, word: u64) -> u64 {
    (h.rotate_left(5) ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The 8 bytes of `b` from `at` (which the callers keep in bounds), as one word.
#[inline]
fn word(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default())
}

/// A string's length and content, all of it up to 32 bytes and four words of a longer one
/// (a longer string that differs only elsewhere shares a fingerprint; comparing tells).
#[inline]
fn mix_str(mut h: u64, s: &str) -> u64 {
    let b = s.as_bytes();
    let n = b.len();
    h = mix(h, n as u64);
    if n < 8 {
        let mut w = 0;
        for (i, c) in b.iter().enumerate() {
            w |= u64::from(*c) << (8 * i);
        }
        return mix(h, w);
    }
    if n <= 32 {
        let mut at = 0;
        while at + 8 < n {
            h = mix(h, word(b, at));
            at += 8;
        }
        // The last word may overlap the one before.
        return mix(h, word(b, n - 8));
    }
    for at in [0, n / 3, 2 * n / 3, n - 8] {
        h = mix(h, word(b, at));
    }
    h
}

/// The attributes' fingerprint: a few instructions per word where the SDK's SipHash over
/// `KeyValue`'s `Hash` took hundreds per attribute.
fn fingerprint(attributes: &[KeyValue]) -> u64 {
    use opentelemetry::Value;
    let mut h = 0;
    for kv in attributes {
        h = mix_str(h, kv.key.as_str());
        h = match &kv.value {
            Value::String(v) => mix_str(h, v.as_str()),
            Value::I64(i) => mix(h, *i as u64),
            Value::F64(f) => mix(h, f.to_bits()),
            Value::Bool(b) => mix(h, u64::from(*b) | 2),
            // Arrays: comparing tells them apart.
            _ => mix(h, 3),
        };
    }
    h ^ (h >> 29)
}

/// Equal attribute lists, in the same order. The keys are literals and the string values
/// mostly shared, so the same address usually answers before the bytes are compared.
fn same_set(a: &[KeyValue], b: &[KeyValue]) -> bool {
    use opentelemetry::Value;
    fn same_str(a: &str, b: &str) -> bool {
        (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
    }
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            same_str(x.key.as_str(), y.key.as_str())
                && match (&x.value, &y.value) {
                    (Value::String(p), Value::String(q)) => same_str(p.as_str(), q.as_str()),
                    (p, q) => p == q,
                }
        })
}

/// The series map's hasher: its keys are fingerprints already.
#[derive(Default)]
struct Fingerprint(u64);

impl Hasher for Fingerprint {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = mix(self.0, u64::from(b));
        }
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: &[f64] = &[0.1, 1.0];

    fn kv(route: &str, status: i64) -> Vec<KeyValue> {
        vec![
            KeyValue::new("http.route", route.to_string()),
            KeyValue::new("http.response.status_code", status),
        ]
    }

    #[test]
    fn values_land_in_otlp_buckets_and_series_merge_across_shards_and_orders() {
        let a = Aggregate::register("t.buckets", "s", "test", BOUNDS);
        // On three threads, so more than one shard holds the series.
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    a.record(0.1, &kv("/a", 200)); // on a bound: that bound's bucket
                    a.record(0.5, &kv("/a", 200));
                    let mut reversed = kv("/a", 200);
                    reversed.reverse();
                    a.record(7.0, &reversed);
                    a.record(0.05, &kv("/b", 500));
                });
            }
        });
        let snap = a.snapshot();
        assert_eq!(snap.len(), 2, "{snap:?}");
        let (attrs, b) = &snap[0];
        assert_eq!(attrs[0].key.as_str(), "http.response.status_code", "sorted");
        assert_eq!(attrs[1].value.as_str(), "/a");
        assert_eq!(b.count, 9);
        assert_eq!(b.counts, vec![3, 3, 3]);
        assert!((b.sum - 3.0 * 7.6).abs() < 1e-9);
        assert_eq!((b.min, b.max), (0.1, 7.0));
        assert_eq!(snap[1].1.counts, vec![3, 0, 0]);
    }

    #[test]
    fn fingerprints_see_every_byte_of_short_strings_and_comparing_decides() {
        let a = kv("/users/{id}", 200);
        assert_eq!(fingerprint(&a), fingerprint(&kv("/users/{id}", 200)));
        assert_ne!(fingerprint(&a), fingerprint(&kv("/users/{ID}", 200)));
        assert_ne!(fingerprint(&a), fingerprint(&kv("/users/{id}", 201)));
        // Long strings differing only between the sampled words share a fingerprint...
        let long = |c: char| format!("/{}{c}{}", "a".repeat(40), "b".repeat(40));
        let (x, y) = (kv(&long('x'), 200), kv(&long('y'), 200));
        assert_eq!(fingerprint(&x), fingerprint(&y));
        // ...and are still two series.
        let agg = Aggregate::register("t.long", "s", "test", BOUNDS);
        agg.record(0.5, &x);
        agg.record(0.5, &y);
        agg.record(0.5, &x);
        let counts: Vec<u64> = agg.snapshot().iter().map(|(_, b)| b.count).collect();
        assert_eq!(counts, vec![2, 1]);
    }

    #[test]
    fn series_beyond_the_limit_go_to_one_overflow_series() {
        let a = Aggregate::register("t.overflow", "s", "test", BOUNDS);
        for i in 0..PER_SHARD + 10 {
            a.record(0.5, &kv(&format!("/r{i}"), 200));
        }
        let snap = a.snapshot();
        assert_eq!(snap.len(), PER_SHARD + 1);
        let overflow: Vec<_> = snap
            .iter()
            .filter(|(k, _)| k[0].key.as_str() == "otel.metric.overflow")
            .collect();
        assert_eq!(overflow.len(), 1);
        assert_eq!(overflow[0].1.count, 10);
    }

    #[test]
    fn join_adds_the_histograms_under_the_instgo_scope() {
        let a = Aggregate::register("t.join", "s", "test", BOUNDS);
        a.record(0.5, &kv("/j", 200));
        let mut request = ExportMetricsServiceRequest::default();
        let ours = metrics();
        assert!(!ours.is_empty());
        join(&mut request, ours);
        let scope = &request.resource_metrics[0].scope_metrics[0];
        assert_eq!(scope.scope.as_ref().unwrap().name, "instgo");
        let m = scope.metrics.iter().find(|m| m.name == "t.join").unwrap();
        let Some(metric::Data::Histogram(h)) = &m.data else {
            panic!("{m:?}")
        };
        let p = &h.data_points[0];
        assert_eq!((p.count, p.bucket_counts.clone()), (1, vec![0, 1, 0]));
        assert_eq!(p.explicit_bounds, BOUNDS);
        assert!(p.start_time_unix_nano <= p.time_unix_nano);
        assert_eq!(
            h.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        // A second export finds the scope it made the first time.
        let mut again = request.clone();
        join(&mut again, metrics());
        assert_eq!(again.resource_metrics[0].scope_metrics.len(), 1);
    }
}
