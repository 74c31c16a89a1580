//! Server memory per idle connected player: RSS with N players minus RSS with none, over N.
//!
//! `cargo run --release -p veltrix-loadtest --bin veltrix-bench-memory -- 1000 5000`
//! (`--server-dir DIR` runs the server laid out in DIR instead of building one, to compare
//! builds)
//!
//! For each N: a fresh server (release build), its RSS after start and a warm-up of ten
//! players that come and go, then N clients join and stay idle (they read what the server sends: nothing, once everyone is in); after the server
//! reports N players and a settling pause, its RSS again.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use veltrix_client::{Client, hello};
use veltrix_tests::TestServer;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (mut counts, mut server_dir) = (Vec::new(), None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--server-dir" => server_dir = Some(args.next().expect("--server-dir DIR").into()),
            count => counts.push(count.parse::<usize>().expect("player counts, e.g. 1000 5000")),
        }
    }
    let counts = if counts.is_empty() { vec![1000, 5000] } else { counts };
    let server_dir = server_dir.unwrap_or_else(veltrix_loadtest::release_server);
    println!("| players | RSS empty (KiB) | RSS with players (KiB) | per player (bytes) |");
    println!("|---:|---:|---:|---:|");
    for n in counts {
        let server = TestServer::new().with_server_dir(server_dir.clone()).with_treasure_hunt("Veltrix_TreasureHunt");
        // Everyone at one spawn point would see everyone (N² state and traffic): spread them
        // over a big world, beyond each other's interest radius, so that idle means idle.
        server.write(
            "config.json",
            &format!(
                r#"{{"MaxPlayers": {}, "Network": {{"MaxConnectionsPerIp": 100000}}, "World": {{"Width": 4096, "Depth": 4096, "SpawnX": 2048, "SpawnY": 2048, "SpawnRadius": 2000, "InterestRadius": 1, "InterestHysteresis": 0}}}}"#,
                n + 10
            ),
        );
        let live = server.start(&[]);
        // Warm up: a few players come and go, so that one-time costs (the allocator's
        // per-thread arenas, lazily made runtime structures) are not counted per player.
        let mut warm = Vec::new();
        for i in 0..10 {
            warm.push(Client::connect(&live.addr, hello(format!("warm{i}"))).await.expect("join").0);
        }
        drop(warm);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let empty = live.rss_kib();
        let mut clients = Vec::with_capacity(n);
        // Joins in small concurrent batches: each handshake briefly holds buffers several times an
        // idle connection's size, and the allocator keeps its high-water mark.
        for chunk in (0..n).collect::<Vec<_>>().chunks(20) {
            let joins = chunk.iter().map(|i| Client::connect(&live.addr, hello(format!("p{i}"))));
            for joined in join_all(joins).await {
                clients.push(joined.expect("join").0);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while !live.admin_get("/health").1.contains(&format!("\"players\":{n}}}")) {
            assert!(Instant::now() < deadline, "the server never reported {n} players");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let full = live.rss_kib();
        let per_player = (full.saturating_sub(empty) * 1024) as f64 / n as f64;
        println!("| {n} | {empty} | {full} | {per_player:.0} |");
        drop(clients);
        let _ = live.stop();
    }
}
