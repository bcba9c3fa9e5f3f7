//! The shadow tree: a copy of a package's source tree in which only the rewritten files
//! are real and everything else is a symlink to the original.
//!
//! rustc resolves `mod`, `#[path]` and `include_str!`-style paths relative to the file
//! that contains them. Mirroring the tree from the package (or workspace) root keeps
//! every such relative path pointing where it did, without editing any of them.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Component, Path, PathBuf};

/// Builds (or rebuilds) the overlay at `shadow` mirroring `original`; `files` maps paths
/// relative to `original` to their rewritten text.
pub fn build(original: &Path, shadow: &Path, files: &BTreeMap<PathBuf, String>) -> io::Result<()> {
    // Start fresh: a file rewritten last time may not be now. remove_dir_all does not
    // follow symlinks, so the originals are never touched.
    if shadow.exists() {
        std::fs::remove_dir_all(shadow)?;
    }
    let mut real_dirs: BTreeSet<PathBuf> = BTreeSet::new();
    real_dirs.insert(PathBuf::new());
    for rel in files.keys() {
        debug_assert!(rel.components().all(|c| matches!(c, Component::Normal(_))));
        let mut dir = rel.parent();
        while let Some(d) = dir {
            real_dirs.insert(d.to_path_buf());
            dir = d.parent();
        }
    }
    for dir in &real_dirs {
        std::fs::create_dir_all(shadow.join(dir))?;
        for entry in std::fs::read_dir(original.join(dir))? {
            let entry = entry?;
            let rel = dir.join(entry.file_name());
            if real_dirs.contains(&rel) {
                continue;
            }
            let target = shadow.join(&rel);
            match files.get(&rel) {
                Some(text) => std::fs::write(&target, text)?,
                None => symlink(&original.join(&rel), &target)?,
            }
        }
    }
    Ok(())
}

#[cfg(unix)]
fn symlink(from: &Path, to: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(from, to)
}

#[cfg(windows)]
fn symlink(from: &Path, to: &Path) -> io::Result<()> {
    if from.is_dir() {
        std::os::windows::fs::symlink_dir(from, to)
    } else {
        std::os::windows::fs::symlink_file(from, to)
    }
}

/// `path` relative to `root`, when it is inside it (no `..` escapes).
pub fn relative_inside(root: &Path, path: &Path) -> Option<PathBuf> {
    let rel = path.strip_prefix(root).ok()?;
    rel.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| rel.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_keeps_relative_paths_working() {
        let base = std::env::temp_dir().join(format!("instgo-shadow-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let orig = base.join("orig");
        std::fs::create_dir_all(orig.join("src/api")).unwrap();
        std::fs::write(orig.join("README.md"), "readme").unwrap();
        std::fs::write(orig.join("src/lib.rs"), "original lib").unwrap();
        std::fs::write(orig.join("src/api/mod.rs"), "original api").unwrap();
        std::fs::write(orig.join("src/api/data.txt"), "data").unwrap();
        let shadow = base.join("shadow");
        let mut files = BTreeMap::new();
        files.insert(PathBuf::from("src/api/mod.rs"), "rewritten api".to_string());
        build(&orig, &shadow, &files).unwrap();
        let read = |p: &str| std::fs::read_to_string(shadow.join(p)).unwrap();
        assert_eq!(read("src/api/mod.rs"), "rewritten api");
        assert_eq!(read("src/lib.rs"), "original lib");
        assert_eq!(read("src/api/../../README.md"), "readme");
        assert_eq!(read("src/api/data.txt"), "data");
        assert!(std::fs::symlink_metadata(shadow.join("src/lib.rs"))
            .unwrap()
            .file_type()
            .is_symlink());
        // Rebuilding with fewer rewritten files leaves no stale copy behind.
        build(&orig, &shadow, &BTreeMap::new()).unwrap();
        assert_eq!(read("src/api/mod.rs"), "original api");
        assert_eq!(
            std::fs::read_to_string(orig.join("src/api/mod.rs")).unwrap(),
            "original api"
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
