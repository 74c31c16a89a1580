//! Load generators and benchmarks: each binary starts the server as shipped (a release build
//! laid out in `target/bench-server/`) and drives it with real clients over loopback. A load
//! generator that needs the server's own figures (commit stamps in frames, allocations per
//! tick, `/bench`) runs the benchmark build instead ([`bench_server`]).

pub mod bot_loop;
pub mod bots;
pub mod clock;
pub mod floor;
pub mod nats_peer;
pub mod plan;
pub mod plot;
pub mod report;
pub mod scenario;
pub mod shards;
pub mod swarm;

use std::path::PathBuf;

use xtask::{BENCH_FEATURES, Build, assemble, workspace_root};

/// Builds the server in release and lays it out in `target/bench-server/`.
pub fn release_server() -> PathBuf {
    let out = Build::new(true).run().unwrap_or_else(|e| panic!("building the release server failed: {e:#}"));
    let dir = workspace_root().join("target").join("bench-server");
    assemble(&out, &dir).unwrap_or_else(|e| panic!("laying out the server failed: {e:#}"));
    dir
}

/// Builds the benchmark build of the server in release (`xtask::BENCH_FEATURES`, the server
/// and the mod in one invocation, in `target/bench-instrumented/`: a target folder of its
/// own, so it never overwrites the shipped build's libraries) and lays it out in
/// `target/bench-server-instrumented/`.
pub fn bench_server() -> PathBuf {
    let mut build = Build::new(true);
    build.target_dir = workspace_root().join("target").join("bench-instrumented");
    build.features = BENCH_FEATURES.iter().map(|f| f.to_string()).collect();
    let out = build.run().unwrap_or_else(|e| panic!("building the benchmark server failed: {e:#}"));
    let dir = workspace_root().join("target").join("bench-server-instrumented");
    assemble(&out, &dir).unwrap_or_else(|e| panic!("laying out the benchmark server failed: {e:#}"));
    dir
}
