//! The viewer's traces on disk, so they survive a restart: spans appended as JSON lines
//! to numbered segment files, the oldest segments deleted while the directory is over
//! its size bound. At start the segments are read back, oldest first, into the store
//! (whose own bound keeps the newest traces).
//!
//! One collector per directory: a `lock` file holds the owner's pid, and a second
//! collector is refused while that process lives.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::store::{SpanRow, Store};

pub struct Persist {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    writer: Mutex<Writer>,
}

struct Writer {
    segment: u64,
    out: BufWriter<File>,
    size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("{dir}: another collector (pid {pid}) keeps its traces here; give this one another --storage")]
    Taken { dir: String, pid: u32 },
    #[error("{dir}: {source}")]
    Io { dir: String, source: std::io::Error },
}

const SUFFIX: &str = ".jsonl";

fn segments(dir: &Path) -> std::io::Result<Vec<(u64, u64)>> {
    crate::segments::list(dir, SUFFIX)
}

fn segment_path(dir: &Path, n: u64) -> PathBuf {
    crate::segments::path(dir, n, SUFFIX)
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

impl Persist {
    /// Opens (or creates) `dir`, bounded to `max_bytes`, and loads what it holds into
    /// `store` (`None` when the store has it already: a config reload).
    pub fn open(
        dir: &Path,
        max_bytes: u64,
        store: Option<&Store>,
    ) -> Result<Persist, PersistError> {
        let io = |source| PersistError::Io {
            dir: dir.display().to_string(),
            source,
        };
        fs::create_dir_all(dir).map_err(io)?;
        let dir = &fs::canonicalize(dir).map_err(io)?;
        // Within this process the pid in `lock` is ours: remember open directories here.
        if !OPEN
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(dir.clone())
        {
            return Err(PersistError::Taken {
                dir: dir.display().to_string(),
                pid: std::process::id(),
            });
        }
        let lock = dir.join("lock");
        if let Some(pid) = fs::read_to_string(&lock)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
        {
            if pid != std::process::id() && alive(pid) {
                OPEN.lock().unwrap_or_else(|e| e.into_inner()).remove(dir);
                return Err(PersistError::Taken {
                    dir: dir.display().to_string(),
                    pid,
                });
            }
        }
        fs::write(&lock, std::process::id().to_string()).map_err(io)?;

        let existing = segments(dir).map_err(io)?;
        if let Some(store) = store {
            for (n, _) in &existing {
                load(&segment_path(dir, *n), store);
            }
        }
        let next = existing.last().map_or(1, |(n, _)| n + 1);
        let p = Persist {
            dir: dir.to_path_buf(),
            max_bytes: max_bytes.max(1024 * 1024),
            segment_bytes: (max_bytes / 8).max(256 * 1024),
            writer: Mutex::new(Writer::create(dir, next).map_err(io)?),
        };
        p.trim().map_err(io)?;
        Ok(p)
    }

    /// Appends spans; rolls to a new segment and trims old ones when due.
    pub fn append(&self, spans: &[SpanRow]) -> std::io::Result<()> {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        for s in spans {
            let mut line = serde_json::to_vec(s).map_err(std::io::Error::other)?;
            line.push(b'\n');
            w.out.write_all(&line)?;
            w.size += line.len() as u64;
        }
        w.out.flush()?;
        if w.size >= self.segment_bytes {
            *w = Writer::create(&self.dir, w.segment + 1)?;
            drop(w);
            self.trim()?;
        }
        Ok(())
    }

    /// Deletes the oldest segments while the directory is over its bound (the one being
    /// written stays).
    fn trim(&self) -> std::io::Result<()> {
        let current = self
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .segment;
        let all = segments(&self.dir)?;
        let mut total: u64 = all.iter().map(|(_, len)| len).sum();
        for (n, len) in all {
            if total <= self.max_bytes || n == current {
                break;
            }
            fs::remove_file(segment_path(&self.dir, n))?;
            total -= len;
        }
        Ok(())
    }
}

static OPEN: Mutex<std::collections::BTreeSet<PathBuf>> =
    Mutex::new(std::collections::BTreeSet::new());

impl Drop for Persist {
    fn drop(&mut self) {
        let _ = fs::remove_file(self.dir.join("lock"));
        OPEN.lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.dir);
    }
}

/// Reads one segment into the store; a line that does not parse (the torn end of a
/// segment a crash cut short) is skipped.
fn load(path: &Path, store: &Store) {
    let Ok(f) = File::open(path) else { return };
    let mut batch = Vec::new();
    for line in BufReader::new(f).lines() {
        let Ok(line) = line else { break };
        if let Ok(span) = serde_json::from_str::<SpanRow>(&line) {
            batch.push(span);
        }
        if batch.len() >= 4096 {
            store.insert(std::mem::take(&mut batch));
        }
    }
    store.insert(batch);
}

impl Writer {
    fn create(dir: &Path, segment: u64) -> std::io::Result<Writer> {
        let file = crate::segments::append(dir, segment, SUFFIX)?;
        Ok(Writer {
            segment,
            out: BufWriter::new(file),
            size: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(trace: &str, name: &str) -> SpanRow {
        SpanRow {
            trace_id: trace.into(),
            span_id: name.into(),
            parent_id: String::new(),
            name: name.into(),
            service: "svc".into(),
            kind: 2,
            start_ns: 1,
            end_ns: 2,
            status_code: 0,
            status_message: String::new(),
            attributes: vec![("k".into(), "x".repeat(200))],
            resource: vec![],
            events: vec![],
            links: vec![],
        }
    }

    #[test]
    fn traces_come_back_after_a_restart_and_the_size_bound_holds() {
        let dir = std::env::temp_dir().join(format!("instgo-persist-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        {
            let store = Store::new(100);
            let p = Persist::open(&dir, 1024 * 1024, Some(&store)).unwrap();
            p.append(&[span("t1", "a"), span("t1", "b"), span("t2", "c")])
                .unwrap();
            // A second collector on the same directory is refused while this one runs.
            let e = Persist::open(&dir, 1024 * 1024, Some(&Store::new(1)))
                .err()
                .unwrap();
            assert!(matches!(e, PersistError::Taken { .. }), "{e}");
        }
        let store = Store::new(100);
        let p = Persist::open(&dir, 1024 * 1024, Some(&store)).unwrap();
        assert_eq!(store.trace("t1").unwrap().len(), 2);
        assert_eq!(store.trace("t2").unwrap().len(), 1);

        // Far past the bound: old segments go, the directory stays near it.
        for i in 0..20_000 {
            p.append(&[span(&format!("x{i}"), "s")]).unwrap();
        }
        let total: u64 = segments(&dir).unwrap().iter().map(|(_, l)| l).sum();
        assert!(total <= 1024 * 1024 + 256 * 1024, "{total} bytes kept");
        drop(p);
        let store = Store::new(100_000);
        let _p = Persist::open(&dir, 1024 * 1024, Some(&store)).unwrap();
        assert!(
            store.trace("t1").is_none(),
            "the oldest traces were trimmed"
        );
        assert!(store.trace("x19999").is_some());
        let _ = fs::remove_dir_all(&dir);
    }
}
