//! Receivers → memory limiter → batch → exporters, in the OpenTelemetry Collector's shape.
//!
//! Receivers hand each decoded request to [`Pipeline::accept`]. The memory limiter refuses
//! it (a retryable status for the sender) while the bytes held anywhere in the pipeline
//! are over the limit. Accepted requests are batched per signal (up to a number of items
//! or a timeout), then each batch goes to every exporter through that exporter's own
//! bounded queue: a full queue drops the batch for that exporter only (counted, one
//! warning), so a slow exporter never holds up another or the receivers.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::signal::{Payload, Signal};

/// Something that sends batches somewhere. Runs on a thread of its own, so it may block.
pub trait Exporter: Send + 'static {
    /// For messages: `file(/tmp/traces.jsonl)`, `debug`, `otlp(http://…)`.
    fn name(&self) -> String;
    /// Exports one batch; an error is reported (once per run of failures) and the batch
    /// counted as failed.
    fn export(&mut self, batch: &Payload) -> Result<(), String>;
    /// Called when the collector stops: write out what is buffered.
    fn flush(&mut self) {}
}

#[derive(Debug, Clone)]
pub struct Limits {
    /// Bytes (protobuf size) held in the pipeline above which requests are refused.
    pub memory_limit: usize,
    /// Items (spans, points, records) per batch.
    pub batch_size: usize,
    /// How long a batch waits for more items.
    pub batch_timeout: Duration,
    /// Batches waiting per exporter.
    pub queue_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_limit: 256 * 1024 * 1024,
            batch_size: 8192,
            batch_timeout: Duration::from_millis(200),
            queue_size: 64,
        }
    }
}

/// Counters of one exporter.
#[derive(Debug, Default)]
pub struct ExporterStats {
    pub name: String,
    pub exported: AtomicU64,
    pub failed: AtomicU64,
    /// Batches dropped because this exporter's queue was full.
    pub dropped: AtomicU64,
    warned: AtomicBool,
}

/// Why a request was not taken; both are worth retrying later.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("the collector holds {held} bytes, over its memory limit of {limit}; retry later")]
    Memory { held: usize, limit: usize },
    #[error("the forward queue on disk cannot take it ({0}); retry later")]
    Disk(std::io::Error),
}

/// A batch and the bytes it holds against the memory limit until the last exporter is
/// done with it.
struct Held {
    payload: Payload,
    size: usize,
    in_flight: Arc<AtomicUsize>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(self.size, Relaxed);
    }
}

pub struct Pipeline {
    limits: Limits,
    in_flight: Arc<AtomicUsize>,
    to_batcher: mpsc::UnboundedSender<Held>,
    pub stats: Vec<Arc<ExporterStats>>,
    /// Requests refused by the memory limiter.
    pub refused: AtomicU64,
    /// Requests accepted, per signal (traces, metrics, logs).
    accepted: [AtomicU64; 3],
    threads: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// The forward exporter's on-disk queue: a request is appended (and synced) there
    /// before it is acknowledged.
    durable: Option<(Arc<crate::wal::Wal>, Vec<Signal>)>,
}

impl Pipeline {
    /// Starts the batcher (on the current tokio runtime) and one thread per exporter.
    /// Each exporter comes with the signals it takes; `durable` is the forward queue on
    /// disk and the signals it takes.
    pub fn start(
        limits: Limits,
        exporters: Vec<(Box<dyn Exporter>, Vec<Signal>)>,
        durable: Option<(Arc<crate::wal::Wal>, Vec<Signal>)>,
    ) -> Arc<Pipeline> {
        let mut queues = Vec::new();
        let mut stats = Vec::new();
        let mut threads = Vec::new();
        for (mut exporter, signals) in exporters {
            let (tx, mut rx) = mpsc::channel::<Arc<Held>>(limits.queue_size.max(1));
            let st = Arc::new(ExporterStats {
                name: exporter.name(),
                ..Default::default()
            });
            let s = st.clone();
            let thread = std::thread::Builder::new()
                .name(format!("export {}", s.name))
                .spawn(move || {
                    while let Some(batch) = rx.blocking_recv() {
                        match exporter.export(&batch.payload) {
                            Ok(()) => {
                                s.exported.fetch_add(1, Relaxed);
                                s.warned.store(false, Relaxed);
                            }
                            Err(e) => {
                                s.failed.fetch_add(1, Relaxed);
                                if !s.warned.swap(true, Relaxed) {
                                    eprintln!("collector: exporter {} failed: {e}", s.name);
                                }
                            }
                        }
                    }
                    exporter.flush();
                })
                .expect("spawning an exporter thread");
            threads.push(thread);
            queues.push((tx, st.clone(), signals));
            stats.push(st);
        }
        let (to_batcher, rx) = mpsc::unbounded_channel();
        tokio::spawn(batcher(rx, queues, limits.clone()));
        Arc::new(Pipeline {
            limits,
            in_flight: Arc::new(AtomicUsize::new(0)),
            to_batcher,
            stats,
            refused: AtomicU64::new(0),
            accepted: Default::default(),
            threads: std::sync::Mutex::new(threads),
            durable,
        })
    }

    /// Takes a request in, or refuses it when the pipeline holds too much.
    pub fn accept(&self, payload: Payload) -> Result<(), Refused> {
        let size = payload.size();
        let held = self.in_flight.load(Relaxed);
        if held + size > self.limits.memory_limit {
            self.refused.fetch_add(1, Relaxed);
            return Err(Refused::Memory {
                held,
                limit: self.limits.memory_limit,
            });
        }
        if let Some((wal, signals)) = &self.durable {
            let stored = if signals.contains(&payload.signal()) {
                wal.append(payload.signal(), &payload.to_protobuf())
            } else {
                Ok(())
            };
            if let Err(e) = stored {
                self.refused.fetch_add(1, Relaxed);
                return Err(Refused::Disk(e));
            }
        }
        self.in_flight.fetch_add(size, Relaxed);
        self.accepted[signal_index(payload.signal())].fetch_add(1, Relaxed);
        let held = Held {
            payload,
            size,
            in_flight: self.in_flight.clone(),
        };
        // The batcher lives as long as the pipeline; if it is gone, `held` is dropped.
        let _ = self.to_batcher.send(held);
        Ok(())
    }

    /// Requests of `signal` accepted so far.
    pub fn accepted(&self, signal: Signal) -> u64 {
        self.accepted[signal_index(signal)].load(Relaxed)
    }

    /// Stops taking requests, sends what is batched, and waits for every exporter to
    /// finish its queue and flush.
    pub fn shutdown(self: Arc<Self>) {
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        // Dropping the last sender ends the batcher, which drops the exporters' queues.
        drop(self);
        for t in threads {
            let _ = t.join();
        }
    }
}

fn signal_index(s: Signal) -> usize {
    match s {
        Signal::Traces => 0,
        Signal::Metrics => 1,
        Signal::Logs => 2,
    }
}

type Queue = (mpsc::Sender<Arc<Held>>, Arc<ExporterStats>, Vec<Signal>);

async fn batcher(mut rx: mpsc::UnboundedReceiver<Held>, queues: Vec<Queue>, limits: Limits) {
    let signals = [Signal::Traces, Signal::Metrics, Signal::Logs];
    let mut pending: Vec<(Vec<Held>, usize)> = signals.iter().map(|_| (Vec::new(), 0)).collect();
    let mut tick = tokio::time::interval(limits.batch_timeout);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            got = rx.recv() => match got {
                Some(held) => {
                    let i = signals.iter().position(|s| *s == held.payload.signal()).unwrap_or(0);
                    pending[i].1 += held.payload.items();
                    pending[i].0.push(held);
                    if pending[i].1 >= limits.batch_size {
                        send(std::mem::take(&mut pending[i].0), &queues);
                        pending[i].1 = 0;
                    }
                }
                None => break,
            },
            _ = tick.tick() => {
                for p in pending.iter_mut() {
                    if !p.0.is_empty() {
                        send(std::mem::take(&mut p.0), &queues);
                        p.1 = 0;
                    }
                }
            }
        }
    }
    for p in pending {
        if !p.0.is_empty() {
            send(p.0, &queues);
        }
    }
}

/// Merges held requests into one batch and offers it to every exporter's queue.
fn send(batch: Vec<Held>, queues: &[Queue]) {
    let size = batch.iter().map(|h| h.size).sum();
    let in_flight = batch[0].in_flight.clone();
    // The merged batch takes over the parts' accounting: count it before they let go.
    in_flight.fetch_add(size, Relaxed);
    let payloads: Vec<Payload> = batch
        .into_iter()
        .map(|mut h| std::mem::replace(&mut h.payload, Payload::Logs(Default::default())))
        .collect();
    let Some(payload) = Payload::merge(payloads) else {
        in_flight.fetch_sub(size, Relaxed);
        return;
    };
    let held = Arc::new(Held {
        payload,
        size,
        in_flight,
    });
    let signal = held.payload.signal();
    for (tx, stats, signals) in queues {
        if !signals.contains(&signal) {
            continue;
        }
        if tx.try_send(held.clone()).is_err() {
            stats.dropped.fetch_add(1, Relaxed);
            if !stats.warned.swap(true, Relaxed) {
                eprintln!(
                    "collector: exporter {} is behind (queue full): batches are dropped for it",
                    stats.name
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
