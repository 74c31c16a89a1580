//! Scenarios: what the bots do, read from a JSON file (`loadtest/scenarios/*.json`).
//!
//! Times (`AtSeconds`) count from the start of the measured window, which follows the warm-up;
//! the hunt's run starts when every bot is in, at the start of the warm-up.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A load scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Scenario {
    /// What the scenario shows, for the report.
    #[serde(default)]
    pub description: String,
    /// Bots connected at once.
    pub bots: usize,
    /// Seconds of play before measuring (caches, allocator arenas, queues reach steady state).
    #[serde(default = "default_warmup")]
    pub warmup_seconds: f64,
    /// Seconds measured.
    pub seconds: f64,
    /// The server's ticks per second.
    #[serde(default = "default_tick_rate")]
    pub tick_rate: u32,
    /// The server's `World.StateUpdateRate` (moves of others told per second); the server's
    /// default when absent.
    #[serde(default)]
    pub state_update_rate: Option<u32>,
    /// The server's `Network.WriterThreads`; the server's default when absent.
    #[serde(default)]
    pub writer_threads: Option<u32>,
    /// The server's `Network.Threads`; the server's default when absent.
    #[serde(default)]
    pub network_threads: Option<u32>,
    /// The server's `Store.CacheMiB`; the server's default when absent.
    #[serde(default, rename = "StoreCacheMiB")]
    pub store_cache_mib: Option<u32>,
    /// Shards only: their `Cluster.RecordsEverySeconds`; the server's default when absent.
    #[serde(default)]
    pub records_every_seconds: Option<u32>,
    /// The server's executor (`MultiThreaded`, `SingleThreaded` or `Auto`; the server's default,
    /// `Auto`, when absent). Only the tick thread's allocations are counted, so single-threaded
    /// counts every system's.
    #[serde(default)]
    pub executor: Option<String>,
    /// The server's `TickPriority` (`Auto`, `RealTime` or `Normal`; the server's default,
    /// `Auto`, when absent).
    #[serde(default)]
    pub tick_priority: Option<String>,
    /// Seeds where bots stand, where vaults are and when bots act: the same seed, the same plan.
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub world: WorldSize,
    /// Where bots spend their time.
    #[serde(default)]
    pub placement: Placement,
    pub moves: Moves,
    pub digs: Digs,
    #[serde(default)]
    pub vaults: Vaults,
    /// Area clues released to everyone during the measured window.
    #[serde(default)]
    pub clue_drops: Vec<ClueDrop>,
    /// Every bot drops its connection and reconnects at once.
    #[serde(default)]
    pub reconnect_storm: Option<ReconnectStorm>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct WorldSize {
    pub width: u32,
    pub depth: u32,
}

impl Default for WorldSize {
    fn default() -> Self {
        Self { width: 2048, depth: 2048 }
    }
}

/// Where bots roam.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Placement {
    /// Anywhere in the world, each bot around a home drawn uniformly.
    #[default]
    Uniform,
    /// `Share` of the bots around `Count` hotspots (each with a vault at its centre), within
    /// `Radius` tiles of it; the others uniform.
    Hotspots(Hotspots),
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Hotspots {
    pub count: usize,
    pub radius: f32,
    pub share: f64,
}

/// How bots walk: toward a waypoint within `RoamRadius` of their home, a new one when reached.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Moves {
    /// Tiles per second.
    pub speed: f32,
    /// Position updates sent per second while walking.
    pub per_second: f64,
    /// How far from home a uniform bot wanders (hotspot bots stay within the hotspot).
    #[serde(default = "default_roam")]
    pub roam_radius: f32,
}

/// How often bots dig: a Poisson process per bot.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Digs {
    pub per_minute: f64,
}

/// The vaults of the benchmark's hunt: one at each hotspot, the rest uniform; by default each
/// player may claim each once (`PerPlayer`), so digging stays real work all run long.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Vaults {
    pub count: usize,
    pub dig_effort: u32,
    pub sparkle_radius: f32,
    /// Who may claim a vault (the hunt's `Claim` rule).
    #[serde(default)]
    pub claim: VaultClaim,
}

impl Default for Vaults {
    fn default() -> Self {
        Self { count: 400, dig_effort: 3, sparkle_radius: 24.0, claim: VaultClaim::PerPlayer }
    }
}

/// The claim rule of every vault of the benchmark's hunt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum VaultClaim {
    /// Each player claims each vault once: digging stays real work all run long.
    #[default]
    PerPlayer,
    /// The first to finish a vault claims it and it closes to everyone: the claim is told to
    /// every player (`VaultClaimed`), on every shard (the ledger decides it once across them).
    FirstFinder,
}

impl VaultClaim {
    /// The rule's name in a hunt file.
    pub fn name(self) -> &'static str {
        match self {
            VaultClaim::PerPlayer => "PerPlayer",
            VaultClaim::FirstFinder => "FirstFinder",
        }
    }
}

/// An Area clue released to everyone; `ConvergeShare` of the bots head into its circle, and
/// every bot digs `Spike.Factor` times as often for `Spike.Ms` after it arrives.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ClueDrop {
    pub at_seconds: f64,
    #[serde(default = "default_clue_radius")]
    pub radius: u32,
    #[serde(default)]
    pub converge_share: f64,
    #[serde(default)]
    pub spike: Option<Spike>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Spike {
    pub factor: f64,
    pub ms: u64,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ReconnectStorm {
    pub at_seconds: f64,
}

fn default_warmup() -> f64 {
    10.0
}
fn default_tick_rate() -> u32 {
    30
}
fn default_roam() -> f32 {
    64.0
}
fn default_clue_radius() -> u32 {
    60
}

/// Why a scenario was refused; the text names the key and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file: reading it, or what is wrong inside.
    #[error("{}: {source}", path.display())]
    File { path: PathBuf, source: Box<ScenarioError> },
    #[error("{0}")]
    Read(#[from] std::io::Error),
    /// Not JSON, or not a scenario's keys and types.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("{key}: expected more than zero, found {value}")]
    NotPositive { key: &'static str, value: f64 },
    #[error("WarmupSeconds, Digs.PerMinute and Moves.Speed cannot be negative")]
    Negative,
    #[error("Executor: expected MultiThreaded, SingleThreaded or Auto, found {0:?}")]
    Executor(String),
    #[error("TickPriority: expected Auto, RealTime or Normal, found {0:?}")]
    TickPriority(String),
    #[error("Placement.Hotspots: Count must be 1 or more and Share within 0..1, found {0:?}")]
    Hotspots(Hotspots),
    #[error("ClueDrops: AtSeconds {at} is outside the measured window (0 to {seconds} s)")]
    ClueDropOutside { at: f64, seconds: f64 },
    #[error("ReconnectStorm: AtSeconds {0} is outside the measured window")]
    StormOutside(f64),
    #[error("Vaults.Count ({vaults}) must cover one vault per hotspot ({hotspots})")]
    TooFewVaults { vaults: usize, hotspots: usize },
}

impl Scenario {
    /// The executor the server runs on this machine: the scenario's, or the server's default
    /// (`Auto`) as it chooses here.
    pub fn executor_here(&self) -> String {
        use veltrix_host::config::Executor;
        let configured = match self.executor.as_deref() {
            Some("SingleThreaded") => Executor::SingleThreaded,
            Some("MultiThreaded") => Executor::MultiThreaded,
            _ => Executor::Auto,
        };
        format!("{:?}", configured.here())
    }

    /// Reads and checks a scenario file; the error names the file and what is wrong.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let in_file = |e: ScenarioError| ScenarioError::File { path: path.to_path_buf(), source: Box::new(e) };
        let text = std::fs::read_to_string(path).map_err(|e| in_file(e.into()))?;
        Self::parse(&text).map_err(in_file)
    }

    /// Parses and checks a scenario.
    pub fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = serde_json::from_str(text)?;
        scenario.check()?;
        Ok(scenario)
    }

    /// Checks the values (after a change, e.g. fewer seconds than the file's).
    pub fn check(&self) -> Result<(), ScenarioError> {
        let positive = [
            ("Bots", self.bots as f64),
            ("Seconds", self.seconds),
            ("TickRate", f64::from(self.tick_rate)),
            ("Moves.PerSecond", self.moves.per_second),
            ("World.Width", f64::from(self.world.width)),
            ("World.Depth", f64::from(self.world.depth)),
        ];
        for (key, value) in positive {
            // NaN is refused too.
            if value.is_nan() || value <= 0.0 {
                return Err(ScenarioError::NotPositive { key, value });
            }
        }
        if self.warmup_seconds < 0.0 || self.digs.per_minute < 0.0 || self.moves.speed < 0.0 {
            return Err(ScenarioError::Negative);
        }
        if let Some(e) = &self.executor
            && !["MultiThreaded", "SingleThreaded", "Auto"].contains(&e.as_str())
        {
            return Err(ScenarioError::Executor(e.clone()));
        }
        if let Some(p) = &self.tick_priority
            && !["Auto", "RealTime", "Normal"].contains(&p.as_str())
        {
            return Err(ScenarioError::TickPriority(p.clone()));
        }
        if let Placement::Hotspots(h) = &self.placement
            && (h.count == 0 || !(0.0..=1.0).contains(&h.share))
        {
            return Err(ScenarioError::Hotspots(*h));
        }
        for drop in &self.clue_drops {
            if !(0.0..self.seconds).contains(&drop.at_seconds) {
                return Err(ScenarioError::ClueDropOutside { at: drop.at_seconds, seconds: self.seconds });
            }
        }
        if let Some(storm) = &self.reconnect_storm
            && !(0.0..self.seconds).contains(&storm.at_seconds)
        {
            return Err(ScenarioError::StormOutside(storm.at_seconds));
        }
        if self.vaults.count < self.hotspot_count() {
            return Err(ScenarioError::TooFewVaults { vaults: self.vaults.count, hotspots: self.hotspot_count() });
        }
        Ok(())
    }

    /// Hotspots (0 for a uniform placement).
    pub fn hotspot_count(&self) -> usize {
        match &self.placement {
            Placement::Uniform => 0,
            Placement::Hotspots(h) => h.count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_scenarios_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            seen += 1;
        }
        assert!(seen >= 4, "steady, clustered, clue spike, reconnect storm");
    }

    #[test]
    fn mistakes_are_named() {
        let base = r#"{"Bots": 10, "Seconds": 5, "Moves": {"Speed": 2, "PerSecond": 2}, "Digs": {"PerMinute": 6}"#;
        let err = Scenario::parse(&format!(r#"{base}, "ClueDrops": [{{"AtSeconds": 9}}]}}"#)).unwrap_err().to_string();
        assert!(err.contains("ClueDrops: AtSeconds 9 is outside"), "{err}");
        let err = Scenario::parse(&format!(r#"{base}, "Bot": 3}}"#)).unwrap_err().to_string();
        assert!(err.contains("unknown field `Bot`"), "{err}");
        let err = Scenario::parse(
            r#"{"Bots": 0, "Seconds": 5, "Moves": {"Speed": 2, "PerSecond": 2}, "Digs": {"PerMinute": 6}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("Bots: expected more than zero"), "{err}");
    }

    #[test]
    fn mistakes_have_kinds() {
        let base = r#"{"Seconds": 5, "Moves": {"Speed": 2, "PerSecond": 2}, "Digs": {"PerMinute": 6}"#;
        let no_bots = Scenario::parse(&format!(r#"{base}, "Bots": 0}}"#));
        assert!(matches!(no_bots, Err(ScenarioError::NotPositive { key: "Bots", .. })), "{no_bots:?}");
        let late_storm = Scenario::parse(&format!(r#"{base}, "Bots": 1, "ReconnectStorm": {{"AtSeconds": 5}}}}"#));
        assert!(matches!(late_storm, Err(ScenarioError::StormOutside(_))), "{late_storm:?}");
        let missing = Scenario::load(Path::new("no/such/scenario.json")).unwrap_err();
        assert!(matches!(&missing, ScenarioError::File { source, .. } if matches!(**source, ScenarioError::Read(_))));
        assert!(missing.to_string().starts_with("no/such/scenario.json: "), "{missing}");
    }
}
