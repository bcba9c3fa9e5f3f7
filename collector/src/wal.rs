//! The forward exporter's on-disk queue: every accepted request is appended and synced
//! before the receiver answers, so what the collector acknowledged survives `kill -9`.
//!
//! Records go to numbered segment files (`00000001.wal`, …) as
//! `[len: u32 LE][hash: u64 LE][signal: u8][protobuf…]`. The writer starts a new segment
//! at every start (a crash may leave a torn record at the end of the last one, which was
//! never acknowledged) and when a segment passes [`SEGMENT_BYTES`]. The reader's position
//! is kept in `position` (written to a temporary file, synced, renamed); segments behind
//! it are deleted.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::signal::Signal;

pub const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;
const HEADER: usize = 13;

/// Where the reader is: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

pub struct Wal {
    dir: PathBuf,
    writer: Mutex<Writer>,
    appended: Condvar,
}

struct Writer {
    segment: u64,
    file: File,
    size: u64,
}

const SUFFIX: &str = ".wal";

fn segment_path(dir: &Path, n: u64) -> PathBuf {
    crate::segments::path(dir, n, SUFFIX)
}

fn segments(dir: &Path) -> std::io::Result<Vec<u64>> {
    Ok(crate::segments::list(dir, SUFFIX)?
        .into_iter()
        .map(|(n, _)| n)
        .collect())
}

/// FNV-1a: enough to tell a torn or corrupted record from a whole one.
fn hash(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn signal_byte(s: Signal) -> u8 {
    match s {
        Signal::Traces => 0,
        Signal::Metrics => 1,
        Signal::Logs => 2,
    }
}

fn byte_signal(b: u8) -> Option<Signal> {
    Some(match b {
        0 => Signal::Traces,
        1 => Signal::Metrics,
        2 => Signal::Logs,
        _ => return None,
    })
}

impl Wal {
    pub fn open(dir: &Path) -> std::io::Result<Wal> {
        fs::create_dir_all(dir)?;
        let next = segments(dir)?.last().map_or(1, |n| n + 1);
        Ok(Wal {
            dir: dir.to_path_buf(),
            writer: Mutex::new(Writer::create(dir, next)?),
            appended: Condvar::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one request and syncs it to disk before returning.
    pub fn append(&self, signal: Signal, protobuf: &[u8]) -> std::io::Result<()> {
        let len = u32::try_from(protobuf.len())
            .map_err(|_| std::io::Error::other("request over 4 GiB"))?;
        let mut record = Vec::with_capacity(HEADER + protobuf.len());
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(&hash(protobuf).to_le_bytes());
        record.push(signal_byte(signal));
        record.extend_from_slice(protobuf);
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if w.size > 0 && w.size + record.len() as u64 > SEGMENT_BYTES {
            *w = Writer::create(&self.dir, w.segment + 1)?;
        }
        w.file.write_all(&record)?;
        w.file.sync_data()?;
        w.size += record.len() as u64;
        drop(w);
        self.appended.notify_all();
        Ok(())
    }

    /// The reader's saved position (the start of the oldest segment if none was saved).
    pub fn position(&self) -> std::io::Result<Position> {
        let saved = fs::read_to_string(self.dir.join("position"))
            .ok()
            .and_then(|t| {
                let (s, o) = t.trim().split_once(' ')?;
                Some(Position {
                    segment: s.parse().ok()?,
                    offset: o.parse().ok()?,
                })
            });
        Ok(match saved {
            Some(p) => p,
            None => Position {
                segment: segments(&self.dir)?.first().copied().unwrap_or(1),
                offset: 0,
            },
        })
    }

    /// Saves the reader's position (everything before it was delivered) and deletes the
    /// segments wholly behind it.
    pub fn commit(&self, p: Position) -> std::io::Result<()> {
        let tmp = self.dir.join("position.tmp");
        let mut f = File::create(&tmp)?;
        write!(f, "{} {}", p.segment, p.offset)?;
        f.sync_all()?;
        fs::rename(&tmp, self.dir.join("position"))?;
        for s in segments(&self.dir)? {
            if s < p.segment {
                let _ = fs::remove_file(segment_path(&self.dir, s));
            }
        }
        Ok(())
    }

    /// The next record at or after `p`, waiting up to `wait` for one to be appended.
    /// Returns the record and the position after it. A torn or corrupted record ends its
    /// segment: reading goes on with the next one.
    pub fn next(&self, mut p: Position, wait: Duration) -> Option<(Signal, Vec<u8>, Position)> {
        loop {
            match self.read_at(p) {
                Read_::Record(signal, data, after) => return Some((signal, data, after)),
                Read_::EndOfSegment => {
                    let writing = self
                        .writer
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .segment;
                    if p.segment < writing {
                        p = Position {
                            segment: p.segment + 1,
                            offset: 0,
                        };
                        continue;
                    }
                    let w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
                    let (_w, timeout) = self
                        .appended
                        .wait_timeout(w, wait)
                        .unwrap_or_else(|e| e.into_inner());
                    if timeout.timed_out() {
                        return None;
                    }
                }
            }
        }
    }

    fn read_at(&self, p: Position) -> Read_ {
        let Ok(mut f) = File::open(segment_path(&self.dir, p.segment)) else {
            return Read_::EndOfSegment;
        };
        if f.seek(SeekFrom::Start(p.offset)).is_err() {
            return Read_::EndOfSegment;
        }
        let mut head = [0u8; HEADER];
        if f.read_exact(&mut head).is_err() {
            return Read_::EndOfSegment;
        }
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let want = u64::from_le_bytes(head[4..12].try_into().unwrap_or([0; 8]));
        let Some(signal) = byte_signal(head[12]) else {
            return Read_::EndOfSegment;
        };
        let mut data = vec![0u8; len];
        if f.read_exact(&mut data).is_err() || hash(&data) != want {
            return Read_::EndOfSegment;
        }
        Read_::Record(
            signal,
            data,
            Position {
                segment: p.segment,
                offset: p.offset + (HEADER + len) as u64,
            },
        )
    }
}

enum Read_ {
    Record(Signal, Vec<u8>, Position),
    EndOfSegment,
}

impl Writer {
    fn create(dir: &Path, segment: u64) -> std::io::Result<Writer> {
        let file = crate::segments::append(dir, segment, SUFFIX)?;
        // The new file's name must survive a crash too.
        File::open(dir)?.sync_all()?;
        Ok(Writer {
            segment,
            file,
            size: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("instgo-wal-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn records_survive_reopening_and_commits_resume() {
        let d = dir("reopen");
        let wal = Wal::open(&d).unwrap();
        for i in 0..3u8 {
            wal.append(Signal::Traces, &[i; 10]).unwrap();
        }
        let p = wal.position().unwrap();
        let (_, first, after) = wal.next(p, Duration::ZERO).unwrap();
        assert_eq!(first, [0; 10]);
        wal.commit(after).unwrap();
        drop(wal);

        // Reopened (as after kill -9): a new segment for new writes, reading resumes.
        let wal = Wal::open(&d).unwrap();
        wal.append(Signal::Metrics, b"later").unwrap();
        let mut p = wal.position().unwrap();
        let mut got = Vec::new();
        while let Some((s, data, next)) = wal.next(p, Duration::from_millis(10)) {
            got.push((s, data));
            p = next;
        }
        assert_eq!(
            got,
            [
                (Signal::Traces, vec![1; 10]),
                (Signal::Traces, vec![2; 10]),
                (Signal::Metrics, b"later".to_vec())
            ]
        );
        wal.commit(p).unwrap();
        assert_eq!(
            segments(&d).unwrap(),
            [2],
            "the first segment was delivered"
        );
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_torn_tail_is_skipped() {
        let d = dir("torn");
        let wal = Wal::open(&d).unwrap();
        wal.append(Signal::Traces, b"whole").unwrap();
        drop(wal);
        // A crash in the middle of a write: half a header at the end of segment 1.
        let mut f = OpenOptions::new()
            .append(true)
            .open(segment_path(&d, 1))
            .unwrap();
        f.write_all(&[9, 0, 0]).unwrap();
        let wal = Wal::open(&d).unwrap();
        wal.append(Signal::Logs, b"after").unwrap();
        let p = wal.position().unwrap();
        let (_, a, p) = wal.next(p, Duration::ZERO).unwrap();
        let (s, b, _) = wal.next(p, Duration::ZERO).unwrap();
        assert_eq!(
            (a.as_slice(), s, b.as_slice()),
            (&b"whole"[..], Signal::Logs, &b"after"[..])
        );
        let _ = fs::remove_dir_all(&d);
    }
}
