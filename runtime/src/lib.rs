//! instgo-runtime: what code rewritten by `cargo instrument` calls into.
//!
//! The tool links this crate into every crate it rewrites (`--extern instgo_runtime=...`);
//! applications never depend on it in their `Cargo.toml`. Its job:
//!
//! * give injected code a span per instrumented call that costs one relaxed atomic load
//!   when the call site's rule is switched off ([`__private::Site`]);
//! * keep the OpenTelemetry context right across `.await` ([`__private::Instrumented`]);
//! * start the OpenTelemetry SDK by itself from the standard `OTEL_*` variables, export
//!   on its own threads, and flush with a bounded timeout when the process exits;
//! * let rules and the sampling ratio be switched while the program runs ([`control`]);
//! * propagate context across processes through closures over header getters and setters
//!   ([`propagation`]), so hook code in any framework crate can use it without sharing a
//!   type with this crate.
//!
//! * give hook code (a rule's own source file, compiled into the target crate) a
//!   [`hook::CallContext`] and a way to carry context into spawned work ([`carry`]);
//! * join an application's own OpenTelemetry copy to the same tree ([`bridge`]);
//! * be an OpAMP agent: seen by a server, reconfigured by it while running ([`opamp`]);
//!
//! It never writes to stdout, never panics into the application and never blocks the
//! application's threads on export.

mod aggregate;
pub mod bridge;
mod build_time;
mod call;
pub mod carry;
pub mod control;
mod diag;
mod glob;
mod grpc;
pub mod hook;
pub mod http;
pub mod metrics;
mod observe;
pub mod opamp;
mod otlp_json;
pub mod propagation;
mod queue;
mod resource;
pub mod rpc;
mod sampler;
mod sdk;
mod sink;
mod site;
mod transport;

/// The API that rewritten code uses. Not for people: its shape follows the rewriter.
/// The value type of span attributes set by hooks, and metric attributes.
pub use opentelemetry::{KeyValue, Value};

#[doc(hidden)]
pub mod __private {
    pub use crate::call::{
        enter, start_async, AsyncCall, Done, Instrumented, Observer, Record, Returned, SyncCall,
    };
    pub use crate::hook::{enter_hooked, start_async_hooked, HookedAsyncCall, HookedCall};
    pub use crate::observe::{
        AttrDebug, AttrDisplay, AttrNone, AttrOf, AttrTyped, Observe, ObserveAny, ObserveErrDebug,
        ObserveErrDisplay, ObserveErrPlain,
    };
    pub use crate::site::{Kind, Site};

    /// Called first thing in an instrumented binary's `main`: starts the SDK before user
    /// code runs so that the first request is not the one paying for it.
    pub fn start() {
        let _ = crate::sdk::get();
    }

    /// [`start`], telling the runtime which rules were compiled in and the options each
    /// declares, so a remote config naming another is refused with the list.
    pub fn start_with(catalog: crate::control::Catalog) {
        crate::control::set_catalog(catalog);
        start();
    }
}
