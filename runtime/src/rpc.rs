//! gRPC as the OpenTelemetry RPC semantic conventions describe it, for the catalog's
//! server and client hooks: `package.Service/Method` span names, `rpc.system`,
//! `rpc.service`, `rpc.method`, `rpc.grpc.status_code`, remote parents from the request
//! metadata, and the `rpc.server.call.duration` / `rpc.client.call.duration` histograms.
//!
//! Like [`crate::http`], it takes strings, so every gRPC framework's spans look alike.

use opentelemetry::KeyValue;

use crate::hook::CallContext;
use crate::metrics::CallMetric;

/// `(service, method)` of a gRPC request path (`/helloworld.Greeter/SayHello`).
fn service_method(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
}

fn enter(call: &mut CallContext, path: &str, server: bool, authority: Option<&str>) {
    let mut attributes = vec![KeyValue::new("rpc.system", "grpc")];
    match service_method(path) {
        Some((service, method)) => {
            call.set_name(format!("{service}/{method}"));
            attributes.push(KeyValue::new("rpc.service", service.to_string()));
            attributes.push(KeyValue::new("rpc.method", method.to_string()));
        }
        // Not a gRPC path: the span keeps a fixed name, never the path itself.
        None => call.set_name("grpc"),
    }
    if let Some((address, port)) = authority.and_then(crate::http::host_port_of) {
        attributes.push(KeyValue::new("server.address", address.to_string()));
        attributes.push(KeyValue::new("server.port", port));
    }
    for kv in &attributes {
        call.set_key_value(kv.clone());
    }
    let histogram = if server {
        crate::metrics::rpc_server_duration()
    } else {
        crate::metrics::rpc_client_duration()
    };
    call.metric = Some(CallMetric::new(server, histogram, attributes));
}

/// On a server hook's entry, with the request path and a metadata (header) lookup.
pub fn server_enter(
    call: &mut CallContext,
    path: &str,
    authority: Option<&str>,
    header: impl Fn(&str) -> Option<String>,
) {
    call.extract_or_root(header);
    enter(call, path, true, authority);
}

/// On a client hook's entry: writes this span's context into the outgoing metadata.
pub fn client_enter(
    call: &mut CallContext,
    path: &str,
    authority: Option<&str>,
    inject: impl FnMut(&str, &str),
) {
    enter(call, path, false, authority);
    call.inject(inject);
}

/// On exit, with the call's gRPC status code (0 = OK) and message.
///
/// A client span fails on any code but OK; a server span only on the codes that mean
/// the server failed (UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE,
/// DATA_LOSS), not on the caller's mistakes (NOT_FOUND, INVALID_ARGUMENT…).
pub fn exit(call: &mut CallContext, code: i32, message: &str) {
    let Some(mut metric) = call.metric.take() else {
        return;
    };
    let kv = KeyValue::new("rpc.grpc.status_code", i64::from(code));
    call.set_key_value(kv.clone());
    metric.attributes.push(kv);
    let failed = if metric.server {
        matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
    } else {
        code != 0
    };
    if failed {
        let name = code_name(code);
        call.set_attribute("error.type", name);
        metric.attributes.push(KeyValue::new("error.type", name));
        call.set_error(message.to_string());
    }
    metric.record(call.elapsed());
}

fn code_name(code: i32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("_OTHER")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_codes() {
        assert_eq!(
            service_method("/helloworld.Greeter/SayHello"),
            Some(("helloworld.Greeter", "SayHello"))
        );
        assert_eq!(service_method("/a/b/c"), None);
        assert_eq!(service_method("/nomethod/"), None);
        assert_eq!(service_method("relative/x"), None);
        assert_eq!(code_name(0), "OK");
        assert_eq!(code_name(14), "UNAVAILABLE");
        assert_eq!(code_name(16), "UNAUTHENTICATED");
        assert_eq!(code_name(99), "_OTHER");
        assert_eq!(code_name(-1), "_OTHER");
    }
}
