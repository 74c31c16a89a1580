//! The browser client's frame rate with 300 players in view, in headless Chromium: 300 Rust
//! clients walk small circles around the spawn (a move every 100 ms each) while the page
//! watches them all. Prints the page's frame times (from requestAnimationFrame) and what it
//! downloaded. `cargo bench -p veltrix-tests --bench page`; figures in docs/benchmarks.md.

use std::time::Duration;

use serde_json::json;
use veltrix_client::{Client, hello};
use veltrix_tests::{TestServer, browser::Browser, free_port};

const PLAYERS: usize = 300;
const WINDOW: Duration = Duration::from_secs(10);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(mut browser) = Browser::launch() else { return };
    let port = free_port();
    let server = TestServer::new().with_port(port);
    let config = json!({"MaxPlayers": PLAYERS + 10, "Network": {"MaxConnectionsPerIp": PLAYERS + 10},
        "World": {"Terrain": "Generated", "SpawnRadius": 12}});
    server.write("config.json", &config.to_string());
    let live = server.start(&[]);

    let mut walkers = Vec::new();
    for i in 0..PLAYERS {
        let (mut client, welcome) =
            Client::connect(&live.addr, hello(format!("bot{i}"))).await.unwrap_or_else(|e| panic!("bot{i}: {e:?}"));
        walkers.push(tokio::spawn(async move {
            let (cx, cy) = (welcome.x, welcome.y);
            for step in 0u32.. {
                // A circle of half a tile: every position stays on the tile the bot started on.
                let angle = step as f32 * 0.3 + i as f32;
                if client.move_to(cx + 0.4 * angle.cos(), cy + 0.4 * angle.sin()).await.is_err() {
                    return;
                }
                if client.collect_for(Duration::from_millis(100)).await.is_err() {
                    return;
                }
            }
        }));
    }

    browser.open(&format!("http://127.0.0.1:{port}/?name=viewer&play"));
    let seen = format!("veltrix.state.phase === 'online' && veltrix.state.others.size >= {PLAYERS}");
    browser.wait(&seen, Duration::from_secs(30), "veltrix.state.others.size");
    browser.eval("veltrix.renderer.frames = 0");
    tokio::time::sleep(WINDOW).await;
    let stats = browser.eval("veltrix.renderer.frameStats()");
    let shown = browser.eval("veltrix.state.others.size");
    let bytes = browser.eval(
        "performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))\
         .filter(e => e.name.startsWith('http')).reduce((sum, e) => sum + e.transferSize, 0)",
    );
    let frames = stats["frames"].as_f64().unwrap_or(0.0);
    println!("players in view        {shown}");
    println!("frames in {:>2} s         {frames} ({:.1} per second)", WINDOW.as_secs(), frames / WINDOW.as_secs_f64());
    println!(
        "frame time median, p99 {:.1} ms, {:.1} ms",
        stats["median"].as_f64().unwrap_or(0.0),
        stats["p99"].as_f64().unwrap_or(0.0)
    );
    println!("page downloaded        {:.1} KB (compressed, with headers)", bytes.as_f64().unwrap_or(0.0) / 1024.0);
    browser.screenshot("page-bench");
    for walker in walkers {
        walker.abort();
    }
}
