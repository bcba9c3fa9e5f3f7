//! Crates that run at build time: what build scripts and proc-macros link.
//!
//! Build scripts and proc-macros run on the build machine while the application is
//! compiled (a proc-macro inside rustc itself); spans made there go nowhere. The tool
//! treats what they link as follows (ARCHITECTURE.md, invariants):
//!
//! * **Cross builds** (`--target`): cargo compiles host units without `--target` and
//!   target units with it, never one unit for both. Host units are never instrumented
//!   (the runtime is built for the target) and get nothing added.
//! * **Native builds**: cargo compiles a package once when the application and a build
//!   script or proc-macro want it with the same features and profile, and links that one
//!   copy into both, so a unit's command line cannot say where it ends up. A package the
//!   application can reach is instrumented as the rules say; build-script and proc-macro
//!   compiles get the runtime's `-L` so they can link it, and the runtime stays switched
//!   off in a build-time process (`runtime/src/build_time.rs`). A package that only
//!   build scripts and proc-macros reach is *host-only* and left alone: instrumenting it
//!   would cost build time, and slow every macro expansion, for spans nobody sees.
//!
//! Host-only packages come from `cargo metadata`'s resolve, with every feature on and
//! filtered to the platform being built: the packages that the workspace members' own
//! targets (normal and dev dependencies, transitively) do not reach without passing
//! through a build dependency or a proc-macro. Every feature on and every member's
//! dev-dependencies make the reachable set larger than any one build's, so the mistake
//! this can make is instrumenting a crate that ends up host-only, never leaving out one the
//! application links.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::fingerprint::{Fnv, Stamp};

/// The host-only packages of a build: package root (`CARGO_MANIFEST_DIR`) → `name@version`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostOnly {
    pub packages: BTreeMap<String, String>,
}

impl HostOnly {
    pub fn contains(&self, manifest_dir: &str) -> bool {
        self.packages.contains_key(manifest_dir)
    }

    /// The set [`compute`] last kept in `cache`; `None` when there is none to read.
    pub fn read(cache: &Path) -> Option<HostOnly> {
        let cached: Cached = serde_json::from_slice(&std::fs::read(cache).ok()?).ok()?;
        Some(cached.host_only)
    }

    /// The host-only packages of a `cargo metadata --format-version 1` answer.
    pub fn from_metadata(meta: &serde_json::Value) -> Result<HostOnly> {
        let packages = meta["packages"]
            .as_array()
            .context("cargo metadata: no `packages`")?;
        let mut dir_of = BTreeMap::new();
        let mut proc_macros = BTreeSet::new();
        for p in packages {
            let id = p["id"]
                .as_str()
                .context("cargo metadata: package without id")?;
            let manifest = p["manifest_path"].as_str().unwrap_or_default();
            let dir = Path::new(manifest).parent().unwrap_or(Path::new(""));
            let spec = format!(
                "{}@{}",
                p["name"].as_str().unwrap_or_default(),
                p["version"].as_str().unwrap_or_default()
            );
            dir_of.insert(id, (dir.display().to_string(), spec));
            let kinds = p["targets"].as_array().into_iter().flatten();
            if kinds
                .flat_map(|t| t["kind"].as_array().into_iter().flatten())
                .any(|k| k == "proc-macro")
            {
                proc_macros.insert(id);
            }
        }
        let nodes = meta["resolve"]["nodes"]
            .as_array()
            .context("cargo metadata: no `resolve` (run without --no-deps)")?;
        // Edges a target unit follows: normal dependencies, and dev ones from members.
        let mut edges: BTreeMap<&str, Vec<(&str, bool, bool)>> = BTreeMap::new();
        for n in nodes {
            let id = n["id"].as_str().unwrap_or_default();
            let deps = n["deps"].as_array().into_iter().flatten().map(|d| {
                let kinds: Vec<&serde_json::Value> =
                    d["dep_kinds"].as_array().into_iter().flatten().collect();
                let normal = kinds.iter().any(|k| k["kind"].is_null());
                let dev = kinds.iter().any(|k| k["kind"] == "dev");
                (d["pkg"].as_str().unwrap_or_default(), normal, dev)
            });
            edges.insert(id, deps.collect());
        }
        let members: BTreeSet<&str> = meta["workspace_members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m.as_str())
            .collect();
        let mut reached: BTreeSet<&str> = BTreeSet::new();
        let mut stack: Vec<&str> = members
            .iter()
            .copied()
            .filter(|m| !proc_macros.contains(m))
            .collect();
        while let Some(id) = stack.pop() {
            if !reached.insert(id) {
                continue;
            }
            for &(dep, normal, dev) in edges.get(id).into_iter().flatten() {
                let followed = normal || (dev && members.contains(id));
                if followed && !proc_macros.contains(dep) && !reached.contains(dep) {
                    stack.push(dep);
                }
            }
        }
        let packages = edges
            .keys()
            .filter(|id| !reached.contains(*id))
            .filter_map(|id| dir_of.get(id).cloned())
            .collect();
        Ok(HostOnly { packages })
    }
}

/// What the host-only set of a build depends on.
pub struct Query<'a> {
    pub cwd: &'a Path,
    /// The triple being built: `--target`, else the host's.
    pub platform: &'a str,
    pub manifest_path: Option<&'a str>,
    /// `--config` values, in order.
    pub config: &'a [String],
    pub offline: bool,
    /// The workspace's `Cargo.lock`, and the cargo config files that could change it.
    pub deciding_files: Vec<PathBuf>,
}

#[derive(Serialize, Deserialize)]
struct Cached {
    key: String,
    stamps: Vec<Stamp>,
    host_only: HostOnly,
}

/// The host-only packages, kept in `cache` for as long as the lock file, the local
/// packages' manifests and the cargo configs are unchanged (`cargo metadata` costs as
/// much as a resolve).
pub fn compute(q: &Query, cache: &Path) -> Result<HostOnly> {
    let mut key = Fnv::default();
    key.add(q.platform.as_bytes())
        .add(q.cwd.as_os_str().as_encoded_bytes())
        .add(q.manifest_path.unwrap_or("").as_bytes());
    for c in q.config {
        key.add(c.as_bytes());
    }
    let key = key.hex();
    if let Some(c) = std::fs::read(cache)
        .ok()
        .and_then(|b| serde_json::from_slice::<Cached>(&b).ok())
    {
        if c.key == key && c.stamps.iter().all(Stamp::holds) {
            return Ok(c.host_only);
        }
    }
    let mut stamps: Vec<Stamp> = q.deciding_files.iter().cloned().map(Stamp::of).collect();
    let meta = metadata(q)?;
    // Local packages' manifests decide the graph too (a path dependency added).
    for p in meta["packages"].as_array().into_iter().flatten() {
        if p["source"].is_null() {
            if let Some(m) = p["manifest_path"].as_str() {
                stamps.push(Stamp::of(PathBuf::from(m)));
            }
        }
    }
    let host_only = HostOnly::from_metadata(&meta)?;
    let cached = Cached {
        key,
        stamps,
        host_only,
    };
    if let Ok(bytes) = serde_json::to_vec(&cached) {
        let tmp = cache.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, bytes).is_ok() {
            let _ = std::fs::rename(&tmp, cache);
        }
    }
    Ok(cached.host_only)
}

fn metadata(q: &Query) -> Result<serde_json::Value> {
    let cargo = crate::workspace::cargo();
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(q.cwd)
        .args(["metadata", "--format-version", "1", "--all-features"])
        .args(["--filter-platform", q.platform]);
    if let Some(m) = q.manifest_path {
        cmd.args(["--manifest-path", m]);
    }
    for c in q.config {
        cmd.args(["--config", c]);
    }
    if q.offline {
        cmd.arg("--offline");
    }
    let out = cmd
        .output()
        .with_context(|| format!("running {cargo} metadata"))?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    serde_json::from_slice(&out.stdout).context("reading cargo metadata's answer")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pkg(id: &str, kind: &str) -> serde_json::Value {
        json!({"id": id, "name": id, "version": "1.0.0",
               "manifest_path": format!("/src/{id}/Cargo.toml"), "source": null,
               "targets": [{"kind": [kind]}]})
    }

    fn dep(id: &str, kind: Option<&str>) -> serde_json::Value {
        json!({"pkg": id, "dep_kinds": [{"kind": kind, "target": null}]})
    }

    /// app → (normal) shared, (build) shared + cc → jobserver, (normal) macros
    /// (proc-macro) → shared + syn; app's dev-dependency tester; tester's own dev
    /// dependency is never built.
    fn graph() -> serde_json::Value {
        json!({
            "packages": [pkg("app", "bin"), pkg("shared", "lib"), pkg("cc", "lib"),
                         pkg("jobserver", "lib"), pkg("macros", "proc-macro"),
                         pkg("syn", "lib"), pkg("tester", "lib"), pkg("deep", "lib")],
            "workspace_members": ["app"],
            "resolve": {"nodes": [
                {"id": "app", "deps": [dep("shared", None), dep("shared", Some("build")),
                                       dep("cc", Some("build")), dep("macros", None),
                                       dep("tester", Some("dev"))]},
                {"id": "shared", "deps": []},
                {"id": "cc", "deps": [dep("jobserver", None)]},
                {"id": "jobserver", "deps": []},
                {"id": "macros", "deps": [dep("shared", None), dep("syn", None)]},
                {"id": "syn", "deps": []},
                {"id": "tester", "deps": [dep("deep", Some("dev"))]},
                {"id": "deep", "deps": []}
            ]}
        })
    }

    #[test]
    fn host_only_is_what_only_build_scripts_and_proc_macros_reach() {
        let h = HostOnly::from_metadata(&graph()).unwrap();
        let specs: Vec<&str> = h.packages.values().map(String::as_str).collect();
        assert_eq!(
            specs,
            [
                "cc@1.0.0",
                "deep@1.0.0",
                "jobserver@1.0.0",
                "macros@1.0.0",
                "syn@1.0.0"
            ]
        );
        assert!(h.contains("/src/cc") && h.contains("/src/syn"));
        assert!(!h.contains("/src/shared") && !h.contains("/src/tester"));
    }

    #[test]
    fn a_metadata_answer_without_a_resolve_is_an_error() {
        let err = HostOnly::from_metadata(&json!({"packages": []})).unwrap_err();
        assert!(err.to_string().contains("resolve"), "{err}");
    }
}
