//! The cargo subcommand: `cargo instrument build|run|test|check|explain|expand [cargo args]`.
//!
//! It prepares rules and the runtime, then runs the real cargo with this same binary as
//! `RUSTC_WRAPPER` and `<target-dir>/instrument` as the target directory.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context as _, Result};

use crate::embedded;
use crate::fingerprint;
use crate::glob;
use crate::hostside;
use crate::report::{CrateReport, RuleOutcome};
use crate::rule::{self, ReadFile, RuleSet, Source};
use crate::runtime_build::{self, Toolchain};
use crate::workspace::{self, cargo, Query, Workspace};
use crate::wrapper::env;

/// Our own options, taken out of the arguments before cargo sees them.
#[derive(Debug, Default)]
pub struct Options {
    pub rules_files: Vec<PathBuf>,
    pub strict: bool,
    pub cargo_args: Vec<String>,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options> {
        let mut o = Options::default();
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            if a == "--" {
                o.cargo_args.extend(args[i..].iter().cloned());
                break;
            } else if a == "--rules" {
                i += 1;
                o.rules_files
                    .push(PathBuf::from(args.get(i).context("--rules needs a file")?));
            } else if let Some(f) = a.strip_prefix("--rules=") {
                o.rules_files.push(PathBuf::from(f));
            } else if a == "--strict" {
                o.strict = true;
            } else {
                o.cargo_args.push(a.clone());
            }
            i += 1;
        }
        Ok(o)
    }

    /// The value of a cargo option (`--opt V` or `--opt=V`) before any `--`.
    pub(crate) fn cargo_opt(&self, name: &str) -> Option<String> {
        self.cargo_opts(name).into_iter().next()
    }

    /// Every value of a repeatable cargo option, in order.
    fn cargo_opts(&self, name: &str) -> Vec<String> {
        let mut values = Vec::new();
        let mut it = self.cargo_args.iter().take_while(|a| *a != "--");
        while let Some(a) = it.next() {
            if a == name {
                values.extend(it.next().cloned());
            } else if let Some(v) = a.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
                values.push(v.to_string());
            }
        }
        values
    }

    fn cargo_flag(&self, name: &str) -> bool {
        self.cargo_args
            .iter()
            .take_while(|a| *a != "--")
            .any(|a| a == name)
    }

    /// Whether cargo runs without the network: `--offline` or `--frozen`,
    /// `CARGO_NET_OFFLINE=true`, or `--config net.offline=true`. (`net.offline` in a cargo
    /// config file is cargo's own to read.)
    fn offline(&self) -> bool {
        self.cargo_flag("--offline")
            || self.cargo_flag("--frozen")
            || std::env::var("CARGO_NET_OFFLINE").is_ok_and(|v| v == "true")
            || self
                .cargo_opts("--config")
                .iter()
                .any(|c| c.replace(' ', "") == "net.offline=true")
    }
}

fn workspace(o: &Options) -> Result<Workspace> {
    let mut ws = workspace::locate(&Query {
        manifest_path: o.cargo_opt("--manifest-path"),
        config: o.cargo_opts("--config"),
    })?;
    if let Some(t) = o.cargo_opt("--target-dir") {
        ws.target_dir = std::env::current_dir()?.join(t);
    }
    Ok(ws)
}

/// Reads the files a rules document names (`hooks.file`, `add_file`), relative to it:
/// from the embedded catalog for built-ins, from disk for the user's.
fn reader(file: &Path, builtin: bool) -> Box<ReadFile> {
    if builtin {
        let dir = file
            .to_string_lossy()
            .trim_start_matches("builtin:")
            .rsplit_once('/')
            .map(|(d, _)| d.to_string())
            .unwrap_or_default();
        Box::new(move |name: &str| {
            let key = format!("{dir}/{name}");
            embedded::BUILTIN_RULES
                .iter()
                .find(|(n, _)| *n == key)
                .map(|(_, text)| (format!("builtin:{key}"), text.to_string()))
                .ok_or_else(|| "not in the built-in catalog".to_string())
        })
    } else {
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        Box::new(move |name: &str| {
            let p = dir.join(name);
            std::fs::read_to_string(&p)
                .map(|t| (p.display().to_string(), t))
                .map_err(|e| e.to_string())
        })
    }
}

/// Built-ins, then the workspace's `rules.toml`, then every `--rules FILE`.
pub fn load_rules(ws_root: &Path, extra: &[PathBuf]) -> Result<RuleSet> {
    let mut texts: Vec<(PathBuf, String, bool)> = Vec::new();
    for (name, text) in embedded::BUILTIN_RULES {
        if name.ends_with(".toml") {
            texts.push((
                PathBuf::from(format!("builtin:{name}")),
                text.to_string(),
                true,
            ));
        }
    }
    let mut files: Vec<PathBuf> = rule::workspace_rules_file(ws_root).into_iter().collect();
    files.extend(extra.iter().cloned());
    for f in files {
        let text = std::fs::read_to_string(&f)
            .with_context(|| format!("reading rules file {}", f.display()))?;
        texts.push((f, text, false));
    }
    let readers: Vec<Box<ReadFile>> = texts
        .iter()
        .map(|(file, _, builtin)| reader(file, *builtin))
        .collect();
    let sources: Vec<Source<'_>> = texts
        .iter()
        .zip(&readers)
        .map(|((file, text, builtin), read)| Source {
            file: file.clone(),
            text,
            builtin: *builtin,
            read: &**read,
        })
        .collect();
    Ok(rule::compile(&sources)?)
}

const CARGO_COMMANDS: &[&str] = &["build", "run", "test", "check", "bench", "rustc", "doc"];

pub fn main(args: Vec<String>) -> Result<ExitCode> {
    let Some((cmd, rest)) = args.split_first() else {
        print_help();
        return Ok(ExitCode::from(2));
    };
    match cmd.as_str() {
        "-h" | "--help" | "help" => {
            print_help();
            Ok(ExitCode::SUCCESS)
        }
        "-V" | "--version" => {
            println!("cargo-instrument {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        c if CARGO_COMMANDS.contains(&c) => {
            let o = Options::parse(rest)?;
            build(c, &o)
        }
        "explain" => {
            let o = Options::parse(rest)?;
            explain(&o)
        }
        "expand" => {
            let o = Options::parse(rest)?;
            crate::expand::run(&o)
        }
        "collector" => crate::collect::collector(rest),
        "traces" => crate::collect::traces(rest),
        "control" => crate::control::control(rest),
        "vendor" => {
            let o = Options::parse(rest)?;
            let ws = workspace(&o)?;
            let dir = ws.target_dir.join("instrument");
            std::fs::create_dir_all(&dir)?;
            let cwd = std::env::current_dir()?;
            let sync_manifests = [o.cargo_opts("--sync"), o.cargo_opts("-s")]
                .concat()
                .into_iter()
                .map(PathBuf::from)
                .collect();
            crate::vendor::run(&crate::vendor::Request {
                instrument_dir: &dir,
                workspace_root: &ws.root,
                cwd: &cwd,
                args: &o.cargo_args,
                sync_manifests,
                offline: o.offline(),
                respect_source_config: o.cargo_flag("--respect-source-config"),
            })
        }
        other => bail!("unknown command `{other}`; see `cargo instrument --help`"),
    }
}

fn print_help() {
    println!(
        "cargo instrument: build Rust programs with OpenTelemetry instrumentation injected at compile time

USAGE:
    cargo instrument <build|run|test|check> [--rules FILE]... [--strict] [cargo options] [-- program args]
    cargo instrument explain [cargo build options]   where every rule matched, and why others did not
    cargo instrument expand -p PACKAGE [cargo build options]   the rewritten source as a diff
    cargo instrument vendor [cargo vendor options]   cargo vendor, the runtime's dependencies included
    cargo instrument collector [--http ADDR] [--grpc ADDR] [--ui ADDR] [--opamp ADDR] [--file PATH]   the bundled collector
    cargo instrument traces [--endpoint URL | --file PATH] [--service S] [--last N] [--follow]
    cargo instrument control list | set (--agent UID | --service NAME) --file CONFIG.toml
                                                     running programs, and their remote config (OpAMP)

Rules: the built-in catalog, the workspace's rules.toml, and each --rules FILE (docs/rules.md).
Artifacts go to <target-dir>/instrument; the project's files are never modified."
    );
}

/// What `build` prepared, for `explain` and `expand` to read back.
pub struct Prepared {
    pub instrument_dir: PathBuf,
    pub rules_fingerprint: String,
    pub rules: RuleSet,
}

impl Prepared {
    /// The wrapper's reports made with these rules (older ones may linger beside them).
    pub fn reports(&self) -> Vec<CrateReport> {
        CrateReport::read_all(&self.instrument_dir.join("reports"))
            .into_iter()
            .filter(|r| r.rules_fingerprint == self.rules_fingerprint)
            .collect()
    }
}

fn build(cmd: &str, o: &Options) -> Result<ExitCode> {
    let (code, _) = build_with(cmd, o)?;
    Ok(code)
}

pub fn build_with(cmd: &str, o: &Options) -> Result<(ExitCode, Prepared)> {
    let ws = workspace(o)?;
    // Rules first: a malformed file fails before anything builds.
    let rules = load_rules(&ws.root, &o.rules_files)?;
    for (pattern, origin) in &rules.unused_disables {
        let msg = format!("{origin}: `disable = [\"{pattern}\"]` matches no built-in rule");
        if o.strict {
            bail!("{msg}");
        }
        eprintln!("instgo: warning: {msg}");
    }
    let instrument_dir = ws.target_dir.join("instrument");
    std::fs::create_dir_all(&instrument_dir)?;
    let cwd = std::env::current_dir()?;
    let target = o
        .cargo_opt("--target")
        .or_else(|| std::env::var("CARGO_BUILD_TARGET").ok());
    let tc = Toolchain::detect(&cwd, target, &instrument_dir)?;
    let runtime = runtime_build::ensure(&instrument_dir, &cwd, &tc, o.offline())?;

    let rules_json = serde_json::to_vec_pretty(&rules)?;
    let rules_fingerprint = fingerprint::of(&[&rules_json]);
    let rules_path = instrument_dir.join("rules.json");
    if std::fs::read(&rules_path).ok().as_deref() != Some(&rules_json[..]) {
        std::fs::write(&rules_path, &rules_json)?;
    }
    invalidate_changed(&instrument_dir, &rules, &runtime.key, o)?;
    let host_only = host_only_packages(&ws, &instrument_dir, &cwd, &tc, o);

    let self_exe = std::env::current_exe().context("locating cargo-instrument")?;
    let mut c = Command::new(cargo());
    c.arg(cmd);
    let mut skip_next = false;
    for a in &o.cargo_args {
        // --target-dir is ours to set (the instrumented build lives under it).
        if skip_next {
            skip_next = false;
            continue;
        }
        if a == "--target-dir" {
            skip_next = true;
            continue;
        }
        if a.starts_with("--target-dir=") {
            continue;
        }
        c.arg(a);
    }
    if let Ok(prev) = std::env::var("RUSTC_WRAPPER") {
        if !prev.is_empty() && Path::new(&prev) != self_exe {
            c.env(env::CHAINED, prev);
        }
    }
    c.env("RUSTC_WRAPPER", &self_exe)
        .env("CARGO_TARGET_DIR", &instrument_dir)
        .env(env::MODE, "1")
        .env(env::RULES, &rules_path)
        .env(env::RULES_FINGERPRINT, &rules_fingerprint)
        .env(env::RUNTIME_RLIB, &runtime.rlib)
        .env(
            env::RUNTIME_DEPS,
            std::env::join_paths(runtime.search_dirs()).context("the runtime's folders")?,
        )
        .env(env::DIR, &instrument_dir)
        .env(env::LOCKFILE, ws.root.join("Cargo.lock"));
    // Doctests are compiled by rustdoc, which cargo does not run through the wrapper, and
    // link the instrumented library: they need to find the runtime's rlib and its deps.
    let mut docflags = std::env::var("RUSTDOCFLAGS").unwrap_or_default();
    for d in runtime.search_dirs() {
        docflags.push_str(&format!(" -L dependency={}", d.display()));
    }
    c.env("RUSTDOCFLAGS", docflags.trim());
    if o.strict {
        c.env(env::STRICT, "1");
    }
    if let Some(t) = &tc.target {
        c.env(env::TARGET, t);
    }
    if let Some(path) = host_only {
        c.env(env::HOST_ONLY, path);
    }
    let code = crate::wrapper::exit_code(c.status().context("running cargo")?);
    Ok((
        code,
        Prepared {
            instrument_dir,
            rules_fingerprint,
            rules,
        },
    ))
}

/// Works out which packages only build scripts and proc-macros link (`hostside`) and
/// returns where the wrapper reads them. A package that stopped being host-only was
/// built plain and cargo would keep that build: it is cleaned. When they cannot be told
/// (cargo metadata failed), `None`: everything the rules reach is instrumented, which is
/// safe, since the runtime stays off at build time, only slower.
fn host_only_packages(
    ws: &Workspace,
    instrument_dir: &Path,
    cwd: &Path,
    tc: &Toolchain,
    o: &Options,
) -> Option<PathBuf> {
    if tc.target.is_some() {
        return None; // host units are told apart by their missing `--target`
    }
    let path = instrument_dir.join("host-only.json");
    let before = hostside::HostOnly::read(&path);
    let mut deciding_files = workspace::deciding_files(cwd);
    deciding_files.push(ws.root.join("Cargo.lock"));
    let manifest_path = o.cargo_opt("--manifest-path");
    let config = o.cargo_opts("--config");
    let query = hostside::Query {
        cwd,
        platform: tc.host()?,
        manifest_path: manifest_path.as_deref(),
        config: &config,
        offline: o.offline(),
        deciding_files,
    };
    match hostside::compute(&query, &path) {
        Ok(now) => {
            for (dir, spec) in before.map(|b| b.packages).unwrap_or_default() {
                if !now.contains(&dir) {
                    clean_package(instrument_dir, &spec, o);
                }
            }
            Some(path)
        }
        Err(e) => {
            eprintln!(
                "instgo: note: cannot tell which crates only build scripts and proc-macros \
                 link ({e:#}); instrumenting them too (the runtime stays off at build time)"
            );
            let _ = std::fs::remove_file(&path);
            None
        }
    }
}

/// Cargo knows nothing of rules, so when the rules for a crate change, its artifacts are
/// cleaned here and cargo rebuilds it (and what depends on it). A new runtime build
/// (toolchain, target, tool version) or a change to the tool's own sources invalidates
/// every instrumented artifact.
fn invalidate_changed(
    instrument_dir: &Path,
    rules: &RuleSet,
    runtime_key: &str,
    o: &Options,
) -> Result<()> {
    let mut per_crate: BTreeMap<String, String> = BTreeMap::new();
    for r in &rules.rules {
        let entry = per_crate.entry(r.krate.clone()).or_default();
        *entry = fingerprint::of(&[entry.as_bytes(), serde_json::to_string(r)?.as_bytes()]);
    }
    let state_path = instrument_dir.join("state.json");
    let state = serde_json::json!({
        "runtime": runtime_key,
        "tool": crate::embedded::TOOL_SOURCE,
        "crates": per_crate,
    });
    let previous: Option<serde_json::Value> = std::fs::read(&state_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let Some(previous) = previous else {
        std::fs::write(&state_path, serde_json::to_vec_pretty(&state)?)?;
        return Ok(());
    };
    if previous == state {
        return Ok(());
    }
    let old = previous["crates"].as_object().cloned().unwrap_or_default();
    let mut changed: Vec<String> = Vec::new();
    for (k, v) in &per_crate {
        if old.get(k).and_then(|x| x.as_str()) != Some(v.as_str()) {
            changed.push(k.clone());
        }
    }
    changed.extend(old.keys().filter(|k| !per_crate.contains_key(*k)).cloned());
    // A new runtime, or a changed rule over a glob of crates (cargo cannot clean a glob):
    // everything instrumented is rebuilt.
    let everything = previous["runtime"] != state["runtime"]
        || previous["tool"] != state["tool"]
        || changed.iter().any(|k| glob::is_pattern(k));
    if everything {
        for entry in std::fs::read_dir(instrument_dir)?.flatten() {
            let name = entry.file_name();
            let keep = ["runtime", "state.json", "rules.json"]
                .iter()
                .any(|k| name == *k);
            if !keep && entry.path().is_dir() {
                std::fs::remove_dir_all(entry.path())?;
            }
        }
    } else {
        for krate in changed {
            clean_package(instrument_dir, &krate, o);
        }
    }
    std::fs::write(&state_path, serde_json::to_vec_pretty(&state)?)?;
    Ok(())
}

fn clean_package(instrument_dir: &Path, krate: &str, o: &Options) {
    // `cargo clean -p` cleans one profile (and one target) at a time, and the rules'
    // state is shared by all of them: the release build's copy of a crate would otherwise
    // keep its old hooks after a debug build recorded the new rules.
    for outputs in built_outputs(instrument_dir) {
        // Rules name packages with - and _ alike; cargo wants the real spelling, so try both.
        for spelling in [krate.to_string(), krate.replace('_', "-")] {
            let mut c = Command::new(cargo());
            c.args(["clean", "--quiet", "-p", &spelling])
                .args(&outputs)
                .env("CARGO_TARGET_DIR", instrument_dir);
            if let Some(m) = o.cargo_opt("--manifest-path") {
                c.args(["--manifest-path", &m]);
            }
            let ok = c
                .stderr(std::process::Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                break;
            }
        }
    }
}

/// The `cargo clean` arguments naming each profile (and target) that has build output in
/// `dir`: a directory holding `.fingerprint` is a profile's, one level down a target's.
fn built_outputs(dir: &Path) -> Vec<Vec<String>> {
    fn profile(name: &str) -> Vec<String> {
        match name {
            "debug" => vec!["--profile".into(), "dev".into()],
            "release" => vec!["--release".into()],
            other => vec!["--profile".into(), other.into()],
        }
    }
    let subdirs = |d: &Path| -> Vec<(String, PathBuf)> {
        let Ok(entries) = std::fs::read_dir(d) else {
            return Vec::new();
        };
        let mut v: Vec<_> = entries
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .collect();
        v.sort();
        v
    };
    let mut out = Vec::new();
    for (name, path) in subdirs(dir) {
        if path.join(".fingerprint").is_dir() {
            out.push(profile(&name));
            continue;
        }
        for (inner, inner_path) in subdirs(&path) {
            if inner_path.join(".fingerprint").is_dir() {
                let mut args = profile(&inner);
                args.extend(["--target".to_string(), name.clone()]);
                out.push(args);
            }
        }
    }
    out
}

fn explain(o: &Options) -> Result<ExitCode> {
    let (code, prepared) = build_with("build", o)?;
    print!("{}", render_explain(&prepared.rules, &prepared.reports()));
    Ok(code)
}

pub fn render_explain(rules: &RuleSet, reports: &[CrateReport]) -> String {
    let mut out = String::new();
    for r in &rules.rules {
        out.push_str(&format!(
            "rule `{}` ({}) on crate `{}`:\n",
            r.name, r.origin, r.krate
        ));
        // A rule over a crate glob reaches many crates; only where it acted is news.
        let glob = glob::is_pattern(&r.krate);
        let mut seen = false;
        let mut quiet = 0;
        let mut host_only = 0;
        for rep in reports {
            let mut acted = false;
            for rr in rep.rules.iter().filter(|x| x.rule == r.name) {
                seen = true;
                acted |= !(glob
                    && matches!(
                        rr.outcome,
                        RuleOutcome::NothingSelected | RuleOutcome::HostOnly
                    ));
                let unit = format!(
                    "{}@{} ({})",
                    rep.package,
                    rep.version,
                    rep.crate_types.join(",")
                );
                match &rr.outcome {
                    RuleOutcome::Matched(sites) => {
                        out.push_str(&format!("  {unit}: {} site(s)\n", sites.len()));
                        for s in sites {
                            out.push_str(&format!("    {s}\n"));
                        }
                    }
                    RuleOutcome::VersionOutOfRange { found, wanted } => out.push_str(&format!(
                        "  {unit}: skipped, version {found} is outside {wanted}\n"
                    )),
                    RuleOutcome::HostOnly if glob => host_only += 1,
                    RuleOutcome::HostOnly => out.push_str(&format!(
                        "  {unit}: left alone, host-only: only build scripts and proc-macros link it\n"
                    )),
                    RuleOutcome::NothingSelected if glob => quiet += 1,
                    RuleOutcome::NothingSelected => {
                        out.push_str(&format!("  {unit}: the selectors matched no function\n"))
                    }
                }
            }
            if acted {
                // Skips and macro notes are about rewriting functions, not call sites.
                if r.instruments_functions() {
                    for s in &rep.skipped {
                        out.push_str(&format!("    skipped {s}\n"));
                    }
                    for n in &rep.notes {
                        out.push_str(&format!("    note: {n}\n"));
                    }
                }
                if let Some(f) = &rep.fell_back {
                    out.push_str(&format!(
                        "    FAILED to compile rewritten, built uninstrumented: {f}\n"
                    ));
                }
            }
        }
        if host_only > 0 {
            out.push_str(&format!(
                "  left alone in {host_only} host-only crate(s): only build scripts and proc-macros link them\n"
            ));
        }
        if quiet > 0 {
            out.push_str(&format!(
                "  nothing to do in {quiet} other crate(s) it reached\n"
            ));
        }
        if !seen {
            out.push_str("  crate absent from this build\n");
        }
    }
    if rules.rules.is_empty() {
        out.push_str(
            "no rules in force (no built-in catalog entries, no rules.toml, no --rules)\n",
        );
    }
    out
}

pub fn os_args_to_strings(args: Vec<OsString>) -> Vec<String> {
    args.into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_and_target_with_output_is_cleaned() {
        let dir = std::env::temp_dir().join(format!("instgo-outputs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for d in [
            "debug/.fingerprint",
            "release/.fingerprint",
            "profiling/.fingerprint",
            "x86_64-unknown-linux-musl/release/.fingerprint",
            "runtime/deps",
            "shadow/axum",
        ] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let got = built_outputs(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        let want: Vec<Vec<&str>> = vec![
            vec!["--profile", "dev"],
            vec!["--profile", "profiling"],
            vec!["--release"],
            vec!["--release", "--target", "x86_64-unknown-linux-musl"],
        ];
        assert_eq!(got, want);
    }
}
