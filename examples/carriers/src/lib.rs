//! The work the binaries hand to tasks, threads and pools.

/// Work done elsewhere (a task, a thread, a pool): one span each, which must nest under
/// the span of the code that started it.
pub fn crunch(n: u64) -> u64 {
    n * 10
}
