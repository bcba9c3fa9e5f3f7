//! Run-time switches: which rules make spans, the sampling ratio, and rules' options.
//!
//! Read from `INSTGO_DISABLED_RULES` / `INSTGO_ENABLED_RULES` (comma-separated names or
//! globs) at start, and changed through this API or by a remote config (OpAMP, see
//! `opamp`) while the program runs. A remote config is a layer over the variables:
//! its `disabled_rules` add to theirs, its `sampling_ratio` replaces the start-up ratio
//! until a config without one comes. A change reaches every call site at once: each
//! site's state byte is recomputed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use crate::glob;

#[derive(Debug, Clone, Default, PartialEq)]
struct Switches {
    /// When set, only rules matching one of these are on.
    enabled: Option<Vec<String>>,
    /// Rules matching one of these are off (applied after `enabled`).
    disabled: Vec<String>,
    /// The remote config's `disabled_rules`, on top of `disabled`.
    remote_disabled: Vec<String>,
}

impl Switches {
    fn allows(&self, rule: &str) -> bool {
        // (No `Option::is_none_or`: this crate builds with the user's toolchain, which may
        // be older than ours.)
        let in_enabled = match &self.enabled {
            Some(pats) => pats.iter().any(|p| glob::matches(p, rule)),
            None => true,
        };
        in_enabled
            && !self
                .disabled
                .iter()
                .chain(&self.remote_disabled)
                .any(|p| glob::matches(p, rule))
    }
}

fn switches() -> &'static RwLock<Switches> {
    static SWITCHES: OnceLock<RwLock<Switches>> = OnceLock::new();
    SWITCHES.get_or_init(|| {
        RwLock::new(Switches {
            enabled: std::env::var("INSTGO_ENABLED_RULES")
                .ok()
                .map(|v| split_list(&v)),
            disabled: std::env::var("INSTGO_DISABLED_RULES")
                .map(|v| split_list(&v))
                .unwrap_or_default(),
            remote_disabled: Vec::new(),
        })
    })
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

pub(crate) fn rule_enabled(rule: &str) -> bool {
    switches()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .allows(rule)
}

/// Replaces the rule switches as a whole: `disabled` names or globs are off; when
/// `enabled` is `Some`, only the rules it matches are on. Takes effect for every site.
pub fn set_rule_switches(enabled: Option<Vec<String>>, disabled: Vec<String>) {
    {
        let mut s = switches().write().unwrap_or_else(|e| e.into_inner());
        s.enabled = enabled;
        s.disabled = disabled;
    }
    crate::site::refresh_all();
}

/// Turns one rule (name or glob) on or off, keeping the other switches.
pub fn set_rule_enabled(pattern: &str, on: bool) {
    {
        let mut s = switches().write().unwrap_or_else(|e| e.into_inner());
        s.disabled.retain(|p| p != pattern);
        if on {
            if let Some(enabled) = s.enabled.as_mut() {
                enabled.push(pattern.to_string());
            }
        } else {
            s.disabled.push(pattern.to_string());
        }
    }
    crate::site::refresh_all();
}

/// Whether spans of `rule` are being made now.
pub fn is_rule_enabled(rule: &str) -> bool {
    crate::sdk::get().is_some() && rule_enabled(rule)
}

/// Sets the ratio of new traces that are sampled (parent-based: a child follows its
/// parent's decision). Values outside 0..=1 are clamped.
pub fn set_sampling_ratio(ratio: f64) {
    crate::sampler::set_ratio(ratio);
}

/// The ratio of root spans sampled now (1.0 for always_on, 0.0 for always_off).
pub fn sampling_ratio() -> f64 {
    crate::sampler::ratio()
}

/// What a remote config sets, checked (`opamp::remote`) before it gets here.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Remote {
    pub disabled_rules: Vec<String>,
    pub sampling_ratio: Option<f64>,
    pub options: BTreeMap<String, RuleOptions>,
}

/// The options a rule declares (`options = [..]` in its rule file) and a remote config
/// sets for it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RuleOptions {
    /// Request headers recorded as `http.request.header.<name>` (lower case).
    pub capture_headers: Option<Arc<[String]>>,
}

/// The option names rules may declare, and so a remote config may set.
pub(crate) const OPTION_NAMES: &[&str] = &["capture_headers"];

static OPTIONS: RwLock<BTreeMap<String, RuleOptions>> = RwLock::new(BTreeMap::new());
/// Whether any rule has options now: the hot path looks no further while not.
static ANY_OPTIONS: AtomicBool = AtomicBool::new(false);

/// Applies a remote config as one change: rule switches, options, then the ratio.
pub(crate) fn apply_remote(r: &Remote) {
    {
        let mut o = OPTIONS.write().unwrap_or_else(|e| e.into_inner());
        let mut s = switches().write().unwrap_or_else(|e| e.into_inner());
        s.remote_disabled = r.disabled_rules.clone();
        ANY_OPTIONS.store(!r.options.is_empty(), Ordering::Relaxed);
        *o = r.options.clone();
    }
    crate::site::refresh_all();
    crate::sampler::set_remote_ratio(r.sampling_ratio);
}

/// The headers the remote config asks `rule` to record, if any.
pub(crate) fn capture_headers(rule: &str) -> Option<Arc<[String]>> {
    if !ANY_OPTIONS.load(Ordering::Relaxed) {
        return None;
    }
    let o = OPTIONS.read().unwrap_or_else(|e| e.into_inner());
    o.get(rule)?.capture_headers.clone()
}

/// Every rule's options now, by rule name.
pub(crate) fn options() -> BTreeMap<String, RuleOptions> {
    OPTIONS.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The switches as they stand: `INSTGO_ENABLED_RULES`, then every disabled pattern.
pub(crate) fn effective_switches() -> (Option<Vec<String>>, Vec<String>) {
    let s = switches().read().unwrap_or_else(|e| e.into_inner());
    let mut disabled = s.disabled.clone();
    for p in &s.remote_disabled {
        if !disabled.contains(p) {
            disabled.push(p.clone());
        }
    }
    (s.enabled.clone(), disabled)
}

/// The rules compiled into this program and the options each declares, as the tool
/// wrote them into `main`; empty when `main` was not rewritten (a test harness).
pub type Catalog = &'static [(&'static str, &'static [&'static str])];

static CATALOG: OnceLock<Catalog> = OnceLock::new();

pub(crate) fn set_catalog(c: Catalog) {
    let _ = CATALOG.set(c);
}

/// The compiled-in rules, when `main` told them.
pub(crate) fn catalog() -> Option<Catalog> {
    CATALOG.get().copied()
}

/// Rule names of the instrumented functions called so far in this process.
pub fn active_rules() -> Vec<&'static str> {
    crate::site::registered_rules()
}

/// Exports what is buffered now, waiting at most `timeout`. Returns whether it finished.
pub fn flush(timeout: std::time::Duration) -> bool {
    let metrics = crate::metrics::flush(timeout);
    crate::sdk::flush(timeout) && metrics
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enabled_then_disabled() {
        let s = Switches {
            enabled: None,
            disabled: vec!["reqwest*".into()],
            remote_disabled: vec!["tokio-*".into()],
        };
        assert!(s.allows("axum"));
        assert!(!s.allows("reqwest-client"));
        assert!(!s.allows("tokio-spawn"));
        let s = Switches {
            enabled: Some(vec!["shapes-*".into()]),
            disabled: vec!["shapes-x".into()],
            remote_disabled: Vec::new(),
        };
        assert!(s.allows("shapes-all"));
        assert!(!s.allows("shapes-x"));
        assert!(!s.allows("axum"));
    }

    #[test]
    fn list_parsing_ignores_blanks() {
        assert_eq!(split_list(" a, b*,,c "), vec!["a", "b*", "c"]);
        assert!(split_list("").is_empty());
    }
}
