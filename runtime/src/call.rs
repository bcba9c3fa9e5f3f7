//! One instrumented call: the span, its context, and how the rewritten body reaches them.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use opentelemetry::trace::{SpanKind, SpanRef, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, ContextGuard, KeyValue};

use crate::site::Site;

/// What observation code injected at `return`, `?` and the tail expression records into.
pub trait Record {
    /// The context holding this call's span, when the call makes one.
    fn context(&self) -> Option<&Context>;

    /// Marks the call failed: status ERROR with `message`, plus an `exception` event.
    fn record_error(&self, message: &str, type_name: &'static str) {
        if let Some(cx) = self.context() {
            let span = cx.span();
            if span.is_recording() {
                record_exception(&span, type_name, message.to_string());
            }
        }
    }

    /// Whether this call's span records, so that attribute values are worth computing.
    #[inline]
    fn recording(&self) -> bool {
        self.context().is_some_and(|cx| cx.span().is_recording())
    }

    /// Sets an attribute taken from an argument (`span.attributes` of a rule).
    fn set_attribute(&self, key: &'static str, value: Option<opentelemetry::Value>) {
        if let (Some(cx), Some(value)) = (self.context(), value) {
            cx.span().set_attribute(KeyValue::new(key, value));
        }
    }

    /// Runs the synchronous part of the call's body (see [`Returned::make`]); calls with
    /// hooks make their [`crate::hook::CallContext`] reachable from hooks of the functions
    /// that body calls.
    #[inline]
    fn body<R>(&self, f: impl FnOnce() -> R) -> R {
        f()
    }
}

/// An `exception` event and status ERROR, the way failed calls, hooks and panics mark a span.
pub(crate) fn record_exception(span: &SpanRef<'_>, type_name: &'static str, message: String) {
    span.add_event(
        "exception",
        vec![
            KeyValue::new("exception.type", type_name),
            KeyValue::new("exception.message", message.clone()),
        ],
    );
    span.set_status(Status::error(message));
}

impl<T: Record> Record for &T {
    #[inline]
    fn context(&self) -> Option<&Context> {
        (**self).context()
    }
}

fn start_span(site: &'static Site) -> Option<Context> {
    start_span_with(site, None, None, Vec::new())
}

thread_local! {
    static BUSY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static ORDERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static ALIVE: Alive = const { Alive };
}

/// The runtime's own threads (export, flush) never make spans: what they run is ours, and
/// spans from there (through the app's allocator, say) would feed the queue they drain.
pub(crate) fn mark_runtime_thread() {
    let _ = BUSY.try_with(|b| b.set(true));
}

/// A thread-local whose destructor runs before opentelemetry's context stack's (thread
/// locals are destroyed in reverse order of first use), so that a span started while the
/// thread is being torn down (a deallocation reaching the app's allocator) can tell the
/// context stack may be gone, instead of panicking in a destructor, which aborts.
struct Alive;

impl Drop for Alive {
    fn drop(&mut self) {}
}

/// The current context, or `None` when the thread is exiting.
pub(crate) fn current_context() -> Option<Context> {
    if ORDERED.try_with(|o| o.get()).unwrap_or(false) {
        ALIVE.try_with(|_| ()).ok()?;
        Some(Context::current())
    } else {
        // First use on this thread: the context stack registers first, then `ALIVE`.
        let cx = Context::current();
        ALIVE.try_with(|_| ()).ok()?;
        let _ = ORDERED.try_with(|o| o.set(true));
        Some(cx)
    }
}

/// Marks this thread as inside the runtime (starting, attaching or ending a span). The SDK
/// allocates and takes locks there; if that reaches instrumented code of the app again (a
/// function its allocator calls, say), the nested call must get no span, or it would
/// recurse or deadlock on the lock its caller holds.
pub(crate) struct Busy(bool);

impl Busy {
    /// `None` when the thread is inside the runtime already.
    #[inline]
    pub(crate) fn enter() -> Option<Busy> {
        match BUSY.try_with(|b| b.replace(true)) {
            Ok(false) => Some(Busy(true)),
            _ => None,
        }
    }

    /// Marks the thread busy if it is not already; ending a span must happen either way.
    #[inline]
    fn enter_anyway() -> Busy {
        Busy::enter().unwrap_or(Busy(false))
    }
}

impl Drop for Busy {
    #[inline]
    fn drop(&mut self) {
        if self.0 {
            let _ = BUSY.try_with(|b| b.set(false));
        }
    }
}

/// Starts `site`'s span as a child of `parent`; hooks may have chosen the name and added
/// attributes before the start, so that samplers see them.
/// `parent` defaults to the current context (read inside the guard: the first read on a
/// thread allocates).
pub(crate) fn start_span_with(
    site: &'static Site,
    parent: Option<Context>,
    name: Option<String>,
    attributes: Vec<KeyValue>,
) -> Option<Context> {
    let _busy = Busy::enter()?;
    let sdk = crate::sdk::get()?;
    let parent = match parent {
        Some(p) => p,
        None => current_context()?,
    };
    // Fields set in place: the builder is large, and each by-value `with_*` moves it.
    let mut builder = match name {
        Some(n) => sdk.tracer.span_builder(n),
        None => sdk.tracer.span_builder(site.name),
    };
    builder.span_kind = Some(SpanKind::from(site.kind));
    if site.file.is_empty() {
        builder.attributes = Some(attributes);
        let span = builder.start_with_context(&sdk.tracer, &parent);
        return Some(parent.with_span(span));
    }
    let code = [
        KeyValue::new("code.function.name", site.function),
        KeyValue::new("code.file.path", site.file),
        KeyValue::new("code.line.number", i64::from(site.line)),
    ];
    // The usual case (no hook attributes) allocates the vector once, at its final size.
    builder.attributes = Some(if attributes.is_empty() {
        Vec::from(code)
    } else {
        let mut attributes = attributes;
        attributes.extend(code);
        attributes
    });
    let span = builder.start_with_context(&sdk.tracer, &parent);
    Some(parent.with_span(span))
}

/// Detaches `attached` (a sync call's guard) and ends the span of `cx`, all while the
/// thread is marked [`Busy`]: the last handle on the context goes too, and freeing the
/// span may reach the app's allocator.
fn end_span(cx: Context, attached: Option<ContextGuard>) {
    let busy = Busy::enter_anyway();
    drop(attached);
    {
        let span = cx.span();
        if std::thread::panicking() {
            let message = crate::sdk::take_panic_message().unwrap_or_else(|| "panic".to_string());
            record_exception(&span, "panic", message);
        }
        span.end();
    }
    drop(cx);
    drop(busy);
}

/// A synchronous call: the span is current on this thread until the guard drops.
///
/// The state sits in a `ManuallyDrop` so that dropping a switched-off call is one inline
/// branch: without it, the compiler emits out-of-line drop glue for the fields, and the
/// switched-off path pays for a call.
pub struct SyncCall {
    active: std::mem::ManuallyDrop<Option<Active>>,
}

struct Active {
    attached: ContextGuard,
    cx: Context,
}

/// Starts the span of a synchronous call and makes it current.
#[inline(always)]
pub fn enter(site: &'static Site) -> SyncCall {
    if site.is_on() {
        enter_slow(site)
    } else {
        SyncCall {
            active: std::mem::ManuallyDrop::new(None),
        }
    }
}

#[inline(never)]
fn enter_slow(site: &'static Site) -> SyncCall {
    SyncCall::attach(start_span(site))
}

impl SyncCall {
    /// Makes `cx` (a started span's context) current until the call drops.
    pub(crate) fn attach(cx: Option<Context>) -> SyncCall {
        let _busy = Busy::enter_anyway();
        let active = cx.map(|cx| Active {
            attached: cx.clone().attach(),
            cx,
        });
        SyncCall {
            active: std::mem::ManuallyDrop::new(active),
        }
    }
}

impl Record for SyncCall {
    #[inline]
    fn context(&self) -> Option<&Context> {
        self.active.as_ref().map(|a| &a.cx)
    }
}

impl Drop for SyncCall {
    #[inline(always)]
    fn drop(&mut self) {
        if self.active.is_some() {
            finish(&mut self.active);
        }
    }
}

#[inline(never)]
fn finish(active: &mut std::mem::ManuallyDrop<Option<Active>>) {
    // SAFETY: called once, from Drop; the value is not used afterwards.
    if let Some(a) = unsafe { std::mem::ManuallyDrop::take(active) } {
        end_span(a.cx, Some(a.attached));
    }
}

/// An `async fn` call: the span lives as long as the call's future and is made current
/// on every poll by [`Instrumented`]. Unlike [`SyncCall`] it is `Send`.
pub struct AsyncCall {
    cx: Option<Context>,
}

/// Starts the span of an `async fn` call (on its first poll) without making it current.
#[inline(always)]
pub fn start_async(site: &'static Site) -> AsyncCall {
    if site.is_on() {
        AsyncCall {
            cx: start_span(site),
        }
    } else {
        AsyncCall { cx: None }
    }
}

impl AsyncCall {
    /// A call whose span (already started, if any) has context `cx`.
    pub(crate) fn with_context(cx: Option<Context>) -> AsyncCall {
        AsyncCall { cx }
    }

    /// Wraps the body's future so the span is the current context whenever it runs.
    #[inline]
    pub fn instrument<F: Future>(&self, fut: F) -> Instrumented<F> {
        Instrumented::new(fut, self.cx.clone())
    }
}

impl Record for AsyncCall {
    #[inline]
    fn context(&self) -> Option<&Context> {
        self.cx.as_ref()
    }
}

impl Drop for AsyncCall {
    fn drop(&mut self) {
        if let Some(cx) = self.cx.take() {
            end_span(cx, None);
        }
    }
}

/// A future that attaches a context on every poll, so spans started after an `.await`
/// (possibly on another thread) nest under the right parent.
pub struct Instrumented<F> {
    fut: F,
    cx: Option<Context>,
    /// `cx` holds no span and no baggage (a task spawned outside any span): attached only
    /// when the thread's current context is not empty too.
    empty: bool,
}

impl<F> Instrumented<F> {
    pub(crate) fn new(fut: F, cx: Option<Context>) -> Self {
        Instrumented {
            fut,
            cx,
            empty: false,
        }
    }

    pub(crate) fn carried(fut: F, cx: Context) -> Self {
        Instrumented {
            fut,
            empty: is_empty(&cx),
            cx: Some(cx),
        }
    }
}

/// Whether `cx` carries nothing a span or an outgoing request would read.
pub(crate) fn is_empty(cx: &Context) -> bool {
    use opentelemetry::baggage::BaggageExt as _;
    !cx.has_active_span() && cx.baggage().is_empty()
}

/// Whether the current context is empty: then attaching an empty one changes nothing but
/// costs a push and a pop of the thread's context stack on every poll (0.15 k instructions
/// a request in the axum benchmark, through its connection tasks; callgrind).
#[inline]
pub(crate) fn current_is_empty() -> bool {
    Context::map_current(is_empty)
}

impl<F: Future> Future for Instrumented<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, task: &mut std::task::Context<'_>) -> Poll<F::Output> {
        // SAFETY: `fut` is structurally pinned: it is never moved out of `self`, and
        // `Instrumented` has no Drop impl and is not Unpin unless `F` is.
        let this = unsafe { self.get_unchecked_mut() };
        let fut = unsafe { Pin::new_unchecked(&mut this.fut) };
        match &this.cx {
            Some(_) if this.empty && current_is_empty() => fut.poll(task),
            Some(cx) => {
                let _guard = cx.clone().attach();
                fut.poll(task)
            }
            None => fut.poll(task),
        }
    }
}

/// What runs with the output of a [`Returned`] future, before its span ends.
pub trait Done<C, T> {
    /// Called once, with the call and the output.
    fn done(self, call: &C, out: &T);
}

/// The closure the rewriter writes for a `-> impl Future` function (its exit hook and
/// the error observation of its output).
pub struct Observer<D>(pub D);

impl<C, T, D: FnOnce(&C, &T)> Done<C, T> for Observer<D> {
    #[inline]
    fn done(self, call: &C, out: &T) {
        (self.0)(call, out)
    }
}

/// The future a function returns (`-> impl Future`), or a framework's response future,
/// tied to a call: the call's context is current whenever it is polled, `done` sees its
/// output, and the span ends when it completes or is dropped.
///
/// It is `Unpin`, `Send` and `Sync` exactly when the wrapped future is, so wrapping what
/// a `-> impl Future` function returns takes no auto trait away from its callers.
pub struct Returned<C, F, D> {
    fut: F,
    call: Option<C>,
    done: Option<D>,
}

impl<C: Record, F: Future, D: Done<C, F::Output>> Returned<C, F, D> {
    /// Wraps `fut`; `done` runs once with its output, before the span ends.
    #[inline]
    pub fn new(call: C, fut: F, done: D) -> Self {
        Returned {
            fut,
            call: Some(call),
            done: Some(done),
        }
    }

    /// Runs `make` (the synchronous part of a `-> impl Future` function's body) with the
    /// call's context current, and wraps the future it returns.
    #[inline]
    pub fn make(call: C, make: impl FnOnce() -> F, done: D) -> Self {
        let fut = match call.context() {
            Some(cx) => {
                let _guard = cx.clone().attach();
                call.body(make)
            }
            None => call.body(make),
        };
        Self::new(call, fut, done)
    }
}

impl<C: Record, F: Future, D: Done<C, F::Output>> Future for Returned<C, F, D> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, task: &mut std::task::Context<'_>) -> Poll<F::Output> {
        // SAFETY: `fut` is structurally pinned: it is never moved out of `self` and
        // `Returned` has no Drop impl; `call` and `done` are never pinned.
        let this = unsafe { self.get_unchecked_mut() };
        let fut = unsafe { Pin::new_unchecked(&mut this.fut) };
        let polled = match this.call.as_ref().and_then(Record::context) {
            Some(cx) => {
                let _guard = cx.clone().attach();
                fut.poll(task)
            }
            None => fut.poll(task),
        };
        if let Poll::Ready(out) = &polled {
            if let (Some(call), Some(done)) = (this.call.take(), this.done.take()) {
                done.done(&call, out);
                // The span ends here, not when the caller drops this future.
                drop(call);
            }
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hook::HookedAsyncCall;

    static SITE: Site = Site::hook("test-returned", "returned", crate::site::Kind::Internal);

    fn send_sync_unpin<T: Send + Sync + Unpin>(_: &T) {}

    /// What ARCHITECTURE.md says of the `-> impl Future` shape: wrapping takes no auto
    /// trait from the future a caller gets (checked by the compiler).
    #[test]
    fn returned_keeps_the_wrapped_futures_auto_traits() {
        let plain = Returned::make(
            start_async(&SITE),
            || std::future::ready(1u8),
            Observer(|_: &AsyncCall, _: &u8| {}),
        );
        send_sync_unpin(&plain);
        let hooked = crate::hook::start(&SITE, |_| {}).returned(
            std::future::ready(1u8),
            Observer(|_: &HookedAsyncCall, _: &u8| {}),
        );
        send_sync_unpin(&hooked);
    }
}
