//! Load generators and benchmarks: each binary starts the server as shipped (a release build
//! laid out in `target/bench-server/`) and drives it with real clients over loopback.

use std::path::PathBuf;

use xtask::{Build, assemble, workspace_root};

/// Builds the server in release and lays it out in `target/bench-server/`.
pub fn release_server() -> PathBuf {
    let out = Build::new(true).run().unwrap_or_else(|e| panic!("building the release server failed: {e:#}"));
    let dir = workspace_root().join("target").join("bench-server");
    assemble(&out, &dir).unwrap_or_else(|e| panic!("laying out the server failed: {e:#}"));
    dir
}

pub mod nats_peer;
