//! Instrumentation sites: one static per rewritten function.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;

const UNREGISTERED: u8 = 0;
const ON: u8 = 1;
const OFF: u8 = 2;
/// A hook of this site panicked: off for good, whatever the switches say.
const FAILED: u8 = 3;

/// What the rewriter knows about one instrumented function, stored in a `static` inside it.
///
/// The state byte is the only thing the hot path reads: a switched-off site costs one
/// relaxed load and a branch. The first call registers the site so that run-time switches
/// (environment, [`crate::control`], remote config) can reach it later.
#[derive(Debug)]
pub struct Site {
    /// Name of the rule that instrumented this function.
    pub rule: &'static str,
    /// Span name.
    pub name: &'static str,
    /// Full path of the function, crate name first (`code.function.name`).
    pub function: &'static str,
    /// Source file as the user's build names it (`code.file.path`).
    pub file: &'static str,
    /// Line of the `fn` (`code.line.number`).
    pub line: u32,
    /// Span kind.
    pub kind: Kind,
    /// Whether calls make a span (`false` for rules that only run hooks).
    pub span: bool,
    state: AtomicU8,
}

/// The span kind a rule asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Kind {
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl From<Kind> for opentelemetry::trace::SpanKind {
    fn from(k: Kind) -> Self {
        use opentelemetry::trace::SpanKind as K;
        match k {
            Kind::Internal => K::Internal,
            Kind::Server => K::Server,
            Kind::Client => K::Client,
            Kind::Producer => K::Producer,
            Kind::Consumer => K::Consumer,
        }
    }
}

static REGISTRY: Mutex<Vec<&'static Site>> = Mutex::new(Vec::new());

impl Site {
    #[allow(missing_docs)]
    pub const fn new(
        rule: &'static str,
        name: &'static str,
        function: &'static str,
        file: &'static str,
        line: u32,
        kind: Kind,
    ) -> Site {
        Site {
            rule,
            name,
            function,
            file,
            line,
            kind,
            span: true,
            state: AtomicU8::new(UNREGISTERED),
        }
    }

    /// A site declared by hook code for the spans it starts itself (a framework's
    /// request): no `code.*` attributes, since no rewritten function is behind them.
    pub const fn hook(rule: &'static str, name: &'static str, kind: Kind) -> Site {
        Site::new(rule, name, rule, "", 0, kind)
    }

    /// The same site for a rule that runs hooks but makes no span (`span = false`).
    pub const fn without_span(mut self) -> Site {
        self.span = false;
        self
    }

    /// Whether calls through this site make spans now.
    #[inline(always)]
    pub fn is_on(&'static self) -> bool {
        match self.state.load(Ordering::Relaxed) {
            ON => true,
            OFF => false,
            _ => self.register(),
        }
    }

    #[cold]
    #[inline(never)]
    fn register(&'static self) -> bool {
        // Registering allocates under the registry lock; a call reached from there (the
        // app's allocator) is simply not traced, instead of waiting for that lock forever.
        let Some(_busy) = crate::call::Busy::enter() else {
            return false;
        };
        // Start the SDK outside the registry lock: it may take a while and must not hold
        // up other threads registering their sites.
        let active = crate::sdk::get().is_some();
        let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        match self.state.load(Ordering::Relaxed) {
            UNREGISTERED => registry.push(self),
            FAILED => return false,
            _ => {}
        }
        self.recompute(active)
    }

    /// On when telemetry is `active` and the site's rule is switched on; off otherwise.
    fn recompute(&self, active: bool) -> bool {
        let on = active && crate::control::rule_enabled(self.rule);
        self.state
            .store(if on { ON } else { OFF }, Ordering::Relaxed);
        on
    }

    /// Switches the site off for the rest of the run: one of its hooks panicked.
    pub(crate) fn fail(&'static self) {
        let _registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        self.state.store(FAILED, Ordering::Relaxed);
    }
}

/// Recomputes every registered site after the switches changed.
pub(crate) fn refresh_all() {
    let active = crate::sdk::get().is_some();
    let registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    for site in registry.iter() {
        if site.state.load(Ordering::Relaxed) != FAILED {
            site.recompute(active);
        }
    }
}

/// Rule names of the sites seen so far, for reports.
pub(crate) fn registered_rules() -> Vec<&'static str> {
    let registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let mut rules: Vec<&'static str> = registry.iter().map(|s| s.rule).collect();
    rules.sort_unstable();
    rules.dedup();
    rules
}
