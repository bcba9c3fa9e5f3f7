//! A program whose global allocator calls instrumented code (what the rewrite makes of an
//! allocator's helper functions). The runtime allocates, and takes locks, while it starts
//! and ends spans: the nested calls must get no span instead of recursing or deadlocking.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use instgo_runtime::__private::{enter, Kind, Site};

static SITE: Site = Site::new(
    "alloc-helper",
    "note",
    "allocator::note",
    "tests/allocator.rs",
    16,
    Kind::Internal,
);
static CALLS: AtomicUsize = AtomicUsize::new(0);

fn note() {
    let _cx = enter(&SITE);
    CALLS.fetch_add(1, Relaxed);
}

struct Noting;

unsafe impl GlobalAlloc for Noting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note();
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Noting = Noting;

#[test]
fn spans_reached_from_the_allocator_neither_recurse_nor_deadlock() {
    // The SDK starts at the first allocation, before this test runs, so it exports to the
    // default endpoint, where nothing listens here: the exit flush fails fast.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let v: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
        let _ = tx.send(v.len());
    });
    // A deadlock would hang here; a recursion would overflow the stack and abort.
    assert_eq!(rx.recv_timeout(Duration::from_secs(60)), Ok(1000));
    assert!(CALLS.load(Relaxed) >= 2000);
}
