//! The TOML schema of rules files and its compilation into [`Rule`]s: unknown keys are
//! errors, and every error names `file:line:column`.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::{
    normalize_crate, Hooks, Injected, Origin, Rule, RuleSet, Selector, SpanAction, SpanKind, Vis,
    WrapCall,
};

/// A rules file that cannot be used, with the position of the problem.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", file.display())]
pub struct RuleError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
    #[serde(default)]
    disable: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    #[serde(rename = "crate")]
    krate: Spanned<String>,
    version: Option<Spanned<String>>,
    #[serde(rename = "fn")]
    func: Option<Spanned<String>>,
    #[serde(rename = "impl")]
    impl_type: Option<String>,
    #[serde(rename = "trait")]
    trait_name: Option<String>,
    path: Option<String>,
    vis: Option<Spanned<String>>,
    attr: Option<String>,
    #[serde(rename = "async")]
    is_async: Option<bool>,
    span: Option<Spanned<RawSpanOrOff>>,
    hooks: Option<Spanned<RawHooks>>,
    add_file: Option<Spanned<String>>,
    wrap_call: Option<Spanned<RawWrapCall>>,
    options: Option<Spanned<Vec<String>>>,
}

/// `span = false`, or a `span` table. (Not `#[serde(untagged)]`: that would swallow the
/// table's own errors, such as an unknown key, into "did not match any variant".)
enum RawSpanOrOff {
    Off(bool),
    Span(RawSpan),
}

impl<'de> Deserialize<'de> for RawSpanOrOff {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawSpanOrOff;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`false` or a table such as { name = \"{fn}\", kind = \"server\" }")
            }
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<RawSpanOrOff, E> {
                Ok(RawSpanOrOff::Off(b))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<RawSpanOrOff, A::Error> {
                RawSpan::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawSpanOrOff::Span)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSpan {
    name: Option<String>,
    kind: Option<Spanned<String>>,
    #[serde(default)]
    attributes: std::collections::BTreeMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHooks {
    file: Spanned<String>,
    on_enter: Option<Spanned<String>>,
    on_exit: Option<Spanned<String>>,
    args: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    mut_args: Vec<Spanned<String>>,
    #[serde(default)]
    map_args: std::collections::BTreeMap<String, Spanned<String>>,
    mut_return: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWrapCall {
    #[serde(rename = "fn")]
    path: Spanned<String>,
    with: Spanned<String>,
    method: Option<Spanned<String>>,
    arg: Option<Spanned<usize>>,
    requires: Option<Spanned<String>>,
}

/// Reads a file a rules document names: `Ok((name for messages, text))`.
pub type ReadFile = dyn Fn(&str) -> Result<(String, String), String>;

/// One rules document and where it came from.
pub struct Source<'a> {
    /// Shown in errors and in `explain`: a path, or `builtin:<framework>/rule.toml`.
    pub file: PathBuf,
    pub text: &'a str,
    pub builtin: bool,
    /// Reads a file named by the rules (`hooks.file`, `add_file`) relative to this
    /// document: its name for messages and its text.
    pub read: &'a ReadFile,
}

fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

fn origin(src: &Source<'_>, offset: usize) -> Origin {
    Origin {
        file: src.file.display().to_string(),
        line: position(src.text, offset).0,
    }
}

fn err(src: &Source<'_>, offset: usize, message: impl Into<String>) -> RuleError {
    let (line, column) = position(src.text, offset);
    RuleError {
        file: src.file.clone(),
        line,
        column,
        message: message.into(),
    }
}

/// Parses every source, built-ins first, and applies `disable` lists.
pub fn compile(sources: &[Source<'_>]) -> Result<RuleSet, RuleError> {
    let mut rules: Vec<(Rule, bool)> = Vec::new();
    let mut disables: Vec<(String, Origin)> = Vec::new();
    for src in sources {
        let raw: RawFile = toml::from_str(src.text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            err(src, offset, e.message().trim().to_string())
        })?;
        for d in raw.disable {
            disables.push((d.get_ref().clone(), origin(src, d.span().start)));
        }
        for r in raw.rule {
            let offset = r.span().start;
            let rule = convert(src, offset, r.into_inner())?;
            if let Some((prev, _)) = rules.iter().find(|(p, _)| p.name == rule.name) {
                return Err(err(
                    src,
                    offset,
                    format!("rule `{}` is already defined at {}", rule.name, prev.origin),
                ));
            }
            rules.push((rule, src.builtin));
        }
    }
    let mut unused_disables = Vec::new();
    for (pattern, origin) in disables {
        let before = rules.len();
        rules.retain(|(r, builtin)| !(*builtin && crate::glob::matches(&pattern, &r.name)));
        if rules.len() == before {
            unused_disables.push((pattern, origin));
        }
    }
    Ok(RuleSet {
        rules: rules.into_iter().map(|(r, _)| r).collect(),
        unused_disables,
    })
}

fn convert(src: &Source<'_>, offset: usize, raw: RawRule) -> Result<Rule, RuleError> {
    let name = raw.name.get_ref().trim().to_string();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(err(
            src,
            raw.name.span().start,
            "rule names are non-empty and have no spaces",
        ));
    }
    let krate = raw.krate.get_ref().trim();
    if krate.is_empty()
        || !krate
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '*' | '?'))
    {
        return Err(err(
            src,
            raw.krate.span().start,
            format!(
                "`crate` must be a package name or a glob over package names, got {:?}",
                raw.krate.get_ref()
            ),
        ));
    }
    let version = match &raw.version {
        Some(v) => {
            semver::VersionReq::parse(v.get_ref()).map_err(|e| {
                err(
                    src,
                    v.span().start,
                    format!("`version` is not a semver range ({e}): {:?}", v.get_ref()),
                )
            })?;
            Some(v.get_ref().clone())
        }
        None => None,
    };
    let vis = match raw
        .vis
        .as_ref()
        .map(|v| (v.get_ref().as_str(), v.span().start))
    {
        None | Some(("any", _)) => Vis::Any,
        Some(("pub", _)) => Vis::Pub,
        Some(("crate", _)) | Some(("pub(crate)", _)) => Vis::Crate,
        Some(("private", _)) => Vis::Private,
        Some((other, at)) => {
            return Err(err(
                src,
                at,
                format!("`vis` is one of pub, crate, private, any; got {other:?}"),
            ))
        }
    };
    let func = raw
        .func
        .as_ref()
        .map(|f| f.get_ref().trim().to_string())
        .unwrap_or_else(|| "*".into());
    if func.is_empty() {
        let at = raw.func.as_ref().map(|f| f.span().start).unwrap_or(offset);
        return Err(err(
            src,
            at,
            "`fn` is an empty pattern; use \"*\" for every function",
        ));
    }
    let (hooks, hook_fns) = match raw.hooks {
        Some(h) => {
            let (h, fns) = convert_hooks(src, h)?;
            (Some(h), fns)
        }
        None => (None, Vec::new()),
    };
    let wrap_call = match raw.wrap_call {
        Some(w) => {
            let at = w.span().start;
            let w = w.into_inner();
            let path = w.path.get_ref().trim().trim_start_matches("::").to_string();
            if path.split("::").count() < 2 || !path.split("::").all(is_ident) {
                return Err(err(
                    src,
                    w.path.span().start,
                    format!("`wrap_call.fn` must be a full path such as \"std::thread::spawn\", got {:?}", w.path.get_ref()),
                ));
            }
            let with = ident(src, &w.with, "wrap_call.with")?;
            let Some(h) = &hooks else {
                return Err(err(src, at, "`wrap_call` calls a function of the rule's hook file: add `hooks = { file = \"...\" }`"));
            };
            require_fn(src, &w.with, &h.module.file, &hook_fns, &with)?;
            let method = match &w.method {
                Some(m) => Some(ident(src, m, "wrap_call.method")?),
                None => None,
            };
            if let (None, Some(a)) = (&method, &w.arg) {
                return Err(err(src, a.span().start, "`wrap_call.arg` chooses the argument of a wrapped method call: add `method = \"...\"`"));
            }
            let arg = w.arg.as_ref().map_or(0, |a| *a.get_ref());
            let requires = match &w.requires {
                Some(r) => {
                    if let Err(e) = semver::VersionReq::parse(r.get_ref()) {
                        return Err(err(
                            src,
                            r.span().start,
                            format!(
                                "`wrap_call.requires` is not a semver requirement ({e}): {:?}",
                                r.get_ref()
                            ),
                        ));
                    }
                    Some(r.get_ref().clone())
                }
                None => None,
            };
            Some(WrapCall {
                path,
                with,
                method,
                arg,
                requires,
            })
        }
        None => None,
    };
    let add_file = match raw.add_file {
        Some(f) => Some(read_injected(src, &f)?.0),
        None => None,
    };
    let options = match raw.options {
        Some(o) => {
            let at = o.span().start;
            let names = o.into_inner();
            if let Some(bad) = names
                .iter()
                .find(|n| !super::OPTION_NAMES.contains(&n.as_str()))
            {
                return Err(err(
                    src,
                    at,
                    format!(
                        "`options`: {bad:?} is not an option the runtime has (it has: {})",
                        super::OPTION_NAMES.join(", ")
                    ),
                ));
            }
            names
        }
        None => Vec::new(),
    };
    // No `span` key: a span unless the rule only wraps calls or adds a file (hooks that
    // run in the body come with one). `span = false` turns it off.
    let raw_span = match raw.span.map(Spanned::into_inner) {
        Some(RawSpanOrOff::Off(false)) => None,
        Some(RawSpanOrOff::Off(true)) => Some(RawSpan::default()),
        Some(RawSpanOrOff::Span(s)) => Some(s),
        None if hooks.as_ref().is_some_and(Hooks::run_in_body) => Some(RawSpan::default()),
        None if wrap_call.is_some() || add_file.is_some() => None,
        None => Some(RawSpan::default()),
    };
    let span = match raw_span {
        Some(span) => Some(convert_span(src, offset, span)?),
        None => None,
    };
    Ok(Rule {
        name,
        krate: normalize_crate(krate),
        version,
        selector: Selector {
            func,
            impl_type: raw.impl_type,
            trait_name: raw.trait_name,
            path: raw.path,
            vis,
            attr: raw.attr,
            is_async: raw.is_async,
        },
        span,
        hooks,
        add_file,
        wrap_call,
        options,
        origin: origin(src, offset),
    })
}

fn convert_span(src: &Source<'_>, offset: usize, span: RawSpan) -> Result<SpanAction, RuleError> {
    let kind = match span
        .kind
        .as_ref()
        .map(|k| (k.get_ref().as_str(), k.span().start))
    {
        None | Some(("internal", _)) => SpanKind::Internal,
        Some(("server", _)) => SpanKind::Server,
        Some(("client", _)) => SpanKind::Client,
        Some(("producer", _)) => SpanKind::Producer,
        Some(("consumer", _)) => SpanKind::Consumer,
        Some((other, at)) => {
            return Err(err(
                src,
                at,
                format!(
                "span `kind` is one of internal, server, client, producer, consumer; got {other:?}"
            ),
            ))
        }
    };
    let template = span.name.unwrap_or_else(|| "{path}".into());
    if let Some(bad) = unknown_placeholder(&template) {
        return Err(err(
            src,
            offset,
            format!("span name {template:?} uses `{{{bad}}}`; known: {{path}}, {{fn}}, {{type}}, {{crate}}"),
        ));
    }
    let mut attributes = Vec::new();
    for (key, expr) in span.attributes {
        let e = expr.get_ref().trim();
        let mut parts = e.split('.');
        let head_ok = parts.next().is_some_and(is_ident);
        if !head_ok
            || !parts
                .all(|p| is_ident(p) || (!p.is_empty() && p.chars().all(|c| c.is_ascii_digit())))
        {
            return Err(err(
                src,
                expr.span().start,
                format!("attribute `{key}`: {e:?} is not an argument or a field of one (`req`, `self.name`, `user.id`)"),
            ));
        }
        attributes.push((key, e.to_string()));
    }
    Ok(SpanAction {
        name: template,
        kind,
        attributes,
    })
}

/// The hooks, and the functions their file defines (for the rule's `wrap_call.with`).
fn convert_hooks(
    src: &Source<'_>,
    raw: Spanned<RawHooks>,
) -> Result<(Hooks, Vec<FileFn>), RuleError> {
    let raw = raw.into_inner();
    let (module, fns) = read_injected(src, &raw.file)?;
    let named = |f: &Option<Spanned<String>>, what: &str| -> Result<Option<String>, RuleError> {
        match f {
            Some(f) => {
                let name = ident(src, f, what)?;
                require_fn(src, f, &module.file, &fns, &name)?;
                Ok(Some(name))
            }
            None => Ok(None),
        }
    };
    let on_enter = named(&raw.on_enter, "hooks.on_enter")?;
    let on_exit = named(&raw.on_exit, "hooks.on_exit")?;
    let idents = |list: &[Spanned<String>], what: &str| -> Result<Vec<String>, RuleError> {
        list.iter().map(|a| ident(src, a, what)).collect()
    };
    let args = match &raw.args {
        Some(a) => Some(idents(a, "hooks.args")?),
        None => None,
    };
    let mut_args = idents(&raw.mut_args, "hooks.mut_args")?;
    let mut map_args = Vec::new();
    for (arg, f) in &raw.map_args {
        if !is_ident(arg) {
            return Err(err(
                src,
                f.span().start,
                format!("`hooks.map_args`: {arg:?} is not a parameter name"),
            ));
        }
        let name = ident(src, f, "hooks.map_args")?;
        require_fn(src, f, &module.file, &fns, &name)?;
        map_args.push((arg.clone(), name));
    }
    let mut_return =
        match &raw.mut_return {
            Some(m) if *m.get_ref() && on_exit.is_none() => return Err(err(
                src,
                m.span().start,
                "`hooks.mut_return` needs an `on_exit` hook to receive `&mut` the returned value"
                    .to_string(),
            )),
            Some(m) => *m.get_ref(),
            None => false,
        };
    let hooks = Hooks {
        module,
        on_enter,
        on_exit,
        args,
        mut_args,
        map_args,
        mut_return,
    };
    Ok((hooks, fns))
}

fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f == '_' || f.is_ascii_alphabetic())
        && c.all(|x| x == '_' || x.is_ascii_alphanumeric())
}

fn ident(src: &Source<'_>, v: &Spanned<String>, what: &str) -> Result<String, RuleError> {
    let s = v.get_ref().trim();
    if is_ident(s) {
        Ok(s.to_string())
    } else {
        Err(err(
            src,
            v.span().start,
            format!("`{what}` must be an identifier, got {s:?}"),
        ))
    }
}

/// A top-level function of an injected file, and whether the rest of the crate can call
/// it (any `pub`).
type FileFn = (String, bool);

/// Reads and parses (once) a file the rule injects; returns it with its functions.
fn read_injected(
    src: &Source<'_>,
    file: &Spanned<String>,
) -> Result<(Injected, Vec<FileFn>), RuleError> {
    let (shown, source) = (src.read)(file.get_ref()).map_err(|e| {
        err(
            src,
            file.span().start,
            format!("cannot read {:?}: {e}", file.get_ref()),
        )
    })?;
    let parsed = syn::parse_file(&source).map_err(|e| {
        let at = e.span().start();
        err(
            src,
            file.span().start,
            format!("{shown}:{}:{}: not valid Rust: {e}", at.line, at.column + 1),
        )
    })?;
    let fns = parsed
        .items
        .iter()
        .filter_map(|i| match i {
            syn::Item::Fn(f) => Some((
                f.sig.ident.to_string(),
                !matches!(f.vis, syn::Visibility::Inherited),
            )),
            _ => None,
        })
        .collect();
    let injected = Injected {
        file: shown,
        source,
    };
    Ok((injected, fns))
}

/// The hook file must define `name` as a function the instrumented crate can call.
fn require_fn(
    src: &Source<'_>,
    at: &Spanned<String>,
    file: &str,
    fns: &[FileFn],
    name: &str,
) -> Result<(), RuleError> {
    match fns.iter().find(|(n, _)| n == name) {
        Some((_, true)) => Ok(()),
        Some((_, false)) => Err(err(
            src,
            at.span().start,
            format!("`{name}` in {file} must be `pub` (or `pub(crate)`): instrumented functions anywhere in the crate call it"),
        )),
        None => Err(err(
            src,
            at.span().start,
            format!("{file} has no function `{name}`"),
        )),
    }
}

fn unknown_placeholder(template: &str) -> Option<String> {
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}')? + start;
        let key = &rest[start + 1..end];
        if !matches!(key, "path" | "fn" | "type" | "crate") {
            return Some(key.to_string());
        }
        rest = &rest[end + 1..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_files(name: &str) -> Result<(String, String), String> {
        Err(format!("no file {name} in this test"))
    }

    fn compile_one(text: &str) -> Result<RuleSet, RuleError> {
        compile(&[Source {
            file: "rules.toml".into(),
            text,
            builtin: false,
            read: &no_files,
        }])
    }

    #[test]
    fn minimal_rule() {
        let set =
            compile_one("[[rule]]\nname = \"shapes-all\"\ncrate = \"shapes-lib\"\nfn = \"*\"\n")
                .unwrap();
        let r = &set.rules[0];
        assert_eq!(r.krate, "shapes_lib");
        assert_eq!(r.selector.func, "*");
        assert_eq!(r.span.as_ref().unwrap().kind, SpanKind::Internal);
        assert_eq!(r.origin.to_string(), "rules.toml:1");
    }

    #[test]
    fn call_wrapping_rules_apply_only_where_the_callee_crate_is_in_reach() {
        let mut r = compile_one("[[rule]]\nname = \"a\"\ncrate = \"x\"\n")
            .unwrap()
            .rules
            .remove(0);
        r.span = None;
        r.wrap_call = Some(WrapCall {
            path: "tokio::spawn".into(),
            with: "spawn".into(),
            method: None,
            arg: 0,
            requires: None,
        });
        assert!(!r.can_apply_with(&["serde".into()]));
        assert!(r.can_apply_with(&["serde".into(), "tokio".into()]));
        r.wrap_call.as_mut().unwrap().path = "std::thread::spawn".into();
        assert!(r.can_apply_with(&[]));
        // A rule that also rewrites functions applies regardless.
        r.wrap_call.as_mut().unwrap().path = "tokio::spawn".into();
        r.span = compile_one("[[rule]]\nname = \"b\"\ncrate = \"x\"\n")
            .unwrap()
            .rules[0]
            .span
            .clone();
        assert!(r.can_apply_with(&[]));
    }

    #[test]
    fn unknown_key_is_an_error_with_position() {
        let e = compile_one("[[rule]]\nname = \"a\"\ncrate = \"x\"\nfunc = \"*\"\n").unwrap_err();
        assert_eq!((e.line, e.column), (4, 1), "{e}");
        assert!(e.to_string().starts_with("rules.toml:4:1: "), "{e}");
        assert!(e.message.contains("func"), "{e}");
    }

    #[test]
    fn syntax_error_has_position() {
        let e = compile_one("[[rule]]\nname = \"a\ncrate = \"x\"\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn bad_values_point_at_the_value() {
        let e = compile_one("[[rule]]\nname = \"a\"\ncrate = \"x\"\nversion = \">=1.0 <<2\"\n")
            .unwrap_err();
        assert_eq!((e.line, e.column), (4, 11), "{e}");
        let e =
            compile_one("[[rule]]\nname = \"a\"\ncrate = \"x\"\nvis = \"public\"\n").unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        let e = compile_one("[[rule]]\nname = \"a\"\ncrate = \"x\"\nspan = { kind = \"serv\" }\n")
            .unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        let e =
            compile_one("[[rule]]\nname = \"a\"\ncrate = \"x\"\nspan = { name = \"{nope}\" }\n")
                .unwrap_err();
        assert!(e.message.contains("{nope}"), "{e}");
    }

    #[test]
    fn duplicate_names_and_disables() {
        let builtin = "[[rule]]\nname = \"axum-server\"\ncrate = \"axum\"\n";
        let user =
            "disable = [\"axum-*\", \"nothing-*\"]\n[[rule]]\nname = \"mine\"\ncrate = \"app\"\n";
        let set = compile(&[
            Source {
                file: "builtin:axum/rule.toml".into(),
                text: builtin,
                builtin: true,
                read: &no_files,
            },
            Source {
                file: "rules.toml".into(),
                text: user,
                builtin: false,
                read: &no_files,
            },
        ])
        .unwrap();
        assert_eq!(
            set.rules
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>(),
            vec!["mine"]
        );
        assert_eq!(set.unused_disables.len(), 1);
        assert_eq!(set.unused_disables[0].0, "nothing-*");
        let dup = "[[rule]]\nname = \"axum-server\"\ncrate = \"app\"\n";
        let e = compile(&[
            Source {
                file: "builtin:axum/rule.toml".into(),
                text: builtin,
                builtin: true,
                read: &no_files,
            },
            Source {
                file: "rules.toml".into(),
                text: dup,
                builtin: false,
                read: &no_files,
            },
        ])
        .unwrap_err();
        assert!(
            e.message
                .contains("already defined at builtin:axum/rule.toml:1"),
            "{e}"
        );
    }

    fn with_hook_file(text: &str, hooks: &'static str) -> Result<RuleSet, RuleError> {
        let read = move |name: &str| -> Result<(String, String), String> {
            match name {
                "h.rs" => Ok(("h.rs".into(), hooks.to_string())),
                other => Err(format!("no file {other}")),
            }
        };
        compile(&[Source {
            file: "rules.toml".into(),
            text,
            builtin: false,
            read: &read,
        }])
    }

    #[test]
    fn actions_parse_and_are_checked_against_the_hook_file() {
        let head = "[[rule]]\nname = \"a\"\ncrate = \"x\"\n";
        let good = "pub fn enter() {}\npub(crate) fn exit() {}\nfn private() {}\n";
        let set = with_hook_file(
            &format!("{head}span = false\nhooks = {{ file = \"h.rs\", on_enter = \"enter\", on_exit = \"exit\", mut_args = [\"req\"] }}\n"),
            good,
        )
        .unwrap();
        let r = &set.rules[0];
        assert!(r.span.is_none() && r.instruments_functions());
        assert_eq!(r.hooks.as_ref().unwrap().mut_args, vec!["req".to_string()]);
        // Hooks without `span = false` make spans too.
        let set = with_hook_file(
            &format!("{head}hooks = {{ file = \"h.rs\", on_enter = \"enter\" }}\n"),
            good,
        )
        .unwrap();
        assert!(set.rules[0].span.is_some());
        // wrap_call alone rewrites call sites, not functions.
        let set = with_hook_file(&format!("{head}wrap_call = {{ fn = \"std::thread::spawn\", with = \"enter\" }}\nhooks = {{ file = \"h.rs\" }}\n"), good).unwrap();
        assert!(!set.rules[0].instruments_functions());
        let set = with_hook_file(&format!("{head}wrap_call = {{ fn = \"std::thread::Builder::new\", method = \"spawn_scoped\", arg = 1, with = \"enter\" }}\nhooks = {{ file = \"h.rs\" }}\n"), good).unwrap();
        let w = set.rules[0].wrap_call.as_ref().unwrap();
        assert_eq!((w.method.as_deref(), w.arg), (Some("spawn_scoped"), 1));
        assert_eq!(w.needle(), "spawn_scoped");

        let cases: &[(&str, &str)] = &[
            (
                "hooks = { file = \"h.rs\", on_enter = \"missing\" }",
                "has no function `missing`",
            ),
            (
                "hooks = { file = \"h.rs\", on_enter = \"private\" }",
                "must be `pub`",
            ),
            ("hooks = { file = \"nope.rs\" }", "cannot read"),
            (
                "hooks = { file = \"h.rs\", on_entr = \"enter\" }",
                "on_entr",
            ),
            (
                "wrap_call = { fn = \"spawn\", with = \"enter\" }",
                "full path",
            ),
            (
                "wrap_call = { fn = \"std::thread::spawn\", with = \"enter\" }",
                "add `hooks",
            ),
            (
                "wrap_call = { fn = \"std::thread::scope\", arg = 1, with = \"enter\" }\nhooks = { file = \"h.rs\" }",
                "add `method",
            ),
            (
                "wrap_call = { fn = \"std::thread::scope\", method = \"a.b\", with = \"enter\" }\nhooks = { file = \"h.rs\" }",
                "wrap_call.method",
            ),
            (
                "wrap_call = { fn = \"hyper::service::service_fn\", requires = \"one\", with = \"enter\" }\nhooks = { file = \"h.rs\" }",
                "wrap_call.requires",
            ),
            (
                "span = { attributes = { \"k\" = \"user.id()\" } }",
                "not an argument",
            ),
            ("span = { nme = \"x\" }", "nme"),
            ("span = 3", "`false` or a table"),
            (
                "options = [\"capture_headres\"]",
                "\"capture_headres\" is not an option the runtime has (it has: capture_headers)",
            ),
        ];
        for (body, wanted) in cases {
            let e = with_hook_file(&format!("{head}{body}\n"), good).unwrap_err();
            assert!(e.message.contains(wanted), "{body}: {e}");
            assert_eq!(e.line, 4, "{body}: {e}");
        }
        let e = with_hook_file(
            &format!("{head}hooks = {{ file = \"h.rs\" }}\n"),
            "fn broken( {}",
        )
        .unwrap_err();
        assert!(
            e.message.contains("h.rs:1:") && e.message.contains("not valid Rust"),
            "{e}"
        );
    }
}
