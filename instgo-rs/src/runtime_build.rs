//! Building the runtime crate once per toolchain, target and flags, outside the user's
//! dependency graph.
//!
//! The runtime's sources and lock file are embedded in the tool. They are written to
//! `<target-dir>/instrument/runtime/<key>/` and built there with their own `Cargo.lock`,
//! so the application's `Cargo.toml` and `Cargo.lock` are never read or changed for it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::embedded;
use crate::fingerprint;

/// Where the built runtime is: what rewritten crates get with `--extern` and `-L`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Runtime {
    pub key: String,
    pub rlib: PathBuf,
    pub deps_dir: PathBuf,
    /// Built for a `--target`: where its proc-macro dependencies are (cargo puts host
    /// artifacts beside, not under, the target's folder). Worked out, never stored, so a
    /// `runtime.json` written before it existed still serves.
    #[serde(skip)]
    pub host_deps_dir: Option<PathBuf>,
}

impl Runtime {
    /// Every folder a crate that links the runtime must search (`-L dependency=`).
    pub fn search_dirs(&self) -> Vec<&Path> {
        std::iter::once(self.deps_dir.as_path())
            .chain(self.host_deps_dir.as_deref())
            .collect()
    }
}

pub struct Toolchain {
    /// `rustc -vV` as the user's build would see it (rustup overrides included).
    pub version: String,
    pub target: Option<String>,
    pub rustflags: String,
}

impl Toolchain {
    /// `rustc -vV` costs 10–20 ms (more through the rustup proxy), as much as a no-op
    /// build; when the real compiler binary is known, its answer is kept in `cache_dir`
    /// for as long as that binary is unchanged.
    pub fn detect(cwd: &Path, target: Option<String>, cache_dir: &Path) -> Result<Toolchain> {
        let rustflags = std::env::var("CARGO_ENCODED_RUSTFLAGS")
            .or_else(|_| std::env::var("RUSTFLAGS"))
            .unwrap_or_default();
        let version = match real_rustc() {
            Some(p) => fingerprint::remembered(
                &cache_dir.join("rustc-version.json"),
                vec![p.clone()],
                || rustc_version(p.as_os_str(), cwd),
            )?,
            None => rustc_version(
                &std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()),
                cwd,
            )?,
        };
        Ok(Toolchain {
            version,
            target,
            rustflags,
        })
    }

    /// The triple of the machine building (`host:` in `rustc -vV`).
    pub fn host(&self) -> Option<&str> {
        self.version
            .lines()
            .find_map(|l| l.strip_prefix("host: "))
            .map(str::trim)
    }

    fn key(&self) -> String {
        let mut h = fingerprint::Fnv::default();
        for (name, text) in embedded::RUNTIME_FILES {
            h.add(name.as_bytes()).add(text.as_bytes());
        }
        h.add(embedded::RUNTIME_LOCK.as_bytes())
            .add(self.version.as_bytes())
            .add(self.target.as_deref().unwrap_or("host").as_bytes())
            .add(self.rustflags.as_bytes());
        h.hex()
    }
}

fn rustc_version(rustc: &std::ffi::OsStr, cwd: &Path) -> Result<String> {
    let shown = rustc.to_string_lossy();
    let out = Command::new(rustc)
        .arg("-vV")
        .current_dir(cwd)
        .output()
        .with_context(|| format!("running `{shown} -vV`"))?;
    if !out.status.success() {
        bail!(
            "`{shown} -vV` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The compiler binary the user's build runs, when it can be known without running
/// anything: `RUSTC` naming a file, or the toolchain rustup's proxy chose for this
/// `cargo instrument` (rustup exports `RUSTUP_HOME` and `RUSTUP_TOOLCHAIN` to cargo's
/// subcommands).
fn real_rustc() -> Option<PathBuf> {
    if let Some(r) = std::env::var_os("RUSTC") {
        let p = PathBuf::from(r);
        return (p.components().count() > 1 && p.is_file()).then_some(p);
    }
    let home = PathBuf::from(std::env::var_os("RUSTUP_HOME")?);
    let toolchain = std::env::var_os("RUSTUP_TOOLCHAIN")?;
    let p = home
        .join("toolchains")
        .join(toolchain)
        .join("bin")
        .join(format!("rustc{}", std::env::consts::EXE_SUFFIX));
    p.is_file().then_some(p)
}

/// Writes the runtime's sources, manifest and lock file into `src`.
pub(crate) fn write_sources(src: &Path) -> Result<()> {
    for (name, text) in embedded::RUNTIME_FILES {
        let path = src.join(name);
        std::fs::create_dir_all(path.parent().unwrap())?;
        let text = if *name == "Cargo.toml" {
            standalone_manifest(text)
        } else {
            text.to_string()
        };
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    std::fs::write(src.join("Cargo.lock"), embedded::RUNTIME_LOCK)?;
    Ok(())
}

/// The runtime's manifest as the tool builds it: never part of whatever workspace the
/// target dir sits in, and without its dev-dependencies (only its tests use them, and a
/// vendored or offline build would otherwise need them at hand).
fn standalone_manifest(text: &str) -> String {
    let mut out = String::new();
    let mut dev = false;
    for line in text.lines() {
        if line.starts_with('[') {
            dev = line.trim() == "[dev-dependencies]";
        }
        if !dev {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str("\n[workspace]\n");
    out
}

fn host_deps_dir(dir: &Path, tc: &Toolchain) -> Option<PathBuf> {
    tc.target
        .as_ref()
        .map(|_| dir.join("target").join("release").join("deps"))
}

/// Builds the runtime unless this exact build is there already.
pub fn ensure(instrument_dir: &Path, cwd: &Path, tc: &Toolchain, offline: bool) -> Result<Runtime> {
    let key = tc.key();
    let dir = instrument_dir.join("runtime").join(&key);
    let done = dir.join("runtime.json");
    if let Ok(text) = std::fs::read_to_string(&done) {
        if let Ok(rt) = serde_json::from_str::<Runtime>(&text) {
            if rt.rlib.is_file() {
                return Ok(Runtime {
                    host_deps_dir: host_deps_dir(&dir, tc),
                    ..rt
                });
            }
        }
    }
    let src = dir.join("src");
    write_sources(&src)?;

    let target_name = tc.target.as_deref().unwrap_or("the host");
    eprintln!("instgo: building the instrumentation runtime for {target_name} (once per toolchain, target and RUSTFLAGS)...");
    let cargo = crate::workspace::cargo();
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(cwd)
        .args([
            "build",
            "--release",
            "--message-format=json-render-diagnostics",
            "--quiet",
        ])
        .arg("--manifest-path")
        .arg(src.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(dir.join("target"))
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        // Always optimized (it runs on every instrumented call) and never LTO'd or
        // stripped by the user's profile settings, which are not ours to inherit.
        .env("CARGO_PROFILE_RELEASE_LTO", "off")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "line-tables-only")
        .env("CARGO_PROFILE_RELEASE_PANIC", "unwind")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(t) = &tc.target {
        cmd.args(["--target", t]);
    }
    if offline {
        cmd.arg("--offline");
    }
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("INSTGO_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .output()
        .with_context(|| format!("running {cargo} to build the runtime"))?;
    if !out.status.success() {
        bail!(
            "building the instgo runtime failed (sources in {}); with --offline, the runtime's \
             dependencies must already be in cargo's cache, and with vendored sources in the \
             vendor directory (`cargo instrument vendor` puts them there)",
            src.display()
        );
    }
    let rlib = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "instgo_runtime")
        .flat_map(|m| m["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .find(|f| f.extension().is_some_and(|e| e == "rlib"))
        .context("the runtime build produced no rlib")?;
    // Cargo reports the uplifted copy; the runtime's own dependencies sit in `deps/`.
    let deps_dir = rlib.parent().context("rlib without a folder")?.join("deps");
    let rt = Runtime {
        key,
        rlib,
        deps_dir,
        host_deps_dir: host_deps_dir(&dir, tc),
    };
    std::fs::write(&done, serde_json::to_string_pretty(&rt)?)?;
    Ok(rt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_manifest_has_no_dev_dependencies() {
        let m = standalone_manifest(
            "[package]\nname = \"x\"\n[dependencies]\na = \"1\"\n[dev-dependencies]\nb = \"1\"\n[features]\nf = []\n",
        );
        assert_eq!(
            m,
            "[package]\nname = \"x\"\n[dependencies]\na = \"1\"\n[features]\nf = []\n\n[workspace]\n"
        );
    }
}
