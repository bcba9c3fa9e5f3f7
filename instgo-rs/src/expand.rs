//! `cargo instrument expand -p PACKAGE`: the rewritten sources as a diff.
//!
//! Rewrites never add or remove lines, so the diff is line against line.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};

use crate::driver::{self, Options};
use crate::report::CrateReport;
use crate::rule::normalize_crate;

pub fn run(o: &Options) -> Result<ExitCode> {
    let package = o
        .cargo_opt("-p")
        .or_else(|| o.cargo_opt("--package"))
        .context("`cargo instrument expand` needs -p PACKAGE")?;
    let (code, prepared) = driver::build_with("build", o)?;
    let wanted = normalize_crate(&package);
    let reports: Vec<CrateReport> = prepared
        .reports()
        .into_iter()
        .filter(|r| normalize_crate(&r.package) == wanted)
        .collect();
    let shadows: Vec<(&str, &str)> = reports
        .iter()
        .filter_map(|r| Some((r.shadow.as_deref()?, r.source_root.as_deref()?)))
        .collect();
    if shadows.is_empty() {
        bail!(
            "package `{package}` was not rewritten in this build (see `cargo instrument explain`)"
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    for (shadow, source_root) in shadows {
        for (orig, new) in rewritten_files(Path::new(shadow), Path::new(source_root))? {
            if seen.insert(orig.clone()) {
                print!(
                    "{}",
                    line_diff(
                        &orig,
                        &std::fs::read_to_string(&orig).unwrap_or_default(),
                        &new
                    )
                );
            }
        }
    }
    Ok(code)
}

/// (original path, rewritten text) for every real file in a shadow tree of `source_root`.
fn rewritten_files(shadow: &Path, source_root: &Path) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut stack = vec![shadow.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)?.flatten() {
            let ft = e.file_type()?;
            if ft.is_symlink() {
                continue;
            }
            if ft.is_dir() {
                stack.push(e.path());
            } else {
                let rel = e.path().strip_prefix(shadow)?.to_path_buf();
                let text = std::fs::read_to_string(e.path())?;
                out.push((source_root.join(rel).display().to_string(), text));
            }
        }
    }
    out.sort();
    Ok(out)
}

pub fn line_diff(path: &str, old: &str, new: &str) -> String {
    let mut out = format!("--- {path}\n+++ {path} (instrumented)\n");
    for (i, (a, b)) in old.lines().zip(new.lines()).enumerate() {
        if a != b {
            out.push_str(&format!("@@ line {} @@\n-{a}\n+{b}\n", i + 1));
        }
    }
    out
}
