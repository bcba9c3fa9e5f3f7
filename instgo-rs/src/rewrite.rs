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

/// One instrumented function, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instrumented {
    pub rule: String,
    pub path: String,
    pub line: usize,
}

struct Edit {
    at: usize,
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
        self.edits.push(Edit { at, rank, text });
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

    /// Makes a binary's `main` start the runtime before any user code runs.
    pub fn start_runtime_in(&mut self, f: &FnItem<'_>) {
        let at = self.body_start(f);
        self.push(at, (1, i64::MIN + 1), format!(" {RT}::start();"));
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

    /// Wraps one function in a span as `rule` says. `file_path` is the file as rustc names it.
    pub fn instrument(
        &mut self,
        f: &FnItem<'_>,
        rule: &Rule,
        crate_name: &str,
        file_path: &str,
    ) -> Instrumented {
        let line = f.sig.fn_token.span.start().line;
        let name = span_name(&rule.span.name, f, crate_name);
        let function = format!("{crate_name}::{}", f.path);
        let site = format!(
            "{{ static __INSTGO_SITE: {RT}::Site = {RT}::Site::new({:?}, {:?}, {:?}, {:?}, {line}, {RT}::Kind::{}); &__INSTGO_SITE }}",
            rule.name,
            name,
            function,
            file_path,
            kind_name(rule.span.kind)
        );
        let start = self.body_start(f);
        let close = self.offset(f.block.brace_token.span.close().byte_range().start);
        if f.sig.asyncness.is_some() {
            self.push(
                start,
                (1, i64::MIN + 2),
                format!(" let __instgo_cx = &{RT}::start_async({site}); __instgo_cx.instrument(async move {{"),
            );
            self.push(close, (0, i64::MAX), "}).await ".to_string());
        } else {
            self.push(
                start,
                (1, i64::MIN + 2),
                format!(" let __instgo_cx = {RT}::enter({site});"),
            );
        }
        let ret_ty = observable_type(&f.sig.output);
        let mut v = Observations {
            rw: self,
            ret_ty: ret_ty.as_deref(),
            depth: 0,
        };
        // The tail expression is an exit of the function; every other statement may hold
        // `return`s and `?`s.
        let tail_index = f.block.stmts.len().checked_sub(1);
        for (i, stmt) in f.block.stmts.iter().enumerate() {
            match stmt {
                syn::Stmt::Expr(tail, None) if Some(i) == tail_index => v.observe_value(tail),
                _ => v.visit_stmt(stmt),
            }
        }
        Instrumented {
            rule: rule.name.clone(),
            path: f.path.clone(),
            line,
        }
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
            out.push_str(&text[pos..e.at]);
            out.push_str(&e.text);
            pos = e.at;
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

/// The declared return type as a `let` annotation can name it (`impl Trait` becomes `_`),
/// or `None` when there is nothing to observe (`()`, `!`).
fn observable_type(out: &syn::ReturnType) -> Option<String> {
    let syn::ReturnType::Type(_, ty) = out else {
        return None;
    };
    match &**ty {
        syn::Type::Never(_) => return None,
        syn::Type::Tuple(t) if t.elems.is_empty() => return None,
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

fn observe_call(value: &str) -> String {
    format!(
        "{{ #[allow(unused_imports)] use {RT}::{{ObserveAny as _, ObserveErrDebug as _, ObserveErrDisplay as _}}; \
         (&&&{RT}::Observe(&{value})).__instgo_observe(&__instgo_cx); }}"
    )
}

/// Finds the function's own exits (`return`, `?`, the tail) without entering closures,
/// async blocks or nested items, whose exits are their own.
struct Observations<'r> {
    rw: &'r mut FileRewrite,
    ret_ty: Option<&'r str>,
    depth: i64,
}

impl Observations<'_> {
    fn range(&self, e: &syn::Expr) -> (usize, usize) {
        let r = span_range(e);
        (self.rw.offset(r.0), self.rw.offset(r.1))
    }

    /// `EXPR` → `{ let __instgo_r: RT = EXPR; observe; __instgo_r }`
    fn observe_value(&mut self, e: &syn::Expr) {
        let Some(ty) = self.ret_ty else {
            return self.visit_expr(e);
        };
        let (start, end) = self.range(e);
        let d = self.depth;
        self.rw
            .push(start, (1, d), format!("{{ let __instgo_r: {ty} = "));
        self.rw.push(
            end,
            (0, -d),
            format!(
                "; #[allow(unreachable_code)] let __instgo_r = {{ {} __instgo_r }}; __instgo_r }}",
                observe_call("__instgo_r")
            ),
        );
        self.depth += 1;
        self.visit_expr(e);
        self.depth -= 1;
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
                observe_call("__instgo_q")
            ),
        );
        self.depth += 1;
        self.visit_expr(&t.expr);
        self.depth -= 1;
    }
}
