//! Telling, from rustc's `--cfg feature="…"` arguments, that an item is configured out.
//!
//! Modules and functions are found in the source without expanding anything, so a rule
//! could match a function rustc never compiles (`reqwest::blocking` without its feature);
//! its hook module would then name items that are not there and the crate would fall
//! back to plain. Only `feature` predicates and `test` (rustc's `--test`) are decided
//! here: every other one (`unix`, `target_os = ..`) may be on, and an item is skipped only
//! when it is surely off. A library's `#[cfg(test)]` module is off in a normal build.

/// What rustc was told of one crate's configuration (`None`: nothing known).
pub struct Features(Option<Known>);

struct Known {
    /// The features on.
    on: Vec<String>,
    /// Whether rustc builds the crate's tests (`--test`: `cfg(test)` is on).
    test: bool,
}

impl Features {
    /// Read from rustc's arguments: `--cfg feature="x"` (or `--cfg=feature="x"`).
    pub fn from_rustc_args(args: &[String]) -> Features {
        let mut on = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let value = match a.strip_prefix("--cfg=") {
                Some(v) => Some(v),
                None if a == "--cfg" => it.next().map(String::as_str),
                None => None,
            };
            if let Some(name) = value
                .and_then(|v| v.strip_prefix("feature="))
                .map(|v| v.trim_matches('"'))
            {
                on.push(name.to_string());
            }
        }
        let test = args.iter().any(|a| a == "--test");
        Features(Some(Known { on, test }))
    }

    /// Nothing known: no item is ever off.
    pub fn unknown() -> Features {
        Features(None)
    }

    /// Whether one of `attrs`' `#[cfg(..)]` is surely false.
    pub fn off(&self, attrs: &[syn::Attribute]) -> bool {
        let Some(known) = &self.0 else {
            return false;
        };
        attrs
            .iter()
            .filter(|a| a.path().is_ident("cfg"))
            .filter_map(|a| a.parse_args::<syn::Meta>().ok())
            .any(|m| eval(&m, known) == Some(false))
    }
}

/// `Some(value)` when the predicate depends only on features and `test`; `None` when
/// unknown.
fn eval(m: &syn::Meta, known: &Known) -> Option<bool> {
    match m {
        syn::Meta::Path(p) if p.is_ident("test") => Some(known.test),
        syn::Meta::NameValue(nv) if nv.path.is_ident("feature") => match &nv.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(known.on.contains(&s.value())),
            _ => None,
        },
        syn::Meta::List(l) => {
            let name = l.path.get_ident()?.to_string();
            let args = l
                .parse_args_with(
                    syn::punctuated::Punctuated::<syn::Meta, syn::Token![,]>::parse_terminated,
                )
                .ok()?;
            let values: Vec<Option<bool>> = args.iter().map(|a| eval(a, known)).collect();
            // all() is decided by one surely-false member, or by all surely true; any()
            // the other way round.
            let decide = |decisive: bool| {
                if values.contains(&Some(decisive)) {
                    Some(decisive)
                } else if values.iter().all(|v| *v == Some(!decisive)) {
                    Some(!decisive)
                } else {
                    None
                }
            };
            match name.as_str() {
                "all" => decide(false),
                "any" => decide(true),
                "not" if values.len() == 1 => values[0].map(|v| !v),
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn off(attr: &str, features: &[&str]) -> bool {
        let item: syn::ItemMod = syn::parse_str(&format!("{attr} mod m;")).unwrap();
        let args: Vec<String> = features
            .iter()
            .flat_map(|f| ["--cfg".to_string(), format!("feature=\"{f}\"")])
            .collect();
        Features::from_rustc_args(&args).off(&item.attrs)
    }

    #[test]
    fn features_decide_and_everything_else_may_be_on() {
        assert!(off("#[cfg(feature = \"blocking\")]", &["json"]));
        assert!(!off("#[cfg(feature = \"blocking\")]", &["blocking"]));
        assert!(!off("#[cfg(unix)]", &[]));
        assert!(!off("#[cfg(target_os = \"none\")]", &[]));
        assert!(off("#[cfg(all(unix, feature = \"a\"))]", &[]));
        assert!(!off("#[cfg(all(unix, feature = \"a\"))]", &["a"]));
        assert!(!off("#[cfg(any(unix, feature = \"a\"))]", &[]));
        assert!(off("#[cfg(any(feature = \"a\", feature = \"b\"))]", &["c"]));
        assert!(off("#[cfg(not(feature = \"a\"))]", &["a"]));
        assert!(!off("#[cfg(not(test))]", &[]));
        assert!(off("#[cfg(test)]", &[]));
        assert!(off("#[cfg(all(test, unix))]", &[]));
        assert!(off(
            "#[doc = \"x\"] #[cfg(feature = \"a\")] #[cfg(unix)]",
            &[]
        ));
        assert!(!off("#[cfg_attr(feature = \"a\", path = \"x.rs\")]", &[]));
        // Without rustc's arguments nothing is known.
        let item: syn::ItemMod = syn::parse_str("#[cfg(feature = \"a\")] mod m;").unwrap();
        assert!(!Features::unknown().off(&item.attrs));
        // Under `--test`, test modules are on.
        let item: syn::ItemMod = syn::parse_str("#[cfg(test)] mod tests;").unwrap();
        let args = vec!["--test".to_string()];
        assert!(!Features::from_rustc_args(&args).off(&item.attrs));
        let item: syn::ItemMod = syn::parse_str("#[cfg(feature = \"a\")] mod m;").unwrap();
        // `--cfg=feature="x"` is the same as the two-argument form.
        let args = vec!["--cfg=feature=\"a\"".to_string()];
        assert!(!Features::from_rustc_args(&args).off(&item.attrs));
    }
}
