//! Making rustc's dep-info (the `.d` file cargo reads to know what to watch) name the
//! original files instead of their shadow copies.

use std::io;
use std::path::Path;

/// Replaces every occurrence of the shadow root with the original root in `dep_file`.
pub fn point_at_originals(
    dep_file: &Path,
    shadow_root: &str,
    original_root: &str,
) -> io::Result<()> {
    let text = std::fs::read_to_string(dep_file)?;
    if !text.contains(shadow_root) {
        return Ok(());
    }
    std::fs::write(dep_file, rewrite(&text, shadow_root, original_root))
}

fn rewrite(text: &str, shadow_root: &str, original_root: &str) -> String {
    // Make's syntax escapes spaces in paths; the roots are escaped the same way.
    let esc = |s: &str| s.replace(' ', "\\ ");
    text.replace(&esc(shadow_root), &esc(original_root))
}

#[cfg(test)]
mod tests {
    #[test]
    fn rewrites_targets_and_prerequisites() {
        let d =
            "/t/deps/x.d: /sh/a/src/lib.rs /sh/a/src/m.rs\n\n/sh/a/src/lib.rs:\n/sh/a/src/m.rs:\n";
        assert_eq!(
            super::rewrite(d, "/sh/a", "/home/u/p"),
            "/t/deps/x.d: /home/u/p/src/lib.rs /home/u/p/src/m.rs\n\n/home/u/p/src/lib.rs:\n/home/u/p/src/m.rs:\n"
        );
    }
}
