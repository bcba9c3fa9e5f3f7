//! Run-time switches: which rules make spans, and the sampling ratio.
//!
//! Read from `INSTGO_DISABLED_RULES` / `INSTGO_ENABLED_RULES` (comma-separated names or
//! globs) at start, and changed through this API while the program runs (the remote
//! control issue drives it from OpAMP). A change reaches every call site at once: each
//! site's state byte is recomputed.

use std::sync::{OnceLock, RwLock};

use crate::glob;

#[derive(Debug, Clone, Default, PartialEq)]
struct Switches {
    /// When set, only rules matching one of these are on.
    enabled: Option<Vec<String>>,
    /// Rules matching one of these are off (applied after `enabled`).
    disabled: Vec<String>,
}

impl Switches {
    fn allows(&self, rule: &str) -> bool {
        // (No `Option::is_none_or`: this crate builds with the user's toolchain, which may
        // be older than ours.)
        let in_enabled = match &self.enabled {
            Some(pats) => pats.iter().any(|p| glob::matches(p, rule)),
            None => true,
        };
        in_enabled && !self.disabled.iter().any(|p| glob::matches(p, rule))
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
    *switches().write().unwrap_or_else(|e| e.into_inner()) = Switches { enabled, disabled };
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
        };
        assert!(s.allows("axum"));
        assert!(!s.allows("reqwest-client"));
        let s = Switches {
            enabled: Some(vec!["shapes-*".into()]),
            disabled: vec!["shapes-x".into()],
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
