//! Hooks: code a rule ships with its own source file, run on entry to and exit from an
//! instrumented function with typed access to its arguments and return value.
//!
//! A rule's hook file becomes a module of the target crate, so its functions can name that
//! crate's types. They look like this:
//!
//! ```ignore
//! pub fn on_enter(call: &mut instgo_runtime::hook::CallContext, req: &Request) {
//!     call.extract(|name| req.header(name).map(str::to_string)); // remote parent
//!     call.set_name(format!("{} {}", req.method(), req.route()));
//!     call.set_attribute("http.request.method", req.method().to_string());
//!     call.insert("started", std::time::Instant::now());
//! }
//! pub fn on_exit(call: &mut instgo_runtime::hook::CallContext, ret: &Result<Response, Error>) {
//!     if let Ok(r) = ret { call.set_attribute("http.response.status_code", i64::from(r.status())) }
//! }
//! ```
//!
//! `on_enter` runs before the span starts (it may pick the parent, the name and the first
//! attributes; anything that needs the span, such as [`CallContext::inject`], starts it
//! then). `on_exit` runs at every exit with the value being returned. A hook that panics
//! is caught: the panic is reported once and the site is switched off for the rest of the
//! run, and the application never sees it.

use std::any::Any;
use std::borrow::Cow;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use opentelemetry::trace::{Status, TraceContextExt};
use opentelemetry::{Context, KeyValue, Value};

use crate::call::{start_span_with, AsyncCall, Instrumented, Record, SyncCall};
pub use crate::call::{Done, Returned};
use crate::diag::warning;
/// Hook code that starts calls of its own (a framework's request, wrapped where the
/// framework builds its services) declares a `static` [`Site`] with its rule's name, so
/// the rule's run-time switches reach those calls too.
pub use crate::site::{Kind, Site};

/// What a hook sees of one call: its span (started lazily), and data shared between
/// `on_enter` and `on_exit`.
pub struct CallContext {
    site: &'static Site,
    started: Instant,
    parent: Option<Context>,
    name: Option<String>,
    pending: Vec<KeyValue>,
    cx: Option<Context>,
    data: Vec<(&'static str, Box<dyn Any + Send>)>,
    /// Set by [`CallContext::suppress`]: this call makes no span.
    suppressed: bool,
    /// Set by [`CallContext::expose_rule`].
    exposed: bool,
    /// The duration histogram of a protocol's server or client call (`http`, `rpc`): a
    /// field, not hook data, which would cost two allocations per call.
    pub(crate) metric: Option<crate::metrics::CallMetric>,
}

/// Marks the context of a span a hooked call started, with the call's rule, so that a
/// nested call can tell it runs inside a span of its own framework.
#[derive(Clone, Copy)]
struct HookedBy(&'static str);

impl CallContext {
    fn new(site: &'static Site) -> Self {
        CallContext {
            site,
            started: Instant::now(),
            parent: None,
            name: None,
            pending: Vec::new(),
            cx: None,
            data: Vec::new(),
            suppressed: false,
            exposed: false,
            metric: None,
        }
    }

    /// The rule of the innermost hooked call whose span encloses the place this call
    /// was made and that [exposed](CallContext::expose_rule) it (`None` outside any).
    pub fn parent_rule(&self) -> Option<&'static str> {
        let current = crate::call::current_context()?;
        current.get::<HookedBy>().map(|h| h.0)
    }

    /// Lets calls made inside this call's span see its rule through
    /// [`CallContext::parent_rule`] (only in `on_enter`). Opt-in because it costs a
    /// context entry per call (0.63 k instructions in the axum benchmark; callgrind); only
    /// rules whose nested calls look for them (a client that sends through another
    /// instrumented client, a framework entry point that calls another) need it.
    pub fn expose_rule(&mut self) {
        self.exposed = true;
    }

    /// This call makes no span (only in `on_enter`): for a framework function nested in
    /// another of the same framework (a unary call made through the streaming one), whose
    /// span the outer call already is. Its `on_exit` hook still runs.
    pub fn suppress(&mut self) {
        if self.cx.is_none() {
            self.suppressed = true;
        }
    }

    /// The rule that instrumented this function.
    pub fn rule(&self) -> &'static str {
        self.site.rule
    }

    /// The instrumented function's full path.
    pub fn function(&self) -> &'static str {
        self.site.function
    }

    /// Time since the call entered.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Makes the remote context found in propagation headers (`traceparent`,
    /// `tracestate`, `baggage`) the parent of this call's span. Only before the span
    /// starts; malformed headers are ignored.
    pub fn extract(&mut self, get: impl Fn(&str) -> Option<String>) {
        if self.cx.is_some() {
            return;
        }
        let remote = crate::propagation::extract(&get);
        if remote.span().span_context().is_valid() {
            self.parent = Some(remote);
        }
    }

    /// Like [`CallContext::extract`], but without a valid remote parent the span starts a
    /// new trace instead of joining whatever is current: what a server span wants, as the
    /// code accepting connections may itself be inside a span. Remote baggage is kept.
    pub fn extract_or_root(&mut self, get: impl Fn(&str) -> Option<String>) {
        if self.cx.is_none() {
            self.parent = Some(crate::propagation::extract(&get));
        }
    }

    /// Writes this call's context into outgoing propagation headers (starting the span
    /// if it has not started yet).
    pub fn inject(&mut self, mut set: impl FnMut(&str, &str)) {
        self.start();
        let cx = self.cx.clone().unwrap_or_else(Context::current);
        crate::propagation::inject_context(&cx, &mut set);
    }

    /// Renames the span.
    pub fn set_name(&mut self, name: impl Into<String>) {
        let name = name.into();
        match &self.cx {
            Some(cx) => cx.span().update_name(name),
            None => self.name = Some(name),
        }
    }

    /// Sets a span attribute.
    pub fn set_attribute(&mut self, key: &'static str, value: impl Into<Value>) {
        self.set_key_value(KeyValue::new(key, value))
    }

    /// Room for `n` more attributes before the span starts (they become its attribute
    /// vector, which then never regrows).
    pub(crate) fn reserve_attributes(&mut self, n: usize) {
        if self.cx.is_none() {
            self.pending.reserve(n);
        }
    }

    pub(crate) fn set_key_value(&mut self, kv: KeyValue) {
        match &self.cx {
            Some(cx) => cx.span().set_attribute(kv),
            None => self.pending.push(kv),
        }
    }

    /// Marks the call failed (status ERROR) with `message`.
    pub fn set_error(&mut self, message: impl Into<Cow<'static, str>>) {
        self.start();
        if let Some(cx) = &self.cx {
            cx.span().set_status(Status::error(message));
        }
    }

    /// Records an error with an `exception` event and status ERROR.
    pub fn record_exception(&mut self, type_name: &'static str, message: &str) {
        self.start();
        if let Some(cx) = &self.cx {
            crate::call::record_exception(&cx.span(), type_name, message.to_string());
        }
    }

    /// Whether the span records (is sampled), so that costly attributes can be skipped.
    /// Before the span starts (in `on_enter`) sampling is not decided yet: then it says
    /// whether a span will be made at all.
    pub fn is_recording(&self) -> bool {
        match &self.cx {
            Some(cx) => cx.span().is_recording(),
            None => self.site.span && crate::sdk::get().is_some(),
        }
    }

    /// The trace id of this call's span in hex (for logs), once it has started.
    pub fn trace_id(&self) -> Option<String> {
        let cx = self.cx.as_ref()?;
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid().then(|| sc.trace_id().to_string())
    }

    /// Keeps `value` under `key` for the rest of the call (replacing an earlier one).
    pub fn insert<T: Any + Send>(&mut self, key: &'static str, value: T) {
        self.data.retain(|(k, _)| *k != key);
        self.data.push((key, Box::new(value)));
    }

    /// The value kept under `key`, if it has type `T`.
    pub fn get<T: Any>(&self, key: &str) -> Option<&T> {
        self.data
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.downcast_ref())
    }

    /// The value kept under `key`, if it has type `T`, to change in place.
    pub fn get_mut<T: Any>(&mut self, key: &str) -> Option<&mut T> {
        self.data
            .iter_mut()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.downcast_mut())
    }

    /// Takes the value kept under `key` out, if it has type `T`.
    pub fn remove<T: Any>(&mut self, key: &str) -> Option<T> {
        let i = self
            .data
            .iter()
            .position(|(k, v)| *k == key && v.is::<T>())?;
        let (_, v) = self.data.swap_remove(i);
        v.downcast().ok().map(|b| *b)
    }

    /// Starts the span now (no-op when it has started or the rule makes none).
    fn start(&mut self) {
        if self.cx.is_some() || !self.site.span || self.suppressed {
            return;
        }
        let cx = start_span_with(
            self.site,
            self.parent.take(),
            self.name.take(),
            std::mem::take(&mut self.pending),
        );
        self.cx = match cx {
            Some(cx) if self.exposed => Some(cx.with_value(HookedBy(self.site.rule))),
            cx => cx,
        };
    }
}

thread_local! {
    static IN_HOOK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread is running a hook now (the panic hook then keeps quiet).
pub(crate) fn in_hook() -> bool {
    IN_HOOK.try_with(|h| h.get()).unwrap_or(false)
}

/// Runs one hook, containing its panic: the site goes off for good and one warning says why.
fn run(call: &mut CallContext, hook: impl FnOnce(&mut CallContext)) {
    let _ = IN_HOOK.try_with(|h| h.set(true));
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| hook(call)));
    let _ = IN_HOOK.try_with(|h| h.set(false));
    if let Err(payload) = result {
        let msg = crate::sdk::panic_message(&*payload);
        call.site.fail();
        warning!(
            "a hook of rule `{}` panicked in {} ({msg}); that function is no longer instrumented",
            call.site.rule,
            call.site.function
        );
    }
}

/// A synchronous call with hooks: a [`SyncCall`] plus the hooks' [`CallContext`].
pub struct HookedCall {
    call: SyncCall,
    state: Option<Mutex<CallContext>>,
}

/// Runs `on_enter` (when the site is on), starts the span and makes it current.
#[inline]
pub fn enter_hooked(site: &'static Site, on_enter: impl FnOnce(&mut CallContext)) -> HookedCall {
    let (cx, state) = begin(site, on_enter);
    HookedCall {
        call: SyncCall::attach(cx),
        state,
    }
}

/// The span context and the hook state of a call on a site that is on; `(None, None)`
/// for a switched-off site, whose hooks do not run.
fn begin(
    site: &'static Site,
    on_enter: impl FnOnce(&mut CallContext),
) -> (Option<Context>, Option<Mutex<CallContext>>) {
    if !site.is_on() {
        return (None, None);
    }
    let mut call = CallContext::new(site);
    run(&mut call, on_enter);
    call.start();
    (call.cx.clone(), Some(Mutex::new(call)))
}

fn exit_with(state: &Option<Mutex<CallContext>>, on_exit: impl FnOnce(&mut CallContext)) {
    if let Some(m) = state {
        let mut call = m.lock().unwrap_or_else(|e| e.into_inner());
        // A site switched off by a failing hook runs no more hooks, even in calls already
        // under way.
        if call.site.is_on() {
            run(&mut call, on_exit);
        }
    }
}

impl HookedCall {
    /// Runs `on_exit` with the value being returned.
    #[inline]
    pub fn exit(&self, on_exit: impl FnOnce(&mut CallContext)) {
        exit_with(&self.state, on_exit)
    }
}

impl Record for HookedCall {
    fn context(&self) -> Option<&Context> {
        self.call.context()
    }
}

/// An `async fn` call with hooks: an [`AsyncCall`] plus the hooks' [`CallContext`].
pub struct HookedAsyncCall {
    call: AsyncCall,
    state: Option<Mutex<CallContext>>,
}

/// Runs `on_enter` (when the site is on) and starts the span, on the call's first poll.
#[inline]
pub fn start_async_hooked(
    site: &'static Site,
    on_enter: impl FnOnce(&mut CallContext),
) -> HookedAsyncCall {
    let (cx, state) = begin(site, on_enter);
    HookedAsyncCall {
        call: AsyncCall::with_context(cx),
        state,
    }
}

impl HookedAsyncCall {
    /// Runs `on_exit` with the value being returned.
    #[inline]
    pub fn exit(&self, on_exit: impl FnOnce(&mut CallContext)) {
        exit_with(&self.state, on_exit)
    }

    /// Wraps the body's future so the span is the current context whenever it runs.
    #[inline]
    pub fn instrument<F: std::future::Future>(&self, fut: F) -> Instrumented<F> {
        self.call.instrument(fut)
    }
}

/// Starts a call on a site that hook code declared itself (see [`Site`]): `on_enter`
/// runs when the site is on, then the span starts. Wrap the call's future with
/// [`HookedAsyncCall::returned`].
#[inline]
pub fn start(site: &'static Site, on_enter: impl FnOnce(&mut CallContext)) -> HookedAsyncCall {
    start_async_hooked(site, on_enter)
}

/// [`start`] when `when` holds; otherwise a call that makes no span and runs no hooks
/// (a framework's nested service, whose outer layer already made the span).
#[inline]
pub fn start_if(
    site: &'static Site,
    when: bool,
    on_enter: impl FnOnce(&mut CallContext),
) -> HookedAsyncCall {
    if when {
        start_async_hooked(site, on_enter)
    } else {
        HookedAsyncCall {
            call: AsyncCall::with_context(None),
            state: None,
        }
    }
}

impl HookedAsyncCall {
    /// Ties `fut` to this call: its context is current on every poll, `on_exit` sees its
    /// output, and the span ends when it completes or is dropped.
    ///
    /// `done` is a type of the hook's own that implements [`Done`]: a framework's
    /// `type Future = ...` must name it, and a type that does not mention the output
    /// keeps the future `'static` even when the output has a type parameter that is not
    /// known to be (a service's error).
    #[inline]
    pub fn returned<F: std::future::Future, D: Done<Self, F::Output>>(
        self,
        fut: F,
        done: D,
    ) -> Returned<Self, F, D> {
        Returned::new(self, fut, done)
    }
}

impl Record for HookedAsyncCall {
    fn context(&self) -> Option<&Context> {
        self.call.context()
    }

    fn body<R>(&self, f: impl FnOnce() -> R) -> R {
        let Some(state) = &self.state else {
            return f();
        };
        let previous = ENCLOSING.with(|e| e.replace(state as *const Mutex<CallContext>));
        struct Restore(*const Mutex<CallContext>);
        impl Drop for Restore {
            fn drop(&mut self) {
                ENCLOSING.with(|e| e.set(self.0));
            }
        }
        let _restore = Restore(previous);
        f()
    }
}

thread_local! {
    /// The hooked `-> impl Future` call whose body is running on this thread, if any.
    static ENCLOSING: std::cell::Cell<*const Mutex<CallContext>> =
        const { std::cell::Cell::new(std::ptr::null()) };
}

/// Runs `f` with the [`CallContext`] of the instrumented `-> impl Future` call whose
/// body is running on this thread (`None` when there is none, or its site is off).
///
/// For a framework whose public entry point cannot see the request (a builder's private
/// fields) while a function it calls can: the entry point makes the span, the inner
/// function's hook names it and writes the propagation headers.
pub fn enclosing<R>(f: impl FnOnce(&mut CallContext) -> R) -> Option<R> {
    let ptr = ENCLOSING.try_with(|e| e.get()).ok()?;
    if ptr.is_null() {
        return None;
    }
    // SAFETY: the pointer is set only while `HookedAsyncCall::body` runs, by the call that
    // owns the mutex and is borrowed for that whole time; it is reset before it returns
    // (also when it unwinds).
    let state = unsafe { &*ptr };
    let mut call = state.try_lock().ok()?;
    if !call.site.is_on() {
        return None;
    }
    let mut out = None;
    run(&mut call, |c| out = Some(f(c)));
    out
}
