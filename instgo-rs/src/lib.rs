//! instgo: the library behind `cargo instrument`.
//!
//! Data flows one way: [`driver`] (the cargo subcommand) → [`wrapper`] (one rustc call) →
//! [`plan`] ([`modtree`] + [`matcher`] against [`rule`]s) → [`rewrite`] (and
//! [`wrapcall`]) → [`shadow`] →
//! rustc, with [`depinfo`] pointing cargo back at the original files. See ARCHITECTURE.md.

pub mod cfg;
pub mod collect;
pub mod control;
pub mod depinfo;
pub mod driver;
pub mod expand;
pub mod fingerprint;
pub mod glob;
pub mod hostside;
pub mod lockfile;
pub mod matcher;
pub mod modtree;
pub mod plan;
pub mod report;
pub mod rewrite;
pub mod rule;
pub mod runtime_build;
pub mod rustc_args;
pub mod shadow;
pub mod vendor;
pub mod workspace;
pub mod wrapcall;
pub mod wrapper;

/// The runtime's sources and the built-in rules, embedded by build.rs.
pub mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}
