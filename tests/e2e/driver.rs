//! The cargo driver with what real projects bring: a build started from a sub-directory,
//! cargo flags passed through (`--release`, `--features`, `--message-format`,
//! `--offline`), a `RUSTC_WRAPPER` of the user's own (chained, not replaced), and a git
//! dependency instrumented by a workspace rule; a vendored, offline project.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::receiver::Receiver;
use crate::{export_to, lock, named, run, text, BIN};

fn write(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

fn git(dir: &Path, args: &[&str]) {
    let out = run(Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir));
    assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
}

/// A git repository holding crate `greeter`, and an app depending on it by URL.
fn project() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("driver-project");
    let _ = std::fs::remove_dir_all(&root);
    let dep = root.join("greeter");
    write(
        &dep.join("Cargo.toml"),
        "[package]\nname = \"greeter\"\nversion = \"0.3.0\"\nedition = \"2021\"\n",
    );
    write(
        &dep.join("src/lib.rs"),
        "pub fn greet(name: &str, loud: bool) -> String {\n    let s = format!(\"hello, {name}\");\n    if loud { s.to_uppercase() } else { s }\n}\n",
    );
    git(&dep, &["init", "-q"]);
    git(&dep, &["add", "."]);
    git(&dep, &["commit", "-qm", "greeter"]);
    let app = root.join("app");
    write(
        &app.join("Cargo.toml"),
        &format!(
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\ngreeter = {{ git = \"file://{}\" }}\n\n[features]\nloud = []\n\n[workspace]\n",
            dep.display()
        ),
    );
    write(
        &app.join("src/main.rs"),
        "fn main() {\n    println!(\"{}\", greeter::greet(\"driver\", cfg!(feature = \"loud\")));\n}\n",
    );
    write(
        &app.join("rules.toml"),
        "[[rule]]\nname = \"greeter-all\"\ncrate = \"greeter\"\nversion = \"0.3\"\nfn = \"*\"\n",
    );
    app
}

#[test]
fn subdirectories_cargo_flags_chained_wrappers_and_git_dependencies() {
    let _l = lock();
    let app = project();
    let target = app.join("target");
    // The user's own wrapper (sccache stands for any): it must still see every rustc call.
    let log = app.join("wrapper.log");
    let wrapper = app.join("log-wrapper.sh");
    write(
        &wrapper,
        &format!("#!/bin/sh\necho \"$@\" >> {}\nexec \"$@\"\n", log.display()),
    );
    run(Command::new("chmod").arg("+x").arg(&wrapper));

    let build = |extra: &[&str]| {
        run(Command::new(BIN)
            .args([
                "instrument",
                "build",
                "--strict",
                "--release",
                "--features",
                "loud",
            ])
            .args(extra)
            .current_dir(app.join("src"))
            .env("CARGO_TARGET_DIR", &target)
            .env("RUSTC_WRAPPER", &wrapper))
    };
    let out = build(&["--message-format=json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // cargo's JSON messages reach stdout untouched.
    assert!(text(&out.stdout)
        .lines()
        .any(|l| l.starts_with('{') && l.contains("\"reason\":\"compiler-artifact\"")));
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(calls.contains("--crate-name greeter"), "{calls}");
    assert!(calls.contains("--crate-name app"), "{calls}");

    let rx = Receiver::start();
    let exe = target.join("instrument/release/app");
    let ran = run(export_to(&mut Command::new(&exe), &rx.endpoint));
    assert_eq!(
        text(&ran.stdout),
        "HELLO, DRIVER\n",
        "{}",
        text(&ran.stderr)
    );
    let spans = rx.wait_for(Duration::from_secs(10), |s| {
        s.iter().any(|x| x.name == "greet")
    });
    let greet = named(&spans, "greet");
    assert_eq!(greet.len(), 1);
    assert_eq!(greet[0].attr("code.function.name"), Some("greeter::greet"));
    // As `file!()` names it in a plain build: the checkout's absolute path.
    let file = greet[0].attr("code.file.path").unwrap();
    assert!(
        file.contains("/git/checkouts/greeter-") && file.ends_with("/src/lib.rs"),
        "{file}"
    );

    // Offline, nothing changed: nothing compiles, and the chained wrapper is not called.
    std::fs::remove_file(&log).unwrap();
    let again = build(&["--offline"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        !text(&again.stderr).contains("Compiling"),
        "{}",
        text(&again.stderr)
    );
    assert!(!log.exists());
}

/// A vendored, offline project, as a user makes one: vendor while online, then build
/// offline. `cargo vendor` alone leaves the runtime's dependencies out (the build says what
/// to do), `cargo instrument vendor` puts them in the same directory, and then the
/// instrumented build needs nothing but that directory. The vendor steps reach crates.io
/// (`cargo vendor` takes every platform's crates, which no cache of a Linux build holds);
/// the builds run `--offline` behind a proxy that refuses every connection, so one that
/// touched the network would fail.
#[test]
fn vendored_offline_builds() {
    let _l = lock();
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("vendored-project");
    let _ = std::fs::remove_dir_all(&root);
    // The same itoa as this repository's lock file, so it is in cargo's cache already.
    write(
        &root.join("Cargo.toml"),
        "[package]\nname = \"vend-app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nitoa = \"=1.0.18\"\n",
    );
    write(
        &root.join("src/main.rs"),
        "fn main() {\n    let mut b = itoa::Buffer::new();\n    println!(\"{}\", b.format(42u64));\n}\n",
    );
    write(
        &root.join("rules.toml"),
        "[[rule]]\nname = \"itoa-all\"\ncrate = \"itoa\"\nfn = \"Buffer::*\"\n",
    );
    let target = root.join("target");
    let cmd = |args: &[&str]| {
        let mut c = Command::new(BIN);
        c.arg("instrument")
            .args(args)
            .current_dir(&root)
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("CARGO_NET_OFFLINE")
            .env_remove("RUSTC_WRAPPER");
        if args.contains(&"--offline") {
            // Port 9 (discard) on loopback: nothing listens, every connection is refused.
            c.env("CARGO_HTTP_PROXY", "http://127.0.0.1:9")
                .env("CARGO_NET_RETRY", "0");
        }
        run(&mut c)
    };
    let config = |stdout: &[u8]| {
        let snippet: String = text(stdout)
            .lines()
            .filter(|l| !l.starts_with("To use"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(snippet.contains("vendored-sources"), "{snippet}");
        write(&root.join(".cargo/config.toml"), &snippet);
    };

    // Plain `cargo vendor`: the project's crates only.
    let out = run(Command::new(env!("CARGO"))
        .arg("vendor")
        .current_dir(&root)
        .env_remove("CARGO_NET_OFFLINE"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    config(&out.stdout);
    let out = cmd(&["build", "--offline"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("cargo instrument vendor"),
        "{}",
        text(&out.stderr)
    );

    let out = cmd(&["vendor"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    config(&out.stdout);
    // Once vendored online, cargo's cache holds every platform's crates: an offline
    // vendor (a user's CARGO_NET_OFFLINE, say) now finds them all.
    let out = cmd(&["vendor", "--offline"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    config(&out.stdout);
    assert!(root.join("vendor/itoa").is_dir() && root.join("vendor/opentelemetry_sdk").is_dir());
    let out = cmd(&["build", "--offline"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let rx = Receiver::start();
    let out = run(export_to(
        &mut Command::new(target.join("instrument/debug/vend-app")),
        &rx.endpoint,
    ));
    assert_eq!(text(&out.stdout), "42\n");
    let spans = rx.wait_for(Duration::from_secs(10), |s| {
        s.iter().any(|x| x.name == "Buffer::format")
    });
    let format = named(&spans, "Buffer::format");
    assert_eq!(format.len(), 1, "{spans:#?}");
    assert!(format[0]
        .attr("code.file.path")
        .is_some_and(|f| f.contains("itoa")));
}

/// Vendoring offline with a cache that has cargo's index but not the crates (what a
/// machine has after Linux builds: `cargo vendor` also wants every other platform's
/// crates): the error names every missing crate, the project's and the runtime's, and the
/// commands that fetch them, instead of cargo's first download failure.
#[test]
fn offline_vendor_names_every_missing_crate() {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("vendor-offline-missing");
    let _ = std::fs::remove_dir_all(&root);
    write(
        &root.join("Cargo.toml"),
        "[package]\nname = \"vend-missing\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nitoa = \"=1.0.18\"\n",
    );
    write(&root.join("src/main.rs"), "fn main() {}\n");
    write(
        &root.join("Cargo.lock"),
        "version = 4\n\n[[package]]\nname = \"itoa\"\nversion = \"1.0.18\"\n\
         source = \"registry+https://github.com/rust-lang/crates.io-index\"\n\
         checksum = \"8f42a60cbdf9a97f5d2305f08a87dc4e09308d1276d28c869c684d7777685682\"\n\n\
         [[package]]\nname = \"vend-missing\"\nversion = \"0.1.0\"\ndependencies = [\"itoa\"]\n",
    );
    // Vendored before by plain `cargo vendor`: crates.io points at a directory without the
    // runtime's crates, which `cargo vendor` (and so the check) must ignore.
    write(
        &root.join(".cargo/config.toml"),
        "[source.crates-io]\nreplace-with = \"vendored-sources\"\n\n\
         [source.vendored-sources]\ndirectory = \"vendor-old\"\n",
    );
    std::fs::create_dir_all(root.join("vendor-old")).unwrap();
    // The machine's index cache (the runtime's build resolved through it), no crates.
    let real_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"));
    let home = root.join("cargo-home");
    std::fs::create_dir_all(home.join("registry/cache")).unwrap();
    std::os::unix::fs::symlink(
        real_home.join("registry/index"),
        home.join("registry/index"),
    )
    .unwrap();
    let out = run(Command::new(BIN)
        .args(["instrument", "vendor"])
        .current_dir(&root)
        .env("CARGO_HOME", &home)
        .env("CARGO_NET_OFFLINE", "true")
        .env("CARGO_TARGET_DIR", root.join("target"))
        .env_remove("RUSTC_WRAPPER"));
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    for needed in ["itoa 1.0.18", "opentelemetry_sdk 0.33.", "bumpalo 3."] {
        assert!(err.contains(needed), "{needed} not named:\n{err}");
    }
    // Only the runtime's graph: the collector's and the tests' crates are not asked for.
    for unrelated in ["insta ", "axum ", "tonic "] {
        assert!(!err.contains(unrelated), "{unrelated} named:\n{err}");
    }
    assert!(err.contains("cargo fetch\n"), "{err}");
    assert!(
        err.contains("cargo fetch --manifest-path ")
            && err.contains("runtime/vendor-src/Cargo.toml"),
        "{err}"
    );
    assert!(!err.contains("attempting to make an HTTP request"), "{err}");
    assert!(!root.join("vendor").exists());
}
