//! Tokio tasks started inside `main`'s span through the runtime's methods rather than
//! `tokio::spawn`: `Runtime::spawn`, `Handle::spawn`/`spawn_blocking`, `JoinSet`'s spawns,
//! `LocalSet::spawn_local`. The catalog's tokio rules rewrite those methods inside tokio,
//! so the work (`crunch`, one span each) continues `main`'s trace on any thread.

use carriers::crunch;
use tokio::task::LocalSet;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut total = rt.block_on(rt.spawn(async { crunch(1) })).unwrap();
    let handle = rt.handle().clone();
    total += rt.block_on(async {
        let mut n = handle.spawn(async { crunch(2) }).await.unwrap();
        n += handle.spawn_blocking(|| crunch(3)).await.unwrap();
        n += tokio::task::spawn_blocking(|| crunch(4)).await.unwrap();
        #[cfg(feature = "joinset")]
        {
            let mut set = tokio::task::JoinSet::new();
            set.spawn(async { crunch(5) });
            set.spawn_blocking(|| crunch(6));
            while let Some(r) = set.join_next().await {
                n += r.unwrap();
            }
        }
        let local = LocalSet::new();
        let task = local.spawn_local(async { crunch(7) });
        n + local.run_until(task).await.unwrap()
    });
    println!("tasks: {total}");
}
