//! OTLP receivers: HTTP (`/v1/traces`, `/v1/metrics`, `/v1/logs`; protobuf or JSON; gzip)
//! and gRPC (the three export services). Both decode, then hand the request to the
//! pipeline; a malformed body is refused with a message saying what is wrong, and the
//! receiver goes on serving.

pub mod grpc;
pub mod http;

/// The OTLP failure body (`google.rpc.Status`), for the HTTP receiver's 4xx/5xx answers.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}
