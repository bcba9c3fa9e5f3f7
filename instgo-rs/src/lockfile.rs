//! The version of a dependency as the workspace's `Cargo.lock` resolved it, for rules that
//! only make sense against one major version of the crate they call into
//! (`wrap_call.requires`): a hook file written for hyper 1 must not be compiled into a
//! crate that calls hyper 0.14.

use std::path::Path;

/// A `Cargo.lock`'s packages: name, version and the dependency entries of each.
pub struct Lock {
    packages: Vec<Package>,
}

struct Package {
    name: String,
    version: String,
    /// As the lock writes them: `"hyper"`, or `"hyper 1.12.0 (registry+…)"` when several
    /// versions are in the graph.
    dependencies: Vec<String>,
}

impl Lock {
    /// The lock file at `path`; `None` when it cannot be read or parsed.
    pub fn read(path: &Path) -> Option<Lock> {
        let text = std::fs::read_to_string(path).ok()?;
        let doc: toml::Table = toml::from_str(&text).ok()?;
        let field = |p: &toml::Value, k: &str| p.get(k)?.as_str().map(str::to_string);
        let packages = doc
            .get("package")?
            .as_array()?
            .iter()
            .filter_map(|p| {
                Some(Package {
                    name: field(p, "name")?,
                    version: field(p, "version")?,
                    dependencies: p
                        .get("dependencies")
                        .and_then(|d| d.as_array())
                        .map_or_else(Vec::new, |d| {
                            d.iter()
                                .filter_map(|d| d.as_str())
                                .map(str::to_string)
                                .collect()
                        }),
                })
            })
            .collect();
        Some(Lock { packages })
    }

    /// The version of `dep` (a package name) that `package@version` depends on, if the
    /// lock says; `None` when it cannot be told (a renamed dependency, an entry missing).
    pub fn dependency_version(
        &self,
        package: &str,
        version: &str,
        dep: &str,
    ) -> Option<semver::Version> {
        let me = self
            .packages
            .iter()
            .find(|p| p.name == package && p.version == version)?;
        let entry = me
            .dependencies
            .iter()
            .find(|d| *d == dep || d.strip_prefix(dep).is_some_and(|r| r.starts_with(' ')))?;
        if let Some(v) = entry.split(' ').nth(1) {
            return semver::Version::parse(v).ok();
        }
        let mut versions = self.packages.iter().filter(|p| p.name == dep);
        let only = versions.next()?;
        if versions.next().is_some() {
            return None;
        }
        semver::Version::parse(&only.version).ok()
    }
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
        let read = Lock::read(&lock).unwrap();
        let v =
            |p: &str, pv: &str, d: &str| read.dependency_version(p, pv, d).map(|v| v.to_string());
        assert_eq!(v("app", "0.1.0", "hyper").as_deref(), Some("1.12.0"));
        assert_eq!(v("old", "0.2.0", "hyper").as_deref(), Some("0.14.32"));
        assert_eq!(v("app", "0.1.0", "tokio").as_deref(), Some("1.54.1"));
        assert_eq!(v("app", "0.1.0", "serde"), None);
        assert_eq!(v("nobody", "0.1.0", "hyper"), None);
        assert!(Lock::read(&dir.join("none.lock")).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
