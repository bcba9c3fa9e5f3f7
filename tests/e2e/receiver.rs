//! A real OTLP/HTTP receiver for the tests: decodes protobuf export requests with the
//! OpenTelemetry proto definitions and keeps the spans.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use prost::Message;

#[derive(Debug, Clone)]
pub struct Span {
    pub name: String,
    pub trace_id: Vec<u8>,
    pub span_id: Vec<u8>,
    pub parent_span_id: Vec<u8>,
    pub kind: i32,
    pub attributes: Vec<(String, String)>,
    pub events: Vec<String>,
    pub status_code: i32,
    pub status_message: String,
    pub resource: Vec<(String, String)>,
}

impl Span {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    pub fn resource_attr(&self, key: &str) -> Option<&str> {
        self.resource
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn flat(kvs: &[KeyValue]) -> Vec<(String, String)> {
    kvs.iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => s.clone(),
                Some(Value::IntValue(i)) => i.to_string(),
                Some(Value::BoolValue(b)) => b.to_string(),
                Some(Value::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), v)
        })
        .collect()
}

/// One histogram or sum data point as exported (a sum's value is in `sum`).
#[derive(Debug, Clone)]
pub struct Point {
    pub metric: String,
    pub unit: String,
    pub count: u64,
    pub sum: f64,
    pub attributes: Vec<(String, String)>,
}

#[derive(Default)]
struct Sink {
    spans: Mutex<Vec<Span>>,
    points: Mutex<Vec<Point>>,
}

pub struct Receiver {
    pub endpoint: String,
    sink: Arc<Sink>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let sink = Arc::new(Sink::default());
        let shared = sink.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let sink = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &sink);
                });
            }
        });
        Receiver { endpoint, sink }
    }

    /// Waits until `pred` holds on the metric points received so far (or the time is up).
    pub fn wait_for_points(
        &self,
        timeout: Duration,
        pred: impl Fn(&[Point]) -> bool,
    ) -> Vec<Point> {
        wait(&self.sink.points, timeout, pred)
    }

    /// Waits until `pred` holds on the spans received so far (or the time is up).
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        wait(&self.sink.spans, timeout, pred)
    }
}

fn wait<T: Clone>(
    received: &Mutex<Vec<T>>,
    timeout: Duration,
    pred: impl Fn(&[T]) -> bool,
) -> Vec<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let got = received.lock().unwrap().clone();
        if pred(&got) || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn serve(conn: std::net::TcpStream, sink: &Sink) -> std::io::Result<()> {
    let mut w = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        if h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    let status = if path == "/v1/traces" {
        match ExportTraceServiceRequest::decode(&body[..]) {
            Ok(req) => {
                let mut out = sink.spans.lock().unwrap();
                for rs in req.resource_spans {
                    let resource = rs.resource.map(|r| flat(&r.attributes)).unwrap_or_default();
                    for ss in rs.scope_spans {
                        for s in ss.spans {
                            let status = s.status.unwrap_or_default();
                            out.push(Span {
                                name: s.name,
                                trace_id: s.trace_id,
                                span_id: s.span_id,
                                parent_span_id: s.parent_span_id,
                                kind: s.kind,
                                attributes: flat(&s.attributes),
                                events: s.events.iter().map(|e| e.name.clone()).collect(),
                                status_code: status.code,
                                status_message: status.message,
                                resource: resource.clone(),
                            });
                        }
                    }
                }
                "200 OK"
            }
            Err(_) => "400 Bad Request",
        }
    } else if path == "/v1/metrics" {
        match ExportMetricsServiceRequest::decode(&body[..]) {
            Ok(req) => {
                let mut out = sink.points.lock().unwrap();
                for rm in req.resource_metrics {
                    for sm in rm.scope_metrics {
                        for m in sm.metrics {
                            match &m.data {
                                Some(Data::Histogram(h)) => {
                                    for p in &h.data_points {
                                        out.push(Point {
                                            metric: m.name.clone(),
                                            unit: m.unit.clone(),
                                            count: p.count,
                                            sum: p.sum.unwrap_or_default(),
                                            attributes: flat(&p.attributes),
                                        });
                                    }
                                }
                                // Counters: the value goes in `sum`.
                                Some(Data::Sum(s)) => {
                                    for p in &s.data_points {
                                        out.push(Point {
                                            metric: m.name.clone(),
                                            unit: m.unit.clone(),
                                            count: 0,
                                            sum: number(p),
                                            attributes: flat(&p.attributes),
                                        });
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                }
                "200 OK"
            }
            Err(_) => "400 Bad Request",
        }
    } else {
        "404 Not Found"
    };
    write!(w, "HTTP/1.1 {status}\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    w.flush()
}

fn number(p: &opentelemetry_proto::tonic::metrics::v1::NumberDataPoint) -> f64 {
    use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
    match p.value {
        Some(Value::AsInt(i)) => i as f64,
        Some(Value::AsDouble(d)) => d,
        None => 0.0,
    }
}
