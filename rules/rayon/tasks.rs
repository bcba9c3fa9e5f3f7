// Called instead of rayon's `spawn`, `spawn_fifo` and `join`: the closures run in the
// caller's context on whichever pool thread takes them.

pub fn spawn<F>(f: F)
where
    F: FnOnce() + Send + 'static,
{
    rayon::spawn(::instgo_runtime::carry::closure(f))
}

pub fn spawn_fifo<F>(f: F)
where
    F: FnOnce() + Send + 'static,
{
    rayon::spawn_fifo(::instgo_runtime::carry::closure(f))
}

pub fn join<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    let cx = ::instgo_runtime::carry::capture();
    rayon::join(cx.clone().closure(a), cx.closure(b))
}
