//! The bot swarm: plays scenario files against a fresh server and reports what it measured.
//!
//! `cargo run --release -p veltrix-loadtest --bin veltrix-bots -- loadtest/scenarios/steady.json --bots 1000,4000,12000`
//!
//! For each scenario and bot count: a fresh release server with the benchmark build's figures
//! (`target/bench-server-instrumented/`, built first), the bots connected 100 at a time, the
//! scenario's hunt started, a warm-up, the measured window phase by phase, a drain. The table
//! goes to stdout, the report as JSON to `--out` (default `target/bench-results/`).

use std::path::PathBuf;

use clap::Parser;
use std::time::Duration;

use veltrix_loadtest::{
    floor,
    nats_peer::{self, PeerSpec},
    plan::Plan,
    report::{FloorSummary, Latency, PeerSummary, Report},
    scenario::Scenario,
    swarm,
};

#[derive(Parser)]
#[command(
    about = "Plays bot scenarios against a fresh Veltrix server and reports latencies, tick times, CPU and memory"
)]
struct Args {
    /// Scenario files (loadtest/scenarios/*.json).
    #[arg(required = true)]
    scenarios: Vec<PathBuf>,
    /// Bot counts to run each scenario with, comma-separated (default: the scenario's own).
    #[arg(long, value_delimiter = ',')]
    bots: Vec<usize>,
    /// Seconds measured, instead of the scenario's.
    #[arg(long)]
    seconds: Option<f64>,
    /// Seconds of warm-up, instead of the scenario's.
    #[arg(long)]
    warmup: Option<f64>,
    /// The server's executor, instead of the scenario's: MultiThreaded or SingleThreaded.
    #[arg(long)]
    executor: Option<String>,
    /// The server folder to run (default: the benchmark build, built now).
    #[arg(long)]
    server_dir: Option<PathBuf>,
    /// Also run the same fan-out through nats-server (Debian's `nats-server`) after each run:
    /// the bots' homes, their interest cells as subjects, our moves per second as events, our
    /// mean frame size as the payload.
    #[arg(long)]
    peer: bool,
    /// Where the JSON reports go.
    #[arg(long, default_value = "target/bench-results")]
    out: PathBuf,
}

fn main() {
    let args = Args::parse();
    let mut runs = Vec::new();
    for path in &args.scenarios {
        let scenario = Scenario::load(path).unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(2)
        });
        let name = path.file_stem().map_or("scenario".into(), |s| s.to_string_lossy().into_owned());
        let counts = if args.bots.is_empty() { vec![scenario.bots] } else { args.bots.clone() };
        for bots in counts {
            let mut s = scenario.clone();
            s.bots = bots;
            s.seconds = args.seconds.unwrap_or(s.seconds);
            s.warmup_seconds = args.warmup.unwrap_or(s.warmup_seconds);
            s.executor = args.executor.clone().or(s.executor);
            if let Err(e) = s.check() {
                eprintln!("error: {}: with the options given: {e}", path.display());
                std::process::exit(2);
            }
            runs.push((name.clone(), s));
        }
    }
    let server_dir = args.server_dir.clone().unwrap_or_else(veltrix_loadtest::bench_server);
    std::fs::create_dir_all(&args.out).unwrap_or_else(|e| panic!("{}: {e}", args.out.display()));
    // Two threads, like the server's network runtime: the machine has two cores.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // The machine's floor, measured in the same command: the report sets each run against it.
    // As many connections as the largest run has bots (a write costs more among more sockets),
    // within what this process may open (both ends of each are here).
    let largest = runs.iter().map(|(_, s)| s.bots).max().unwrap_or(1000);
    let connections = largest.min((veltrix_loadtest::clock::raise_open_files() as usize).saturating_sub(16) / 2);
    let rounds = (100_000 / connections.max(1)).clamp(10, 100);
    let floor =
        floor::measure(connections, rounds, 200).unwrap_or_else(|e| panic!("measuring the loopback floor: {e}"));
    for (name, scenario) in runs {
        let (bots, scenario_executor) = (scenario.bots, scenario.executor.clone());
        let mut report = runtime.block_on(swarm::run(&name, scenario.clone(), server_dir.clone()));
        report.floor = Some(FloorSummary::of(&floor, &report));
        if args.peer {
            report.peer = Some(runtime.block_on(peer(&scenario, &report)));
        }
        println!("\n{}", report.table());
        let executor = scenario_executor.unwrap_or_else(|| "MultiThreaded".into());
        let path = args.out.join(format!("{name}-{bots}-{executor}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
        println!("report: {}", path.display());
    }
}

/// The same fan-out work through nats-server: every bot at its home, subscribed to its 3x3
/// interest cells; as many events a second as the bots sent moves; each the size of our mean
/// frame.
async fn peer(scenario: &Scenario, ours: &Report) -> PeerSummary {
    let plan = Plan::of(scenario);
    let interest = veltrix_host::config::WorldConfig::default();
    let events_per_second = scenario.bots as f64 * scenario.moves.per_second;
    let payload_bytes = (ours.bytes_sent / ours.frames_sent.max(1)).max(nats_peer::HEADER_BYTES as u64) as usize;
    let spec = PeerSpec {
        positions: plan.bots.iter().map(|b| b.home).collect(),
        // The server's interest cells: `World.InterestRadius` plus `World.InterestHysteresis`
        // (the swarm's servers keep the defaults).
        cell_size: interest.interest_radius + interest.interest_hysteresis,
        events_per_second,
        payload_bytes,
        ticks_per_second: scenario.tick_rate,
        warmup: Duration::from_secs_f64(scenario.warmup_seconds),
        duration: Duration::from_secs_f64(scenario.seconds),
        seed: scenario.seed,
    };
    let report = nats_peer::run(&spec).await.unwrap_or_else(|e| panic!("the NATS peer failed: {e:#}"));
    let ms = |us: u64| us as f64 / 1000.0;
    let fanout = Latency {
        count: report.delivered,
        p50_ms: ms(report.p50_us),
        p99_ms: ms(report.p99_us),
        p999_ms: ms(report.p999_us),
        max_ms: ms(report.max_us),
    };
    let server_cpu_cores = report.server_cpu_s / report.measured.as_secs_f64().max(1e-9);
    PeerSummary {
        events_per_second,
        payload_bytes,
        fanout,
        delivered: report.delivered,
        expected: report.expected,
        late_or_lost: report.lost,
        server_cpu_cores,
        p99_ratio: ours.fanout.p99_ms / fanout.p99_ms.max(1e-9),
        cpu_ratio: ours.server_cpu_cores / server_cpu_cores.max(1e-9),
    }
}
