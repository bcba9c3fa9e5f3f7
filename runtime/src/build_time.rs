//! Whether this process runs at build time: a build script, or the compiler running a
//! proc-macro.
//!
//! Cargo compiles a crate that both the application and a build script (or a proc-macro)
//! depend on once, and links that one copy into both. When the tool instruments such a
//! crate, its calls into this runtime run inside the build too: in the build script's
//! process, and inside rustc, which loads proc-macros as libraries. Spans from there go
//! nowhere anyone looks, and an SDK started there would spawn export threads, open
//! sockets, install a panic hook and flush at exit in a process that is not the
//! application (in rustc's case, every compile that expands the macro). So the runtime
//! stays switched off in such a process: the SDK and the meter never start, every site is
//! off, the OpAMP client never runs. Crates linked *only* into build scripts and
//! proc-macros are not instrumented at all (the tool's `hostside` module).

extern crate proc_macro;

/// Build time, decided once per process (the first site that registers asks, through
/// the SDK's start).
pub(crate) fn is_build_time() -> bool {
    in_build_script(|name| std::env::var_os(name).is_some()) || proc_macro::is_available()
}

/// Cargo runs a build script with `OUT_DIR`, `TARGET`, `HOST` and the `CARGO_CFG_*`
/// variables of the target; it gives none of the last three to the programs it runs
/// itself (`cargo run`, `cargo test`). Programs a build script starts inherit them, and
/// are part of the build too.
fn in_build_script(is_set: impl Fn(&str) -> bool) -> bool {
    ["OUT_DIR", "TARGET", "HOST", "CARGO_CFG_TARGET_OS"]
        .iter()
        .all(|v| is_set(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_script_has_all_four_variables() {
        let with = |set: &'static [&'static str]| in_build_script(move |n| set.contains(&n));
        assert!(with(&["OUT_DIR", "TARGET", "HOST", "CARGO_CFG_TARGET_OS"]));
        // `cargo run` of a package with a build script: OUT_DIR only.
        assert!(!with(&["OUT_DIR"]));
        // A shell that sets HOST (zsh does), and a TARGET of the user's own.
        assert!(!with(&["HOST", "TARGET"]));
    }

    #[test]
    fn not_inside_a_proc_macro_here() {
        assert!(!proc_macro::is_available());
    }
}
