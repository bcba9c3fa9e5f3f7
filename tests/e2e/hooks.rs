//! The hooks example: every rule action (hooks with typed arguments and per-call data,
//! span attributes from arguments, wrap_call, add_file, a failing hook) built with the
//! real tool and read back from the OTLP receiver.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::receiver::Receiver;
use crate::{
    build_example, export_to, fresh_copy, lock, named, parent_of, run, target_dir, text, BIN,
};

fn example() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| fresh_copy("hooks")).clone()
}

fn build(instrumented: bool) -> PathBuf {
    build_example(&example(), "hookdemo", instrumented, &[])
}

#[test]
fn hooks_attributes_wrapped_calls_and_failing_hooks() {
    let _l = lock();
    let plain = build(false);
    let inst = build(true);
    let rx = Receiver::start();
    let p = run(&mut Command::new(&plain));
    let i = run(export_to(&mut Command::new(&inst), &rx.endpoint));
    assert!(i.status.success(), "{}", text(&i.stderr));
    assert_eq!(text(&p.stdout), text(&i.stdout), "stdout differs");
    // The failing hook: reported once on stderr, never seen by the app.
    let stderr = text(&i.stderr);
    assert_eq!(
        stderr
            .matches("a hook of rule `demo-fragile` panicked")
            .count(),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains("panicked at"), "{stderr}");

    let spans = rx.wait_for(Duration::from_secs(10), |s| {
        s.iter().any(|x| x.name == "main")
    });
    // Client hooks: mutable access injected the headers the server hook extracted, so the
    // server span is the client span's child although only the header map crossed.
    let clients = named(&spans, "client send");
    assert_eq!(clients.len(), 2);
    for c in &clients {
        assert_eq!(c.kind, 3, "CLIENT");
        let server = spans
            .iter()
            .find(|s| s.parent_span_id == c.span_id)
            .expect("server span under the client span");
        assert_eq!(server.kind, 2, "SERVER");
        assert_eq!(server.trace_id, c.trace_id);
    }
    // Names and attributes set by hooks before the start; on_exit sees the return value.
    let ok = named(&spans, "GET /orders/{id}");
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].attr("http.route"), Some("/orders/{id}"));
    assert_eq!(ok[0].attr("http.response.status_code"), Some("200"));
    // add_file: the hook calls a method the added module gave the crate's own type.
    assert_eq!(ok[0].attr("response.summary"), Some("200 (7 bytes)"));
    let bad = named(&spans, "GET unmatched");
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].status_code, 2);
    // Per-call data: on_enter kept the route, on_exit used it.
    assert_eq!(bad[0].status_message, "unmatched failed");
    let failed_client = parent_of(&spans, bad[0]).unwrap();
    assert_eq!(failed_client.status_message, "/nowhere answered 500");
    assert_eq!(failed_client.attr("url.path"), Some("/nowhere"));

    // Span attributes from arguments, typed.
    let co = named(&spans, "checkout");
    assert_eq!(co[0].attr("user.id"), Some("42"));
    assert_eq!(co[0].attr("user.name"), Some("ada"));
    assert_eq!(co[0].attr("amount"), Some("1250"));

    // The failing hook switched its site off: three calls, the third makes no span.
    let fragile = named(&spans, "fragile");
    assert_eq!(fragile.len(), 2, "{fragile:?}");
    assert_eq!(fragile[0].attr("n"), Some("1"));

    // The server hook recorded the semantic-convention duration histogram, exported at exit.
    let points = rx.wait_for_points(Duration::from_secs(10), |p| {
        p.iter().any(|x| x.metric == "http.server.request.duration")
    });
    let ok_route: Vec<_> = points
        .iter()
        .filter(|p| {
            p.metric == "http.server.request.duration"
                && p.attributes
                    .contains(&("http.route".into(), "/orders/{id}".into()))
        })
        .collect();
    assert_eq!(ok_route.len(), 1, "{points:?}");
    assert_eq!(ok_route[0].count, 1);
    assert_eq!(ok_route[0].unit, "s");
    assert!(ok_route[0].sum > 0.0 && ok_route[0].sum < 1.0);

    // wrap_call: the closure given to std::thread::spawn runs in the caller's context.
    let crunch = named(&spans, "crunch");
    assert_eq!(
        parent_of(&spans, crunch[0]).map(|s| s.name.as_str()),
        Some("on_thread")
    );
}

#[test]
fn explain_lists_wrapped_call_sites_and_added_files() {
    let _l = lock();
    let out = run(Command::new(BIN)
        .args(["instrument", "explain"])
        .current_dir(example())
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("RUSTC_WRAPPER"));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("src/lib.rs:72 on_thread (call of std::thread::spawn)"),
        "{all}"
    );
    assert!(all.contains("module __instgo_add_demo_server"), "{all}");
}
