//! The server's `config.json` at the server root: written with defaults on first start,
//! refused with the key path and what was expected when a value is wrong.

use std::{collections::BTreeMap, fmt, fs, io, ops::RangeInclusive, path::Path};

use serde::{Deserialize, Serialize};

/// Tiles along one side of the world at most.
pub const MAX_WORLD_SIDE: u64 = 65_536;

/// Tiles of the world at most (4096 x 4096): one byte each, and the hunt's walking-distance
/// fields take four bytes a tile each.
pub const MAX_WORLD_TILES: u64 = 4096 * 4096;

/// Which bevy_ecs executor runs the schedules. Both give identical results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum Executor {
    /// Systems run one after the other on the tick thread.
    SingleThreaded,
    /// Systems without conflicting data access run in parallel on the compute task pool.
    MultiThreaded,
    /// SingleThreaded on a machine of 2 cores or fewer, MultiThreaded on more.
    // (The text above is `--help`'s: [`Executor::SINGLE_UP_TO_CORES`] says 2.)
    Auto,
}

impl Executor {
    /// Up to this many cores `Auto` is SingleThreaded. On two cores the network's and the
    /// writers' threads (one per core each) keep both busy, so each hand-off between the tick
    /// thread and the compute pool waits for a core: at 5,000 players the tick's threads
    /// waited longer than they ran, and SingleThreaded held the tick's p99 under 10 ms where
    /// MultiThreaded did not (docs/benchmarks.md, "The executor on two cores").
    pub const SINGLE_UP_TO_CORES: usize = 2;

    /// The executor this one is on a machine of `cores` cores.
    pub fn on_cores(self, cores: usize) -> Executor {
        match self {
            Executor::Auto if cores <= Self::SINGLE_UP_TO_CORES => Executor::SingleThreaded,
            Executor::Auto => Executor::MultiThreaded,
            chosen => chosen,
        }
    }

    /// The executor this one is on this machine.
    pub fn here(self) -> Executor {
        self.on_cores(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

impl From<Executor> for veltrix_sdk::runtime::Executor {
    fn from(executor: Executor) -> Self {
        match executor.here() {
            Executor::SingleThreaded => Self::SingleThreaded,
            Executor::MultiThreaded | Executor::Auto => Self::MultiThreaded,
        }
    }
}

/// How the operating system schedules the tick thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum TickPriority {
    /// `RealTime` where the system allows it and the machine has 2 cores or more, `Normal`
    /// otherwise; the log says which.
    Auto,
    /// The lowest real-time priority (`SCHED_FIFO` 1): the tick runs as soon as it is due,
    /// ahead of every normal thread. The server does not start if the system refuses it.
    RealTime,
    /// Like every other thread.
    Normal,
}

/// One entry of the `Mods` map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ModSettings {
    /// Load the mod (true) or not (false), whatever its `DisabledByDefault` says.
    pub enabled: bool,
}

/// How players prove who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum Auth {
    /// A name is enough: for local play and tests.
    Offline,
    /// A token signed with the server's secret (`token <player>` on the console prints one).
    Token,
}

/// The `Network` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Address the player endpoint binds to (the port is `Port`).
    pub bind: String,
    /// Network threads (event loops over the connections); 0 for one per core.
    pub threads: u32,
    /// Threads writing the tick's frames to the sockets; 0 (the default) for one per core.
    pub writer_threads: u32,
    /// Largest WebSocket frame a client may send.
    pub max_frame_bytes: u32,
    /// Messages per second a client may send; the excess is dropped.
    pub max_messages_per_second: u32,
    /// Erroneous frames before the connection is closed.
    pub max_errors: u32,
    /// Seconds without any frame from a client before it is disconnected.
    pub idle_timeout_seconds: u32,
    /// Seconds between the server's pings.
    pub ping_interval_seconds: u32,
    /// Seconds a client has to send Hello.
    pub handshake_timeout_seconds: u32,
    /// Frames queued for a client before it counts as too slow and is disconnected.
    pub max_queued_frames: u32,
    /// Connections from one IP address.
    pub max_connections_per_ip: u32,
    /// Bytes the WebSocket layer reads at once per connection (memory per connection).
    pub read_buffer_bytes: u32,
    /// The kernel's send buffer per connection (SO_SNDBUF); 0 leaves the system default.
    pub send_buffer_bytes: u32,
    /// The least time between two polls of a network thread, in microseconds: under load a
    /// thread wakes once per interval for everything that came, not once per message; 0 polls
    /// again at once.
    pub poll_interval_micros: u32,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            bind: "0.0.0.0".into(),
            threads: 0,
            writer_threads: 0,
            max_frame_bytes: 16 * 1024,
            max_messages_per_second: 60,
            max_errors: 10,
            idle_timeout_seconds: 30,
            ping_interval_seconds: 10,
            handshake_timeout_seconds: 10,
            max_queued_frames: 64,
            max_connections_per_ip: 16,
            read_buffer_bytes: 128,
            send_buffer_bytes: 0,
            poll_interval_micros: 1000,
        }
    }
}

/// Where the tile world comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Terrain {
    /// Ground everywhere.
    Flat,
    /// Ground, rock and water from `Seed`: the same seed and size give the same world.
    Generated,
}

/// The `World` section: the tile world and how players move in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields, default)]
pub struct WorldConfig {
    /// `Flat` or `Generated`; ignored when `Map` names a map.
    pub terrain: Terrain,
    /// Seed of the generated terrain.
    pub seed: u64,
    /// A map to load instead: `universe/worlds/<Map>/map.txt` (docs/worlds.md). Its size wins
    /// over Width and Depth.
    pub map: String,
    /// Tiles along x.
    pub width: u32,
    /// Tiles along y.
    pub depth: u32,
    /// Where players appear, in tiles.
    pub spawn_x: f32,
    pub spawn_y: f32,
    /// Players appear at a point within this many tiles of the spawn, the same for a player
    /// every time (0: exactly at the spawn).
    pub spawn_radius: f32,
    /// Fastest a player may move, in tiles per second.
    pub max_speed: f32,
    /// Players within this many tiles of each other see each other move.
    pub interest_radius: f32,
    /// A seen player stays seen until `interest_radius + interest_hysteresis` away.
    pub interest_hysteresis: f32,
    /// How many times a second a player is told where the players it sees have moved (their
    /// moves coalesced in between); `TickRate` or more: every tick.
    pub state_update_rate: u32,
}

impl Default for WorldConfig {
    fn default() -> Self {
        Self {
            terrain: Terrain::Generated,
            seed: 1,
            map: String::new(),
            width: 512,
            depth: 512,
            spawn_x: 256.5,
            spawn_y: 256.5,
            spawn_radius: 0.0,
            max_speed: 8.0,
            interest_radius: 32.0,
            interest_hysteresis: 4.0,
            state_update_rate: DEFAULT_STATE_UPDATE_RATE,
        }
    }
}

/// `World.StateUpdateRate` by default: see docs/configuration.md for the measurements behind it.
pub const DEFAULT_STATE_UPDATE_RATE: u32 = 5;

/// The `Admin` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Address of the HTTP listener serving `/metrics` and `/health`; empty to disable.
    pub address: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self { address: "127.0.0.1:5521".into() }
    }
}

/// The `Cluster` section: several servers ("shards") sharing one hunt through NATS JetStream
/// (docs/scale-out.md). Empty `Nats` (the default): the server runs alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// NATS server URL(s), comma-separated (`nats://host:4222`); empty: no cluster.
    pub nats: String,
    /// The JetStream key-value bucket the shards decide claims in (letters, digits, `_`, `-`).
    pub bucket: String,
    /// The bucket's replicas: 1 for one NATS server, 3 for a three-node JetStream cluster.
    pub replicas: u32,
    /// How long a playing player's changed records wait before they are put in NATS: at most
    /// this much of its play is missing elsewhere when its shard dies.
    pub records_every_seconds: u32,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self { nats: String::new(), bucket: "veltrix".into(), replicas: 1, records_every_seconds: 10 }
    }
}

impl ClusterConfig {
    /// The NATS servers `Nats` names, one URL each: the client tries them in turn and moves to
    /// another when the one it is on goes away (the nodes of a JetStream cluster).
    pub fn nats_urls(&self) -> Vec<&str> {
        self.nats.split(',').map(str::trim).collect()
    }
}

/// The `Store` section: the store file (`universe/veltrix.redb`, docs/storage.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The most of the store file's pages held in memory, in MiB.
    #[serde(rename = "CacheMiB")]
    pub cache_mib: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self { cache_mib: (crate::store::DEFAULT_CACHE_BYTES >> 20) as u32 }
    }
}

impl StoreConfig {
    pub fn cache_bytes(&self) -> usize {
        (self.cache_mib as usize) << 20
    }
}

/// The server's `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Shown to players when they connect.
    pub server_name: String,
    /// Players allowed online at once.
    pub max_players: u32,
    /// TCP port of the player endpoint. 0 picks a free port.
    pub port: u16,
    /// Ticks per second (1 to 1000).
    pub tick_rate: u32,
    /// When the tick falls further behind than this many ticks, skip ahead instead of
    /// running the missed ticks back to back.
    pub max_catch_up_ticks: u32,
    /// The executor for the tick schedules.
    pub executor: Executor,
    /// How the operating system schedules the tick thread.
    pub tick_priority: TickPriority,
    /// Stop the server when any mod fails to load, instead of going on without it.
    pub fail_on_mod_error: bool,
    /// Per-mod switches by `Group:Name`.
    pub mods: BTreeMap<String, ModSettings>,
    /// How players authenticate.
    pub auth: Auth,
    /// Lifetime of tokens made by the `token` command, in seconds.
    pub token_ttl_seconds: u64,
    pub network: NetworkConfig,
    pub world: WorldConfig,
    pub admin: AdminConfig,
    pub cluster: ClusterConfig,
    pub store: StoreConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            server_name: "Veltrix Server".into(),
            max_players: 100,
            port: 5520,
            tick_rate: 30,
            max_catch_up_ticks: 5,
            executor: Executor::Auto,
            tick_priority: TickPriority::Auto,
            fail_on_mod_error: false,
            mods: BTreeMap::new(),
            auth: Auth::Offline,
            token_ttl_seconds: 7 * 24 * 3600,
            network: NetworkConfig::default(),
            world: WorldConfig::default(),
            admin: AdminConfig::default(),
            cluster: ClusterConfig::default(),
            store: StoreConfig::default(),
        }
    }
}

/// Why a config file could not be used. The message names the file and the key path.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl ServerConfig {
    /// Reads `path`, or writes the defaults there when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, ConfigError> {
        if let Some(config) = Self::load(path)? {
            return Ok(config);
        }
        let config = Self::default();
        config.write(path)?;
        tracing::info!("wrote a default server config to {}", path.display());
        Ok(config)
    }

    /// Reads `path`; `None` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<Self>, ConfigError> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ConfigError(format!("{}: cannot read: {e}", path.display()))),
        };
        Self::parse(&text).map(Some).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
    }

    /// Parses and checks a config text; the error names the key path and what was expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let config: Self = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let at = format!("line {}, column {}", inner.line(), inner.column());
            // serde_json appends " at line L column C" to its message; we say where ourselves.
            let message = inner.to_string();
            let message = message.split(" at line ").next().unwrap_or(&message).to_string();
            if path == "." { format!("{at}: {message}") } else { format!("{path}: {message} ({at})") }
        })?;
        config.check()?;
        Ok(config)
    }

    /// Range checks serde cannot express. The error names the key path.
    pub fn check(&self) -> Result<(), String> {
        if self.server_name.trim().is_empty() {
            return Err("ServerName: expected a name, found an empty string".into());
        }
        let n = &self.network;
        if format!("{}:{}", n.bind, self.port).parse::<std::net::SocketAddr>().is_err() {
            return Err(format!(
                "Network.Bind: expected an IP address such as 0.0.0.0 or 127.0.0.1, found {:?}",
                n.bind
            ));
        }
        for (key, unit, value, range) in self.integer_ranges() {
            if !range.contains(&value) {
                return Err(format!(
                    "{key}: expected a number of {unit} from {} to {}, found {value}",
                    range.start(),
                    range.end()
                ));
            }
        }
        let tiles = u64::from(self.world.width) * u64::from(self.world.depth);
        if tiles > MAX_WORLD_TILES {
            return Err(format!(
                "World.Width/Depth: expected at most {MAX_WORLD_TILES} tiles in all (4096 x 4096), found {} x {} = {tiles}",
                self.world.width, self.world.depth
            ));
        }
        let w = &self.world;
        // With a map the map's size counts (Width and Depth are ignored): the spawn is checked
        // against it once it is read (`world::build`).
        let inside = |x: f32, y: f32| x >= 0.0 && x < w.width as f32 && y >= 0.0 && y < w.depth as f32;
        if w.map.is_empty() && !inside(w.spawn_x, w.spawn_y) {
            return Err(format!(
                "World.SpawnX/SpawnY: expected a point inside the {}x{} world, found ({}, {})",
                w.width, w.depth, w.spawn_x, w.spawn_y
            ));
        }
        for (key, value) in [("World.MaxSpeed", w.max_speed), ("World.InterestRadius", w.interest_radius)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(format!("{key}: expected a positive number, found {value}"));
            }
        }
        if !w.map.is_empty() && !w.map.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(format!(
                "World.Map: expected a folder name under universe/worlds/ (letters, digits, _ and -), found {:?}",
                w.map
            ));
        }
        if !(w.spawn_radius.is_finite() && w.spawn_radius >= 0.0) {
            return Err(format!("World.SpawnRadius: expected zero or more, found {}", w.spawn_radius));
        }
        if !(w.interest_hysteresis.is_finite() && w.interest_hysteresis >= 0.0) {
            return Err(format!("World.InterestHysteresis: expected zero or more, found {}", w.interest_hysteresis));
        }
        if !self.admin.address.is_empty() && self.admin.address.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!(
                "Admin.Address: expected an address such as 127.0.0.1:5521, or \"\" to disable, found {:?}",
                self.admin.address
            ));
        }
        let c = &self.cluster;
        let is_url = |url: &str| {
            ["nats://", "tls://"].iter().any(|s| url.starts_with(s)) && url.parse::<async_nats::ServerAddr>().is_ok()
        };
        if !c.nats.is_empty() && !c.nats_urls().into_iter().all(is_url) {
            return Err(format!(
                "Cluster.Nats: expected NATS URLs such as nats://127.0.0.1:4222 (comma-separated), or \"\" to run \
                 alone, found {:?}",
                c.nats
            ));
        }
        if c.bucket.is_empty() || !c.bucket.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-') {
            return Err(format!(
                "Cluster.Bucket: expected a bucket name (letters, digits, _ and -), found {:?}",
                c.bucket
            ));
        }
        for id in self.mods.keys() {
            if !id.split_once(':').is_some_and(|(g, n)| !g.is_empty() && !n.is_empty()) {
                return Err(format!("Mods.{id}: expected a mod id of the form Group:Name"));
            }
        }
        Ok(())
    }

    /// Every integer setting with its allowed range (docs/configuration.md): values outside
    /// would crash the server (a world too large to allocate, a read buffer of gigabytes per
    /// connection, billions of threads) or make no sense (no tick, no player).
    fn integer_ranges(&self) -> [(&'static str, &'static str, u64, RangeInclusive<u64>); 23] {
        let (n, w) = (&self.network, &self.world);
        [
            ("TickRate", "ticks per second", self.tick_rate.into(), 1..=1000),
            ("MaxPlayers", "players", self.max_players.into(), 1..=1_000_000),
            ("MaxCatchUpTicks", "ticks", self.max_catch_up_ticks.into(), 0..=1000),
            ("TokenTtlSeconds", "seconds", self.token_ttl_seconds, 1..=366 * 24 * 3600),
            ("Network.Threads", "threads", n.threads.into(), 0..=256),
            ("Network.WriterThreads", "threads", n.writer_threads.into(), 0..=256),
            ("Network.MaxFrameBytes", "bytes", n.max_frame_bytes.into(), 64..=16 << 20),
            ("Network.MaxMessagesPerSecond", "messages per second", n.max_messages_per_second.into(), 1..=100_000),
            ("Network.MaxErrors", "erroneous frames", n.max_errors.into(), 1..=1_000_000),
            ("Network.IdleTimeoutSeconds", "seconds", n.idle_timeout_seconds.into(), 1..=86_400),
            ("Network.PingIntervalSeconds", "seconds", n.ping_interval_seconds.into(), 1..=86_400),
            ("Network.HandshakeTimeoutSeconds", "seconds", n.handshake_timeout_seconds.into(), 1..=3600),
            ("Network.MaxQueuedFrames", "frames", n.max_queued_frames.into(), 1..=65_536),
            ("Network.MaxConnectionsPerIp", "connections", n.max_connections_per_ip.into(), 1..=1_000_000),
            ("Network.ReadBufferBytes", "bytes", n.read_buffer_bytes.into(), 128..=1 << 20),
            ("Network.SendBufferBytes", "bytes", n.send_buffer_bytes.into(), 0..=64 << 20),
            ("Network.PollIntervalMicros", "microseconds", n.poll_interval_micros.into(), 0..=100_000),
            ("World.Width", "tiles", w.width.into(), 1..=MAX_WORLD_SIDE),
            ("World.Depth", "tiles", w.depth.into(), 1..=MAX_WORLD_SIDE),
            ("World.StateUpdateRate", "updates per second", w.state_update_rate.into(), 1..=1000),
            ("Cluster.Replicas", "replicas", self.cluster.replicas.into(), 1..=5),
            ("Cluster.RecordsEverySeconds", "seconds", self.cluster.records_every_seconds.into(), 1..=3600),
            ("Store.CacheMiB", "MiB", self.store.cache_mib.into(), 0..=65_536),
        ]
    }

    /// Writes the config as pretty JSON.
    pub fn write(&self, path: &Path) -> Result<(), ConfigError> {
        let mut text = serde_json::to_string_pretty(self).expect("the config always serialises");
        text.push('\n');
        fs::write(path, text).map_err(|e| ConfigError(format!("{}: cannot write: {e}", path.display())))
    }

    /// Whether the owner switched the mod on or off, if they said.
    pub fn mod_enabled(&self, id: &str) -> Option<bool> {
        self.mods.get(id).map(|m| m.enabled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip() {
        let text = serde_json::to_string(&ServerConfig::default()).unwrap();
        assert_eq!(ServerConfig::parse(&text).unwrap(), ServerConfig::default());
    }

    /// `Auto` is SingleThreaded on two cores or fewer, MultiThreaded on more; a named executor
    /// is itself on any machine.
    #[test]
    fn the_auto_executor_follows_the_cores() {
        assert_eq!(ServerConfig::default().executor, Executor::Auto);
        assert_eq!(Executor::Auto.on_cores(1), Executor::SingleThreaded);
        assert_eq!(Executor::Auto.on_cores(2), Executor::SingleThreaded);
        assert_eq!(Executor::Auto.on_cores(3), Executor::MultiThreaded);
        assert_eq!(Executor::MultiThreaded.on_cores(2), Executor::MultiThreaded);
        assert_eq!(Executor::SingleThreaded.on_cores(64), Executor::SingleThreaded);
    }

    #[test]
    fn wrong_type_names_key_path_and_place() {
        let err = ServerConfig::parse("{\n  \"Port\": \"high\"\n}").unwrap_err();
        assert_eq!(err, "Port: invalid type: string \"high\", expected u16 (line 2, column 16)");
    }

    #[test]
    fn nested_wrong_type_names_full_path() {
        let err = ServerConfig::parse(r#"{"Mods": {"Veltrix:TreasureHunt": {"Enabled": "yes"}}}"#).unwrap_err();
        assert!(
            err.starts_with("Mods.Veltrix:TreasureHunt.Enabled: invalid type: string \"yes\", expected a boolean"),
            "{err}"
        );
    }

    #[test]
    fn unknown_key_is_refused() {
        let err = ServerConfig::parse(r#"{"Prot": 1}"#).unwrap_err();
        assert!(err.contains("unknown field `Prot`"), "{err}");
    }

    #[test]
    fn out_of_range_values_are_refused() {
        assert!(ServerConfig::parse(r#"{"TickRate": 0}"#).unwrap_err().starts_with("TickRate: expected"));
        assert!(ServerConfig::parse(r#"{"MaxPlayers": 0}"#).unwrap_err().starts_with("MaxPlayers: expected"));
        assert!(
            ServerConfig::parse(r#"{"Mods": {"NoColon": {"Enabled": true}}}"#)
                .unwrap_err()
                .starts_with("Mods.NoColon: expected")
        );
    }

    /// The nodes of a JetStream cluster are named one after the other; each must be a URL the
    /// client can use, or the server says so at start instead of retrying forever.
    #[test]
    fn cluster_nats_takes_a_list_of_urls() {
        let parsed =
            ServerConfig::parse(r#"{"Cluster": {"Nats": "nats://10.0.0.1:4222, nats://10.0.0.2:4222,tls://n3:4222"}}"#)
                .unwrap();
        assert_eq!(parsed.cluster.nats_urls(), ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222", "tls://n3:4222"]);
        for bad in ["127.0.0.1:4222", "nats://a:4222,", "nats://a:99999", "nats://a:4222,http://b"] {
            let json = serde_json::json!({"Cluster": {"Nats": bad}}).to_string();
            let err = ServerConfig::parse(&json).unwrap_err();
            assert!(err.starts_with("Cluster.Nats: expected NATS URLs"), "{bad}: {err}");
        }
    }

    /// With a map, its size counts, not Width and Depth: a spawn beyond 512 x 512 is checked
    /// against the map when it is read, not refused here.
    #[test]
    fn a_spawn_in_a_large_map_is_not_held_to_width_and_depth() {
        assert!(ServerConfig::parse(r#"{"World": {"Map": "big", "SpawnX": 700.5, "SpawnY": 700.5}}"#).is_ok());
        let err = ServerConfig::parse(r#"{"World": {"SpawnX": 700.5, "SpawnY": 700.5}}"#).unwrap_err();
        assert!(err.starts_with("World.SpawnX/SpawnY: expected a point inside the 512x512 world"), "{err}");
    }

    /// `Store.CacheMiB` is in MiB, spelled as the docs spell it; by default the store's own.
    #[test]
    fn the_store_cache_is_given_in_mib() {
        let config = ServerConfig::parse(r#"{"Store": {"CacheMiB": 64}}"#).unwrap();
        assert_eq!(config.store.cache_bytes(), 64 << 20);
        assert_eq!(ServerConfig::default().store.cache_bytes(), crate::store::DEFAULT_CACHE_BYTES);
        let err = ServerConfig::parse(r#"{"Store": {"CacheMib": 64}}"#).unwrap_err();
        assert!(err.contains("unknown field `CacheMib`"), "{err}");
    }

    /// A world of 4e9 x 4e9 tiles used to reach the allocator ("capacity overflow").
    #[test]
    fn a_world_too_large_to_allocate_is_refused() {
        let err = ServerConfig::parse(r#"{"World": {"Width": 4000000000, "Depth": 4000000000}}"#).unwrap_err();
        assert_eq!(err, "World.Width: expected a number of tiles from 1 to 65536, found 4000000000");
        let err = ServerConfig::parse(r#"{"World": {"Width": 65536, "Depth": 257}}"#).unwrap_err();
        assert!(err.starts_with("World.Width/Depth: expected at most 16777216 tiles in all"), "{err}");
        let largest = r#"{"World": {"Terrain": "Flat", "Width": 4096, "Depth": 4096}}"#;
        assert!(ServerConfig::parse(largest).is_ok());
    }

    /// Every integer setting is refused just outside its range and accepted at its ends.
    #[test]
    fn every_integer_setting_has_its_range_checked() {
        let with = |key: &str, value: u64| {
            let mut json = serde_json::json!({"World": {"SpawnX": 0.5, "SpawnY": 0.5}});
            let (section, leaf) = key.split_once('.').map_or((None, key), |(s, l)| (Some(s), l));
            let object = match section {
                Some(section) => json.as_object_mut().unwrap().entry(section).or_insert(serde_json::json!({})),
                None => &mut json,
            };
            object[leaf] = value.into();
            ServerConfig::parse(&json.to_string())
        };
        for (key, _, _, range) in ServerConfig::default().integer_ranges() {
            for ok in [*range.start(), (*range.end()).min(4096)] {
                assert!(with(key, ok).is_ok(), "{key} = {ok}: {:?}", with(key, ok).err());
            }
            let mut outside = vec![range.end() + 1];
            if *range.start() > 0 {
                outside.push(range.start() - 1);
            }
            for bad in outside {
                let err = with(key, bad).unwrap_err();
                assert!(err.starts_with(&format!("{key}: expected a number of ")), "{key} = {bad}: {err}");
            }
        }
    }
}
