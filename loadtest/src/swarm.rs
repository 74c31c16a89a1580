//! A swarm run: starts the server (a fresh root with the scenario's world and hunt), connects
//! the bots, starts the hunt, measures the window phase by phase, drains, and reports.
//!
//! With shards ([`run_on`] with a [`Topology`] of more than one, or one through NATS): a
//! nats-server with JetStream first, then each shard in a root of its own set up as the one
//! server is, its `Cluster` section pointing at that nats-server; the bots go round-robin over
//! the shards, and the hunt starts on every shard.

use std::{
    ops::Add,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use veltrix_tests::{LiveServer, TestServer};

use crate::{
    bot_loop::BotThreads,
    bots::{self, Shared, Tally, VaultGrid},
    clock::{CpuSplit, cpu_seconds, cpu_split, monotonic_ns, raise_open_files, rss_kib},
    nats_peer::{NatsServer, jetstream_binary},
    plan::{HUNT, Plan, clue_id},
    report::{ClueDropReport, CommitTimes, CpuPerFrame, Report, TickPhase},
    scenario::{Scenario, VaultClaim},
    shards::{self, ClaimLog, NatsFigures, Probe, ShardFigures, ShardsReport, Topology},
};

/// The mod folder in the server root.
const MOD_DIR: &str = "mods/Veltrix_TreasureHunt";
/// Bots connecting at once while the swarm fills up (a reconnect storm has no such limit).
const CONNECT_BATCH: usize = 100;
/// After the window: bots keep reading until every dig is answered, at most this long, then
/// until the server has written no frame for `QUIET` (a slow server may still be working off
/// queued moves), so that the server's count of frames written and the bots' count of frames
/// read are taken with nothing in flight.
const DRAIN_SECONDS: u64 = 20;
const QUIET: Duration = Duration::from_millis(1500);
/// A spike or storm phase: this long after it hits (the target: back to baseline within 1 s).
const AFTERMATH: f64 = 1.0;

/// Runs `scenario` (named `name` in the report) against the server laid out in `server_dir`.
pub async fn run(name: &str, scenario: Scenario, server_dir: PathBuf) -> Report {
    run_on(name, scenario, server_dir, Topology::default()).await
}

/// Runs `scenario` against `topology.shards` servers laid out in `server_dir`, sharing the hunt
/// through a nats-server of the run's own when `topology.clustered()`. Panics when that
/// nats-server cannot be had (`nats_peer::jetstream_binary` says why).
pub async fn run_on(name: &str, scenario: Scenario, server_dir: PathBuf, topology: Topology) -> Report {
    warn_if_few_open_files(scenario.bots);
    let plan = Plan::of(&scenario);
    let nats = topology.clustered().then(|| start_nats(topology.nats_nodes));
    let url = nats.as_ref().map(|(n, _)| n.urls());
    let cluster = url.as_deref().map(|url| (url, topology.replicas()));
    let roots: Vec<TestServer> =
        (0..topology.shards.max(1)).map(|_| prepared_server(&scenario, &plan, server_dir.clone(), cluster)).collect();
    let mut servers: Vec<LiveServer> = roots.iter().map(|root| started(root, url.is_some())).collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_empty = servers.iter().map(|s| rss_kib(s.pid()).unwrap_or(0)).sum();
    let tick_thread = tick_thread(&servers[0]);
    let shared = shared_state(&servers, &plan, &scenario, topology);
    let threads = BotThreads::start(BOT_THREADS, &shared);
    let connect_seconds = fill_up(&plan, &shared, &threads).await;
    let window_start = start_hunt(&mut servers, &shared, &scenario);
    let window_end = window_start + secs(scenario.seconds);
    let probe = url.map(|url| tokio::spawn(shards::probe(url, topology.replicas(), window_start, window_end)));
    let nats_pids = nats.as_ref().map(|(n, _)| n.pids());
    let window = measure(&servers, nats_pids.as_deref(), &shared, &scenario, window_start).await;
    let drained = drain(&servers, &shared, threads).await;
    let probe = match probe {
        Some(task) => match task.await {
            Ok(Ok(probe)) => Some(probe),
            Ok(Err(e)) => panic!("the NATS probe failed: {e:#}"),
            Err(e) => panic!("the NATS probe failed: {e}"),
        },
        None => None,
    };
    let tick_overruns = stop(servers);
    let nats_version = nats.map(|(server, version)| {
        drop(server);
        version
    });
    let figures = Figures { connect_seconds, rss_empty, tick_thread, window, drained, tick_overruns };
    let sharded = sharded(&shared, &scenario, (topology, nats_version), &figures, probe);
    let mut report = report(name, scenario, &shared, figures);
    report.shards = sharded;
    report
}

/// The JetStream the shards share: one nats-server of the run's own, or three in one cluster.
enum Jetstream {
    One(NatsServer),
    Three(Box<veltrix_tests::nats::NatsCluster>),
}

impl Jetstream {
    /// The shards' `Cluster.Nats`: every nats-server's URL, comma-separated.
    fn urls(&self) -> String {
        match self {
            Jetstream::One(server) => server.url(),
            Jetstream::Three(cluster) => cluster.urls(),
        }
    }

    fn pids(&self) -> Vec<u32> {
        match self {
            Jetstream::One(server) => vec![server.pid()],
            Jetstream::Three(cluster) => cluster.nodes.iter().filter_map(|n| n.pid()).collect(),
        }
    }
}

/// The JetStream the shards share (`nodes` nats-servers), and its version; a panic saying why
/// when there is none.
fn start_nats(nodes: usize) -> (Jetstream, String) {
    let binary = jetstream_binary().unwrap_or_else(|e| panic!("shards need a nats-server with JetStream: {e:#}"));
    let version = crate::nats_peer::version_of(&binary).map_or("?".into(), |(a, b)| format!("{a}.{b}"));
    let jetstream = if nodes == 1 {
        Jetstream::One(NatsServer::start_jetstream(&binary).unwrap_or_else(|e| panic!("starting nats-server: {e:#}")))
    } else {
        Jetstream::Three(Box::new(veltrix_tests::nats::NatsCluster::start_with(binary)))
    };
    eprintln!("nats-server {version} with JetStream at {}", jetstream.urls());
    (jetstream, format!("nats-server {version}"))
}

fn warn_if_few_open_files(bots: usize) {
    let open_files = raise_open_files();
    if (open_files as usize) < bots + 100 {
        eprintln!("warning: {open_files} open files allowed, {bots} bots need a socket each");
    }
}

/// A fresh server root with the scenario's server config, mod config and hunt (the only hunt);
/// with `nats` (URLs, replicas), its `Cluster` section pointing there (every shard: the same
/// bucket).
fn prepared_server(scenario: &Scenario, plan: &Plan, server_dir: PathBuf, nats: Option<(&str, usize)>) -> TestServer {
    let server = TestServer::new().with_server_dir(server_dir).with_treasure_hunt("Veltrix_TreasureHunt");
    let mut config = plan.server_config(scenario);
    if let Some((urls, replicas)) = nats {
        config["Cluster"] = json!({"Nats": urls, "Bucket": shards::BUCKET, "Replicas": replicas});
        if let Some(seconds) = scenario.records_every_seconds {
            config["Cluster"]["RecordsEverySeconds"] = seconds.into();
        }
    }
    server.write("config.json", &config.to_string());
    server.write(&format!("{MOD_DIR}/config.json"), &plan.mod_config().to_string());
    // Only the benchmark's hunt: the shipped one would be checked against a world not its own.
    let hunts = server.root().join(MOD_DIR).join("assets/Server/TreasureHunt/Hunts");
    let _ = std::fs::remove_dir_all(&hunts);
    server.write(&format!("{MOD_DIR}/assets/Server/TreasureHunt/Hunts/{HUNT}.json"), &plan.hunt(scenario).to_string());
    server
}

/// The server started, its mod running (a panic otherwise, with the log); with `clustered`, once
/// it decides claims in the bucket.
fn started(server: &TestServer, clustered: bool) -> LiveServer {
    let live = server.start(&[]);
    let log = live.log();
    if let Some(at) = log.find("DISABLED") {
        panic!("the treasure-hunt mod did not start: {}", &log[at..log.len().min(at + 3000)]);
    }
    if clustered {
        live.wait_for_log(0, &format!("claims are decided in JetStream bucket {}", shards::BUCKET));
    }
    live
}

/// How the server's tick thread is scheduled, as its log says at start.
fn tick_thread(server: &LiveServer) -> String {
    const SAID: &str = "the tick thread runs at ";
    let log = server.log();
    log.find(SAID).map_or("?".into(), |at| log[at + SAID.len()..].lines().next().unwrap_or("?").to_string())
}

/// What every bot shares, before any bot runs: no window yet, nobody online.
fn shared_state(servers: &[LiveServer], plan: &Plan, scenario: &Scenario, topology: Topology) -> Arc<Shared> {
    let timed = topology.clustered() || scenario.vaults.claim == VaultClaim::FirstFinder;
    Arc::new(Shared {
        addrs: servers.iter().map(|s| s.addr.clone()).collect(),
        topology,
        claims: timed.then(|| ClaimLog::new(topology)),
        vaults: VaultGrid::new(&plan.vaults),
        recorder: crate::report::Recorder::sharded(scenario.clue_drops.len(), topology.shards),
        scenario: scenario.clone(),
        window_start: AtomicU64::new(0),
        window_end: AtomicU64::new(0),
        storm_at: AtomicU64::new(0),
        stop_acting: AtomicBool::new(false),
        stop_reading: AtomicBool::new(false),
        dig_intents: Default::default(),
        online: AtomicU64::new(0),
        outstanding: AtomicU64::new(0),
        moves: bots::MoveLog::new(scenario.bots),
    })
}

/// Threads the bots run on, like the server's network threads: the machine has two cores.
const BOT_THREADS: usize = 2;

/// Starts every bot, `CONNECT_BATCH` at a time, and waits for them to be online: how long
/// filling up took, in seconds.
async fn fill_up(plan: &Plan, shared: &Arc<Shared>, threads: &BotThreads) -> f64 {
    let bots = shared.scenario.bots;
    let online = || shared.online.load(Ordering::Relaxed);
    let connect_started = Instant::now();
    for (i, bot) in plan.bots.iter().enumerate() {
        threads.spawn(i as u32, *bot);
        if (i + 1) % CONNECT_BATCH == 0 {
            wait_until(|| online() as usize >= i + 1 - CONNECT_BATCH / 2, 30).await;
        }
    }
    let all_in = wait_until(|| online() as usize >= bots, 60).await;
    let connect_seconds = connect_started.elapsed().as_secs_f64();
    if !all_in {
        eprintln!("only {} of {bots} bots connected", online());
    }
    eprintln!("{} bots in after {connect_seconds:.1} s; starting the hunt", online());
    connect_seconds
}

/// Starts the hunt (on every shard, one after the other) and sets the measured window (and the
/// storm's time) that the bots read; the window's start, in monotonic nanoseconds.
fn start_hunt(servers: &mut [LiveServer], shared: &Shared, scenario: &Scenario) -> u64 {
    for live in servers.iter_mut() {
        let answer = tokio::task::block_in_place(|| live.console(&format!("hunt start {HUNT}")));
        if !answer.contains("started") {
            eprintln!("hunt start answered: {answer}");
        }
    }
    let run_started = monotonic_ns();
    let window_start = run_started + secs(scenario.warmup_seconds);
    let window_end = window_start + secs(scenario.seconds);
    shared.window_end.store(window_end, Ordering::Relaxed);
    shared.window_start.store(window_start, Ordering::Relaxed);
    if let Some(storm) = &scenario.reconnect_storm {
        shared.storm_at.store(window_start + secs(storm.at_seconds), Ordering::Relaxed);
    }
    window_start
}

/// The measured window's phases, split at each clue drop and at the storm: (start in seconds
/// into the window, label), in order; a phase ends where the next starts.
fn phases(scenario: &Scenario) -> Vec<(f64, String)> {
    let mut events: Vec<(f64, String)> = scenario
        .clue_drops
        .iter()
        .enumerate()
        .map(|(i, d)| (d.at_seconds, format!("{} (1 s)", clue_id(i))))
        .chain(scenario.reconnect_storm.iter().map(|s| (s.at_seconds, "reconnect storm (1 s)".to_string())))
        .collect();
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut boundaries: Vec<(f64, String)> = vec![(0.0, "steady".into())];
    for (at, label) in events {
        boundaries.push((at, label.clone()));
        boundaries
            .push(((at + AFTERMATH).min(scenario.seconds), format!("after {}", label.trim_end_matches(" (1 s)"))));
    }
    boundaries
}

/// What the measured window showed, taken as it ends. With shards: the servers' sums (CPU,
/// memory, frames, commits), ticks per shard.
struct Window {
    ticks: Vec<TickPhase>,
    server_cpu_cores: f64,
    swarm_cpu_cores: f64,
    rss: u64,
    online_at_end: u64,
    /// Frames the server wrote in the window, per bot online and second.
    frames_per_bot_per_second: f64,
    cpu_per_frame: CpuPerFrame,
    commits: CommitTimes,
    /// Each server's CPU over the window and memory at its end.
    per_server: Vec<(CpuSplit, u64)>,
    /// The same of the shards' nats-servers (their sums).
    nats: Option<(CpuSplit, u64)>,
}

/// Waits out the measured window from `window_start`, reading the servers' figures phase by
/// phase.
async fn measure(
    servers: &[LiveServer],
    nats: Option<&[u32]>,
    shared: &Shared,
    scenario: &Scenario,
    window_start: u64,
) -> Window {
    let pids: Vec<u32> = servers.iter().map(LiveServer::pid).collect();
    let total_cpu = |pids: &[u32]| pids.iter().map(|&p| cpu_seconds(p).unwrap_or(0.0)).sum::<f64>();
    let boundaries = phases(scenario);
    sleep_until(window_start).await;
    let mut phase_cpu: Vec<f64> = pids.iter().map(|&p| cpu_seconds(p).unwrap_or(0.0)).collect();
    let (swarm_cpu_start, server_cpu_start) = (cpu_seconds(std::process::id()).unwrap_or(0.0), total_cpu(&pids));
    let swarm_split_start = cpu_split(std::process::id()).unwrap_or_default();
    let server_splits_start: Vec<CpuSplit> = pids.iter().map(|&p| cpu_split(p).unwrap_or_default()).collect();
    let nats_split =
        |pids: &[u32]| pids.iter().map(|&p| cpu_split(p).unwrap_or_default()).fold(CpuSplit::default(), Add::add);
    let nats_split_start = nats.map(nats_split);
    let frames_at_start = metric(servers, "veltrix_frames_out_total");
    let commits_at_start = commit_buckets(servers);
    for live in servers {
        bench_phase(live);
    }
    let mut ticks = Vec::new();
    for (k, (at, label)) in boundaries.iter().enumerate() {
        let until = boundaries.get(k + 1).map_or(scenario.seconds, |b| b.0);
        if until <= *at {
            continue;
        }
        sleep_until(window_start + secs(until)).await;
        for (i, live) in servers.iter().enumerate() {
            let figures = bench_phase(live);
            let cpu = cpu_seconds(pids[i]).unwrap_or(phase_cpu[i]);
            let label = if servers.len() > 1 { format!("shard {}: {label}", i + 1) } else { label.clone() };
            ticks.push(tick_phase(&label, until - at, &figures, (cpu - phase_cpu[i]) / (until - at)));
            phase_cpu[i] = cpu;
        }
    }
    let per_server: Vec<(CpuSplit, u64)> = pids
        .iter()
        .zip(&server_splits_start)
        .map(|(&p, &start)| (cpu_split(p).unwrap_or_default() - start, rss_kib(p).unwrap_or(0)))
        .collect();
    let nats = nats
        .zip(nats_split_start)
        .map(|(pids, start)| (nats_split(pids) - start, pids.iter().map(|&p| rss_kib(p).unwrap_or(0)).sum()));
    let server_split = per_server.iter().map(|(c, _)| *c).fold(CpuSplit::default(), Add::add);
    let swarm_split = cpu_split(std::process::id()).unwrap_or_default() - swarm_split_start;
    let server_cpu_cores = (total_cpu(&pids) - server_cpu_start) / scenario.seconds;
    let swarm_cpu_cores = (cpu_seconds(std::process::id()).unwrap_or(0.0) - swarm_cpu_start) / scenario.seconds;
    let rss = per_server.iter().map(|s| s.1).sum();
    let online_at_end = shared.online.load(Ordering::Relaxed);
    let frames = metric(servers, "veltrix_frames_out_total").saturating_sub(frames_at_start);
    let frames_per_bot_per_second = frames as f64 / online_at_end.max(1) as f64 / scenario.seconds;
    let cpu_per_frame = CpuPerFrame::of(server_split, swarm_split, frames);
    let commits = CommitTimes::between(&commits_at_start, &commit_buckets(servers));
    Window {
        ticks,
        server_cpu_cores,
        swarm_cpu_cores,
        rss,
        online_at_end,
        frames_per_bot_per_second,
        cpu_per_frame,
        commits,
        per_server,
        nats,
    }
}

/// After the window: the servers' counts of frames and bytes written and the bots' tallies,
/// taken with nothing in flight.
struct Drained {
    frames_sent: u64,
    bytes_sent: u64,
    tally: Tally,
    connected: usize,
}

/// No new actions; what is in flight arrives; then the bots stop reading and report.
async fn drain(servers: &[LiveServer], shared: &Shared, threads: BotThreads) -> Drained {
    shared.stop_acting.store(true, Ordering::Relaxed);
    wait_until(|| shared.outstanding.load(Ordering::Relaxed) == 0, DRAIN_SECONDS).await;
    let mut frames_sent = metric(servers, "veltrix_frames_out_total");
    let quiet_by = Instant::now() + Duration::from_secs(DRAIN_SECONDS);
    loop {
        tokio::time::sleep(QUIET).await;
        let now = metric(servers, "veltrix_frames_out_total");
        if now == frames_sent || Instant::now() > quiet_by {
            break;
        }
        frames_sent = now;
    }
    let bytes_sent = metric(servers, "veltrix_bytes_out_total");
    shared.stop_reading.store(true, Ordering::Relaxed);
    let mut tally = Tally::default();
    let mut connected = 0;
    for t in tokio::task::block_in_place(|| threads.finish()) {
        connected += usize::from(t.connected);
        tally.add(&t);
    }
    Drained { frames_sent, bytes_sent, tally, connected }
}

/// Stops the servers, after echoing the first warnings and errors of each log; their ticks
/// that overran.
fn stop(servers: Vec<LiveServer>) -> u64 {
    let mut overruns = 0;
    let shards = servers.len();
    for (i, live) in servers.into_iter().enumerate() {
        let log = live.log();
        overruns += log.lines().filter(|l| l.contains("overran")).count() as u64;
        let who = if shards > 1 { format!("shard {}", i + 1) } else { "server".into() };
        for line in log.lines().filter(|l| l.contains("WARN") || l.contains("ERROR")).take(10) {
            eprintln!("{who}: {line}");
        }
        let _ = tokio::task::block_in_place(|| live.stop());
    }
    overruns
}

/// What a run with shards adds to the report (None for one server alone with no claims timed).
fn sharded(
    shared: &Shared,
    scenario: &Scenario,
    (topology, nats_version): (Topology, Option<String>),
    figures: &Figures,
    probe: Option<Probe>,
) -> Option<ShardsReport> {
    let claims = shared.claims.as_ref()?;
    let (from, until) = (shared.window_start.load(Ordering::Relaxed), shared.window_end.load(Ordering::Relaxed));
    let seconds = scenario.seconds;
    // One server: its latencies are the pooled ones.
    let latencies = match shared.recorder.per_shard() {
        per if per.is_empty() => vec![(shared.recorder.dig(), shared.recorder.fanout())],
        per => per,
    };
    let per_shard = figures
        .window
        .per_server
        .iter()
        .zip(latencies)
        .enumerate()
        .map(|(shard, ((cpu, rss), (dig, fanout)))| ShardFigures {
            shard,
            bots: (0..scenario.bots as u32).filter(|&b| topology.shard_of(b) == shard).count(),
            dig_round_trip: dig,
            fanout,
            cpu_user_cores: cpu.user / seconds,
            cpu_kernel_cores: cpu.system / seconds,
            rss_kib: *rss,
        })
        .collect();
    let nats = figures.window.nats.map(|(cpu, rss_kib)| {
        let probe = probe.unwrap_or(Probe { create: Default::default(), watch: Default::default() });
        NatsFigures {
            version: nats_version.unwrap_or_default(),
            nodes: topology.nats_nodes,
            cpu_user_cores: cpu.user / seconds,
            cpu_kernel_cores: cpu.system / seconds,
            rss_kib,
            probe_create: probe.create,
            probe_watch: probe.watch,
        }
    });
    Some(ShardsReport {
        shards: topology.shards,
        cluster: topology.clustered(),
        per_shard,
        claims: claims.figures(from, until),
        nats,
    })
}

/// Everything the report needs besides the scenario and what the bots recorded.
struct Figures {
    connect_seconds: f64,
    rss_empty: u64,
    tick_thread: String,
    window: Window,
    drained: Drained,
    tick_overruns: u64,
}

fn report(name: &str, scenario: Scenario, shared: &Shared, figures: Figures) -> Report {
    let Figures { connect_seconds, rss_empty, tick_thread, window, drained, tick_overruns } = figures;
    let Window {
        ticks,
        server_cpu_cores,
        swarm_cpu_cores,
        rss,
        online_at_end,
        frames_per_bot_per_second,
        cpu_per_frame,
        commits,
        ..
    } = window;
    let Drained { frames_sent, bytes_sent, tally, connected } = drained;
    let clue_drops: Vec<ClueDropReport> = shared
        .recorder
        .clues()
        .into_iter()
        .enumerate()
        .map(|(i, (latency, delivered))| ClueDropReport {
            clue: clue_id(i),
            expected: online_at_end,
            delivered,
            completion_ms: latency.max_ms,
            latency,
        })
        .collect();
    let missing_clues: u64 = clue_drops.iter().map(|c| c.expected.saturating_sub(c.delivered)).sum();
    let unanswered = tally.digs_sent - tally.digs_answered.min(tally.digs_sent);
    let players = online_at_end.max(1) as f64;
    Report {
        scenario: name.to_string(),
        executor: scenario.executor_here(),
        tick_thread,
        bots: scenario.bots,
        connected,
        connect_seconds,
        connect_failures: u64::from(tally.connect_failures),
        tick_rate: scenario.tick_rate,
        measured_seconds: scenario.seconds,
        ticks,
        fanout: shared.recorder.fanout(),
        dig_round_trip: shared.recorder.dig(),
        dig_seen_nearby: shared.recorder.nearby(),
        move_seen: shared.recorder.moves(),
        state_update_rate: scenario.state_update_rate,
        clue_drops,
        reconnect: scenario.reconnect_storm.map(|_| shared.recorder.reconnect()),
        digs_sent: tally.digs_sent,
        digs_answered: tally.digs_answered,
        window_digs: tally.window_digs,
        window_digs_answered: tally.window_answered,
        moves_sent: tally.moves,
        position_corrections: tally.corrections,
        frames_sent,
        bytes_sent,
        frames_received: tally.frames,
        frames_per_bot_per_second,
        floor: None,
        messages_received: tally.messages,
        server_rss_empty_kib: rss_empty,
        server_rss_kib: rss,
        rss_per_player_bytes: (rss.saturating_sub(rss_empty) * 1024) as f64 / players,
        server_cpu_cores,
        swarm_cpu_cores,
        cpu_per_frame: Some(cpu_per_frame),
        commits: Some(commits),
        tick_overruns,
        peer: None,
        shards: None,
        lost: missing_clues + unanswered,
    }
}

fn secs(s: f64) -> u64 {
    (s * 1e9) as u64
}

async fn sleep_until(at: u64) {
    tokio::time::sleep(Duration::from_nanos(at.saturating_sub(monotonic_ns()))).await;
}

/// Polls `done` every 50 ms for up to `seconds`; whether it came true.
async fn wait_until(done: impl Fn() -> bool, seconds: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

/// The server's `/bench` figures since the last reset, which starts the next phase; `Null` from
/// a server that is not the benchmark build.
fn bench_phase(live: &LiveServer) -> Value {
    let (status, body) = tokio::task::block_in_place(|| live.admin_get("/bench?reset=1"));
    if !status.contains("200") {
        return Value::Null;
    }
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

fn tick_phase(phase: &str, seconds: f64, figures: &Value, server_cpu_cores: f64) -> TickPhase {
    let ms = |key: &str| figures["ticks"]["duration_us"][key].as_f64().unwrap_or(0.0) / 1000.0;
    let count = |v: &Value| v.as_u64().unwrap_or(0);
    TickPhase {
        phase: phase.to_string(),
        seconds,
        ticks: count(&figures["ticks"]["count"]),
        p50_ms: ms("p50"),
        p99_ms: ms("p99"),
        max_ms: ms("max"),
        ticks_allocating: count(&figures["allocations"]["ticks_with_any"]),
        allocations: count(&figures["allocations"]["total"]),
        server_cpu_cores,
    }
}

/// The servers' commit-duration histogram from `/metrics`, summed over them: (upper bound in
/// seconds, commits at most that long), by bound.
fn commit_buckets(servers: &[LiveServer]) -> Vec<(f64, u64)> {
    let mut sum: Vec<(f64, u64)> = Vec::new();
    for live in servers {
        let (_, body) = tokio::task::block_in_place(|| live.admin_get("/metrics"));
        let buckets = body
            .lines()
            .filter_map(|l| l.strip_prefix("veltrix_commit_duration_seconds_bucket{le=\""))
            .filter_map(|rest| {
                let (le, count) = rest.split_once("\"}")?;
                Some((le.parse().unwrap_or(f64::INFINITY), count.trim().parse::<f64>().ok()? as u64))
            });
        for (le, count) in buckets {
            match sum.iter_mut().find(|b| b.0 == le) {
                Some(b) => b.1 += count,
                None => sum.push((le, count)),
            }
        }
    }
    sum
}

/// A counter from the servers' `/metrics`, summed over them.
fn metric(servers: &[LiveServer], name: &str) -> u64 {
    servers
        .iter()
        .map(|live| {
            let (_, body) = tokio::task::block_in_place(|| live.admin_get("/metrics"));
            body.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse::<f64>().ok()))
                .map_or(0, |v| v as u64)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A few bots play the reconnect storm's scenario against the benchmark build (debug): all
    /// connect, move, dig and are answered, lose nothing, and all come back after the storm
    /// drops their connections.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_swarm_plays_and_reconnects_after_the_storm() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/reconnect-storm.json");
        let mut scenario = Scenario::load(&path).unwrap();
        scenario.bots = 40;
        (scenario.warmup_seconds, scenario.seconds) = (1.0, 3.0);
        scenario.digs.per_minute = 120.0;
        scenario.reconnect_storm = Some(crate::scenario::ReconnectStorm { at_seconds: 1.0 });
        let server_dir = veltrix_tests::server_with_features(xtask::BENCH_FEATURES);
        let report = run("storm", scenario, server_dir).await;
        assert_eq!((report.connected, report.bots), (40, 40));
        assert!(report.moves_sent >= 40 && report.window_digs > 0, "{report:?}");
        assert_eq!(report.digs_answered, report.digs_sent, "{report:?}");
        assert_eq!(report.reconnect.as_ref().map(|r| r.count), Some(40), "{report:?}");
        assert!(report.fanout.count > 0 && report.frames_received > 0 && report.lost == 0, "{report:?}");
        // Frames written to a connection the storm dropped are never read: at most the rest.
        assert!(report.frames_received <= report.frames_sent, "{report:?}");
    }
}
