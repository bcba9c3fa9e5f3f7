//! A sampler whose ratio can change while the program runs.
//!
//! Configured from `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` at start; the ratio
//! is an atomic so that [`crate::control::set_sampling_ratio`] needs no lock on the hot path.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use opentelemetry::trace::{Link, SpanKind, TraceContextExt, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SamplingDecision, SamplingResult, ShouldSample};

static RATIO_BITS: AtomicU64 = AtomicU64::new(0x3FF0_0000_0000_0000); // 1.0f64
/// The ratio without a remote config: the variables', or the last `set_ratio`.
static BASE_BITS: AtomicU64 = AtomicU64::new(0x3FF0_0000_0000_0000);
static PARENT_BASED: AtomicBool = AtomicBool::new(true);

/// What `OTEL_TRACES_SAMPLER`/`_ARG` asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SamplerConfig {
    pub ratio: f64,
    pub parent_based: bool,
}

pub(crate) fn parse(sampler: Option<&str>, arg: Option<&str>) -> Result<SamplerConfig, String> {
    let ratio_arg = || -> Result<f64, String> {
        match arg.map(str::trim) {
            None | Some("") => Ok(1.0),
            Some(a) => match a.parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
                _ => Err(format!(
                    "OTEL_TRACES_SAMPLER_ARG={a:?} is not a ratio between 0 and 1"
                )),
            },
        }
    };
    let (ratio, parent_based) = match sampler.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("parentbased_always_on") => (1.0, true),
        Some("always_on") => (1.0, false),
        Some("always_off") => (0.0, false),
        Some("parentbased_always_off") => (0.0, true),
        Some("traceidratio") => (ratio_arg()?, false),
        Some("parentbased_traceidratio") => (ratio_arg()?, true),
        Some(other) => return Err(format!("OTEL_TRACES_SAMPLER={other:?} is not supported")),
    };
    Ok(SamplerConfig {
        ratio,
        parent_based,
    })
}

pub(crate) fn configure(c: SamplerConfig) {
    PARENT_BASED.store(c.parent_based, Ordering::Relaxed);
    set_ratio(c.ratio);
}

pub(crate) fn set_ratio(ratio: f64) {
    let r = clamp(ratio);
    BASE_BITS.store(r.to_bits(), Ordering::Relaxed);
    RATIO_BITS.store(r.to_bits(), Ordering::Relaxed);
}

fn clamp(ratio: f64) -> f64 {
    if ratio.is_nan() {
        0.0
    } else {
        ratio.clamp(0.0, 1.0)
    }
}

/// A remote config's ratio, or back to the base one when it has none.
pub(crate) fn set_remote_ratio(ratio: Option<f64>) {
    let r = match ratio {
        Some(r) => clamp(r),
        None => f64::from_bits(BASE_BITS.load(Ordering::Relaxed)),
    };
    RATIO_BITS.store(r.to_bits(), Ordering::Relaxed);
}

pub(crate) fn ratio() -> f64 {
    f64::from_bits(RATIO_BITS.load(Ordering::Relaxed))
}

/// Whether a root span with this trace id is sampled at `ratio`: the same rule as the
/// specification's TraceIdRatioBased (the low 63 bits of the id against a bound).
pub(crate) fn ratio_samples(trace_id: TraceId, ratio: f64) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    if ratio <= 0.0 {
        return false;
    }
    let bytes = trace_id.to_bytes();
    let low = u64::from_be_bytes(bytes[8..16].try_into().unwrap_or([0; 8])) >> 1;
    let bound = (ratio * (1u64 << 63) as f64) as u64;
    low < bound
}

#[derive(Debug, Clone)]
pub(crate) struct Switchable;

impl ShouldSample for Switchable {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        _name: &str,
        _span_kind: &SpanKind,
        _attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        let parent = parent_context.map(|cx| cx.span().span_context().clone());
        let parent = parent.filter(|sc| sc.is_valid());
        let sampled = match &parent {
            Some(sc) if PARENT_BASED.load(Ordering::Relaxed) => sc.is_sampled(),
            _ => ratio_samples(trace_id, ratio()),
        };
        SamplingResult {
            decision: if sampled {
                SamplingDecision::RecordAndSample
            } else {
                SamplingDecision::Drop
            },
            attributes: Vec::new(),
            trace_state: parent
                .map(|sc| sc.trace_state().clone())
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampler_variables() {
        assert_eq!(
            parse(None, None).unwrap(),
            SamplerConfig {
                ratio: 1.0,
                parent_based: true
            }
        );
        assert_eq!(
            parse(Some("traceidratio"), Some("0.25")).unwrap(),
            SamplerConfig {
                ratio: 0.25,
                parent_based: false
            }
        );
        assert_eq!(
            parse(Some("ParentBased_TraceIdRatio"), Some(" 0.5 ")).unwrap(),
            SamplerConfig {
                ratio: 0.5,
                parent_based: true
            }
        );
        assert_eq!(parse(Some("always_off"), None).unwrap().ratio, 0.0);
        assert!(parse(Some("traceidratio"), Some("2")).is_err());
        assert!(parse(Some("traceidratio"), Some("x")).is_err());
        assert!(parse(Some("jaeger_remote"), None).is_err());
    }

    #[test]
    fn ratio_is_roughly_right() {
        let n = 20_000u64;
        let hits = (0..n)
            .filter(|i| {
                let id = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) as u128) << 1 | 1;
                ratio_samples(TraceId::from(id.rotate_left(17)), 0.1)
            })
            .count() as f64;
        let p = hits / n as f64;
        assert!((0.08..0.12).contains(&p), "observed ratio {p}");
        assert!(ratio_samples(TraceId::from(5u128), 1.0));
        assert!(!ratio_samples(TraceId::from(5u128), 0.0));
    }
}
