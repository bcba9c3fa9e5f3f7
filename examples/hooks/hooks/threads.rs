// Called instead of `std::thread::spawn` at every call site in the crate: the new thread
// starts inside the caller's context.
pub fn spawn<F, T>(f: F) -> std::thread::JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    std::thread::spawn(instgo_runtime::carry::closure(f))
}
