//! Log set-up for the binary: the library emits `tracing` events (with fields); the command
//! line installs one subscriber that writes them to stderr, as human text (default) or one
//! JSON object per line (`--log-format json`, for journald or ELK).
//!
//! Invariants: logs go to stderr only, never stdout (stdout carries the commands' JSON
//! output); the filter is `FOOTAGE_LOG` (`RUST_LOG` syntax: `info`, `footage=debug`, ...),
//! default `info`; a malformed `FOOTAGE_LOG` falls back to `info` and says so in the log; in
//! the JSON format every line is one object (`timestamp`, `level`, `target`, `fields`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The variable holding the log filter.
pub const FILTER_VAR: &str = "FOOTAGE_LOG";

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum LogFormat {
    /// Human text, one line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the subscriber for this process (once; later calls do nothing).
pub fn install(format: LogFormat) {
    let (filter, bad) = match std::env::var(FILTER_VAR) {
        Ok(v) if !v.trim().is_empty() => match EnvFilter::try_new(&v) {
            Ok(f) => (f, None),
            Err(e) => (EnvFilter::new("info"), Some(format!("{v:?}: {e}"))),
        },
        _ => (EnvFilter::new("info"), None),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().with_current_span(false).try_init(),
    };
    if installed.is_ok() {
        if let Some(why) = bad {
            tracing::warn!(variable = FILTER_VAR, error = %why, "bad log filter: logging at info");
        }
    }
}
