// Compiled as a module of ureq 2.

use instgo_runtime::hook::CallContext;
use instgo_runtime::http::{self as semconv, ClientRequest};

/// Names the span and writes its context into the request's headers (`Request::set`
/// takes the request by value, and ureq's requests are cheap to clone).
pub fn enter(call: &mut CallContext, req: &mut crate::Request) {
    let method = req.method().to_string();
    let url = req.url().to_string();
    let info = ClientRequest {
        method: &method,
        url: &url,
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    semconv::client_enter(call, &info, |name, value| {
        headers.push((name.to_string(), value.to_string()))
    });
    if !headers.is_empty() {
        let mut with = req.clone();
        for (name, value) in &headers {
            with = with.set(name, value);
        }
        *req = with;
    }
}

pub fn exit(call: &mut CallContext, ret: &Result<crate::Response, crate::Error>) {
    match ret {
        Ok(res) => semconv::client_exit(call, res.status(), res.http_version()),
        // ureq 2 returns 4xx and 5xx responses as errors.
        Err(crate::Error::Status(code, res)) => {
            semconv::client_exit(call, *code, res.http_version())
        }
        // `Error::kind`, not `Transport::kind`: ureq 2.1 has only the former.
        Err(e @ crate::Error::Transport(t)) => {
            let kind = match e.kind() {
                crate::ErrorKind::ConnectionFailed => "connect".to_string(),
                crate::ErrorKind::Dns => "dns".to_string(),
                other => format!("{other:?}"),
            };
            semconv::failed(call, &kind, &t.to_string())
        }
    }
}
