//! Reading the rustc command line cargo hands the wrapper.

/// What the wrapper needs to know about one rustc invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RustcArgs {
    pub args: Vec<String>,
    pub crate_name: Option<String>,
    pub crate_types: Vec<String>,
    pub edition: String,
    /// Index in `args` of the crate root source file.
    pub src_index: Option<usize>,
    pub out_dir: Option<String>,
    pub extra_filename: String,
    /// `--emit` kinds, with an explicit path for any that has one.
    pub emit: Vec<(String, Option<String>)>,
    /// An `@file` argument: the real arguments are elsewhere, so leave this call alone.
    pub has_argfile: bool,
    /// Names the crate can refer to through `--extern` (`noprelude:`/`priv:` dropped).
    pub externs: Vec<String>,
    /// `--target`: cargo passes it to target units of a cross build, never to host ones.
    pub target: Option<String>,
}

/// Options whose value is the next argument when not written `--opt=value` / `-Cvalue`.
const TAKES_VALUE: &[&str] = &[
    "-o",
    "--out-dir",
    "--crate-name",
    "--crate-type",
    "--edition",
    "--emit",
    "-C",
    "--codegen",
    "-L",
    "-l",
    "--cfg",
    "--check-cfg",
    "--extern",
    "--cap-lints",
    "--target",
    "--error-format",
    "--json",
    "--remap-path-prefix",
    "-A",
    "-W",
    "-D",
    "-F",
    "--allow",
    "--warn",
    "--deny",
    "--forbid",
    "--force-warn",
    "--print",
    "--explain",
    "-Z",
    "--diagnostic-width",
    "--sysroot",
    "--color",
    "--env-set",
    "--remap-path-scope",
];

impl RustcArgs {
    pub fn parse(args: Vec<String>) -> RustcArgs {
        let mut r = RustcArgs {
            edition: "2015".into(),
            ..Default::default()
        };
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            let (opt, inline): (&str, Option<&str>) = match a.split_once('=') {
                Some((o, v)) if o.starts_with("--") => (o, Some(v)),
                _ => (a.as_str(), None),
            };
            if a.starts_with('@') {
                r.has_argfile = true;
            }
            if TAKES_VALUE.contains(&opt) {
                let value = match inline {
                    Some(v) => Some(v.to_string()),
                    None => {
                        i += 1;
                        args.get(i).cloned()
                    }
                };
                if let Some(v) = value {
                    r.note(opt, &v);
                }
            } else if let Some(v) = a.strip_prefix("-C").filter(|v| !v.is_empty()) {
                r.note("-C", v);
            } else if !a.starts_with('-') && a.ends_with(".rs") && r.src_index.is_none() {
                r.src_index = Some(i);
            }
            i += 1;
        }
        r.args = args;
        r
    }

    fn note(&mut self, opt: &str, v: &str) {
        match opt {
            "--crate-name" => self.crate_name = Some(v.to_string()),
            "--crate-type" => self.crate_types.extend(v.split(',').map(String::from)),
            "--edition" => self.edition = v.to_string(),
            "--out-dir" => self.out_dir = Some(v.to_string()),
            "--target" => self.target = Some(v.to_string()),
            "--extern" => {
                let name = v.split_once('=').map_or(v, |(n, _)| n);
                let name = name.rsplit_once(':').map_or(name, |(_, n)| n);
                self.externs.push(name.to_string());
            }
            "--emit" => {
                for kind in v.split(',') {
                    match kind.split_once('=') {
                        Some((k, p)) => self.emit.push((k.to_string(), Some(p.to_string()))),
                        None => self.emit.push((kind.to_string(), None)),
                    }
                }
            }
            "-C" | "--codegen" => {
                if let Some(x) = v.strip_prefix("extra-filename=") {
                    self.extra_filename = x.to_string();
                }
            }
            _ => {}
        }
    }

    pub fn src(&self) -> Option<&str> {
        self.src_index.map(|i| self.args[i].as_str())
    }

    pub fn is_proc_macro(&self) -> bool {
        self.crate_types.iter().any(|t| t == "proc-macro")
    }

    pub fn is_build_script(&self) -> bool {
        self.crate_name
            .as_deref()
            .is_some_and(|n| n.starts_with("build_script_"))
    }

    /// Binaries and test harnesses have a `main` the runtime should start from.
    pub fn is_bin(&self) -> bool {
        self.crate_types.iter().any(|t| t == "bin")
            || (self.crate_types.is_empty() && self.args.iter().any(|a| a == "--test"))
    }

    /// Where rustc writes the dep-info file, if it writes one.
    pub fn dep_info_path(&self) -> Option<String> {
        let (_, explicit) = self.emit.iter().find(|(k, _)| k == "dep-info")?;
        if let Some(p) = explicit {
            return Some(p.clone());
        }
        let dir = self.out_dir.as_deref().unwrap_or(".");
        let name = self.crate_name.as_deref()?;
        Some(format!("{dir}/{name}{}.d", self.extra_filename))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> RustcArgs {
        RustcArgs::parse(s.split_whitespace().map(String::from).collect())
    }

    #[test]
    fn cargo_style_lib_invocation() {
        let r = parse(
            "--crate-name shapes_lib --edition=2021 src/lib.rs --error-format=json --json=diagnostic-rendered-ansi \
             --crate-type lib --emit=dep-info,metadata,link -C embed-bitcode=no -C debuginfo=2 \
             -C metadata=abc -C extra-filename=-0f1e2d --out-dir /t/debug/deps -L dependency=/t/debug/deps \
             --cap-lints allow",
        );
        assert_eq!(r.crate_name.as_deref(), Some("shapes_lib"));
        assert_eq!(r.edition, "2021");
        assert_eq!(r.src(), Some("src/lib.rs"));
        assert_eq!(r.crate_types, ["lib"]);
        assert_eq!(
            r.dep_info_path().as_deref(),
            Some("/t/debug/deps/shapes_lib-0f1e2d.d")
        );
        assert!(!r.is_bin() && !r.is_proc_macro() && !r.is_build_script());
    }

    #[test]
    fn queries_and_special_crates() {
        let q = parse("- --crate-name ___ --print=file-names --crate-type bin");
        assert_eq!(q.src(), None);
        assert!(
            parse("--crate-name build_script_build build.rs --crate-type bin").is_build_script()
        );
        assert!(parse("--crate-name m src/lib.rs --crate-type proc-macro").is_proc_macro());
        assert!(parse("--crate-name t src/main.rs --test").is_bin());
    }

    #[test]
    fn extern_names_without_options_or_paths() {
        let r = parse(
            "--extern tokio=/t/libtokio.rlib --extern=noprelude:alloc --extern priv:h=/h.rlib --extern proc_macro",
        );
        assert_eq!(r.externs, ["tokio", "alloc", "h", "proc_macro"]);
        assert!(
            parse("--crate-name t src/main.rs -Cextra-filename=-9 --emit=dep-info=/x/t.d")
                .dep_info_path()
                .as_deref()
                == Some("/x/t.d")
        );
        assert!(parse("@/tmp/args").has_argfile);
        assert_eq!(
            parse("--crate-name a src/lib.rs --target x86_64-unknown-linux-gnu")
                .target
                .as_deref(),
            Some("x86_64-unknown-linux-gnu")
        );
        assert_eq!(parse("--crate-name a src/lib.rs").target, None);
    }
}
