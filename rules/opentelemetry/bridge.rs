// A module of the application's own `opentelemetry` crate (any copy but the
// instrumentation's): it trades span ids with `instgo_runtime::bridge` so that the app's
// manual spans and the injected ones make one tree. Without the crate's `trace` feature
// there are no spans to trade and the hooks do nothing.

#[cfg(feature = "trace")]
use crate::trace::TraceContextExt as _;

/// `Context::map_current`'s function: when the app's current context has no span, it
/// sees the instrumentation's current span as its parent.
pub fn current<T, F: FnOnce(&crate::Context) -> T>(f: F) -> impl FnOnce(&crate::Context) -> T {
    move |cx: &crate::Context| {
        #[cfg(feature = "trace")]
        if !cx.has_active_span() {
            if let Some((t, s, flags)) = ::instgo_runtime::bridge::current_span() {
                let parent = crate::trace::SpanContext::new(
                    crate::trace::TraceId::from_bytes(t),
                    crate::trace::SpanId::from_bytes(s),
                    crate::trace::TraceFlags::new(flags),
                    true,
                    crate::trace::TraceState::default(),
                );
                return f(&cx.with_remote_span_context(parent));
            }
        }
        f(cx)
    }
}

/// `Context::attach`: the span it makes current is the instrumentation's parent too.
pub fn attach(_call: &mut ::instgo_runtime::hook::CallContext, cx: &crate::Context) {
    #[cfg(feature = "trace")]
    let span = {
        let sc = cx.span().span_context().clone();
        sc.is_valid().then(|| {
            (
                sc.trace_id().to_bytes(),
                sc.span_id().to_bytes(),
                sc.trace_flags().to_u8(),
            )
        })
    };
    #[cfg(not(feature = "trace"))]
    let span = {
        let _ = cx;
        None
    };
    ::instgo_runtime::bridge::foreign_attached(span);
}

/// `ContextGuard::drop`: the attach it undoes ends on the instrumentation's side too.
pub fn detach(_call: &mut ::instgo_runtime::hook::CallContext) {
    ::instgo_runtime::bridge::foreign_detached();
}
