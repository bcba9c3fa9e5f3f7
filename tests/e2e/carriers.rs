//! Context carriers, built with the real tool and read back from the OTLP receiver: work
//! started inside `main`'s span on std threads, rayon's pool and tokio's spawn methods
//! continues `main`'s trace. tests/matrix.sh runs these at the lowest tokio and
//! rayon-core the rules claim (`INSTGO_CARRIERS_PRECISE`, `INSTGO_CARRIERS_FEATURES`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::receiver::{Receiver, Span};
use crate::{build_example, export_to, feature_args, lock, named, pinned_copy, run, text};

/// The instrumented binary `bin`, after one build of the (pinned) example.
fn built(bin: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let tasks = BUILT.get_or_init(|| {
        let dir = pinned_copy("carriers", "INSTGO_CARRIERS_PRECISE");
        build_example(
            &dir,
            "tasks",
            true,
            &feature_args("INSTGO_CARRIERS_FEATURES"),
        )
    });
    tasks.with_file_name(bin)
}

/// Whether the build has tokio's JoinSet (the default features; tokio ≥ 1.21).
fn joinset() -> bool {
    match std::env::var("INSTGO_CARRIERS_FEATURES") {
        Ok(f) => f.split_whitespace().any(|f| f == "joinset"),
        Err(_) => true,
    }
}

fn run_bin(bin: &Path, endpoint: &str) -> String {
    let out = run(export_to(&mut Command::new(bin), endpoint));
    assert!(
        out.status.success(),
        "{}: {}",
        bin.display(),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `crunch` spans of one run: `carried` under `main` in its trace, `lost` roots.
fn assert_crunches(bin: &str, spans: &[Span], carried: usize, lost: usize) {
    let main = named(spans, "main");
    assert_eq!(main.len(), 1, "{bin}: {spans:#?}");
    let crunches = named(spans, "crunch");
    let under_main = crunches
        .iter()
        .filter(|c| c.parent_span_id == main[0].span_id && c.trace_id == main[0].trace_id)
        .count();
    assert_eq!(under_main, carried, "{bin}: {spans:#?}");
    let roots = crunches
        .iter()
        .filter(|c| c.parent_span_id.is_empty())
        .count();
    assert_eq!(roots, lost, "{bin}: {spans:#?}");
}

#[test]
fn threads_and_rayon_work_continue_the_starters_trace() {
    let _l = lock();
    let rx = Receiver::start();
    assert_eq!(run_bin(&built("threads"), &rx.endpoint), "threads: 780\n");
    let spans = rx.wait_for(Duration::from_secs(10), |s| {
        s.iter().any(|x| x.name == "main") && s.iter().filter(|x| x.name == "crunch").count() == 12
    });
    // thread::spawn, a Builder chain's spawn and spawn_scoped, thread::scope's spawn, both
    // halves of rayon::join, rayon::spawn, rayon::scope's spawn, a parallel iterator's two
    // items, ThreadPool::install; not the thread of a Builder kept in a variable.
    assert_crunches("threads", &spans, 11, 1);
}

#[test]
fn tasks_started_through_tokios_methods_continue_the_starters_trace() {
    let _l = lock();
    let rx = Receiver::start();
    // Runtime::spawn, Handle::spawn and spawn_blocking, task::spawn_blocking,
    // LocalSet::spawn_local, and JoinSet's spawn and spawn_blocking where tokio has them.
    let (stdout, crunches) = if joinset() {
        ("tasks: 280\n", 7)
    } else {
        ("tasks: 170\n", 5)
    };
    assert_eq!(run_bin(&built("tasks"), &rx.endpoint), stdout);
    let spans = rx.wait_for(Duration::from_secs(10), |s| {
        s.iter().any(|x| x.name == "main")
            && s.iter().filter(|x| x.name == "crunch").count() == crunches
    });
    assert_crunches("tasks", &spans, crunches, 0);
}
