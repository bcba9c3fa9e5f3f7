//! The version of a dependency as the workspace's `Cargo.lock` resolved it, for rules that
//! only make sense against one major version of the crate they call into
//! (`wrap_call.requires`): a hook file written for hyper 1 must not be compiled into a
//! crate that calls hyper 0.14.

use std::path::Path;

/// The version of `dep` (a package name) that `package@version` depends on, if the lock
/// file says; `None` when it cannot be told (no lock, a renamed dependency, an entry
/// missing).
pub fn dependency_version(
    lock: &Path,
    package: &str,
    version: &str,
    dep: &str,
) -> Option<semver::Version> {
    let text = std::fs::read_to_string(lock).ok()?;
    let doc: toml::Table = toml::from_str(&text).ok()?;
    let packages = doc.get("package")?.as_array()?;
    let field = |p: &toml::Value, k: &str| p.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let me = packages.iter().find(|p| {
        field(p, "name").as_deref() == Some(package)
            && field(p, "version").as_deref() == Some(version)
    })?;
    let named = |d: &str| d == dep || d.starts_with(&format!("{dep} "));
    let entry = me
        .get("dependencies")?
        .as_array()?
        .iter()
        .filter_map(|d| d.as_str())
        .find(|d| named(d))?;
    // "hyper 1.12.0 (registry+…)" when several versions are in the graph, else "hyper".
    if let Some(v) = entry.split(' ').nth(1) {
        return semver::Version::parse(v).ok();
    }
    let mut versions = packages
        .iter()
        .filter(|p| field(p, "name").as_deref() == Some(dep))
        .filter_map(|p| field(p, "version"));
    let only = versions.next()?;
    if versions.next().is_some() {
        return None;
    }
    semver::Version::parse(&only).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_version_a_package_depends_on() {
        let dir = std::env::temp_dir().join(format!("instgo-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let lock = dir.join("Cargo.lock");
        std::fs::write(
            &lock,
            r#"version = 4

[[package]]
name = "app"
version = "0.1.0"
dependencies = ["hyper 1.12.0", "tokio"]

[[package]]
name = "old"
version = "0.2.0"
dependencies = ["hyper 0.14.32 (registry+https://github.com/rust-lang/crates.io-index)"]

[[package]]
name = "hyper"
version = "0.14.32"

[[package]]
name = "hyper"
version = "1.12.0"

[[package]]
name = "tokio"
version = "1.54.1"
"#,
        )
        .unwrap();
        let v =
            |p: &str, pv: &str, d: &str| dependency_version(&lock, p, pv, d).map(|v| v.to_string());
        assert_eq!(v("app", "0.1.0", "hyper").as_deref(), Some("1.12.0"));
        assert_eq!(v("old", "0.2.0", "hyper").as_deref(), Some("0.14.32"));
        assert_eq!(v("app", "0.1.0", "tokio").as_deref(), Some("1.54.1"));
        assert_eq!(v("app", "0.1.0", "serde"), None);
        assert_eq!(v("nobody", "0.1.0", "hyper"), None);
        assert_eq!(
            dependency_version(&dir.join("none.lock"), "app", "0.1.0", "hyper"),
            None
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
