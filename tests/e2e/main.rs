//! End-to-end tests: build the shapes example with the real `cargo-instrument`, run it,
//! and read its spans back from a real OTLP/HTTP receiver.

mod carriers;
mod clients;
mod collector;
mod driver;
mod grpc;
mod hooks;
mod hostside;
mod http;
mod opamp;
mod protocols;
mod receiver;
mod runtimes;
mod services;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use receiver::{Receiver, Span};

const BIN: &str = env!("CARGO_BIN_EXE_cargo-instrument");

/// One cargo build at a time: tests share the example copy and its target directory.
fn lock() -> MutexGuard<'static, ()> {
    static L: Mutex<()> = Mutex::new(());
    L.lock().unwrap_or_else(|e| e.into_inner())
}

fn target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-target")
}

/// A fresh copy of `examples/NAME`, so tests never touch the repository's files.
fn fresh_copy(name: &str) -> PathBuf {
    // Where the package is now: a test binary reused from the shared target directory
    // may have been compiled in another checkout.
    let manifest_dir =
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR").into());
    let src = Path::new(&manifest_dir).join("../examples").join(name);
    let dst = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-src"));
    let _ = std::fs::remove_dir_all(&dst);
    copy_tree(&src, &dst);
    dst
}

/// A fresh copy of `examples/NAME` with the versions `$VAR` pins (`PKG@FROM=TO ...`, as
/// `cargo update -p PKG@FROM --precise TO`): how tests/matrix.sh builds the lowest release
/// a rule claims.
fn pinned_copy(name: &str, var: &str) -> PathBuf {
    let dir = fresh_copy(name);
    for pin in std::env::var(var).unwrap_or_default().split_whitespace() {
        let (spec, version) = pin.split_once('=').expect("PKG@FROM=TO");
        let out = run(Command::new(env!("CARGO"))
            .args(["update", "-p", spec, "--precise", version])
            .current_dir(&dir));
        assert!(out.status.success(), "{pin}: {}", text(&out.stderr));
    }
    dir
}

/// The cargo arguments that build an example with the features `$VAR` names (space
/// separated) instead of its defaults (set but empty: no features at all); none when
/// `$VAR` is unset.
fn feature_args(var: &str) -> Vec<String> {
    let Ok(value) = std::env::var(var) else {
        return Vec::new();
    };
    let features: Vec<&str> = value.split_whitespace().collect();
    let mut args = vec!["--no-default-features".to_string()];
    if !features.is_empty() {
        args.extend(["--features".to_string(), features.join(",")]);
    }
    args
}

fn example() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| fresh_copy("shapes"))
}

fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        let name = e.file_name();
        if name == "target" {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst.join(&name));
        } else {
            std::fs::copy(e.path(), dst.join(&name)).unwrap();
        }
    }
}

/// Builds the example copied to `dir`, plain or with `cargo instrument build --strict`
/// (a rule that broke a crate fails the test instead of falling back to the plain crate),
/// with `extra` cargo arguments; the path of its binary `bin`.
fn build_example(dir: &Path, bin: &str, instrumented: bool, extra: &[String]) -> PathBuf {
    let mut c = Command::new(if instrumented { BIN } else { env!("CARGO") });
    if instrumented {
        c.args(["instrument", "build", "--strict"]);
    } else {
        c.args(["build", "--quiet"]);
    }
    let out = run(c
        .args(extra)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("RUSTC_WRAPPER"));
    assert!(out.status.success(), "build failed: {}", text(&out.stderr));
    let profile = if instrumented {
        "instrument/debug"
    } else {
        "debug"
    };
    target_dir().join(profile).join(bin)
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("spawn")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn instrument(args: &[&str]) -> Output {
    run(Command::new(BIN)
        .arg("instrument")
        .args(args)
        .current_dir(example())
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("RUSTC_WRAPPER"))
}

/// Builds plain and instrumented once; returns (plain binary, instrumented binary).
fn binaries() -> (PathBuf, PathBuf) {
    static BINS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BINS.get_or_init(|| {
        let out = run(Command::new(env!("CARGO"))
            .args(["build", "--quiet"])
            .current_dir(example())
            .env("CARGO_TARGET_DIR", target_dir())
            .env_remove("RUSTC_WRAPPER"));
        assert!(
            out.status.success(),
            "plain build failed: {}",
            text(&out.stderr)
        );
        let out = instrument(&["build", "--strict"]);
        assert!(
            out.status.success(),
            "instrumented build failed: {}",
            text(&out.stderr)
        );
        (
            target_dir().join("debug/shapes-app"),
            target_dir().join("instrument/debug/shapes-app"),
        )
    })
    .clone()
}

/// Points an instrumented program at `endpoint`, with a short batch delay so that tests
/// do not wait for the default 5 s.
fn export_to<'c>(c: &'c mut Command, endpoint: &str) -> &'c mut Command {
    c.env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
}

fn run_app(bin: &Path, arg: Option<&str>, endpoint: &str) -> Output {
    run(export_to(Command::new(bin).args(arg), endpoint))
}

fn named<'a>(spans: &'a [Span], name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn parent_of<'a>(spans: &'a [Span], s: &Span) -> Option<&'a Span> {
    spans.iter().find(|p| p.span_id == s.parent_span_id)
}

#[test]
fn spans_arrive_with_names_parents_errors_and_code_attributes() {
    let _l = lock();
    let (plain, inst) = binaries();
    let rx = Receiver::start();
    let p = run_app(&plain, None, &rx.endpoint);
    let i = run_app(&inst, None, &rx.endpoint);
    assert!(i.status.success(), "{}", text(&i.stderr));
    assert_eq!(
        text(&p.stdout),
        text(&i.stdout),
        "stdout differs from the plain build"
    );

    let spans = rx.wait_for(Duration::from_secs(10), |s| {
        s.iter().any(|x| x.name == "on_thread")
    });
    // The error path: Err → status ERROR (code 2) with the Display text and an exception event.
    let parse_err = named(&spans, "parse")
        .into_iter()
        .find(|s| s.status_code == 2)
        .expect("an ERROR parse span");
    assert_eq!(parse_err.status_message, "bad shape spec: hexagon:1");
    assert!(parse_err.events.iter().any(|e| e == "exception"));
    assert_eq!(
        parse_err.attr("code.function.name"),
        Some("shapes_lib::parse")
    );
    assert_eq!(
        parse_err.attr("code.file.path"),
        Some("shapes-lib/src/lib.rs")
    );
    assert_eq!(parse_err.attr("code.line.number"), Some("21"));
    assert_eq!(parse_err.kind, 1, "INTERNAL");
    assert_eq!(parse_err.resource_attr("service.name"), Some("shapes-app"));
    // Successful parses are not errors.
    assert!(named(&spans, "parse").iter().any(|s| s.status_code != 2));

    // Across .await: measure runs after a yield, and area after another; both nest.
    let measure = named(&spans, "measure");
    assert_eq!(measure.len(), 2);
    for m in &measure {
        assert_eq!(
            parent_of(&spans, m).map(|p| p.name.as_str()),
            Some("measure_all")
        );
        let area = spans
            .iter()
            .find(|s| s.parent_span_id == m.span_id && s.name == "geometry::Shape::area")
            .expect("area, called after the .await, nests under measure");
        assert_eq!(area.trace_id, m.trace_id);
    }
    // Trait default method, trait impl method, &mut self -> &mut Self, impl Trait return.
    let label = named(&spans, "geometry::Area::label");
    assert_eq!(label.len(), 1);
    assert!(spans
        .iter()
        .any(|s| s.parent_span_id == label[0].span_id && s.name == "geometry::Shape::area"));
    assert_eq!(named(&spans, "geometry::Shape::scale").len(), 2);
    assert_eq!(named(&spans, "squares").len(), 1);
    // const fn is left alone.
    assert!(named(&spans, "geometry::Shape::unit").is_empty());
}

#[test]
fn panics_keep_their_location_and_mark_the_span() {
    let _l = lock();
    let (plain, inst) = binaries();
    let rx = Receiver::start();
    let p = run_app(&plain, Some("panic"), &rx.endpoint);
    let i = run_app(&inst, Some("panic"), &rx.endpoint);
    assert!(!p.status.success() && !i.status.success());
    assert_eq!(p.status.code(), i.status.code());
    // `file:line` of the panic. The column may move on a line where code was inserted
    // before the panicking expression; the line never does.
    let loc = |o: &Output| {
        let l = text(&o.stderr)
            .lines()
            .find(|l| l.contains("panicked at"))?
            .to_string();
        let at = l.split("panicked at ").nth(1)?.to_string();
        let mut parts: Vec<&str> = at.trim_end_matches(':').rsplitn(2, ':').collect();
        parts.reverse();
        Some(parts[0].to_string())
    };
    assert!(
        loc(&p).unwrap().contains("shapes-lib/src/lib.rs:"),
        "{:?}",
        loc(&p)
    );
    assert_eq!(loc(&p), loc(&i), "panic location moved");
    let spans = rx.wait_for(Duration::from_secs(10), |s| {
        s.iter().any(|x| x.name == "explode")
    });
    let e = named(&spans, "explode");
    assert_eq!(e.len(), 1, "{spans:#?}");
    assert_eq!(e[0].status_code, 2);
    assert_eq!(e[0].status_message, "exploded: on purpose");
}

#[test]
fn process_exit_flushes_spans() {
    let _l = lock();
    let (_, inst) = binaries();
    let rx = Receiver::start();
    let i = run_app(&inst, Some("exit"), &rx.endpoint);
    assert_eq!(i.status.code(), Some(3));
    // Delay of 50 ms but the process exits at once: only the exit flush can deliver these.
    let spans = rx.wait_for(Duration::from_secs(5), |s| {
        s.iter().any(|x| x.name == "on_thread")
    });
    assert!(
        !named(&spans, "on_thread").is_empty(),
        "spans lost at process::exit"
    );
}

#[test]
fn unreachable_collector_does_not_change_the_program() {
    let _l = lock();
    let (plain, inst) = binaries();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let p = run_app(&plain, None, &closed);
    let start = std::time::Instant::now();
    let i = run_app(&inst, None, &closed);
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "exit took {:?}",
        start.elapsed()
    );
    assert!(i.status.success());
    assert_eq!(text(&p.stdout), text(&i.stdout));
    assert!(
        text(&i.stderr).contains("cannot export to"),
        "{}",
        text(&i.stderr)
    );
}

#[test]
fn noop_rebuild_compiles_nothing_and_edits_rebuild() {
    let _l = lock();
    binaries();
    // Another test may have built with other rules: settle on these first.
    assert!(instrument(&["build"]).status.success());
    let again = instrument(&["build"]);
    assert!(again.status.success());
    assert!(
        !text(&again.stderr).contains("Compiling"),
        "{}",
        text(&again.stderr)
    );
    // Editing an original file: cargo watches the originals, not the shadow copies.
    let lib = example().join("shapes-lib/src/geometry.rs");
    let original = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, format!("{original}\n// touched\n")).unwrap();
    let after = instrument(&["build"]);
    std::fs::write(&lib, &original).unwrap();
    assert!(
        text(&after.stderr).contains("Compiling shapes-lib"),
        "{}",
        text(&after.stderr)
    );
    let restore = instrument(&["build"]);
    assert!(restore.status.success());
}

#[test]
fn malformed_rules_fail_before_building_with_a_position() {
    let _l = lock();
    let bad = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bad-rules.toml");
    std::fs::write(&bad, "[[rule]]\nnmae = \"x\"\ncrate = \"shapes-lib\"\n").unwrap();
    let out = instrument(&["build", "--rules", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("bad-rules.toml:2:1"), "{err}");
    assert!(err.contains("nmae"), "{err}");
    assert!(!err.contains("Compiling"), "{err}");
}

#[test]
fn explain_says_where_rules_matched_and_what_was_skipped() {
    let _l = lock();
    binaries();
    let other = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("more-rules.toml");
    std::fs::write(
        &other,
        "[[rule]]\nname = \"old-lib\"\ncrate = \"shapes-lib\"\nversion = \"^2\"\n\n\
         [[rule]]\nname = \"absent\"\ncrate = \"no-such-crate\"\n",
    )
    .unwrap();
    let out = instrument(&["explain", "--rules", other.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("rule `shapes-all`"), "{s}");
    assert!(s.contains("shapes-lib@0.1.0"), "{s}");
    assert!(s.contains("shapes-lib/src/lib.rs:21 parse"), "{s}");
    assert!(s.contains("geometry::Shape::unit: const fn"), "{s}");
    assert!(s.contains("version 0.1.0 is outside ^2"), "{s}");
    assert!(
        s.contains("rule `absent`") && s.contains("crate absent from this build"),
        "{s}"
    );
}

#[test]
fn expand_shows_the_rewritten_lines_against_the_original() {
    let _l = lock();
    binaries();
    let out = instrument(&["expand", "-p", "shapes-lib"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    // Each rewritten file: `--- FILE`, `+++ FILE (instrumented)`, then changed lines.
    let lib = s
        .split("\n--- ")
        .find(|f| f.contains("shapes-lib/src/lib.rs (instrumented)"))
        .unwrap_or_else(|| panic!("no diff for lib.rs: {s}"));
    // `parse` opens on line 21: the original line, then the same line with the span.
    let hunk = lib
        .split("@@ line ")
        .find(|h| h.starts_with("21 @@"))
        .unwrap_or_else(|| panic!("no hunk for line 21: {s}"));
    let mut lines = hunk.lines().skip(1);
    assert_eq!(
        lines.next(),
        Some("-pub fn parse(spec: &str) -> Result<geometry::Shape, ParseError> {")
    );
    let plus = lines.next().unwrap();
    assert!(plus.starts_with("+pub fn parse(spec: &str) -> Result<geometry::Shape, ParseError> {"));
    assert!(plus.contains("__private::enter("), "{plus}");
    // No rule names shapes-app, yet its `main` is rewritten: it starts the runtime.
    let app = instrument(&["expand", "-p", "shapes-app"]);
    assert!(app.status.success(), "{}", text(&app.stderr));
    let a = text(&app.stdout);
    assert!(a.contains("__private::start_with(&[("), "{a}");
    assert!(!a.contains("__private::enter("), "{a}");
}
