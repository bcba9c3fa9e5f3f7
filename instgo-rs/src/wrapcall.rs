//! `wrap_call`: calls of a function that cannot be rewritten where it is defined (`std`,
//! or a crate the rule does not target) are redirected, at each call site, to a function
//! of the rule's hook file, which calls the original itself.
//!
//! Call sites are found by path, resolved through the file's `use` declarations:
//! `thread::spawn(..)` after `use std::thread;` is `std::thread::spawn`. Calls through
//! function pointers are left alone. Method calls have no path to resolve without type
//! information; the method mode reaches the two shapes whose receiver the syntax still
//! ties to a path: a chain on a call of it (`thread::Builder::new().spawn(f)`) and the
//! parameter of a closure handed to it (`thread::scope(|s| { s.spawn(f); })`).

use std::collections::HashMap;

use syn::visit::Visit;

use crate::rewrite::FileRewrite;
use crate::rule::WrapCall;

/// What names mean in one file: alias → full path, and glob-imported prefixes.
pub struct Imports {
    aliases: HashMap<String, String>,
    globs: Vec<String>,
    /// Names the file defines itself, which a glob import cannot shadow.
    local: Vec<String>,
}

impl Imports {
    pub fn of(file: &syn::File) -> Imports {
        let mut imports = Imports {
            aliases: HashMap::new(),
            globs: Vec::new(),
            local: Vec::new(),
        };
        collect(&file.items, &mut imports);
        imports
    }

    /// The full path a call's path names, as far as `use` declarations tell.
    fn resolve(&self, path: &syn::Path) -> Vec<String> {
        let segs: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if path.leading_colon.is_some() || segs.is_empty() {
            return vec![segs.join("::")];
        }
        if matches!(segs[0].as_str(), "crate" | "self" | "super" | "Self") {
            return Vec::new(); // the crate's own items
        }
        if let Some(full) = self.aliases.get(&segs[0]) {
            let mut p = full.clone();
            for s in &segs[1..] {
                p.push_str("::");
                p.push_str(s);
            }
            return vec![p];
        }
        let mut out = vec![segs.join("::")];
        if segs.len() == 1 && !self.local.contains(&segs[0]) {
            out.extend(self.globs.iter().map(|g| format!("{g}::{}", segs[0])));
        }
        out
    }
}

fn collect(items: &[syn::Item], out: &mut Imports) {
    for item in items {
        match item {
            syn::Item::Use(u) => use_tree(&u.tree, String::new(), out),
            syn::Item::Fn(f) => out.local.push(f.sig.ident.to_string()),
            syn::Item::Mod(m) => {
                if let Some((_, inner)) = &m.content {
                    collect(inner, out);
                }
            }
            _ => {}
        }
    }
}

fn use_tree(tree: &syn::UseTree, prefix: String, out: &mut Imports) {
    let join = |name: &str| {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}::{name}")
        }
    };
    match tree {
        syn::UseTree::Path(p) => use_tree(&p.tree, join(&p.ident.to_string()), out),
        syn::UseTree::Name(n) => {
            let name = n.ident.to_string();
            if name == "self" {
                if let Some(last) = prefix.rsplit("::").next() {
                    out.aliases.insert(last.to_string(), prefix.clone());
                }
            } else {
                out.aliases.insert(name.clone(), join(&name));
            }
        }
        syn::UseTree::Rename(r) => {
            let target = if r.ident == "self" {
                prefix.clone()
            } else {
                join(&r.ident.to_string())
            };
            out.aliases.insert(r.rename.to_string(), target);
        }
        syn::UseTree::Glob(_) => out.globs.push(prefix),
        syn::UseTree::Group(g) => {
            for t in &g.items {
                use_tree(t, prefix.clone(), out);
            }
        }
    }
}

/// Rewrites, inside `block`, the call sites `wrap` describes so that they call
/// `replacement` (a hook function's full path); returns the lines of the sites changed.
pub fn wrap_calls(
    rw: &mut FileRewrite,
    imports: &Imports,
    block: &syn::Block,
    wrap: &WrapCall,
    replacement: &str,
) -> Vec<usize> {
    let mut v = Calls {
        rw,
        imports,
        wrap,
        replacement,
        params: Vec::new(),
        lines: Vec::new(),
    };
    v.visit_block(block);
    v.lines
}

struct Calls<'a> {
    rw: &'a mut FileRewrite,
    imports: &'a Imports,
    wrap: &'a WrapCall,
    replacement: &'a str,
    /// Method mode: the first parameters of the closures handed to a call of the path,
    /// innermost last (`s` of `scope(|s| ..)`), while their bodies are visited.
    params: Vec<String>,
    lines: Vec<usize>,
}

impl Calls<'_> {
    fn calls_target<'c>(&self, call: &'c syn::ExprCall) -> Option<&'c syn::ExprPath> {
        match &*call.func {
            syn::Expr::Path(p)
                if p.qself.is_none() && self.imports.resolve(&p.path).contains(&self.wrap.path) =>
            {
                Some(p)
            }
            _ => None,
        }
    }

    /// Whether a method call's receiver is something a call of the path made: a chain of
    /// method calls on such a call, or a parameter of a closure handed to one.
    fn made_by_target(&self, mut receiver: &syn::Expr) -> bool {
        loop {
            match receiver {
                syn::Expr::MethodCall(m) => receiver = &m.receiver,
                syn::Expr::Paren(p) => receiver = &p.expr,
                syn::Expr::Call(c) => return self.calls_target(c).is_some(),
                syn::Expr::Path(p) => {
                    return p.qself.is_none()
                        && p.path
                            .get_ident()
                            .is_some_and(|i| self.params.last().is_some_and(|last| i == last))
                }
                _ => return false,
            }
        }
    }
}

/// The name bound by a closure's first parameter (`s` of `|s|`, `|s: &Scope|`).
fn first_param(c: &syn::ExprClosure) -> Option<String> {
    let mut pat = c.inputs.first()?;
    if let syn::Pat::Type(t) = pat {
        pat = &t.pat;
    }
    match pat {
        syn::Pat::Ident(i) => Some(i.ident.to_string()),
        _ => None,
    }
}

impl<'ast> Visit<'ast> for Calls<'_> {
    // Items nested in the body are functions of their own, selected (or not) on their own.
    fn visit_item(&mut self, _: &'ast syn::Item) {}

    fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
        let Some(p) = self.calls_target(call) else {
            return syn::visit::visit_expr_call(self, call);
        };
        use syn::spanned::Spanned;
        if self.wrap.method.is_some() {
            // A parameter of a closure handed over names what the call made; anything
            // else in the arguments is visited as usual.
            for arg in &call.args {
                let param = match arg {
                    syn::Expr::Closure(c) => first_param(c).map(|p| (c, p)),
                    _ => None,
                };
                match param {
                    Some((c, p)) => {
                        self.params.push(p);
                        self.visit_expr(&c.body);
                        self.params.pop();
                    }
                    None => self.visit_expr(arg),
                }
            }
            return;
        }
        // Generic arguments (`spawn::<F, T>`) stay on the replacement only when the hook
        // function has the same generics; a turbofish is kept as written.
        let last = p.path.segments.last().expect("a path has a segment");
        let r = p.path.span().byte_range();
        let end = last.ident.span().byte_range().end;
        self.rw
            .replace(r.start, end - r.start, self.replacement.to_string());
        self.lines.push(p.path.span().start().line);
        syn::visit::visit_expr_call(self, call);
    }

    fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
        if let Some(m) = &self.wrap.method {
            if call.method == m && self.made_by_target(&call.receiver) {
                if let Some(arg) = call.args.iter().nth(self.wrap.arg) {
                    use syn::spanned::Spanned;
                    let r = arg.span().byte_range();
                    self.rw.surround(
                        r.start,
                        r.end,
                        format!("{}(", self.replacement),
                        ")".to_string(),
                    );
                    self.lines.push(call.method.span().start().line);
                }
            }
        }
        syn::visit::visit_expr_method_call(self, call);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrapped(src: &str) -> (String, Vec<usize>) {
        let wrap = WrapCall {
            path: "std::thread::spawn".into(),
            with: "spawn".into(),
            method: None,
            arg: 0,
            requires: None,
        };
        wrapped_by(src, &wrap)
    }

    fn method(path: &str, method: &str, arg: usize) -> WrapCall {
        WrapCall {
            path: path.into(),
            with: "carry".into(),
            method: Some(method.into()),
            arg,
            requires: None,
        }
    }

    fn wrapped_by(src: &str, wrap: &WrapCall) -> (String, Vec<usize>) {
        let file = syn::parse_file(src).unwrap();
        let imports = Imports::of(&file);
        let mut rw = FileRewrite::new(src, 0);
        let mut lines = Vec::new();
        for item in &file.items {
            if let syn::Item::Fn(f) = item {
                lines.extend(wrap_calls(
                    &mut rw,
                    &imports,
                    &f.block,
                    wrap,
                    &format!("crate::h::{}", wrap.with),
                ));
            }
        }
        (rw.apply(), lines)
    }

    #[test]
    fn resolves_through_use() {
        let (out, lines) = wrapped(
            "use std::thread;\nuse std::thread::spawn as sp;\nfn a() {\n    thread::spawn(|| 1);\n    sp(|| 2);\n    std::thread::spawn(|| 3);\n    ::std::thread::spawn(|| 4);\n    other::spawn(|| 5);\n}\n",
        );
        assert_eq!(lines, vec![4, 5, 6, 7]);
        assert!(out.contains("crate::h::spawn(|| 1)"), "{out}");
        assert!(out.contains("crate::h::spawn(|| 2)"), "{out}");
        assert!(out.contains("crate::h::spawn(|| 3)"), "{out}");
        assert!(out.contains("crate::h::spawn(|| 4)"), "{out}");
        assert!(out.contains("other::spawn(|| 5)"), "{out}");
        assert_eq!(out.lines().count(), 9);
    }

    #[test]
    fn glob_imports_unless_shadowed() {
        let (out, _) = wrapped("use std::thread::*;\nfn a() { spawn(|| 1); }\n");
        assert!(out.contains("crate::h::spawn(|| 1)"), "{out}");
        let (out, lines) =
            wrapped("use std::thread::*;\nfn spawn(_: fn()) {}\nfn a() { spawn(|| ()); }\n");
        assert!(lines.is_empty(), "{out}");
    }

    #[test]
    fn nested_calls_and_turbofish() {
        let (out, lines) = wrapped(
            "use std::thread;\nfn a() { thread::spawn(move || thread::spawn::<_, ()>(|| ()).join()); }\n",
        );
        assert_eq!(lines.len(), 2, "{out}");
        assert!(
            out.contains("crate::h::spawn(move || crate::h::spawn::<_, ()>(|| ()).join())"),
            "{out}"
        );
    }

    #[test]
    fn method_calls_on_a_chain_from_the_path() {
        let w = method("std::thread::Builder::new", "spawn", 0);
        let (out, lines) = wrapped_by(
            "use std::thread;\nfn a() {\n    thread::Builder::new().name(n).spawn(move || 1);\n    let b = thread::Builder::new();\n    b.spawn(|| 2);\n    other::Builder::new().spawn(|| 3);\n    x.spawn(|| 4);\n}\n",
            &w,
        );
        assert_eq!(lines, vec![3], "{out}");
        assert!(
            out.contains("thread::Builder::new().name(n).spawn(crate::h::carry(move || 1));"),
            "{out}"
        );
        assert!(
            out.contains("b.spawn(|| 2)") && out.contains("x.spawn(|| 4)"),
            "{out}"
        );
        // `spawn_scoped(s, f)`: the argument chosen, not the first.
        let w = method("std::thread::Builder::new", "spawn_scoped", 1);
        let (out, _) = wrapped_by(
            "fn a() { std::thread::Builder::new().spawn_scoped(s, || 1); }\n",
            &w,
        );
        assert!(
            out.contains(".spawn_scoped(s, crate::h::carry(|| 1))"),
            "{out}"
        );
    }

    #[test]
    fn method_calls_on_the_parameter_of_a_closure_handed_to_the_path() {
        let w = method("std::thread::scope", "spawn", 0);
        let (out, lines) = wrapped_by(
            "use std::thread;\nfn a() {\n    thread::scope(|s| {\n        s.spawn(|| 1);\n        s.spawn(move || s.spawn(|| 2));\n        t.spawn(|| 3);\n    });\n    s.spawn(|| 4);\n    other::scope(|s| s.spawn(|| 5));\n}\n",
            &w,
        );
        assert_eq!(lines, vec![4, 5, 5], "{out}");
        assert!(out.contains("s.spawn(crate::h::carry(|| 1));"), "{out}");
        assert!(
            out.contains("s.spawn(crate::h::carry(move || s.spawn(crate::h::carry(|| 2))));"),
            "{out}"
        );
        for rest in [
            "t.spawn(|| 3)",
            "s.spawn(|| 4)",
            "other::scope(|s| s.spawn(|| 5))",
        ] {
            assert!(out.contains(rest), "{rest}: {out}");
        }
    }

    #[test]
    fn a_wrapped_argument_may_itself_be_a_wrapped_call() {
        // Two rules on one function: the argument's own path replaced inside the wrap.
        let src = "use std::thread;\nfn a() { thread::scope(|s| { s.spawn(thread::spawn(f).join()); }); }\n";
        let file = syn::parse_file(src).unwrap();
        let imports = Imports::of(&file);
        let mut rw = FileRewrite::new(src, 0);
        let syn::Item::Fn(f) = &file.items[1] else {
            panic!()
        };
        let scope = method("std::thread::scope", "spawn", 0);
        wrap_calls(&mut rw, &imports, &f.block, &scope, "crate::h::carry");
        let spawn = WrapCall {
            path: "std::thread::spawn".into(),
            with: "spawn".into(),
            method: None,
            arg: 0,
            requires: None,
        };
        wrap_calls(&mut rw, &imports, &f.block, &spawn, "crate::h::spawn");
        let out = rw.apply();
        assert!(
            out.contains("s.spawn(crate::h::carry(crate::h::spawn(f).join()));"),
            "{out}"
        );
    }
}
