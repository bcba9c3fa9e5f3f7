//! Which functions of a source file a rule selects.

use quote::ToTokens;

use crate::cfg::Features;
use crate::glob;
use crate::rule::{Rule, Vis};

/// A function with a body, seen in its context.
pub struct FnItem<'a> {
    /// Path inside the crate: modules, then the impl's self type or the trait, then the name.
    pub path: String,
    pub ident: String,
    pub self_type: Option<String>,
    /// The trait of a trait impl, or the trait a default method belongs to, as written.
    pub trait_path: Option<String>,
    /// In an `impl` with type parameters: a type that names them may have trait impls
    /// whose bounds they do not meet (see `rewrite::projections_possible`).
    pub in_generic_impl: bool,
    pub vis: Vis,
    pub attrs: &'a [syn::Attribute],
    pub sig: &'a syn::Signature,
    pub block: &'a syn::Block,
}

/// Something in the file that is not instrumented, and why.
#[derive(Debug, Clone)]
pub struct Note {
    pub line: usize,
    pub what: String,
}

/// Every function with a body in the file, plus macro invocations whose items are out of
/// reach (rustc expands them later; the rewrite sees only their tokens).
/// Items `features` shows to be configured out are left out: rustc never compiles them.
pub fn functions<'a>(
    file: &'a syn::File,
    module: &[String],
    features: &Features,
) -> (Vec<FnItem<'a>>, Vec<Note>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    let mut w = Walk {
        features,
        out: &mut out,
        notes: &mut notes,
    };
    w.walk(&file.items, module);
    (out, notes)
}

struct Walk<'a, 'w> {
    features: &'w Features,
    out: &'w mut Vec<FnItem<'a>>,
    notes: &'w mut Vec<Note>,
}

fn vis_of(v: &syn::Visibility) -> Vis {
    match v {
        syn::Visibility::Public(_) => Vis::Pub,
        syn::Visibility::Restricted(_) => Vis::Crate,
        syn::Visibility::Inherited => Vis::Private,
    }
}

fn join(module: &[String], rest: &[&str]) -> String {
    module
        .iter()
        .map(String::as_str)
        .chain(rest.iter().copied())
        .collect::<Vec<_>>()
        .join("::")
}

/// `Foo<T>` → `Foo`, `&'a mut Foo` → `Foo`, `a::Foo` → `Foo`; other types print as tokens.
pub fn type_name(ty: &syn::Type) -> String {
    match ty {
        syn::Type::Path(p) => p
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default(),
        syn::Type::Reference(r) => type_name(&r.elem),
        syn::Type::Paren(p) => type_name(&p.elem),
        syn::Type::Group(g) => type_name(&g.elem),
        other => other.to_token_stream().to_string(),
    }
}

fn path_string(p: &syn::Path) -> String {
    p.segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}

fn line_of(span: proc_macro2::Span) -> usize {
    span.start().line
}

impl<'a> Walk<'a, '_> {
    fn walk(&mut self, items: &'a [syn::Item], module: &[String]) {
        for item in items {
            if item_attrs(item).is_some_and(|a| self.features.off(a)) {
                continue;
            }
            match item {
                syn::Item::Fn(f) => {
                    let ident = f.sig.ident.to_string();
                    self.out.push(FnItem {
                        path: join(module, &[&ident]),
                        ident,
                        self_type: None,
                        trait_path: None,
                        in_generic_impl: false,
                        vis: vis_of(&f.vis),
                        attrs: &f.attrs,
                        sig: &f.sig,
                        block: &f.block,
                    });
                }
                syn::Item::Impl(imp) => {
                    let self_type = type_name(&imp.self_ty);
                    let trait_path = imp.trait_.as_ref().map(|(_, p, _)| path_string(p));
                    for it in &imp.items {
                        if let syn::ImplItem::Fn(f) = it {
                            if self.features.off(&f.attrs) {
                                continue;
                            }
                            let ident = f.sig.ident.to_string();
                            self.out.push(FnItem {
                                path: join(module, &[&self_type, &ident]),
                                ident,
                                self_type: Some(self_type.clone()),
                                trait_path: trait_path.clone(),
                                in_generic_impl: imp.generics.type_params().next().is_some(),
                                // A trait method is as visible as the trait and the type.
                                vis: if trait_path.is_some() {
                                    Vis::Pub
                                } else {
                                    vis_of(&f.vis)
                                },
                                attrs: &f.attrs,
                                sig: &f.sig,
                                block: &f.block,
                            });
                        } else if let syn::ImplItem::Macro(m) = it {
                            self.notes
                                .push(macro_note(&m.mac, line_of(m.mac.bang_token.spans[0])));
                        }
                    }
                }
                syn::Item::Trait(t) => {
                    let trait_name = t.ident.to_string();
                    for it in &t.items {
                        if let syn::TraitItem::Fn(f) = it {
                            if let (Some(block), false) = (&f.default, self.features.off(&f.attrs))
                            {
                                let ident = f.sig.ident.to_string();
                                self.out.push(FnItem {
                                    path: join(module, &[&trait_name, &ident]),
                                    ident,
                                    self_type: None,
                                    trait_path: Some(trait_name.clone()),
                                    in_generic_impl: t.generics.type_params().next().is_some(),
                                    vis: vis_of(&t.vis),
                                    attrs: &f.attrs,
                                    sig: &f.sig,
                                    block,
                                });
                            }
                        }
                    }
                }
                syn::Item::Mod(m) => {
                    if let Some((_, inner)) = &m.content {
                        let mut child = module.to_vec();
                        child.push(m.ident.to_string().trim_start_matches("r#").to_string());
                        self.walk(inner, &child);
                    }
                }
                syn::Item::Macro(m) if m.ident.is_none() => {
                    // `macro_rules! name { .. }` defines; other invocations may expand to items.
                    self.notes
                        .push(macro_note(&m.mac, line_of(m.mac.bang_token.spans[0])));
                }
                _ => {}
            }
        }
    }
}

/// The attributes of the items that can hold functions.
fn item_attrs(item: &syn::Item) -> Option<&[syn::Attribute]> {
    match item {
        syn::Item::Fn(i) => Some(&i.attrs),
        syn::Item::Impl(i) => Some(&i.attrs),
        syn::Item::Trait(i) => Some(&i.attrs),
        syn::Item::Mod(i) => Some(&i.attrs),
        _ => None,
    }
}

fn macro_note(mac: &syn::Macro, line: usize) -> Note {
    Note {
        line,
        what: format!(
            "items inside the macro invocation `{}!` are not instrumented (code inside macro \
             invocations is only tokens before expansion)",
            path_string(&mac.path)
        ),
    }
}

/// Why a selected function is left alone, if it is.
pub fn skip_reason(f: &FnItem<'_>) -> Option<&'static str> {
    if f.sig.constness.is_some() {
        return Some("const fn: it may run at compile time, where the runtime cannot be called");
    }
    if f.trait_path.as_deref().and_then(|p| p.rsplit("::").next()) == Some("GlobalAlloc") {
        return Some("a global allocator: recording a span allocates, so it would call itself");
    }
    None
}

/// Whether `rule`'s selectors all hold for `f` (in a file at `rel_path` from the package root).
pub fn selects(rule: &Rule, f: &FnItem<'_>, rel_path: &str) -> bool {
    let s = &rule.selector;
    if !glob::matches_path(&s.func, &f.path) {
        return false;
    }
    if let Some(p) = &s.impl_type {
        match &f.self_type {
            Some(t) if glob::matches(p, t) => {}
            _ => return false,
        }
    }
    if let Some(p) = &s.trait_name {
        match &f.trait_path {
            Some(t) if glob::matches_path(p, t) => {}
            _ => return false,
        }
    }
    if let Some(p) = &s.path {
        if !glob::matches(p, rel_path) {
            return false;
        }
    }
    if s.vis != Vis::Any && s.vis != f.vis {
        return false;
    }
    if let Some(p) = &s.attr {
        let any = f
            .attrs
            .iter()
            .any(|a| glob::matches_path(p, &path_string(a.path())));
        if !any {
            return false;
        }
    }
    if let Some(want) = s.is_async {
        if f.sig.asyncness.is_some() != want {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::{Origin, Selector};

    fn rule(sel: Selector) -> Rule {
        let origin = Origin {
            file: "rules.toml".into(),
            line: 1,
        };
        Rule::new("r", "k", sel, origin)
    }

    fn sel(func: &str) -> Selector {
        Selector::new(func)
    }

    const SRC: &str = r#"
        pub fn free() {}
        const fn c() -> u8 { 1 }
        mod service {
            pub struct Client;
            impl Client { pub async fn send(&self) {} fn helper(&self) {} }
            impl std::fmt::Display for Client {
                fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { Ok(()) }
            }
            pub trait Greet { fn hi(&self) -> String { String::new() } fn bye(&self); }
            #[get("/")] async fn index() {}
        }
        lazy_static! { static ref X: u8 = 1; }
    "#;

    fn selected(s: Selector) -> Vec<String> {
        let file: syn::File = syn::parse_str(SRC).unwrap();
        let (fns, _) = functions(&file, &[], &Features::unknown());
        let r = rule(s);
        fns.iter()
            .filter(|f| selects(&r, f, "src/lib.rs"))
            .map(|f| f.path.clone())
            .collect()
    }

    #[test]
    fn enumerates_functions_and_macro_notes() {
        let file: syn::File = syn::parse_str(SRC).unwrap();
        let (fns, notes) = functions(&file, &["m".to_string()], &Features::unknown());
        let paths: Vec<&str> = fns.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "m::free",
                "m::c",
                "m::service::Client::send",
                "m::service::Client::helper",
                "m::service::Client::fmt",
                "m::service::Greet::hi",
                "m::service::index"
            ]
        );
        assert_eq!(notes.len(), 1);
        assert!(notes[0].what.contains("lazy_static!"));
        assert!(skip_reason(&fns[1]).unwrap().starts_with("const fn"));
    }

    #[test]
    fn selectors() {
        assert_eq!(selected(sel("Client::send")), ["service::Client::send"]);
        assert_eq!(selected(sel("service::*")).len(), 5);
        assert_eq!(
            selected(Selector {
                impl_type: Some("Client".into()),
                ..sel("*")
            })
            .len(),
            3
        );
        assert_eq!(
            selected(Selector {
                trait_name: Some("Display".into()),
                ..sel("*")
            }),
            ["service::Client::fmt"]
        );
        assert_eq!(
            selected(Selector {
                trait_name: Some("std::fmt::Display".into()),
                ..sel("*")
            }),
            ["service::Client::fmt"]
        );
        assert_eq!(
            selected(Selector {
                vis: Vis::Private,
                ..sel("*")
            }),
            ["c", "service::Client::helper", "service::index"]
        );
        assert_eq!(
            selected(Selector {
                attr: Some("get".into()),
                ..sel("*")
            }),
            ["service::index"]
        );
        assert_eq!(
            selected(Selector {
                is_async: Some(true),
                ..sel("*")
            }),
            ["service::Client::send", "service::index"]
        );
        assert!(selected(Selector {
            path: Some("src/api/*".into()),
            ..sel("*")
        })
        .is_empty());
    }
}
