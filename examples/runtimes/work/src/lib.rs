//! Async work that awaits timers, yields, and spawns a task: the shapes whose spans must
//! nest whatever runtime drives them.

use std::time::Duration;

/// Two steps, one of them on a spawned task: returns `n + 2`.
pub async fn handle(n: u32) -> u32 {
    let a = step(n).await;
    tokio::task::yield_now().await;
    // The future is created here, so its span's parent is `handle` wherever it runs.
    match tokio::spawn(step(a)).await {
        Ok(b) => b,
        Err(_) => a,
    }
}

/// One timer wait.
pub async fn step(n: u32) -> u32 {
    tokio::time::sleep(Duration::from_millis(2)).await;
    n + 1
}

/// Synchronous work: a span of its own under its caller's.
pub fn crunch(n: u64) -> u64 {
    n * 10
}

/// A call too short to be worth a span, made very often: what floods the export queue.
pub fn tick(i: u64) -> u64 {
    i.wrapping_mul(31) ^ 7
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn handle_adds_two() {
        assert_eq!(handle(1).await, 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn handle_adds_two_on_workers() {
        assert_eq!(handle(40).await, 42);
    }
}
