//! Async runtimes, built with the real tool and read back from the OTLP receiver:
//! `#[tokio::main]` (multi-thread and current-thread) and `#[actix_web::main]` start the
//! runtime and flush it at exit; `.await`s and a `tokio::spawn`ed task (the catalog's
//! spawn rule) nest; `#[tokio::test]`s under `cargo instrument test`; and apps running
//! their own OpenTelemetry (the API of an older version; tracing-opentelemetry) make one
//! tree with the injected spans.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use crate::receiver::{Receiver, Span};
use crate::{export_to, fresh_copy, lock, named, parent_of, run, target_dir, text, BIN};

fn example() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| fresh_copy("runtimes")).clone()
}

fn instrument(args: &[&str], endpoint: Option<&str>) -> Output {
    let mut c = Command::new(BIN);
    c.arg("instrument")
        .args(args)
        .current_dir(example())
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("RUSTC_WRAPPER");
    if let Some(e) = endpoint {
        export_to(&mut c, e);
    }
    run(&mut c)
}

fn built() -> PathBuf {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let out = instrument(&["build", "--strict"], None);
        assert!(out.status.success(), "build failed: {}", text(&out.stderr));
    });
    target_dir().join("instrument/debug")
}

fn run_bin(name: &str, endpoint: &str) -> Output {
    let out = run(export_to(&mut Command::new(built().join(name)), endpoint));
    assert!(out.status.success(), "{name}: {}", text(&out.stderr));
    out
}

/// `handle` under `parent`, with both `step`s (the awaited one and the spawned one) under
/// it, all in one trace.
fn assert_handle_nests(spans: &[Span], parent: &Span) {
    let handle = spans
        .iter()
        .find(|s| s.name == "handle" && s.parent_span_id == parent.span_id)
        .unwrap_or_else(|| panic!("no handle under {}: {spans:#?}", parent.name));
    let steps: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name == "step" && s.parent_span_id == handle.span_id)
        .collect();
    assert_eq!(steps.len(), 2, "awaited and spawned step under handle");
    for s in steps.iter().copied().chain([handle]) {
        assert_eq!(s.trace_id, parent.trace_id);
    }
}

#[test]
fn async_mains_start_the_runtime_and_nest_awaits_and_spawned_tasks() {
    let _l = lock();
    for (bin, stdout) in [
        ("tokio-multi", "tokio multi-thread: 3\n"),
        ("tokio-current", "tokio current-thread: 12\n"),
        ("actix", "actix: 22\n"),
    ] {
        let rx = Receiver::start();
        let out = run_bin(bin, &rx.endpoint);
        assert_eq!(text(&out.stdout), stdout, "{bin}");
        // Everything arrives although main returned right away: the exit flush.
        let spans = rx.wait_for(Duration::from_secs(10), |s| {
            s.iter().any(|x| x.name == "main") && s.iter().filter(|x| x.name == "step").count() == 2
        });
        let main = named(&spans, "main");
        assert_eq!(main.len(), 1, "{bin}: {spans:#?}");
        assert!(main[0].parent_span_id.is_empty(), "{bin}: main is a root");
        assert_eq!(main[0].resource_attr("service.name"), Some(bin));
        assert_handle_nests(&spans, main[0]);
    }
}

#[test]
fn tokio_tests_are_traced_under_cargo_instrument_test() {
    let _l = lock();
    let rx = Receiver::start();
    let out = instrument(&["test", "-p", "rt-work"], Some(&rx.endpoint));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("2 passed"),
        "{}",
        text(&out.stdout)
    );
    let spans = rx.wait_for(Duration::from_secs(10), |s| {
        s.iter().filter(|x| x.name == "step").count() == 4
    });
    for t in [
        "tests::handle_adds_two",
        "tests::handle_adds_two_on_workers",
    ] {
        let test = named(&spans, t);
        assert_eq!(test.len(), 1, "{t}: {spans:#?}");
        assert_handle_nests(&spans, test[0]);
    }
}

/// The spans an app exported through its own SDK, from its `span NAME TRACE SPAN PARENT`
/// lines, marked `[app]`.
fn app_spans(stdout: &str) -> Vec<Span> {
    let hex = |h: &str| -> Vec<u8> {
        let bytes: Vec<u8> = (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect();
        if bytes.iter().all(|b| *b == 0) {
            Vec::new()
        } else {
            bytes
        }
    };
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("span "))
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            Span {
                name: format!("{} [app]", f[0]),
                trace_id: hex(f[1]),
                span_id: hex(f[2]),
                parent_span_id: hex(f[3]),
                kind: 0,
                attributes: Vec::new(),
                events: Vec::new(),
                status_code: 0,
                status_message: String::new(),
                resource: Vec::new(),
                start_unix_nano: 0,
            }
        })
        .collect()
}

/// The tree under `root`, one name per line, children sorted by name; every span of it in
/// the root's trace.
fn tree(spans: &[Span], root: &Span) -> String {
    fn walk(spans: &[Span], s: &Span, depth: usize, out: &mut String) {
        assert_eq!(s.trace_id, spans[0].trace_id, "{} in another trace", s.name);
        out.push_str(&format!("{}{}\n", "  ".repeat(depth), s.name));
        let mut kids: Vec<&Span> = spans
            .iter()
            .filter(|k| k.parent_span_id == s.span_id)
            .collect();
        kids.sort_by(|a, b| a.name.cmp(&b.name));
        for k in kids {
            walk(spans, k, depth + 1, out);
        }
    }
    let mut ordered = vec![root.clone()];
    ordered.extend(spans.iter().filter(|s| s.span_id != root.span_id).cloned());
    let mut out = String::new();
    walk(&ordered, root, 0, &mut out);
    out
}

#[test]
fn an_app_with_its_own_opentelemetry_api_joins_the_tree() {
    let _l = lock();
    let rx = Receiver::start();
    let out = run_bin("own-otel", &rx.endpoint);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("own-otel: 32\n"), "{stdout}");
    let mut spans = rx.wait_for(Duration::from_secs(10), |s| {
        s.iter().filter(|x| x.name == "step").count() == 2 && s.iter().any(|x| x.name == "main")
    });
    // Ours (0.33) went to the receiver, the app's (0.30) to its own exporter only.
    assert!(named(&spans, "app-own-work").is_empty());
    spans.extend(app_spans(&stdout));
    let main = named(&spans, "main")[0].clone();
    assert!(parent_of(&spans, &main).is_none());
    assert_eq!(
        tree(&spans, &main),
        "main\n  app-own-work [app]\n    handle\n      step\n      step\n"
    );
}

#[test]
fn an_app_with_tracing_opentelemetry_joins_the_tree() {
    let _l = lock();
    let rx = Receiver::start();
    let out = run_bin("rt-mixed", &rx.endpoint);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("mixed: 72\n"), "{stdout}");
    let mut spans = rx.wait_for(Duration::from_secs(10), |s| {
        s.iter().filter(|x| x.name == "step").count() == 2
            && s.iter().filter(|x| x.name == "crunch").count() == 2
            && s.iter().any(|x| x.name == "main")
    });
    spans.extend(app_spans(&stdout));
    let main = named(&spans, "main")[0].clone();
    // tracing spans under the injected `main`; injected spans under the tracing span
    // entered when they started (`serve`'s is made when its future first runs, inside
    // `request`).
    assert_eq!(
        tree(&spans, &main),
        "main\n  tracing-work [app]\n    crunch\n    inner [app]\n      crunch\n    request [app]\n      serve [app]\n        handle\n          step\n          step\n"
    );
}

fn checksum(n: u64) -> u64 {
    (0..n).fold(0u64, |acc, i| acc.wrapping_add(i.wrapping_mul(31) ^ 7))
}

fn peak_kib(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("flood: VmHWM"))
        .unwrap_or_else(|| panic!("no VmHWM line: {stderr}"));
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

fn flood(n: u64, endpoint: &str) -> (Output, Duration) {
    let t = std::time::Instant::now();
    let out = run(
        export_to(&mut Command::new(built().join("flood")), endpoint)
            .arg(n.to_string())
            .env("OTEL_EXPORTER_OTLP_TIMEOUT", "1000")
            .env("OTEL_BSP_MAX_QUEUE_SIZE", "1000"),
    );
    let took = t.elapsed();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("flood: {n} calls, checksum {}\n", checksum(n))
    );
    (out, took)
}

#[test]
fn a_collector_that_never_answers_costs_neither_the_work_nor_memory_nor_the_exit() {
    let _l = lock();
    // Accepts every connection and never reads or answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming().flatten() {
            held.push(c);
        }
    });
    let (small, _) = flood(20_000, &endpoint);
    let (big, took) = flood(400_000, &endpoint);
    // 400 000 spans held would be well over 100 MB; the queue holds 1 000.
    let (a, b) = (peak_kib(&text(&small.stderr)), peak_kib(&text(&big.stderr)));
    assert!(
        b < a + 16 * 1024,
        "peak {a} KiB for 20k calls, {b} KiB for 400k"
    );
    // The exit flush gives up after the OTLP timeout (1 s) instead of hanging on the
    // server; the bound here is loose because the machine is shared.
    assert!(took < Duration::from_secs(30), "took {took:?}");
    let stderr = text(&big.stderr);
    assert_eq!(
        stderr.matches("are waiting for export").count(),
        1,
        "one warning about drops: {stderr}"
    );
}

#[test]
fn the_span_queue_reports_what_it_admitted_and_dropped() {
    let _l = lock();
    let rx = Receiver::start();
    let n = 30_000;
    let (out, _) = flood(n, &rx.endpoint);
    let processed = |p: &[crate::receiver::Point], dropped: bool| {
        p.iter()
            .filter(|x| {
                x.metric == "otel.sdk.processor.span.processed"
                    && x.attributes.iter().any(|(k, _)| k == "error.type") == dropped
            })
            .map(|x| x.sum as u64)
            .max()
    };
    // Every span that ended (n ticks and main) was either admitted or counted as dropped.
    let points = rx.wait_for_points(Duration::from_secs(10), |p| {
        processed(p, false).unwrap_or(0) + processed(p, true).unwrap_or(0) == n + 1
    });
    let (admitted, dropped) = (
        processed(&points, false).unwrap(),
        processed(&points, true).unwrap(),
    );
    assert_eq!(admitted + dropped, n + 1, "{points:#?}");
    // Admitted spans all arrived.
    let spans = rx.wait_for(Duration::from_secs(10), |s| s.len() as u64 == admitted);
    assert_eq!(spans.len() as u64, admitted);
    let warned = text(&out.stderr).contains("are waiting for export");
    assert_eq!(warned, dropped > 0, "{}", text(&out.stderr));
}
