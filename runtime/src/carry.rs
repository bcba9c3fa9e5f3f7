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
pub struct Attached(#[allow(dead_code)] Option<ContextGuard>);

impl Captured {
    /// Makes the captured context current on this thread until the guard drops. An empty
    /// one (captured outside any span, without baggage) is attached only over a context
    /// that is not empty, which it then hides.
    pub fn attach(self) -> Attached {
        if crate::call::is_empty(&self.0) && crate::call::current_is_empty() {
            return Attached(None);
        }
        Attached(Some(self.0.attach()))
    }

    /// A future that runs with the captured context current on every poll (an empty one
    /// as `attach` says).
    pub fn future<F: std::future::Future>(self, fut: F) -> Instrumented<F> {
        Instrumented::carried(fut, self.0)
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

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use std::future::Future;
    use std::task::Poll;

    fn in_a_span() -> Context {
        Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from_bytes([1; 16]),
            SpanId::from_bytes([2; 8]),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        ))
    }

    fn span_seen_by(fut: Instrumented<impl Future<Output = bool>>) -> bool {
        let mut fut = std::pin::pin!(fut);
        let mut task = std::task::Context::from_waker(std::task::Waker::noop());
        match fut.as_mut().poll(&mut task) {
            Poll::Ready(seen) => seen,
            Poll::Pending => unreachable!("ready at once"),
        }
    }

    fn reads_span() -> impl Future<Output = bool> {
        std::future::poll_fn(|_| Poll::Ready(Context::map_current(|c| c.has_active_span())))
    }

    #[test]
    fn an_empty_capture_is_attached_only_over_a_context_it_must_hide() {
        let empty = capture();
        assert!(
            empty.clone().attach().0.is_none(),
            "empty over empty: nothing to do"
        );
        assert!(!span_seen_by(empty.clone().future(reads_span())));
        let outer = in_a_span().attach();
        // Work started outside any span stays outside it wherever it runs.
        let hidden = empty.clone().attach();
        assert!(hidden.0.is_some());
        assert!(!Context::map_current(|c| c.has_active_span()));
        drop(hidden);
        assert!(!span_seen_by(empty.future(reads_span())));
        assert!(Context::map_current(|c| c.has_active_span()), "restored");
        // And work started inside one carries it.
        let carried = capture();
        drop(outer);
        assert!(span_seen_by(carried.future(reads_span())));
    }
}
