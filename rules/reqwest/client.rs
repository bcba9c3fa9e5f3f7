// Compiled as a module of reqwest.

use instgo_runtime::hook::CallContext;
use instgo_runtime::http::{self as semconv, ClientRequest};

use crate::async_impl::request::Request;
use crate::header::{HeaderName, HeaderValue};

/// The thread reqwest's blocking client runs its async client on.
const BLOCKING_RUNTIME: &str = "reqwest-internal-sync-runtime";

fn on_blocking_runtime() -> bool {
    std::thread::current().name() == Some(BLOCKING_RUNTIME)
}

/// `send` / `execute`: no span on the blocking client's own thread, where the blocking
/// call's span (made on the caller's thread) already covers the request. The span shows
/// its rule to hyper-util's client hook, which reqwest 0.12+ sends through.
pub fn enter_async(call: &mut CallContext) {
    if on_blocking_runtime() {
        call.suppress();
    } else {
        call.expose_rule();
    }
}

/// In `Client::execute_request`: names the span of the `send` or `execute` call it runs
/// in and writes that span's context into the request's headers.
pub fn request(_call: &mut CallContext, req: &mut Request) {
    if on_blocking_runtime() {
        return; // the blocking call wrote the headers
    }
    instgo_runtime::hook::enclosing(|outer| {
        if outer.rule().starts_with("reqwest") {
            enter(outer, req)
        }
    });
}

fn enter(call: &mut CallContext, req: &mut Request) {
    let method = req.method().as_str().to_string();
    let url = req.url().as_str().to_string();
    let headers = req.headers_mut();
    let info = ClientRequest {
        method: &method,
        url: &url,
    };
    semconv::client_enter(call, &info, |name, value| {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(n, v);
        }
    });
}

pub fn exit(call: &mut CallContext, ret: &Result<crate::Response, crate::Error>) {
    match ret {
        Ok(res) => semconv::client_exit(call, res.status().as_u16(), &format!("{:?}", res.version())),
        Err(e) => semconv::failed(call, error_type(e), &e.to_string()),
    }
}

fn error_type(e: &crate::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_redirect() {
        "redirect"
    } else if e.is_body() {
        "body"
    } else if e.is_decode() {
        "decode"
    } else if e.is_builder() {
        "builder"
    } else {
        "reqwest::Error"
    }
}
