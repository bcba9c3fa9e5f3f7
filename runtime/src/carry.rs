//! Carrying the current context into work that runs later or elsewhere: spawned tasks,
//! threads, callbacks. Hook code of the spawn rules calls this; applications may too.

use opentelemetry::{Context, ContextGuard};

use crate::call::Instrumented;

/// The context that was current when [`capture`] ran.
#[derive(Clone)]
pub struct Captured(Context);

/// Captures the current context (span and baggage) of this thread.
pub fn capture() -> Captured {
    Captured(crate::call::current_context().unwrap_or_default())
}

/// Keeps a captured context current on this thread until dropped.
pub struct Attached(#[allow(dead_code)] ContextGuard);

impl Captured {
    /// Makes the captured context current on this thread until the guard drops.
    pub fn attach(self) -> Attached {
        Attached(self.0.attach())
    }

    /// A future that runs with the captured context current on every poll.
    pub fn future<F: std::future::Future>(self, fut: F) -> Instrumented<F> {
        Instrumented::new(fut, Some(self.0))
    }

    /// A closure that runs with the captured context current.
    pub fn closure<R, F: FnOnce() -> R>(self, f: F) -> impl FnOnce() -> R {
        move || {
            let _attached = self.attach();
            f()
        }
    }
}

/// `fut`, running with the context current now (for spawning it elsewhere).
pub fn future<F: std::future::Future>(fut: F) -> Instrumented<F> {
    capture().future(fut)
}

/// `f`, running with the context current now (for running it on another thread).
pub fn closure<R, F: FnOnce() -> R>(f: F) -> impl FnOnce() -> R {
    capture().closure(f)
}
