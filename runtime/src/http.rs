//! HTTP as the OpenTelemetry semantic conventions describe it, for the catalog's server
//! and client hooks: span names, kinds' attributes, remote parents, status, and the
//! `http.server.request.duration` / `http.client.request.duration` histograms.
//!
//! Every framework has its own request types, which this crate cannot name, so a hook
//! reads what it needs into a [`ServerRequest`] or [`ClientRequest`] of plain strings and
//! calls the functions here from `on_enter` and `on_exit`. The conventions then live in
//! one place and every framework's spans look alike.
//!
//! Headers are not recorded, only `User-Agent` as `user_agent.original`, unless a remote
//! config names them for a server rule (`capture_headers`, which refuses `Authorization`,
//! `Cookie` and `Set-Cookie`); credentials in a URL become `REDACTED`.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;

use opentelemetry::KeyValue;

use crate::hook::CallContext;
use crate::metrics::CallMetric;

/// An incoming request, as a server hook sees it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerRequest<'a> {
    /// The request method as sent (`GET`, `post`, `PURGE`, …).
    pub method: &'a str,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// The path of the request target, without the query.
    pub path: &'a str,
    /// The query, without the `?`.
    pub query: Option<&'a str>,
    /// The matched route template (`/users/{id}`), when the framework knows it.
    pub route: Option<&'a str>,
    /// The `Host` header or the target's authority (`example.com:8080`).
    pub host: Option<&'a str>,
    /// The protocol version, as `http`'s `Version` prints it (`HTTP/1.1`) or bare (`2`).
    pub version: &'a str,
    /// The `User-Agent` header.
    pub user_agent: Option<&'a str>,
}

/// An outgoing request, as a client hook sees it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientRequest<'a> {
    /// The request method.
    pub method: &'a str,
    /// The absolute URL.
    pub url: &'a str,
}

/// On a server hook's entry: the remote parent from the propagation headers (or a new
/// trace), the span's name (`GET /users/{id}`) and request attributes.
pub fn server_enter(
    call: &mut CallContext,
    req: &ServerRequest<'_>,
    header: impl Fn(&str) -> Option<String>,
) {
    call.extract_or_root(&header);
    call.reserve_attributes(12);
    let (method, original) = method(req.method);
    call.set_name(span_name(method, req.route));
    if let Some(original) = original {
        call.set_attribute("http.request.method_original", original.to_string());
    }
    let scheme = if req.scheme.is_empty() {
        "http"
    } else {
        req.scheme
    };
    // Sized for everything exit adds, so nothing regrows on the request's path; shared
    // strings, so the span's copies of these values allocate nothing.
    let mut metric = Vec::with_capacity(7);
    metric.push(KeyValue::new("http.request.method", method));
    metric.push(KeyValue::new("url.scheme", known(scheme)));
    let version = protocol_version(req.version);
    if !version.is_empty() {
        metric.push(KeyValue::new("network.protocol.version", known(version)));
    }
    if let Some(route) = req.route {
        metric.push(KeyValue::new("http.route", shared(route)));
    }
    if call.is_recording() {
        for kv in &metric {
            call.set_key_value(kv.clone());
        }
        call.set_attribute("url.path", req.path.to_string());
        if let Some(q) = req.query.filter(|q| !q.is_empty()) {
            call.set_attribute("url.query", redact_query(q).into_owned());
        }
        if let Some((address, port)) = req.host.and_then(|h| host_port(h, scheme)) {
            call.set_attribute("server.address", shared(address));
            call.set_attribute("server.port", port);
        }
        if let Some(ua) = req.user_agent {
            call.set_attribute("user_agent.original", shared(ua));
        }
        // Asked for by a remote config (`[rules."axum"] capture_headers = [..]`).
        if let Some(names) = crate::control::capture_headers(call.rule()) {
            for name in names.iter() {
                if let Some(v) = header(name) {
                    let values = opentelemetry::Array::String(vec![v.into()]);
                    call.set_key_value(KeyValue::new(
                        format!("http.request.header.{name}"),
                        opentelemetry::Value::Array(values),
                    ));
                }
            }
        }
    }
    let histogram = crate::metrics::http_server_duration();
    call.metric = Some(CallMetric::new(true, histogram, metric));
}

/// The route, once the framework has matched it after the span started (actix-web
/// routes inside the service the span wraps): renames the span `METHOD route` and adds
/// `http.route` to it and to the duration metric.
pub fn server_route(call: &mut CallContext, route: &str) {
    let Some(metric) = &call.metric else {
        return;
    };
    let method = metric
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == "http.request.method")
        .map(|kv| kv.value.as_str().into_owned())
        .unwrap_or_default();
    call.set_name(span_name(&method, Some(route)));
    let kv = KeyValue::new("http.route", shared(route));
    call.set_key_value(kv.clone());
    push_metric(call, kv);
}

/// On a server hook's exit with the response status: 5xx marks the span ERROR.
pub fn server_exit(call: &mut CallContext, status: u16) {
    exit(call, Some(status), None)
}

/// On a client hook's entry: the span's name and attributes, and this span's context
/// written into the outgoing request's headers through `inject`.
pub fn client_enter(
    call: &mut CallContext,
    req: &ClientRequest<'_>,
    inject: impl FnMut(&str, &str),
) {
    let (method, original) = method(req.method);
    call.set_name(span_name(method, None));
    let url = Url::parse(req.url);
    let mut metric = Vec::with_capacity(7);
    metric.push(KeyValue::new("http.request.method", method));
    if let Some(url) = &url {
        metric.push(KeyValue::new("server.address", shared(url.host)));
        metric.push(KeyValue::new("server.port", url.port));
        metric.push(KeyValue::new("url.scheme", known(url.scheme)));
    }
    if call.is_recording() {
        for kv in &metric {
            call.set_key_value(kv.clone());
        }
        if let Some(original) = original {
            call.set_attribute("http.request.method_original", original.to_string());
        }
        call.set_attribute("url.full", redact_url(req.url));
    }
    let histogram = crate::metrics::http_client_duration();
    call.metric = Some(CallMetric::new(false, histogram, metric));
    call.inject(inject);
}

/// On a client hook's exit with the response: 4xx and 5xx mark the span ERROR.
pub fn client_exit(call: &mut CallContext, status: u16, version: &str) {
    let version = protocol_version(version);
    if !version.is_empty() {
        let kv = KeyValue::new("network.protocol.version", known(version));
        call.set_key_value(kv.clone());
        push_metric(call, kv);
    }
    exit(call, Some(status), None)
}

/// On a hook's exit without a response (connection refused, timeout, a service error):
/// `error_type` is a short, low-cardinality name (`timeout`, `connect`, or a type name),
/// `message` the error's text.
pub fn failed(call: &mut CallContext, error_type: &str, message: &str) {
    exit(call, None, Some((error_type, message)))
}

fn push_metric(call: &mut CallContext, kv: KeyValue) {
    if let Some(m) = &mut call.metric {
        m.attributes.push(kv);
    }
}

fn exit(call: &mut CallContext, status: Option<u16>, error: Option<(&str, &str)>) {
    let Some(mut metric) = call.metric.take() else {
        return;
    };
    let mut error_type = error.map(|(t, _)| t.to_string());
    if let Some(status) = status {
        let code = KeyValue::new("http.response.status_code", i64::from(status));
        call.set_attribute("http.response.status_code", code.value.clone());
        metric.attributes.push(code);
        // Servers fail on 5xx only: a 4xx is the client's mistake, not the server's.
        let failed = if metric.server {
            status >= 500
        } else {
            status >= 400
        };
        if failed {
            error_type = Some(status.to_string());
            call.set_error("");
        }
    }
    if let Some(t) = error_type {
        call.set_attribute("error.type", t.clone());
        metric.attributes.push(KeyValue::new("error.type", t));
    }
    if let Some((_, message)) = error {
        // The exception event, if any, is the rewritten function's own observation of
        // its `Err`; here only the status.
        call.set_error(message.to_string());
    }
    metric.record(call.elapsed());
}

/// `GET`, …, or `_OTHER` and the original for methods outside RFC 9110 and PATCH: an
/// arbitrary method string must not become a span name or a metric dimension.
fn method(m: &str) -> (&'static str, Option<&str>) {
    const KNOWN: [&str; 9] = [
        "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE",
    ];
    match KNOWN.iter().find(|k| **k == m) {
        Some(k) => (k, None),
        None => ("_OTHER", Some(m)),
    }
}

fn span_name(method: &str, route: Option<&str>) -> String {
    let method = if method == "_OTHER" { "HTTP" } else { method };
    match route {
        // Not `format!`: with it the name cost 0.97 k instructions a request, without it
        // 0.38 k (callgrind, axum benchmark).
        Some(r) => {
            let mut name = String::with_capacity(method.len() + 1 + r.len());
            name.push_str(method);
            name.push(' ');
            name.push_str(r);
            name
        }
        None => method.to_string(),
    }
}

/// A value that is one of the few strings a scheme or a protocol version usually is, as
/// a static string (no allocation, free to clone), else shared.
fn known(v: &str) -> opentelemetry::Value {
    const KNOWN: [&str; 7] = ["http", "https", "1.0", "1.1", "2", "3", "0.9"];
    match KNOWN.iter().find(|k| **k == v) {
        Some(k) => opentelemetry::Value::from(*k),
        None => shared(v),
    }
}

/// `v` as a shared string, taken from a small per-thread cache of recent values when it
/// is there: routes, hosts and user agents repeat from request to request, and a copy made
/// here would be allocated on this thread and freed on the export thread.
fn shared(v: &str) -> opentelemetry::Value {
    let arc = RECENT
        .try_with(|recent| recent.borrow_mut().get(v))
        .unwrap_or_else(|_| Arc::from(v));
    opentelemetry::Value::String(opentelemetry::StringValue::from(arc))
}

thread_local! {
    static RECENT: RefCell<Recent> = const { RefCell::new(Recent { slots: Vec::new(), next: 0 }) };
}

/// The last [`Recent::SLOTS`] distinct values, replaced in turn.
struct Recent {
    slots: Vec<Arc<str>>,
    next: usize,
}

impl Recent {
    const SLOTS: usize = 16;
    /// Longer values are rare enough not to evict the common ones.
    const LONGEST: usize = 256;

    fn get(&mut self, v: &str) -> Arc<str> {
        if let Some(hit) = self.slots.iter().find(|s| &***s == v) {
            return hit.clone();
        }
        let arc = Arc::<str>::from(v);
        if v.len() <= Self::LONGEST {
            if self.slots.len() < Self::SLOTS {
                self.slots.push(arc.clone());
            } else {
                self.slots[self.next] = arc.clone();
                self.next = (self.next + 1) % Self::SLOTS;
            }
        }
        arc
    }
}

/// `1.1` from `HTTP/1.1`, `2` from `HTTP/2.0`.
fn protocol_version(v: &str) -> &str {
    let v = v.strip_prefix("HTTP/").unwrap_or(v);
    match v {
        "2.0" => "2",
        "3.0" => "3",
        _ => v,
    }
}

/// `(address, port)` of an authority with an explicit port, or port 80 (for the RPC
/// conventions, whose authority comes without a scheme).
pub(crate) fn host_port_of(authority: &str) -> Option<(&str, i64)> {
    host_port(authority, "http")
}

/// `(address, port)` of a `Host` header value, the port defaulting by scheme.
fn host_port<'a>(host: &'a str, scheme: &str) -> Option<(&'a str, i64)> {
    let default = if scheme == "https" { 443 } else { 80 };
    if let Some(rest) = host.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None => default,
        };
        return Some((addr, port));
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h, p.parse().ok()?)),
        Some(_) => Some((host, default)),
        None if host.is_empty() => None,
        None => Some((host, default)),
    }
}

/// The pieces of an absolute URL that the attributes need.
struct Url<'a> {
    scheme: &'a str,
    host: &'a str,
    port: i64,
}

impl<'a> Url<'a> {
    fn parse(url: &'a str) -> Option<Url<'a>> {
        let (scheme, rest) = url.split_once("://")?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = host_port(hostport, scheme)?;
        Some(Url { scheme, host, port })
    }
}

/// Query parameters whose values are secrets by construction (signed URLs).
const SECRET_PARAMS: [&str; 4] = ["AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature"];

/// `url.full` without credentials: `user:pass@` becomes `REDACTED:REDACTED@`, and the
/// values of signed-URL query parameters become `REDACTED`.
pub(crate) fn redact_url(url: &str) -> String {
    let (before_fragment, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let (before_query, query) = match before_fragment.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (before_fragment, None),
    };
    let mut out = String::with_capacity(url.len());
    match before_query.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            out.push_str(scheme);
            out.push_str("://");
            match authority.rsplit_once('@') {
                Some((_, host)) => {
                    out.push_str("REDACTED:REDACTED@");
                    out.push_str(host);
                }
                None => out.push_str(authority),
            }
            out.push_str(path);
        }
        None => out.push_str(before_query),
    }
    if let Some(q) = query {
        out.push('?');
        out.push_str(&redact_query(q));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

fn redact_query(q: &str) -> Cow<'_, str> {
    let secret = |pair: &str| {
        let name = pair.split('=').next().unwrap_or("");
        SECRET_PARAMS.contains(&name)
    };
    if !q.split('&').any(secret) {
        return Cow::Borrowed(q);
    }
    let parts: Vec<String> = q
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if secret(pair) => format!("{name}=REDACTED"),
            _ => pair.to_string(),
        })
        .collect();
    Cow::Owned(parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_standard_set_are_other() {
        assert_eq!(method("GET"), ("GET", None));
        assert_eq!(method("PATCH"), ("PATCH", None));
        assert_eq!(method("get"), ("_OTHER", Some("get")));
        assert_eq!(method("PURGE"), ("_OTHER", Some("PURGE")));
        assert_eq!(span_name("_OTHER", Some("/x")), "HTTP /x");
        assert_eq!(span_name("GET", Some("/users/{id}")), "GET /users/{id}");
        assert_eq!(span_name("POST", None), "POST");
    }

    #[test]
    fn protocol_versions_are_bare() {
        assert_eq!(protocol_version("HTTP/1.1"), "1.1");
        assert_eq!(protocol_version("HTTP/1.0"), "1.0");
        assert_eq!(protocol_version("HTTP/2.0"), "2");
        assert_eq!(protocol_version("HTTP/3.0"), "3");
        assert_eq!(protocol_version("2"), "2");
    }

    #[test]
    fn hosts_and_ports() {
        assert_eq!(host_port("example.com", "http"), Some(("example.com", 80)));
        assert_eq!(
            host_port("example.com", "https"),
            Some(("example.com", 443))
        );
        assert_eq!(
            host_port("127.0.0.1:8080", "http"),
            Some(("127.0.0.1", 8080))
        );
        assert_eq!(host_port("[::1]:3000", "http"), Some(("::1", 3000)));
        assert_eq!(host_port("[::1]", "https"), Some(("::1", 443)));
        assert_eq!(host_port("", "http"), None);
        assert_eq!(host_port("h:notaport", "http"), None);
        let u = Url::parse("https://u:p@api.example.com:8443/v1?x=1").unwrap();
        assert_eq!(
            (u.scheme, u.host, u.port),
            ("https", "api.example.com", 8443)
        );
        let u = Url::parse("http://localhost/").unwrap();
        assert_eq!((u.host, u.port), ("localhost", 80));
        assert!(Url::parse("not a url").is_none());
    }

    #[test]
    fn credentials_never_reach_url_full() {
        assert_eq!(
            redact_url("https://alice:s3cret@example.com/a?b=1#f"),
            "https://REDACTED:REDACTED@example.com/a?b=1#f"
        );
        assert_eq!(
            redact_url("http://token@example.com"),
            "http://REDACTED:REDACTED@example.com"
        );
        assert_eq!(
            redact_url("https://s3.example.com/o?AWSAccessKeyId=AK&Signature=xyz&Expires=1&sig=q"),
            "https://s3.example.com/o?AWSAccessKeyId=REDACTED&Signature=REDACTED&Expires=1&sig=REDACTED"
        );
        // An `@` in the path or query is not userinfo.
        assert_eq!(
            redact_url("http://example.com/mail/a@b.c?to=x@y"),
            "http://example.com/mail/a@b.c?to=x@y"
        );
        assert_eq!(redact_url("http://example.com/p"), "http://example.com/p");
    }

    #[test]
    fn recent_values_are_shared_and_the_cache_stays_bounded() {
        let mut recent = Recent {
            slots: Vec::new(),
            next: 0,
        };
        let a = recent.get("/users/{id}");
        assert!(Arc::ptr_eq(&a, &recent.get("/users/{id}")));
        for i in 0..Recent::SLOTS {
            recent.get(&format!("/other/{i}"));
        }
        assert_eq!(recent.slots.len(), Recent::SLOTS);
        // Evicted by the sixteen after it: a new copy, equal.
        let b = recent.get("/users/{id}");
        assert!(!Arc::ptr_eq(&a, &b) && a == b);
        let long = "x".repeat(Recent::LONGEST + 1);
        let l1 = recent.get(&long);
        assert!(!Arc::ptr_eq(&l1, &recent.get(&long)));
        assert_eq!(recent.slots.len(), Recent::SLOTS);
    }
}
