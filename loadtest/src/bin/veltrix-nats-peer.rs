//! The fan-out peer alone: bots spread uniformly over a world, each subscribed through
//! nats-server to the 3x3 interest cells around it, and events published to cells once per
//! tick; prints the fan-out latency, deliveries and nats-server's CPU (see `nats_peer`).
//!
//! `cargo run --release -p veltrix-loadtest --bin veltrix-nats-peer -- --bots 12000 --events 12000 --payload 40`
//!
//! Needs nats-server (Debian: `apt-get install nats-server`; or `NATS_SERVER=/path/to/it`).

use std::time::Duration;

use clap::Parser;
use veltrix_loadtest::nats_peer::{PeerSpec, run, uniform_positions};

#[derive(Parser, Debug)]
#[command(about = "Fan-out of interest-cell events through nats-server, one connection per bot")]
struct Args {
    /// Bots (one NATS connection each).
    #[arg(long, default_value_t = 1000)]
    bots: usize,
    /// Events published per second, in total.
    #[arg(long, default_value_t = 12000.0)]
    events: f64,
    /// Payload bytes per event (at least 9).
    #[arg(long, default_value_t = 40)]
    payload: usize,
    /// Interest cell size in tiles (InterestRadius + InterestHysteresis; defaults 32 + 4).
    #[arg(long, default_value_t = 36.0)]
    cell: f32,
    /// World width and depth in tiles; bots are spread uniformly over it.
    #[arg(long, default_value_t = 2048.0)]
    world: f32,
    /// Ticks per second: events go out in one burst per tick.
    #[arg(long, default_value_t = 30)]
    ticks: u32,
    /// Warm-up seconds, not measured.
    #[arg(long, default_value_t = 10.0)]
    warmup: f64,
    /// Measured seconds.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Seed of the positions and of the events.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let spec = PeerSpec {
        positions: uniform_positions(args.bots, args.world, args.world, args.seed),
        cell_size: args.cell,
        events_per_second: args.events,
        payload_bytes: args.payload,
        ticks_per_second: args.ticks,
        warmup: Duration::from_secs_f64(args.warmup),
        duration: Duration::from_secs_f64(args.duration),
        seed: args.seed,
    };
    let r = run(&spec).await?;
    let secs = r.measured.as_secs_f64();
    println!("{}", r.server_version);
    println!(
        "{} bots over {} x {} tiles, cells of {} tiles, {} events/s of {} bytes in {} ticks/s, {} s warm-up, {:.1} s measured",
        args.bots, args.world, args.world, args.cell, args.events, args.payload, args.ticks, args.warmup, secs
    );
    println!();
    println!("| what | value |");
    println!("|---|---:|");
    println!("| connect {} bots (9 subscriptions each) | {:.2} s |", args.bots, r.connect_time.as_secs_f64());
    println!("| connections / subscriptions (server) | {} / {} |", r.server_connections, r.server_subscriptions);
    println!("| events published (measured) | {} ({:.0}/s) |", r.events_published, r.events_published as f64 / secs);
    println!("| delivered / expected | {} / {} ({:.0}/s) |", r.delivered, r.expected, r.delivered as f64 / secs);
    let late = if r.drain_timed_out { " (deliveries still arriving at the drain timeout)" } else { "" };
    println!("| lost | {}{late} |", r.lost);
    println!("| latency p50 / p99 / p99.9 / max | {} / {} / {} / {} µs |", r.p50_us, r.p99_us, r.p999_us, r.max_us);
    println!("| latency mean | {:.0} µs |", r.mean_us);
    let per_message = match r.server_out_msgs {
        0 => String::new(),
        n => format!(", {:.1} µs per message sent", r.server_cpu_s * 1e6 / n as f64),
    };
    println!("| nats-server CPU | {:.2} s ({:.2} s per s{per_message}) |", r.server_cpu_s, r.server_cpu_s / secs);
    println!("| bots + publisher CPU | {:.2} s ({:.2} s per s) |", r.swarm_cpu_s, r.swarm_cpu_s / secs);
    println!(
        "| server bytes in / out (payloads) | {:.1} / {:.1} MB ({} msgs out) |",
        r.server_in_bytes as f64 / 1e6,
        r.server_out_bytes as f64 / 1e6,
        r.server_out_msgs
    );
    println!(
        "| slow consumers (server / client), disconnects | {} / {}, {} |",
        r.server_slow_consumers, r.client_slow_consumers, r.client_disconnects
    );
    println!("| nats-server RSS at the end | {} MiB |", r.server_rss_kib / 1024);
    println!("| drain after publishing | {:.2} s |", r.drain_time.as_secs_f64());
    Ok(())
}
