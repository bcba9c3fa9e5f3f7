// Compiled as a module of hyper-util (only with its `client-legacy` feature: the rule's
// function is configured out otherwise, and then nothing is injected).

use instgo_runtime::hook::CallContext;
use instgo_runtime::http::{self as semconv, ClientRequest};

/// reqwest's blocking client runs its async client (and so this one) on this thread,
/// where reqwest's own spans are suppressed: the blocking call's span, made on the
/// caller's thread, covers the request.
const REQWEST_BLOCKING_RUNTIME: &str = "reqwest-internal-sync-runtime";

pub fn enter<B>(call: &mut CallContext, req: &mut http::Request<B>) {
    // reqwest's span covers this request and reqwest wrote its headers.
    if call.parent_rule().is_some_and(|r| r.starts_with("reqwest"))
        || std::thread::current().name() == Some(REQWEST_BLOCKING_RUNTIME)
    {
        call.suppress();
        return;
    }
    let method = req.method().as_str().to_string();
    let url = req.uri().to_string();
    let info = ClientRequest {
        method: &method,
        url: &url,
    };
    let headers = req.headers_mut();
    semconv::client_enter(call, &info, |name, value| {
        if let (Ok(n), Ok(v)) = (
            http::header::HeaderName::from_bytes(name.as_bytes()),
            http::header::HeaderValue::from_str(value),
        ) {
            headers.insert(n, v);
        }
    });
}

pub fn exit(
    call: &mut CallContext,
    ret: &Result<http::Response<hyper::body::Incoming>, crate::client::legacy::Error>,
) {
    match ret {
        Ok(res) => semconv::client_exit(
            call,
            res.status().as_u16(),
            &format!("{:?}", res.version()),
        ),
        Err(e) => {
            let kind = if e.is_connect() { "connect" } else { "hyper_util::Error" };
            semconv::failed(call, kind, &e.to_string())
        }
    }
}
