//! The runtime's own diagnostics: stderr only, filtered by `OTEL_LOG_LEVEL`.
//!
//! stdout belongs to the application, so nothing here ever goes there.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) enum Level {
    Debug,
    Info,
    Warn,
    Error,
    Off,
}

fn threshold() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| parse_level(std::env::var("OTEL_LOG_LEVEL").ok().as_deref()))
}

pub(crate) fn parse_level(v: Option<&str>) -> Level {
    match v.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        Some("debug") | Some("trace") => Level::Debug,
        Some("warn") | Some("warning") => Level::Warn,
        Some("error") => Level::Error,
        Some("none") | Some("off") => Level::Off,
        _ => Level::Info,
    }
}

pub(crate) fn enabled(level: Level) -> bool {
    level != Level::Off && level >= threshold()
}

pub(crate) fn log(level: Level, msg: std::fmt::Arguments<'_>) {
    if enabled(level) {
        let name = match level {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warning",
            Level::Error | Level::Off => "error",
        };
        // One write call per line, so lines from several threads do not interleave.
        let line = format!("instgo: {name}: {msg}\n");
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

/// A diagnostic that is said once per process (or once per streak, see `reset`).
pub(crate) struct Once(AtomicBool);

impl Once {
    pub(crate) const fn new() -> Self {
        Once(AtomicBool::new(false))
    }
    pub(crate) fn log(&self, level: Level, msg: std::fmt::Arguments<'_>) {
        if !self.0.swap(true, Ordering::Relaxed) {
            log(level, msg);
        }
    }
    pub(crate) fn reset(&self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

macro_rules! warning {
    ($($t:tt)*) => { $crate::diag::log($crate::diag::Level::Warn, format_args!($($t)*)) };
}
macro_rules! debug {
    ($($t:tt)*) => { $crate::diag::log($crate::diag::Level::Debug, format_args!($($t)*)) };
}
pub(crate) use {debug, warning};
