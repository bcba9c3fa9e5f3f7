// Compiled by build.rs through cargo's RUSTC_WRAPPER, as anyhow's build/probe.rs is:
// whether this compiler takes nightly features.
#![feature(never_type)]

pub fn probe() -> Option<!> {
    None
}
