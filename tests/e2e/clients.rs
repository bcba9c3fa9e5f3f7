//! HTTP clients (examples/clients: reqwest's blocking client, ureq 2, ureq 3, hyper-util's
//! legacy client) calling an axum server, built with no rules file: one CLIENT span per
//! call with the server's span under it, status and transport errors, and no second span
//! from the async client reqwest's blocking one drives on its own thread, nor from the
//! hyper-util client under it. And hyper's server used directly (`service_fn`).
//! tests/matrix.sh runs them at the lowest ureq 2 and 3 (`INSTGO_CLIENTS_PRECISE`).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::receiver::{Receiver, Span};
use crate::{build_example, export_to, lock, parent_of, pinned_copy, run, text};

fn example() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| pinned_copy("clients", "INSTGO_CLIENTS_PRECISE"))
        .clone()
}

const CLIENT: i32 = 3;
const SERVER: i32 = 2;
const ERROR: i32 = 2;

fn clients_of<'a>(spans: &'a [Span], path: &str) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|s| s.kind == CLIENT && s.attr("url.full").is_some_and(|u| u.ends_with(path)))
        .collect()
}

#[test]
fn blocking_clients_make_one_client_span_per_call_with_the_server_under_it() {
    let _l = lock();
    let plain = build_example(&example(), "clients", false, &[]);
    let inst = build_example(&example(), "clients", true, &[]);
    let rx = Receiver::start();
    let p = run(&mut Command::new(&plain));
    let i = run(export_to(&mut Command::new(&inst), &rx.endpoint));
    assert!(p.status.success(), "{}", text(&p.stderr));
    assert!(i.status.success(), "{}", text(&i.stderr));
    assert_eq!(text(&p.stdout), text(&i.stdout), "stdout differs");
    let spans = rx.wait_for(Duration::from_secs(10), |s| {
        s.iter().filter(|x| x.kind == SERVER).count() >= 10
            && s.iter().filter(|x| x.kind == CLIENT).count() >= 14
    });
    // Three calls per client; nothing from reqwest's inner async client or the hyper-util
    // client under that.
    let clients: Vec<&Span> = spans.iter().filter(|s| s.kind == CLIENT).collect();
    assert_eq!(clients.len(), 14, "{clients:#?}");

    // One successful call each (reqwest /items/1, ureq 2 /items/2, ureq 3 /items/3,
    // hyper-util /items/4).
    for n in 1..=4 {
        let path = format!("/items/{n}");
        let c = clients_of(&spans, &path);
        assert_eq!(c.len(), 1, "{path}: {spans:#?}");
        let c = c[0];
        assert_eq!(c.name, "GET");
        assert!(c.parent_span_id.is_empty(), "{path}: a root");
        assert_eq!(c.attr("http.request.method"), Some("GET"));
        assert_eq!(c.attr("http.response.status_code"), Some("200"));
        assert_eq!(c.attr("network.protocol.version"), Some("1.1"), "{path}");
        assert_eq!(c.attr("server.address"), Some("127.0.0.1"));
        assert_eq!(c.status_code, 0);
        let server: Vec<&Span> = spans
            .iter()
            .filter(|s| s.kind == SERVER && s.attr("url.path") == Some(path.as_str()))
            .collect();
        assert_eq!(server.len(), 1, "{path}");
        assert_eq!(server[0].name, "GET /items/{id}");
        assert_eq!(
            parent_of(&spans, server[0]).map(|s| &s.span_id),
            Some(&c.span_id)
        );
        assert_eq!(server[0].trace_id, c.trace_id);
    }

    // A 500 fails every client's span (ureq returns it as an error).
    let fails = clients_of(&spans, "/fail");
    assert_eq!(fails.len(), 4, "{fails:#?}");
    for c in fails {
        assert_eq!(c.status_code, ERROR, "{c:#?}");
        assert_eq!(c.attr("http.response.status_code"), Some("500"), "{c:#?}");
        assert_eq!(c.attr("error.type"), Some("500"), "{c:#?}");
        let under: Vec<&Span> = spans
            .iter()
            .filter(|s| s.parent_span_id == c.span_id)
            .collect();
        assert_eq!(under.len(), 1, "the server under {c:#?}");
        assert_eq!(under[0].name, "GET /fail");
    }

    // Connection refused: a transport error, `error.type` = connect.
    let refused = clients_of(&spans, "127.0.0.1:9/");
    assert_eq!(refused.len(), 4, "{refused:#?}");
    for c in refused {
        assert_eq!(c.status_code, ERROR, "{c:#?}");
        assert_eq!(c.attr("error.type"), Some("connect"), "{c:#?}");
        assert_eq!(c.attr("http.response.status_code"), None);
    }

    // hyper's server (service_fn): a SERVER span `GET` under ureq 3's client span; a 503
    // fails both.
    for (path, code) in [("/up", "200"), ("/down", "503")] {
        let c = clients_of(&spans, path);
        assert_eq!(c.len(), 1, "{path}: {spans:#?}");
        let under: Vec<&Span> = spans
            .iter()
            .filter(|s| s.parent_span_id == c[0].span_id)
            .collect();
        assert_eq!(under.len(), 1, "{path}: the hyper server span: {spans:#?}");
        let server = under[0];
        assert_eq!((server.name.as_str(), server.kind), ("GET", SERVER));
        assert_eq!(server.attr("url.path"), Some(path));
        assert_eq!(server.attr("http.route"), None);
        assert_eq!(server.attr("http.response.status_code"), Some(code));
        assert_eq!(server.trace_id, c[0].trace_id);
        let failed = if code == "503" { ERROR } else { 0 };
        assert_eq!(
            (server.status_code, c[0].status_code),
            (failed, failed),
            "{path}"
        );
    }
}
