//! The runtime's dependency graph keeps the promises ARCHITECTURE.md makes for it.
//!
//! Every crate that links an instrumented crate also loads the runtime's dependencies, so:
//! * no C code (no `links`, no build script that runs `cc`, `cmake`, `bindgen` or
//!   `pkg-config`): two copies of a C library, ours and the app's, would clash at link
//!   time;
//! * no async runtime: the app's would not be ours;
//! * no impls that change type inference in the app: an impl of a generic std trait
//!   (`AsRef<X>`, `PartialEq<X>`, `From<X>`…) for a std type is seen by every such crate.
//!   winnow's `impl AsRef<Bytes> for [u8]` made `slice.as_ref().hash(state)` ambiguous
//!   in ureq 3, which the plain build compiles (found by tests/apps). Each impl of that
//!   shape in the graph is listed below with why it does no harm; a new one fails here
//!   until it is looked at.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// (crate, trait, Self) → why it cannot change what std alone infers.
const REVIEWED: &[(&str, &str, &str, &str)] = &[
    ("basic-toml", "From", "(usize, usize)", "(T, T): From<_> has std impls already ([T; 2], itself)"),
    ("bytes", "PartialEq", "*", "std has several PartialEq impls for each of these Self types already"),
    ("bytes", "PartialOrd", "*", "as PartialEq"),
    ("bytes", "From", "Vec<u8>", "Vec<u8>: From<_> has many std impls"),
    ("generic-array", "From", "*", "arrays: From<_> has several std impls (tuples, itself)"),
    ("httpdate", "From", "SystemTime", "std has only `From<SystemTime> for SystemTime`, so only \
      `SystemTime::from(x)` with `x` not yet known changes, a shape no conversion is written in"),
    ("http", "PartialEq", "*", "std has several PartialEq impls for str, String, [u8] already; for u16 only with a StatusCode or Port operand, which the app names"),
    ("http", "PartialOrd", "*", "as PartialEq"),
    ("http", "From", "u16", "u16: From<_> has many std impls (u8, bool, NonZero…)"),
    ("indexmap", "PartialEq", "[T]", "[T]: PartialEq<_> has several std impls"),
    ("miniz_oxide", "From", "*", "integers have many std From impls"),
    ("opentelemetry", "From", "String", "String: From<_> has many std impls"),
    ("opentelemetry_sdk", "From", "Box<dyn ShouldSample>", "a Box of its own trait object"),
    ("percent-encoding", "From", "*", "Cow: From<_> has several std impls"),
    ("ppv-lite86", "From", "*", "arrays: From<_> has several std impls"),
    ("tungstenite", "From", "*", "integers have many std From impls"),
    ("typenum", "Index", "*", "std has no Index for tuples: nothing that compiles changes"),
    ("typenum", "IndexMut", "*", "as Index"),
    ("zerocopy", "From", "*", "byte arrays: From<_> has several std impls"),
    ("zerocopy", "PartialEq", "*", "byte arrays: PartialEq<_> has several std impls"),
    ("zlib-rs", "From", "*", "a Result of its own types"),
];

const GENERIC_STD_TRAITS: &[&str] = &[
    "AsRef",
    "AsMut",
    "Borrow",
    "BorrowMut",
    "PartialEq",
    "PartialOrd",
    "From",
    "TryFrom",
    "Extend",
    "FromIterator",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Rem",
    "BitAnd",
    "BitOr",
    "BitXor",
    "Shl",
    "Shr",
    "Index",
    "IndexMut",
];

const STD_TYPES: &[&str] = &[
    "str",
    "String",
    "Vec",
    "Box",
    "Cow",
    "Option",
    "Result",
    "Rc",
    "Arc",
    "u8",
    "u16",
    "u32",
    "u64",
    "u128",
    "usize",
    "i8",
    "i16",
    "i32",
    "i64",
    "i128",
    "isize",
    "f32",
    "f64",
    "bool",
    "char",
    "OsStr",
    "OsString",
    "Path",
    "PathBuf",
    "Duration",
    "SystemTime",
    "HashMap",
    "BTreeMap",
    "HashSet",
    "BTreeSet",
    "VecDeque",
];

/// `cargo metadata` of the runtime as the tool builds it: on its own (in this workspace,
/// the collector's features would be unified into its dependencies), without its
/// dev-dependencies, with this repository's lock file.
fn metadata() -> serde_json::Value {
    let rustc = Command::new("rustc").arg("-vV").output().unwrap();
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .unwrap();
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("standalone-runtime");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/lib.rs"), "").unwrap();
    let manifest = std::fs::read_to_string(here.join("Cargo.toml")).unwrap();
    let manifest = manifest.split("[dev-dependencies]").next().unwrap();
    std::fs::write(dir.join("Cargo.toml"), format!("{manifest}\n[workspace]\n")).unwrap();
    std::fs::copy(here.join("../Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--filter-platform",
            &host,
        ])
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The packages the runtime links: its normal dependencies, transitively, without
/// proc-macros (they run in the compiler and their impls are not loaded by the app).
fn linked(meta: &serde_json::Value) -> Vec<&serde_json::Value> {
    let packages: BTreeMap<&str, &serde_json::Value> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p))
        .collect();
    let is_proc_macro = |id: &str| {
        packages[id]["targets"].as_array().unwrap().iter().any(|t| {
            t["kind"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k == "proc-macro")
        })
    };
    let nodes: BTreeMap<&str, &serde_json::Value> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let root = packages
        .values()
        .find(|p| p["name"] == "instgo-runtime")
        .map(|p| p["id"].as_str().unwrap())
        .unwrap();
    let mut seen = BTreeSet::new();
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        for d in nodes[id]["deps"].as_array().unwrap() {
            let normal = d["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null());
            let dep = d["pkg"].as_str().unwrap();
            if normal && !is_proc_macro(dep) {
                stack.push(dep);
            }
        }
    }
    seen.remove(root);
    seen.into_iter().map(|id| packages[id]).collect()
}

/// `impl<…> Trait<…> for Self` on one line, with a generic std trait and a std Self type:
/// (trait, Self).
fn std_impl(line: &str) -> Option<(String, String)> {
    let rest = line.trim_start().strip_prefix("impl")?;
    let rest = rest.trim_start();
    let rest = match rest.strip_prefix('<') {
        Some(r) => {
            let mut depth = 1;
            let end = r.char_indices().find(|&(_, c)| {
                depth += match c {
                    '<' => 1,
                    '>' => -1,
                    _ => 0,
                };
                depth == 0
            })?;
            &r[end.0 + 1..]
        }
        None => rest,
    };
    let (head, tail) = rest.split_once(" for ")?;
    let path = head.trim().split('<').next()?;
    let trait_name = path.rsplit("::").next()?.trim();
    if !GENERIC_STD_TRAITS.contains(&trait_name) || !head.contains('<') {
        return None;
    }
    let self_ty = tail.split(" where").next()?.trim_end_matches('{').trim();
    let bare = self_ty
        .trim_start_matches('&')
        .trim_start_matches(|c: char| c == '\'' || c.is_alphanumeric() || c == '_')
        .trim_start();
    // `&'a str` → `str`; `[u8]`, `[T]` and tuples are std's too.
    let bare = if self_ty.starts_with("&'") {
        bare
    } else {
        self_ty.trim_start_matches('&')
    };
    let name = bare.split('<').next()?.trim();
    let is_std = STD_TYPES.contains(&name) || bare.starts_with('[') || bare.starts_with('(');
    is_std.then(|| (trait_name.to_string(), self_ty.to_string()))
}

fn reviewed(krate: &str, trait_name: &str, self_ty: &str) -> bool {
    REVIEWED.iter().any(|(c, t, s, _)| {
        *c == krate && *t == trait_name && (*s == "*" || *s == self_ty.trim_start_matches('&'))
    })
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_c_code_and_no_async_runtime() {
    let meta = metadata();
    let linked = linked(&meta);
    assert!(
        linked.len() > 20,
        "{} packages: the walk is broken",
        linked.len()
    );
    for p in &linked {
        let name = p["name"].as_str().unwrap();
        assert!(
            p["links"].is_null(),
            "{name} links a native library ({})",
            p["links"]
        );
        for d in p["dependencies"].as_array().unwrap() {
            if d["kind"] == "build" {
                let dep = d["name"].as_str().unwrap();
                assert!(
                    !["cc", "cmake", "bindgen", "pkg-config"].contains(&dep),
                    "{name}'s build script uses {dep}: C code in the runtime's graph"
                );
            }
        }
        assert!(
            !["tokio", "async-std", "smol", "async-executor"].contains(&name),
            "{name}: an async runtime in the runtime's graph"
        );
    }
}

#[test]
fn no_unreviewed_impls_that_change_inference() {
    let meta = metadata();
    let mut found = Vec::new();
    let mut seen_reviewed = BTreeSet::new();
    for p in linked(&meta) {
        let name = p["name"].as_str().unwrap();
        let dir = Path::new(p["manifest_path"].as_str().unwrap())
            .parent()
            .unwrap();
        let mut files = Vec::new();
        rust_files(&dir.join("src"), &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            for (i, line) in text.lines().enumerate() {
                let Some((t, s)) = std_impl(line) else {
                    continue;
                };
                if reviewed(name, &t, &s) {
                    seen_reviewed.insert(name);
                } else {
                    found.push(format!("{name} {}:{}: {}", f.display(), i + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "impls every crate that links the runtime would see, which can make std's own \
         inference ambiguous; keep the crate out of the runtime's graph, or review each and \
         add it to REVIEWED with the reason:\n{}",
        found.join("\n")
    );
    // The scan finds what it should: http is in the graph and has such impls.
    assert!(seen_reviewed.contains("http"), "{seen_reviewed:?}");
}

#[test]
fn the_impl_shape_is_read_as_intended() {
    let hit = |l: &str| std_impl(l).map(|(t, s)| format!("{t} for {s}"));
    assert_eq!(
        hit("impl AsRef<Bytes> for [u8] {"),
        Some("AsRef for [u8]".into())
    );
    assert_eq!(
        hit("impl<'a> From<&'a BStr> for &'a [u8] {"),
        Some("From for &'a [u8]".into())
    );
    assert_eq!(
        hit("    impl<T, U> PartialEq<Slice<U>> for [T]"),
        Some("PartialEq for [T]".into())
    );
    assert_eq!(
        hit("impl core::ops::Add<Span> for usize {"),
        Some("Add for usize".into())
    );
    assert_eq!(hit("impl PartialEq<Bytes> for Bytes {"), None);
    assert_eq!(hit("impl Display for Error {"), None);
    assert_eq!(hit("impl<T: Debug> Debug for Vec<T> {"), None);
    assert_eq!(hit("implement(x)"), None);
}
