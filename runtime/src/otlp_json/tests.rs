//! The encoding is read back with opentelemetry-proto's own serde support (a decoder we
//! did not write), and must give back exactly the request it was made from.

use super::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{ArrayValue as Array, KeyValueList as KvList};
use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point::Buckets, summary_data_point::ValueAtQuantile,
    ExponentialHistogram, Gauge, Histogram, ResourceMetrics, ScopeMetrics, Sum, Summary,
};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn attrs() -> Vec<KeyValue> {
    use any_value::Value::*;
    vec![
        kv(
            "s",
            StringValue("quote \" backslash \\ newline \n tab \t nul \u{0} é 🦀".into()),
        ),
        kv("b", BoolValue(true)),
        kv("i", IntValue(-9_007_199_254_740_993)),
        kv("d", DoubleValue(0.1)),
        kv("big", DoubleValue(1e300)),
        kv(
            "arr",
            ArrayValue(Array {
                values: vec![
                    AnyValue {
                        value: Some(IntValue(1)),
                    },
                    AnyValue {
                        value: Some(StringValue("x".into())),
                    },
                ],
            }),
        ),
        kv(
            "map",
            KvlistValue(KvList {
                values: vec![kv("inner", BoolValue(false))],
            }),
        ),
        kv("bytes", BytesValue(vec![0, 1, 2, 250, 251])),
    ]
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "instgo".into(),
        version: "0.1.0".into(),
        attributes: vec![kv("scope.k", any_value::Value::StringValue("v".into()))],
        dropped_attributes_count: 2,
    }
}

fn resource() -> Resource {
    Resource {
        attributes: attrs(),
        dropped_attributes_count: 1,
        ..Default::default()
    }
}

fn trace_request() -> ExportTraceServiceRequest {
    let span = Span {
        trace_id: (1..=16).collect(),
        span_id: (1..=8).collect(),
        trace_state: "k=v".into(),
        parent_span_id: vec![0xab; 8],
        flags: 0x301,
        name: "GET /users/{id}".into(),
        kind: 2,
        start_time_unix_nano: 1_700_000_000_123_456_789,
        end_time_unix_nano: u64::MAX,
        attributes: attrs(),
        dropped_attributes_count: 3,
        events: vec![span::Event {
            time_unix_nano: 5,
            name: "exception".into(),
            attributes: attrs(),
            dropped_attributes_count: 0,
        }],
        dropped_events_count: 4,
        links: vec![span::Link {
            trace_id: vec![0xff; 16],
            span_id: vec![0xee; 8],
            trace_state: "a=b".into(),
            attributes: attrs(),
            dropped_attributes_count: 1,
            flags: 1,
        }],
        dropped_links_count: 5,
        status: Some(Status {
            message: "boom".into(),
            code: 2,
        }),
    };
    let root = Span {
        trace_id: (1..=16).collect(),
        span_id: (9..=16).collect(),
        name: "root".into(),
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource()),
            scope_spans: vec![ScopeSpans {
                scope: Some(scope()),
                spans: vec![span, root],
                schema_url: "https://opentelemetry.io/schemas/1.30.0".into(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn metrics_request() -> ExportMetricsServiceRequest {
    let number = |value| NumberDataPoint {
        attributes: attrs(),
        start_time_unix_nano: 1,
        time_unix_nano: 2,
        exemplars: vec![Exemplar {
            filtered_attributes: attrs(),
            time_unix_nano: 3,
            span_id: vec![1; 8],
            trace_id: vec![2; 16],
            value: Some(exemplar::Value::AsDouble(2.5)),
        }],
        flags: 1,
        value: Some(value),
    };
    let metric = |name: &str, data| Metric {
        name: name.into(),
        description: "what it counts".into(),
        unit: "s".into(),
        data: Some(data),
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource()),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope()),
                metrics: vec![
                    metric(
                        "g",
                        metric::Data::Gauge(Gauge {
                            data_points: vec![number(number_data_point::Value::AsDouble(-1.5))],
                        }),
                    ),
                    metric(
                        "c",
                        metric::Data::Sum(Sum {
                            data_points: vec![number(number_data_point::Value::AsInt(i64::MAX))],
                            aggregation_temporality: 2,
                            is_monotonic: true,
                        }),
                    ),
                    metric(
                        "h",
                        metric::Data::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint {
                                attributes: attrs(),
                                start_time_unix_nano: 1,
                                time_unix_nano: 2,
                                count: 7,
                                sum: Some(12.25),
                                bucket_counts: vec![1, 0, 6],
                                explicit_bounds: vec![0.005, 10.0],
                                exemplars: vec![],
                                flags: 0,
                                min: Some(0.001),
                                max: Some(11.0),
                            }],
                            aggregation_temporality: 1,
                        }),
                    ),
                    metric(
                        "e",
                        metric::Data::ExponentialHistogram(ExponentialHistogram {
                            data_points: vec![ExponentialHistogramDataPoint {
                                attributes: attrs(),
                                start_time_unix_nano: 1,
                                time_unix_nano: 2,
                                count: 4,
                                sum: Some(3.0),
                                scale: -2,
                                zero_count: 1,
                                positive: Some(Buckets {
                                    offset: -3,
                                    bucket_counts: vec![1, 2],
                                }),
                                negative: None,
                                flags: 0,
                                exemplars: vec![],
                                min: None,
                                max: Some(2.0),
                                zero_threshold: 0.5,
                            }],
                            aggregation_temporality: 2,
                        }),
                    ),
                    metric(
                        "q",
                        metric::Data::Summary(Summary {
                            data_points: vec![SummaryDataPoint {
                                attributes: vec![],
                                start_time_unix_nano: 1,
                                time_unix_nano: 2,
                                count: 3,
                                sum: 6.5,
                                quantile_values: vec![ValueAtQuantile {
                                    quantile: 0.99,
                                    value: 4.0,
                                }],
                                flags: 0,
                            }],
                        }),
                    ),
                ],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

#[test]
fn traces_read_back_equal() {
    let req = trace_request();
    let json = traces(&req);
    let back: ExportTraceServiceRequest =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e} in\n{json}"));
    assert_eq!(back, req);
}

#[test]
fn metrics_read_back_equal() {
    let req = metrics_request();
    let json = metrics(&req);
    let back: ExportMetricsServiceRequest =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e} in\n{json}"));
    assert_eq!(back, req);
}

/// The forms the OTLP specification names, checked on the text itself.
#[test]
fn otlp_json_forms() {
    let json = traces(&trace_request());
    assert!(
        json.contains(r#""traceId":"0102030405060708090a0b0c0d0e0f10""#),
        "{json}"
    );
    assert!(json.contains(r#""parentSpanId":"abababababababab""#));
    assert!(json.contains(r#""startTimeUnixNano":"1700000000123456789""#));
    assert!(json.contains(r#""intValue":"-9007199254740993""#));
    assert!(json.contains(r#""kind":2"#));
    assert!(json.contains(r#""bytesValue":"AAEC+vs=""#));
    assert!(json.contains(r#""status":{"message":"boom","code":2}"#));
    // A default field is left out: the root span has no parent and no status.
    assert!(json.contains(r#"{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"090a0b0c0d0e0f10","name":"root"}"#));
}

#[test]
fn base64_padding() {
    for (input, want) in [
        (&b""[..], "\"\""),
        (b"f", "\"Zg==\""),
        (b"fo", "\"Zm8=\""),
        (b"foo", "\"Zm9v\""),
        (b"foob", "\"Zm9vYg==\""),
    ] {
        let mut out = String::new();
        base64(&mut out, input);
        assert_eq!(out, want);
    }
}

#[test]
fn non_finite_doubles() {
    let mut out = String::new();
    for d in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e-7, -0.0] {
        double(&mut out, d);
        out.push(' ');
    }
    assert_eq!(out, "\"NaN\" \"Infinity\" \"-Infinity\" 1e-7 -0.0 ");
}
