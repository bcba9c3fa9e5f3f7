//! Wrapper mode: cargo runs `cargo-instrument RUSTC ARGS...` for every compilation.
//!
//! One call, one crate: decide whether rules apply, rewrite into the shadow tree, hand
//! rustc the shadow root, and make the dep-info name the originals. A crate nothing applies
//! to goes to rustc untouched (plus the runtime's `-L`, which the final link needs), and so
//! do build scripts, proc-macros and host-only crates (`hostside`); a cross build's host
//! units get nothing at all.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context as _, Result};

use crate::cfg::Features;
use crate::depinfo;
use crate::hostside::HostOnly;
use crate::lockfile;
use crate::plan::{self, CrateInput};
use crate::report::{CrateReport, RuleOutcome, RuleReport};
use crate::rule::RuleSet;
use crate::rustc_args::RustcArgs;
use crate::shadow;

/// Environment the driver sets for the wrapper.
pub mod env {
    pub const MODE: &str = "INSTGO_WRAPPER_MODE";
    pub const CHAINED: &str = "INSTGO_CHAINED_WRAPPER";
    pub const RULES: &str = "INSTGO_RULES";
    pub const RULES_FINGERPRINT: &str = "INSTGO_RULES_FINGERPRINT";
    pub const RUNTIME_RLIB: &str = "INSTGO_RUNTIME_RLIB";
    pub const RUNTIME_DEPS: &str = "INSTGO_RUNTIME_DEPS";
    pub const DIR: &str = "INSTGO_DIR";
    pub const STRICT: &str = "INSTGO_STRICT";
    /// The workspace's Cargo.lock (for `wrap_call.requires`).
    pub const LOCKFILE: &str = "INSTGO_LOCKFILE";
    /// Set in a cross build: the triple the runtime was built for. A unit compiled
    /// without `--target` is then the host's (`hostside`).
    pub const TARGET: &str = "INSTGO_TARGET";
    /// Where `hostside::compute` keeps the host-only packages of a native build.
    pub const HOST_ONLY: &str = "INSTGO_HOST_ONLY";
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `argv` is what follows our own program name: the rustc path, then its arguments.
pub fn run(argv: Vec<OsString>) -> Result<ExitCode> {
    let mut it = argv.into_iter();
    let rustc = it
        .next()
        .context("wrapper mode needs the rustc path as first argument")?;
    let args: Vec<String> = it.map(|a| a.to_string_lossy().into_owned()).collect();
    let parsed = RustcArgs::parse(args);

    // A host unit of a cross build links nothing instrumented (`hostside`).
    let cross_host_unit = var(env::TARGET).is_some() && parsed.target.is_none();
    let untouched = parsed.src().is_none()
        || parsed.has_argfile
        || var("CARGO_PKG_NAME").is_none()
        || cross_host_unit
        || from_build_script();
    if untouched {
        return exec(&rustc, &parsed.args);
    }
    let mut extra = Vec::new();
    let runtime_dirs = var(env::RUNTIME_DEPS).unwrap_or_default();
    for deps in std::env::split_paths(&runtime_dirs).filter(|d| !d.as_os_str().is_empty()) {
        extra.push("-L".to_string());
        extra.push(format!("dependency={}", deps.display()));
    }
    // The command line of an uninstrumented compile: cargo's, plus the runtime's `-L`.
    let plain = [parsed.args.clone(), extra.clone()].concat();
    // Never rewritten, but in a native build they may link a crate they share with the
    // application, instrumented: the `-L` lets them load it (`hostside`).
    if parsed.is_proc_macro() || parsed.is_build_script() {
        return exec(&rustc, &plain);
    }
    match instrument(&rustc, &parsed, &extra, &plain) {
        Ok(Some(code)) => Ok(code),
        Ok(None) => exec(&rustc, &plain),
        Err(e) => {
            // Never break a build over our own trouble: say what happened, build as is.
            eprintln!(
                "instgo: warning: not instrumenting crate `{}`: {e:#}",
                parsed.crate_name.as_deref().unwrap_or("?")
            );
            if var(env::STRICT).is_some() {
                return Ok(ExitCode::FAILURE);
            }
            exec(&rustc, &plain)
        }
    }
}

/// Rewrites and compiles the crate when rules apply; `None` when there is nothing to do.
fn instrument(
    rustc: &OsString,
    parsed: &RustcArgs,
    extra: &[String],
    plain: &[String],
) -> Result<Option<ExitCode>> {
    let (Some(rules_path), Some(dir), Some(rlib)) =
        (var(env::RULES), var(env::DIR), var(env::RUNTIME_RLIB))
    else {
        return Ok(None);
    };
    let rules: RuleSet = serde_json::from_slice(
        &std::fs::read(&rules_path).with_context(|| format!("reading {rules_path}"))?,
    )
    .with_context(|| format!("parsing {rules_path}"))?;
    let package = var("CARGO_PKG_NAME").unwrap_or_default();
    let version = var("CARGO_PKG_VERSION").unwrap_or_default();
    let manifest_dir = PathBuf::from(var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let crate_name = parsed
        .crate_name
        .clone()
        .unwrap_or_else(|| package.replace('-', "_"));
    let unit = format!("{crate_name}{}", parsed.extra_filename);
    let (applicable, mut out_of_range) =
        plan::applicable(&rules.rules, &package, &version, &parsed.externs);
    let src = PathBuf::from(parsed.src().unwrap_or_default());
    let applicable = plan::drop_absent_calls(applicable, &src);
    // After the text check: the lock file is read only for crates that name the call.
    // Read once, and only when a rule asks.
    let lock = std::cell::OnceCell::new();
    let (applicable, unmet) = plan::meets_requires(applicable, |dep| {
        lock.get_or_init(|| var(env::LOCKFILE).and_then(|l| lockfile::Lock::read(Path::new(&l))))
            .as_ref()?
            .dependency_version(&package, &version, dep)
    });
    out_of_range.extend(unmet);
    if !applicable.is_empty() && !parsed.is_bin() && host_only(&manifest_dir) {
        let report = CrateReport {
            package,
            version,
            crate_name: crate_name.clone(),
            crate_types: parsed.crate_types.clone(),
            rules_fingerprint: var(env::RULES_FINGERPRINT).unwrap_or_default(),
            rules: applicable
                .iter()
                .map(|r| RuleReport {
                    rule: r.name.clone(),
                    outcome: RuleOutcome::HostOnly,
                })
                .collect(),
            ..Default::default()
        };
        report.write(&Path::new(&dir).join("reports"), &unit)?;
        return Ok(None);
    }

    let inject_dir = Path::new(&dir).join("inject").join(&unit);
    let mut report;
    let files;
    let mut injected = Vec::new();
    if applicable.is_empty() && !parsed.is_bin() {
        report = CrateReport {
            package,
            version,
            crate_name: crate_name.clone(),
            ..Default::default()
        };
        files = Vec::new();
    } else {
        let features = Features::from_rustc_args(&parsed.args);
        let catalog = if parsed.is_bin() {
            crate::rewrite::catalog(&rules.rules)
        } else {
            String::new()
        };
        let input = CrateInput {
            src: &src,
            manifest_dir: &manifest_dir,
            crate_name: &crate_name,
            package: &package,
            version: &version,
            edition: &parsed.edition,
            is_bin: parsed.is_bin(),
            inject_dir: &inject_dir,
            features: &features,
            catalog: &catalog,
        };
        let p = plan::plan(&input, &applicable);
        report = p.report;
        files = p.files;
        injected = p.injected;
    }
    report.rules.extend(out_of_range);
    report.crate_types = parsed.crate_types.clone();
    report.rules_fingerprint = var(env::RULES_FINGERPRINT).unwrap_or_default();
    let reports = Path::new(&dir).join("reports");
    let interesting = !report.rules.is_empty() || !files.is_empty();
    if files.is_empty() {
        if interesting {
            report.write(&reports, &unit)?;
        }
        return Ok(None);
    }

    // Mirror from the working directory when rustc was given a relative root (a
    // workspace member), else from the package root (registry and git dependencies).
    let cwd = std::env::current_dir()?;
    let (mirror, relative) = if src.is_relative() {
        (cwd.clone(), true)
    } else {
        (manifest_dir.clone(), false)
    };
    let shadow_root = Path::new(&dir).join("shadow").join(&unit);
    let mut overlay = BTreeMap::new();
    for (path, text) in &files {
        let abs = if path.is_relative() {
            cwd.join(path)
        } else {
            path.clone()
        };
        let Some(rel) = shadow::relative_inside(&mirror, &abs) else {
            report.notes.push(format!(
                "{}: outside {}, not instrumented",
                path.display(),
                mirror.display()
            ));
            continue;
        };
        overlay.insert(rel, text.clone());
    }
    shadow::build(&mirror, &shadow_root, &overlay)
        .with_context(|| format!("building the shadow tree {}", shadow_root.display()))?;
    if !injected.is_empty() {
        std::fs::create_dir_all(&inject_dir)
            .with_context(|| format!("creating {}", inject_dir.display()))?;
        // Injected files are in the crate's dep-info. Cargo compares their mtimes with the
        // moment this compile started, so a file written now would make the crate stale
        // forever: they get the crate root's mtime instead. Their content only changes with
        // the rules, and a rules change cleans the crate (driver::invalidate_changed).
        let stamp = std::fs::metadata(&src).and_then(|m| m.modified()).ok();
        for (path, text) in &injected {
            if std::fs::read_to_string(path).ok().as_deref() == Some(text.as_str()) {
                continue; // as written before, mtime included
            }
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            if let Some(t) = stamp {
                let _ = std::fs::File::options()
                    .write(true)
                    .open(path)
                    .and_then(|f| f.set_modified(t));
            }
        }
    }
    report.shadow = Some(shadow_root.display().to_string());
    report.source_root = Some(mirror.display().to_string());

    let src_index = parsed.src_index.context("no source file")?;
    let shadow_src = shadow_root.join(if relative {
        src.clone()
    } else {
        src.strip_prefix(&mirror)?.to_path_buf()
    });
    let shadow_str = shadow_root.display().to_string();
    let mut args = parsed.args.clone();
    args[src_index] = shadow_src.display().to_string();
    args.push("--extern".into());
    args.push(format!("instgo_runtime={rlib}"));
    args.extend(extra.iter().cloned());
    // file!(), panic messages and debuginfo name the original files, exactly as a plain
    // build would (relative roots stay relative).
    args.push("--remap-path-prefix".into());
    args.push(if relative {
        format!("{shadow_str}/=")
    } else {
        format!("{shadow_str}={}", mirror.display())
    });

    let code = exec_buffered(rustc, &args)?;
    let result = if code.0.success() {
        forward(&code.1, &code.2);
        if let Some(d) = parsed.dep_info_path() {
            let original = if relative {
                String::new()
            } else {
                mirror.display().to_string()
            };
            let shadow_prefix = if relative {
                format!("{shadow_str}/")
            } else {
                shadow_str.clone()
            };
            depinfo::point_at_originals(Path::new(&d), &shadow_prefix, &original)
                .with_context(|| format!("rewriting dep-info {d}"))?;
        }
        ExitCode::SUCCESS
    } else {
        let first_error = first_error(&code.2);
        let rules_used: Vec<&str> = applicable.iter().map(|r| r.name.as_str()).collect();
        let what = format!(
            "instrumenting crate `{crate_name}` ({}@{}) with rules [{}] made it fail to compile: {first_error}\n  \
             rewritten sources: {shadow_str}\n  see the change: cargo instrument expand -p {}",
            report.package,
            report.version,
            rules_used.join(", "),
            report.package
        );
        if var(env::STRICT).is_some() {
            forward(&code.1, &code.2);
            eprintln!("instgo: error: {what}");
            report.fell_back = Some(first_error);
            report.write(&reports, &unit)?;
            return Ok(Some(ExitCode::FAILURE));
        }
        eprintln!("instgo: warning: {what}\n  building it without instrumentation (--strict makes this an error)");
        report.fell_back = Some(first_error);
        exec(rustc, plain)?
    };
    report.write(&reports, &unit)?;
    Ok(Some(result))
}

/// A compile a build script runs itself (cargo gives build scripts `RUSTC_WRAPPER`):
/// anyhow's, for one, compiles a probe to see whether the compiler is a nightly. It is
/// the build script's question, asked of the compiler as it is: rewriting the probe
/// would be answering for it, and in `--strict` mode a probe that is meant to fail would
/// fail the build. Cargo's own compiles never have a build script's `CARGO_CFG_*`.
fn from_build_script() -> bool {
    ["CARGO_CFG_TARGET_OS", "TARGET", "HOST"]
        .iter()
        .all(|v| var(v).is_some())
}

/// Whether only build scripts and proc-macros link the package at `manifest_dir`, as the
/// driver worked out; read only for crates rules apply to.
fn host_only(manifest_dir: &Path) -> bool {
    var(env::HOST_ONLY)
        .and_then(|p| HostOnly::read(Path::new(&p)))
        .is_some_and(|h| h.contains(&manifest_dir.display().to_string()))
}

fn first_error(stderr: &[u8]) -> String {
    // cargo asks for JSON diagnostics; fall back to plain text lines.
    for line in String::from_utf8_lossy(stderr).lines() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
            if v["level"] == "error" {
                let loc = v["spans"]
                    .as_array()
                    .and_then(|s| s.first())
                    .map(|s| {
                        format!(
                            "{}:{}: ",
                            s["file_name"].as_str().unwrap_or("?"),
                            s["line_start"]
                        )
                    })
                    .unwrap_or_default();
                return format!("{loc}{}", v["message"].as_str().unwrap_or("error"));
            }
        } else if line.starts_with("error") {
            return line.to_string();
        }
    }
    "rustc failed".to_string()
}

fn forward(stdout: &[u8], stderr: &[u8]) {
    let _ = std::io::stdout().write_all(stdout);
    let _ = std::io::stderr().write_all(stderr);
}

fn command(rustc: &OsString, args: &[String]) -> Command {
    match var(env::CHAINED) {
        Some(w) => {
            let mut c = Command::new(w);
            c.arg(rustc).args(args);
            c
        }
        None => {
            let mut c = Command::new(rustc);
            c.args(args);
            c
        }
    }
}

fn exec(rustc: &OsString, args: &[String]) -> Result<ExitCode> {
    let status = command(rustc, args)
        .status()
        .with_context(|| format!("running {}", rustc.to_string_lossy()))?;
    Ok(exit_code(status))
}

fn exec_buffered(
    rustc: &OsString,
    args: &[String],
) -> Result<(std::process::ExitStatus, Vec<u8>, Vec<u8>)> {
    let out = command(rustc, args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", rustc.to_string_lossy()))?;
    Ok((out.status, out.stdout, out.stderr))
}

/// A child's exit status as ours (a signal is a failure).
pub(crate) fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        None => ExitCode::FAILURE,
    }
}
