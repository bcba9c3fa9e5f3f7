//! `cargo instrument vendor`: `cargo vendor` for the project and the runtime together.
//!
//! The runtime's manifest is written beside the other runtime sources and passed to
//! `cargo vendor --sync`, so the project's crates and the runtime's land in one directory
//! and a vendored, offline build finds both.
//!
//! `cargo vendor` takes the crates of every target platform (wasm-only ones such as
//! `bumpalo` included), which no build on this platform ever downloads. Offline it can only
//! copy what cargo's cache holds, and cargo stops at the first crate it cannot download. So
//! before an offline vendor, every registry crate of the lock files is looked up in the
//! cache, and the missing ones are named together with the commands that fetch them.
//!
//! The runtime's embedded lock file is this repository's, which holds the collector's and
//! the tests' crates too; `cargo update --workspace --offline` trims it to the runtime's
//! graph (for every platform) from cargo's index cache, changing no version, so the check
//! names only what `cargo vendor` would fetch.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context as _, Result};

use crate::runtime_build;

/// What the vendor step needs to know about the project and the invocation.
pub struct Request<'a> {
    /// `<target-dir>/instrument`.
    pub instrument_dir: &'a Path,
    /// The workspace root: its `Cargo.lock` is the project's.
    pub workspace_root: &'a Path,
    pub cwd: &'a Path,
    /// Arguments for `cargo vendor`, passed through as they are.
    pub args: &'a [String],
    /// `--manifest-path`s of `--sync`, whose lock files are vendored too.
    pub sync_manifests: Vec<PathBuf>,
    /// `--offline`, `--frozen`, `CARGO_NET_OFFLINE=true` or `--config net.offline=true`.
    pub offline: bool,
    /// `--respect-source-config`: crates come from the configured sources (perhaps an
    /// earlier vendor directory), not from cargo's cache, so the cache is not checked.
    pub respect_source_config: bool,
}

/// A crate that `cargo vendor` would have to download.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Missing {
    pub name: String,
    pub version: String,
}

pub fn run(req: &Request) -> Result<ExitCode> {
    let src = req.instrument_dir.join("runtime").join("vendor-src");
    runtime_build::write_sources(&src)?;
    let check = req.offline && !req.respect_source_config;
    if check {
        let missing = missing_from_cache(req, &src)?;
        if !missing.is_empty() {
            bail!("{}", explain_missing(&missing, req, &src));
        }
    }
    let cargo = crate::workspace::cargo();
    let status = Command::new(&cargo)
        .current_dir(req.cwd)
        .arg("vendor")
        .arg("--sync")
        .arg(src.join("Cargo.toml"))
        .args(req.args)
        .status()
        .with_context(|| format!("running {cargo} vendor"))?;
    Ok(crate::wrapper::exit_code(status))
}

/// The registry crates of the project's, the runtime's and the `--sync` manifests' lock
/// files that cargo's cache does not hold.
fn missing_from_cache(req: &Request, runtime_src: &Path) -> Result<Vec<Missing>> {
    let runtime_lock = trimmed_runtime_lock(runtime_src)?;
    let mut locks = vec![("the runtime's lock file".to_string(), runtime_lock)];
    let lock_paths = std::iter::once(req.workspace_root.join("Cargo.lock")).chain(
        req.sync_manifests
            .iter()
            .filter_map(|m| Some(req.cwd.join(m).parent()?.join("Cargo.lock"))),
    );
    for path in lock_paths {
        // A project without a lock file gets one from cargo, resolved from the cache.
        if let Ok(text) = std::fs::read_to_string(&path) {
            locks.push((path.display().to_string(), text));
        }
    }
    let caches = registry_caches();
    let mut missing = Vec::new();
    for (origin, text) in &locks {
        for m in registry_packages(text).with_context(|| format!("reading {origin}"))? {
            if !caches.iter().any(|c| is_cached(c, &m)) {
                missing.push(m);
            }
        }
    }
    missing.sort();
    missing.dedup();
    Ok(missing)
}

/// The runtime's lock file trimmed to its own graph, without the network.
///
/// Run from the temporary directory, not the project: cargo reads config files from the
/// working directory up (and from its home), and a project vendored before points
/// crates.io at its vendor directory, which lacks the runtime's crates. `cargo vendor`
/// ignores that replacement too.
fn trimmed_runtime_lock(src: &Path) -> Result<String> {
    let cargo = crate::workspace::cargo();
    let out = Command::new(&cargo)
        .current_dir(std::env::temp_dir())
        .args([
            "update",
            "--workspace",
            "--offline",
            "--quiet",
            "--manifest-path",
        ])
        .arg(src.join("Cargo.toml"))
        .output()
        .with_context(|| format!("running {cargo} update"))?;
    if !out.status.success() {
        bail!(
            "`cargo instrument vendor` is offline, and the runtime's dependencies cannot be \
             resolved from cargo's index cache ({cargo} update --workspace --offline \
             --manifest-path {}):\n{}\nWith network access, run `cargo instrument vendor` \
             without --offline / CARGO_NET_OFFLINE.",
            src.join("Cargo.toml").display(),
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    let path = src.join("Cargo.lock");
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// The packages of a `Cargo.lock` that come from a registry (crates.io, a mirror, an
/// alternative registry); path and git dependencies are not in the registry cache.
pub fn registry_packages(lock: &str) -> Result<Vec<Missing>> {
    let doc: toml::Table = toml::from_str(lock)?;
    let Some(packages) = doc.get("package").and_then(|p| p.as_array()) else {
        return Ok(Vec::new());
    };
    let field = |p: &toml::Value, k: &str| p.get(k)?.as_str().map(str::to_string);
    Ok(packages
        .iter()
        .filter(|p| {
            field(p, "source")
                .is_some_and(|s| s.starts_with("registry+") || s.starts_with("sparse+"))
        })
        .filter_map(|p| {
            Some(Missing {
                name: field(p, "name")?,
                version: field(p, "version")?,
            })
        })
        .collect())
}

/// Cargo's download cache: one folder per registry under `$CARGO_HOME/registry/cache`.
fn registry_caches() -> Vec<PathBuf> {
    let Some(home) = crate::workspace::cargo_home() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(home.join("registry").join("cache")) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect()
}

fn is_cached(cache: &Path, m: &Missing) -> bool {
    cache
        .join(format!("{}-{}.crate", m.name, m.version))
        .is_file()
}

/// The error for an offline vendor that cannot succeed: every missing crate, why they
/// are missing, and the two ways to get them.
fn explain_missing(missing: &[Missing], req: &Request, runtime_src: &Path) -> String {
    let cache = crate::workspace::cargo_home()
        .map(|h| h.join("registry").join("cache").display().to_string())
        .unwrap_or_else(|| "cargo's registry cache".into());
    let mut names = String::from("    ");
    let mut line = 0;
    for (i, m) in missing.iter().enumerate() {
        let item = format!("{} {}", m.name, m.version);
        if i > 0 {
            if line + 2 + item.len() > 88 {
                names.push_str(",\n    ");
                line = 0;
            } else {
                names.push_str(", ");
                line += 2;
            }
        }
        names.push_str(&item);
        line += item.len();
    }
    let in_project = if req.cwd == req.workspace_root {
        String::new()
    } else {
        format!(" (in {})", req.workspace_root.display())
    };
    format!(
        "`cargo instrument vendor` is offline, and {n} crate{s} it must vendor {are} not in \
         cargo's cache ({cache}):\n{names}\n\
         `cargo vendor` copies the crates of every target platform, which a build for this \
         one never downloads. With network access, either run `cargo instrument vendor` \
         without --offline / CARGO_NET_OFFLINE, or fill the cache first with\n    \
         cargo fetch{in_project}\n    cargo fetch --manifest-path {manifest}\n\
         and vendor offline again.",
        n = missing.len(),
        s = if missing.len() == 1 { "" } else { "s" },
        are = if missing.len() == 1 { "is" } else { "are" },
        manifest = runtime_src.join("Cargo.toml").display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"
version = 4

[[package]]
name = "app"
version = "0.1.0"
dependencies = ["itoa", "greeter"]

[[package]]
name = "itoa"
version = "1.0.18"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "00"

[[package]]
name = "bumpalo"
version = "3.20.3"
source = "sparse+https://mirror.example/index/"

[[package]]
name = "greeter"
version = "0.3.0"
source = "git+file:///tmp/greeter#abc"
"#;

    fn m(name: &str, version: &str) -> Missing {
        Missing {
            name: name.into(),
            version: version.into(),
        }
    }

    #[test]
    fn registry_packages_leave_out_path_and_git() {
        assert_eq!(
            registry_packages(LOCK).unwrap(),
            [m("itoa", "1.0.18"), m("bumpalo", "3.20.3")]
        );
        assert!(registry_packages("version = 4\n").unwrap().is_empty());
        let err = registry_packages("[[package]\n").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn cached_is_per_name_and_version() {
        let dir = std::env::temp_dir().join(format!("instgo-vendor-{}", std::process::id()));
        let cache = dir.join("index.crates.io-1949cf8c6b5b557f");
        std::fs::create_dir_all(&cache).unwrap();
        std::fs::write(cache.join("itoa-1.0.18.crate"), b"").unwrap();
        assert!(is_cached(&cache, &m("itoa", "1.0.18")));
        assert!(!is_cached(&cache, &m("itoa", "1.0.17")));
        assert!(!is_cached(&cache, &m("bumpalo", "3.20.3")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_error_names_every_crate_and_both_fetches() {
        let missing: Vec<_> = (0..30).map(|i| m(&format!("crate{i}"), "1.0.0")).collect();
        let req = Request {
            instrument_dir: Path::new("/p/target/instrument"),
            workspace_root: Path::new("/p"),
            cwd: Path::new("/p/sub"),
            args: &[],
            sync_manifests: Vec::new(),
            offline: true,
            respect_source_config: false,
        };
        let text = explain_missing(
            &missing,
            &req,
            Path::new("/p/target/instrument/runtime/vendor-src"),
        );
        for c in &missing {
            assert!(text.contains(&format!("{} 1.0.0", c.name)), "{text}");
        }
        assert!(text.contains("30 crates"), "{text}");
        assert!(text.contains("cargo fetch (in /p)"), "{text}");
        assert!(
            text.contains(
                "cargo fetch --manifest-path /p/target/instrument/runtime/vendor-src/Cargo.toml"
            ),
            "{text}"
        );
        assert!(
            text.lines()
                .all(|l| l.len() <= 100 || !l.starts_with("    ")),
            "{text}"
        );
    }
}
