// Compiled as a module of tonic.

use instgo_runtime::hook::CallContext;
use instgo_runtime::rpc;

use crate::metadata::{MetadataKey, MetadataValue};

pub fn server_enter<B>(call: &mut CallContext, req: &http::Request<B>) {
    let headers = req.headers();
    let authority = req
        .uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| headers.get("host").and_then(|h| h.to_str().ok()));
    rpc::server_enter(call, req.uri().path(), authority, |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    });
}

/// The status of a call that failed before its response started travels in the
/// response headers ("trailers-only"); a response without one is under way: OK so far.
pub fn server_exit<B>(call: &mut CallContext, res: &http::Response<B>) {
    let headers = res.headers();
    let code = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let message = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    rpc::exit(call, code, message);
}

pub fn client_enter<T>(
    call: &mut CallContext,
    request: &mut crate::Request<T>,
    path: &http::uri::PathAndQuery,
) {
    // `unary` runs through `client_streaming`, which runs through `streaming`.
    if call
        .parent_rule()
        .is_some_and(|r| r.starts_with("tonic-client"))
    {
        call.suppress();
        return;
    }
    call.expose_rule();
    let metadata = request.metadata_mut();
    rpc::client_enter(call, path.path(), None, |name, value| {
        if let (Ok(k), Ok(v)) = (
            MetadataKey::from_bytes(name.as_bytes()),
            MetadataValue::try_from(value),
        ) {
            metadata.insert(k, v);
        }
    });
}

pub fn client_exit<T>(call: &mut CallContext, ret: &Result<crate::Response<T>, crate::Status>) {
    match ret {
        Ok(_) => rpc::exit(call, 0, ""),
        Err(status) => rpc::exit(call, status.code() as i32, status.message()),
    }
}
