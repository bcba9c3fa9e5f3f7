//! Rules: the compiled form the driver checks and the wrapper receives. The TOML schema
//! (see docs/rules.md) and its parsing, with exact error positions, are in [`parse`].

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod parse;

pub use parse::{compile, ReadFile, RuleError, Source};

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
    /// Attribute key → argument expression (`user.id`, `self.name`), set at entry.
    pub attributes: Vec<(String, String)>,
}

/// Source code a rule brings into its target crate, as a module.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Injected {
    /// Where it came from, for messages (`builtin:axum/hooks.rs`, `/ws/hooks.rs`).
    pub file: String,
    pub source: String,
}

/// Functions from the rule's hook file, run in the instrumented function.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Hooks {
    pub module: Injected,
    /// `fn(&mut CallContext, &arg...)`, before the body.
    pub on_enter: Option<String>,
    /// `fn(&mut CallContext, &ret)`, at every exit.
    pub on_exit: Option<String>,
    /// The parameters `on_enter` receives, in order; `None`: all of them.
    pub args: Option<Vec<String>>,
    /// Parameters `on_enter` receives as `&mut`.
    pub mut_args: Vec<String>,
    /// Parameter → hook fn that replaces it at entry (`let p = hooks::f(p);`).
    pub map_args: Vec<(String, String)>,
    /// `on_exit` receives `&mut ret` and may replace the value being returned.
    #[serde(default)]
    pub mut_return: bool,
}

impl Hooks {
    /// Whether the hooks change the selected function's body (as opposed to a hook file
    /// that only serves `wrap_call`).
    pub fn run_in_body(&self) -> bool {
        self.on_enter.is_some() || self.on_exit.is_some() || !self.map_args.is_empty()
    }
}

/// Call sites to wrap: `PATH(args)` becomes `hooks::WITH(args)`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WrapCall {
    /// Full path of the called function (`std::thread::spawn`).
    pub path: String,
    /// The hook function called instead.
    pub with: String,
    /// Method mode: instead of calls of `path`, `.METHOD(..)` calls on what a call of
    /// `path` made (`Builder::new().name(..).spawn(f)`) or on the first parameter of a
    /// closure handed to it (`scope(|s| s.spawn(f))`); argument `arg` becomes
    /// `hooks::WITH(arg)`. Method calls on anything else are out of reach without types.
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub arg: usize,
    /// A semver requirement on the crate the path names (`hyper` of
    /// `hyper::service::service_fn`), as the crate being compiled depends on it in the
    /// workspace's Cargo.lock: the hook file is written against that version's API. When
    /// the version cannot be told, the rule does not apply.
    #[serde(default)]
    pub requires: Option<String>,
}

impl WrapCall {
    /// The word every call site contains: the method, or the path's last segment.
    pub fn needle(&self) -> &str {
        match &self.method {
            Some(m) => m,
            None => self.path.rsplit("::").next().unwrap_or_default(),
        }
    }

    /// What the rule wraps, for reports: `std::thread::spawn` or `std::thread::scope(..).spawn`.
    pub fn site(&self) -> String {
        match &self.method {
            Some(m) => format!("{}(..).{m}", self.path),
            None => self.path.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    /// Package name with `-` turned into `_`.
    pub krate: String,
    /// A semver requirement on the package version; `None` means any version.
    pub version: Option<String>,
    pub selector: Selector,
    /// `None` with `span = false`: hooks and wrapped calls only.
    pub span: Option<SpanAction>,
    pub hooks: Option<Hooks>,
    pub add_file: Option<Injected>,
    pub wrap_call: Option<WrapCall>,
    /// Options a remote config may set for this rule (`options = ["capture_headers"]`).
    #[serde(default)]
    pub options: Vec<String>,
    pub origin: Origin,
}

/// The options the runtime implements (its `control::OPTION_NAMES`), and so the ones a
/// rule may declare.
pub const OPTION_NAMES: &[&str] = &["capture_headers"];

impl Rule {
    /// What a `[[rule]]` with no action key compiles to: an INTERNAL span named after the
    /// function's path for each function `selector` picks in package `krate`.
    pub fn new(name: &str, krate: &str, selector: Selector, origin: Origin) -> Rule {
        Rule {
            name: name.to_string(),
            krate: normalize_crate(krate),
            version: None,
            selector,
            span: Some(SpanAction {
                name: "{path}".into(),
                kind: SpanKind::Internal,
                attributes: Vec::new(),
            }),
            hooks: None,
            add_file: None,
            wrap_call: None,
            options: Vec::new(),
            origin,
        }
    }

    /// Whether selected functions are rewritten (span, hooks or mapped arguments), as
    /// opposed to only having call sites wrapped or a file added.
    pub fn instruments_functions(&self) -> bool {
        self.span.is_some() || self.hooks.as_ref().is_some_and(Hooks::run_in_body)
    }

    /// Whether `krate` (normalized) is a target of this rule.
    pub fn targets(&self, krate: &str) -> bool {
        crate::glob::matches(&self.krate, krate)
    }

    /// Whether wrapping call sites is all the rule does to a crate (no spans or hooks of
    /// its own, no added file): then a crate without such call sites is left alone.
    pub fn wraps_calls_only(&self) -> bool {
        self.wrap_call.is_some() && !self.instruments_functions() && self.add_file.is_none()
    }

    /// Whether the rule can do anything in a crate that sees these `--extern` crates: a
    /// rule that only wraps calls of `tokio::spawn` cannot match in a crate without tokio,
    /// so such crates are not even parsed for it (this is what makes `crate = "*"` cheap).
    pub fn can_apply_with(&self, externs: &[String]) -> bool {
        let Some(w) = &self.wrap_call else {
            return true;
        };
        if !self.wraps_calls_only() {
            return true;
        }
        let root = w.path.split("::").next().unwrap_or_default();
        matches!(root, "std" | "core" | "alloc") || externs.iter().any(|e| e == root)
    }
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

/// The user's rules file at the workspace root, if there is one.
pub fn workspace_rules_file(workspace_root: &Path) -> Option<PathBuf> {
    let p = workspace_root.join("rules.toml");
    p.is_file().then_some(p)
}
