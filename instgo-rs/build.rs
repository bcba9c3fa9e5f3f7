//! Embeds the runtime's sources and the built-in rule catalog, so an installed
//! `cargo-instrument` works from any directory without this checkout.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "target" || n == "tests") {
                continue;
            }
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn table(name: &str, root: &Path, files: &[PathBuf], code: &mut String) {
    writeln!(code, "pub const {name}: &[(&str, &str)] = &[").unwrap();
    for f in files {
        let rel = f
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        writeln!(
            code,
            "    ({rel:?}, include_str!({:?})),",
            f.display().to_string()
        )
        .unwrap();
    }
    writeln!(code, "];").unwrap();
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let repo = manifest.parent().unwrap().to_path_buf();
    let runtime = repo.join("runtime");
    let rules = repo.join("rules");
    let mut runtime_files = vec![runtime.join("Cargo.toml")];
    files_under(&runtime.join("src"), &mut runtime_files);
    let mut rule_files = Vec::new();
    files_under(&rules, &mut rule_files);
    rule_files.retain(|p| p.extension().is_some_and(|e| e == "toml" || e == "rs"));

    let mut code = String::new();
    table("RUNTIME_FILES", &runtime, &runtime_files, &mut code);
    table("BUILTIN_RULES", &rules, &rule_files, &mut code);
    writeln!(
        code,
        "pub const RUNTIME_LOCK: &str = include_str!({:?});",
        repo.join("Cargo.lock").display().to_string()
    )
    .unwrap();
    // What the tool does to a crate is its own source: when that changes, every
    // instrumented artifact must be rebuilt (the driver compares this in state.json).
    let mut tool_files = Vec::new();
    files_under(&manifest.join("src"), &mut tool_files);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for f in &tool_files {
        for b in std::fs::read(f).unwrap() {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    writeln!(code, "pub const TOOL_SOURCE: &str = \"{hash:016x}\";").unwrap();
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("embedded.rs");
    std::fs::write(out, code).unwrap();
    println!("cargo:rerun-if-changed={}", runtime.display());
    println!("cargo:rerun-if-changed={}", runtime.join("src").display());
    println!("cargo:rerun-if-changed={}", rules.display());
    println!(
        "cargo:rerun-if-changed={}",
        repo.join("Cargo.lock").display()
    );
    for f in runtime_files.iter().chain(&rule_files).chain(&tool_files) {
        println!("cargo:rerun-if-changed={}", f.display());
    }
}
