//! Numbered segment files (`00000001.wal`, `00000002.jsonl`, …): how the forward queue
//! (`wal`) and the viewer's storage (`persist`) name, list and start their files.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

pub fn path(dir: &Path, n: u64, suffix: &str) -> PathBuf {
    dir.join(format!("{n:08}{suffix}"))
}

/// The segments in `dir` with their sizes, oldest (lowest number) first.
pub fn list(dir: &Path, suffix: &str) -> std::io::Result<Vec<(u64, u64)>> {
    let mut out: Vec<(u64, u64)> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e
                .file_name()
                .into_string()
                .ok()?
                .strip_suffix(suffix)?
                .parse()
                .ok()?;
            Some((n, e.metadata().ok()?.len()))
        })
        .collect();
    out.sort_unstable();
    Ok(out)
}

/// Opens segment `n` for appending, creating it.
pub fn append(dir: &Path, n: u64, suffix: &str) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path(dir, n, suffix))
}
