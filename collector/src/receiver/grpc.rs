//! OTLP/gRPC: the trace, metrics and logs export services.
//!
//! Written on tonic's server parts instead of its generated services so that a message
//! that does not decode is answered INVALID_ARGUMENT (as OTLP asks), where the generated
//! code's codec answers INTERNAL. The codec hands over the raw message; decoding happens
//! here.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes};
use tonic::codec::{
    Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings, EncodeBuf, Encoder,
};
use tonic::codegen::{BoxFuture, StdError};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::Status;

use crate::pipeline::Pipeline;
use crate::signal::{Encoding, Payload, Signal};

/// One of the three services.
pub trait Kind: Clone + Send + Sync + 'static {
    const NAME: &'static str;
    const SIGNAL: Signal;
}

#[derive(Clone)]
pub struct Traces;
#[derive(Clone)]
pub struct Metrics;
#[derive(Clone)]
pub struct Logs;

impl Kind for Traces {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const SIGNAL: Signal = Signal::Traces;
}
impl Kind for Metrics {
    const NAME: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    const SIGNAL: Signal = Signal::Metrics;
}
impl Kind for Logs {
    const NAME: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const SIGNAL: Signal = Signal::Logs;
}

/// The export service of signal `K`.
pub struct Service<K> {
    pipeline: Arc<Pipeline>,
    max_message: usize,
    token: Option<Arc<str>>,
    kind: PhantomData<K>,
}

impl<K> Clone for Service<K> {
    fn clone(&self) -> Self {
        Service {
            pipeline: self.pipeline.clone(),
            max_message: self.max_message,
            token: self.token.clone(),
            kind: PhantomData,
        }
    }
}

impl<K: Kind> Service<K> {
    /// With `token`, calls without `authorization: Bearer TOKEN` are UNAUTHENTICATED.
    pub fn new(pipeline: Arc<Pipeline>, max_message: usize, token: Option<Arc<str>>) -> Self {
        Service {
            pipeline,
            max_message,
            token,
            kind: PhantomData,
        }
    }
}

impl<K: Kind> NamedService for Service<K> {
    const NAME: &'static str = K::NAME;
}

impl<K, B> tonic::codegen::Service<http::Request<B>> for Service<K>
where
    K: Kind,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if let Some(token) = &self.token {
            if !crate::auth::allowed(req.headers(), token) {
                let status = Status::unauthenticated(
                    "this collector needs its token: authorization: Bearer TOKEN",
                );
                return Box::pin(async move { Ok(status.into_http()) });
            }
        }
        let method = req.uri().path().rsplit('/').next().unwrap_or("");
        if method != "Export" {
            let status = Status::unimplemented(format!("{} has only Export", K::NAME));
            return Box::pin(async move { Ok(status.into_http()) });
        }
        let unary = Unary::<K> {
            pipeline: self.pipeline.clone(),
            kind: PhantomData,
        };
        let max = self.max_message;
        Box::pin(async move {
            let mut gzip = EnabledCompressionEncodings::default();
            gzip.enable(CompressionEncoding::Gzip);
            let mut grpc = Grpc::new(RawCodec)
                .apply_compression_config(gzip, EnabledCompressionEncodings::default())
                .apply_max_message_size_config(Some(max), None);
            Ok(grpc.unary(unary, req).await)
        })
    }
}

struct Unary<K> {
    pipeline: Arc<Pipeline>,
    kind: PhantomData<K>,
}

impl<K: Kind> UnaryService<Bytes> for Unary<K> {
    type Response = Vec<u8>;
    type Future = BoxFuture<tonic::Response<Vec<u8>>, Status>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let pipeline = self.pipeline.clone();
        Box::pin(async move {
            let payload = Payload::decode(K::SIGNAL, Encoding::Protobuf, request.get_ref())
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
            // UNAVAILABLE is retryable for OTLP senders: they come back later.
            pipeline
                .accept(payload)
                .map_err(|e| Status::unavailable(e.to_string()))?;
            // An empty Export*ServiceResponse encodes to no bytes.
            Ok(tonic::Response::new(Vec::new()))
        })
    }
}

/// Hands over the message bytes as they are; answers are encoded already. The forward
/// exporter's client uses it too.
#[derive(Clone, Copy)]
pub(crate) struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
