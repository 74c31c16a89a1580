//! A peer to compare our fan-out against: the same events delivered to the same bots by
//! nats-server (plain core NATS: no JetStream, no persistence), one NATS connection per bot.
//!
//! What it models:
//! - The area of interest as subjects: the world is cut into square cells `cell_size` tiles wide
//!   (our server's InterestRadius + InterestHysteresis, the width of its grid's cells), cell
//!   (cx, cy) is the subject `cell.<cx>.<cy>`, and each bot subscribes to the 9 subjects of the
//!   3x3 cells around its own. That is the superset our grid scans (`InterestGrid::for_each_near`):
//!   our server then keeps only the players within `radius`, while here every bot in those 9
//!   cells gets the event, so the peer delivers more messages than our server sends frames.
//! - Events: `events_per_second` in total, in one burst per tick (`ticks_per_second`), each at the
//!   position of a bot drawn at random (seeded) and published to that position's cell subject.
//!   Each payload is `payload_bytes` long (the size of our frame carrying the event) and starts
//!   with the CLOCK_MONOTONIC nanoseconds at publish; a bot records receive time minus that.
//!
//! What it does not model: bots do not move (positions and subscriptions are fixed for the
//! run: no resubscribing when a bot changes cell), one message per event and bot (our server
//! sends one frame per bot and tick carrying all of that tick's events for it), no game logic,
//! no WebSocket or MessagePack, no distance check.
//!
//! [`run`] starts its own nats-server (the binary in `NATS_SERVER`, else `nats-server` in
//! /usr/sbin, /usr/bin or the PATH: Debian's package `nats-server`) on a free loopback port and
//! stops it at the end. Nothing in this crate's tests needs it.
//!
//! In parts: [`cells`] (who listens to what, pure), `server` (the nats-server process),
//! `bots` (the bots' connections and tallies); this file holds the run itself.

use std::{
    process::Command,
    sync::{Arc, Mutex, atomic::Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context, ensure};
use async_nats::{Client, Subject};
use futures_util::{StreamExt, TryStreamExt, stream};
use hdrhistogram::Histogram;
use tokio::task::JoinHandle;

use crate::clock::{cpu_seconds, monotonic_ns, raise_open_files, rss_kib};

mod bots;
pub mod cells;
mod server;

use bots::{ClientEvents, SHARDS, Shard, connect_bot, new_histogram, options, totals};
pub use cells::{Rng, SubscriptionMap, area_of, cell_of, subject_of, uniform_positions};
use server::varz_u64;
pub use server::{JETSTREAM_MIN_VERSION, NatsServer, jetstream_binary, nats_server_binary, version_of};

/// What to run.
#[derive(Debug, Clone)]
pub struct PeerSpec {
    /// Where each bot stands, in tiles; one NATS connection per bot.
    pub positions: Vec<(f32, f32)>,
    /// Interest cell size in tiles (the server's InterestRadius + InterestHysteresis).
    pub cell_size: f32,
    /// Events published per second in total, each at the position of a bot drawn at random
    /// (seeded: `seed`), to the subject of that position's cell, e.g. `cell.<cx>.<cy>`.
    pub events_per_second: f64,
    /// Payload bytes of each event (the size of our server's frame carrying the same event), at
    /// least [`HEADER_BYTES`].
    pub payload_bytes: usize,
    /// Events published in one burst per "tick" (our server sends once per tick): ticks per second.
    pub ticks_per_second: u32,
    pub warmup: Duration,
    pub duration: Duration,
    pub seed: u64,
}

/// What a run measured. Latencies, deliveries and CPU count only the measured window (events
/// published after the warm-up); the connection and subscription counts are the whole run's.
#[derive(Debug, Clone)]
pub struct PeerReport {
    /// Fan-out latency of every measured delivery: receive time minus publish time, in
    /// microseconds (CLOCK_MONOTONIC on both sides; 1 µs is recorded for anything less).
    pub latency_us: Histogram<u64>,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
    /// Events published in the measured window.
    pub events_published: u64,
    /// Deliveries to bots of the measured events.
    pub delivered: u64,
    /// Sum over measured events of the bots subscribed to its subject.
    pub expected: u64,
    /// `expected - delivered` (0 if more arrived than expected): not delivered by the end of
    /// the drain. With `drain_timed_out`, deliveries were still coming (late, not dropped).
    pub lost: u64,
    /// The drain stopped at its timeout ([`DRAIN_TIMEOUT`]) with deliveries still arriving.
    pub drain_timed_out: bool,
    /// The measured window: from the first to the end of the last measured tick.
    pub measured: Duration,
    /// nats-server's CPU time (user + system) in the measured window, seconds.
    pub server_cpu_s: f64,
    /// This process's CPU time (user + system: the bots and the publisher) in the window, seconds.
    pub swarm_cpu_s: f64,
    /// Time to connect every bot and have its 9 subscriptions confirmed (batches of
    /// [`CONNECT_BATCH`] at once).
    pub connect_time: Duration,
    /// From the end of publishing until deliveries stopped (or all expected had come).
    pub drain_time: Duration,
    /// Connections opened: one per bot plus the publisher.
    pub connections: usize,
    /// Subscriptions made: 9 per bot.
    pub subscriptions: usize,
    /// The server's own counts (its /varz at the start of the window).
    pub server_connections: u64,
    pub server_subscriptions: u64,
    /// Bytes the server received and sent in the measured window (/varz `in_bytes`,
    /// `out_bytes`: payloads only, without the protocol lines around them).
    pub server_in_bytes: u64,
    pub server_out_bytes: u64,
    /// Messages the server sent in the window (/varz `out_msgs`).
    pub server_out_msgs: u64,
    /// nats-server's resident memory at the end of the window, KiB (/proc/<pid>/status VmRSS).
    pub server_rss_kib: u64,
    /// Slow consumers the server saw over the whole run (/varz `slow_consumers`).
    pub server_slow_consumers: u64,
    /// Client-side trouble over the whole run: disconnections and full subscription buffers.
    pub client_disconnects: u64,
    pub client_slow_consumers: u64,
    /// `nats-server --version`.
    pub server_version: String,
}

/// Payload bytes the peer needs: the publish time (8 bytes, little-endian nanoseconds) and
/// whether the event is in the measured window (1 byte); zeros pad the rest.
pub const HEADER_BYTES: usize = 9;

/// Bots that connect at once.
pub const CONNECT_BATCH: usize = 100;

/// How long to wait, after publishing stops, for deliveries to stop.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs the peer: starts nats-server, connects a bot per position, publishes for `warmup` then
/// `duration`, waits for the deliveries, stops everything and reports the measured window.
pub async fn run(spec: &PeerSpec) -> anyhow::Result<PeerReport> {
    check(spec)?;
    raise_open_files();
    let (server, server_version) = start_server().await?;
    let url = server.url();

    let map = SubscriptionMap::new(&spec.positions, spec.cell_size);
    let shards: Vec<Arc<Mutex<Shard>>> = (0..SHARDS)
        .map(|_| Arc::new(Mutex::new(Shard { latency_us: new_histogram(), delivered: 0, received: 0 })))
        .collect();
    let events = Arc::new(ClientEvents::default());

    let connect_start = Instant::now();
    let readers = connect_bots(spec, &url, &map, &shards, &events).await?;
    let connect_time = connect_start.elapsed();

    let publisher =
        options(&events).client_capacity(64 * 1024).connect(url.clone()).await.context("connecting the publisher")?;
    let published = publish(spec, &server, &publisher, &map).await?;
    publisher.flush().await.context("flushing the publisher")?;

    let (drain_time, drain_timed_out) = drain(&shards, published.expected).await;

    let server_slow_consumers = varz_u64(&server.varz().await?, "slow_consumers");
    for reader in &readers {
        reader.abort();
    }
    for reader in readers {
        let _ = reader.await;
    }
    drop(publisher);
    drop(server);

    let (latency_us, delivered) = merged(&shards);
    let Published {
        events_published,
        expected,
        measured,
        server_cpu_s,
        swarm_cpu_s,
        server_rss_kib,
        varz_start,
        varz_end,
    } = published;
    Ok(PeerReport {
        p50_us: latency_us.value_at_quantile(0.5),
        p99_us: latency_us.value_at_quantile(0.99),
        p999_us: latency_us.value_at_quantile(0.999),
        max_us: latency_us.max(),
        mean_us: latency_us.mean(),
        latency_us,
        events_published,
        delivered,
        expected,
        lost: expected.saturating_sub(delivered),
        drain_timed_out,
        measured,
        server_cpu_s,
        swarm_cpu_s,
        connect_time,
        drain_time,
        connections: spec.positions.len() + 1,
        subscriptions: spec.positions.len() * 9,
        server_connections: varz_u64(&varz_start, "connections"),
        server_subscriptions: varz_u64(&varz_start, "subscriptions"),
        server_in_bytes: varz_u64(&varz_end, "in_bytes") - varz_u64(&varz_start, "in_bytes"),
        server_out_bytes: varz_u64(&varz_end, "out_bytes") - varz_u64(&varz_start, "out_bytes"),
        server_out_msgs: varz_u64(&varz_end, "out_msgs") - varz_u64(&varz_start, "out_msgs"),
        server_rss_kib,
        server_slow_consumers,
        client_disconnects: events.disconnects.load(Ordering::Relaxed),
        client_slow_consumers: events.slow_consumers.load(Ordering::Relaxed),
        server_version,
    })
}

/// A spec the run can use: bots, positive sizes and rates, payloads that hold the header.
fn check(spec: &PeerSpec) -> anyhow::Result<()> {
    ensure!(!spec.positions.is_empty(), "no bots");
    ensure!(spec.cell_size > 0.0, "cell_size must be positive");
    ensure!(spec.ticks_per_second > 0, "ticks_per_second must be positive");
    ensure!(spec.events_per_second >= 0.0, "events_per_second must not be negative");
    ensure!(spec.payload_bytes >= HEADER_BYTES, "payload_bytes must be at least {HEADER_BYTES}");
    Ok(())
}

/// nats-server started, and its `--version`.
async fn start_server() -> anyhow::Result<(NatsServer, String)> {
    let binary = nats_server_binary()?;
    let version = Command::new(&binary).arg("--version").output().context("nats-server --version")?;
    let server_version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let server = tokio::task::spawn_blocking(move || NatsServer::start(&binary)).await??;
    Ok((server, server_version))
}

/// Connects a bot per position, `CONNECT_BATCH` at once, each subscribed to its cells and
/// recording into its shard; their readers.
async fn connect_bots(
    spec: &PeerSpec,
    url: &str,
    map: &SubscriptionMap,
    shards: &[Arc<Mutex<Shard>>],
    events: &Arc<ClientEvents>,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    stream::iter(0..spec.positions.len())
        .map(|bot| connect_bot(url.to_string(), map.cell(bot), shards[bot % SHARDS].clone(), events.clone()))
        .buffer_unordered(CONNECT_BATCH)
        .try_collect()
        .await
}

/// What publishing measured: the window's events and the server's figures around it.
struct Published {
    events_published: u64,
    expected: u64,
    measured: Duration,
    server_cpu_s: f64,
    swarm_cpu_s: f64,
    server_rss_kib: u64,
    varz_start: serde_json::Value,
    varz_end: serde_json::Value,
}

/// Where the measured window began: when, both processes' CPU time then, and /varz.
type WindowStart = (Instant, f64, f64, serde_json::Value);

/// Publishes a burst of events each tick, through the warm-up and then the measured window.
async fn publish(
    spec: &PeerSpec,
    server: &NatsServer,
    publisher: &Client,
    map: &SubscriptionMap,
) -> anyhow::Result<Published> {
    let subjects: Vec<Subject> =
        (0..spec.positions.len()).map(|bot| Subject::from(subject_of(map.cell(bot)))).collect();

    let mut rng = Rng::new(spec.seed);
    let tick = Duration::from_secs_f64(1.0 / f64::from(spec.ticks_per_second));
    let per_tick = spec.events_per_second / f64::from(spec.ticks_per_second);
    let mut owed = 0.0f64;
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut payload = vec![0u8; spec.payload_bytes];

    let mut events_published = 0u64;
    let mut expected = 0u64;
    let mut window: Option<WindowStart> = None;
    let start = Instant::now();
    loop {
        interval.tick().await;
        let elapsed = start.elapsed();
        let in_window = elapsed >= spec.warmup;
        if in_window && window.is_none() {
            window = Some(window_start(server).await?);
        }
        if let Some((from, server_cpu, swarm_cpu, _)) = &window
            && from.elapsed() >= spec.duration
        {
            let measured = from.elapsed();
            let server_cpu_s = cpu_seconds(server.pid()).context("nats-server's CPU time")? - server_cpu;
            let swarm_cpu_s = cpu_seconds(std::process::id()).context("this process's CPU time")? - swarm_cpu;
            let server_rss_kib = rss_kib(server.pid()).context("nats-server's memory")?;
            let varz_end = server.varz().await?;
            let varz_start = window.take().expect("window").3;
            return Ok(Published {
                events_published,
                expected,
                measured,
                server_cpu_s,
                swarm_cpu_s,
                server_rss_kib,
                varz_start,
                varz_end,
            });
        }
        owed += per_tick;
        let count = owed.floor();
        owed -= count;
        for _ in 0..count as u64 {
            let bot = rng.below(spec.positions.len());
            payload[..8].copy_from_slice(&monotonic_ns().to_le_bytes());
            payload[8] = u8::from(in_window);
            publisher.publish(subjects[bot].clone(), payload.clone().into()).await.context("publishing")?;
            if in_window {
                events_published += 1;
                expected += map.expected_for(bot);
            }
        }
    }
}

/// The measured window begins: now, the CPU times and the server's /varz.
async fn window_start(server: &NatsServer) -> anyhow::Result<WindowStart> {
    let varz = server.varz().await?;
    Ok((
        Instant::now(),
        cpu_seconds(server.pid()).context("nats-server's CPU time")?,
        cpu_seconds(std::process::id()).context("this process's CPU time")?,
        varz,
    ))
}

/// Waits until deliveries stop: all `expected` have come, or nothing came for a second (at most
/// `DRAIN_TIMEOUT`); how long it took, and whether it timed out with deliveries still coming.
async fn drain(shards: &[Arc<Mutex<Shard>>], expected: u64) -> (Duration, bool) {
    let drain_start = Instant::now();
    let mut last = totals(shards);
    let mut last_change = Instant::now();
    while last.0 < expected && last_change.elapsed() < Duration::from_secs(1) && drain_start.elapsed() < DRAIN_TIMEOUT {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = totals(shards);
        if now != last {
            last = now;
            last_change = Instant::now();
        }
    }
    let drain_time = drain_start.elapsed();
    let drain_timed_out = last.0 < expected && last_change.elapsed() < Duration::from_secs(1);
    (drain_time, drain_timed_out)
}

/// Every shard's latencies in one histogram, and the measured deliveries.
fn merged(shards: &[Arc<Mutex<Shard>>]) -> (Histogram<u64>, u64) {
    let mut latency_us = new_histogram();
    let mut delivered = 0;
    for shard in shards {
        let shard = shard.lock().expect("shard lock");
        latency_us.add(&shard.latency_us).expect("same bounds");
        delivered += shard.delivered;
    }
    (latency_us, delivered)
}
