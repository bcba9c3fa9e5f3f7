//! Threads and pools started inside `main`'s span, every way the catalog's std and rayon
//! rules reach: the work they run (`crunch`, one span each) continues `main`'s trace.

use std::sync::mpsc;
use std::thread;

use carriers::crunch;
use rayon::prelude::*;

fn main() {
    let mut total = thread::spawn(|| crunch(1)).join().unwrap();
    total += thread::Builder::new()
        .name("builder".into())
        .spawn(|| crunch(2))
        .unwrap()
        .join()
        .unwrap();
    thread::scope(|s| {
        let h = s.spawn(|| crunch(3));
        total += h.join().unwrap();
    });
    total += thread::scope(|s| {
        thread::Builder::new()
            .spawn_scoped(s, || crunch(4))
            .unwrap()
            .join()
            .unwrap()
    });
    let (a, b) = rayon::join(|| crunch(5), || crunch(6));
    total += a + b;
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    rayon::spawn(move || tx.send(crunch(7)).unwrap());
    rayon::scope(|s| s.spawn(move |_| tx2.send(crunch(8)).unwrap()));
    total += rx.iter().take(2).sum::<u64>();
    total += (9..11u64).into_par_iter().map(crunch).sum::<u64>();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    total += pool.install(|| crunch(11));
    // A Builder kept in a variable: its `spawn` is a method call on a value the syntax no
    // longer ties to `Builder::new`, so this thread starts with no context.
    let kept = thread::Builder::new();
    total += kept.spawn(|| crunch(12)).unwrap().join().unwrap();
    println!("threads: {total}");
}
