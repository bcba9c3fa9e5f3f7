//! Threads: `std::thread::spawn`, `rayon::join` and `rayon::spawn` started inside `main`'s
//! span; the catalog's std and rayon rules carry that context to the work they run.

use std::thread;

fn main() {
    let a = thread::spawn(|| rt_work::crunch(1)).join().unwrap();
    let (b, c) = rayon::join(|| rt_work::crunch(2), || rt_work::crunch(3));
    let (tx, rx) = std::sync::mpsc::channel();
    rayon::spawn(move || tx.send(rt_work::crunch(4)).unwrap());
    let d = rx.recv().unwrap();
    // Started with a Builder (a method call): beyond wrap_call, so no context.
    let e = thread::Builder::new()
        .spawn(|| rt_work::crunch(5))
        .unwrap()
        .join()
        .unwrap();
    println!("threads: {}", a + b + c + d + e);
}
