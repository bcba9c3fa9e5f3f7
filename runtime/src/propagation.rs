//! Carrying context across processes: W3C `traceparent`/`tracestate` and `baggage`.
//!
//! Hook code lives in framework crates whose header types this crate cannot name, so the
//! API takes closures over `&str` instead of a carrier type.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::Context;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

struct SetFn<'a>(&'a mut dyn FnMut(&str, &str));
impl Injector for SetFn<'_> {
    fn set(&mut self, key: &str, value: String) {
        (self.0)(key, &value)
    }
}

/// Writes the current context's `traceparent`, `tracestate` and `baggage` through `set`.
pub fn inject(set: &mut dyn FnMut(&str, &str)) {
    inject_context(&Context::current(), set)
}

/// Writes `cx`'s propagation headers through `set`.
pub fn inject_context(cx: &Context, set: &mut dyn FnMut(&str, &str)) {
    let mut carrier = SetFn(set);
    TraceContextPropagator::new().inject_context(cx, &mut carrier);
    BaggagePropagator::new().inject_context(cx, &mut carrier);
}

/// Reads propagation headers through `get` (a header lookup, case-insensitive in HTTP)
/// into a new context whose parent is the remote span (an empty one without headers, so
/// whatever is current on this thread is not inherited). Malformed headers are ignored.
pub fn extract(get: &dyn Fn(&str) -> Option<String>) -> Context {
    let owned = Owned::read(get);
    // Most requests carry none of the headers (a trace's first service): the propagators
    // would then only build empty contexts.
    if owned.0.iter().all(Option::is_none) {
        return Context::new();
    }
    // On an empty context, not the current one (the propagators' default): a server
    // whose accept loop runs inside a span must not make requests its children.
    let cx = TraceContextPropagator::new().extract_with_context(&Context::new(), &owned);
    BaggagePropagator::new().extract_with_context(&cx, &owned)
}

const HEADERS: [&str; 3] = ["traceparent", "tracestate", "baggage"];

/// The propagation headers (in [`HEADERS`]' order), fetched once so the propagators can
/// borrow them.
struct Owned([Option<String>; 3]);

impl Owned {
    fn read(get: &dyn Fn(&str) -> Option<String>) -> Self {
        let traceparent = get(HEADERS[0]);
        // `tracestate` means nothing without a `traceparent`.
        let tracestate = traceparent.as_ref().and_then(|_| get(HEADERS[1]));
        Owned([traceparent, tracestate, get(HEADERS[2])])
    }
}

impl Extractor for Owned {
    fn get(&self, key: &str) -> Option<&str> {
        let i = HEADERS.iter().position(|k| k.eq_ignore_ascii_case(key))?;
        self.0[i].as_deref()
    }
    fn keys(&self) -> Vec<&str> {
        HEADERS
            .iter()
            .zip(&self.0)
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| *k)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::baggage::BaggageExt;
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry::KeyValue;
    use std::collections::HashMap;

    #[test]
    fn round_trip() {
        let sc = SpanContext::new(
            TraceId::from(0x0af7651916cd43dd8448eb211c80319c_u128),
            SpanId::from(0xb7ad6b7169203331_u64),
            TraceFlags::SAMPLED,
            true,
            TraceState::from_key_value([("vendor", "x")]).unwrap(),
        );
        let cx = Context::new()
            .with_remote_span_context(sc)
            .with_baggage([KeyValue::new("user", "alice")]);
        let mut headers = HashMap::new();
        inject_context(&cx, &mut |k, v| {
            headers.insert(k.to_string(), v.to_string());
        });
        assert_eq!(
            headers["traceparent"],
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        );
        assert_eq!(headers["tracestate"], "vendor=x");
        assert_eq!(headers["baggage"], "user=alice");

        let back = extract(&|k| headers.get(k).cloned());
        let span = back.span();
        let got = span.span_context();
        assert_eq!(
            got.trace_id(),
            TraceId::from(0x0af7651916cd43dd8448eb211c80319c_u128)
        );
        assert!(got.is_remote() && got.is_sampled());
        assert_eq!(
            back.baggage().get("user").map(|v| v.as_str().to_string()),
            Some("alice".into())
        );
    }

    #[test]
    fn malformed_headers_are_ignored() {
        for bad in [
            "garbage",
            "00-xyz-abc-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "",
        ] {
            let cx = extract(&|k| (k == "traceparent").then(|| bad.to_string()));
            assert!(
                !cx.span().span_context().is_valid(),
                "{bad:?} gave a valid context"
            );
        }
    }

    #[test]
    fn nothing_current_is_inherited() {
        let current = Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(7_u128),
            SpanId::from(7_u64),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        ));
        let _guard = current.attach();
        let none = extract(&|_| None);
        assert!(!none.span().span_context().is_valid());
        let only_baggage = extract(&|k| (k == "baggage").then(|| "user=bob".to_string()));
        assert!(!only_baggage.span().span_context().is_valid());
        assert_eq!(
            only_baggage
                .baggage()
                .get("user")
                .map(|v| v.as_str().to_string()),
            Some("bob".into())
        );
    }
}
