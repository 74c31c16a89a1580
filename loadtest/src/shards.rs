//! Shards: several servers sharing one hunt through NATS JetStream (`veltrix-bots --shards N`).
//! What the swarm needs beyond one server: where each bot plays, the claims of FirstFinder vaults
//! and who heard of them where (to time a claim on one shard at the bots of the others), and a
//! probe of the nats-server the shards decide claims in.
//!
//! A vault's first claim is timed from the intended send of the dig that won it (the one its
//! `LootGranted` answered), the time the benchmark counts every dig's round trip from: what the
//! player who dug feels. It is heard of by every bot (`VaultClaimed`, to all on every shard) and
//! by the bots near the vault (`VaultDiscovered`); a bot's first of the two for a vault is its
//! receipt. On the winner's shard that is the claim's own broadcast; on the others it comes
//! through the ledger's watch ([`ClaimFigures::cross_shard`]).

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use anyhow::Context;
use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::{
    clock::monotonic_ns,
    report::{Latency, histogram, micros},
};

/// The shards' JetStream bucket (`Cluster.Bucket`).
pub const BUCKET: &str = "veltrix";
/// The probe's bucket, on the same nats-server: its own, so that its keys are no claims.
pub const PROBE_BUCKET: &str = "veltrix-probe";
/// The probe asks this often during the measured window.
const PROBE_EVERY: Duration = Duration::from_millis(100);

/// How many servers a run has and whether they share the hunt through NATS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Topology {
    pub shards: usize,
    /// One server through NATS too (more than one always are).
    pub cluster: bool,
    /// The nats-servers: 1, or 3 in one JetStream cluster with the buckets on all three
    /// (`Cluster.Replicas: 3`, as docs/scale-out.md says to deploy).
    pub nats_nodes: usize,
}

impl Default for Topology {
    fn default() -> Self {
        Self { shards: 1, cluster: false, nats_nodes: 1 }
    }
}

impl Topology {
    /// Whether the servers decide claims in NATS.
    pub fn clustered(&self) -> bool {
        self.cluster || self.shards > 1
    }

    /// The shard bot `bot` plays on: round-robin.
    pub fn shard_of(&self, bot: u32) -> usize {
        bot as usize % self.shards.max(1)
    }

    /// The buckets' replicas: one on each nats-server.
    pub fn replicas(&self) -> usize {
        self.nats_nodes
    }

    /// How the report files of this topology are told apart: nothing for one server alone.
    pub fn file_suffix(&self) -> String {
        let servers = match (self.shards, self.clustered()) {
            (1, false) => return String::new(),
            (1, true) => "-1shard-cluster".to_string(),
            (n, _) => format!("-{n}shards"),
        };
        match self.nats_nodes {
            1 => servers,
            n => format!("{servers}-{n}nats"),
        }
    }
}

/// A vault's first claim as its winner heard of it.
#[derive(Debug, Clone, Copy)]
struct Win {
    bot: u32,
    /// The winning dig's intended send.
    intended: u64,
    /// Its `LootGranted`: when it came, and the commit stamp of its frame.
    received: u64,
    committed: Option<u64>,
}

/// A bot heard of a vault's first claim (its first `VaultClaimed` or `VaultDiscovered` of it).
#[derive(Debug, Clone, Copy)]
pub struct Heard {
    pub vault: u32,
    /// The winner, as the message names it.
    pub by: u32,
    pub bot: u32,
    pub received: u64,
    pub committed: Option<u64>,
}

/// The first claims of FirstFinder vaults and who heard of them: filled by the bots, read once
/// they are done.
pub struct ClaimLog {
    topology: Topology,
    wins: Mutex<HashMap<u32, Win>>,
    heard: Mutex<Vec<Heard>>,
}

impl ClaimLog {
    pub fn new(topology: Topology) -> Self {
        Self { topology, wins: Default::default(), heard: Default::default() }
    }

    /// Bot `bot`'s dig, meant for `intended`, claimed `vault` (its `LootGranted` came now, in a
    /// frame committed at `committed`).
    pub fn won(&self, vault: u32, bot: u32, intended: u64, received: u64, committed: Option<u64>) {
        self.wins.lock().insert(vault, Win { bot, intended, received, committed });
    }

    /// What a bot heard, at its end.
    pub fn heard(&self, heard: &mut Vec<Heard>) {
        self.heard.lock().append(heard);
    }

    /// The claims whose winning dig was meant within `[from, until)`, timed at every bot.
    pub fn figures(&self, from: u64, until: u64) -> ClaimFigures {
        let wins = self.wins.lock();
        let heard = self.heard.lock();
        let mut h = [(); 5].map(|_| histogram());
        let [cross, cross_commit, same, claim_commit, claim_answer] = &mut h;
        let in_window = |w: &Win| w.intended >= from && w.intended < until;
        let mut timed = 0;
        for win in wins.values().filter(|w| in_window(w)) {
            timed += 1;
            record(claim_answer, win.received.checked_sub(win.intended));
            record(claim_commit, win.committed.and_then(|c| c.checked_sub(win.intended)));
        }
        let mut shards_told: HashSet<(u32, usize)> = HashSet::new();
        let mut vaults_elsewhere: HashSet<u32> = HashSet::new();
        for heard in heard.iter() {
            let Some(win) = wins.get(&heard.vault).filter(|w| w.bot == heard.by && in_window(w)) else { continue };
            let latency = heard.received.saturating_sub(win.intended);
            let shard = self.topology.shard_of(heard.bot);
            if shard == self.topology.shard_of(win.bot) {
                record(same, Some(latency));
                continue;
            }
            record(cross, Some(latency));
            vaults_elsewhere.insert(heard.vault);
            // The other shard's tick that told it: once per vault and shard.
            if shards_told.insert((heard.vault, shard)) {
                record(cross_commit, heard.committed.and_then(|c| c.checked_sub(win.intended)));
            }
        }
        ClaimFigures {
            vaults_claimed: timed,
            vaults_heard_elsewhere: vaults_elsewhere.len() as u64,
            cross_shard: Latency::of(cross),
            cross_shard_commit: Latency::of(cross_commit),
            same_shard: Latency::of(same),
            claim_commit: Latency::of(claim_commit),
            claim_answer: Latency::of(claim_answer),
        }
    }
}

fn record(h: &mut Histogram<u64>, ns: Option<u64>) {
    if let Some(ns) = ns {
        h.saturating_record(micros(ns));
    }
}

/// The first claims of the measured window (winning dig meant in it), each timed from that
/// dig's intended send.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClaimFigures {
    /// Vaults first claimed by a dig meant in the window.
    pub vaults_claimed: u64,
    /// Of those, the vaults heard of by bots on another shard.
    pub vaults_heard_elsewhere: u64,
    /// The cross-shard event: to its receipt by each bot on another shard (one sample per bot
    /// and vault).
    pub cross_shard: Latency,
    /// To the commit of the other shard's tick that told it (one sample per vault and shard; the
    /// commit stamp of the benchmark build).
    pub cross_shard_commit: Latency,
    /// To its receipt by the other bots of the winner's shard.
    pub same_shard: Latency,
    /// To the commit of the winner's shard's tick that made the claim (after the ledger
    /// answered).
    pub claim_commit: Latency,
    /// To the winner's `LootGranted` (the winning dig's round trip).
    pub claim_answer: Latency,
}

/// One shard's figures over the measured window.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ShardFigures {
    pub shard: usize,
    pub bots: usize,
    pub dig_round_trip: Latency,
    pub fanout: Latency,
    /// CPU over the window, in cores: user space and kernel.
    pub cpu_user_cores: f64,
    pub cpu_kernel_cores: f64,
    /// Resident memory at the end of the window.
    pub rss_kib: u64,
}

/// The nats-server the shards decide claims in, over the measured window.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NatsFigures {
    pub version: String,
    /// nats-servers in the JetStream cluster (the CPU and memory are their sums).
    #[serde(default = "one")]
    pub nodes: usize,
    pub cpu_user_cores: f64,
    pub cpu_kernel_cores: f64,
    /// Resident memory at the end of the window.
    pub rss_kib: u64,
    /// The probe: a key created in a bucket of its own every 100 ms, as a shard creates a claim
    /// (a JetStream publish stored with fsync, acknowledged): from the ask to the acknowledgement,
    pub probe_create: Latency,
    /// and from the ask to the key's arrival through a watch of the bucket (how a shard learns
    /// another's claim).
    pub probe_watch: Latency,
}

fn one() -> usize {
    1
}

/// What a run with shards (or one server through NATS, or FirstFinder vaults) adds to the report.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ShardsReport {
    pub shards: usize,
    /// Whether the servers decided claims in NATS.
    pub cluster: bool,
    /// Each shard's bots, round trips, fan-out, CPU and memory (one server: its own).
    pub per_shard: Vec<ShardFigures>,
    pub claims: ClaimFigures,
    pub nats: Option<NatsFigures>,
}

impl ShardsReport {
    /// The report's table rows: (measure, value).
    pub fn rows(&self) -> Vec<(String, String)> {
        let mut rows = vec![(
            "shards".to_string(),
            format!(
                "{} ({})",
                self.shards,
                if self.cluster { "claims decided in NATS JetStream" } else { "one server alone" }
            ),
        )];
        for s in &self.per_shard {
            rows.push((
                format!("shard {}: {} bots", s.shard + 1, s.bots),
                format!(
                    "dig round trip {}; fan-out {}; CPU {:.2} user + {:.2} kernel cores; RSS {} KiB",
                    s.dig_round_trip.cells(),
                    s.fanout.cells(),
                    s.cpu_user_cores,
                    s.cpu_kernel_cores,
                    s.rss_kib
                ),
            ));
        }
        let c = &self.claims;
        rows.push((
            "vaults first claimed (winning dig in the window)".into(),
            format!("{}, {} of them heard of on another shard", c.vaults_claimed, c.vaults_heard_elsewhere),
        ));
        rows.push(("cross-shard event: winning dig sent to receipt, other shards".into(), c.cross_shard.cells()));
        rows.push(("  ... to the other shard's commit".into(), c.cross_shard_commit.cells()));
        rows.push(("claim heard on the winner's shard (other bots)".into(), c.same_shard.cells()));
        rows.push(("claim: winning dig sent to its shard's commit".into(), c.claim_commit.cells()));
        rows.push(("claim: winning dig sent to LootGranted".into(), c.claim_answer.cells()));
        if let Some(n) = &self.nats {
            let nodes = if n.nodes > 1 { format!(", {} nodes, the buckets on each", n.nodes) } else { String::new() };
            rows.push((
                format!("nats-server ({}{nodes})", n.version),
                format!(
                    "CPU {:.2} user + {:.2} kernel cores; RSS {} KiB",
                    n.cpu_user_cores, n.cpu_kernel_cores, n.rss_kib
                ),
            ));
            rows.push(("nats probe: KV create, ask to acknowledgement".into(), n.probe_create.cells()));
            rows.push(("nats probe: KV create, ask to watch receipt".into(), n.probe_watch.cells()));
        }
        rows
    }
}

/// The probe's findings: create round trips and watch deliveries, in microseconds.
pub struct Probe {
    pub create: Latency,
    pub watch: Latency,
}

/// Creates a key in [`PROBE_BUCKET`] (on `replicas` nodes, as the shards' buckets) every
/// [`PROBE_EVERY`] from `from` to `until` (monotonic nanoseconds), each timed to its
/// acknowledgement and to its arrival through a watch. `urls`: the nats-servers', comma-separated.
pub async fn probe(urls: String, replicas: usize, from: u64, until: u64) -> anyhow::Result<Probe> {
    let urls: Vec<&str> = urls.split(',').collect();
    let client = async_nats::connect(urls).await.context("the probe connects to NATS")?;
    let js = jetstream::new(client);
    let store = js
        .create_key_value(kv::Config {
            bucket: PROBE_BUCKET.into(),
            history: 1,
            storage: jetstream::stream::StorageType::File,
            num_replicas: replicas,
            ..Default::default()
        })
        .await
        .context("the probe's bucket")?;
    let sent: std::sync::Arc<Mutex<HashMap<String, u64>>> = Default::default();
    let watch_latency = std::sync::Arc::new(Mutex::new(histogram()));
    let mut entries = store.watch_all().await.context("the probe's watch")?;
    let watcher = {
        let (sent, watch_latency) = (sent.clone(), watch_latency.clone());
        tokio::spawn(async move {
            while let Some(Ok(entry)) = entries.next().await {
                let now = monotonic_ns();
                if let Some(at) = sent.lock().get(&entry.key) {
                    watch_latency.lock().saturating_record(micros(now.saturating_sub(*at)));
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_nanos(from.saturating_sub(monotonic_ns()))).await;
    let mut create = histogram();
    let mut interval = tokio::time::interval(PROBE_EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0u64;
    while monotonic_ns() < until {
        interval.tick().await;
        n += 1;
        let key = format!("k{n}");
        let at = monotonic_ns();
        sent.lock().insert(key.clone(), at);
        store.create(&key, n.to_le_bytes().to_vec().into()).await.context("the probe's create")?;
        create.saturating_record(micros(monotonic_ns().saturating_sub(at)));
    }
    // The last keys' arrivals.
    tokio::time::sleep(Duration::from_millis(500)).await;
    watcher.abort();
    let watch = Latency::of(&watch_latency.lock());
    Ok(Probe { create: Latency::of(&create), watch })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_timed_at_other_shards_from_the_winning_dig() {
        let topology = Topology { shards: 2, cluster: true, nats_nodes: 1 };
        let log = ClaimLog::new(topology);
        let ms = 1_000_000;
        // Vault 1 won by bot 0 (shard 0) with a dig meant at 100 ms, in the window.
        log.won(1, 0, 100 * ms, 140 * ms, Some(130 * ms));
        // Vault 2 won before the window: not timed.
        log.won(2, 2, 5 * ms, 40 * ms, None);
        let mut heard = vec![
            // Bot 1 (shard 1): 60 ms after the dig; bot 3 (shard 1) 70 ms, same tick.
            Heard { vault: 1, by: 0, bot: 1, received: 160 * ms, committed: Some(150 * ms) },
            Heard { vault: 1, by: 0, bot: 3, received: 170 * ms, committed: Some(150 * ms) },
            // Bot 2 (shard 0, the winner's): 45 ms.
            Heard { vault: 1, by: 0, bot: 2, received: 145 * ms, committed: Some(130 * ms) },
            Heard { vault: 2, by: 2, bot: 1, received: 50 * ms, committed: None },
            // A name that is not the winner's: not timed.
            Heard { vault: 1, by: 5, bot: 1, received: 161 * ms, committed: None },
        ];
        log.heard(&mut heard);
        let f = log.figures(50 * ms, 1000 * ms);
        assert_eq!((f.vaults_claimed, f.vaults_heard_elsewhere), (1, 1));
        assert_eq!(f.cross_shard.count, 2);
        assert!((f.cross_shard.p50_ms - 60.0).abs() < 0.1, "{:?}", f.cross_shard);
        assert!((f.cross_shard.max_ms - 70.0).abs() < 0.1, "{:?}", f.cross_shard);
        assert_eq!(f.cross_shard_commit.count, 1, "one commit per vault and shard");
        assert!((f.cross_shard_commit.max_ms - 50.0).abs() < 0.1);
        assert_eq!(f.same_shard.count, 1);
        assert!((f.claim_commit.max_ms - 30.0).abs() < 0.1);
        assert!((f.claim_answer.max_ms - 40.0).abs() < 0.1);
    }

    #[test]
    fn bots_go_round_robin_and_files_say_the_topology() {
        let t = Topology { shards: 3, cluster: true, nats_nodes: 1 };
        assert_eq!((0..6).map(|b| t.shard_of(b)).collect::<Vec<_>>(), [0, 1, 2, 0, 1, 2]);
        assert_eq!(t.file_suffix(), "-3shards");
        assert_eq!(Topology::default().file_suffix(), "");
        assert!(!Topology::default().clustered());
        assert_eq!(Topology { shards: 1, cluster: true, nats_nodes: 1 }.file_suffix(), "-1shard-cluster");
        assert_eq!(Topology { shards: 3, cluster: false, nats_nodes: 3 }.file_suffix(), "-3shards-3nats");
    }
}
