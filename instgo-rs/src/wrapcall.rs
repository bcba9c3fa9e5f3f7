//! `wrap_call`: calls of a function that cannot be rewritten where it is defined (`std`,
//! or a crate the rule does not target) are redirected, at each call site, to a function
//! of the rule's hook file, which calls the original itself.
//!
//! Call sites are found by path, resolved through the file's `use` declarations:
//! `thread::spawn(..)` after `use std::thread;` is `std::thread::spawn`. Method calls and
//! calls through function pointers are not call sites of a path and are left alone.

use std::collections::HashMap;

use syn::visit::Visit;

use crate::rewrite::FileRewrite;

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

/// Redirects, inside `block`, every call of `target` to `replacement`; returns the lines
/// of the call sites it changed.
pub fn wrap_calls(
    rw: &mut FileRewrite,
    imports: &Imports,
    block: &syn::Block,
    target: &str,
    replacement: &str,
) -> Vec<usize> {
    let mut v = Calls {
        rw,
        imports,
        target,
        replacement,
        lines: Vec::new(),
    };
    v.visit_block(block);
    v.lines
}

struct Calls<'a> {
    rw: &'a mut FileRewrite,
    imports: &'a Imports,
    target: &'a str,
    replacement: &'a str,
    lines: Vec<usize>,
}

impl<'ast> Visit<'ast> for Calls<'_> {
    // Items nested in the body are functions of their own, selected (or not) on their own.
    fn visit_item(&mut self, _: &'ast syn::Item) {}

    fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
        if let syn::Expr::Path(p) = &*call.func {
            if p.qself.is_none()
                && self
                    .imports
                    .resolve(&p.path)
                    .iter()
                    .any(|full| full == self.target)
            {
                use syn::spanned::Spanned;
                // Generic arguments (`spawn::<F, T>`) stay on the replacement only when the
                // hook function has the same generics; a turbofish is kept as written.
                let last = p.path.segments.last().expect("a path has a segment");
                let r = p.path.span().byte_range();
                let end = last.ident.span().byte_range().end;
                self.rw
                    .replace(r.start, end - r.start, self.replacement.to_string());
                self.lines.push(p.path.span().start().line);
            }
        }
        syn::visit::visit_expr_call(self, call);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrapped(src: &str) -> (String, Vec<usize>) {
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
                    "std::thread::spawn",
                    "crate::h::spawn",
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
}
