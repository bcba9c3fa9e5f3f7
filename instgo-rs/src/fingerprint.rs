//! Stable 64-bit hashes (FNV-1a) for cache keys that must not change between tool builds
//! the way `std`'s hasher may, and file stamps that tell whether a file changed without
//! reading it.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn add(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        // A separator, so ("ab","c") and ("a","bc") differ.
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        self
    }

    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

pub fn of(parts: &[&[u8]]) -> String {
    let mut h = Fnv::default();
    for p in parts {
        h.add(p);
    }
    h.hex()
}

/// A file as it was when an answer that depends on it was cached: `None` if absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub path: PathBuf,
    state: Option<(u128, u64, u64)>,
}

impl Stamp {
    pub fn of(path: PathBuf) -> Stamp {
        let state = std::fs::metadata(&path).ok().map(|m| {
            let mtime = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            (mtime, m.len(), inode(&m))
        });
        Stamp { path, state }
    }

    /// Whether the file is (still) as stamped.
    pub fn holds(&self) -> bool {
        *self == Stamp::of(self.path.clone())
    }
}

/// An answer derived from `files`, kept in `cache` for as long as each of them is as it
/// was when the answer was computed. Best effort: a cache that cannot be read or written
/// only means computing again.
pub fn remembered<T, E>(
    cache: &Path,
    files: Vec<PathBuf>,
    compute: impl FnOnce() -> Result<T, E>,
) -> Result<T, E>
where
    T: Serialize + DeserializeOwned,
{
    let cached: Option<(Vec<Stamp>, T)> = std::fs::read(cache)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if let Some((stamps, answer)) = cached {
        if stamps.iter().map(|s| &s.path).eq(files.iter()) && stamps.iter().all(Stamp::holds) {
            return Ok(answer);
        }
    }
    // Stamped before computing: a file that changes meanwhile makes the next run ask again.
    let stamps: Vec<Stamp> = files.into_iter().map(Stamp::of).collect();
    let answer = compute()?;
    if let Ok(bytes) = serde_json::to_vec(&(&stamps, &answer)) {
        if let Some(dir) = cache.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let tmp = cache.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, bytes).is_ok() {
            let _ = std::fs::rename(&tmp, cache);
        }
    }
    Ok(answer)
}

#[cfg(unix)]
fn inode(m: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(m)
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> u64 {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writing_appearing_and_vanishing_break_a_stamp() {
        let dir = std::env::temp_dir().join(format!("instgo-stamp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("Cargo.toml");
        let absent = Stamp::of(f.clone());
        assert!(absent.holds());
        std::fs::write(&f, "[package]\n").unwrap();
        assert!(!absent.holds());
        let first = Stamp::of(f.clone());
        assert!(first.holds());
        std::fs::write(&f, "[workspace]\nmembers = []\n").unwrap();
        assert!(!first.holds());
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(!first.holds());
    }
}
