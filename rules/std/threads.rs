// Called instead of `std::thread::spawn`: the thread starts in the spawner's context.
//
// `extern crate std` because the call site may be in a `#![no_std]` crate's test code
// (`#![cfg_attr(not(test), no_std)]`): the hook module is compiled either way, and std
// is there on every target that has threads. `::instgo_runtime` so that the file
// compiles in edition 2015 crates too.
extern crate std;

pub fn spawn<F, T>(f: F) -> self::std::thread::JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    self::std::thread::spawn(::instgo_runtime::carry::closure(f))
}

/// Wraps the closure handed to `Builder::spawn`, `Builder::spawn_scoped` and
/// `Scope::spawn`: it runs in the context of the code that started the thread.
pub fn carry<F, T>(f: F) -> impl FnOnce() -> T
where
    F: FnOnce() -> T,
{
    ::instgo_runtime::carry::closure(f)
}
