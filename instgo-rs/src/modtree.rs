//! Finding a crate's source files and the module path of each, the way rustc does:
//! `mod foo;` → `foo.rs` or `foo/mod.rs`, `#[path]`, inline modules, non-mod-rs dirs.

use std::path::{Path, PathBuf};

use crate::cfg::Features;

/// A parsed source file of the crate.
pub struct SourceFile {
    pub path: PathBuf,
    /// Module path inside the crate (`["geometry", "shapes"]`); empty for the root.
    pub module: Vec<String>,
    pub text: String,
    pub ast: syn::File,
    /// Bytes before the parsed text (BOM, `#!` line): syn spans are relative to what follows.
    pub prefix_len: usize,
}

/// A file that was referenced but could not be used; the crate compiles as rustc sees it,
/// so these only mean "not instrumented", never an error.
#[derive(Debug, Clone)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// Reads and parses a source file, remembering the BOM/shebang prefix syn would drop.
pub fn parse_file(path: &Path) -> Result<(String, syn::File, usize), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut prefix = 0;
    if text.starts_with('\u{feff}') {
        prefix = 3;
    }
    if text[prefix..].starts_with("#!") && !text[prefix..].starts_with("#![") {
        prefix += text[prefix..].find('\n').unwrap_or(text.len() - prefix);
    }
    let ast = syn::parse_str::<syn::File>(&text[prefix..]).map_err(|e| {
        let at = e.span().start();
        format!("cannot parse at {}:{}: {e}", at.line, at.column + 1)
    })?;
    Ok((text, ast, prefix))
}

/// Walks the module tree from the crate root file, leaving out the modules `features`
/// shows to be configured out.
pub fn discover(root: &Path, features: &Features) -> (Vec<SourceFile>, Vec<Skipped>) {
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    let mut queue: Vec<(PathBuf, Vec<String>, bool)> = vec![(root.to_path_buf(), Vec::new(), true)];
    while let Some((path, module, mod_rs)) = queue.pop() {
        if files.iter().any(|f: &SourceFile| f.path == path) {
            continue; // the same file included twice through #[path]: rewrite it once
        }
        let (text, ast, prefix_len) = match parse_file(&path) {
            Ok(p) => p,
            Err(reason) => {
                skipped.push(Skipped { path, reason });
                continue;
            }
        };
        let file_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        // Where `mod child;` looks for `child.rs`: beside a mod-rs file, else in a folder
        // named after the file.
        let child_dir = if mod_rs {
            file_dir.clone()
        } else {
            file_dir.join(path.file_stem().unwrap_or_default())
        };
        let mut out = Vec::new();
        collect_mods(
            &ast.items, &file_dir, &child_dir, &module, 0, features, &mut out,
        );
        for (p, m, is_mod_rs) in out {
            if p.is_file() {
                queue.push((p, m, is_mod_rs));
            }
            // A missing file is a `mod` behind a cfg that is off: rustc never reads it.
        }
        files.push(SourceFile {
            path,
            module,
            text,
            ast,
            prefix_len,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    (files, skipped)
}

fn ident_name(i: &syn::Ident) -> String {
    let s = i.to_string();
    s.strip_prefix("r#").map(str::to_string).unwrap_or(s)
}

fn path_attr(attrs: &[syn::Attribute]) -> Option<String> {
    attrs.iter().find_map(|a| match &a.meta {
        syn::Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(s.value()),
            _ => None,
        },
        _ => None,
    })
}

fn collect_mods(
    items: &[syn::Item],
    file_dir: &Path,
    dir: &Path,
    module: &[String],
    inline_depth: usize,
    features: &Features,
    out: &mut Vec<(PathBuf, Vec<String>, bool)>,
) {
    for item in items {
        if let syn::Item::Macro(m) = item {
            // `cfg_if! { if #[cfg(..)] { mod a; } }`, `if_hyper! { mod client; }`: rustc
            // expands these into the module that invokes them, so the `mod`s they carry
            // are modules of this file like any other.
            let inner = items_in_tokens(m.mac.tokens.clone());
            collect_mods(&inner, file_dir, dir, module, inline_depth, features, out);
            continue;
        }
        let syn::Item::Mod(m) = item else { continue };
        if features.off(&m.attrs) {
            continue;
        }
        let name = ident_name(&m.ident);
        let mut child_module = module.to_vec();
        child_module.push(name.clone());
        let explicit = path_attr(&m.attrs);
        match &m.content {
            Some((_, inner)) => {
                let inner_dir = match &explicit {
                    Some(p) => dir.join(p),
                    None => dir.join(&name),
                };
                collect_mods(
                    inner,
                    file_dir,
                    &inner_dir,
                    &child_module,
                    inline_depth + 1,
                    features,
                    out,
                );
            }
            None => match explicit {
                // #[path] outside inline modules is relative to the current file's folder;
                // inside them, to the inline modules' folder. Either way the file it names
                // behaves like a mod.rs.
                Some(p) => {
                    let base = if inline_depth == 0 { file_dir } else { dir };
                    out.push((base.join(p), child_module, true));
                }
                None => {
                    let flat = dir.join(format!("{name}.rs"));
                    if flat.is_file() {
                        out.push((flat, child_module, false));
                    } else {
                        out.push((dir.join(&name).join("mod.rs"), child_module, true));
                    }
                }
            },
        }
    }
}

/// The items a macro invocation's tokens spell, or those of its brace groups when the
/// whole does not parse as items (`cfg_if!`'s `if #[cfg(..)] { items } else { items }`).
fn items_in_tokens(tokens: proc_macro2::TokenStream) -> Vec<syn::Item> {
    struct Items(Vec<syn::Item>);
    impl syn::parse::Parse for Items {
        fn parse(input: syn::parse::ParseStream<'_>) -> syn::Result<Self> {
            let mut items = Vec::new();
            while !input.is_empty() {
                items.push(input.parse()?);
            }
            Ok(Items(items))
        }
    }
    if let Ok(Items(items)) = syn::parse2::<Items>(tokens.clone()) {
        return items;
    }
    tokens
        .into_iter()
        .filter_map(|t| match t {
            proc_macro2::TokenTree::Group(g) if g.delimiter() == proc_macro2::Delimiter::Brace => {
                Some(items_in_tokens(g.stream()))
            }
            _ => None,
        })
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_rustc_module_rules() {
        let dir = std::env::temp_dir().join(format!("instgo-modtree-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let w = |rel: &str, text: &str| {
            let p = dir.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        w("src/lib.rs", "\u{feff}mod a; mod b; #[path = \"other/c_impl.rs\"] mod c; mod inl { mod d; }\n#[cfg(any())] mod missing;\nif_net! { pub mod client; }\ncfg_if::cfg_if! { if #[cfg(unix)] { mod unix; } else { mod other_os; } }");
        w("src/client/mod.rs", "");
        w("src/unix.rs", "");
        w("src/a.rs", "mod nested;");
        w("src/a/nested.rs", "fn x() {}");
        w("src/b/mod.rs", "pub mod e;");
        w("src/b/e.rs", "");
        w("src/other/c_impl.rs", "mod sib;");
        w("src/other/sib.rs", "");
        w("src/inl/d.rs", "");
        let (files, skipped) = discover(&dir.join("src/lib.rs"), &Features::unknown());
        let mut got: Vec<(String, String)> = files
            .iter()
            .map(|f| {
                (
                    f.path.strip_prefix(&dir).unwrap().display().to_string(),
                    f.module.join("::"),
                )
            })
            .collect();
        let want: Vec<(String, String)> = [
            ("src/a.rs", "a"),
            ("src/a/nested.rs", "a::nested"),
            ("src/b/e.rs", "b::e"),
            ("src/b/mod.rs", "b"),
            ("src/client/mod.rs", "client"),
            ("src/inl/d.rs", "inl::d"),
            ("src/lib.rs", ""),
            ("src/other/c_impl.rs", "c"),
            ("src/other/sib.rs", "c::sib"),
            ("src/unix.rs", "unix"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        got.sort();
        assert_eq!(got, want);
        assert!(skipped.is_empty());
        assert_eq!(
            files
                .iter()
                .find(|f| f.module.is_empty())
                .unwrap()
                .prefix_len,
            3
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
