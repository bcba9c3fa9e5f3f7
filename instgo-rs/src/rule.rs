//! Rules: the TOML schema (see docs/rules.md), parsing with exact error positions, and the
//! compiled form the wrapper receives.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// A rules file that cannot be used, with the position of the problem.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", file.display())]
pub struct RuleError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Where a rule was written: `rules.toml:12`, or the built-in catalog.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Vis {
    Any,
    Pub,
    Crate,
    Private,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SpanKind {
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

/// Which functions of the target crate a rule selects. Every given selector must hold.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Selector {
    /// Glob over the function's path inside the crate (`service::Client::send`).
    pub func: String,
    /// Glob over the self type of the `impl` block the method is in.
    pub impl_type: Option<String>,
    /// Glob over the trait (last path segment or whole path) of a trait impl or trait.
    pub trait_name: Option<String>,
    /// Glob over the source file path relative to the package root (`src/api/*`).
    pub path: Option<String>,
    pub vis: Vis,
    /// Glob over the path of an attribute on the function (`get`, `tokio::main`).
    pub attr: Option<String>,
    pub is_async: Option<bool>,
}

impl Selector {
    /// Selects functions by path glob alone.
    pub fn new(func: &str) -> Selector {
        Selector {
            func: func.to_string(),
            impl_type: None,
            trait_name: None,
            path: None,
            vis: Vis::Any,
            attr: None,
            is_async: None,
        }
    }
}

/// What a matched function gets: a span.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SpanAction {
    /// Name template: `{path}` (path inside the crate), `{fn}`, `{type}`, `{crate}`.
    pub name: String,
    pub kind: SpanKind,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    /// Package name with `-` turned into `_`.
    pub krate: String,
    /// A semver requirement on the package version; `None` means any version.
    pub version: Option<String>,
    pub selector: Selector,
    pub span: SpanAction,
    pub origin: Origin,
}

/// All rules in force for one build, as the driver hands them to the wrapper.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    /// `disable` entries that matched no built-in rule (reported by the driver).
    pub unused_disables: Vec<(String, Origin)>,
}

pub fn normalize_crate(name: &str) -> String {
    name.replace('-', "_")
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
    span: Option<RawSpan>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpan {
    name: Option<String>,
    kind: Option<Spanned<String>>,
}

/// One rules document and where it came from.
pub struct Source<'a> {
    /// Shown in errors and in `explain`: a path, or `builtin:<framework>/rule.toml`.
    pub file: PathBuf,
    pub text: &'a str,
    pub builtin: bool,
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
            let (line, _) = position(src.text, d.span().start);
            let origin = Origin {
                file: src.file.display().to_string(),
                line,
            };
            disables.push((d.into_inner(), origin));
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
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(err(
            src,
            raw.krate.span().start,
            format!(
                "`crate` must be a package name, got {:?}",
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
    let span = raw.span.unwrap_or(RawSpan {
        name: None,
        kind: None,
    });
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
    let (line, _) = position(src.text, offset);
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
        span: SpanAction {
            name: template,
            kind,
        },
        origin: Origin {
            file: src.file.display().to_string(),
            line,
        },
    })
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

/// The user's rules file at the workspace root, if there is one.
pub fn workspace_rules_file(workspace_root: &Path) -> Option<PathBuf> {
    let p = workspace_root.join("rules.toml");
    p.is_file().then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile_one(text: &str) -> Result<RuleSet, RuleError> {
        compile(&[Source {
            file: "rules.toml".into(),
            text,
            builtin: false,
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
        assert_eq!(r.span.kind, SpanKind::Internal);
        assert_eq!(r.origin.to_string(), "rules.toml:1");
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
            },
            Source {
                file: "rules.toml".into(),
                text: user,
                builtin: false,
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
            },
            Source {
                file: "rules.toml".into(),
                text: dup,
                builtin: false,
            },
        ])
        .unwrap_err();
        assert!(
            e.message
                .contains("already defined at builtin:axum/rule.toml:1"),
            "{e}"
        );
    }
}
