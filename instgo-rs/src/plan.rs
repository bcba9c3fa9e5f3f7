//! Deciding what to rewrite in one crate: rules → functions → edited files.

use std::path::{Path, PathBuf};

use crate::cfg::Features;
use crate::matcher;
use crate::modtree;
use crate::report::{CrateReport, RuleOutcome, RuleReport};
use crate::rewrite::{added_module, hook_module, FileRewrite};
use crate::rule::{normalize_crate, Injected, Rule};
use crate::wrapcall;

/// One crate compilation as the wrapper sees it.
pub struct CrateInput<'a> {
    /// The root source file as rustc was given it (relative to its working directory or absolute).
    pub src: &'a Path,
    pub manifest_dir: &'a Path,
    pub crate_name: &'a str,
    pub package: &'a str,
    pub version: &'a str,
    pub edition: &'a str,
    pub is_bin: bool,
    /// Where the modules rules inject (hook files, `add_file`) are written.
    pub inject_dir: &'a Path,
    /// The crate's features, to leave out what they configure out.
    pub features: &'a Features,
    /// The build's rules as `rewrite::catalog` writes them, for a binary's `main`.
    pub catalog: &'a str,
}

pub struct Plan {
    /// Rewritten files, keyed by the path rustc knows them by.
    pub files: Vec<(PathBuf, String)>,
    /// Modules injected into the crate: where to write them, and their text.
    pub injected: Vec<(PathBuf, String)>,
    pub report: CrateReport,
}

/// The rules that name this package, split into those whose version range holds and
/// reports for those whose range does not.
pub fn applicable<'r>(
    rules: &'r [Rule],
    package: &str,
    version: &str,
    externs: &[String],
) -> (Vec<&'r Rule>, Vec<RuleReport>) {
    let pkg = normalize_crate(package);
    let parsed = semver::Version::parse(version).ok();
    let mut yes = Vec::new();
    let mut no = Vec::new();
    for r in rules
        .iter()
        .filter(|r| r.targets(&pkg) && r.can_apply_with(externs))
    {
        let ok = match (&r.version, &parsed) {
            (None, _) => true,
            (Some(req), Some(v)) => semver::VersionReq::parse(req)
                .map(|q| q.matches(v))
                .unwrap_or(false),
            (Some(_), None) => false,
        };
        if ok {
            yes.push(r);
        } else {
            no.push(out_of_range(
                r,
                version.to_string(),
                r.version.clone().unwrap_or_default(),
            ));
        }
    }
    (yes, no)
}

fn out_of_range(r: &Rule, found: String, wanted: String) -> RuleReport {
    RuleReport {
        rule: r.name.clone(),
        outcome: RuleOutcome::VersionOutOfRange { found, wanted },
    }
}

/// Splits off the call-wrapping rules whose `requires` the version of the called crate
/// (`version_of("hyper")`, from the lock file) does not meet, or that cannot be told.
pub fn meets_requires(
    rules: Vec<&Rule>,
    version_of: impl Fn(&str) -> Option<semver::Version>,
) -> (Vec<&Rule>, Vec<RuleReport>) {
    let mut yes = Vec::new();
    let mut no = Vec::new();
    for r in rules {
        let Some((w, req)) = r
            .wrap_call
            .as_ref()
            .and_then(|w| w.requires.as_ref().map(|q| (w, q)))
        else {
            yes.push(r);
            continue;
        };
        let dep = w.path.split("::").next().unwrap_or_default();
        let found = version_of(dep);
        let ok = match (&found, semver::VersionReq::parse(req)) {
            (Some(v), Ok(q)) => q.matches(v),
            _ => false,
        };
        if ok {
            yes.push(r);
        } else {
            let found = match found {
                Some(v) => format!("{dep} {v}"),
                None => format!("{dep} (version unknown)"),
            };
            no.push(out_of_range(r, found, format!("{dep} {req}")));
        }
    }
    (yes, no)
}

/// The lints a crate root `forbid`s: an `allow` of one of them is itself an error, so
/// injected modules must not carry it (`#![forbid(unsafe_code)]`).
fn forbidden_lints(attrs: &[syn::Attribute]) -> Vec<String> {
    let mut out = Vec::new();
    for a in attrs {
        if !a.path().is_ident("forbid") {
            continue;
        }
        let _ = a.parse_nested_meta(|m| {
            let path: Vec<String> = m
                .path
                .segments
                .iter()
                .map(|s| s.ident.to_string())
                .collect();
            out.push(path.join("::"));
            Ok(())
        });
    }
    out
}

/// Drops the rules that only wrap calls of a path (see [`Rule::wraps_calls_only`]) whose
/// last segment (`spawn` of `std::thread::spawn`) no source file under the crate root's
/// folder mentions: such a crate has no call site, and reading its text is much cheaper
/// than parsing it. A rule over `std` applies to every crate of the graph; most never
/// spawn a thread.
pub fn drop_absent_calls<'r>(rules: Vec<&'r Rule>, root: &Path) -> Vec<&'r Rule> {
    let needle = |r: &Rule| r.wrap_call.as_ref().map(|w| w.needle().to_string());
    let mut wanted: Vec<String> = rules
        .iter()
        .filter(|r| r.wraps_calls_only())
        .filter_map(|r| needle(r))
        .collect();
    if wanted.is_empty() {
        return rules;
    }
    wanted.sort();
    wanted.dedup();
    let mut found: Vec<String> = Vec::new();
    let dir = match root.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut dirs = vec![dir];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "target") {
                    dirs.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "rs") {
                let Ok(text) = std::fs::read_to_string(&p) else {
                    continue;
                };
                wanted.retain(|w| {
                    let hit = text.contains(w.as_str());
                    if hit {
                        found.push(w.clone());
                    }
                    !hit
                });
                if wanted.is_empty() {
                    return rules;
                }
            }
        }
    }
    rules
        .into_iter()
        .filter(|r| !r.wraps_calls_only() || needle(r).is_some_and(|n| found.contains(&n)))
        .collect()
}

pub fn plan(input: &CrateInput<'_>, rules: &[&Rule]) -> Plan {
    let mut report = CrateReport {
        package: input.package.to_string(),
        version: input.version.to_string(),
        crate_name: input.crate_name.to_string(),
        ..Default::default()
    };
    let mut matched: Vec<Vec<String>> = vec![Vec::new(); rules.len()];
    let mut used_hooks = vec![false; rules.len()];
    let mut rewrites: Vec<(&modtree::SourceFile, FileRewrite)> = Vec::new();
    let (sources, unreadable) = modtree::discover(input.src, input.features);
    for s in unreadable {
        report.notes.push(format!(
            "{}: not instrumented: {}",
            s.path.display(),
            s.reason
        ));
    }
    for sf in &sources {
        let display = sf.path.display().to_string();
        let rel = rel_to_package(&sf.path, input.manifest_dir);
        let (fns, notes) = matcher::functions(&sf.ast, &sf.module, input.features);
        if !rules.is_empty() {
            for n in notes {
                report
                    .notes
                    .push(format!("{display}:{}: {}", n.line, n.what));
            }
        }
        let mut rw = FileRewrite::new(&sf.text, sf.prefix_len);
        let is_root = sf.module.is_empty() && sf.path == input.src;
        // Only wrap_call needs to know what the file imports.
        let imports = rules
            .iter()
            .any(|r| r.wrap_call.is_some())
            .then(|| wrapcall::Imports::of(&sf.ast));
        for f in &fns {
            if input.is_bin && is_root && f.path == "main" {
                rw.start_runtime_in(f, input.catalog);
            }
            let line = f.sig.fn_token.span.start().line;
            // Call sites first: every wrap_call rule selecting this function, one per path;
            // of two rules wrapping the same path the one defined last wins (a rules.toml
            // rule over a built-in one).
            let mut wrapped: Vec<String> = Vec::new();
            for (ri, r) in rules.iter().enumerate().rev() {
                let (Some(w), Some(imports)) = (&r.wrap_call, &imports) else {
                    continue;
                };
                let site = w.site();
                if wrapped.contains(&site) || !matcher::selects(r, f, &rel) {
                    continue;
                }
                let with = format!("crate::{}::{}", hook_module(&r.name), w.with);
                for l in wrapcall::wrap_calls(&mut rw, imports, f.block, w, &with) {
                    matched[ri].push(format!("{display}:{l} {} (call of {site})", f.path));
                    used_hooks[ri] = true;
                }
                wrapped.push(site);
            }
            let Some(ri) = rules
                .iter()
                .position(|r| r.instruments_functions() && matcher::selects(r, f, &rel))
            else {
                continue;
            };
            if let Some(why) = matcher::skip_reason(f) {
                report
                    .skipped
                    .push(format!("{display}:{line} {}: {why}", f.path));
                continue;
            }
            match rw.instrument(f, rules[ri], input.crate_name, &display) {
                Ok(()) => {
                    matched[ri].push(format!("{display}:{line} {}", f.path));
                    used_hooks[ri] |= rules[ri].hooks.is_some();
                }
                Err(why) => report.skipped.push(format!(
                    "{display}:{line} {}: rule `{}`: {why}",
                    f.path, rules[ri].name
                )),
            }
        }
        rewrites.push((sf, rw));
    }
    // Hook files of rules that rewrote something, and every add_file of a rule that
    // applies, become modules of the crate root.
    let mut modules: Vec<(String, &Injected)> = Vec::new();
    for (ri, r) in rules.iter().enumerate() {
        if let (Some(h), true) = (&r.hooks, used_hooks[ri]) {
            modules.push((hook_module(&r.name), &h.module));
        }
        // An added file goes where the rule rewrote something or, for a rule that only
        // adds files, into the library (a package's binaries cannot see its items).
        let add_here = if r.instruments_functions() || r.wrap_call.is_some() {
            !matched[ri].is_empty()
        } else {
            !input.is_bin
        };
        if let (Some(a), true) = (&r.add_file, add_here) {
            modules.push((added_module(&r.name), a));
            matched[ri].push(format!("{}: module {}", a.file, added_module(&r.name)));
        }
    }
    let mut injected = Vec::new();
    if !modules.is_empty() {
        if let Some((sf, rw)) = rewrites.iter_mut().find(|(sf, _)| sf.path == input.src) {
            let forbidden = forbidden_lints(&sf.ast.attrs);
            for (name, m) in modules {
                let path = input.inject_dir.join(format!("{name}.rs"));
                rw.append_module(&name, &path, &forbidden);
                injected.push((path, format!("// From {}\n{}", m.file, m.source)));
            }
        }
    }
    // Injected code names `::instgo_runtime`, which edition 2015 resolves from the crate
    // root: the root declares the crate (later editions have it in the extern prelude).
    if input.edition == "2015" && rewrites.iter().any(|(_, rw)| !rw.is_empty()) {
        if let Some((sf, rw)) = rewrites.iter_mut().find(|(sf, _)| sf.path == input.src) {
            rw.declare_runtime_crate(&sf.ast);
        }
    }
    let files = rewrites
        .into_iter()
        .filter(|(_, rw)| !rw.is_empty())
        .map(|(sf, rw)| (sf.path.clone(), rw.apply()))
        .collect();
    for (rule, sites) in rules.iter().zip(matched) {
        report.rules.push(RuleReport {
            rule: rule.name.clone(),
            outcome: if sites.is_empty() {
                RuleOutcome::NothingSelected
            } else {
                RuleOutcome::Matched(sites)
            },
        });
    }
    Plan {
        files,
        injected,
        report,
    }
}

fn rel_to_package(path: &Path, manifest_dir: &Path) -> String {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    abs.strip_prefix(manifest_dir)
        .unwrap_or(&abs)
        .to_string_lossy()
        .replace('\\', "/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::{Origin, Selector, WrapCall};

    /// A crate in a fresh temporary folder: `files` as (path under it, text).
    fn temp_crate(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("instgo-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (rel, text) in files {
            let p = dir.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    fn origin() -> Origin {
        Origin {
            file: "rules.toml".into(),
            line: 1,
        }
    }

    fn wrapping(name: &str, path: &str) -> Rule {
        let mut r = Rule::new(name, "*", Selector::new("*"), origin());
        r.span = None;
        r.wrap_call = Some(WrapCall {
            path: path.into(),
            with: "w".into(),
            method: None,
            arg: 0,
            requires: None,
        });
        r
    }

    #[test]
    fn edition_2015_roots_declare_the_runtime_for_wrapped_calls() {
        let dir = temp_crate(
            "2015",
            &[
                ("src/lib.rs", "mod a;\n"),
                ("src/a.rs", "fn f() { ::std::thread::spawn(|| ()); }\n"),
            ],
        );
        let mut r = wrapping("threads", "std::thread::spawn");
        r.hooks = Some(crate::rule::Hooks {
            module: Injected {
                file: "threads.rs".into(),
                source: String::new(),
            },
            on_enter: None,
            on_exit: None,
            args: None,
            mut_args: Vec::new(),
            map_args: Vec::new(),
            mut_return: false,
        });
        let src = dir.join("src/lib.rs");
        for (edition, declared) in [("2015", true), ("2018", false)] {
            let p = plan(
                &CrateInput {
                    src: &src,
                    manifest_dir: &dir,
                    crate_name: "old",
                    package: "old",
                    version: "0.1.0",
                    edition,
                    is_bin: false,
                    inject_dir: &dir.join("inject"),
                    features: &Features::unknown(),
                    catalog: "",
                },
                &[&r],
            );
            let root = &p.files.iter().find(|(f, _)| *f == src).unwrap().1;
            assert_eq!(
                root.contains("extern crate instgo_runtime;"),
                declared,
                "{root}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn call_wrapping_rules_skip_crates_that_never_name_the_call() {
        let dir = temp_crate(
            "absent",
            &[
                ("src/lib.rs", "mod deep;"),
                ("src/deep/mod.rs", "fn f() { thread::spawn(|| ()); }"),
            ],
        );
        let threads = wrapping("threads", "std::thread::spawn");
        let joins = wrapping("joins", "rayon::join");
        let spans = Rule::new("spans", "*", Selector::new("*"), origin());
        let kept = drop_absent_calls(vec![&threads, &joins, &spans], &dir.join("src/lib.rs"));
        let names: Vec<&str> = kept.iter().map(|r| r.name.as_str()).collect();
        // `spawn` is named in a nested module file; `join` nowhere; a span rule always stays.
        assert_eq!(names, ["threads", "spans"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn configured_out_modules_and_functions_are_not_matched() {
        let dir = temp_crate(
            "cfg",
            &[
                (
                    "src/lib.rs",
                    "#[cfg(feature = \"blocking\")]\nmod blocking;\npub fn kept() {}\n#[cfg(not(feature = \"json\"))]\npub fn gone() {}\n",
                ),
                ("src/blocking.rs", "pub fn execute() {}\n"),
            ],
        );
        let src = dir.join("src/lib.rs");
        let r = Rule::new("all", "*", Selector::new("*"), origin());
        let matched = |args: &[&str]| -> Vec<String> {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            let p = plan(
                &CrateInput {
                    src: &src,
                    manifest_dir: &dir,
                    crate_name: "gated",
                    package: "gated",
                    version: "0.1.0",
                    edition: "2021",
                    is_bin: false,
                    inject_dir: &dir.join("inject"),
                    features: &Features::from_rustc_args(&args),
                    catalog: "",
                },
                &[&r],
            );
            let mut fns: Vec<String> = p
                .report
                .rules
                .iter()
                .flat_map(|r| match &r.outcome {
                    RuleOutcome::Matched(m) => m.clone(),
                    _ => Vec::new(),
                })
                .map(|m| m.rsplit(' ').next().unwrap_or_default().to_string())
                .collect();
            fns.sort();
            fns
        };
        assert_eq!(matched(&["--cfg", "feature=\"json\""]), ["kept"]);
        assert_eq!(
            matched(&["--cfg", "feature=\"blocking\""]),
            ["blocking::execute", "gone", "kept"]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn call_wrapping_rules_apply_only_with_the_version_they_require() {
        let mut hyper1 = wrapping("hyper-server", "hyper::service::service_fn");
        hyper1.wrap_call.as_mut().unwrap().requires = Some(">=1, <2".into());
        let threads = wrapping("threads", "std::thread::spawn");
        let names = |(yes, _): (Vec<&Rule>, Vec<RuleReport>)| -> Vec<String> {
            yes.iter().map(|r| r.name.clone()).collect()
        };
        let v = |s: &str| semver::Version::parse(s).ok();
        assert_eq!(
            names(meets_requires(vec![&hyper1, &threads], |_| v("1.12.0"))),
            ["hyper-server", "threads"]
        );
        assert_eq!(
            names(meets_requires(vec![&hyper1, &threads], |_| v("0.14.32"))),
            ["threads"]
        );
        let (yes, no) = meets_requires(vec![&hyper1], |_| None);
        assert!(yes.is_empty());
        assert!(
            matches!(&no[0].outcome, RuleOutcome::VersionOutOfRange { found, .. } if found.contains("unknown"))
        );
    }
}
