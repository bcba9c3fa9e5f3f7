//! What the wrapper did to each crate, written as JSON beside the build for `explain`.

use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum RuleOutcome {
    /// Instrumented these functions (`file:line path`).
    Matched(Vec<String>),
    /// The crate is in the build but at a version outside the rule's range.
    VersionOutOfRange { found: String, wanted: String },
    /// Every selector was tried on every function; none held.
    NothingSelected,
    /// Only build scripts and proc-macros link the crate (`hostside`): left alone.
    HostOnly,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RuleReport {
    pub rule: String,
    pub outcome: RuleOutcome,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CrateReport {
    pub package: String,
    pub version: String,
    pub crate_name: String,
    pub crate_types: Vec<String>,
    /// Fingerprint of the rule set this report was made with.
    pub rules_fingerprint: String,
    pub rules: Vec<RuleReport>,
    /// Selected functions left alone, and why (`file:line path: reason`).
    pub skipped: Vec<String>,
    /// Other things worth knowing (unparsable files, macro invocations).
    pub notes: Vec<String>,
    /// Where the rewritten sources are, when the crate was rewritten.
    pub shadow: Option<String>,
    /// The directory the shadow tree mirrors.
    pub source_root: Option<String>,
    /// Set when the rewritten crate failed to compile and the original was used.
    pub fell_back: Option<String>,
}

impl CrateReport {
    pub fn write(&self, dir: &Path, unit: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".{unit}.json.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(tmp, dir.join(format!("{unit}.json")))
    }

    pub fn read_all(dir: &Path) -> Vec<CrateReport> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut out: Vec<CrateReport> = entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect();
        out.sort_by(|a, b| (&a.package, &a.crate_name).cmp(&(&b.package, &b.crate_name)));
        out
    }
}
