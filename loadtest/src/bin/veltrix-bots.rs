//! The bot swarm: plays scenario files against a fresh server and reports what it measured.
//!
//! `cargo run --release -p veltrix-loadtest --bin veltrix-bots -- loadtest/scenarios/steady.json --bots 1000,4000,12000`
//!
//! For each scenario and bot count: a fresh release server with the benchmark build's figures
//! (`target/bench-server-instrumented/`, built first), the bots connected 100 at a time, the
//! scenario's hunt started, a warm-up, the measured window phase by phase, a drain. The table
//! goes to stdout, the report as JSON to `--out` (default `target/bench-results/`).
//!
//! `--shards N` runs N servers sharing the hunt through a nats-server with JetStream started for
//! the run (`--cluster` does so with one server too), the bots round-robin over them; the report
//! adds each shard's figures, the first claims timed across shards and nats-server's figures
//! (docs/benchmarks.md, "Shards"; `loadtest/scenarios/shards.json` claims vaults all along).
//!
//! `--capacity` searches instead: the largest bot count (between the smallest and the largest
//! of `--bots`, to the nearest `--step`) whose run holds the service level, by bisection.

use std::path::PathBuf;

use clap::Parser;
use std::time::Duration;

use veltrix_loadtest::{
    floor,
    nats_peer::{self, PeerSpec},
    plan::Plan,
    report::{FloorSummary, Latency, PeerSummary, Report},
    scenario::Scenario,
    shards::Topology,
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
    /// The server's executor, instead of the scenario's: MultiThreaded, SingleThreaded or Auto (the
    /// server's default, chosen by its cores).
    #[arg(long)]
    executor: Option<String>,
    /// The server's TickPriority, instead of the scenario's: Auto, RealTime or Normal (the
    /// server's default, Auto: real time where the system allows it).
    #[arg(long)]
    tick_priority: Option<String>,
    /// The server folder to run (default: the benchmark build, built now).
    #[arg(long)]
    server_dir: Option<PathBuf>,
    /// Also run the same fan-out through nats-server (Debian's `nats-server`) after each run:
    /// the bots' homes, their interest cells as subjects, our moves per second as events, our
    /// mean frame size as the payload.
    #[arg(long)]
    peer: bool,
    /// The server's `World.StateUpdateRate` values to run each scenario with, comma-separated
    /// (default: the scenario's, else the server's default).
    #[arg(long, value_delimiter = ',')]
    state_update_rates: Vec<u32>,
    /// The server's `Network.WriterThreads`, instead of its default.
    #[arg(long)]
    writer_threads: Option<u32>,
    /// The server's `Network.Threads`, instead of its default.
    #[arg(long)]
    network_threads: Option<u32>,
    /// The server's `Store.CacheMiB`, instead of its default.
    #[arg(long)]
    store_cache_mib: Option<u32>,
    /// Servers ("shards") sharing the hunt through a nats-server with JetStream (started for
    /// each run, fsync on every write); bot i plays on shard i mod N. 1: one server, as ever.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    shards: u32,
    /// With `--shards 1`: the one server decides claims in NATS as a shard does (the baseline
    /// of the shards' runs). More than one shard always does.
    #[arg(long)]
    cluster: bool,
    /// The shards' nats-servers: 1, or 3 in one JetStream cluster with the buckets replicated on
    /// all three (`Cluster.Replicas: 3`, as docs/scale-out.md says to deploy).
    #[arg(long, default_value_t = 1, value_parser = nats_nodes)]
    nats_nodes: usize,
    /// Search for the capacity: the largest bot count between the smallest and the largest of
    /// `--bots` (default 1000,12000) whose run holds the service level (docs/benchmarks.md).
    #[arg(long)]
    capacity: bool,
    /// The capacity search's resolution, in bots.
    #[arg(long, default_value_t = 500)]
    step: usize,
    /// Where the JSON reports go.
    #[arg(long, default_value = "target/bench-results")]
    out: PathBuf,
}

/// `--nats-nodes`: one nats-server, or a JetStream cluster of three.
fn nats_nodes(value: &str) -> Result<usize, String> {
    match value {
        "1" => Ok(1),
        "3" => Ok(3),
        _ => Err("1 (one nats-server) or 3 (a JetStream cluster of three)".into()),
    }
}

/// One scenario at one state-update rate, with the bot counts to run it at.
struct Runs {
    name: String,
    scenario: Scenario,
    counts: Vec<usize>,
}

fn main() {
    let args = Args::parse();
    let runs = runs(&args);
    let server_dir = args.server_dir.clone().unwrap_or_else(veltrix_loadtest::bench_server);
    std::fs::create_dir_all(&args.out).unwrap_or_else(|e| panic!("{}: {e}", args.out.display()));
    // The run's own work (the servers' consoles and `/bench`, the NATS peer and probe); the
    // bots run on threads of their own (`bot_loop::BotThreads`).
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // The machine's floor, measured in the same command: the report sets each run against it.
    // As many connections as the largest run has bots (a write costs more among more sockets),
    // within what this process may open (both ends of each are here).
    let largest = runs.iter().flat_map(|r| r.counts.iter().copied()).max().unwrap_or(1000);
    let connections = largest.min((veltrix_loadtest::clock::raise_open_files() as usize).saturating_sub(16) / 2);
    let rounds = (100_000 / connections.max(1)).clamp(10, 100);
    let floor =
        floor::measure(connections, rounds, 200).unwrap_or_else(|e| panic!("measuring the loopback floor: {e}"));
    let topology = Topology { shards: args.shards as usize, cluster: args.cluster, nats_nodes: args.nats_nodes };
    let run_one = |name: &str, scenario: &Scenario| -> Report {
        let mut report = runtime.block_on(swarm::run_on(name, scenario.clone(), server_dir.clone(), topology));
        report.floor = Some(FloorSummary::of(&floor, &report));
        if args.peer {
            report.peer = Some(runtime.block_on(peer(scenario, &report)));
        }
        println!("\n{}", report.table());
        let executor = scenario.executor_here();
        let rate = scenario.state_update_rate.map_or(String::new(), |r| format!("-{r}hz"));
        let shards = topology.file_suffix();
        let path = args.out.join(format!("{name}-{}-{executor}{rate}{shards}.json", scenario.bots));
        std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
        println!("report: {}", path.display());
        report
    };
    let mut found = Vec::new();
    for Runs { name, scenario, counts } in &runs {
        if !args.capacity {
            for &bots in counts {
                run_one(name, &Scenario { bots, ..scenario.clone() });
            }
            continue;
        }
        let (lo, hi) = (*counts.iter().min().unwrap(), *counts.iter().max().unwrap());
        let capacity = search(lo, hi, args.step.max(1), |bots| {
            let report = run_one(name, &Scenario { bots, ..scenario.clone() });
            let misses = report.slo_misses();
            eprintln!("{name} at {bots} bots: {}", if misses.is_empty() { "held".into() } else { misses.join("; ") });
            (misses.is_empty(), report)
        });
        found.push(capacity_line(name, scenario, &capacity, &floor));
    }
    if args.capacity {
        println!(
            "\n| scenario | state updates/s | capacity (bots) | frames/bot/s there | floor capacity at that rate | ratio | next count's misses |"
        );
        println!("|---|---:|---:|---:|---:|---:|---|");
        for line in &found {
            println!("{line}");
        }
    }
}

/// The runs the arguments ask for: each scenario, at each state-update rate.
fn runs(args: &Args) -> Vec<Runs> {
    let mut runs = Vec::new();
    for path in &args.scenarios {
        let scenario = Scenario::load(path).unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(2)
        });
        let name = path.file_stem().map_or("scenario".into(), |s| s.to_string_lossy().into_owned());
        let counts = match (&args.bots[..], args.capacity) {
            ([], false) => vec![scenario.bots],
            ([], true) => vec![1000, 12_000],
            (bots, _) => bots.to_vec(),
        };
        let rates: Vec<Option<u32>> = if args.state_update_rates.is_empty() {
            vec![scenario.state_update_rate]
        } else {
            args.state_update_rates.iter().map(|&r| Some(r)).collect()
        };
        for rate in rates {
            let mut s = scenario.clone();
            s.state_update_rate = rate;
            s.seconds = args.seconds.unwrap_or(s.seconds);
            s.warmup_seconds = args.warmup.unwrap_or(s.warmup_seconds);
            s.executor = args.executor.clone().or(s.executor);
            s.tick_priority = args.tick_priority.clone().or(s.tick_priority);
            s.writer_threads = args.writer_threads.or(s.writer_threads);
            s.network_threads = args.network_threads.or(s.network_threads);
            s.store_cache_mib = args.store_cache_mib.or(s.store_cache_mib);
            for &bots in &counts {
                if let Err(e) = (Scenario { bots, ..s.clone() }).check() {
                    eprintln!("error: {}: with the options given: {e}", path.display());
                    std::process::exit(2);
                }
            }
            runs.push(Runs { name: name.clone(), scenario: s, counts: counts.clone() });
        }
    }
    runs
}

/// What a capacity search found: the largest count that held (and its report), and the
/// smallest that did not (and its report).
struct Capacity<R> {
    held: Option<(usize, R)>,
    missed: Option<(usize, R)>,
}

/// Bisection for the largest count in `lo..=hi` (to `step`) for which `run` holds, assuming
/// that holding is monotone in the count: the top first (it may hold), then the bottom (it may
/// not), then halves.
fn search<R>(lo: usize, hi: usize, step: usize, mut run: impl FnMut(usize) -> (bool, R)) -> Capacity<R> {
    let mut capacity = Capacity { held: None, missed: None };
    let (ok, report) = run(hi);
    if ok {
        capacity.held = Some((hi, report));
        return capacity;
    }
    capacity.missed = Some((hi, report));
    let (ok, report) = run(lo);
    if !ok {
        capacity.missed = Some((lo, report));
        return capacity;
    }
    capacity.held = Some((lo, report));
    let (mut good, mut bad) = (lo, hi);
    while bad - good > step {
        let mid = (good + (bad - good) / 2) / step * step;
        let mid = if mid <= good { good + step } else { mid };
        let (ok, report) = run(mid);
        if ok {
            good = mid;
            capacity.held = Some((mid, report));
        } else {
            bad = mid;
            capacity.missed = Some((mid, report));
        }
    }
    capacity
}

/// One row of the capacity table: the count, its frame rate, the floor's capacity there, the
/// ratio, and why the next count missed.
fn capacity_line(name: &str, scenario: &Scenario, capacity: &Capacity<Report>, floor: &floor::Floor) -> String {
    let rate = scenario.state_update_rate.map_or("default".into(), |r| r.to_string());
    let misses =
        capacity.missed.as_ref().map_or("-".into(), |(bots, r)| format!("{bots}: {}", r.slo_misses().join("; ")));
    match &capacity.held {
        Some((bots, report)) => {
            let limit = floor.capacity(2.0, report.frames_per_bot_per_second.max(f64::MIN_POSITIVE));
            format!(
                "| {name} | {rate} | {bots} | {:.1} | {limit:.0} | {:.2} | {misses} |",
                report.frames_per_bot_per_second,
                *bots as f64 / limit
            )
        }
        None => format!("| {name} | {rate} | below {} | | | | {misses} |", capacity.missed.as_ref().map_or(0, |m| m.0)),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The search finds the largest count that holds, to the step, in few runs; and says so when
    /// even the smallest misses or the largest holds.
    #[test]
    fn the_capacity_search_finds_the_largest_count_that_holds() {
        for limit in [1000, 3700, 8200, 11_999, 12_000, 500] {
            let mut runs = Vec::new();
            let found = search(1000, 12_000, 500, |bots| {
                runs.push(bots);
                (bots <= limit, ())
            });
            let held = found.held.map(|h| h.0);
            let missed = found.missed.map(|m| m.0);
            match limit {
                500 => assert_eq!((held, missed), (None, Some(1000))),
                12_000 => assert_eq!((held, missed), (Some(12_000), None)),
                _ => {
                    let (held, missed) = (held.unwrap(), missed.unwrap());
                    assert!(held <= limit && missed > limit && missed - held <= 500, "{limit}: {held} {missed}");
                }
            }
            assert!(runs.len() <= 7, "{limit}: {runs:?}");
        }
    }
}
