//! A scenario turned into a plan: where each bot lives, where the vaults are, the hunt the
//! server runs and its config. Pure and seeded: the same scenario, the same plan.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::scenario::{Placement, Scenario};

/// The hunt the benchmark server runs.
pub const HUNT: &str = "Bench";
/// Tiles within which a bot digs at a vault rather than at its feet (the mod's `Reach`).
pub const REACH: f32 = 3.0;

/// Where a bot lives and roams.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BotPlan {
    pub home: (f32, f32),
    /// Waypoints are drawn within this many tiles of home.
    pub roam: f32,
}

/// The whole plan.
#[derive(Debug, Clone)]
pub struct Plan {
    pub bots: Vec<BotPlan>,
    /// Vault tiles; vault `i` is named `V<i>`. Hotspot `h` has vault `h` at its centre.
    pub vaults: Vec<(u32, u32)>,
    /// For each clue drop, the vault its Area circle contains.
    pub clue_vaults: Vec<usize>,
}

impl Plan {
    pub fn of(scenario: &Scenario) -> Plan {
        let mut rng = ChaCha8Rng::seed_from_u64(scenario.seed);
        let (w, d) = (scenario.world.width as f32, scenario.world.depth as f32);
        // A margin keeps homes and waypoints inside the world.
        let margin = 8.0f32.min(w / 4.0).min(d / 4.0);
        let uniform =
            |rng: &mut ChaCha8Rng| (rng.random_range(margin..w - margin), rng.random_range(margin..d - margin));
        let mut vaults: Vec<(u32, u32)> = Vec::with_capacity(scenario.vaults.count);
        while vaults.len() < scenario.vaults.count {
            let (x, y) = uniform(&mut rng);
            let tile = (x as u32, y as u32);
            if !vaults.contains(&tile) {
                vaults.push(tile);
            }
        }
        let bots = (0..scenario.bots)
            .map(|_| match &scenario.placement {
                Placement::Hotspots(h) if rng.random_bool(h.share) => {
                    let (x, y) = vaults[rng.random_range(0..h.count)];
                    let angle = rng.random_range(0.0..std::f32::consts::TAU);
                    let r = h.radius * rng.random::<f32>().sqrt();
                    let home = (
                        (x as f32 + 0.5 + r * angle.cos()).clamp(1.0, w - 1.0),
                        (y as f32 + 0.5 + r * angle.sin()).clamp(1.0, d - 1.0),
                    );
                    BotPlan { home, roam: h.radius.min(scenario.moves.roam_radius) }
                }
                _ => BotPlan { home: uniform(&mut rng), roam: scenario.moves.roam_radius },
            })
            .collect();
        let hotspots = scenario.hotspot_count();
        // Clues point at vaults off the hotspots when there are any.
        let candidates =
            if scenario.vaults.count > hotspots { hotspots..scenario.vaults.count } else { 0..scenario.vaults.count };
        let clue_vaults = scenario.clue_drops.iter().map(|_| rng.random_range(candidates.clone())).collect();
        Plan { bots, vaults, clue_vaults }
    }

    /// The hunt file (`TreasureHunt/Hunts/Bench.json`): the vaults, each claimable once per
    /// player (or once, under `Vaults.Claim` FirstFinder), and an Area clue per drop, released `WarmupSeconds + AtSeconds` after the run
    /// starts (the run starts when every bot is in, at the start of the warm-up).
    pub fn hunt(&self, scenario: &Scenario) -> Value {
        let vaults: Vec<Value> = self
            .vaults
            .iter()
            .enumerate()
            .map(|(i, (x, y))| {
                json!({"Id": format!("V{i}"), "At": {"X": x, "Y": y}, "LootTable": "Buried_Cache",
                       "Claim": scenario.vaults.claim.name(), "DigEffort": scenario.vaults.dig_effort,
                       "SparkleRadius": scenario.vaults.sparkle_radius})
            })
            .collect();
        let clues: Vec<Value> = scenario
            .clue_drops
            .iter()
            .zip(&self.clue_vaults)
            .enumerate()
            .map(|(i, (drop, vault))| {
                json!({"Id": clue_id(i), "Vault": format!("V{vault}"),
                       "Trigger": {"AfterSeconds": (scenario.warmup_seconds + drop.at_seconds).round() as u64},
                       "Kind": {"Area": {"Radius": drop.radius}}})
            })
            .collect();
        json!({"DisplayName": "Benchmark", "Seed": scenario.seed, "Vaults": vaults, "Clues": clues})
    }

    /// The server's `config.json`: a flat world of the scenario's size, room for every bot
    /// from one address, and moves unchecked for speed (a bot's first move takes it home).
    pub fn server_config(&self, scenario: &Scenario) -> Value {
        let (w, d) = (scenario.world.width, scenario.world.depth);
        let mut config = json!({
            "ServerName": "veltrix-bots",
            "MaxPlayers": scenario.bots + 100,
            "TickRate": scenario.tick_rate,
            "Network": {"MaxConnectionsPerIp": scenario.bots + 100, "MaxQueuedFrames": 256},
            "World": {"Terrain": "Flat", "Width": w, "Depth": d, "SpawnX": w as f32 / 2.0, "SpawnY": d as f32 / 2.0,
                      "SpawnRadius": (w.min(d) as f32 / 2.0 - 2.0), "MaxSpeed": 100000.0}
        });
        if let Some(executor) = &scenario.executor {
            config["Executor"] = executor.as_str().into();
        }
        if let Some(priority) = &scenario.tick_priority {
            config["TickPriority"] = priority.as_str().into();
        }
        if let Some(rate) = scenario.state_update_rate {
            config["World"]["StateUpdateRate"] = rate.into();
        }
        if let Some(threads) = scenario.writer_threads {
            config["Network"]["WriterThreads"] = threads.into();
        }
        if let Some(threads) = scenario.network_threads {
            config["Network"]["Threads"] = threads.into();
        }
        if let Some(mib) = scenario.store_cache_mib {
            config["Store"] = json!({"CacheMiB": mib});
        }
        config
    }

    /// The treasure-hunt mod's `config.json`: no hunt at start (the swarm starts it when every
    /// bot is in).
    pub fn mod_config(&self) -> Value {
        json!({"Hunt": "", "Reach": REACH, "HotReload": false})
    }
}

/// The id of the clue of drop `i`.
pub fn clue_id(i: usize) -> String {
    format!("Drop{}", i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_is_the_same_for_the_same_seed_and_stays_in_the_world() {
        let text = r#"{"Bots": 500, "Seconds": 5, "Seed": 9, "World": {"Width": 300, "Depth": 200},
            "Placement": {"Hotspots": {"Count": 5, "Radius": 20, "Share": 0.5}},
            "Moves": {"Speed": 2, "PerSecond": 2}, "Digs": {"PerMinute": 6},
            "Vaults": {"Count": 50, "DigEffort": 2, "SparkleRadius": 10},
            "ClueDrops": [{"AtSeconds": 1}]}"#;
        let scenario = Scenario::parse(text).unwrap();
        let (a, b) = (Plan::of(&scenario), Plan::of(&scenario));
        assert_eq!(a.bots, b.bots);
        assert_eq!(a.vaults, b.vaults);
        assert_eq!(a.vaults.len(), 50);
        assert!(a.bots.iter().all(|p| (0.0..300.0).contains(&p.home.0) && (0.0..200.0).contains(&p.home.1)));
        assert!(a.clue_vaults.iter().all(|&v| (5..50).contains(&v)), "clues point at vaults off the hotspots");
        let hunt = a.hunt(&scenario);
        assert_eq!(hunt["Clues"][0]["Trigger"]["AfterSeconds"], 11);
        assert_eq!(hunt["Vaults"].as_array().unwrap().len(), 50);
        // Every vault at a hotspot: the clue still points at one of them.
        let all_hotspots = Scenario::parse(&text.replace(r#""Count": 50"#, r#""Count": 5"#)).unwrap();
        assert!(Plan::of(&all_hotspots).clue_vaults.iter().all(|&v| v < 5));
    }
}
