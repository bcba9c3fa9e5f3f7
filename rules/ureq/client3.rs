// Compiled as a module of ureq 3.

use instgo_runtime::hook::CallContext;
use instgo_runtime::http::{self as semconv, ClientRequest};

use crate::http::header::{HeaderName, HeaderValue};

/// Names the span and writes its context into the request's headers.
pub fn enter(call: &mut CallContext, req: &mut crate::http::Request<()>) {
    let method = req.method().as_str().to_string();
    let url = req.uri().to_string();
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

pub fn exit(
    call: &mut CallContext,
    ret: &Result<crate::http::Response<crate::Body>, crate::Error>,
) {
    match ret {
        Ok(res) => semconv::client_exit(
            call,
            res.status().as_u16(),
            &format!("{:?}", res.version()),
        ),
        // By default ureq 3 returns 4xx and 5xx responses as errors, without the response.
        Err(crate::Error::StatusCode(code)) => semconv::client_exit(call, *code, ""),
        Err(e) => semconv::failed(call, error_type(e), &e.to_string()),
    }
}

fn error_type(e: &crate::Error) -> &'static str {
    match e {
        crate::Error::Timeout(_) => "timeout",
        crate::Error::ConnectionFailed => "connect",
        crate::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => "connect",
        crate::Error::HostNotFound => "dns",
        crate::Error::Io(_) => "io",
        crate::Error::TooManyRedirects | crate::Error::RedirectFailed => "redirect",
        _ => "ureq::Error",
    }
}
