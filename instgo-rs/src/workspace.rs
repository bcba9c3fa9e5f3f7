//! Where the workspace is and where its artifacts go.
//!
//! `cargo metadata` is the authority, but it costs a cargo start-up (~20 ms), which is as
//! much as a whole no-op `cargo build`. Its answer depends only on the manifests and cargo
//! config files from the starting directory up to `/`, cargo's home config, a few
//! environment variables and `--config` arguments, so it is remembered per starting point
//! and asked again as soon as any of those files changes (mtime, size or inode), appears
//! or disappears.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::fingerprint::{self, Fnv};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    pub root: PathBuf,
    /// Cargo's target directory, before any `--target-dir` of this invocation.
    pub target_dir: PathBuf,
}

/// What the user passed that changes cargo's answer.
#[derive(Debug, Default)]
pub struct Query {
    pub manifest_path: Option<String>,
    /// Values of `--config`, in order.
    pub config: Vec<String>,
}

/// The files whose contents decide the workspace root and target directory: the
/// manifests and cargo configs from `start` up, and cargo's home config.
pub(crate) fn deciding_files(start: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in start.ancestors() {
        files.push(dir.join("Cargo.toml"));
        files.push(dir.join(".cargo").join("config"));
        files.push(dir.join(".cargo").join("config.toml"));
    }
    if let Some(home) = cargo_home() {
        files.push(home.join("config"));
        files.push(home.join("config.toml"));
    }
    files
}

/// `$CARGO_HOME`, or `~/.cargo`.
pub(crate) fn cargo_home() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
}

/// Per-user cache folder of the tool; `None` leaves every answer uncached.
fn cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("instgo-rs"))
}

pub fn locate(q: &Query) -> Result<Workspace> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let start = match &q.manifest_path {
        Some(m) => cwd
            .join(m)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| cwd.clone()),
        None => cwd.clone(),
    };
    let mut key = Fnv::default();
    key.add(env!("CARGO_PKG_VERSION").as_bytes())
        .add(cwd.as_os_str().as_encoded_bytes())
        .add(q.manifest_path.as_deref().unwrap_or("").as_bytes());
    for c in &q.config {
        key.add(c.as_bytes());
    }
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_HOME",
        "HOME",
    ] {
        key.add(std::env::var_os(var).unwrap_or_default().as_encoded_bytes());
    }
    match cache_dir() {
        Some(dir) => {
            let entry = dir.join("workspaces").join(format!("{}.json", key.hex()));
            fingerprint::remembered(&entry, deciding_files(&start), || ask_cargo(q))
        }
        None => ask_cargo(q),
    }
}

/// The cargo this `cargo instrument` runs under (cargo sets `CARGO` for its subcommands).
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn ask_cargo(q: &Query) -> Result<Workspace> {
    let mut cmd = Command::new(cargo());
    cmd.args(["metadata", "--no-deps", "--format-version", "1"]);
    if let Some(m) = &q.manifest_path {
        cmd.args(["--manifest-path", m]);
    }
    for c in &q.config {
        cmd.args(["--config", c]);
    }
    let out = cmd.output().context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("reading cargo metadata")?;
    let path = |k: &str| -> Result<PathBuf> {
        Ok(PathBuf::from(
            v[k].as_str()
                .with_context(|| format!("cargo metadata gave no {k}"))?,
        ))
    };
    Ok(Workspace {
        root: path("workspace_root")?,
        target_dir: path("target_directory")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ancestor_manifest_and_config_decides() {
        let files = deciding_files(Path::new("/a/b"));
        for p in [
            "/a/b/Cargo.toml",
            "/a/Cargo.toml",
            "/Cargo.toml",
            "/a/.cargo/config.toml",
            "/.cargo/config",
        ] {
            assert!(files.contains(&PathBuf::from(p)), "{p} missing");
        }
    }
}
