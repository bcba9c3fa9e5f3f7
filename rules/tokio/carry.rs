// A module of tokio itself: its spawn methods rebind their task to one that runs in the
// spawner's context (the caller's span stays the parent on any worker thread).

pub fn future<F: ::core::future::Future>(f: F) -> impl ::core::future::Future<Output = F::Output> {
    ::instgo_runtime::carry::future(f)
}

pub fn closure<R, F: FnOnce() -> R>(f: F) -> impl FnOnce() -> R {
    ::instgo_runtime::carry::closure(f)
}
