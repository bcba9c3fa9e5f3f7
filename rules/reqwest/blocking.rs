// Compiled as a module of reqwest, only where its `blocking` feature is on: without it
// the `blocking` module is configured out, so the rule matches nothing and this file is
// not injected. Kept apart from client.rs for that reason: the async hooks are injected
// whatever the features, and these name `crate::blocking`.

use instgo_runtime::hook::CallContext;
use instgo_runtime::http::{self as semconv, ClientRequest};

use crate::header::{HeaderName, HeaderValue};

pub fn enter(call: &mut CallContext, req: &mut crate::blocking::Request) {
    let method = req.method().as_str().to_string();
    let url = req.url().as_str().to_string();
    let info = ClientRequest {
        method: &method,
        url: &url,
    };
    let headers = req.headers_mut();
    semconv::client_enter(call, &info, |name, value| {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(n, v);
        }
    });
}

pub fn exit(call: &mut CallContext, ret: &Result<crate::blocking::Response, crate::Error>) {
    match ret {
        Ok(res) => semconv::client_exit(call, res.status().as_u16(), &format!("{:?}", res.version())),
        Err(e) => {
            let kind = if e.is_timeout() {
                "timeout"
            } else if e.is_connect() {
                "connect"
            } else {
                "reqwest::Error"
            };
            semconv::failed(call, kind, &e.to_string())
        }
    }
}
