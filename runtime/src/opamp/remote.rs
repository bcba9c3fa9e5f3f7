//! The remote config document (TOML, `application/toml`): checked whole before any of
//! it takes effect, and the effective config reported back.
//!
//! ```toml
//! disabled_rules = ["reqwest*", "shapes-all"]   # names or globs
//! sampling_ratio = 0.25                          # of new traces; children follow
//! [rules."axum"]
//! capture_headers = ["x-request-id"]             # options the rule declares
//! ```
//!
//! A remote config only switches and tunes what was compiled in: it names rules, never
//! code. An empty document takes every remote setting back.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::value::{self, Value};
use crate::control::{self, Catalog, Remote, RuleOptions};

const KEYS: &str = "disabled_rules, sampling_ratio, [rules.\"NAME\"]";

/// Parses and checks `text` against the rules compiled in (`catalog`; unchecked names
/// when the program did not say). The error names the key and what was wrong.
pub(crate) fn parse(text: &str, catalog: Option<Catalog>) -> Result<Remote, String> {
    let table = value::parse_document(text)?;
    let mut remote = Remote::default();
    for (key, value) in &table {
        match key.as_str() {
            "disabled_rules" => {
                remote.disabled_rules = strings(value, "disabled_rules")?;
                for p in &remote.disabled_rules {
                    check_pattern(p, catalog)?;
                }
            }
            "sampling_ratio" => {
                let r = match value {
                    Value::Float(f) => *f,
                    Value::Integer(i) => *i as f64,
                    other => {
                        return Err(format!(
                            "sampling_ratio: expected a number between 0 and 1, found {}",
                            other.type_str()
                        ))
                    }
                };
                if !(0.0..=1.0).contains(&r) {
                    return Err(format!("sampling_ratio = {r}: must be between 0 and 1"));
                }
                remote.sampling_ratio = Some(r);
            }
            "rules" => {
                let Value::Table(rules) = value else {
                    return Err(format!(
                        "rules: expected tables ([rules.\"NAME\"]), found {}",
                        value.type_str()
                    ));
                };
                for (rule, options) in rules {
                    let parsed = rule_options(rule, options, catalog)?;
                    remote.options.insert(rule.clone(), parsed);
                }
            }
            other => return Err(format!("unknown key {other:?} (expected {KEYS})")),
        }
    }
    Ok(remote)
}

fn strings(value: &Value, key: &str) -> Result<Vec<String>, String> {
    let Value::Array(items) = value else {
        return Err(format!(
            "{key}: expected an array of strings, found {}",
            value.type_str()
        ));
    };
    items
        .iter()
        .map(|v| match v {
            Value::String(s) => Ok(s.trim().to_string()),
            other => Err(format!(
                "{key}: expected strings, found {}",
                other.type_str()
            )),
        })
        .collect()
}

fn rule_names(catalog: Catalog) -> String {
    let names: BTreeSet<&str> = catalog.iter().map(|(n, _)| *n).collect();
    names.into_iter().collect::<Vec<_>>().join(", ")
}

/// A name or glob must match a rule compiled in: a typo would otherwise switch nothing
/// and say nothing.
fn check_pattern(pattern: &str, catalog: Option<Catalog>) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("disabled_rules: an empty name".into());
    }
    let Some(catalog) = catalog else {
        return Ok(());
    };
    if catalog
        .iter()
        .any(|(name, _)| crate::glob::matches(pattern, name))
    {
        return Ok(());
    }
    Err(format!(
        "disabled_rules: {pattern:?} matches no rule compiled into this program (its rules: {})",
        rule_names(catalog)
    ))
}

fn rule_options(
    rule: &str,
    value: &Value,
    catalog: Option<Catalog>,
) -> Result<RuleOptions, String> {
    let Value::Table(options) = value else {
        return Err(format!(
            "rules.{rule:?}: expected a table of options, found {}",
            value.type_str()
        ));
    };
    let declared: Option<&[&str]> = match catalog {
        Some(c) => match c.iter().find(|(name, _)| *name == rule) {
            Some((_, declared)) => Some(declared),
            None => {
                return Err(format!(
                    "rules.{rule:?}: no rule of that name is compiled into this program (its \
                     rules: {})",
                    rule_names(c)
                ))
            }
        },
        None => None,
    };
    let mut parsed = RuleOptions::default();
    for (key, v) in options {
        let is_declared = declared.map_or(control::OPTION_NAMES.contains(&key.as_str()), |d| {
            d.contains(&key.as_str())
        });
        if !is_declared {
            let offered = declared.unwrap_or(control::OPTION_NAMES);
            return Err(format!(
                "rules.{rule:?}.{key}: not an option of this rule (it has: {})",
                if offered.is_empty() {
                    "none".to_string()
                } else {
                    offered.join(", ")
                }
            ));
        }
        match key.as_str() {
            "capture_headers" => {
                let what = format!("rules.{rule:?}.capture_headers");
                let mut names = strings(v, &what)?;
                for n in &mut names {
                    if n.is_empty() || !n.bytes().all(is_token_byte) {
                        return Err(format!("{what}: {n:?} is not a header name"));
                    }
                    n.make_ascii_lowercase();
                    if matches!(n.as_str(), "authorization" | "cookie" | "set-cookie") {
                        return Err(format!(
                            "{what}: {n} is never recorded (it carries secrets)"
                        ));
                    }
                }
                parsed.capture_headers = Some(names.into());
            }
            // OPTION_NAMES lists only the options handled above.
            other => return Err(format!("rules.{rule:?}.{other}: not handled")),
        }
    }
    Ok(parsed)
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The settings in force now, as a TOML document of the same shape.
pub(crate) fn effective() -> String {
    let (enabled, disabled) = control::effective_switches();
    let mut out = String::new();
    if let Some(enabled) = enabled {
        let _ = writeln!(out, "enabled_rules = {}", list(&enabled));
    }
    let _ = writeln!(out, "disabled_rules = {}", list(&disabled));
    let _ = writeln!(out, "sampling_ratio = {:?}", control::sampling_ratio());
    if let Some(catalog) = control::catalog() {
        let names: Vec<String> = catalog.iter().map(|(n, _)| n.to_string()).collect();
        let _ = writeln!(out, "# compiled in: {}", names.join(", "));
    }
    for (rule, o) in control::options() {
        let _ = writeln!(out, "\n[rules.{rule:?}]");
        if let Some(h) = &o.capture_headers {
            let _ = writeln!(out, "capture_headers = {}", list(h));
        }
    }
    out
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOG: Catalog = &[
        ("axum", &["capture_headers"]),
        ("reqwest", &[]),
        ("reqwest-blocking", &[]),
        ("tokio-spawn", &[]),
    ];

    #[test]
    fn the_issue_example() {
        let r = parse(
            "disabled_rules = [\"reqwest*\", \"tokio-spawn\"]\nsampling_ratio = 0.25\n\
             [rules.\"axum\"]\ncapture_headers = [\"X-Request-Id\"]\n",
            Some(CATALOG),
        )
        .unwrap();
        assert_eq!(r.disabled_rules, vec!["reqwest*", "tokio-spawn"]);
        assert_eq!(r.sampling_ratio, Some(0.25));
        let h = r.options["axum"].capture_headers.clone().unwrap();
        assert_eq!(&h[..], ["x-request-id".to_string()]);
        assert_eq!(parse("", Some(CATALOG)).unwrap(), Remote::default());
        assert_eq!(
            parse("sampling_ratio = 1", None).unwrap().sampling_ratio,
            Some(1.0)
        );
    }

    #[test]
    fn errors_name_the_key_and_what_is_wrong() {
        let err = |text: &str| parse(text, Some(CATALOG)).unwrap_err();
        assert!(err("sampling_ratio = 2.0").contains("sampling_ratio = 2: must be between 0 and 1"));
        assert!(err("sampling_ratio = \"x\"").contains("expected a number"));
        assert!(err("disabled_rules = \"axum\"").contains("expected an array of strings"));
        let e = err("disabled_rules = [\"axm\"]");
        assert!(
            e.contains("\"axm\" matches no rule") && e.contains("its rules: axum, reqwest"),
            "{e}"
        );
        assert!(err("disabeld_rules = []").contains("unknown key \"disabeld_rules\""));
        assert!(err("[rules.nope]\ncapture_headers = []").contains("no rule of that name"));
        assert!(err("[rules.reqwest]\ncapture_headers = []")
            .contains("not an option of this rule (it has: none)"));
        assert!(err("[rules.axum]\ncapture_headers = [\"a b\"]").contains("is not a header name"));
        assert!(err("[rules.axum]\ncapture_headers = [\"Cookie\"]").contains("never recorded"));
        // A TOML syntax error says where.
        let e = err("sampling_ratio = ");
        assert!(e.contains("line 1"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn without_a_catalog_names_are_not_checked_but_options_are() {
        assert!(parse("disabled_rules = [\"anything\"]", None).is_ok());
        assert!(parse("[rules.x]\nfoo = 1", None)
            .unwrap_err()
            .contains("not an option"));
    }
}
