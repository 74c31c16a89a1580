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
use veltrix_loadtest::{scenario::Scenario, swarm};

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
            runs.push((name.clone(), s));
        }
    }
    let server_dir = args.server_dir.clone().unwrap_or_else(veltrix_loadtest::bench_server);
    std::fs::create_dir_all(&args.out).unwrap_or_else(|e| panic!("{}: {e}", args.out.display()));
    // Two threads, like the server's network runtime: the machine has two cores.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for (name, scenario) in runs {
        let (bots, scenario_executor) = (scenario.bots, scenario.executor.clone());
        let report = runtime.block_on(swarm::run(&name, scenario, server_dir.clone()));
        println!("\n{}", report.table());
        let executor = scenario_executor.unwrap_or_else(|| "MultiThreaded".into());
        let path = args.out.join(format!("{name}-{bots}-{executor}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
        println!("report: {}", path.display());
    }
}
