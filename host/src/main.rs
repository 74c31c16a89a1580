//! `veltrix-server`: see `veltrix-server --help`.

use std::{
    path::Path,
    process::ExitCode,
    sync::{Arc, atomic::AtomicBool},
};

use clap::Parser;
use signal_hook::consts::{SIGINT, SIGTERM};
use veltrix_host::{
    cli::{Cli, Command},
    config::ServerConfig,
    logging, panics,
    server::{self, RunOptions, ServerRoot},
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = ServerRoot::new(&cli.root);
    if let Err(e) = root.create_dirs() {
        eprintln!("error: {}: cannot create the server folders: {e}", root.root.display());
        return ExitCode::FAILURE;
    }
    let _log_guard = match logging::init(&root.logs_dir(), &cli.log) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    panics::install_hook();

    let config =
        match ServerConfig::load_or_create(&root.config_file()).map_err(|e| e.to_string()).and_then(|c| cli.apply(c)) {
            Ok(config) => config,
            Err(e) => {
                tracing::error!("invalid config: {e}");
                return ExitCode::FAILURE;
            }
        };

    let options = RunOptions { extra_mod_dirs: cli.mods.clone(), max_ticks: cli.ticks, console: true };
    if let Some(Command::Validate { dir }) = &cli.command {
        return validate(&root, &config, &options, dir.as_deref());
    }

    // First SIGINT/SIGTERM: finish the tick and shut down cleanly. Second: exit at once.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        let registered = signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&stop)));
        if let Err(e) = registered {
            tracing::error!("cannot handle signal {signal}: {e}");
            return ExitCode::FAILURE;
        }
    }

    match server::run(&root, &config, &options, stop) {
        Ok(_) => {
            tracing::info!("server stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `veltrix-server validate [DIR]`: every error on standard output, one per line; exit 1 when
/// there is any.
fn validate(root: &ServerRoot, config: &ServerConfig, options: &RunOptions, dir: Option<&Path>) -> ExitCode {
    let report = match server::validate(root, config, options, dir) {
        Ok(report) => report,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    for failure in &report.failures {
        println!("{failure}");
    }
    for (id, result) in &report.checked {
        match result {
            Ok(summary) => println!("{id}: ok: {summary}"),
            Err(errors) => {
                for error in errors {
                    println!("{error}");
                }
                println!("{id}: {} error(s)", errors.len());
            }
        }
    }
    if report.checked.is_empty() && report.failures.is_empty() {
        println!("no mods to validate in {}", root.mods_dir().display());
    }
    if report.error_count() == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
