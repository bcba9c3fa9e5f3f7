//! Code that runs at build time beside the same code at run time (`examples/hostside`):
//! `spawner` is linked into the app, its build script and its proc-macro; `hostonly`
//! only into the build script and the proc-macro; the build script starts a thread of its
//! own and compiles C through `cc`, whose `jobserver` starts threads (the built-in
//! `std-thread-*` rules rewrite both), and asks the compiler through cargo's
//! `RUSTC_WRAPPER` whether a nightly feature compiles, as anyhow's does. Built with the
//! catalog alone and with a rule over every function of every crate, natively and for an
//! explicit `--target`: each build succeeds under `--strict`, prints what the plain build
//! prints, exports the app's spans, leaves the probe alone, and nothing that runs during
//! the build opens a connection.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::receiver::Receiver;
use crate::{export_to, fresh_copy, lock, named, parent_of, run, target_dir, text, BIN};

const ALL: &str = "[[rule]]\nname = \"everything\"\ncrate = \"*\"\nfn = \"*\"\n";

/// A loopback port that counts the connections made to it.
struct Tripwire {
    endpoint: String,
    connections: Arc<AtomicUsize>,
}

impl Tripwire {
    fn start() -> Tripwire {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        std::thread::spawn(move || {
            for _ in listener.incoming() {
                count.fetch_add(1, Ordering::SeqCst);
            }
        });
        Tripwire {
            endpoint,
            connections,
        }
    }
}

fn host_triple() -> String {
    let out = run(Command::new("rustc").arg("-vV"));
    text(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_string()
}

/// `cargo instrument build --strict` of the copy in `dir`; every telemetry endpoint the
/// build's processes could reach is the tripwire.
fn build(dir: &Path, extra: &[&str], wire: &Tripwire) {
    let out = run(Command::new(BIN)
        .args(["instrument", "build", "--strict"])
        .args(extra)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &wire.endpoint)
        .env(
            "INSTGO_OPAMP_ENDPOINT",
            format!("{}/v1/opamp", wire.endpoint),
        )
        .env("OTEL_BSP_SCHEDULE_DELAY", "10")
        .env_remove("RUSTC_WRAPPER"));
    assert!(
        out.status.success(),
        "cargo instrument build {extra:?} failed:\n{}",
        text(&out.stderr)
    );
}

#[test]
fn build_scripts_and_proc_macros_link_instrumented_crates_and_stay_silent() {
    let _l = lock();
    let dir = fresh_copy("hostside");
    std::fs::write(dir.join("all.rules.toml"), ALL).unwrap();
    let out = run(Command::new(env!("CARGO"))
        .args(["build", "--quiet"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("RUSTC_WRAPPER"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plain = run(&mut Command::new(target_dir().join("debug/hostside")));
    assert_eq!(text(&plain.stdout), "42 42 42 42 nightly=false\n");

    let wire = Tripwire::start();
    let triple = host_triple();
    let cross = ["--target", triple.as_str()];
    for (extra, bin) in [
        (vec![], "instrument/debug/hostside".to_string()),
        (
            vec!["--rules", "all.rules.toml"],
            "instrument/debug/hostside".into(),
        ),
        (
            cross.to_vec(),
            format!("instrument/{triple}/debug/hostside"),
        ),
        (
            [&cross[..], &["--rules", "all.rules.toml"]].concat(),
            format!("instrument/{triple}/debug/hostside"),
        ),
    ] {
        let _ = std::fs::remove_dir_all(target_dir().join("instrument/reports"));
        build(&dir, &extra, &wire);
        // The build script's own compile (a nightly probe, as anyhow's) is not rewritten.
        let reports: Vec<String> = std::fs::read_dir(target_dir().join("instrument/reports"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !reports.iter().any(|r| r.starts_with("hostside_probe")),
            "{extra:?}: {reports:?}"
        );
        // Exports at the exit of a build script or of rustc have had their time.
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            wire.connections.load(Ordering::SeqCst),
            0,
            "a process of the build {extra:?} made a connection"
        );
        let rx = Receiver::start();
        let out = run(export_to(
            &mut Command::new(target_dir().join(&bin)),
            &rx.endpoint,
        ));
        assert_eq!(text(&out.stdout), text(&plain.stdout), "{extra:?}");
        if extra.contains(&"--rules") {
            let spans = rx.wait_for(Duration::from_secs(10), |s| {
                !named(s, "doubled").is_empty() && !named(s, "main").is_empty()
            });
            let doubled = named(&spans, "doubled");
            assert_eq!(doubled.len(), 1, "{extra:?}: {spans:#?}");
            let parent = parent_of(&spans, doubled[0]).map(|p| p.name.as_str());
            assert_eq!(parent, Some("main"), "{extra:?}: {spans:#?}");
        }
    }
}

/// What the reports of the native catch-all build say: `spawner` (the app links it) was
/// instrumented, `hostonly` and `cc`'s `jobserver` (only the build script and the
/// proc-macro link them) were left alone, and say why.
#[test]
fn host_only_crates_are_left_alone_and_explain_says_so() {
    let _l = lock();
    let dir = fresh_copy("hostside");
    std::fs::write(dir.join("all.rules.toml"), ALL).unwrap();
    let out = run(Command::new(BIN)
        .args(["instrument", "explain", "--rules", "all.rules.toml"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("RUSTC_WRAPPER"));
    let explained = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        explained.contains("spawner@0.1.0 (lib): 1 site(s)"),
        "{explained}"
    );
    assert!(
        explained.contains("left alone in") && explained.contains("host-only"),
        "{explained}"
    );
    for host_only in ["hostonly@", "jobserver@", "cc@"] {
        assert!(
            !explained
                .lines()
                .any(|l| l.contains(host_only) && l.contains("site(s)")),
            "{host_only} instrumented:\n{explained}"
        );
    }
    // The built-in thread rules reached jobserver's call sites before: now nothing does.
    assert!(!explained.contains("jobserver@"), "{explained}");
}
