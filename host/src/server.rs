//! The server: loads mods, builds the world and its schedules, runs the tick loop, shuts down.

use std::{
    fs,
    path::PathBuf,
    sync::{Arc, atomic::AtomicBool},
};

use veltrix_sdk::{
    ClientMessages, CommandRegistry, Outbox, PostTick, PreTick, TileWorld,
    bevy_ecs::{
        schedule::{IntoScheduleConfigs, Schedules},
        world::World,
    },
    protocol::ModInfo,
    runtime::{self, Stage},
};

use crate::{
    admin,
    auth::TokenKey,
    commands::{self, StopFlag, TokenIssuer},
    config::{Auth, ServerConfig},
    interest::{self, InterestGrid},
    metrics::Metrics,
    mods::{self, ActiveMods, LoaderSettings, ModFailure},
    net::{AuthMode, Network},
    ready::ReadyFile,
    sessions::{
        ModCatalog, NetLink, SessionRules, Sessions,
        bans::Bans,
        delivery::{deliver_outbox, flush_frames},
        intake,
    },
    tick::{self, TickPacing, TickStats},
};

/// The version mods' `ServerVersion` ranges are checked against.
pub const HOST_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The folders of a server root.
#[derive(Debug, Clone)]
pub struct ServerRoot {
    pub root: PathBuf,
}

impl ServerRoot {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    pub fn config_file(&self) -> PathBuf {
        self.root.join("config.json")
    }
    pub fn mods_dir(&self) -> PathBuf {
        self.root.join("mods")
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
    pub fn universe_dir(&self) -> PathBuf {
        self.root.join("universe")
    }

    /// Creates the root's folders when missing.
    pub fn create_dirs(&self) -> std::io::Result<()> {
        for dir in [self.mods_dir(), self.logs_dir(), self.universe_dir()] {
            fs::create_dir_all(dir)?;
        }
        Ok(())
    }
}

/// How a run is set up beyond the config file.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// More folders to load mods from, after the root's `mods/`.
    pub extra_mod_dirs: Vec<PathBuf>,
    /// Stop after this many ticks.
    pub max_ticks: Option<u64>,
    /// Read commands from standard input.
    pub console: bool,
    /// Where to say that the server serves, and on which addresses (`--ready-file`).
    pub ready_file: Option<PathBuf>,
}

/// Why the server stopped before running.
#[derive(Debug)]
pub enum ServerError {
    /// `FailOnModError` is set and these mods failed.
    ModsFailed(Vec<ModFailure>),
    /// The server could not start: the message says what to fix.
    Startup(String),
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerError::ModsFailed(failures) => {
                write!(f, "{} mod(s) failed to load and FailOnModError is set; stopping", failures.len())
            }
            ServerError::Startup(message) => f.write_str(message),
        }
    }
}

/// What a run did.
#[derive(Debug)]
pub struct RunSummary {
    pub active_mods: Vec<String>,
    pub failures: Vec<ModFailure>,
    pub ticks: TickStats,
}

/// Finds, checks and opens the mods of `mods/` and of each `--mods DIR`; creates their data
/// folders when `create_data_dirs`.
fn load_mods(
    root: &ServerRoot,
    config: &ServerConfig,
    options: &RunOptions,
    create_data_dirs: bool,
) -> mods::LoadReport {
    let host_version = semver::Version::parse(HOST_VERSION).expect("the crate version is semver");
    let mut dirs = vec![root.mods_dir()];
    dirs.extend(options.extra_mod_dirs.iter().cloned());
    let data_root = root.mods_dir();
    mods::load_all(&LoaderSettings {
        dirs: &dirs,
        data_root: &data_root,
        create_data_dirs,
        config,
        host_version: &host_version,
    })
}

/// Loads the mods, runs ticks until `stop` is set (or `max_ticks`), then shuts the mods down.
pub fn run(
    root: &ServerRoot,
    config: &ServerConfig,
    options: &RunOptions,
    stop: Arc<AtomicBool>,
) -> Result<RunSummary, ServerError> {
    let ready_file = options.ready_file.as_deref().map(ReadyFile::claim).transpose().map_err(ServerError::Startup)?;
    // This thread runs the ticks; the threads it starts from here on are normal again.
    let priority = crate::tick::prioritize(config.tick_priority).map_err(ServerError::Startup)?;
    tracing::info!("the tick thread runs at {priority}");
    let report = load_mods(root, config, options, true);
    let mut failures = report.failures;

    runtime::init_task_pools();
    let metrics = Arc::new(Metrics::new());
    let key = Arc::new(TokenKey::load_or_create(&root.root.join("auth.secret")).map_err(ServerError::Startup)?);
    let auth = match config.auth {
        Auth::Offline => AuthMode::Offline,
        Auth::Token => AuthMode::Token(Arc::clone(&key)),
    };
    let bans = Bans::load(root.root.join("bans.json")).map_err(ServerError::Startup)?;
    let permissions =
        crate::permissions::Permissions::load(&root.root.join("permissions.json")).map_err(ServerError::Startup)?;
    let (network, events) = Network::start(config, auth, Arc::clone(&metrics)).map_err(ServerError::Startup)?;
    #[cfg(feature = "bench")]
    let bench = crate::bench::BenchShared::new(match config.executor.here() {
        crate::config::Executor::SingleThreaded => "SingleThreaded",
        crate::config::Executor::MultiThreaded | crate::config::Executor::Auto => "MultiThreaded",
    });
    let admin_addr = start_admin(
        config,
        &network,
        &metrics,
        #[cfg(feature = "bench")]
        &bench,
    )?;

    let tiles = crate::world::build(&config.world, &root.universe_dir()).map_err(ServerError::Startup)?;
    let mut world = new_world(config, tiles);
    let store = open_store(root, &config.store, &metrics)?;
    world.resource_mut::<Sessions>().load(&store).map_err(|e| ServerError::Startup(e.to_string()))?;
    world.insert_resource(store);
    world.insert_resource(
        crate::commit::StoreThread::start()
            .map_err(|e| ServerError::Startup(format!("cannot start the store thread: {e}")))?,
    );
    let writer_threads = match config.network.writer_threads {
        0 => std::thread::available_parallelism().map_or(2, |p| p.get()),
        n => n as usize,
    };
    world.insert_resource(
        crate::net::writers::Writers::start(writer_threads, Arc::clone(&metrics))
            .map_err(|e| ServerError::Startup(format!("cannot start the writer threads: {e}")))?,
    );
    world.insert_resource(NetLink {
        events,
        current_tick: Arc::clone(&network.current_tick),
        metrics: Arc::clone(&metrics),
    });
    world.insert_resource(bans);
    world.insert_resource(runtime::requests::CommandPermissions::new(permissions));
    world.insert_resource(StopFlag(Arc::clone(&stop)));
    world.insert_resource(TokenIssuer { key, ttl_seconds: config.token_ttl_seconds });
    if options.console {
        world.insert_resource(commands::start_console());
    }
    if !config.cluster.nats.is_empty() {
        crate::cluster::start(&mut world, &config.cluster, config.tick_rate, network.runtime().handle())
            .map_err(ServerError::Startup)?;
    }
    let active = start_mods(&mut world, config, report.loaded, &mut failures)?;

    let mut announce =
        ReadyAnnouncement { file: ready_file.as_ref(), addresses: (network.local_addr, admin_addr), error: None };
    let stats = run_ticks(
        &mut world,
        config,
        options,
        &stop,
        &metrics,
        &mut announce,
        #[cfg(feature = "bench")]
        bench,
    );
    shut_down(&mut world, network);
    let active_mods = active.ids();
    active.shutdown(&mut world);
    if let Some(e) = announce.error {
        return Err(ServerError::Startup(e));
    }
    Ok(RunSummary { active_mods, failures, ticks: stats })
}

/// Starts `/metrics` and `/health` (and `/bench` in the benchmark build) on the admin address,
/// when there is one; its bound address.
fn start_admin(
    config: &ServerConfig,
    network: &Network,
    metrics: &Arc<Metrics>,
    #[cfg(feature = "bench")] bench: &Arc<crate::bench::BenchShared>,
) -> Result<Option<std::net::SocketAddr>, ServerError> {
    if config.admin.address.is_empty() {
        return Ok(None);
    }
    let bound = admin::start(
        network.runtime(),
        &config.admin.address,
        Arc::clone(metrics),
        Arc::clone(&network.current_tick),
        #[cfg(feature = "bench")]
        Arc::clone(bench),
    )
    .map_err(ServerError::Startup)?;
    Ok(Some(bound))
}

/// Opens the universe's store, behind the random commit faults of
/// [`FAULTS_VAR`](crate::store::FAULTS_VAR) when that is set.
fn open_store(
    root: &ServerRoot,
    config: &crate::config::StoreConfig,
    metrics: &Metrics,
) -> Result<veltrix_sdk::Store, ServerError> {
    let path = root.universe_dir().join(crate::store::FILE);
    let store = crate::store::RedbStore::open_with_cache(&path, config.cache_bytes()).map_err(ServerError::Startup)?;
    store.report_behind(metrics.store_log_behind_bytes.clone());
    Ok(match std::env::var(crate::store::FAULTS_VAR) {
        Ok(spec) => {
            tracing::warn!(
                "{}={spec}: commits fail at random (a test of the store's faults)",
                crate::store::FAULTS_VAR
            );
            veltrix_sdk::Store(Arc::new(crate::store::FaultyStore::new(store, &spec).map_err(ServerError::Startup)?))
        }
        Err(_) => veltrix_sdk::Store(Arc::new(store)),
    })
}

/// Sets up and starts the loaded mods, logs every mod that failed, and stops there when
/// `FailOnModError` is set and one did.
fn start_mods(
    world: &mut World,
    config: &ServerConfig,
    loaded: Vec<mods::ModInstance>,
    failures: &mut Vec<ModFailure>,
) -> Result<ActiveMods, ServerError> {
    let active = ActiveMods::setup_and_start(world, loaded, failures);
    world.insert_resource(mod_catalog(world, &active));
    for failure in failures.iter() {
        tracing::error!("{failure}");
    }
    if config.fail_on_mod_error && !failures.is_empty() {
        active.shutdown(world);
        return Err(ServerError::ModsFailed(std::mem::take(failures)));
    }
    let chosen = match config.executor {
        crate::config::Executor::Auto => ", chosen for this machine's cores",
        _ => "",
    };
    tracing::info!(
        "server {:?} running {} mod(s) at {} ticks per second ({:?} executor{chosen})",
        config.server_name,
        active.ids().len(),
        config.tick_rate,
        config.executor.here()
    );
    Ok(active)
}

/// The ready file, written once the first tick has run, with the addresses it names; why it
/// could not be written.
struct ReadyAnnouncement<'a> {
    file: Option<&'a ReadyFile>,
    /// The player and admin addresses.
    addresses: (std::net::SocketAddr, Option<std::net::SocketAddr>),
    error: Option<String>,
}

/// Runs ticks until `stop` is set (or `max_ticks`): each tick's duration into the metrics (and
/// `/bench`), the ready file after the first.
fn run_ticks(
    world: &mut World,
    config: &ServerConfig,
    options: &RunOptions,
    stop: &AtomicBool,
    metrics: &Metrics,
    announce: &mut ReadyAnnouncement<'_>,
    #[cfg(feature = "bench")] bench: Arc<crate::bench::BenchShared>,
) -> TickStats {
    let pacing = TickPacing::new(config.tick_rate, config.max_catch_up_ticks);
    #[cfg(feature = "bench")]
    let mut recorder = crate::bench::TickRecorder::new(bench);
    let stats = tick::run(
        pacing,
        stop,
        options.max_ticks,
        |n| runtime::run_tick(world, n),
        |sample| {
            if sample.tick == 1
                && let Some(ready) = announce.file
                && let Err(e) = ready.write(announce.addresses.0, announce.addresses.1)
            {
                // Whoever waits for the file would wait forever: stop instead.
                announce.error = Some(e);
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            metrics.tick_duration_seconds.observe(sample.duration.as_secs_f64());
            #[cfg(feature = "bench")]
            recorder.record(sample);
        },
    );
    tracing::info!(
        "stopped after {} ticks ({} skipped); tick duration {}",
        stats.ticks,
        stats.skipped,
        stats.summary()
    );
    stats
}

/// After the last tick: every client told and closed, a last try at saving what is unsaved,
/// the connections' last frames written, the network stopped.
fn shut_down(world: &mut World, network: Network) {
    intake::close_all(world);
    // What the last ticks left unsaved (a commit that kept failing) gets a last try.
    if let veltrix_sdk::CommitOutcome::Failed(e) = veltrix_sdk::commit_tick(world) {
        tracing::error!(
            "the last {} change(s) could not be saved (none of them was announced to players): {e}",
            world.resource::<veltrix_sdk::Changes>().len()
        );
    }
    // Let the connections write their last frame before the runtime goes.
    std::thread::sleep(std::time::Duration::from_millis(200));
    network.shutdown(std::time::Duration::from_millis(500));
}

/// What `validate` found: per mod, its summary or its errors.
pub struct ValidationReport {
    pub failures: Vec<ModFailure>,
    /// Mod id, then the summary or the errors.
    pub checked: Vec<(String, Result<String, Vec<String>>)>,
}

impl ValidationReport {
    pub fn error_count(&self) -> usize {
        self.failures.len() + self.checked.iter().map(|(_, r)| r.as_ref().map_or_else(Vec::len, |_| 0)).sum::<usize>()
    }
}

/// Loads the mods (without running them) and has each check an asset pack against the world
/// this config builds: `dir` when given, else the mod's own `assets/`. Writes nothing.
pub fn validate(
    root: &ServerRoot,
    config: &ServerConfig,
    options: &RunOptions,
    dir: Option<&std::path::Path>,
) -> Result<ValidationReport, ServerError> {
    let report = load_mods(root, config, options, false);
    let tiles = crate::world::build(&config.world, &root.universe_dir()).map_err(ServerError::Startup)?;
    let world = new_world(config, tiles);
    let mut checked = Vec::new();
    for mut m in report.loaded {
        let pack = dir.map_or_else(|| m.dir.join("assets"), std::path::Path::to_path_buf);
        let result = crate::panics::catch(|| m.instance.validate_assets(&pack, &world))
            .unwrap_or_else(|panic| Err(vec![format!("validation panicked: {panic}")]));
        checked.push((m.manifest.id.to_string(), result));
    }
    Ok(ValidationReport { failures: report.failures, checked })
}

/// What a designer's command gave: the mods that failed to load, then the answer of the first
/// mod that has the command (its id and what it said), if any did.
pub struct DesignerReport {
    pub failures: Vec<ModFailure>,
    pub answer: Option<(String, Result<String, veltrix_sdk::DesignerError>)>,
}

/// Loads the mods (without running them) as [`validate`] does and asks each in load order to
/// answer `command` from an asset pack (`dir` when given, else its own `assets/`) until one
/// does. Writes nothing of its own (the command may write the file it is asked for).
pub fn designer_command(
    root: &ServerRoot,
    config: &ServerConfig,
    options: &RunOptions,
    dir: Option<&std::path::Path>,
    command: &veltrix_sdk::DesignerCommand,
) -> Result<DesignerReport, ServerError> {
    let report = load_mods(root, config, options, false);
    let tiles = crate::world::build(&config.world, &root.universe_dir()).map_err(ServerError::Startup)?;
    let world = new_world(config, tiles);
    for mut m in report.loaded {
        let pack = dir.map_or_else(|| m.dir.join("assets"), std::path::Path::to_path_buf);
        let answer =
            crate::panics::catch(|| m.instance.designer_command(&pack, &world, command)).unwrap_or_else(|panic| {
                Some(Err(veltrix_sdk::DesignerError::Failed(format!("{} panicked: {panic}", command.name()))))
            });
        if let Some(answer) = answer {
            return Ok(DesignerReport { failures: report.failures, answer: Some((m.manifest.id.to_string(), answer)) });
        }
    }
    Ok(DesignerReport { failures: report.failures, answer: None })
}

/// A world with the tick pipeline (on the configured executor), the tiles and the host's
/// resources, and the host's systems in the pipeline's stages: the network and the console as
/// input; the departures; the commit on the store thread; delivery and the flush to sockets.
pub fn new_world(config: &ServerConfig, tiles: TileWorld) -> World {
    let mut world = runtime::new_world(config.executor.into(), config.tick_rate, tiles);
    let w = &config.world;
    world.insert_resource(veltrix_sdk::Spawn { x: w.spawn_x, y: w.spawn_y });
    world.insert_resource(SessionRules {
        server_name: config.server_name.clone(),
        max_players: config.max_players,
        spawn: veltrix_sdk::Position { x: w.spawn_x, y: w.spawn_y },
        spawn_radius: w.spawn_radius,
        max_speed: w.max_speed,
    });
    let size = (world.resource::<TileWorld>().width(), world.resource::<TileWorld>().depth());
    world.insert_resource(InterestGrid::new(w.interest_radius, w.interest_hysteresis, size));
    world.init_resource::<interest::DueUpdates>();
    let updates = interest::StateUpdates::new(w.state_update_rate, config.tick_rate);
    world.insert_resource(updates);
    let chunks = crate::terrain::TerrainChunks::new(
        world.resource::<TileWorld>(),
        w.max_speed,
        w.interest_radius,
        updates.rate(),
    );
    world.insert_resource(chunks);
    world.init_resource::<Sessions>();
    world.init_resource::<crate::sessions::movement::PendingMoves>();
    world.init_resource::<crate::mail::Mail>();
    world.init_resource::<crate::sessions::frames::TickFrames>();
    world.init_resource::<crate::sessions::delivery::Welcoming>();
    world.init_resource::<crate::answers::Answers>();
    #[cfg(feature = "bench")]
    world.init_resource::<crate::stamp::CommitStamp>();
    commands::register_host_commands(&mut world.resource_mut::<CommandRegistry>());
    let mut schedules = world.resource_mut::<Schedules>();
    schedules.add_systems(PreTick, (intake::receive_network, commands::run_console).chain().in_set(Stage::Input));
    // The tick's departures, after their last input was applied.
    schedules.add_systems(PostTick, intake::remove_departed.in_set(Stage::Departures));
    // Saved before announced: the commit (with the tick's answers, for repeated requests) runs
    // on the store thread while the grid is updated (`Audience::Near` must find players where
    // they are this tick), and its outcome is in before any message is delivered.
    schedules.add_systems(
        PostTick,
        (
            crate::answers::record_answers,
            crate::commit::start_commit,
            interest::update_interest,
            crate::terrain::send_terrain,
            crate::commit::finish_commit,
        )
            .chain()
            .in_set(Stage::Commit),
    );
    schedules.add_systems(PostTick, deliver_outbox.in_set(Stage::Deliver));
    // Shards only (`Cluster.Nats`): the ledger's asks go out after the tick, its answers and the
    // other shards' players come in before the next; this shard's players go out at its end.
    use crate::cluster::{handoff, ledger, relay};
    use veltrix_sdk::bevy_ecs::schedule::common_conditions::resource_exists;
    let shard = resource_exists::<ledger::LedgerLink>;
    schedules.add_systems(
        PreTick,
        (
            handoff::notice_stall,
            ledger::receive_answers,
            relay::receive_moves,
            handoff::receive_handoffs,
            handoff::admit_ready,
        )
            .chain()
            .run_if(shard)
            .before(intake::receive_network)
            .in_set(Stage::Input),
    );
    schedules.add_systems(PostTick, ledger::send_asks.run_if(shard).in_set(Stage::Departures));
    // Before the commit takes the tick's writes: whose records they change.
    schedules.add_systems(
        PostTick,
        handoff::note_changed_players
            .run_if(shard)
            .in_set(Stage::Commit)
            .after(crate::answers::record_answers)
            .before(crate::commit::start_commit),
    );
    // After the commit saved what the departed players leave, and what the others changed.
    schedules.add_systems(
        PostTick,
        (handoff::put_departed, handoff::put_changed).chain().run_if(shard).in_set(Stage::Deliver),
    );
    schedules.add_systems(PostTick, relay::publish_moves.run_if(shard).in_set(Stage::Flush));
    schedules.add_systems(PostTick, flush_frames.in_set(Stage::Flush));
    world
}

/// What Welcome says of the mods: ids, versions and message kinds.
fn mod_catalog(world: &World, active: &ActiveMods) -> ModCatalog {
    let client = world.resource::<ClientMessages>();
    let server = world.resource::<Outbox>();
    ModCatalog(
        active
            .versions()
            .into_iter()
            .map(|(id, version)| ModInfo {
                client_messages: client.kinds(&id),
                server_messages: server.kinds(&id),
                id,
                version,
            })
            .collect(),
    )
}
