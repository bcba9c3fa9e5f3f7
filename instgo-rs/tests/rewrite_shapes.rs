//! Snapshot tests: one per rewrite shape. Each snapshot is the rewritten source; every
//! case also checks that no line moved.

use instgo::matcher;
use instgo::rewrite::FileRewrite;
use instgo::rule::{Hooks, Injected, Origin, Rule, Selector, SpanAction, SpanKind, WrapCall};

fn rule() -> Rule {
    let origin = Origin {
        file: "rules.toml".into(),
        line: 1,
    };
    Rule::new("all", "demo", Selector::new("*"), origin)
}

fn hooks(on_enter: bool, on_exit: bool) -> Hooks {
    Hooks {
        module: Injected {
            file: "hooks.rs".into(),
            source: String::new(),
        },
        on_enter: on_enter.then(|| "enter".to_string()),
        on_exit: on_exit.then(|| "exit".to_string()),
        args: None,
        mut_args: Vec::new(),
        map_args: Vec::new(),
        mut_return: false,
    }
}

fn rewrite(src: &str, edition_2015: bool) -> String {
    rewrite_with(src, edition_2015, &rule())
}

fn rewrite_with(src: &str, edition_2015: bool, r: &Rule) -> String {
    let file: syn::File = syn::parse_str(src).unwrap();
    let (fns, _) = matcher::functions(&file, &[], &instgo::cfg::Features::unknown());
    let mut rw = FileRewrite::new(src, 0);
    let imports = instgo::wrapcall::Imports::of(&file);
    let mut skipped = String::new();
    for f in &fns {
        if f.path == "main" {
            rw.start_runtime_in(f, &instgo::rewrite::catalog(std::slice::from_ref(r)));
        }
        if let Some(w) = &r.wrap_call {
            instgo::wrapcall::wrap_calls(&mut rw, &imports, f.block, w, "crate::h::wrapped");
        }
        if r.instruments_functions() && matcher::selects(r, f, "src/lib.rs") {
            let result = match matcher::skip_reason(f) {
                Some(why) => Err(why.to_string()),
                None => rw.instrument(f, r, "demo", "src/lib.rs"),
            };
            if let Err(why) = result {
                skipped.push_str(&format!("\n// skipped {}: {why}", f.path));
            }
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
    out + &skipped
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
shape!(
    lint_attributes_on_any_tail_stay_in_front,
    "struct V(Vec<u8>);\nimpl V {\n    fn at(&mut self, r: std::ops::Range<usize>) -> &mut [u8] {\n        #[expect(clippy::indexing_slicing)]\n        &mut self.0[r]\n    }\n}\n"
);
shape!(
    errors_in_generic_impls_are_recorded_by_type_name,
    "struct Ref<B, T>(B, T);\nimpl<B: AsRef<[u8]>, T> Ref<B, T> {\n    fn split(bytes: B) -> Result<usize, SizeError<B, T>> {\n        let n = check::<B, T>(&bytes)?;\n        Ok(n)\n    }\n}\n"
);
shape!(
    cfg_attributes_on_the_tail_stay_in_front,
    "fn digits(x: usize) -> Result<u8, ()> {\n    #[cfg(debug_assertions)]\n    {\n        Ok(1)\n    }\n    #[cfg(not(debug_assertions))]\n    unsafe {\n        Ok(2)\n    }\n}\n"
);
shape!(
    macro_tail_stays_a_block_tail,
    "fn find(h: &[u8]) -> Option<usize> {\n    dispatch!(h)\n}\n"
);
shape!(
    global_allocator_is_left_alone,
    "struct A;\nunsafe impl std::alloc::GlobalAlloc for A {\n    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 { std::alloc::System.alloc(l) }\n    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) { std::alloc::System.dealloc(p, l) }\n}\nfn other() {}\n"
);
shape!(inner_attributes_and_main, "fn main() {\n    #![allow(unused)]\n    let x = 1;\n}\nfn doc_inner() {\n    //! inner doc\n    let y = 2;\n}\n");
shape!(closures_and_nested_items_keep_their_own_exits, "fn outer() -> Option<u8> {\n    let f = |x: Option<u8>| -> Option<u8> { let y = x?; return Some(y) };\n    fn inner() -> u8 { return 1 }\n    f(Some(inner()))\n}\n");

shape!(
    returns_impl_future,
    "fn send(&self, req: Request) -> impl Future<Output = Result<Response, Error>> + Send {\n    if req.bad() {\n        return Pending::err();\n    }\n    self.execute(req)\n}\nfn opaque() -> impl std::future::Future<Output = impl Display> { async { 1 } }\n"
);

#[test]
fn edition_2015_declares_the_runtime_after_inner_attributes() {
    insta::assert_snapshot!(rewrite("#![allow(dead_code)]\n//! docs\nfn a() {}\n", true));
}

macro_rules! hooked {
    ($name:ident, $src:expr, $rule:expr) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(rewrite_with($src, false, &$rule));
        }
    };
}

fn with_hooks(h: Hooks) -> Rule {
    Rule {
        hooks: Some(h),
        ..rule()
    }
}

hooked!(
    hooks_sync_enter_exit_and_try,
    "fn get(&self, key: &str, n: u32) -> Result<u32, Error> {\n    if n == 0 {\n        return Err(Error::Zero);\n    }\n    let v = self.load(key)?;\n    Ok(v + n)\n}\n",
    with_hooks(hooks(true, true))
);
hooked!(
    hooks_async_with_option_try,
    "async fn find(id: u32) -> Option<u32> {\n    let v = lookup(id).await?;\n    Some(v)\n}\n",
    with_hooks(hooks(true, true))
);
hooked!(
    hooks_unit_fn_falls_off_the_end,
    "fn log(msg: String) {\n    println!(\"{msg}\");\n}\nfn tail_macro(x: u8) {\n    println!(\"{x}\")\n}\nfn tail_expr() {\n    work()\n}\n",
    with_hooks(hooks(false, true))
);
hooked!(
    hooks_mut_and_mapped_args_without_span,
    "pub fn spawn<F: FnOnce()>(f: F, mut name: String, req: Request) -> Handle {\n    start(f, name, req)\n}\n",
    Rule {
        span: None,
        hooks: Some(Hooks {
            args: Some(vec!["req".into(), "name".into()]),
            mut_args: vec!["req".into(), "name".into()],
            map_args: vec![("f".into(), "carry".into())],
            ..hooks(true, false)
        }),
        ..rule()
    }
);
hooked!(
    hooks_refuse_try_in_other_return_types_and_pattern_args,
    "fn poll_it(x: u8) -> Poll<Result<u8, E>> {\n    let v = ready(x)?;\n    Poll::Ready(Ok(v))\n}\nfn pat((a, b): (u8, u8)) -> u8 {\n    a + b\n}\n",
    with_hooks(hooks(true, true))
);
hooked!(
    span_attributes_from_arguments,
    "fn charge(&self, user: &User, cents: u64) -> bool {\n    true\n}\n",
    Rule {
        span: Some(SpanAction {
            name: "billing {fn}".into(),
            kind: SpanKind::Client,
            attributes: vec![
                ("user.id".into(), "user.id".into()),
                ("amount".into(), "cents".into()),
                ("account".into(), "self.account".into()),
            ],
        }),
        ..rule()
    }
);
hooked!(
    wrap_call_sites,
    "use std::thread;\nfn run() {\n    let h = thread::spawn(move || work());\n    h.join().unwrap();\n}\n",
    Rule {
        span: None,
        hooks: Some(hooks(false, false)),
        wrap_call: Some(WrapCall {
            path: "std::thread::spawn".into(),
            with: "wrapped".into(),
            method: None,
            arg: 0,
            requires: None,
        }),
        ..rule()
    }
);
hooked!(
    wrap_method_call_sites_in_a_scope,
    "use std::thread;\nfn run(data: &[u32]) -> u32 {\n    thread::scope(|s| {\n        let a = s.spawn(|| data[0]);\n        let b = s.spawn(move || s.spawn(|| data[1]).join().unwrap());\n        a.join().unwrap() + b.join().unwrap()\n    })\n}\n",
    Rule {
        span: None,
        hooks: Some(hooks(false, false)),
        wrap_call: Some(WrapCall {
            path: "std::thread::scope".into(),
            with: "wrapped".into(),
            method: Some("spawn".into()),
            arg: 0,
            requires: None,
        }),
        ..rule()
    }
);

hooked!(
    hooks_on_a_function_returning_a_future,
    "pub fn send(mut self) -> impl Future<Output = Result<Response, Error>> {\n    match self.request {\n        Ok(req) => self.client.execute_request(req),\n        Err(err) => Pending::new_err(err),\n    }\n}\n",
    with_hooks(Hooks {
        mut_args: vec!["self".into()],
        ..hooks(true, true)
    })
);

hooked!(
    hooks_get_a_by_value_self_as_mut,
    "pub fn call(self) -> Result<Response> {\n    self.do_call(Payload::Empty)\n}\n",
    with_hooks(Hooks {
        args: Some(vec!["self".into()]),
        mut_args: vec!["self".into()],
        ..hooks(true, true)
    })
);

hooked!(
    hooks_exit_may_replace_the_returned_value,
    "fn call(&self, req: Req) -> BoxFuture {\n    if req.bad() {\n        return reject(req);\n    }\n    self.inner.call(req)\n}\n",
    with_hooks(Hooks {
        mut_return: true,
        ..hooks(true, true)
    })
);
