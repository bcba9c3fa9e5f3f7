//! What flows through the collector: one OTLP export request of one signal, decoded.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

/// The three OTLP signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }
}

/// One export request, as received.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Traces(ExportTraceServiceRequest),
    Metrics(ExportMetricsServiceRequest),
    Logs(ExportLogsServiceRequest),
}

/// How a request body was encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

/// A body that is not the export request it claims to be.
#[derive(Debug, thiserror::Error)]
#[error("malformed OTLP {signal} request ({encoding}): {reason}")]
pub struct DecodeError {
    pub signal: &'static str,
    pub encoding: &'static str,
    pub reason: String,
}

impl Payload {
    pub fn decode(signal: Signal, encoding: Encoding, body: &[u8]) -> Result<Payload, DecodeError> {
        fn one<T: Message + Default + serde::de::DeserializeOwned>(
            signal: Signal,
            encoding: Encoding,
            body: &[u8],
        ) -> Result<T, DecodeError> {
            let fail = |reason: String| DecodeError {
                signal: signal.name(),
                encoding: match encoding {
                    Encoding::Protobuf => "protobuf",
                    Encoding::Json => "JSON",
                },
                reason,
            };
            match encoding {
                Encoding::Protobuf => T::decode(body).map_err(|e| fail(e.to_string())),
                Encoding::Json => serde_json::from_slice(body).map_err(|e| fail(e.to_string())),
            }
        }
        Ok(match signal {
            Signal::Traces => Payload::Traces(one(signal, encoding, body)?),
            Signal::Metrics => Payload::Metrics(one(signal, encoding, body)?),
            Signal::Logs => Payload::Logs(one(signal, encoding, body)?),
        })
    }

    pub fn signal(&self) -> Signal {
        match self {
            Payload::Traces(_) => Signal::Traces,
            Payload::Metrics(_) => Signal::Metrics,
            Payload::Logs(_) => Signal::Logs,
        }
    }

    /// Spans, data points or log records in the request: what batch sizes count.
    pub fn items(&self) -> usize {
        match self {
            Payload::Traces(r) => r
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .map(|ss| ss.spans.len())
                .sum(),
            Payload::Metrics(r) => r
                .resource_metrics
                .iter()
                .flat_map(|rm| &rm.scope_metrics)
                .flat_map(|sm| &sm.metrics)
                .map(points)
                .sum(),
            Payload::Logs(r) => r
                .resource_logs
                .iter()
                .flat_map(|rl| &rl.scope_logs)
                .map(|sl| sl.log_records.len())
                .sum(),
        }
    }

    /// The protobuf size: what the memory limiter and the queues account in.
    pub fn size(&self) -> usize {
        match self {
            Payload::Traces(r) => r.encoded_len(),
            Payload::Metrics(r) => r.encoded_len(),
            Payload::Logs(r) => r.encoded_len(),
        }
    }

    pub fn to_protobuf(&self) -> Vec<u8> {
        match self {
            Payload::Traces(r) => r.encode_to_vec(),
            Payload::Metrics(r) => r.encode_to_vec(),
            Payload::Logs(r) => r.encode_to_vec(),
        }
    }

    /// OTLP/JSON, as one line (the file exporter's format).
    pub fn to_json(&self) -> String {
        let text = match self {
            Payload::Traces(r) => serde_json::to_string(r),
            Payload::Metrics(r) => serde_json::to_string(r),
            Payload::Logs(r) => serde_json::to_string(r),
        };
        // Serializing generated types with string keys cannot fail.
        text.unwrap_or_default()
    }

    /// Requests of one signal merged into one (resources kept apart).
    pub fn merge(batch: Vec<Payload>) -> Option<Payload> {
        let mut it = batch.into_iter();
        let mut first = it.next()?;
        for p in it {
            match (&mut first, p) {
                (Payload::Traces(a), Payload::Traces(b)) => {
                    a.resource_spans.extend(b.resource_spans)
                }
                (Payload::Metrics(a), Payload::Metrics(b)) => {
                    a.resource_metrics.extend(b.resource_metrics)
                }
                (Payload::Logs(a), Payload::Logs(b)) => a.resource_logs.extend(b.resource_logs),
                _ => {}
            }
        }
        Some(first)
    }
}

fn points(m: &opentelemetry_proto::tonic::metrics::v1::Metric) -> usize {
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    match &m.data {
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}
