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
//! Above 600 lines on purpose: the peer is one experiment (broker, bots, report), kept whole
//! beside the swarm it is compared with.

use std::{
    collections::HashMap,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use async_nats::{Client, ConnectOptions, Event, Subject, Subscriber};
use futures_util::{StreamExt, TryStreamExt, stream};
use hdrhistogram::Histogram;

use crate::clock::{cpu_seconds, monotonic_ns, raise_open_files, rss_kib};

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

/// The cell holding (x, y), as our server's grid computes it.
pub fn cell_of((x, y): (f32, f32), cell_size: f32) -> (i32, i32) {
    ((x / cell_size).floor() as i32, (y / cell_size).floor() as i32)
}

/// The subject of a cell.
pub fn subject_of((cx, cy): (i32, i32)) -> String {
    format!("cell.{cx}.{cy}")
}

/// The 9 cells a bot in `cell` subscribes to: the 3x3 around it, row by row.
pub fn area_of((cx, cy): (i32, i32)) -> [(i32, i32); 9] {
    let mut out = [(0, 0); 9];
    let mut i = 0;
    for dy in -1..=1 {
        for dx in -1..=1 {
            out[i] = (cx + dx, cy + dy);
            i += 1;
        }
    }
    out
}

/// Who listens to what: each bot's cell and, per cell, the bots subscribed to its subject.
#[derive(Debug, Clone)]
pub struct SubscriptionMap {
    cells: Vec<(i32, i32)>,
    subscribers: HashMap<(i32, i32), u64>,
}

impl SubscriptionMap {
    pub fn new(positions: &[(f32, f32)], cell_size: f32) -> Self {
        let cells: Vec<(i32, i32)> = positions.iter().map(|&p| cell_of(p, cell_size)).collect();
        let mut subscribers = HashMap::new();
        for &cell in &cells {
            for near in area_of(cell) {
                *subscribers.entry(near).or_insert(0) += 1;
            }
        }
        Self { cells, subscribers }
    }

    /// The cell of bot `bot`.
    pub fn cell(&self, bot: usize) -> (i32, i32) {
        self.cells[bot]
    }

    /// Bots subscribed to the subject of `cell`.
    pub fn subscribers(&self, cell: (i32, i32)) -> u64 {
        self.subscribers.get(&cell).copied().unwrap_or(0)
    }

    /// Deliveries an event at bot `bot`'s position should make.
    pub fn expected_for(&self, bot: usize) -> u64 {
        self.subscribers(self.cells[bot])
    }

    /// Deliveries a series of events (each given by the bot at whose position it happens) should make.
    pub fn expected(&self, events: impl IntoIterator<Item = usize>) -> u64 {
        events.into_iter().map(|bot| self.expected_for(bot)).sum()
    }
}

/// SplitMix64: small, seeded, the same sequence everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// `bots` positions uniform over a `width` x `depth` world, seeded.
pub fn uniform_positions(bots: usize, width: f32, depth: f32, seed: u64) -> Vec<(f32, f32)> {
    let mut rng = Rng::new(seed);
    (0..bots)
        .map(|_| ((rng.next_f64() * f64::from(width)) as f32, (rng.next_f64() * f64::from(depth)) as f32))
        .collect()
}

/// The nats-server binary: `NATS_SERVER`, else the first `nats-server` in /usr/sbin, /usr/bin
/// and the PATH.
pub fn nats_server_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("NATS_SERVER") {
        return Ok(PathBuf::from(path));
    }
    let path_dirs = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default();
    [PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")]
        .into_iter()
        .chain(path_dirs)
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
        .context("nats-server not found (apt-get install nats-server, or set NATS_SERVER)")
}

/// A free loopback port (free when asked; the server binds it right after).
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A nats-server of our own, killed when dropped.
struct NatsServer {
    child: Child,
    port: u16,
    monitor_port: u16,
    dir: PathBuf,
}

impl NatsServer {
    fn start(binary: &Path) -> anyhow::Result<Self> {
        let port = free_port()?;
        let monitor_port = free_port()?;
        let dir = std::env::temp_dir().join(format!("veltrix-nats-peer-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        // Plain core NATS: no JetStream (off unless configured), no persistence. Room for more
        // than 12,000 connections, and generous per-connection pending bytes and write deadline
        // so that a burst does not make slow consumers of bots that are only late.
        let config = format!(
            "listen: \"127.0.0.1:{port}\"\n\
             http: \"127.0.0.1:{monitor_port}\"\n\
             max_connections: 65536\n\
             max_pending: 67108864\n\
             max_payload: 1048576\n\
             write_deadline: \"30s\"\n\
             debug: false\n\
             trace: false\n"
        );
        let conf = dir.join("nats.conf");
        std::fs::write(&conf, config)?;
        // No per-connection logging at this level: only start and stop notices, and slow
        // consumers, go to the log file (read if the server fails to start).
        let log = std::fs::File::create(dir.join("nats.log"))?;
        let child = Command::new(binary)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut server = Self { child, port, monitor_port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = server.child.try_wait()? {
                bail!("nats-server exited ({status}): {}", server.log_tail());
            }
            if Instant::now() > deadline {
                bail!("nats-server did not listen on {port} within 10 s: {}", server.log_tail());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("nats.log")).unwrap_or_default();
        log.lines().rev().take(10).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's /varz.
    async fn varz(&self) -> anyhow::Result<serde_json::Value> {
        let port = self.monitor_port;
        tokio::task::spawn_blocking(move || {
            let mut stream = TcpStream::connect(("127.0.0.1", port))?;
            stream.set_read_timeout(Some(Duration::from_secs(10)))?;
            stream.write_all(b"GET /varz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
            let mut response = String::new();
            stream.read_to_string(&mut response)?;
            let body = response.split_once("\r\n\r\n").context("malformed /varz response")?.1;
            Ok(serde_json::from_str(body)?)
        })
        .await?
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        // SIGTERM first (a clean stop), SIGKILL if it lingers.
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn varz_u64(v: &serde_json::Value, key: &str) -> u64 {
    v.get(key).and_then(serde_json::Value::as_u64).unwrap_or(0)
}

/// Per-shard tallies: bots record into the shard of their index, so that two runtime threads
/// rarely meet on one lock.
struct Shard {
    latency_us: Histogram<u64>,
    /// Measured deliveries.
    delivered: u64,
    /// Every delivery, warm-up included (to see when deliveries stop).
    received: u64,
}

const SHARDS: usize = 64;

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

#[derive(Default)]
struct ClientEvents {
    disconnects: AtomicU64,
    slow_consumers: AtomicU64,
}

fn options(events: &Arc<ClientEvents>) -> ConnectOptions {
    let events = events.clone();
    ConnectOptions::new()
        .no_echo()
        .connection_timeout(Duration::from_secs(30))
        // Small frames: a smaller read buffer than the default 64 KiB keeps 12,000 clients lean.
        .read_buffer_capacity(16 * 1024)
        .event_callback(move |event| {
            let events = events.clone();
            async move {
                match event {
                    Event::Disconnected => events.disconnects.fetch_add(1, Ordering::Relaxed),
                    Event::SlowConsumer(_) => events.slow_consumers.fetch_add(1, Ordering::Relaxed),
                    _ => 0,
                };
            }
        })
}

/// Connects one bot, subscribes it to its 9 cells, waits until the server has them, and spawns
/// its reader.
async fn connect_bot(
    url: String,
    cell: (i32, i32),
    shard: Arc<Mutex<Shard>>,
    events: Arc<ClientEvents>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let client = options(&events).connect(url).await.context("connecting a bot")?;
    let mut subscribers: Vec<Subscriber> = Vec::with_capacity(9);
    for near in area_of(cell) {
        subscribers.push(client.subscribe(subject_of(near)).await.context("subscribing")?);
    }
    client.flush().await.context("flushing the subscriptions")?;
    Ok(tokio::spawn(read_loop(client, subscribers, shard)))
}

async fn read_loop(client: Client, subscribers: Vec<Subscriber>, shard: Arc<Mutex<Shard>>) {
    let mut messages = stream::select_all(subscribers);
    while let Some(message) = messages.next().await {
        let now = monotonic_ns();
        let payload = &message.payload;
        if payload.len() < HEADER_BYTES {
            continue;
        }
        let sent = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
        let measured = payload[8] == 1;
        let mut shard = shard.lock().expect("shard lock");
        shard.received += 1;
        if measured {
            shard.delivered += 1;
            shard.latency_us.saturating_record((now.saturating_sub(sent) / 1000).max(1));
        }
    }
    drop(client);
}

fn totals(shards: &[Arc<Mutex<Shard>>]) -> (u64, u64) {
    shards.iter().fold((0, 0), |(d, r), s| {
        let s = s.lock().expect("shard lock");
        (d + s.delivered, r + s.received)
    })
}

/// Runs the peer: starts nats-server, connects a bot per position, publishes for `warmup` then
/// `duration`, waits for the deliveries, stops everything and reports the measured window.
pub async fn run(spec: &PeerSpec) -> anyhow::Result<PeerReport> {
    ensure!(!spec.positions.is_empty(), "no bots");
    ensure!(spec.cell_size > 0.0, "cell_size must be positive");
    ensure!(spec.ticks_per_second > 0, "ticks_per_second must be positive");
    ensure!(spec.events_per_second >= 0.0, "events_per_second must not be negative");
    ensure!(spec.payload_bytes >= HEADER_BYTES, "payload_bytes must be at least {HEADER_BYTES}");
    raise_open_files();
    let binary = nats_server_binary()?;
    let version = Command::new(&binary).arg("--version").output().context("nats-server --version")?;
    let server_version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let server = tokio::task::spawn_blocking(move || NatsServer::start(&binary)).await??;
    let url = server.url();

    let map = SubscriptionMap::new(&spec.positions, spec.cell_size);
    let shards: Vec<Arc<Mutex<Shard>>> = (0..SHARDS)
        .map(|_| Arc::new(Mutex::new(Shard { latency_us: new_histogram(), delivered: 0, received: 0 })))
        .collect();
    let events = Arc::new(ClientEvents::default());

    let connect_start = Instant::now();
    let readers: Vec<tokio::task::JoinHandle<()>> = stream::iter(0..spec.positions.len())
        .map(|bot| connect_bot(url.clone(), map.cell(bot), shards[bot % SHARDS].clone(), events.clone()))
        .buffer_unordered(CONNECT_BATCH)
        .try_collect()
        .await?;
    let connect_time = connect_start.elapsed();

    let publisher =
        options(&events).client_capacity(64 * 1024).connect(url.clone()).await.context("connecting the publisher")?;
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
    let mut window: Option<(Instant, f64, f64, serde_json::Value)> = None;
    let start = Instant::now();
    let (measured, server_cpu_s, swarm_cpu_s, server_rss_kib, varz_start, varz_end) = loop {
        interval.tick().await;
        let elapsed = start.elapsed();
        let in_window = elapsed >= spec.warmup;
        if in_window && window.is_none() {
            let varz = server.varz().await?;
            window = Some((
                Instant::now(),
                cpu_seconds(server.pid()).context("nats-server's CPU time")?,
                cpu_seconds(std::process::id()).context("this process's CPU time")?,
                varz,
            ));
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
            break (measured, server_cpu_s, swarm_cpu_s, server_rss_kib, varz_start, varz_end);
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
    };
    publisher.flush().await.context("flushing the publisher")?;

    // Deliveries stop: all expected have come, or nothing came for a second.
    let drain_start = Instant::now();
    let mut last = totals(&shards);
    let mut last_change = Instant::now();
    while last.0 < expected && last_change.elapsed() < Duration::from_secs(1) && drain_start.elapsed() < DRAIN_TIMEOUT {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = totals(&shards);
        if now != last {
            last = now;
            last_change = Instant::now();
        }
    }
    let drain_time = drain_start.elapsed();
    let drain_timed_out = last.0 < expected && last_change.elapsed() < Duration::from_secs(1);

    let server_slow_consumers = varz_u64(&server.varz().await?, "slow_consumers");
    for reader in &readers {
        reader.abort();
    }
    for reader in readers {
        let _ = reader.await;
    }
    drop(publisher);
    drop(server);

    let mut latency_us = new_histogram();
    let mut delivered = 0;
    for shard in &shards {
        let shard = shard.lock().expect("shard lock");
        latency_us.add(&shard.latency_us).expect("same bounds");
        delivered += shard.delivered;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_and_subjects() {
        assert_eq!(cell_of((0.0, 0.0), 40.0), (0, 0));
        assert_eq!(cell_of((39.9, 40.0), 40.0), (0, 1));
        assert_eq!(cell_of((-0.5, 81.0), 40.0), (-1, 2));
        assert_eq!(subject_of((3, -1)), "cell.3.-1");
        let area = area_of((5, 7));
        assert_eq!(area[0], (4, 6));
        assert_eq!(area[4], (5, 7));
        assert_eq!(area[8], (6, 8));
        let mut sorted = area.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 9);
    }

    #[test]
    fn expected_deliveries_on_a_small_layout() {
        // Cells 10 tiles wide. Bots: a and b in cell (0, 0), c in (1, 1), d in (2, 0), e far
        // away in (9, 9).
        let positions = [(1.0, 1.0), (9.0, 5.0), (15.0, 15.0), (25.0, 3.0), (95.0, 95.0)];
        let map = SubscriptionMap::new(&positions, 10.0);
        assert_eq!(map.cell(0), (0, 0));
        assert_eq!(map.cell(3), (2, 0));
        // Subscribed to cell (0, 0): a, b, c (its 3x3 reaches (0, 0)); d's reaches only x 1..=3.
        assert_eq!(map.subscribers((0, 0)), 3);
        // (1, 1): a, b, c, d.
        assert_eq!(map.subscribers((1, 1)), 4);
        // (2, 0): c, d.
        assert_eq!(map.subscribers((2, 0)), 2);
        assert_eq!(map.subscribers((9, 9)), 1);
        assert_eq!(map.subscribers((5, 5)), 0);
        // An event at a: 3; at c: 4; at d: 2; at e: 1 (itself).
        assert_eq!(map.expected([0, 2, 3, 4]), 3 + 4 + 2 + 1);
        assert_eq!(map.expected([1, 1]), 6);
    }

    #[test]
    fn seeded_positions_are_uniform_and_repeatable() {
        let a = uniform_positions(1000, 2048.0, 1024.0, 7);
        assert_eq!(a, uniform_positions(1000, 2048.0, 1024.0, 7));
        assert!(a.iter().all(|&(x, y)| (0.0..2048.0).contains(&x) && (0.0..1024.0).contains(&y)));
        let mut rng = Rng::new(1);
        assert!((0..1000).all(|_| rng.below(3) < 3));
    }
}
