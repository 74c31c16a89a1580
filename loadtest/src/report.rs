//! What a swarm run measured: latency histograms (HDR, microseconds), the server's own figures,
//! and the report printed as a table and written as JSON.

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// Histograms the bots record into (microseconds, 3 significant digits, up to 100 s).
pub struct Recorder {
    fanout: Mutex<Histogram<u64>>,
    dig: Mutex<Histogram<u64>>,
    nearby: Mutex<Histogram<u64>>,
    moves: Mutex<Histogram<u64>>,
    reconnect: Mutex<Histogram<u64>>,
    /// Per clue drop: the latency of each bot's copy (from the tick's commit), and how many
    /// bots got it.
    clues: Vec<Mutex<(Histogram<u64>, u64)>>,
    /// With shards: each shard's dig round trips and fan-out (also in the pooled histograms).
    per_shard: Vec<Mutex<(Histogram<u64>, Histogram<u64>)>>,
}

pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid bounds")
}

pub(crate) fn micros(ns: u64) -> u64 {
    (ns / 1000).max(1)
}

impl Recorder {
    pub fn new(clue_drops: usize) -> Self {
        Self::sharded(clue_drops, 1)
    }

    /// A recorder for bots spread over `shards` servers: per shard as well as pooled.
    pub fn sharded(clue_drops: usize, shards: usize) -> Self {
        let per_shard = if shards > 1 { shards } else { 0 };
        Self {
            fanout: Mutex::new(histogram()),
            dig: Mutex::new(histogram()),
            nearby: Mutex::new(histogram()),
            moves: Mutex::new(histogram()),
            reconnect: Mutex::new(histogram()),
            clues: (0..clue_drops).map(|_| Mutex::new((histogram(), 0))).collect(),
            per_shard: (0..per_shard).map(|_| Mutex::new((histogram(), histogram()))).collect(),
        }
    }

    /// Fan-out samples of a bot on `shard`.
    pub fn record_fanout(&self, shard: usize, samples_ns: &[u64]) {
        {
            let mut h = self.fanout.lock();
            for &ns in samples_ns {
                h.saturating_record(micros(ns));
            }
        }
        if let Some(s) = self.per_shard.get(shard) {
            let h = &mut s.lock().1;
            for &ns in samples_ns {
                h.saturating_record(micros(ns));
            }
        }
    }

    /// A dig round trip of a bot on `shard`.
    pub fn record_dig(&self, shard: usize, ns: u64) {
        self.dig.lock().saturating_record(micros(ns));
        if let Some(s) = self.per_shard.get(shard) {
            s.lock().0.saturating_record(micros(ns));
        }
    }

    pub fn record_nearby(&self, ns: u64) {
        self.nearby.lock().saturating_record(micros(ns));
    }

    pub fn record_move(&self, ns: u64) {
        self.moves.lock().saturating_record(micros(ns));
    }

    pub fn record_reconnect(&self, ns: u64) {
        self.reconnect.lock().saturating_record(micros(ns));
    }

    pub fn record_clue(&self, drop: usize, ns: Option<u64>) {
        let mut c = self.clues[drop].lock();
        if let Some(ns) = ns {
            c.0.saturating_record(micros(ns));
        }
        c.1 += 1;
    }

    pub fn fanout(&self) -> Latency {
        Latency::of(&self.fanout.lock())
    }
    pub fn dig(&self) -> Latency {
        Latency::of(&self.dig.lock())
    }
    pub fn nearby(&self) -> Latency {
        Latency::of(&self.nearby.lock())
    }
    pub fn moves(&self) -> Latency {
        Latency::of(&self.moves.lock())
    }
    pub fn reconnect(&self) -> Latency {
        Latency::of(&self.reconnect.lock())
    }
    /// Per shard (none with one): its dig round trips and its fan-out.
    pub fn per_shard(&self) -> Vec<(Latency, Latency)> {
        self.per_shard
            .iter()
            .map(|s| {
                let s = s.lock();
                (Latency::of(&s.0), Latency::of(&s.1))
            })
            .collect()
    }
    /// Per drop: its latencies and how many bots got it.
    pub fn clues(&self) -> Vec<(Latency, u64)> {
        self.clues
            .iter()
            .map(|c| {
                let c = c.lock();
                (Latency::of(&c.0), c.1)
            })
            .collect()
    }
}

/// Quantiles of a latency histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }

    pub fn cells(&self) -> String {
        if self.count == 0 {
            return "-".into();
        }
        format!("{:.2} / {:.2} / {:.2} ({} samples)", self.p50_ms, self.p99_ms, self.max_ms, self.count)
    }
}

/// The server's tick figures over one phase of the run (from its `/bench` endpoint).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TickPhase {
    pub phase: String,
    pub seconds: f64,
    pub ticks: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Ticks in which the tick thread allocated, and all its allocations in the phase.
    pub ticks_allocating: u64,
    pub allocations: u64,
    /// Server CPU used in the phase, in cores (CPU seconds per second).
    pub server_cpu_cores: f64,
}

/// One clue drop: how long until every bot had it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClueDropReport {
    pub clue: String,
    /// Bots online when it dropped, and bots that got it.
    pub expected: u64,
    pub delivered: u64,
    /// From the tick's commit to the last bot's copy (the broadcast's completion), and quantiles.
    pub completion_ms: f64,
    pub latency: Latency,
}

/// Everything one scenario run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub scenario: String,
    /// The server's executor.
    pub executor: String,
    /// How the server's tick thread was scheduled, as its log said ("real-time priority
    /// (SCHED_FIFO 1)", "normal priority ..."); empty in reports of older builds.
    #[serde(default)]
    pub tick_thread: String,
    pub bots: usize,
    pub connected: usize,
    pub connect_seconds: f64,
    pub connect_failures: u64,
    pub tick_rate: u32,
    pub measured_seconds: f64,
    pub ticks: Vec<TickPhase>,
    pub fanout: Latency,
    pub dig_round_trip: Latency,
    pub dig_seen_nearby: Latency,
    /// A move seen by the mover's neighbours: from the mover's intended send to a neighbour's
    /// receipt of it (sampled: one bot in `bots::MOVE_SAMPLE`).
    #[serde(default)]
    pub move_seen: Latency,
    /// The server's `World.StateUpdateRate` (None: its default).
    #[serde(default)]
    pub state_update_rate: Option<u32>,
    pub clue_drops: Vec<ClueDropReport>,
    pub reconnect: Option<Latency>,
    pub digs_sent: u64,
    pub digs_answered: u64,
    pub window_digs: u64,
    pub window_digs_answered: u64,
    pub moves_sent: u64,
    pub position_corrections: u64,
    /// Frames the server wrote (its `frames_out` counter) and frames the bots read.
    pub frames_sent: u64,
    /// Bytes the server wrote (its `bytes_out` counter).
    pub bytes_sent: u64,
    pub frames_received: u64,
    /// Frames the server wrote in the measured window, per bot online and second.
    #[serde(default)]
    pub frames_per_bot_per_second: f64,
    /// The machine's floor at that frame rate, measured in the same command (`veltrix-bots`).
    #[serde(default)]
    pub floor: Option<FloorSummary>,
    pub messages_received: u64,
    pub server_rss_empty_kib: u64,
    pub server_rss_kib: u64,
    pub rss_per_player_bytes: f64,
    pub server_cpu_cores: f64,
    pub swarm_cpu_cores: f64,
    /// CPU per frame in the window, user space and kernel, for the server (per frame written) and
    /// the swarm (per frame the server wrote, which the bots read).
    #[serde(default)]
    pub cpu_per_frame: Option<CpuPerFrame>,
    /// The tick's commits in the window (the tick waits for each before it delivers): how many
    /// took longer than 5 and 10 ms.
    #[serde(default)]
    pub commits: Option<CommitTimes>,
    /// Times the server logged that a tick overran its budget so far that ticks were skipped.
    pub tick_overruns: u64,
    /// The same fan-out through nats-server, when run (`--peer`).
    #[serde(default)]
    pub peer: Option<PeerSummary>,
    /// With shards (`--shards`, `--cluster`) or FirstFinder vaults: each shard's figures, the
    /// first claims timed across shards, the nats-server's. With shards, the server figures
    /// above are the shards' sums (CPU, memory, frames, commits, overruns) or pooled over them
    /// (latencies), and `ticks` has each shard's phases.
    #[serde(default)]
    pub shards: Option<crate::shards::ShardsReport>,
    /// Events lost: digs never answered (asked again after a reconnect, with their ids) plus
    /// clue copies missing. Frames written to a connection a bot dropped are not counted here:
    /// `frames_sent` against `frames_received` shows them.
    pub lost: u64,
}

/// The service level a run must hold for its bot count to count as served (docs/benchmarks.md):
/// fan-out p99 at most 20 ms, dig round trip p99 at most one tick + 20 ms, tick p99 at most
/// 10 ms in every phase, every due tick run, every bot connected, nothing lost.
pub const SLO_FANOUT_P99_MS: f64 = 20.0;
pub const SLO_TICK_P99_MS: f64 = 10.0;

impl Report {
    /// What this run missed of the service level, in words; empty when it held.
    pub fn slo_misses(&self) -> Vec<String> {
        let mut misses = Vec::new();
        let tick_ms = 1000.0 / f64::from(self.tick_rate.max(1));
        if self.fanout.p99_ms > SLO_FANOUT_P99_MS {
            misses.push(format!("fan-out p99 {:.1} ms > {SLO_FANOUT_P99_MS} ms", self.fanout.p99_ms));
        }
        if self.dig_round_trip.p99_ms > tick_ms + 20.0 {
            misses.push(format!("dig round trip p99 {:.1} ms > {:.1} ms", self.dig_round_trip.p99_ms, tick_ms + 20.0));
        }
        for t in &self.ticks {
            if t.p99_ms > SLO_TICK_P99_MS {
                misses.push(format!("tick p99 {:.1} ms > {SLO_TICK_P99_MS} ms ({})", t.p99_ms, t.phase));
            }
            let due = (t.seconds * f64::from(self.tick_rate)).round() as u64;
            if t.ticks + 1 < due {
                misses.push(format!("{} of {due} ticks run ({})", t.ticks, t.phase));
            }
        }
        if self.tick_overruns > 0 {
            misses.push(format!("{} overruns skipped ticks", self.tick_overruns));
        }
        if self.connected < self.bots {
            misses.push(format!("{} of {} bots connected", self.connected, self.bots));
        }
        if self.lost > 0 {
            misses.push(format!("{} events lost", self.lost));
        }
        misses
    }

    /// The report as a Markdown table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let mut row = |what: &str, value: String| out.push_str(&format!("| {what} | {value} |\n"));
        row(
            "scenario",
            format!(
                "{} ({} bots, {} connected; {} executor; tick thread at {})",
                self.scenario, self.bots, self.connected, self.executor, self.tick_thread
            ),
        );
        row("connect all", format!("{:.1} s, {} failed attempts", self.connect_seconds, self.connect_failures));
        for t in &self.ticks {
            row(
                &format!("tick, {} ({:.1} s)", t.phase, t.seconds),
                format!(
                    "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} ticks; {} ticks allocated ({} allocations); server CPU {:.2} cores",
                    t.p50_ms, t.p99_ms, t.max_ms, t.ticks, t.ticks_allocating, t.allocations, t.server_cpu_cores
                ),
            );
        }
        row("ticks skipped after overruns (server log)", self.tick_overruns.to_string());
        row("fan-out, commit to client (p50 / p99 / max ms)", self.fanout.cells());
        row("dig round trip at the digger", self.dig_round_trip.cells());
        row("dig to vault opened, at players nearby", self.dig_seen_nearby.cells());
        row(
            &format!(
                "move to neighbours, send to receipt (state updates {}/s)",
                self.state_update_rate.map_or("default".into(), |r| r.to_string())
            ),
            self.move_seen.cells(),
        );
        for c in &self.clue_drops {
            row(
                &format!("clue {} to everyone", c.clue),
                format!(
                    "complete in {:.2} ms; {} of {} bots; {}",
                    c.completion_ms,
                    c.delivered,
                    c.expected,
                    c.latency.cells()
                ),
            );
        }
        if let Some(r) = &self.reconnect {
            row("reconnect storm, drop to welcome", r.cells());
        }
        row(
            "digs answered (measured window)",
            format!(
                "{} of {} ({} of {} in all)",
                self.window_digs_answered, self.window_digs, self.digs_answered, self.digs_sent
            ),
        );
        row("frames read / written", format!("{} / {}", self.frames_received, self.frames_sent));
        row("frames per bot per second (window)", format!("{:.1}", self.frames_per_bot_per_second));
        if let Some(f) = &self.floor {
            row(
                "floor: loopback write + read per frame; bots 2 cores allow at this rate",
                format!(
                    "{:.2} + {:.2} us; {:.0} bots; this run's {} bots are {:.2} of it",
                    f.write_us, f.read_us, f.capacity, self.connected, f.share
                ),
            );
        }
        row("lost events", self.lost.to_string());
        let misses = self.slo_misses();
        row("service level", if misses.is_empty() { "held".into() } else { format!("missed: {}", misses.join("; ")) });
        row(
            "server RSS",
            format!(
                "{} KiB ({} KiB empty): {:.0} bytes per player",
                self.server_rss_kib, self.server_rss_empty_kib, self.rss_per_player_bytes
            ),
        );
        row("CPU (cores)", format!("server {:.2}, swarm {:.2}", self.server_cpu_cores, self.swarm_cpu_cores));
        if let Some(c) = &self.commits {
            row("commits over 5 / 10 ms (window)", format!("{} / {} of {}", c.over_5_ms, c.over_10_ms, c.count));
        }
        if let Some(c) = &self.cpu_per_frame {
            row(
                "CPU per frame, user + kernel (us)",
                format!(
                    "server {:.2} + {:.2}, swarm {:.2} + {:.2}",
                    c.server_user_us, c.server_kernel_us, c.swarm_user_us, c.swarm_kernel_us
                ),
            );
        }
        if let Some(shards) = &self.shards {
            for (what, value) in shards.rows() {
                row(&what, value);
            }
        }
        if let Some(p) = &self.peer {
            row(
                "peer: nats-server fan-out (p50 / p99 / max ms)",
                format!(
                    "{}; {} of {} delivered; {:.0} events/s of {} bytes; CPU {:.2} cores",
                    p.fanout.cells(),
                    p.delivered,
                    p.expected,
                    p.events_per_second,
                    p.payload_bytes,
                    p.server_cpu_cores
                ),
            );
            row("ours / peer", format!("fan-out p99 {:.2}x, CPU {:.2}x", p.p99_ratio, p.cpu_ratio));
        }
        format!("| measure | value |\n|---|---|\n{out}")
    }
}

/// The commits of the measured window, from the server's commit-duration histogram.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct CommitTimes {
    pub count: u64,
    pub over_5_ms: u64,
    pub over_10_ms: u64,
}

impl CommitTimes {
    /// The commits between two readings of the histogram's buckets (upper bound in seconds,
    /// cumulative count).
    pub fn between(start: &[(f64, u64)], end: &[(f64, u64)]) -> Self {
        let at = |buckets: &[(f64, u64)], le: f64| buckets.iter().find(|b| b.0 == le).map_or(0, |b| b.1);
        let delta = |le: f64| at(end, le).saturating_sub(at(start, le));
        let count = delta(f64::INFINITY);
        Self { count, over_5_ms: count - delta(0.005).min(count), over_10_ms: count - delta(0.01).min(count) }
    }
}

/// CPU microseconds per frame written in the measured window.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct CpuPerFrame {
    pub server_user_us: f64,
    pub server_kernel_us: f64,
    pub swarm_user_us: f64,
    pub swarm_kernel_us: f64,
}

impl CpuPerFrame {
    pub fn of(server: crate::clock::CpuSplit, swarm: crate::clock::CpuSplit, frames: u64) -> Self {
        let us = |seconds: f64| seconds * 1e6 / frames.max(1) as f64;
        Self {
            server_user_us: us(server.user),
            server_kernel_us: us(server.system),
            swarm_user_us: us(swarm.user),
            swarm_kernel_us: us(swarm.system),
        }
    }
}

/// The floor (`crate::floor`) beside a run: what loopback TCP costs per frame on this machine
/// and how many bots that allows at the run's frame rate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FloorSummary {
    pub write_us: f64,
    pub read_us: f64,
    /// Bots two cores could serve at the run's frames per bot per second, one write and one
    /// read a frame, if those system calls were all the work.
    pub capacity: f64,
    /// The run's connected bots as a share of that capacity.
    pub share: f64,
}

impl FloorSummary {
    pub fn of(floor: &crate::floor::Floor, report: &Report) -> Self {
        let capacity = floor.capacity(2.0, report.frames_per_bot_per_second.max(f64::MIN_POSITIVE));
        FloorSummary {
            write_us: floor.write_us,
            read_us: floor.read_us,
            capacity,
            share: report.connected as f64 / capacity,
        }
    }
}

/// The NATS peer's figures next to ours.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerSummary {
    pub events_per_second: f64,
    pub payload_bytes: usize,
    pub fanout: Latency,
    pub delivered: u64,
    pub expected: u64,
    pub late_or_lost: u64,
    /// nats-server's CPU over its measured window, in cores.
    pub server_cpu_cores: f64,
    /// Our fan-out p99 over the peer's, and our server's CPU over nats-server's.
    pub p99_ratio: f64,
    pub cpu_ratio: f64,
}
