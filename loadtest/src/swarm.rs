//! A swarm run: starts the server (a fresh root with the scenario's world and hunt), connects
//! the bots, starts the hunt, measures the window phase by phase, drains, and reports.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::Value;
use tokio::task::JoinHandle;
use veltrix_tests::{LiveServer, TestServer};

use crate::{
    bots::{self, Shared, Tally, VaultGrid},
    clock::{cpu_seconds, cpu_split, monotonic_ns, raise_open_files, rss_kib},
    plan::{HUNT, Plan, clue_id},
    report::{ClueDropReport, CommitTimes, CpuPerFrame, Report, TickPhase},
    scenario::Scenario,
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
    warn_if_few_open_files(scenario.bots);
    let plan = Plan::of(&scenario);
    let server = prepared_server(&scenario, &plan, server_dir);
    let mut live = started(&server);
    let pid = live.pid();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_empty = rss_kib(pid).unwrap_or(0);
    let shared = shared_state(&live, &plan, &scenario);
    let (handles, connect_seconds) = fill_up(&plan, &shared).await;
    let window_start = start_hunt(&mut live, &shared, &scenario);
    let window = measure(&live, &shared, &scenario, window_start).await;
    let drained = drain(&live, &shared, handles).await;
    let tick_overruns = stop(live);
    report(name, scenario, &shared, Figures { connect_seconds, rss_empty, window, drained, tick_overruns })
}

fn warn_if_few_open_files(bots: usize) {
    let open_files = raise_open_files();
    if (open_files as usize) < bots + 100 {
        eprintln!("warning: {open_files} open files allowed, {bots} bots need a socket each");
    }
}

/// A fresh server root with the scenario's server config, mod config and hunt (the only hunt).
fn prepared_server(scenario: &Scenario, plan: &Plan, server_dir: PathBuf) -> TestServer {
    let server = TestServer::new().with_server_dir(server_dir).with_treasure_hunt("Veltrix_TreasureHunt");
    server.write("config.json", &plan.server_config(scenario).to_string());
    server.write(&format!("{MOD_DIR}/config.json"), &plan.mod_config().to_string());
    // Only the benchmark's hunt: the shipped one would be checked against a world not its own.
    let hunts = server.root().join(MOD_DIR).join("assets/Server/TreasureHunt/Hunts");
    let _ = std::fs::remove_dir_all(&hunts);
    server.write(&format!("{MOD_DIR}/assets/Server/TreasureHunt/Hunts/{HUNT}.json"), &plan.hunt(scenario).to_string());
    server
}

/// The server started, its mod running (a panic otherwise, with the log).
fn started(server: &TestServer) -> LiveServer {
    let live = server.start(&[]);
    let log = live.log();
    if let Some(at) = log.find("DISABLED") {
        panic!("the treasure-hunt mod did not start: {}", &log[at..log.len().min(at + 3000)]);
    }
    live
}

/// What every bot shares, before any bot runs: no window yet, nobody online.
fn shared_state(live: &LiveServer, plan: &Plan, scenario: &Scenario) -> Arc<Shared> {
    Arc::new(Shared {
        addr: live.addr.clone(),
        vaults: VaultGrid::new(&plan.vaults),
        recorder: crate::report::Recorder::new(scenario.clue_drops.len()),
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

/// Starts every bot, `CONNECT_BATCH` at a time, and waits for them to be online: the bots'
/// tasks and how long filling up took, in seconds.
async fn fill_up(plan: &Plan, shared: &Arc<Shared>) -> (Vec<JoinHandle<Tally>>, f64) {
    let bots = shared.scenario.bots;
    let online = || shared.online.load(Ordering::Relaxed);
    let connect_started = Instant::now();
    let mut handles = Vec::with_capacity(bots);
    for (i, bot) in plan.bots.iter().enumerate() {
        handles.push(tokio::spawn(bots::run(i as u32, *bot, shared.clone())));
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
    (handles, connect_seconds)
}

/// Starts the hunt and sets the measured window (and the storm's time) that the bots read;
/// the window's start, in monotonic nanoseconds.
fn start_hunt(live: &mut LiveServer, shared: &Shared, scenario: &Scenario) -> u64 {
    let answer = tokio::task::block_in_place(|| live.console(&format!("hunt start {HUNT}")));
    let run_started = monotonic_ns();
    if !answer.contains("started") {
        eprintln!("hunt start answered: {answer}");
    }
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

/// What the measured window showed, taken as it ends.
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
}

/// Waits out the measured window from `window_start`, reading the server's figures phase by
/// phase.
async fn measure(live: &LiveServer, shared: &Shared, scenario: &Scenario, window_start: u64) -> Window {
    let pid = live.pid();
    let boundaries = phases(scenario);
    sleep_until(window_start).await;
    let mut phase_cpu = cpu_seconds(pid).unwrap_or(0.0);
    let (swarm_cpu_start, server_cpu_start) = (cpu_seconds(std::process::id()).unwrap_or(0.0), phase_cpu);
    let (swarm_split_start, server_split_start) =
        (cpu_split(std::process::id()).unwrap_or_default(), cpu_split(pid).unwrap_or_default());
    let frames_at_start = metric(live, "veltrix_frames_out_total");
    let commits_at_start = commit_buckets(live);
    bench_phase(live);
    let mut ticks = Vec::new();
    for (k, (at, label)) in boundaries.iter().enumerate() {
        let until = boundaries.get(k + 1).map_or(scenario.seconds, |b| b.0);
        if until <= *at {
            continue;
        }
        sleep_until(window_start + secs(until)).await;
        let figures = bench_phase(live);
        let cpu = cpu_seconds(pid).unwrap_or(phase_cpu);
        ticks.push(tick_phase(label, until - at, &figures, (cpu - phase_cpu) / (until - at)));
        phase_cpu = cpu;
    }
    let (server_split, swarm_split) = (
        cpu_split(pid).unwrap_or_default() - server_split_start,
        cpu_split(std::process::id()).unwrap_or_default() - swarm_split_start,
    );
    let server_cpu_cores = (cpu_seconds(pid).unwrap_or(0.0) - server_cpu_start) / scenario.seconds;
    let swarm_cpu_cores = (cpu_seconds(std::process::id()).unwrap_or(0.0) - swarm_cpu_start) / scenario.seconds;
    let rss = rss_kib(pid).unwrap_or(0);
    let online_at_end = shared.online.load(Ordering::Relaxed);
    let frames = metric(live, "veltrix_frames_out_total").saturating_sub(frames_at_start);
    let frames_per_bot_per_second = frames as f64 / online_at_end.max(1) as f64 / scenario.seconds;
    let cpu_per_frame = CpuPerFrame::of(server_split, swarm_split, frames);
    let commits = CommitTimes::between(&commits_at_start, &commit_buckets(live));
    Window {
        ticks,
        server_cpu_cores,
        swarm_cpu_cores,
        rss,
        online_at_end,
        frames_per_bot_per_second,
        cpu_per_frame,
        commits,
    }
}

/// After the window: the server's counts of frames and bytes written and the bots' tallies,
/// taken with nothing in flight.
struct Drained {
    frames_sent: u64,
    bytes_sent: u64,
    tally: Tally,
    connected: usize,
}

/// No new actions; what is in flight arrives; then the bots stop reading and report.
async fn drain(live: &LiveServer, shared: &Shared, handles: Vec<JoinHandle<Tally>>) -> Drained {
    shared.stop_acting.store(true, Ordering::Relaxed);
    wait_until(|| shared.outstanding.load(Ordering::Relaxed) == 0, DRAIN_SECONDS).await;
    let mut frames_sent = metric(live, "veltrix_frames_out_total");
    let quiet_by = Instant::now() + Duration::from_secs(DRAIN_SECONDS);
    loop {
        tokio::time::sleep(QUIET).await;
        let now = metric(live, "veltrix_frames_out_total");
        if now == frames_sent || Instant::now() > quiet_by {
            break;
        }
        frames_sent = now;
    }
    let bytes_sent = metric(live, "veltrix_bytes_out_total");
    shared.stop_reading.store(true, Ordering::Relaxed);
    let mut tally = Tally::default();
    let mut connected = 0;
    for handle in handles {
        let t = handle.await.unwrap_or_default();
        connected += usize::from(t.connected);
        tally.add(&t);
    }
    Drained { frames_sent, bytes_sent, tally, connected }
}

/// Stops the server, after echoing the first warnings and errors of its log; its ticks that
/// overran.
fn stop(live: LiveServer) -> u64 {
    let log = live.log();
    let overruns = log.lines().filter(|l| l.contains("overran")).count() as u64;
    for line in log.lines().filter(|l| l.contains("WARN") || l.contains("ERROR")).take(10) {
        eprintln!("server: {line}");
    }
    let _ = tokio::task::block_in_place(|| live.stop());
    overruns
}

/// Everything the report needs besides the scenario and what the bots recorded.
struct Figures {
    connect_seconds: f64,
    rss_empty: u64,
    window: Window,
    drained: Drained,
    tick_overruns: u64,
}

fn report(name: &str, scenario: Scenario, shared: &Shared, figures: Figures) -> Report {
    let Figures { connect_seconds, rss_empty, window, drained, tick_overruns } = figures;
    let Window {
        ticks,
        server_cpu_cores,
        swarm_cpu_cores,
        rss,
        online_at_end,
        frames_per_bot_per_second,
        cpu_per_frame,
        commits,
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
        executor: scenario.executor.clone().unwrap_or_else(|| "MultiThreaded".into()),
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

/// The server's commit-duration histogram from `/metrics`: (upper bound in seconds, commits
/// at most that long), by bound.
fn commit_buckets(live: &LiveServer) -> Vec<(f64, u64)> {
    let (_, body) = tokio::task::block_in_place(|| live.admin_get("/metrics"));
    body.lines()
        .filter_map(|l| l.strip_prefix("veltrix_commit_duration_seconds_bucket{le=\""))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"}")?;
            Some((le.parse().unwrap_or(f64::INFINITY), count.trim().parse::<f64>().ok()? as u64))
        })
        .collect()
}

/// A counter from the server's `/metrics`.
fn metric(live: &LiveServer, name: &str) -> u64 {
    let (_, body) = tokio::task::block_in_place(|| live.admin_get("/metrics"));
    body.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse::<f64>().ok())).map_or(0, |v| v as u64)
}
