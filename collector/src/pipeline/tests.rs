use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use super::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

/// Counts batches; sleeps on each when slow.
struct Counting {
    seen: Arc<AtomicUsize>,
    delay: Duration,
}

impl Exporter for Counting {
    fn name(&self) -> String {
        format!("counting({:?})", self.delay)
    }

    fn export(&mut self, _: &Payload) -> Result<(), String> {
        std::thread::sleep(self.delay);
        self.seen.fetch_add(1, Relaxed);
        Ok(())
    }
}

fn batch(i: u8) -> Payload {
    Payload::Traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![i; 16],
                    span_id: vec![1; 8],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_exporter_holds_up_neither_the_others_nor_the_receivers() {
    let (fast, slow) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let limits = Limits {
        batch_size: 1, // every request is a batch of its own
        queue_size: 2,
        ..Limits::default()
    };
    let all = vec![Signal::Traces];
    let pipeline = Pipeline::start(
        limits,
        vec![
            (
                Box::new(Counting {
                    seen: fast.clone(),
                    delay: Duration::ZERO,
                }),
                all.clone(),
            ),
            (
                Box::new(Counting {
                    seen: slow.clone(),
                    delay: Duration::from_secs(3600),
                }),
                all,
            ),
        ],
        None,
    );
    let start = Instant::now();
    for i in 0..50 {
        pipeline.accept(batch(i)).unwrap();
        // The next request once the fast exporter has this one: with a queue of two, a
        // fixed spacing let a starved fast exporter drop one on a loaded machine (it got
        // 49 of 50 in a CI run), which is not what this test is about.
        let deadline = Instant::now() + Duration::from_secs(30);
        while fast.load(Relaxed) < i as usize + 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    // Accepting never waited for the slow exporter (an hour per batch).
    assert!(start.elapsed() < Duration::from_secs(600));
    assert_eq!(fast.load(Relaxed), 50, "the fast exporter got every batch");
    let slow_stats = &pipeline.stats[1];
    // The slow one holds one batch, queues two, and the rest were dropped for it alone.
    assert!(slow_stats.dropped.load(Relaxed) >= 45, "{:?}", slow_stats);
    assert_eq!(pipeline.stats[0].dropped.load(Relaxed), 0);
}
