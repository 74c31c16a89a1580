//! Structured logs: to standard error for the operator, and to `logs/server.log` (rotated
//! daily) for the record. A server's logs are written by background threads, so a log line
//! never costs the tick thread a system call (or a wait on a slow terminal or pipe: a storm
//! of 12,000 reconnections logs 24,000 lines); the returned guards flush them when dropped at
//! exit. A line still queued when the process is killed is lost.

use std::{io::IsTerminal, path::Path};

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::{EnvFilter, fmt, layer::SubscriberExt, util::SubscriberInitExt};

/// Starts logging at `filter` (`info`, `debug`, `veltrix_host=debug,info`...), to standard
/// error and, when `logs_dir` is given (a server), to a daily file there, both written by
/// background threads until the guards are dropped; without it (the one-shot commands) to
/// standard error directly. `RUST_LOG` wins when set.
pub fn init(logs_dir: Option<&Path>, filter: &str) -> Result<Vec<WorkerGuard>, String> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(filter))
        .map_err(|e| format!("--log {filter:?}: expected a level such as info or debug ({e})"))?;
    let ansi = std::io::stderr().is_terminal();
    let registry = tracing_subscriber::registry().with(filter);
    let Some(logs_dir) = logs_dir else {
        return registry
            .with(fmt::layer().with_target(false).with_ansi(ansi).with_writer(std::io::stderr))
            .try_init()
            .map(|()| Vec::new())
            .map_err(|e| format!("cannot start logging: {e}"));
    };
    let file = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("server")
        .filename_suffix("log")
        .build(logs_dir)
        .map_err(|e| format!("{}: cannot open the log file: {e}", logs_dir.display()))?;
    let (file, file_guard) = tracing_appender::non_blocking(file);
    // Not lossy: a full queue (128,000 lines) makes the logging thread wait rather than drop.
    let (stderr, stderr_guard) = NonBlockingBuilder::default().lossy(false).finish(std::io::stderr());
    registry
        .with(fmt::layer().with_target(false).with_ansi(ansi).with_writer(stderr))
        .with(fmt::layer().with_target(false).with_ansi(false).with_writer(file))
        .try_init()
        .map_err(|e| format!("cannot start logging: {e}"))?;
    Ok(vec![stderr_guard, file_guard])
}
