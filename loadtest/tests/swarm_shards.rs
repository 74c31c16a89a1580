//! The bot swarm over two shards for a few seconds against the tests' server build, the shards
//! sharing one hunt through a nats-server with JetStream that the swarm starts: vaults first
//! claimed on one shard are heard of by the bots of the other, and timed. Figures are not
//! checked (a debug build on a shared machine says nothing of speed).
//!
//! Without a nats-server of 2.12 or newer (`NATS_SERVER`, else the PATH) the test says SKIPPED
//! and passes, unless `VELTRIX_REQUIRE_NATS` is set: the rule of the shards' integration tests.

use veltrix_loadtest::{nats_peer, scenario::Scenario, shards::Topology, swarm};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_made_on_one_shard_reach_the_bots_of_the_other() {
    if let Err(why) = nats_peer::jetstream_binary() {
        assert!(std::env::var_os("VELTRIX_REQUIRE_NATS").is_none(), "the shards' swarm cannot run: {why:#}");
        eprintln!("SKIPPED: {why:#}");
        return;
    }
    // Forty bots digging once a second in a small world thick with FirstFinder vaults of one
    // dig: most digs claim a vault, told to every bot on both shards.
    let scenario = Scenario::parse(
        r#"{"Bots": 40, "WarmupSeconds": 1, "Seconds": 3, "Seed": 11,
            "World": {"Width": 96, "Depth": 96},
            "Moves": {"Speed": 3, "PerSecond": 2, "RoamRadius": 16}, "Digs": {"PerMinute": 60},
            "Vaults": {"Count": 300, "DigEffort": 1, "SparkleRadius": 16, "Claim": "FirstFinder"}}"#,
    )
    .unwrap();
    let server_dir = veltrix_tests::artifacts().server_dir.clone();
    let report = swarm::run_on(
        "shards-smoke",
        scenario,
        server_dir,
        Topology { shards: 2, cluster: true, ..Topology::default() },
    )
    .await;
    eprintln!("{}", report.table());
    assert_eq!(report.connected, 40, "every bot got in");
    assert_eq!(report.window_digs_answered, report.window_digs, "every dig of the window answered");
    assert_eq!(report.lost, 0);
    let shards = report.shards.as_ref().expect("the report has the shards' figures");
    assert_eq!((shards.shards, shards.cluster), (2, true));
    assert_eq!(shards.per_shard.iter().map(|s| s.bots).collect::<Vec<_>>(), [20, 20], "round-robin");
    assert!(shards.per_shard.iter().all(|s| s.dig_round_trip.count > 0), "digs on both shards");
    let claims = &shards.claims;
    assert!(claims.vaults_claimed > 0, "vaults first claimed in the window");
    assert!(claims.vaults_heard_elsewhere > 0, "claims heard of on the other shard");
    assert!(claims.cross_shard.count > 0, "cross-shard events counted: {claims:?}");
    assert!(claims.same_shard.count > 0, "and on the winner's shard");
    let nats = shards.nats.as_ref().expect("nats-server's figures");
    assert!(nats.probe_create.count > 0 && nats.rss_kib > 0, "{nats:?}");
}
