//! Structured logs: to standard error for the operator, and to `logs/server.log` (rotated
//! daily) for the record. The file is written by a background thread; the returned guard
//! flushes it when dropped at exit.

use std::{io::IsTerminal, path::Path};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::{EnvFilter, fmt, layer::SubscriberExt, util::SubscriberInitExt};

/// Starts logging at `filter` (`info`, `debug`, `veltrix_host=debug,info`...), to standard
/// error and, when `logs_dir` is given, to a daily file there. `RUST_LOG` wins when it is set
/// to a filter that parses (an empty one counts as unset: it would show nothing).
pub fn init(logs_dir: Option<&Path>, filter: &str) -> Result<Option<WorkerGuard>, String> {
    let from_env = std::env::var("RUST_LOG").ok().filter(|f| !f.trim().is_empty()).and_then(|f| parse_filter(&f).ok());
    let filter = match from_env {
        Some(from_env) => from_env,
        None => parse_filter(filter).map_err(|e| format!("--log {filter:?}: {e}"))?,
    };
    let (file_layer, guard) = match logs_dir {
        Some(logs_dir) => {
            let file = tracing_appender::rolling::Builder::new()
                .rotation(tracing_appender::rolling::Rotation::DAILY)
                .filename_prefix("server")
                .filename_suffix("log")
                .build(logs_dir)
                .map_err(|e| format!("{}: cannot open the log file: {e}", logs_dir.display()))?;
            let (file, guard) = tracing_appender::non_blocking(file);
            (Some(fmt::layer().with_target(false).with_ansi(false).with_writer(file)), Some(guard))
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt::layer().with_target(false).with_ansi(std::io::stderr().is_terminal()).with_writer(std::io::stderr))
        .with(file_layer)
        .try_init()
        .map_err(|e| format!("cannot start logging: {e}"))?;
    Ok(guard)
}

/// The log filter `text` stands for, or what is wrong with it.
pub fn parse_filter(text: &str) -> Result<EnvFilter, String> {
    EnvFilter::try_new(text)
        .map_err(|e| format!("expected a level such as info or debug, or per-module directives ({e})"))
}
