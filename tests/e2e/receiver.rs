//! Real OTLP receivers for the tests, keeping what they decode: OTLP/HTTP (protobuf or
//! JSON, plain or gzip; decoded with the OpenTelemetry proto definitions and their serde
//! support) and OTLP/gRPC (tonic, the usual Rust gRPC server).

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
    pub start_unix_nano: u64,
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
    /// How each request came: `http/protobuf`, `http/json+gzip`, `grpc`…
    formats: Mutex<Vec<String>>,
    /// gRPC metadata seen, as `name=value`.
    metadata: Mutex<Vec<String>>,
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

    /// An OTLP/gRPC receiver (trace and metrics services) on a tokio runtime of its own.
    pub fn start_grpc() -> Receiver {
        use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::MetricsServiceServer;
        use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
        let sink = Arc::new(Sink::default());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let service = Grpc(sink.clone());
        std::thread::spawn(move || {
            rt.block_on(
                tonic::transport::Server::builder()
                    .add_service(
                        TraceServiceServer::new(service.clone())
                            .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
                    )
                    .add_service(
                        MetricsServiceServer::new(service)
                            .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
                    )
                    .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
            )
        });
        Receiver { endpoint, sink }
    }

    pub fn formats(&self) -> Vec<String> {
        self.sink.formats.lock().unwrap().clone()
    }

    pub fn metadata(&self) -> Vec<String> {
        self.sink.metadata.lock().unwrap().clone()
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
    let (mut len, mut json, mut gzip) = (0usize, false, false);
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        if h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                len = v.parse().unwrap_or(0);
            } else if k.eq_ignore_ascii_case("content-type") {
                json = v.starts_with("application/json");
            } else if k.eq_ignore_ascii_case("content-encoding") {
                gzip = v.eq_ignore_ascii_case("gzip");
            }
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    if gzip {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut plain)?;
        body = plain;
    }
    let format = format!(
        "http/{}{}",
        if json { "json" } else { "protobuf" },
        if gzip { "+gzip" } else { "" }
    );
    fn decode<T: Message + Default + serde::de::DeserializeOwned>(
        body: &[u8],
        json: bool,
    ) -> Option<T> {
        if json {
            serde_json::from_slice(body).ok()
        } else {
            T::decode(body).ok()
        }
    }
    let ok = match path.as_str() {
        "/v1/traces" => decode(&body, json).map(|req| sink.add_traces(req)),
        "/v1/metrics" => decode(&body, json).map(|req| sink.add_metrics(req)),
        _ => None,
    };
    let status = match (ok, path.as_str()) {
        (Some(()), _) => {
            sink.formats.lock().unwrap().push(format);
            "200 OK"
        }
        (None, "/v1/traces" | "/v1/metrics") => "400 Bad Request",
        (None, _) => "404 Not Found",
    };
    write!(w, "HTTP/1.1 {status}\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    w.flush()
}

impl Sink {
    fn add_traces(&self, req: ExportTraceServiceRequest) {
        let mut out = self.spans.lock().unwrap();
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
                        start_unix_nano: s.start_time_unix_nano,
                    });
                }
            }
        }
    }

    fn add_metrics(&self, req: ExportMetricsServiceRequest) {
        let mut out = self.points.lock().unwrap();
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
                        // Counters and gauges: the value goes in `sum`.
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
    }
}

#[derive(Clone)]
struct Grpc(Arc<Sink>);

impl Grpc {
    fn seen<T>(&self, req: &tonic::Request<T>) {
        let encoding = req
            .metadata()
            .get("grpc-encoding")
            .and_then(|v| v.to_str().ok())
            .map(|e| format!("+{e}"))
            .unwrap_or_default();
        self.0
            .formats
            .lock()
            .unwrap()
            .push(format!("grpc{encoding}"));
        let mut md = self.0.metadata.lock().unwrap();
        for kv in req.metadata().iter() {
            if let tonic::metadata::KeyAndValueRef::Ascii(k, v) = kv {
                md.push(format!("{}={}", k.as_str(), v.to_str().unwrap_or("?")));
            }
        }
    }
}

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService for Grpc {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<
        tonic::Response<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse,
        >,
        tonic::Status,
    > {
        self.seen(&req);
        self.0.add_traces(req.into_inner());
        Ok(tonic::Response::new(Default::default()))
    }
}

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::MetricsService
    for Grpc
{
    async fn export(
        &self,
        req: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<
        tonic::Response<
            opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse,
        >,
        tonic::Status,
    > {
        self.seen(&req);
        self.0.add_metrics(req.into_inner());
        Ok(tonic::Response::new(Default::default()))
    }
}

fn number(p: &opentelemetry_proto::tonic::metrics::v1::NumberDataPoint) -> f64 {
    use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
    match p.value {
        Some(Value::AsInt(i)) => i as f64,
        Some(Value::AsDouble(d)) => d,
        None => 0.0,
    }
}
