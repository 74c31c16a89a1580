//! The server's metrics, served in the Prometheus text format on the admin listener.
//! Everything here is atomic: the tick thread and the network threads update it without locks.

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use crate::reasons::{Disconnect, Dropped};

/// A `reason` label.
pub type Reason = Vec<(&'static str, &'static str)>;

pub struct Metrics {
    registry: Registry,
    pub players_online: Gauge,
    pub connections_open: Gauge,
    pub tick_duration_seconds: Histogram,
    /// The store's commit at the start of PostTick (ticks that changed something).
    pub commit_duration_seconds: Histogram,
    /// 1 while the last commit worked, 0 while commits fail (a full disk): alert on 0.
    pub store_writable: Gauge,
    /// Commits that failed (each tick of an outage tries again).
    pub store_commit_failures: Counter,
    /// Bytes of committed writes in the store's log that the store file has not taken yet.
    pub store_log_behind_bytes: Gauge,
    /// Shards only: 1 while the ledger (NATS JetStream) can be reached, 0 while claims are
    /// refused for want of it.
    pub cluster_ledger_available: Gauge,
    /// Shards only: players of other shards in this shard's world now.
    pub cluster_remote_players: Gauge,
    pub cluster_remote_players_near: Gauge,
    /// Shards only: players whose changed records are not in NATS yet.
    pub cluster_records_unsent: Gauge,
    pub frames_in: Counter,
    pub bytes_in: Counter,
    pub frames_out: Counter,
    pub bytes_out: Counter,
    /// Writes of frames to client sockets: a client that fell behind gets its queued frames in
    /// one write, so frames_out / socket_writes shows how far behind clients read.
    pub socket_writes: Counter,
    /// Client messages dropped, by reason (`rate_limited`, `malformed`, ...).
    pub messages_dropped: Family<Reason, Counter>,
    /// Connections ended, by reason.
    pub disconnects: Family<Reason, Counter>,
    /// Network events waiting for the tick thread.
    pub inbound_queue_depth: Gauge,
    /// Frames already queued, before the last tick's, for the slowest client sent a frame.
    pub outbound_queue_depth_max: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("veltrix");
        let m = Self {
            players_online: Gauge::default(),
            connections_open: Gauge::default(),
            tick_duration_seconds: Histogram::new([
                0.0005, 0.001, 0.002, 0.005, 0.010, 0.020, 0.033, 0.050, 0.100, 0.250,
            ]),
            commit_duration_seconds: Histogram::new([
                0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.010, 0.020, 0.050, 0.100,
            ]),
            store_writable: Gauge::default(),
            store_commit_failures: Counter::default(),
            store_log_behind_bytes: Gauge::default(),
            cluster_ledger_available: Gauge::default(),
            cluster_remote_players: Gauge::default(),
            cluster_remote_players_near: Gauge::default(),
            cluster_records_unsent: Gauge::default(),
            frames_in: Counter::default(),
            bytes_in: Counter::default(),
            frames_out: Counter::default(),
            bytes_out: Counter::default(),
            socket_writes: Counter::default(),
            messages_dropped: Family::default(),
            disconnects: Family::default(),
            inbound_queue_depth: Gauge::default(),
            outbound_queue_depth_max: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register("players_online", "Players in the world", m.players_online.clone());
        registry.register("connections_open", "Open WebSocket connections, joined or not", m.connections_open.clone());
        registry.register("tick_duration_seconds", "Time spent running one tick", m.tick_duration_seconds.clone());
        registry.register(
            "commit_duration_seconds",
            "Time spent committing a tick's changes to the store",
            m.commit_duration_seconds.clone(),
        );
        registry.register(
            "store_writable",
            "1 while the store commits, 0 while its commits fail (claims are refused meanwhile)",
            m.store_writable.clone(),
        );
        registry.register(
            "store_log_behind_bytes",
            "Bytes of committed writes in the store's log that the store file has not taken yet (it takes them every \
             100 ms: a value that keeps growing means the file cannot be written)",
            m.store_log_behind_bytes.clone(),
        );
        registry.register(
            "cluster_ledger_available",
            "Shards: 1 while NATS JetStream decides claims, 0 while claims are refused for want of it",
            m.cluster_ledger_available.clone(),
        );
        registry.register(
            "cluster_remote_players",
            "Shards: players online on the other shards, as this shard last heard",
            m.cluster_remote_players.clone(),
        );
        registry.register(
            "cluster_remote_players_near",
            "Shards: players of other shards in this shard's world (in the areas around its own players)",
            m.cluster_remote_players_near.clone(),
        );
        registry.register(
            "cluster_records_unsent",
            "Shards: players whose changed records are not in NATS yet (they would be missing elsewhere if this shard died now)",
            m.cluster_records_unsent.clone(),
        );
        registry.register(
            "store_commit_failures",
            "Commits of a tick's changes that failed (tried again with the next tick's)",
            m.store_commit_failures.clone(),
        );
        registry.register("frames_in", "WebSocket frames received", m.frames_in.clone());
        registry.register("bytes_in", "Payload bytes received", m.bytes_in.clone());
        registry.register("frames_out", "WebSocket frames sent", m.frames_out.clone());
        registry.register("bytes_out", "Payload bytes sent", m.bytes_out.clone());
        registry.register(
            "socket_writes",
            "Writes of queued frames to client sockets (several frames per write for a client that fell behind)",
            m.socket_writes.clone(),
        );
        registry.register("messages_dropped", "Client messages dropped, by reason", m.messages_dropped.clone());
        registry.register("disconnects", "Connections closed, by reason", m.disconnects.clone());
        registry.register(
            "inbound_queue_depth",
            "Network events waiting for the tick thread",
            m.inbound_queue_depth.clone(),
        );
        registry.register(
            "outbound_queue_depth_max",
            "Frames already queued for the slowest client sent a frame, in the writer threads' last batches",
            m.outbound_queue_depth_max.clone(),
        );
        m.store_writable.set(1);
        Self { registry, ..m }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }

    pub fn disconnect(&self, reason: Disconnect) {
        self.disconnects.get_or_create(&vec![("reason", reason.label())]).inc();
    }

    pub fn dropped(&self, reason: Dropped, n: u64) {
        self.messages_dropped.get_or_create(&vec![("reason", reason.label())]).inc_by(n);
    }
}
