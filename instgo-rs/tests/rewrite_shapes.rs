//! Snapshot tests: one per rewrite shape. Each snapshot is the rewritten source; every
//! case also checks that no line moved.

use instgo::matcher;
use instgo::rewrite::FileRewrite;
use instgo::rule::{Origin, Rule, Selector, SpanAction, SpanKind};

fn rule() -> Rule {
    Rule {
        name: "all".into(),
        krate: "demo".into(),
        version: None,
        selector: Selector::new("*"),
        span: SpanAction {
            name: "{path}".into(),
            kind: SpanKind::Internal,
        },
        origin: Origin {
            file: "rules.toml".into(),
            line: 1,
        },
    }
}

fn rewrite(src: &str, edition_2015: bool) -> String {
    let file: syn::File = syn::parse_str(src).unwrap();
    let (fns, _) = matcher::functions(&file, &[]);
    let r = rule();
    let mut rw = FileRewrite::new(src, 0);
    for f in &fns {
        if f.path == "main" {
            rw.start_runtime_in(f);
        }
        if matcher::selects(&r, f, "src/lib.rs") && matcher::skip_reason(f).is_none() {
            rw.instrument(f, &r, "demo", "src/lib.rs");
        }
    }
    if edition_2015 {
        rw.declare_runtime_crate(&file);
    }
    let out = rw.apply();
    assert_eq!(out.lines().count(), src.lines().count(), "a line moved");
    // The result must still be Rust.
    syn::parse_str::<syn::File>(&out)
        .unwrap_or_else(|e| panic!("rewritten source does not parse: {e}\n{out}"));
    out
}

macro_rules! shape {
    ($name:ident, $src:expr) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(rewrite($src, false));
        }
    };
}

shape!(free_fn_unit, "fn work(n: u32) {\n    let _ = n;\n}\n");
shape!(result_tail_return_and_try, "fn parse(s: &str) -> Result<u32, std::num::ParseIntError> {\n    if s.is_empty() {\n        return Ok(0);\n    }\n    let n = s.trim().parse::<u32>()?;\n    Ok(n * 2)\n}\n");
shape!(inherent_and_mut_self, "struct S(Vec<u8>);\nimpl S {\n    fn get(&mut self) -> &mut Vec<u8> {\n        &mut self.0\n    }\n}\n");
shape!(trait_impl_and_default, "trait T {\n    fn name(&self) -> String { String::new() }\n    fn req(&self);\n}\nimpl T for u8 {\n    fn req(&self) {}\n}\n");
shape!(generic_and_impl_trait, "fn sum<I: IntoIterator<Item = u32>>(it: I) -> u32 { it.into_iter().sum() }\nfn evens(v: &[u32]) -> impl Iterator<Item = &u32> + '_ { v.iter().filter(|x| *x % 2 == 0) }\n");
shape!(async_fn, "async fn fetch(id: u32) -> Result<String, String> {\n    let v = load(id).await?;\n    Ok(v)\n}\n");
shape!(
    async_fn_in_trait,
    "trait Repo {\n    async fn get(&self, id: u32) -> Option<u32> { Some(id) }\n}\n"
);
shape!(unsafe_extern_and_pin, "unsafe fn raw(p: *const u8) -> u8 { *p }\nextern \"C\" fn cb(x: i32) -> i32 { x + 1 }\nimpl F { fn poll_it(self: std::pin::Pin<&mut Self>) -> bool { true } }\n");
shape!(
    never_and_const,
    "fn die() -> ! { panic!(\"x\") }\nconst fn k() -> u8 { 1 }\n"
);
shape!(inner_attributes_and_main, "fn main() {\n    #![allow(unused)]\n    let x = 1;\n}\nfn doc_inner() {\n    //! inner doc\n    let y = 2;\n}\n");
shape!(closures_and_nested_items_keep_their_own_exits, "fn outer() -> Option<u8> {\n    let f = |x: Option<u8>| -> Option<u8> { let y = x?; return Some(y) };\n    fn inner() -> u8 { return 1 }\n    f(Some(inner()))\n}\n");

#[test]
fn edition_2015_declares_the_runtime_after_inner_attributes() {
    insta::assert_snapshot!(rewrite("#![allow(dead_code)]\n//! docs\nfn a() {}\n", true));
}
