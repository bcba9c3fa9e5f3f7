//! The built-in HTTP rules on real frameworks: `examples/http` (an axum service that
//! calls itself with reqwest) built with `cargo instrument build` and no rules file, its
//! requests read back as spans and metrics from the OTLP receiver.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::receiver::{Point, Receiver, Span};
use crate::{
    build_example, export_to, feature_args, lock, named, parent_of, pinned_copy, run, text,
};

/// The version matrix: `INSTGO_HTTP_FEATURES` picks the axum and reqwest lines (features
/// of examples/http, e.g. `axum07 reqwest011`), `INSTGO_HTTP_PRECISE` pins versions in
/// them (`axum@0.7.9=0.7.0`: `cargo update -p axum@0.7.9 --precise 0.7.0`).
/// `tests/matrix.sh` runs every line at its lowest and latest version.
fn features() -> Vec<String> {
    std::env::var("INSTGO_HTTP_FEATURES")
        .map(|f| f.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

fn example() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| pinned_copy("http", "INSTGO_HTTP_PRECISE"))
        .clone()
}

/// A route with one parameter as the axum in the build spells it.
fn route(prefix: &str, param: &str) -> String {
    if features().iter().any(|f| f == "axum07") {
        format!("{prefix}:{param}")
    } else {
        format!("{prefix}{{{param}}}")
    }
}

pub(crate) fn build(instrumented: bool) -> PathBuf {
    build_example(
        &example(),
        "httpdemo",
        instrumented,
        &feature_args("INSTGO_HTTP_FEATURES"),
    )
}

fn one<'a>(spans: Vec<&'a Span>, what: &str) -> &'a Span {
    assert_eq!(spans.len(), 1, "{what}: {spans:#?}");
    spans[0]
}

fn in_trace<'a>(spans: &'a [Span], of: &Span, name: &str) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|s| s.trace_id == of.trace_id && s.name == name)
        .collect()
}

fn point<'a>(points: &'a [Point], metric: &str, attrs: &[(&str, &str)]) -> Option<&'a Point> {
    points.iter().rev().find(|p| {
        p.metric == metric
            && attrs
                .iter()
                .all(|(k, v)| p.attributes.iter().any(|(pk, pv)| pk == k && pv == v))
    })
}

#[test]
fn axum_and_reqwest_make_one_trace_per_request() {
    let _l = lock();
    let plain = build(false);
    let inst = build(true);
    let rx = Receiver::start();
    let p = run(&mut Command::new(&plain));
    let i =
        run(export_to(&mut Command::new(&inst), &rx.endpoint)
            .env("OTEL_METRIC_EXPORT_INTERVAL", "200"));
    assert!(p.status.success(), "{}", text(&p.stderr));
    assert!(i.status.success(), "{}", text(&i.stderr));
    assert_eq!(text(&p.stdout), text(&i.stdout), "stdout differs");
    assert!(text(&i.stdout).contains("chain: 200 OK chain got: hello 7"));

    let spans = rx.wait_for(Duration::from_secs(10), |s| {
        s.iter().filter(|x| x.kind == 3).count() >= 6
    });

    // client → server → client → server, one trace, each the parent of the next.
    let chain_route = route("/chain/", "id");
    let hello_route = route("/hello/", "name");
    let chain = one(
        named(&spans, &format!("GET {chain_route}")),
        "chain server span",
    );
    assert_eq!(chain.kind, 2, "SERVER");
    let root = parent_of(&spans, chain).expect("the chain request's client span");
    assert_eq!((root.name.as_str(), root.kind), ("GET", 3));
    assert!(
        root.parent_span_id.is_empty(),
        "the first client span is the root"
    );
    let inner_client = spans
        .iter()
        .find(|s| s.parent_span_id == chain.span_id && s.kind == 3)
        .expect("the handler's client span under the server span");
    let hello = spans
        .iter()
        .find(|s| s.parent_span_id == inner_client.span_id)
        .expect("the called server span under the handler's client span");
    assert_eq!(hello.name, format!("GET {hello_route}"));
    for s in [root, inner_client, hello] {
        assert_eq!(s.trace_id, chain.trace_id);
    }
    assert_eq!(in_trace(&spans, chain, "GET").len(), 2);

    // Server attributes, per the HTTP semantic conventions.
    assert_eq!(chain.attr("http.request.method"), Some("GET"));
    assert_eq!(chain.attr("http.route"), Some(&*chain_route));
    assert_eq!(chain.attr("url.path"), Some("/chain/7"));
    assert_eq!(chain.attr("url.scheme"), Some("http"));
    assert_eq!(chain.attr("url.query"), Some("sig=REDACTED&page=2"));
    assert_eq!(chain.attr("http.response.status_code"), Some("200"));
    assert_eq!(chain.attr("network.protocol.version"), Some("1.1"));
    assert_eq!(chain.attr("user_agent.original"), Some("httpdemo/1"));
    assert_eq!(chain.attr("server.address"), Some("127.0.0.1"));
    assert!(chain.attr("server.port").is_some());
    assert_eq!(chain.status_code, 0, "a 200 leaves the status unset");
    // Client attributes.
    let port = chain.attr("server.port").unwrap();
    assert_eq!(
        inner_client.attr("url.full"),
        Some(&*format!("http://127.0.0.1:{port}/hello/7"))
    );
    assert_eq!(inner_client.attr("server.port"), Some(port));
    assert_eq!(inner_client.attr("http.response.status_code"), Some("200"));
    assert_eq!(inner_client.attr("network.protocol.version"), Some("1.1"));
    assert_eq!(
        root.attr("url.full")
            .map(|u| u.ends_with("/chain/7?sig=REDACTED&page=2")),
        Some(true),
        "{:?}",
        root.attr("url.full")
    );

    // Credentials never reach the telemetry, whether in the URL or in headers.
    for s in &spans {
        for (k, v) in s.attributes.iter().chain(&s.resource) {
            for secret in ["s3cret", "t0ken", "c00kie", "alice", "abc"] {
                assert!(!v.contains(secret), "{k}={v} on span {}", s.name);
            }
        }
    }

    // A 5xx fails the server span and the client span; the error type is the status.
    let fail = one(named(&spans, "POST /fail"), "fail server span");
    assert_eq!(fail.status_code, 2, "ERROR");
    assert_eq!(fail.attr("error.type"), Some("500"));
    let fail_client = parent_of(&spans, fail).unwrap();
    assert_eq!(
        (fail_client.name.as_str(), fail_client.status_code),
        ("POST", 2)
    );

    // No route matched: the span is named by the method alone; a 404 is not the
    // server's failure, but is the client's.
    let missing = spans
        .iter()
        .find(|s| s.kind == 2 && s.attr("url.path") == Some("/missing"))
        .expect("the 404's server span");
    assert_eq!(missing.name, "GET");
    assert_eq!(missing.attr("http.route"), None);
    assert_eq!(missing.attr("http.response.status_code"), Some("404"));
    assert_eq!(missing.status_code, 0);
    let missing_client = parent_of(&spans, missing).expect("made by Client::execute");
    assert_eq!(missing_client.attr("error.type"), Some("404"));
    assert_eq!(missing_client.status_code, 2);

    // A method outside the standard set is `_OTHER`, never a span name of its own.
    let purge = one(
        named(&spans, &format!("HTTP {hello_route}")),
        "PURGE server span",
    );
    assert_eq!(purge.attr("http.request.method"), Some("_OTHER"));
    assert_eq!(purge.attr("http.request.method_original"), Some("PURGE"));
    assert_eq!(purge.attr("http.response.status_code"), Some("405"));

    // A transport error: the client span fails with the error's kind and text.
    let refused = spans
        .iter()
        .find(|s| s.kind == 3 && s.attr("server.port") == Some("9"))
        .expect("the unreachable request's span");
    assert_eq!(refused.status_code, 2);
    assert_eq!(refused.attr("error.type"), Some("connect"));
    assert!(
        refused.events.iter().any(|e| e == "exception"),
        "{refused:#?}"
    );

    // The duration histograms, with the conventions' attributes.
    let points = rx.wait_for_points(Duration::from_secs(10), |p| {
        point(
            p,
            "http.server.request.duration",
            &[("http.route", &chain_route)],
        )
        .is_some()
            && point(
                p,
                "http.client.request.duration",
                &[("error.type", "connect")],
            )
            .is_some()
    });
    let server = point(
        &points,
        "http.server.request.duration",
        &[
            ("http.route", &chain_route),
            ("http.request.method", "GET"),
            ("http.response.status_code", "200"),
            ("url.scheme", "http"),
            ("network.protocol.version", "1.1"),
        ],
    )
    .expect("server duration point");
    assert_eq!((server.unit.as_str(), server.count), ("s", 1));
    assert!(point(
        &points,
        "http.server.request.duration",
        &[("http.route", "/fail"), ("error.type", "500")]
    )
    .is_some());
    let client = point(
        &points,
        "http.client.request.duration",
        &[
            ("http.request.method", "GET"),
            ("server.address", "127.0.0.1"),
            ("server.port", port),
            ("http.response.status_code", "200"),
        ],
    )
    .expect("client duration point");
    assert!(client.count >= 2, "{client:?}");
}

#[test]
fn http_rules_switch_off_at_run_time() {
    let _l = lock();
    let inst = build(true);
    let rx = Receiver::start();
    let out =
        run(export_to(&mut Command::new(&inst), &rx.endpoint).env("INSTGO_DISABLED_RULES", "axum"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let spans = rx.wait_for(Duration::from_secs(10), |s| {
        s.iter().filter(|x| x.kind == 3).count() >= 6
    });
    assert!(spans.iter().all(|s| s.kind != 2), "axum is off: {spans:#?}");
    // With the server spans gone nothing continues the caller's trace: each client call,
    // the handler's too, starts its own.
    assert_eq!(spans.iter().filter(|s| s.kind == 3).count(), 6);
    assert!(
        spans.iter().all(|s| s.parent_span_id.is_empty()),
        "{spans:#?}"
    );

    // reqwest 0.12+ sends through hyper-util's client, whose rule stays quiet only inside
    // a reqwest span: with reqwest's rules off it would make the client spans instead.
    let rx = Receiver::start();
    let out = run(export_to(&mut Command::new(&inst), &rx.endpoint)
        .env("INSTGO_DISABLED_RULES", "reqwest*,hyper-util*"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let spans = rx.wait_for(Duration::from_secs(10), |s| {
        s.iter().filter(|x| x.kind == 2).count() >= 5
    });
    assert!(
        spans.iter().all(|s| s.kind != 3),
        "reqwest is off: {spans:#?}"
    );
    // No client span, no propagation: every server span starts its own trace.
    assert!(
        spans.iter().all(|s| s.parent_span_id.is_empty()),
        "{spans:#?}"
    );
}
