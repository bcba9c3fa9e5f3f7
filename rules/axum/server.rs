// Compiled as a module of axum. `wrap` is applied to the service of every `Route`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use instgo_runtime::hook::{self, CallContext, Kind, Site};
use instgo_runtime::http::{self as semconv, ServerRequest};
use tower_service::Service;

use crate::body::Body;
use crate::response::{IntoResponse, Response};

/// The calls this hook starts itself follow the `axum` rule's switches.
static SITE: Site = Site::hook("axum", "HTTP", Kind::Server);

pub fn wrap<T>(svc: T) -> Traced<T> {
    Traced(svc)
}

/// A route's service, making the request's SERVER span when it is the outermost one.
#[derive(Clone)]
pub struct Traced<T>(T);

/// Marks a request whose span an outer `Traced` (a layer's route) already made.
#[derive(Clone, Copy)]
struct Seen;

/// The exit hook, as a type that does not name the service's error type: `Route::new`
/// does not know that error type to be `'static`, and its future must be.
pub struct Exit;

impl<E> hook::Done<hook::HookedAsyncCall, Result<Response, E>> for Exit {
    fn done(self, call: &hook::HookedAsyncCall, out: &Result<Response, E>) {
        call.exit(|h| exit(h, out))
    }
}

impl<T> Service<http::Request<Body>> for Traced<T>
where
    T: Service<http::Request<Body>>,
    T::Response: IntoResponse,
{
    type Response = Response;
    type Error = T::Error;
    type Future = hook::Returned<hook::HookedAsyncCall, IntoResp<T::Future>, Exit>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Body>) -> Self::Future {
        // gRPC served through an axum router (tonic's) gets its span from the tonic rules,
        // named after the RPC; a second, HTTP-named server span would only nest it.
        let grpc = |req: &http::Request<Body>| {
            req.headers()
                .get(http::header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
        };
        // The marker costs a map insert (a rehash, axum's requests carry three already),
        // and the look-ups a header and a map search: none is paid while the rule is off.
        let outermost =
            SITE.is_on() && !grpc(&req) && req.extensions().get::<Seen>().is_none();
        let call = hook::start_if(&SITE, outermost, |call| enter(call, &req));
        if outermost {
            req.extensions_mut().insert(Seen);
        }
        let fut = IntoResp { fut: self.0.call(req) };
        call.returned(fut, Exit)
    }
}

fn enter(call: &mut CallContext, req: &http::Request<Body>) {
    #[cfg(feature = "matched-path")]
    let route = req
        .extensions()
        .get::<crate::extract::MatchedPath>()
        .map(|m| m.as_str());
    #[cfg(not(feature = "matched-path"))]
    let route: Option<&str> = None;
    // A nested service sees its path with the prefix stripped; the span wants the URL
    // the client sent.
    #[cfg(feature = "original-uri")]
    let uri = req
        .extensions()
        .get::<crate::extract::OriginalUri>()
        .map_or(req.uri(), |o| &o.0);
    #[cfg(not(feature = "original-uri"))]
    let uri = req.uri();
    let headers = req.headers();
    let version = match req.version() {
        http::Version::HTTP_11 => "1.1",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_3 => "3",
        _ => "0.9",
    };
    let info = ServerRequest {
        method: req.method().as_str(),
        scheme: uri.scheme_str().unwrap_or("http"),
        path: uri.path(),
        query: uri.query(),
        route,
        host: text(headers.get(http::header::HOST)).or(uri.authority().map(|a| a.as_str())),
        version,
        user_agent: text(headers.get(http::header::USER_AGENT)),
    };
    semconv::server_enter(call, &info, |name| {
        text(propagation_header(headers, name)).map(str::to_string)
    });
}

fn text(v: Option<&http::header::HeaderValue>) -> Option<&str> {
    v.and_then(|v| v.to_str().ok())
}

/// A propagation header the runtime asks for, looked up as a `HeaderName`: a `&str` is
/// parsed into a name on every lookup (in the axum benchmark the parsing was 1.2 k of a
/// request's 32 k instructions).
fn propagation_header<'a>(
    headers: &'a http::header::HeaderMap,
    name: &str,
) -> Option<&'a http::header::HeaderValue> {
    use http::header::HeaderName;
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

fn exit<E>(call: &mut CallContext, out: &Result<Response, E>) {
    if let Ok(res) = out {
        semconv::server_exit(call, res.status().as_u16());
    }
}

/// The route's response future, its response turned into axum's `Response` (so the
/// exit hook can read the status whatever the handler returned).
pub struct IntoResp<F> {
    fut: F,
}

impl<F, R, E> Future for IntoResp<F>
where
    F: Future<Output = Result<R, E>>,
    R: IntoResponse,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `fut` is structurally pinned: never moved out, and no Drop impl.
        let fut = unsafe { self.map_unchecked_mut(|s| &mut s.fut) };
        fut.poll(cx).map(|r| r.map(IntoResponse::into_response))
    }
}
