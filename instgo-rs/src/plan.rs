//! Deciding what to rewrite in one crate: rules → functions → edited files.

use std::path::{Path, PathBuf};

use crate::matcher;
use crate::modtree;
use crate::report::{CrateReport, RuleOutcome, RuleReport};
use crate::rewrite::FileRewrite;
use crate::rule::{normalize_crate, Rule};

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
}

pub struct Plan {
    /// Rewritten files, keyed by the path rustc knows them by.
    pub files: Vec<(PathBuf, String)>,
    pub report: CrateReport,
}

/// The rules that name this package, split into those whose version range holds and
/// reports for those whose range does not.
pub fn applicable<'r>(
    rules: &'r [Rule],
    package: &str,
    version: &str,
) -> (Vec<&'r Rule>, Vec<RuleReport>) {
    let pkg = normalize_crate(package);
    let parsed = semver::Version::parse(version).ok();
    let mut yes = Vec::new();
    let mut no = Vec::new();
    for r in rules.iter().filter(|r| r.krate == pkg) {
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
            no.push(RuleReport {
                rule: r.name.clone(),
                outcome: RuleOutcome::VersionOutOfRange {
                    found: version.to_string(),
                    wanted: r.version.clone().unwrap_or_default(),
                },
            });
        }
    }
    (yes, no)
}

pub fn plan(input: &CrateInput<'_>, rules: &[&Rule]) -> Plan {
    let mut report = CrateReport {
        package: input.package.to_string(),
        version: input.version.to_string(),
        crate_name: input.crate_name.to_string(),
        ..Default::default()
    };
    let mut matched: Vec<Vec<String>> = vec![Vec::new(); rules.len()];
    let mut rewrites: Vec<(&modtree::SourceFile, FileRewrite)> = Vec::new();
    let (sources, unreadable) = modtree::discover(input.src);
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
        let (fns, notes) = matcher::functions(&sf.ast, &sf.module);
        if !rules.is_empty() {
            for n in notes {
                report
                    .notes
                    .push(format!("{display}:{}: {}", n.line, n.what));
            }
        }
        let mut rw = FileRewrite::new(&sf.text, sf.prefix_len);
        let is_root = sf.module.is_empty() && sf.path == input.src;
        for f in &fns {
            if input.is_bin && is_root && f.path == "main" {
                rw.start_runtime_in(f);
            }
            let Some(ri) = rules.iter().position(|r| matcher::selects(r, f, &rel)) else {
                continue;
            };
            let line = f.sig.fn_token.span.start().line;
            if let Some(why) = matcher::skip_reason(f) {
                report
                    .skipped
                    .push(format!("{display}:{line} {}: {why}", f.path));
                continue;
            }
            let site = rw.instrument(f, rules[ri], input.crate_name, &display);
            matched[ri].push(format!("{display}:{} {}", site.line, site.path));
        }
        rewrites.push((sf, rw));
    }
    // Edition 2015 resolves `::instgo_runtime` from the crate root: the root declares it
    // when any file of the crate uses it.
    if input.edition == "2015" && rewrites.iter().any(|(_, rw)| !rw.is_empty()) {
        if let Some((root, rw)) = rewrites.iter_mut().find(|(sf, _)| sf.path == input.src) {
            rw.declare_runtime_crate(&root.ast);
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
    Plan { files, report }
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
