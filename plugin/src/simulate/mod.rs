//! `veltrix-server simulate`: a hunt played headless by simulated players, as fast as the CPU
//! allows, and reported.
//!
//! The hunt runs on the server's own tick pipeline with this mod's own systems
//! ([`driver`]): the same schedules, digs, claims, loot, clues, hints, effects, leaderboard and
//! commits as on a server, on one thread, with the clock at the ticks' simulated time. The
//! players ([`bots`]) join at the start, send the requests a client sends and learn what a
//! player is told, and share what every player may know ([`shared`]). The same pack, world, seed and options give the same ticks and the same
//! report ([`report`]); the chart of discoveries over time is [`chart`].

mod bots;
mod chart;
mod driver;
mod report;
mod shared;

use std::{
    collections::BTreeSet,
    io::Write as _,
    path::Path,
    time::{Duration, Instant},
};

use treasure_hunt_ecs::{
    clues::ClueOutcome,
    hints::HintOutcome,
    hunt::{ClaimOutcome, DigOutcome, Refused},
    leaderboard::{Leaderboard, final_board},
    lifecycle::{Announcement, Start},
    model::{assets::ClaimRule, pack::HuntAssets},
};
use veltrix_sdk::{
    Behaviour, DesignerError, FromClient, Player, Position, Simulation, Spawn, SpeedFactor, TileWorld,
    bevy_ecs::query::QueryState,
};

use self::{
    bots::{Bot, Kind},
    driver::{SimInput, SimWorld, read},
    report::{Inputs, Recorder, Report},
    shared::Paths,
};
use crate::{TreasureHuntConfig, leaderboard::FinalBoards, protocol::JoinTeam};

/// The clock of a simulation at its first tick, for a hunt started by hand: 2026-01-01T00:00Z.
const ORIGIN_MS: i64 = 1_767_225_600_000;
/// Players on the final leaderboard of the report.
const BOARD_SIZE: usize = 10;

/// Plays hunt `sim.hunt` of `assets` (loaded from `pack_dir`) and reports it.
pub fn run(
    pack_dir: &Path,
    tiles: &TileWorld,
    spawn: Spawn,
    assets: &HuntAssets,
    sim: &Simulation,
) -> Result<String, DesignerError> {
    let Some(hunt) = assets.hunts.get(&sim.hunt) else {
        return Err(DesignerError::Usage(crate::designer::unknown("hunt", &sim.hunt, assets.hunts.keys())));
    };
    if sim.tick_rate == 0 || sim.max_speed.is_nan() || sim.max_speed <= 0.0 {
        return Err(DesignerError::Failed("the server's TickRate and World.MaxSpeed must be above 0".into()));
    }
    let rate = sim.tick_rate;
    let duration =
        sim.duration.unwrap_or_else(|| Duration::from_secs(hunt.def.duration_seconds.map_or(3600, u64::from)));
    let duration_ticks = (duration.as_millis() * u128::from(rate)).div_ceil(1000) as u64;
    // A scheduled hunt is played from its first start, a hunt started by hand from a fixed date.
    let origin_ms = match Start::parse(&hunt.def.schedule) {
        Ok(Start::At(at)) => at,
        Ok(Start::Daily { minute, .. }) => ORIGIN_MS + i64::from(minute) * 60_000,
        _ => ORIGIN_MS,
    };
    let config = TreasureHuntConfig {
        hunt: sim.hunt.clone(),
        hot_reload: false,
        // Hint paths computed in the tick: the same tick answers on every run.
        path_workers: 0,
        log_contract_probe: false,
        ..Default::default()
    };
    let reach = config.reach;
    let started = Instant::now();
    let mut sim_world = SimWorld::new(pack_dir, tiles, spawn, rate, config, origin_ms)?;

    let mut bots: Vec<Bot> = (0..sim.players)
        .map(|i| {
            let id = u64::from(i) + 1;
            let team = sim.teams.map(|k| i % k);
            Bot::new(
                id,
                kind_of(sim.behaviour, i),
                team,
                spawn_point(spawn, sim.spawn_radius, id, tiles),
                sim.seed,
                hunt,
            )
        })
        .collect();
    let mut input = SimInput::default();
    input.joins.extend(bots.iter().map(|b| (b.id, b.name.clone(), b.pos)));

    let mut recorder = Recorder::new(hunt);
    let mut released: Vec<Option<i64>> = vec![None; hunt.clues.len()];
    let mut closed = vec![false; hunt.vaults.len()];
    let mut team_claims: BTreeSet<(u32, usize)> = BTreeSet::new();
    let mut paths = Paths::new(tiles);
    let mut speeds: QueryState<(&Player, &SpeedFactor)> = QueryState::new(&mut sim_world.world);
    let effects: BTreeSet<&str> =
        assets.items.iter().filter(|(_, item)| item.effect.is_some()).map(|(id, _)| id.as_str()).collect();
    let mut progress = Progress::new(sim.progress, duration_ticks, rate);

    // What every player may know, as of this tick.
    macro_rules! shared {
        ($tick:expr, $now:expr) => {
            shared::World {
                tick: $tick,
                now_ms: $now,
                rate,
                tiles,
                hunt,
                max_speed: sim.max_speed,
                reach,
                released: &released,
                closed: &closed,
                team_claims: &team_claims,
                paths: &mut paths,
            }
        };
    }
    let mut tick = 0;
    while tick < duration_ticks {
        tick += 1;
        let now_ms = origin_ms + (i128::from(tick) * 1000 / i128::from(rate)) as i64;
        {
            let mut w = shared!(tick, now_ms);
            for bot in &mut bots {
                bot.act(&mut w, &mut input);
            }
        }
        for ask in &input.asks {
            if let Some(c) = hunt.clues.iter().position(|c| c.id == ask.message.clue) {
                recorder.reached[c].insert(ask.player);
            }
        }
        sim_world.tick(tick, &mut input);
        if tick == 1 {
            for (bot, entity) in bots.iter_mut().zip(input.entities.drain(..)) {
                bot.entity = Some(entity);
                if let Some(team) = bot.team {
                    let message = JoinTeam { team: format!("Team_{}", team + 1) };
                    input.teams.push(FromClient { entity, player: bot.id, request: None, message });
                }
            }
        }
        for bot in bots.iter_mut().filter(|b| b.speed_factor != 1.0) {
            bot.speed_factor = 1.0;
        }
        for (player, factor) in speeds.iter(&sim_world.world) {
            if let Some(bot) = bots.get_mut(player.id as usize - 1) {
                bot.speed_factor = SpeedFactor::effective(Some(factor));
            }
        }

        let world = &sim_world.world;
        let outcomes = &mut sim_world.outcomes;
        let w = shared!(tick, now_ms);
        for outcome in read(&mut outcomes.digs, world) {
            let player = match outcome {
                DigOutcome::Progress { player, .. } | DigOutcome::Finished { player, .. } => *player,
                DigOutcome::Refused(Refused { player, .. }) => *player,
            };
            if let Some(bot) = bots.get_mut(player as usize - 1) {
                bot.on_dig(outcome);
            }
        }
        let mut newly_closed = Vec::new();
        for outcome in read(&mut outcomes.claims, world) {
            let ClaimOutcome::Claimed(claim) = outcome else { continue };
            let Some(v) = hunt.vaults.iter().position(|v| v.id == claim.vault.id) else { continue };
            if recorder.end.is_some() {
                continue; // another run (a scheduled start): the report is of the first
            }
            recorder.claim(tick, v, claim);
            if let Some(bot) = bots.get_mut(claim.player as usize - 1) {
                bot.on_claimed(v, &w);
                if let (ClaimRule::Team, Some(team)) = (claim.vault.claim, bot.team) {
                    newly_closed.push((v, Some(team)));
                }
            }
            if claim.first && claim.vault.claim == ClaimRule::FirstFinder {
                newly_closed.push((v, None));
            }
            // The players within its sparkle radius see it opened.
            let (x, y, r) = (claim.vault.at.x as f32 + 0.5, claim.vault.at.y as f32 + 0.5, claim.vault.sparkle_radius);
            for bot in &mut bots {
                if bot.pos.distance_squared(x, y) <= r * r {
                    bot.on_sparkle(v, &w);
                }
            }
        }
        for outcome in read(&mut outcomes.hints, world) {
            let player = match outcome {
                HintOutcome::HotCold { player, .. } | HintOutcome::Compass { player, .. } => *player,
                HintOutcome::Refused(r) => r.player,
            };
            if let Some(bot) = bots.get_mut(player as usize - 1) {
                bot.on_hint(outcome, &w);
            }
        }
        for loot in read(&mut outcomes.loot, world) {
            if recorder.end.is_none() {
                recorder.loot(assets, loot);
            }
            if let Some(bot) = bots.get_mut(loot.player as usize - 1) {
                for stack in loot.items.iter().chain(&loot.pending) {
                    bot.on_loot(&stack.item, stack.quantity, effects.contains(stack.item.as_str()));
                }
            }
        }
        let mut any_release = false;
        for outcome in read(&mut outcomes.clues, world) {
            match outcome {
                ClueOutcome::ReleasedToAll { clue } => {
                    released[*clue] = Some(now_ms);
                    recorder.released[*clue] = Some(tick);
                    any_release = true;
                }
                ClueOutcome::ReleasedTo { player, clue } => {
                    recorder.reached[*clue].insert(*player);
                    if let Some(bot) = bots.get_mut(*player as usize - 1) {
                        bot.on_released_to_me(*clue);
                        bot.on_release();
                    }
                }
                _ => {}
            }
        }
        for news in read(&mut outcomes.news, world) {
            if let Announcement::Ended { reason, .. } = news
                && recorder.end.is_none()
            {
                recorder.end = Some((tick, *reason));
            }
        }
        recorder.end_tick();
        for &(v, team) in &newly_closed {
            match team {
                None => closed[v] = true,
                Some(team) => {
                    team_claims.insert((team, v));
                }
            }
        }
        if any_release || !newly_closed.is_empty() {
            let w = shared!(tick, now_ms);
            for bot in &mut bots {
                for &(v, team) in &newly_closed {
                    if team.is_none_or(|t| bot.team == Some(t)) {
                        bot.on_closed(v, &w);
                    }
                }
                if any_release {
                    bot.on_release();
                }
            }
        }
        progress.show(tick);
        if recorder.end.is_some() && !sim.play_on {
            break;
        }
    }
    progress.clear();

    let world = &sim_world.world;
    let (board, ranked) = match world.get_resource::<FinalBoards>().and_then(|f| f.0.get(&sim.hunt)) {
        Some(frozen) => (frozen.top.clone(), frozen.players),
        None => {
            let live = world.resource::<Leaderboard>();
            (final_board(live, BOARD_SIZE), live.len() as u32)
        }
    };
    let report = Report::new(Inputs {
        assets,
        hunt,
        bots: &bots,
        recorder: &recorder,
        board: board.into_iter().take(BOARD_SIZE).collect(),
        ranked,
        teams: sim.teams,
        seed: sim.seed,
        rate,
        duration_ticks,
        ticks: tick,
    });
    let ticks_per_second = tick as f64 / started.elapsed().as_secs_f64().max(1e-9);
    veltrix_sdk::tracing::info!(
        "simulated {tick} ticks ({} of game time) in {:.2} s: {ticks_per_second:.0} ticks a second",
        report::clock(tick as f64 / f64::from(rate)),
        started.elapsed().as_secs_f64()
    );
    let mut text = if sim.json {
        veltrix_sdk::serde_json::to_string_pretty(&report)
            .map_err(|e| DesignerError::Failed(format!("cannot write the report as JSON: {e}")))?
            + "\n"
    } else {
        report.text()
    };
    if let Some(out) = &sim.chart {
        let svg = chart::draw(&report, hunt);
        std::fs::write(out, svg)
            .map_err(|e| DesignerError::Failed(format!("{}: cannot write the chart: {e}", out.display())))?;
        if !sim.json {
            text.push_str(&format!("\nChart of discoveries over time: {}\n", out.display()));
        }
    }
    Ok(text)
}

/// Which behaviour player `i` (from 0) has: mixed is half wanderers, then a quarter each of
/// hint followers and clue racers, in turn.
fn kind_of(behaviour: Behaviour, i: u32) -> Kind {
    match behaviour {
        Behaviour::Wander => Kind::Wander,
        Behaviour::Hints => Kind::Hints,
        Behaviour::Clues => Kind::Clues,
        Behaviour::Mixed => match i % 4 {
            0 | 2 => Kind::Wander,
            1 => Kind::Hints,
            _ => Kind::Clues,
        },
    }
}

/// Where the server puts a new player: a point of the spawn's disc drawn from its id, on
/// walkable ground (the host's rule; the spawn itself after 8 tries).
fn spawn_point(spawn: Spawn, radius: f32, id: u64, tiles: &TileWorld) -> Position {
    let at = Position { x: spawn.x, y: spawn.y };
    if radius <= 0.0 {
        return at;
    }
    let mut state = id;
    for _ in 0..8 {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let a = shared::mix(state);
        let angle = (a >> 32) as f32 / u32::MAX as f32 * std::f32::consts::TAU;
        let r = ((a & 0xffff_ffff) as f32 / u32::MAX as f32).sqrt() * radius;
        let (x, y) = (spawn.x + r * angle.cos(), spawn.y + r * angle.sin());
        if tiles.walkable(x, y) {
            return Position { x, y };
        }
    }
    at
}

/// A progress bar on standard error, redrawn about 5 times a second of wall time.
struct Progress {
    on: bool,
    total: u64,
    rate: u32,
    started: Instant,
    last: Instant,
}

impl Progress {
    fn new(on: bool, total: u64, rate: u32) -> Self {
        let now = Instant::now();
        Progress { on, total, rate, started: now, last: now }
    }

    fn show(&mut self, tick: u64) {
        if !self.on || !tick.is_multiple_of(256) || self.last.elapsed() < Duration::from_millis(200) {
            return;
        }
        self.last = Instant::now();
        let done = tick as f64 / self.total.max(1) as f64;
        let width = 30;
        let filled = (done * width as f64) as usize;
        let speed = tick as f64 / f64::from(self.rate) / self.started.elapsed().as_secs_f64().max(1e-9);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r[{}{}] {:>3.0} %  {} of {} game time, {:.0}x real time ",
            "#".repeat(filled),
            " ".repeat(width - filled),
            done * 100.0,
            report::clock(tick as f64 / f64::from(self.rate)),
            report::clock(self.total as f64 / f64::from(self.rate)),
            speed
        );
        let _ = err.flush();
    }

    fn clear(&self) {
        if self.on {
            let _ = write!(std::io::stderr().lock(), "\r{}\r", " ".repeat(80));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pack in a fresh folder under the system's temporary one: a coin table and a small
    /// hunt on a 32 x 32 world, a FirstFinder vault with an Area clue and a PerPlayer vault with
    /// one given on request.
    fn pack(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("veltrix-simulate-{name}-{}", std::process::id()));
        let write = |file: &str, text: &str| {
            let path = dir.join("Server").join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("Item/Items/Coin.json", r#"{"MaxStack": 99, "Value": 1}"#);
        write("Item/Items/Gem.json", r#"{"Rarity": "Rare", "Value": 50}"#);
        write(
            "Drops/Coins.json",
            r#"{"Container": {"Type": "Choice", "Containers": [
                {"Type": "Single", "Weight": 9, "Item": {"ItemId": "Coin", "QuantityMin": 1, "QuantityMax": 3}},
                {"Type": "Single", "Weight": 1, "Item": {"ItemId": "Gem"}}]},
              "Pity": {"After": 1, "Step": 1}}"#,
        );
        write(
            "TreasureHunt/Hunts/Small.json",
            r#"{"Seed": 3, "DurationSeconds": 600, "Vaults": [
                {"Id": "Crown", "At": {"X": 4, "Y": 5}, "LootTable": "Coins", "DigEffort": 5},
                {"Id": "Chest", "At": {"X": 20, "Y": 18}, "LootTable": "Coins", "Claim": "PerPlayer", "DigEffort": 2}],
              "Clues": [{"Id": "Crown_Area", "Vault": "Crown", "Trigger": {"AfterSeconds": 60},
                         "Kind": {"Area": {"Radius": 6, "ShrinkTo": 2, "ShrinkSeconds": 120}}},
                        {"Id": "Chest_Area", "Vault": "Chest", "Kind": {"Area": {"Radius": 5}}}]}"#,
        );
        dir
    }

    fn simulation(players: u32, seed: u64) -> Simulation {
        Simulation {
            hunt: "Small".into(),
            players,
            duration: None,
            seed,
            behaviour: Behaviour::Mixed,
            teams: None,
            play_on: false,
            json: true,
            chart: None,
            tick_rate: 10,
            max_speed: 8.0,
            spawn_radius: 2.0,
            progress: false,
        }
    }

    /// The same pack, seed and options give the same report; the report's counts agree with
    /// one another and with the rules (a FirstFinder vault claimed once at most, a PerPlayer
    /// vault once per player at most, every claim's loot counted against its table).
    #[test]
    fn a_simulation_repeats_exactly_and_its_counts_agree() {
        let dir = pack("repeat");
        let tiles = TileWorld::flat(32, 32);
        let spawn = Spawn { x: 16.0, y: 16.0 };
        let assets = crate::reload::load_pack(&dir, &tiles, spawn).unwrap();
        let run_once = |seed| run(&dir, &tiles, spawn, &assets, &simulation(8, seed)).unwrap();
        let first = run_once(5);
        assert_eq!(first, run_once(5));
        assert_ne!(first, run_once(6));
        let report: veltrix_sdk::serde_json::Value = veltrix_sdk::serde_json::from_str(&first).unwrap();
        let vaults = report["vaults"].as_array().unwrap();
        let claims = |id: &str| vaults.iter().find(|v| v["vault"] == id).unwrap()["claims"].as_u64().unwrap();
        assert!(claims("Crown") <= 1, "{first}");
        assert!(claims("Chest") <= 8, "{first}");
        let table = &report["tables"][0];
        assert_eq!(table["claims"].as_u64().unwrap(), claims("Crown") + claims("Chest"), "{first}");
        assert_eq!(report["discoveries"].as_array().unwrap().len() as u64, claims("Crown") + claims("Chest"));
        // The clue racers ask for the area given on request before they go.
        let chest_area = report["clues"].as_array().unwrap().iter().find(|c| c["clue"] == "Chest_Area").unwrap();
        assert!(chest_area["reached"].as_u64().unwrap() >= 1, "{chest_area}");
        // Ten minutes at 10 ticks a second, unless every FirstFinder vault went sooner.
        let ticks = report["ticks"].as_u64().unwrap();
        assert!(ticks == 6000 || report["ended"] == "AllClaimed", "{first}");
        let _ = std::fs::remove_dir_all(dir);
    }

    /// An unknown hunt is a usage error naming the hunts there are.
    #[test]
    fn an_unknown_hunt_names_those_there_are() {
        let dir = pack("unknown");
        let tiles = TileWorld::flat(32, 32);
        let spawn = Spawn { x: 16.0, y: 16.0 };
        let assets = crate::reload::load_pack(&dir, &tiles, spawn).unwrap();
        let sim = Simulation { hunt: "Smal".into(), ..simulation(1, 1) };
        let err = run(&dir, &tiles, spawn, &assets, &sim).unwrap_err();
        assert_eq!(err, DesignerError::Usage("unknown hunt `Smal` (did you mean `Small`?): the pack has Small".into()));
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Mixed is half wanderers, a quarter each of the others; players join where the host
    /// would put them, on walkable ground.
    #[test]
    fn mixed_players_and_where_they_join() {
        let kinds: Vec<Kind> = (0..8).map(|i| kind_of(Behaviour::Mixed, i)).collect();
        assert_eq!(kinds.iter().filter(|k| **k == Kind::Wander).count(), 4);
        assert_eq!(kinds.iter().filter(|k| **k == Kind::Hints).count(), 2);
        assert_eq!(kinds[..4], [Kind::Wander, Kind::Hints, Kind::Wander, Kind::Clues]);
        let mut tiles = TileWorld::flat(16, 16);
        tiles.set(8, 8, veltrix_sdk::Tile::Water);
        let spawn = Spawn { x: 8.5, y: 8.5 };
        assert_eq!(spawn_point(spawn, 0.0, 7, &tiles), Position { x: 8.5, y: 8.5 });
        for id in 1..50 {
            let at = spawn_point(spawn, 3.0, id, &tiles);
            assert!(tiles.walkable(at.x, at.y) && at.distance_squared(8.5, 8.5) <= 9.0, "{id}: {at:?}");
        }
    }
}
