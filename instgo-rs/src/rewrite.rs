//! Splicing instrumentation into a source file without moving a single line.
//!
//! Everything is inserted at byte offsets taken from syn spans, and no inserted text has a
//! newline, so `line!()`, panic locations and debuginfo stay those of the original file.
//! The shapes (sync, async, observation of `return`/`?`/tail) are documented with their
//! snapshot tests in `tests/snapshots`.

use quote::ToTokens;
use syn::visit::Visit;

use crate::matcher::FnItem;
use crate::rule::{Rule, SpanKind};

struct Edit {
    at: usize,
    /// Bytes of the original replaced by `text` (a `?` desugared, a called path swapped).
    del: usize,
    /// Ties at one offset: closes (0) before opens (1); then by key (outer opens first,
    /// inner closes first).
    rank: (u8, i64),
    text: String,
}

/// The edits for one file.
pub struct FileRewrite {
    edits: Vec<Edit>,
    prefix_len: usize,
    text: String,
}

const RT: &str = "::instgo_runtime::__private";

impl FileRewrite {
    /// `text` is the whole file; `prefix_len` the bytes before what syn parsed.
    pub fn new(text: &str, prefix_len: usize) -> Self {
        FileRewrite {
            edits: Vec::new(),
            prefix_len,
            text: text.to_string(),
        }
    }

    /// Just after the inner attributes that end after `after`, unless the last one is a
    /// `//!` comment: text after it would be part of the comment, so then `fallback`.
    fn after_inner_attrs(&self, attrs: &[syn::Attribute], after: usize, fallback: usize) -> usize {
        let end = |a: &syn::Attribute| a.bracket_token.span.close().byte_range().end;
        let last = attrs
            .iter()
            .filter(|a| matches!(a.style, syn::AttrStyle::Inner(_)) && end(a) > after)
            .max_by_key(|a| end(a));
        match last {
            None => self.offset(after),
            Some(a) => {
                let start = self.offset(a.pound_token.span.byte_range().start);
                if self.text[start..].starts_with("//") {
                    self.offset(fallback)
                } else {
                    self.offset(end(a))
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.edits.is_empty()
    }

    fn offset(&self, pos: usize) -> usize {
        pos + self.prefix_len
    }

    fn push(&mut self, at: usize, rank: (u8, i64), text: String) {
        self.edits.push(Edit {
            at,
            del: 0,
            rank,
            text,
        });
    }

    /// Replaces `len` bytes at `at` (syn offset); sorts after every insertion there.
    pub(crate) fn replace(&mut self, at: usize, len: usize, text: String) {
        self.edits.push(Edit {
            at: self.offset(at),
            del: len,
            rank: (2, 0),
            text,
        });
    }

    /// Surrounds the syn range `start..end` with `open` and `close`: the opening goes
    /// before a replacement starting there (a wrapped argument may begin with a path
    /// another rule replaces), the closing before anything opening where it ends.
    pub(crate) fn surround(&mut self, start: usize, end: usize, open: String, close: String) {
        self.push(self.offset(start), (1, 0), open);
        self.push(self.offset(end), (0, 0), close);
    }

    /// Edition 2015 resolves `::instgo_runtime` from the crate root, so the root file
    /// declares it; later editions find it in the extern prelude.
    pub fn declare_runtime_crate(&mut self, file: &syn::File) {
        use syn::spanned::Spanned;
        let first_item = file
            .items
            .first()
            .map(|i| i.span().byte_range().start)
            .unwrap_or(0);
        let at = self.after_inner_attrs(&file.attrs, 0, first_item);
        self.push(
            at,
            (1, i64::MIN),
            " extern crate instgo_runtime; ".to_string(),
        );
    }

    /// Declares an injected module (a rule's hook file or `add_file`) at the end of the
    /// crate root, on a line of its own after the last one, so no line moves.
    /// Lints the crate root `forbid`s (`forbidden`) are left out of the module's `allow`,
    /// which would otherwise be an error of its own.
    pub fn append_module(&mut self, name: &str, path: &std::path::Path, forbidden: &[String]) {
        const ALLOWED: [&str; 9] = [
            "warnings",
            "unused",
            "missing_docs",
            "missing_debug_implementations",
            "unreachable_pub",
            "unsafe_code",
            "clippy::all",
            "clippy::pedantic",
            "clippy::nursery",
        ];
        let allowed: Vec<&str> = ALLOWED
            .into_iter()
            .filter(|l| !forbidden.iter().any(|f| f == l))
            .collect();
        let end = self.text.len();
        self.edits.push(Edit {
            at: end,
            del: 0,
            rank: (3, 0),
            text: format!(
                "\n#[doc(hidden)] #[allow({})] #[path = {:?}] mod {name};\n",
                allowed.join(", "),
                path.display().to_string()
            ),
        });
    }

    /// Makes a binary's `main` start the runtime before any user code runs, telling it
    /// the rules compiled in (`catalog`, a Rust expression: see [`catalog`]).
    pub fn start_runtime_in(&mut self, f: &FnItem<'_>, catalog: &str) {
        let at = self.body_start(f);
        self.push(
            at,
            (1, i64::MIN + 1),
            format!(" {RT}::start_with({catalog});"),
        );
    }

    fn body_start(&self, f: &FnItem<'_>) -> usize {
        use syn::spanned::Spanned;
        let open = f.block.brace_token.span.open().byte_range().start;
        let first_stmt = f
            .block
            .stmts
            .first()
            .map(|s| s.span().byte_range().start)
            .unwrap_or_else(|| f.block.brace_token.span.close().byte_range().start);
        self.after_inner_attrs(f.attrs, open + 1, first_stmt)
    }

    /// Rewrites one function as `rule` says: a span and/or hooks. `file_path` is the file
    /// as rustc names it. `Err` says why the function is left alone.
    pub fn instrument(
        &mut self,
        f: &FnItem<'_>,
        rule: &Rule,
        crate_name: &str,
        file_path: &str,
    ) -> Result<(), String> {
        let line = f.sig.fn_token.span.start().line;
        let hooks = rule.hooks.as_ref();
        let hook_mod = hook_module(&rule.name);
        let on_exit = hooks.and_then(|h| h.on_exit.as_deref());
        let is_async = f.sig.asyncness.is_some();
        // `fn f() -> impl Future<Output = T>` is an async fn in all but name: its span
        // lasts as long as the future it returns, and its exit is the future's output.
        let future_output = if is_async {
            None
        } else {
            returned_future(&f.sig.output)
        };
        let lasts_as_future = is_async || future_output.is_some();
        let mut_return = hooks.is_some_and(|h| h.mut_return);
        if mut_return && future_output.is_some() {
            return Err(
                "`hooks.mut_return` cannot replace what a `-> impl Future` function returns".into(),
            );
        }
        let ret_ty = observable_type(&f.sig.output, on_exit.is_some());
        let try_shape = match on_exit {
            Some(_) if future_output.is_none() => Some(try_shape(f)?),
            _ => None,
        };
        let enter_args = match hooks {
            Some(h) => hook_arguments(f, h)?,
            None => HookArgs::default(),
        };
        if let Some(at) = enter_args.mut_self_at {
            self.push(self.offset(at), (1, 0), "mut ".to_string());
        }
        let (name, kind) = match &rule.span {
            Some(s) => (span_name(&s.name, f, crate_name), kind_name(s.kind)),
            None => (f.path.clone(), "Internal"),
        };
        let function = format!("{crate_name}::{}", f.path);
        let without_span = if rule.span.is_none() {
            ".without_span()"
        } else {
            ""
        };
        let site = format!(
            "{{ static __INSTGO_SITE: {RT}::Site = {RT}::Site::new({:?}, {name:?}, {function:?}, {file_path:?}, {line}, {RT}::Kind::{kind}){without_span}; &__INSTGO_SITE }}",
            rule.name,
        );
        // The future shape moves the call into the future it returns; async fns borrow it.
        let by = if is_async { "&" } else { "" };
        let mut opening = enter_args.rebinds.clone();
        match hooks {
            None if lasts_as_future => opening.push_str(&format!(
                " let __instgo_cx = {by}{RT}::start_async({site});"
            )),
            None => opening.push_str(&format!(" let __instgo_cx = {RT}::enter({site});")),
            Some(h) => {
                let call = match &h.on_enter {
                    Some(e) => format!(
                        "|__instgo_h| {{ crate::{hook_mod}::{e}(__instgo_h{}); }}",
                        enter_args.passed
                    ),
                    None => "|_| {}".to_string(),
                };
                if lasts_as_future {
                    opening.push_str(&format!(
                        " let __instgo_cx = {by}{RT}::start_async_hooked({site}, {call});"
                    ));
                } else {
                    opening.push_str(&format!(
                        " let __instgo_cx = {RT}::enter_hooked({site}, {call});"
                    ));
                }
            }
        }
        if let Some(s) = &rule.span {
            if !s.attributes.is_empty() {
                opening.push_str(&format!(
                    " if {RT}::Record::recording(&__instgo_cx) {{ #[allow(unused_imports)] use {RT}::{{AttrTyped as _, AttrDisplay as _, AttrDebug as _, AttrNone as _}};"
                ));
                for (key, expr) in &s.attributes {
                    opening.push_str(&format!(
                        " {RT}::Record::set_attribute(&__instgo_cx, {key:?}, (&&&&{RT}::AttrOf(&{expr})).__instgo_attr());"
                    ));
                }
                opening.push_str(" }");
            }
        }
        if let Some(h) = hooks {
            for (arg, func) in &h.map_args {
                opening.push_str(&format!(" let {arg} = crate::{hook_mod}::{func}({arg});"));
            }
        }
        let start = self.body_start(f);
        let close = self.offset(f.block.brace_token.span.close().byte_range().start);
        if let Some((output, inferred)) = future_output {
            let call_ty = if hooks.is_some() {
                "HookedAsyncCall"
            } else {
                "AsyncCall"
            };
            let observe = match inferred {
                // The output type is partly inferred: nothing to specialize on.
                true => String::new(),
                false => observe_call("*__instgo_r", projections_possible(f)),
            };
            let hook = on_exit
                .map(|e| format!(" __instgo_cx.exit(|__instgo_h| {{ crate::{hook_mod}::{e}(__instgo_h, __instgo_r); }});"))
                .unwrap_or_default();
            opening.push_str(&format!(" {RT}::Returned::make(__instgo_cx, move || {{"));
            self.push(start, (1, i64::MIN + 2), opening);
            self.push(
                close,
                (0, i64::MAX),
                format!("}}, {RT}::Observer(|__instgo_cx: &{RT}::{call_ty}, __instgo_r: &{output}| {{ {observe}{hook} }})) "),
            );
            return Ok(());
        }
        if is_async {
            opening.push_str(" __instgo_cx.instrument(async move {");
            self.push(close, (0, i64::MAX), "}).await ".to_string());
        }
        self.push(start, (1, i64::MIN + 2), opening);
        let (mut_kw, ret_ref) = if mut_return {
            ("mut ", "&mut ")
        } else {
            ("", "&")
        };
        let exit_hook = on_exit.map(|e| format!("__instgo_cx.exit(|__instgo_h| {{ crate::{hook_mod}::{e}(__instgo_h, {ret_ref}__instgo_r); }});"));
        let mut v = Observations {
            rw: self,
            ret_ty: ret_ty.as_deref(),
            exit_hook: exit_hook.as_deref(),
            try_shape,
            depth: 0,
            plain_errors: projections_possible(f),
            mut_kw,
        };
        // The tail expression is an exit of the function; every other statement may hold
        // `return`s and `?`s.
        let tail_index = f.block.stmts.len().checked_sub(1);
        let mut has_tail = false;
        for (i, stmt) in f.block.stmts.iter().enumerate() {
            match stmt {
                syn::Stmt::Expr(tail, None) if Some(i) == tail_index => {
                    has_tail = true;
                    v.observe_value(tail)
                }
                _ => v.visit_stmt(stmt),
            }
        }
        // A `()` function that ends in a statement falls off its end: that is an exit too.
        if let (Some(hook), false, Some("()")) = (&exit_hook, has_tail, ret_ty.as_deref()) {
            let end = match f.block.stmts.last() {
                // `m!()` at the end without `;` is the tail of a `()` body: end it first.
                Some(syn::Stmt::Macro(m)) if m.semi_token.is_none() => ";",
                _ => "",
            };
            self.push(
                close,
                (0, i64::MAX - 1),
                format!(
                    "{end} #[allow(unreachable_code)] let () = {{ let {mut_kw}__instgo_r = (); {hook} }}; "
                ),
            );
        }
        Ok(())
    }

    /// The file with every edit applied.
    pub fn apply(mut self) -> String {
        let text = std::mem::take(&mut self.text);
        self.edits.sort_by_key(|e| (e.at, e.rank));
        let mut out = String::with_capacity(
            text.len() + self.edits.iter().map(|e| e.text.len()).sum::<usize>(),
        );
        let mut pos = 0;
        for e in &self.edits {
            // An insertion inside a replaced range cannot happen (replaced ranges are
            // single tokens or paths with nothing spliced into them); clamp regardless.
            let at = e.at.max(pos);
            out.push_str(&text[pos..at]);
            out.push_str(&e.text);
            pos = at + e.del;
        }
        out.push_str(&text[pos..]);
        out
    }
}

fn kind_name(k: SpanKind) -> &'static str {
    match k {
        SpanKind::Internal => "Internal",
        SpanKind::Server => "Server",
        SpanKind::Client => "Client",
        SpanKind::Producer => "Producer",
        SpanKind::Consumer => "Consumer",
    }
}

fn span_name(template: &str, f: &FnItem<'_>, crate_name: &str) -> String {
    let ty = f
        .self_type
        .clone()
        .or_else(|| f.trait_path.clone())
        .unwrap_or_default();
    template
        .replace("{path}", &f.path)
        .replace("{fn}", &f.ident)
        .replace("{type}", &ty)
        .replace("{crate}", crate_name)
}

/// The module a rule's hook file becomes in the target crate.
pub fn hook_module(rule: &str) -> String {
    let clean: String = rule
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("__instgo_hooks_{clean}")
}

/// The module a rule's `add_file` becomes in the target crate.
pub fn added_module(rule: &str) -> String {
    hook_module(rule).replacen("__instgo_hooks_", "__instgo_add_", 1)
}

/// How `?` becomes an exit `on_exit` can see: the value the function returns.
#[derive(Clone, Copy)]
enum TryShape {
    Result,
    Option,
}

fn try_shape(f: &FnItem<'_>) -> Result<TryShape, String> {
    let last = match &f.sig.output {
        syn::ReturnType::Type(_, ty) => match &**ty {
            syn::Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
            _ => None,
        },
        syn::ReturnType::Default => None,
    };
    match last.as_deref() {
        Some(s) if s.ends_with("Result") => Ok(TryShape::Result),
        Some("Option") => Ok(TryShape::Option),
        _ => {
            let mut finder = FindTry(false);
            finder.visit_block(f.block);
            if finder.0 {
                Err("its `?` cannot be shown to the on_exit hook: the return type is neither a Result nor an Option".into())
            } else {
                Ok(TryShape::Result) // no `?` to rewrite
            }
        }
    }
}

struct FindTry(bool);
impl<'ast> Visit<'ast> for FindTry {
    fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
    fn visit_expr_async(&mut self, _: &'ast syn::ExprAsync) {}
    fn visit_item(&mut self, _: &'ast syn::Item) {}
    fn visit_expr_try(&mut self, _: &'ast syn::ExprTry) {
        self.0 = true;
    }
}

/// What a hooked function does before `on_enter`, and the arguments it passes.
#[derive(Default)]
struct HookArgs {
    /// `let mut x = x;` for `mut_args` not declared `mut`.
    rebinds: String,
    /// `, &a, &mut b` after the call context.
    passed: String,
    /// Where to write `mut ` before a by-value `self` that `on_enter` gets as `&mut`
    /// (a receiver cannot be rebound; `mut` on it is invisible to callers).
    mut_self_at: Option<usize>,
}

fn hook_arguments(f: &FnItem<'_>, h: &crate::rule::Hooks) -> Result<HookArgs, String> {
    // (name, declared mut, receiver by reference)
    let mut params: Vec<(String, bool, Option<bool>)> = Vec::new();
    let mut unnamed = Vec::new();
    for (i, input) in f.sig.inputs.iter().enumerate() {
        match input {
            syn::FnArg::Receiver(r) => params.push((
                "self".into(),
                r.mutability.is_some() && r.reference.is_none(),
                Some(r.reference.is_some()),
            )),
            syn::FnArg::Typed(t) => match &*t.pat {
                syn::Pat::Ident(p) if p.subpat.is_none() && p.by_ref.is_none() => {
                    params.push((p.ident.to_string(), p.mutability.is_some(), None))
                }
                _ => unnamed.push(i + 1),
            },
        }
    }
    let wanted: Vec<String> = match &h.args {
        Some(a) => a.clone(),
        None => {
            if h.on_enter.is_some() && !unnamed.is_empty() {
                return Err(format!(
                    "parameter {} is a pattern, which the on_enter hook cannot be given; list the parameters it takes in `hooks.args`",
                    unnamed[0]
                ));
            }
            params.iter().map(|p| p.0.clone()).collect()
        }
    };
    let mut out = HookArgs::default();
    for name in wanted.iter().chain(h.map_args.iter().map(|(a, _)| a)) {
        if !params.iter().any(|p| &p.0 == name) {
            return Err(format!(
                "it has no parameter `{name}` (named by the rule's hooks)"
            ));
        }
    }
    if h.on_enter.is_none() {
        return Ok(out);
    }
    for name in &wanted {
        let (_, declared_mut, receiver) = params.iter().find(|p| &p.0 == name).unwrap();
        let as_mut = h.mut_args.contains(name);
        let arg = match (receiver, as_mut) {
            (Some(true), false) => "&*self".to_string(),
            (Some(true), true) => "&mut *self".to_string(),
            (Some(false), false) => "&self".to_string(),
            (Some(false), true) => {
                if !declared_mut {
                    use syn::spanned::Spanned;
                    out.mut_self_at = f
                        .sig
                        .receiver()
                        .map(|r| r.self_token.span().byte_range().start);
                }
                "&mut self".to_string()
            }
            (None, false) => format!("&{name}"),
            (None, true) => {
                if !declared_mut {
                    out.rebinds
                        .push_str(&format!(" #[allow(unused_mut)] let mut {name} = {name};"));
                }
                format!("&mut {name}")
            }
        };
        out.passed.push_str(", ");
        out.passed.push_str(&arg);
    }
    Ok(out)
}

/// `T` of a `-> impl Future<Output = T>` return type (`_` in place of any `impl Trait`
/// inside it, and then `true`), if that is the return type.
fn returned_future(out: &syn::ReturnType) -> Option<(String, bool)> {
    let syn::ReturnType::Type(_, ty) = out else {
        return None;
    };
    let syn::Type::ImplTrait(it) = &**ty else {
        return None;
    };
    it.bounds.iter().find_map(|b| {
        let syn::TypeParamBound::Trait(t) = b else {
            return None;
        };
        let last = t.path.segments.last()?;
        if last.ident != "Future" {
            return None;
        }
        let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
            return None;
        };
        args.args.iter().find_map(|a| match a {
            syn::GenericArgument::AssocType(at) if at.ident == "Output" => {
                let mut ty = at.ty.clone();
                syn::visit_mut::VisitMut::visit_type_mut(&mut ImplToInfer, &mut ty);
                let text = ty.to_token_stream().to_string();
                let inferred = text != at.ty.to_token_stream().to_string();
                Some((text, inferred))
            }
            _ => None,
        })
    })
}

/// The declared return type as a `let` annotation can name it (`impl Trait` becomes `_`),
/// or `None` when there is nothing to observe (`()` unless an on_exit hook wants to see
/// it, `!`).
fn observable_type(out: &syn::ReturnType, unit_too: bool) -> Option<String> {
    let syn::ReturnType::Type(_, ty) = out else {
        return unit_too.then(|| "()".to_string());
    };
    match &**ty {
        syn::Type::Never(_) => return None,
        syn::Type::Tuple(t) if t.elems.is_empty() => return unit_too.then(|| "()".to_string()),
        // `-> impl Fn(&usize) -> u64` returning `move |&i| ..`: the closure's parameter
        // types are inferred from the return position, which `let r: _ = ..` would lose.
        // Such a value can be no error to observe; only an exit hook needs it.
        syn::Type::ImplTrait(_) if !unit_too => return None,
        _ => {}
    }
    let mut ty = (**ty).clone();
    syn::visit_mut::VisitMut::visit_type_mut(&mut ImplToInfer, &mut ty);
    Some(ty.to_token_stream().to_string())
}

struct ImplToInfer;
impl syn::visit_mut::VisitMut for ImplToInfer {
    fn visit_type_mut(&mut self, t: &mut syn::Type) {
        if let syn::Type::ImplTrait(_) = t {
            *t = syn::parse_quote!(_);
        } else {
            syn::visit_mut::visit_type_mut(self, t);
        }
    }
}

fn observe_call(value: &str, plain: bool) -> String {
    if plain {
        return format!(
            "{{ #[allow(unused_imports)] use {RT}::{{ObserveAny as _, ObserveErrPlain as _}}; \
             (&{RT}::Observe(&{value})).__instgo_observe(&__instgo_cx); }}"
        );
    }
    format!(
        "{{ #[allow(unused_imports)] use {RT}::{{ObserveAny as _, ObserveErrDebug as _, ObserveErrDisplay as _}}; \
         (&&&{RT}::Observe(&{value})).__instgo_observe(&__instgo_cx); }}"
    )
}

/// Whether values observed in `f` may have error types that are projections
/// (`Self::Item`, `T::Err`, `<X as Y>::E`): there, asking for `Display`/`Debug` through
/// autoref specialization is a hard error instead of a fallback (itertools'
/// `all_equal_value`). Generic functions and trait default methods count too, since their
/// `?` operands' types are not written anywhere.
fn projections_possible(f: &FnItem<'_>) -> bool {
    struct Finder(bool);
    impl<'a> syn::visit::Visit<'a> for Finder {
        fn visit_type_path(&mut self, t: &'a syn::TypePath) {
            let first_upper = t.path.segments.len() >= 2
                && t.path.segments[0]
                    .ident
                    .to_string()
                    .starts_with(|c: char| c.is_ascii_uppercase());
            self.0 |= t.qself.is_some() || first_upper;
            syn::visit::visit_type_path(self, t);
        }
    }
    let mut finder = Finder(false);
    syn::visit::Visit::visit_return_type(&mut finder, &f.sig.output);
    finder.0
        || f.sig.generics.type_params().next().is_some()
        || f.in_generic_impl
        || (f.trait_path.is_some() && f.self_type.is_none())
}

/// Finds the function's own exits (`return`, `?`, the tail) without entering closures,
/// async blocks or nested items, whose exits are their own.
struct Observations<'r> {
    rw: &'r mut FileRewrite,
    ret_ty: Option<&'r str>,
    /// The on_exit hook call, run after the observation with `__instgo_r` in scope.
    exit_hook: Option<&'r str>,
    /// Set when there is an exit hook: `?` is then spelled out so the hook sees the value
    /// the function returns.
    try_shape: Option<TryShape>,
    depth: i64,
    /// Errors are recorded by type name only (see [`projections_possible`]).
    plain_errors: bool,
    /// `"mut "` when the exit hook may replace the returned value (`hooks.mut_return`).
    mut_kw: &'static str,
}

impl Observations<'_> {
    fn range(&self, e: &syn::Expr) -> (usize, usize) {
        let r = span_range(e);
        (self.rw.offset(r.0), self.rw.offset(r.1))
    }

    /// The text after a returned value: observe it, run the exit hook, yield it.
    fn exit_tail(&self) -> String {
        let hook = self.exit_hook.map(|h| format!("{h} ")).unwrap_or_default();
        format!(
            "; #[allow(unreachable_code)] let __instgo_r = {{ {} {hook}__instgo_r }}; __instgo_r }}",
            observe_call("__instgo_r", self.plain_errors),
        )
    }

    /// `EXPR` → `{ let __instgo_r: RT = EXPR; observe; __instgo_r }`
    fn observe_value(&mut self, e: &syn::Expr) {
        let Some(ty) = self.ret_ty else {
            return self.visit_expr(e);
        };
        let (mut start, end) = self.range(e);
        let mut open = "";
        // `#[cfg(..)] unsafe { .. }` as the tail: the attributes stay in front of the whole
        // observed block (attributes on an expression inside `let` are not stable Rust).
        if let Some(last) = outer_attrs(e).last() {
            use syn::spanned::Spanned;
            start = self.rw.offset(last.span().byte_range().end);
            open = " ";
        }
        // A macro as the value stays the tail of a block: it may expand to a block with
        // inner attributes (`{ #![allow(..)] .. }`, memchr), which only a tail may be.
        let (inner_open, inner_close) = match e {
            syn::Expr::Macro(_) => ("{ ", " }"),
            _ => ("", ""),
        };
        let d = self.depth;
        self.rw.push(
            start,
            (1, d),
            format!(
                "{open}{{ let {}__instgo_r: {ty} = {inner_open}",
                self.mut_kw
            ),
        );
        let tail = format!("{inner_close}{}", self.exit_tail());
        self.rw.push(end, (0, -d), tail);
        self.depth += 1;
        self.visit_expr(e);
        self.depth -= 1;
    }
}

/// The outer attributes written on an expression: a function's tail may carry them
/// (`#[cfg(..)] unsafe { .. }`, zerovec's `#[expect(clippy::indexing_slicing)] &mut x[r]`).
fn outer_attrs(e: &syn::Expr) -> &[syn::Attribute] {
    use syn::Expr as E;
    match e {
        E::Array(x) => &x.attrs,
        E::Assign(x) => &x.attrs,
        E::Async(x) => &x.attrs,
        E::Await(x) => &x.attrs,
        E::Binary(x) => &x.attrs,
        E::Block(x) => &x.attrs,
        E::Break(x) => &x.attrs,
        E::Call(x) => &x.attrs,
        E::Cast(x) => &x.attrs,
        E::Closure(x) => &x.attrs,
        E::Const(x) => &x.attrs,
        E::Continue(x) => &x.attrs,
        E::Field(x) => &x.attrs,
        E::ForLoop(x) => &x.attrs,
        E::Group(x) => &x.attrs,
        E::If(x) => &x.attrs,
        E::Index(x) => &x.attrs,
        E::Infer(x) => &x.attrs,
        E::Let(x) => &x.attrs,
        E::Lit(x) => &x.attrs,
        E::Loop(x) => &x.attrs,
        E::Macro(x) => &x.attrs,
        E::Match(x) => &x.attrs,
        E::MethodCall(x) => &x.attrs,
        E::Paren(x) => &x.attrs,
        E::Path(x) => &x.attrs,
        E::Range(x) => &x.attrs,
        E::RawAddr(x) => &x.attrs,
        E::Reference(x) => &x.attrs,
        E::Repeat(x) => &x.attrs,
        E::Return(x) => &x.attrs,
        E::Struct(x) => &x.attrs,
        E::Try(x) => &x.attrs,
        E::TryBlock(x) => &x.attrs,
        E::Tuple(x) => &x.attrs,
        E::Unary(x) => &x.attrs,
        E::Unsafe(x) => &x.attrs,
        E::While(x) => &x.attrs,
        E::Yield(x) => &x.attrs,
        _ => &[],
    }
}

fn span_range(e: &syn::Expr) -> (usize, usize) {
    use syn::spanned::Spanned;
    // `Spanned` joins first and last token: exactly the expression's text.
    let r = e.span().byte_range();
    (r.start, r.end)
}

impl<'ast> Visit<'ast> for Observations<'_> {
    fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
    fn visit_expr_async(&mut self, _: &'ast syn::ExprAsync) {}
    fn visit_expr_const(&mut self, _: &'ast syn::ExprConst) {}
    fn visit_item(&mut self, _: &'ast syn::Item) {}
    fn visit_macro(&mut self, _: &'ast syn::Macro) {}

    fn visit_expr_return(&mut self, r: &'ast syn::ExprReturn) {
        if let Some(e) = &r.expr {
            self.observe_value(e);
        }
    }

    fn visit_expr_try(&mut self, t: &'ast syn::ExprTry) {
        if let (Some(shape), Some(ty)) = (self.try_shape, self.ret_ty) {
            // `OPERAND?` → `(match OPERAND { Ok(v) => v, Err(e) => return EXIT(Err(From::from(e))) })`:
            // what `?` does for Result and Option, with the exit hook seeing the value.
            let (start, _) = self.range(&t.expr);
            let q = self.rw.offset(t.question_token.span.byte_range().start);
            let d = self.depth;
            let (ok, err, returned) = match shape {
                TryShape::Result => (
                    "Ok(__instgo_v)",
                    "Err(__instgo_e)",
                    "Err(From::from(__instgo_e))",
                ),
                TryShape::Option => ("Some(__instgo_v)", "None", "None"),
            };
            self.rw.push(start, (1, d), "(match ".to_string());
            let tail = self.exit_tail();
            self.rw.edits.push(Edit {
                at: q,
                del: 1,
                rank: (0, -d),
                text: format!(
                    " {{ {ok} => __instgo_v, {err} => return {{ let {}__instgo_r: {ty} = {returned}{tail} }})",
                    self.mut_kw
                ),
            });
            self.depth += 1;
            self.visit_expr(&t.expr);
            self.depth -= 1;
            return;
        }
        // `OPERAND?` → `(match OPERAND { __instgo_q => { observe; __instgo_q } })?`: a
        // match keeps the operand's temporaries alive exactly as long as before.
        let (start, end) = self.range(&t.expr);
        let d = self.depth;
        self.rw.push(start, (1, d), "(match ".to_string());
        self.rw.push(
            end,
            (0, -d),
            format!(
                " {{ __instgo_q => {{ {} __instgo_q }} }})",
                observe_call("__instgo_q", self.plain_errors)
            ),
        );
        self.depth += 1;
        self.visit_expr(&t.expr);
        self.depth -= 1;
    }
}

/// The rules of this build and the options each declares, as the `&[(name, &[option])]`
/// the runtime's `start_with` takes: a remote config can then name only these.
pub fn catalog(rules: &[crate::rule::Rule]) -> String {
    let mut by_name: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for r in rules {
        let options = by_name.entry(&r.name).or_default();
        for o in &r.options {
            if !options.contains(&o.as_str()) {
                options.push(o);
            }
        }
    }
    let entries: Vec<String> = by_name
        .iter()
        .map(|(name, options)| format!("({name:?}, &{options:?})"))
        .collect();
    format!("&[{}]", entries.join(", "))
}
