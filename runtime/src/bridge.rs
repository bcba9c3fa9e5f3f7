//! Joining an application's own OpenTelemetry with the instrumentation's.
//!
//! An app that uses the opentelemetry API itself (directly or through
//! tracing-opentelemetry) links its own copy of the crate, whatever its version; the
//! runtime's copy is another crate with its own thread-local context, so the two would
//! make two separate trees. The catalog's `opentelemetry` rules rewrite the app's copy to
//! call this module, which exchanges span ids only (no types cross between the copies):
//!
//! * the app asks for its current context and has no span: it gets the instrumentation's
//!   current span as parent ([`current_span`]), so its manual spans nest under injected
//!   ones;
//! * the app makes a context with a span current (`Context::attach`; tracing-opentelemetry
//!   does it on every span enter): that span becomes the instrumentation's parent too until
//!   the app's guard drops ([`foreign_attached`], [`foreign_detached`]), so injected spans
//!   nest under manual ones.

use std::cell::RefCell;

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use opentelemetry::ContextGuard;

/// A span's identity as both copies can express it: trace id, span id, trace flags.
pub type SpanIds = ([u8; 16], [u8; 8], u8);

thread_local! {
    /// One entry per attach the app made on this thread and has not dropped yet: the
    /// guard of the context attached on our side, if one was needed.
    static FOREIGN: RefCell<Vec<Option<ContextGuard>>> = const { RefCell::new(Vec::new()) };
}

/// The instrumentation's current span on this thread, if there is a valid one.
pub fn current_span() -> Option<SpanIds> {
    let cx = crate::call::current_context()?;
    ids(cx.span().span_context())
}

fn ids(sc: &SpanContext) -> Option<SpanIds> {
    sc.is_valid().then(|| {
        (
            sc.trace_id().to_bytes(),
            sc.span_id().to_bytes(),
            sc.trace_flags().to_u8(),
        )
    })
}

/// The app attached a context on this thread, with this span (`None`: no span). Must be
/// paired with one [`foreign_detached`] when the app's guard drops.
pub fn foreign_attached(span: Option<SpanIds>) {
    let guard = span.and_then(|s| {
        // The app attached what it got from `current_span`: already ours.
        if current_span() == Some(s) {
            return None;
        }
        let sc = SpanContext::new(
            TraceId::from_bytes(s.0),
            SpanId::from_bytes(s.1),
            TraceFlags::new(s.2),
            true,
            TraceState::default(),
        );
        let cx = crate::call::current_context()?;
        Some(cx.with_remote_span_context(sc).attach())
    });
    // During thread teardown the list may be gone: then the guard just drops.
    let _ = FOREIGN.try_with(|f| {
        if let Ok(mut f) = f.try_borrow_mut() {
            f.push(guard);
        }
    });
}

/// The app dropped the guard of its latest attach on this thread.
pub fn foreign_detached() {
    let guard = FOREIGN
        .try_with(|f| f.try_borrow_mut().ok().and_then(|mut f| f.pop()))
        .ok()
        .flatten()
        .flatten();
    // Dropped here, outside the borrow: detaching may run other thread-local code.
    drop(guard);
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};

    const APP: SpanIds = ([7; 16], [9; 8], 1);

    #[test]
    fn no_span_no_ids() {
        assert_eq!(current_span(), None);
        foreign_attached(None);
        assert_eq!(current_span(), None);
        foreign_detached();
    }

    #[test]
    fn an_attached_foreign_span_is_current_until_detached_and_nests() {
        foreign_attached(Some(APP));
        assert_eq!(current_span(), Some(APP));
        // Attaching what we gave out adds nothing; the pair still balances.
        foreign_attached(Some(APP));
        foreign_attached(None);
        foreign_detached();
        foreign_detached();
        assert_eq!(current_span(), Some(APP));
        foreign_detached();
        assert_eq!(current_span(), None);
        // More detaches than attaches (an attach made before the hooks saw it) are ignored.
        foreign_detached();
        assert_eq!(current_span(), None);
    }

    #[test]
    fn a_span_started_under_a_foreign_one_is_its_child() {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let tracer = provider.tracer("t");
        foreign_attached(Some(APP));
        let span = tracer.start("child");
        let sc = span.span_context().clone();
        drop(span);
        foreign_detached();
        assert_eq!(sc.trace_id().to_bytes(), APP.0);
        assert_ne!(sc.span_id().to_bytes(), APP.1);
    }
}
