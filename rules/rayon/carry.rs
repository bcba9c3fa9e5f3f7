// A module of rayon-core itself: its entry points rebind the work they are handed to
// work that runs in the caller's context, on whichever pool thread takes it.

pub fn closure<R, F: FnOnce() -> R>(f: F) -> impl FnOnce() -> R {
    ::instgo_runtime::carry::closure(f)
}

pub fn with_fn_context<R, F>(f: F) -> impl FnOnce(crate::FnContext) -> R
where
    F: FnOnce(crate::FnContext) -> R,
{
    let cx = ::instgo_runtime::carry::capture();
    move |c: crate::FnContext| {
        let _attached = cx.attach();
        f(c)
    }
}

pub fn with_scope<'scope, R, F>(f: F) -> impl FnOnce(&crate::Scope<'scope>) -> R
where
    F: FnOnce(&crate::Scope<'scope>) -> R,
{
    let cx = ::instgo_runtime::carry::capture();
    move |s: &crate::Scope<'scope>| {
        let _attached = cx.attach();
        f(s)
    }
}

pub fn with_scope_fifo<'scope, R, F>(f: F) -> impl FnOnce(&crate::ScopeFifo<'scope>) -> R
where
    F: FnOnce(&crate::ScopeFifo<'scope>) -> R,
{
    let cx = ::instgo_runtime::carry::capture();
    move |s: &crate::ScopeFifo<'scope>| {
        let _attached = cx.attach();
        f(s)
    }
}
