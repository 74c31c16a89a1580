//! `veltrix-server`: see `veltrix-server --help`.

use std::{
    io::{BufReader, IsTerminal},
    path::Path,
    process::ExitCode,
    sync::{Arc, atomic::AtomicBool},
};

use clap::Parser;
use signal_hook::consts::{SIGINT, SIGTERM};
use veltrix_host::{
    cli::{self, Cli, Command},
    config::ServerConfig,
    logging, panics,
    server::{self, RunOptions, ServerRoot},
    store::{self, RedbStore},
};
use veltrix_sdk::{DesignerCommand, DesignerError, Simulation};

/// Turns off glibc's sliding mmap threshold, before any thread starts. Freeing a block it had
/// mapped raises the threshold to that block's size (up to 32 MiB), and the heap's trim
/// threshold to twice it: once the server had freed a few large blocks, the memory freed after
/// each later one stayed in the heap. Fixed at glibc's own default (128 KiB), a server at
/// 12,000 players holds about 470 bytes a player less, for the same CPU (docs/benchmarks.md,
/// "The allocator's mmap threshold fixed"). An operator's `MALLOC_MMAP_THRESHOLD_` is left as
/// it is (docs/configuration.md).
fn fix_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: sets one of the allocator's parameters; no other thread runs yet.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) };
    }
}

/// The exit code of a bad argument, as clap's.
const USAGE: u8 = 2;

fn main() -> ExitCode {
    fix_mmap_threshold();
    let cli = Cli::parse();
    let root = ServerRoot::new(cli.root_or_current());
    // Backups need only the store: no mods, and no config (a broken one does not stop them).
    match &cli.command {
        Some(Command::Export { file }) => return export(&root, file),
        Some(Command::Import { file, replace }) => return import(&root, file, *replace),
        Some(Command::Check) => return check(&root),
        Some(Command::Validate { dir }) => return validate(&cli, dir.as_deref()),
        Some(Command::Odds { words, luck, pity, json }) => {
            let (pack, table) = cli::pack_and_name(words);
            let command = DesignerCommand::Odds { table, luck: *luck, pity: *pity, json: *json };
            return designer(&cli, pack.as_deref(), &command);
        }
        Some(Command::Preview { pack, hunt, out, distance }) => {
            let command = DesignerCommand::Preview { hunt: hunt.clone(), out: out.clone(), distance: distance.clone() };
            return designer(&cli, pack.as_deref(), &command);
        }
        Some(Command::Simulate { pack, hunt, players, duration, seed, behaviour, teams, play_on, json, chart }) => {
            // The world's rules come from the config, in `designer`.
            let command = DesignerCommand::Simulate(Simulation {
                hunt: hunt.clone(),
                players: *players,
                duration: *duration,
                seed: *seed,
                behaviour: (*behaviour).into(),
                teams: *teams,
                play_on: *play_on,
                json: *json,
                chart: chart.clone(),
                tick_rate: 0,
                max_speed: 0.0,
                spawn_radius: 0.0,
                progress: std::io::stderr().is_terminal(),
            });
            return designer(&cli, pack.as_deref(), &command);
        }
        None => {}
    }
    if let Err(e) = root.create_dirs() {
        eprintln!("error: {}: cannot create the server folders: {e}", root.root.display());
        return ExitCode::FAILURE;
    }
    let _log_guard = match logging::init(Some(&root.logs_dir()), &cli.log) {
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

    let options = RunOptions {
        extra_mod_dirs: cli.mods.clone(),
        max_ticks: cli.ticks,
        console: true,
        ready_file: cli.ready_file.clone(),
    };

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

/// What `validate` and the designers' commands start from: logging to standard error, the
/// root they check and its config with the command line's overrides. Writes nothing.
fn offline_setup(cli: &Cli, what: &str) -> Result<(ServerRoot, ServerConfig, RunOptions), ExitCode> {
    if let Err(e) = logging::init(None, &cli.log) {
        eprintln!("error: {e}");
        return Err(ExitCode::FAILURE);
    }
    panics::install_hook();
    let root = validate_root(cli);
    tracing::info!("{what} the mods in {}", root.mods_dir().display());
    let config = match ServerConfig::load(&root.config_file())
        .map_err(|e| e.to_string())
        .and_then(|c| cli.apply(c.unwrap_or_default()))
    {
        Ok(config) => config,
        Err(e) => {
            tracing::error!("invalid config: {e}");
            return Err(ExitCode::FAILURE);
        }
    };
    let options = RunOptions { extra_mod_dirs: cli.mods.clone(), max_ticks: None, console: false, ready_file: None };
    Ok((root, config, options))
}

/// The line that says no mod was found under the root.
fn no_mods(root: &ServerRoot, what: &str) {
    println!(
        "error: no mods to {what} in {}: run {what} in a server root or from the server's own \
         folder, or name the root with --root DIR",
        root.mods_dir().display()
    );
}

/// `veltrix-server validate [DIR]`: every error on standard output, one per line; exit 1 when
/// there is any, or when no mod was checked. Writes nothing: no config, logs, data folders.
fn validate(cli: &Cli, dir: Option<&Path>) -> ExitCode {
    let (root, config, options) = match offline_setup(cli, "validating") {
        Ok(setup) => setup,
        Err(code) => return code,
    };
    let report = match server::validate(&root, &config, &options, dir) {
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
            Err(errors) => print_pack_errors(id, errors),
        }
    }
    if report.checked.is_empty() && report.failures.is_empty() {
        no_mods(&root, "validate");
    }
    if report.error_count() == 0 && !report.checked.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// A pack's errors as `validate` prints them: one a line, then how many.
fn print_pack_errors(id: &str, errors: &[String]) {
    for error in errors {
        println!("{error}");
    }
    println!("{id}: {} error(s)", errors.len());
}

/// A designer's command (`odds`, `preview`, `simulate`): the answer of the first mod that has the command, on
/// standard output. A broken pack is printed as `validate` prints it, with exit 1; a bad
/// argument exits 2. Writes nothing but the file the command is asked to write.
fn designer(cli: &Cli, dir: Option<&Path>, command: &DesignerCommand) -> ExitCode {
    let (root, config, options) = match offline_setup(cli, "loading") {
        Ok(setup) => setup,
        Err(code) => return code,
    };
    // A simulation plays by the server's rules: its tick rate and its world's.
    let mut command = command.clone();
    if let DesignerCommand::Simulate(sim) = &mut command {
        sim.tick_rate = config.tick_rate;
        sim.max_speed = config.world.max_speed;
        sim.spawn_radius = config.world.spawn_radius;
    }
    let command = &command;
    let report = match server::designer_command(&root, &config, &options, dir, command) {
        Ok(report) => report,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    // On standard error: standard output holds the answer alone (JSON for tools).
    for failure in &report.failures {
        eprintln!("{failure}");
    }
    match report.answer {
        Some((_, Ok(text))) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Some((id, Err(DesignerError::Pack(errors)))) => {
            print_pack_errors(&id, &errors);
            ExitCode::FAILURE
        }
        Some((_, Err(DesignerError::Usage(message)))) => {
            eprintln!("error: {message}");
            ExitCode::from(USAGE)
        }
        Some((id, Err(DesignerError::Failed(message)))) => {
            eprintln!("error: {id}: {message}");
            ExitCode::FAILURE
        }
        None if report.failures.is_empty() => {
            no_mods(&root, command.name());
            ExitCode::FAILURE
        }
        None => ExitCode::FAILURE,
    }
}

/// The root `validate` and the designers' commands work in: `--root`; else the current folder
/// when it holds `mods/`; else the folder of this program, where a shipped server keeps its
/// `mods/`, so a designer can run them from the pack's folder or a CI job.
fn validate_root(cli: &Cli) -> ServerRoot {
    if let Some(root) = &cli.root {
        return ServerRoot::new(root);
    }
    let current = ServerRoot::new(".");
    if current.mods_dir().is_dir() {
        return current;
    }
    match std::env::current_exe().map(|exe| exe.parent().map(Path::to_path_buf)) {
        Ok(Some(dir)) => ServerRoot::new(dir),
        _ => current,
    }
}

/// `-` for standard input or output.
fn is_stdio(file: &Path) -> bool {
    file.as_os_str() == "-"
}

/// The root's store file, which must exist (the server has run here).
fn existing_store(root: &ServerRoot) -> Result<std::path::PathBuf, ExitCode> {
    let path = root.universe_dir().join(store::FILE);
    if path.is_file() {
        return Ok(path);
    }
    eprintln!("error: {}: no store here (has the server run in this root?)", path.display());
    Err(ExitCode::FAILURE)
}

/// `veltrix-server check`: each problem on standard output, then the verdict; exit 1 when
/// there is any problem.
fn check(root: &ServerRoot) -> ExitCode {
    let path = match existing_store(root) {
        Ok(path) => path,
        Err(code) => return code,
    };
    let report = match store::check(&path) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for problem in &report.problems {
        println!("{}: {problem}", path.display());
    }
    if report.problems.is_empty() {
        println!("{}: ok: {} checked", path.display(), report.summary);
        return ExitCode::SUCCESS;
    }
    println!(
        "{}: {} problem(s) in {}: keep the file as it is; `veltrix-server export FILE` copies the records byte for byte, \
         those that do not decode too, unless a table cannot be read at all. See \"When something goes wrong\" in docs/storage.md",
        path.display(),
        report.problems.len(),
        report.summary
    );
    ExitCode::FAILURE
}

/// `veltrix-server export FILE`: the summary on standard output, or on standard error when the
/// export itself goes to standard output.
fn export(root: &ServerRoot, file: &Path) -> ExitCode {
    let path = match existing_store(root) {
        Ok(path) => path,
        Err(code) => return code,
    };
    let result = RedbStore::open(&path).and_then(|store| {
        if is_stdio(file) {
            store::export(&store, std::io::BufWriter::new(std::io::stdout().lock()))
        } else {
            store::export_to_file(&store, file)
        }
    });
    match result {
        Ok(summary) if is_stdio(file) => {
            eprintln!("exported {summary} to standard output");
            ExitCode::SUCCESS
        }
        Ok(summary) => {
            println!("exported {summary} to {}", file.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `veltrix-server import [--replace] FILE`: all or nothing; exit 1 with the reason otherwise.
fn import(root: &ServerRoot, file: &Path, replace: bool) -> ExitCode {
    let name = if is_stdio(file) { "standard input".to_string() } else { file.display().to_string() };
    let input: Box<dyn std::io::BufRead> = if is_stdio(file) {
        Box::new(std::io::stdin().lock())
    } else {
        match std::fs::File::open(file) {
            Ok(f) => Box::new(BufReader::new(f)),
            Err(e) => {
                eprintln!("error: {name}: cannot open: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    if let Err(e) = std::fs::create_dir_all(root.universe_dir()) {
        eprintln!("error: {}: cannot create: {e}", root.universe_dir().display());
        return ExitCode::FAILURE;
    }
    let path = root.universe_dir().join(store::FILE);
    let store = match RedbStore::open(&path) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match store::import(&store, input, replace) {
        Ok(done) => {
            if done.replaced == store::Summary::default() {
                println!("imported {} from {name}", done.imported);
            } else {
                println!("imported {} from {name} (replacing {})", done.imported, done.replaced);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {name}: {e}");
            ExitCode::FAILURE
        }
    }
}
