//! OTLP/JSON encoding of export requests, for `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`.
//!
//! The exporter always encodes protobuf; the transport decodes that and writes it out here
//! in the OTLP/JSON form (the proto3 JSON mapping with OTLP's exceptions): field names in
//! lowerCamelCase, trace and span ids as lowercase hex, enums as numbers, 64-bit integers
//! as decimal strings, other bytes as base64, fields at their default value left out.
//!
//! Written by hand because serde_json must stay out of the runtime's graph (see
//! ARCHITECTURE.md: its trait impls change type inference in every instrumented crate).

use std::fmt::Write as _;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, metric, number_data_point, Exemplar, ExponentialHistogramDataPoint,
    HistogramDataPoint, Metric, NumberDataPoint, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, Span, Status};

pub(crate) fn traces(req: &ExportTraceServiceRequest) -> String {
    let mut out = String::with_capacity(1024);
    let mut o = Obj::open(&mut out);
    o.list("resourceSpans", &req.resource_spans, |out, rs| {
        let mut o = Obj::open(out);
        o.opt("resource", rs.resource.as_ref(), resource);
        o.list("scopeSpans", &rs.scope_spans, |out, ss| {
            let mut o = Obj::open(out);
            o.opt("scope", ss.scope.as_ref(), scope);
            o.list("spans", &ss.spans, span);
            o.str("schemaUrl", &ss.schema_url);
            o.close();
        });
        o.str("schemaUrl", &rs.schema_url);
        o.close();
    });
    o.close();
    out
}

pub(crate) fn metrics(req: &ExportMetricsServiceRequest) -> String {
    let mut out = String::with_capacity(1024);
    let mut o = Obj::open(&mut out);
    o.list("resourceMetrics", &req.resource_metrics, |out, rm| {
        let mut o = Obj::open(out);
        o.opt("resource", rm.resource.as_ref(), resource);
        o.list("scopeMetrics", &rm.scope_metrics, |out, sm| {
            let mut o = Obj::open(out);
            o.opt("scope", sm.scope.as_ref(), scope);
            o.list("metrics", &sm.metrics, metric);
            o.str("schemaUrl", &sm.schema_url);
            o.close();
        });
        o.str("schemaUrl", &rm.schema_url);
        o.close();
    });
    o.close();
    out
}

fn resource(out: &mut String, r: &Resource) {
    let mut o = Obj::open(out);
    o.list("attributes", &r.attributes, key_value);
    o.int("droppedAttributesCount", r.dropped_attributes_count);
    o.close();
}

fn scope(out: &mut String, s: &InstrumentationScope) {
    let mut o = Obj::open(out);
    o.str("name", &s.name);
    o.str("version", &s.version);
    o.list("attributes", &s.attributes, key_value);
    o.int("droppedAttributesCount", s.dropped_attributes_count);
    o.close();
}

fn span(out: &mut String, s: &Span) {
    let mut o = Obj::open(out);
    o.hex("traceId", &s.trace_id);
    o.hex("spanId", &s.span_id);
    o.str("traceState", &s.trace_state);
    o.hex("parentSpanId", &s.parent_span_id);
    o.int("flags", s.flags);
    o.str("name", &s.name);
    o.int("kind", s.kind);
    o.u64("startTimeUnixNano", s.start_time_unix_nano);
    o.u64("endTimeUnixNano", s.end_time_unix_nano);
    o.list("attributes", &s.attributes, key_value);
    o.int("droppedAttributesCount", s.dropped_attributes_count);
    o.list("events", &s.events, event);
    o.int("droppedEventsCount", s.dropped_events_count);
    o.list("links", &s.links, link);
    o.int("droppedLinksCount", s.dropped_links_count);
    o.opt("status", s.status.as_ref(), status);
    o.close();
}

fn event(out: &mut String, e: &span::Event) {
    let mut o = Obj::open(out);
    o.u64("timeUnixNano", e.time_unix_nano);
    o.str("name", &e.name);
    o.list("attributes", &e.attributes, key_value);
    o.int("droppedAttributesCount", e.dropped_attributes_count);
    o.close();
}

fn link(out: &mut String, l: &span::Link) {
    let mut o = Obj::open(out);
    o.hex("traceId", &l.trace_id);
    o.hex("spanId", &l.span_id);
    o.str("traceState", &l.trace_state);
    o.list("attributes", &l.attributes, key_value);
    o.int("droppedAttributesCount", l.dropped_attributes_count);
    o.int("flags", l.flags);
    o.close();
}

fn status(out: &mut String, s: &Status) {
    let mut o = Obj::open(out);
    o.str("message", &s.message);
    o.int("code", s.code);
    o.close();
}

fn key_value(out: &mut String, kv: &KeyValue) {
    let mut o = Obj::open(out);
    o.key("key");
    string(o.out, &kv.key);
    o.opt("value", kv.value.as_ref(), any_value);
    o.close();
}

fn any_value(out: &mut String, v: &AnyValue) {
    use any_value::Value;
    let mut o = Obj::open(out);
    match &v.value {
        None => {}
        Some(Value::StringValue(s)) => {
            o.key("stringValue");
            string(o.out, s);
        }
        Some(Value::BoolValue(b)) => {
            o.key("boolValue");
            let _ = write!(o.out, "{b}");
        }
        Some(Value::IntValue(i)) => {
            o.key("intValue");
            let _ = write!(o.out, "\"{i}\"");
        }
        Some(Value::DoubleValue(d)) => {
            o.key("doubleValue");
            double(o.out, *d);
        }
        Some(Value::ArrayValue(a)) => {
            o.key("arrayValue");
            let mut inner = Obj::open(o.out);
            inner.list("values", &a.values, any_value);
            inner.close();
        }
        Some(Value::KvlistValue(l)) => {
            o.key("kvlistValue");
            let mut inner = Obj::open(o.out);
            inner.list("values", &l.values, key_value);
            inner.close();
        }
        Some(Value::BytesValue(b)) => {
            o.key("bytesValue");
            base64(o.out, b);
        }
        Some(Value::StringValueStrindex(i)) => {
            o.key("stringValueStrindex");
            let _ = write!(o.out, "{i}");
        }
    }
    o.close();
}

fn metric(out: &mut String, m: &Metric) {
    let mut o = Obj::open(out);
    o.str("name", &m.name);
    o.str("description", &m.description);
    o.str("unit", &m.unit);
    o.list("metadata", &m.metadata, key_value);
    match &m.data {
        None => {}
        Some(metric::Data::Gauge(g)) => o.opt("gauge", Some(g), |out, g| {
            let mut o = Obj::open(out);
            o.list("dataPoints", &g.data_points, number_point);
            o.close();
        }),
        Some(metric::Data::Sum(s)) => o.opt("sum", Some(s), |out, s| {
            let mut o = Obj::open(out);
            o.list("dataPoints", &s.data_points, number_point);
            o.int("aggregationTemporality", s.aggregation_temporality);
            o.bool("isMonotonic", s.is_monotonic);
            o.close();
        }),
        Some(metric::Data::Histogram(h)) => o.opt("histogram", Some(h), |out, h| {
            let mut o = Obj::open(out);
            o.list("dataPoints", &h.data_points, histogram_point);
            o.int("aggregationTemporality", h.aggregation_temporality);
            o.close();
        }),
        Some(metric::Data::ExponentialHistogram(h)) => {
            o.opt("exponentialHistogram", Some(h), |out, h| {
                let mut o = Obj::open(out);
                o.list("dataPoints", &h.data_points, exponential_point);
                o.int("aggregationTemporality", h.aggregation_temporality);
                o.close();
            })
        }
        Some(metric::Data::Summary(s)) => o.opt("summary", Some(s), |out, s| {
            let mut o = Obj::open(out);
            o.list("dataPoints", &s.data_points, summary_point);
            o.close();
        }),
    }
    o.close();
}

fn number_point(out: &mut String, p: &NumberDataPoint) {
    let mut o = Obj::open(out);
    o.list("attributes", &p.attributes, key_value);
    o.u64("startTimeUnixNano", p.start_time_unix_nano);
    o.u64("timeUnixNano", p.time_unix_nano);
    match p.value {
        Some(number_data_point::Value::AsDouble(d)) => o.f64("asDouble", Some(d)),
        Some(number_data_point::Value::AsInt(i)) => o.i64("asInt", i),
        None => {}
    }
    o.list("exemplars", &p.exemplars, exemplar);
    o.int("flags", p.flags);
    o.close();
}

fn histogram_point(out: &mut String, p: &HistogramDataPoint) {
    let mut o = Obj::open(out);
    o.list("attributes", &p.attributes, key_value);
    o.u64("startTimeUnixNano", p.start_time_unix_nano);
    o.u64("timeUnixNano", p.time_unix_nano);
    o.u64("count", p.count);
    o.f64("sum", p.sum);
    o.list("bucketCounts", &p.bucket_counts, count);
    o.list("explicitBounds", &p.explicit_bounds, |out, b| {
        double(out, *b)
    });
    o.list("exemplars", &p.exemplars, exemplar);
    o.int("flags", p.flags);
    o.f64("min", p.min);
    o.f64("max", p.max);
    o.close();
}

fn exponential_point(out: &mut String, p: &ExponentialHistogramDataPoint) {
    let buckets = |out: &mut String, b: &opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets| {
        let mut o = Obj::open(out);
        o.int("offset", b.offset);
        o.list("bucketCounts", &b.bucket_counts, count);
        o.close();
    };
    let mut o = Obj::open(out);
    o.list("attributes", &p.attributes, key_value);
    o.u64("startTimeUnixNano", p.start_time_unix_nano);
    o.u64("timeUnixNano", p.time_unix_nano);
    o.u64("count", p.count);
    o.f64("sum", p.sum);
    o.int("scale", p.scale);
    o.u64("zeroCount", p.zero_count);
    o.opt("positive", p.positive.as_ref(), buckets);
    o.opt("negative", p.negative.as_ref(), buckets);
    o.int("flags", p.flags);
    o.list("exemplars", &p.exemplars, exemplar);
    o.f64("min", p.min);
    o.f64("max", p.max);
    if p.zero_threshold != 0.0 {
        o.f64("zeroThreshold", Some(p.zero_threshold));
    }
    o.close();
}

fn summary_point(out: &mut String, p: &SummaryDataPoint) {
    let mut o = Obj::open(out);
    o.list("attributes", &p.attributes, key_value);
    o.u64("startTimeUnixNano", p.start_time_unix_nano);
    o.u64("timeUnixNano", p.time_unix_nano);
    o.u64("count", p.count);
    if p.sum != 0.0 {
        o.f64("sum", Some(p.sum));
    }
    o.list("quantileValues", &p.quantile_values, |out, q| {
        let mut o = Obj::open(out);
        o.f64("quantile", Some(q.quantile));
        o.f64("value", Some(q.value));
        o.close();
    });
    o.int("flags", p.flags);
    o.close();
}

fn exemplar(out: &mut String, e: &Exemplar) {
    let mut o = Obj::open(out);
    o.list("filteredAttributes", &e.filtered_attributes, key_value);
    o.u64("timeUnixNano", e.time_unix_nano);
    match e.value {
        Some(exemplar::Value::AsDouble(d)) => o.f64("asDouble", Some(d)),
        Some(exemplar::Value::AsInt(i)) => o.i64("asInt", i),
        None => {}
    }
    o.hex("spanId", &e.span_id);
    o.hex("traceId", &e.trace_id);
    o.close();
}

/// A bucket count: 64-bit, so a string.
fn count(out: &mut String, n: &u64) {
    let _ = write!(out, "\"{n}\"");
}

/// One JSON object being written: fields at their default value are left out, as the
/// proto3 JSON mapping allows.
struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    fn open(out: &'a mut String) -> Self {
        out.push('{');
        Obj { out, first: true }
    }

    fn close(self) {
        self.out.push('}');
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push('"');
        self.out.push_str(key);
        self.out.push_str("\":");
    }

    fn str(&mut self, key: &str, v: &str) {
        if !v.is_empty() {
            self.key(key);
            string(self.out, v);
        }
    }

    fn hex(&mut self, key: &str, v: &[u8]) {
        if !v.is_empty() {
            self.key(key);
            self.out.push('"');
            for b in v {
                let _ = write!(self.out, "{b:02x}");
            }
            self.out.push('"');
        }
    }

    /// A 32-bit integer (a JSON number), left out at zero.
    fn int(&mut self, key: &str, v: impl Into<i64>) {
        let v = v.into();
        if v != 0 {
            self.key(key);
            let _ = write!(self.out, "{v}");
        }
    }

    fn bool(&mut self, key: &str, v: bool) {
        if v {
            self.key(key);
            self.out.push_str("true");
        }
    }

    /// 64-bit integers are strings in proto3 JSON: a JavaScript number cannot hold them.
    fn u64(&mut self, key: &str, v: u64) {
        if v != 0 {
            self.key(key);
            let _ = write!(self.out, "\"{v}\"");
        }
    }

    fn i64(&mut self, key: &str, v: i64) {
        self.key(key);
        let _ = write!(self.out, "\"{v}\"");
    }

    fn f64(&mut self, key: &str, v: Option<f64>) {
        if let Some(v) = v {
            self.key(key);
            double(self.out, v);
        }
    }

    fn opt<T>(&mut self, key: &str, v: Option<&T>, write: impl Fn(&mut String, &T)) {
        if let Some(v) = v {
            self.key(key);
            write(self.out, v);
        }
    }

    fn list<T>(&mut self, key: &str, items: &[T], write: impl Fn(&mut String, &T)) {
        if items.is_empty() {
            return;
        }
        self.key(key);
        self.out.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            write(self.out, item);
        }
        self.out.push(']');
    }
}

fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Non-finite doubles are the strings proto3 JSON names them with; finite ones print
/// exactly (Rust's shortest round-trip form), with a `.0` never needed by JSON.
fn double(out: &mut String, d: f64) {
    if d.is_nan() {
        out.push_str("\"NaN\"");
    } else if d.is_infinite() {
        out.push_str(if d > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        });
    } else {
        let _ = write!(out, "{d:?}");
    }
}

fn base64(out: &mut String, bytes: &[u8]) {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    out.push('"');
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests;
