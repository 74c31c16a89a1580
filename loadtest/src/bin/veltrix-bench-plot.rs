//! Draws docs/benchmarks.md's plot from the bot swarm's JSON reports.
//!
//! `cargo run --release -p veltrix-loadtest --bin veltrix-bench-plot -- docs/benchmarks/swarm.svg target/bench-results/*.json`

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next() else {
        eprintln!("usage: veltrix-bench-plot <out.svg> <report.json>...");
        std::process::exit(2);
    };
    let reports: Vec<veltrix_loadtest::report::Report> = args
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
        })
        .collect();
    if let Err(e) = veltrix_loadtest::plot::draw(&reports, std::path::Path::new(&out)) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    println!("{out}: {} reports", reports.len());
}
