// Called instead of `hyper::service::service_fn` (hyper 1), in the crate that calls it.

use ::instgo_runtime::hook::{self, CallContext, Kind, Site};
use ::instgo_runtime::http::{self as semconv, ServerRequest};

/// The spans this hook starts follow the `hyper-server` rule's switches.
static SITE: Site = Site::hook("hyper-server", "HTTP", Kind::Server);

/// `service_fn(f)`, each of whose calls runs in a SERVER span for its request.
pub fn service_fn<F>(f: F) -> Traced<F> {
    Traced(f)
}

/// A `service_fn` service that makes a SERVER span per request; `Clone`/`Copy` when the
/// function is, as hyper's own `ServiceFn`.
#[derive(Clone, Copy)]
pub struct Traced<F>(F);

impl<F, ReqBody, Ret, ResBody, E> ::hyper::service::Service<::hyper::Request<ReqBody>> for Traced<F>
where
    F: Fn(::hyper::Request<ReqBody>) -> Ret,
    ReqBody: ::hyper::body::Body,
    Ret: ::std::future::Future<Output = Result<::hyper::Response<ResBody>, E>>,
    E: Into<Box<dyn ::std::error::Error + Send + Sync>>,
    ResBody: ::hyper::body::Body,
{
    type Response = ::hyper::Response<ResBody>;
    type Error = E;
    type Future = hook::Returned<hook::HookedAsyncCall, Ret, Exit>;

    fn call(&self, req: ::hyper::Request<ReqBody>) -> Self::Future {
        let call = hook::start(&SITE, |call| enter(call, &req));
        call.returned((self.0)(req), Exit)
    }
}

fn enter<B>(call: &mut CallContext, req: &::hyper::Request<B>) {
    let headers = req.headers();
    let version = match req.version() {
        ::hyper::Version::HTTP_11 => "1.1",
        ::hyper::Version::HTTP_2 => "2",
        ::hyper::Version::HTTP_10 => "1.0",
        ::hyper::Version::HTTP_3 => "3",
        _ => "0.9",
    };
    let uri = req.uri();
    let info = ServerRequest {
        method: req.method().as_str(),
        scheme: uri.scheme_str().unwrap_or("http"),
        path: uri.path(),
        query: uri.query(),
        route: None,
        host: text(headers.get(::hyper::header::HOST)).or(uri.authority().map(|a| a.as_str())),
        version,
        user_agent: text(headers.get(::hyper::header::USER_AGENT)),
    };
    semconv::server_enter(call, &info, |name| {
        text(propagation_header(headers, name)).map(str::to_string)
    });
}

fn text(v: Option<&::hyper::header::HeaderValue>) -> Option<&str> {
    v.and_then(|v| v.to_str().ok())
}

/// A propagation header the runtime asks for, looked up as a `HeaderName`: a `&str` is
/// parsed into a name on every lookup (in the axum benchmark the parsing was 1.2 k of a
/// request's 32 k instructions).
fn propagation_header<'a>(
    headers: &'a ::hyper::HeaderMap,
    name: &str,
) -> Option<&'a ::hyper::header::HeaderValue> {
    use ::hyper::header::HeaderName;
    const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
    const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
    const BAGGAGE: HeaderName = HeaderName::from_static("baggage");
    match name {
        "traceparent" => headers.get(TRACEPARENT),
        "tracestate" => headers.get(TRACESTATE),
        "baggage" => headers.get(BAGGAGE),
        other => headers.get(other),
    }
}

/// The exit hook: the response's status (an error has none: hyper closes the connection).
pub struct Exit;

impl<B, E> hook::Done<hook::HookedAsyncCall, Result<::hyper::Response<B>, E>> for Exit {
    fn done(self, call: &hook::HookedAsyncCall, out: &Result<::hyper::Response<B>, E>) {
        call.exit(|h| {
            if let Ok(res) = out {
                semconv::server_exit(h, res.status().as_u16())
            }
        })
    }
}
