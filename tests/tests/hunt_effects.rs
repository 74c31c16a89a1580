//! Active effects through the sdk's test harness: items used for their effects, stacking rules,
//! expiry on the exact tick, dig speed, treasure sense, and effects (and pity counters) that
//! outlast a reconnect and a restart. The harness runs at 10 ticks per second, so an effect of
//! 0.5 s lasts 5 ticks.

mod common;

use common::{HuntPack, dig};

use std::sync::Arc;

use serde_json::json;
use treasure_hunt::TreasureHuntConfig;
use treasure_hunt_ecs::{effects, hunt::PityCounters};
use veltrix_sdk::{
    MemoryStore, SpeedFactor, TileWorld,
    testing::{Executor, Harness},
};

const RATE: u32 = 10;

/// Items with effects, and vaults to find them in.
struct Pack(HuntPack);

impl Pack {
    fn new() -> Self {
        let pack = Pack(HuntPack::new());
        pack.0.write("Item/Items/Coin.json", r#"{"MaxStack": 50}"#);
        pack.0.write("Item/Items/Crown.json", r#"{"MaxStack": 1, "Rarity": "Legendary"}"#);
        pack.0.write("Item/Items/Boots.json", r#"{"MaxStack": 5, "Effect": "Swift"}"#);
        pack.0.write("Item/Items/Charm.json", r#"{"MaxStack": 5, "Effect": "Lucky"}"#);
        pack.0.write("Item/Items/Rod.json", r#"{"MaxStack": 5, "Effect": "Dowsing"}"#);
        pack.0
            .write("TreasureHunt/Effects/Swift.json", r#"{"DurationSeconds": 0.5, "MoveSpeed": 1.5, "DigSpeed": 2.0}"#);
        pack.0.write(
            "TreasureHunt/Effects/Lucky.json",
            r#"{"DurationSeconds": 1, "Stacking": "Stack", "MaxStacks": 2, "Luck": 1.0}"#,
        );
        pack.0.write(
            "TreasureHunt/Effects/Dowsing.json",
            r#"{"DurationSeconds": 3, "Stacking": "Ignore", "TreasureSense": 10}"#,
        );
        let single = |item: &str, n: u32| json!({"Type": "Single", "Item": {"ItemId": item, "QuantityMin": n, "QuantityMax": n}});
        pack.0.write(
            "Drops/Kit.json",
            &json!({"Container": {"Type": "Multiple", "Containers": [
                single("Coin", 5), single("Boots", 3), single("Charm", 3), single("Rod", 2)]}})
            .to_string(),
        );
        pack.0.write("Drops/Coins.json", &json!({"Container": single("Coin", 5)}).to_string());
        // The crown is too rare to drop here: every claim adds to the pity counter.
        pack.0.write(
            "Drops/Gamble.json",
            r#"{"Container": {"Type": "Choice", "Containers": [
                {"Type": "Single", "Item": {"ItemId": "Coin"}},
                {"Type": "Single", "Weight": 0.0000001, "Item": {"ItemId": "Crown"}}]},
                "Pity": {"After": 5, "Step": 0.5}}"#,
        );
        // After one claim without the crown, its weight is multiplied a trillionfold: 1000 to 1.
        pack.0.write(
            "Drops/Long_Shot.json",
            r#"{"Container": {"Type": "Choice", "Containers": [
                {"Type": "Single", "Item": {"ItemId": "Coin"}},
                {"Type": "Single", "Weight": 0.0000001, "Item": {"ItemId": "Crown"}}]},
                "Pity": {"After": 1, "Step": 1000000000000}}"#,
        );
        let vault = |id: &str, x: u32, y: u32, table: &str, effort: u32| {
            json!({"Id": id, "At": {"X": x, "Y": y}, "LootTable": table, "Claim": "PerPlayer", "DigEffort": effort,
                   "SparkleRadius": 0})
        };
        let hunt = json!({"Seed": 3, "Vaults": [
            vault("Kit", 10, 10, "Kit", 1),
            vault("Deep", 12, 10, "Coins", 4),
            vault("Gamble", 11, 12, "Gamble", 1),
            vault("Sense_A", 30, 10, "Coins", 1),
            vault("Sense_B", 34, 10, "Coins", 1),
            vault("Shot_1", 50, 50, "Long_Shot", 1),
            vault("Shot_2", 52, 50, "Long_Shot", 1),
            vault("Shot_3", 51, 52, "Long_Shot", 1)]});
        pack.0.write("TreasureHunt/Hunts/Test.json", &hunt.to_string());
        pack
    }

    fn harness(&self) -> Harness {
        self.harness_on(Arc::new(MemoryStore::default()))
    }

    /// The mod on a store that may hold an earlier run's saves (a restart).
    fn harness_on(&self, store: Arc<MemoryStore>) -> Harness {
        let tiles = TileWorld::flat(64, 64);
        let mut harness = Harness::with_executor(tiles, Executor::SingleThreaded).with_store(store).tick_rate(RATE);
        let config = TreasureHuntConfig { hunt: "Test".into(), inventory_slots: 8, ..Default::default() };
        self.0.add_to(&mut harness, config).unwrap();
        harness
    }
}

fn use_item(h: &mut Harness, name: &str, request: u32, item: &str) {
    h.send(name, "UseItem", Some(request), &json!({"Item": item}));
}

/// Alice at (11.5, 11.5) is within reach of Kit, Deep and Gamble; she opens Kit in tick 1.
fn alice_with_a_kit(h: &mut Harness) {
    h.join("alice", 11.5, 11.5);
    dig(h, "alice", 1, 10, 10);
    h.tick();
}

/// The ticks in which a line of `transcript` holds `needle`.
fn ticks_of(transcript: &str, needle: &str) -> Vec<u64> {
    transcript.lines().filter(|l| l.contains(needle)).map(|l| l.split(' ').nth(1).unwrap().parse().unwrap()).collect()
}

/// Using Boots starts Swift (0.5 s: 5 ticks) in tick 2; it ends in tick 7, not 6 or 8. Using
/// an item not held, or one without an effect, is refused and consumes nothing.
#[test]
fn an_item_starts_its_effect_which_ends_on_its_exact_tick() {
    let pack = Pack::new();
    let mut h = pack.harness();
    alice_with_a_kit(&mut h);
    use_item(&mut h, "alice", 2, "Boots");
    use_item(&mut h, "alice", 3, "Pebble");
    use_item(&mut h, "alice", 4, "Coin");
    h.tick();
    let alice = h.player_entity("alice").unwrap();
    assert_eq!(h.world().get::<SpeedFactor>(alice), Some(&SpeedFactor(1.5)), "the host's movement reads it");
    h.run_until(8);
    insta::assert_snapshot!(h.transcript());
    let transcript = h.transcript();
    assert_eq!(ticks_of(&transcript, "EffectStarted"), [2]);
    assert!(transcript.contains(r#"EffectStarted #2 {"Effect":"Swift","Stacks":1,"Ticks":5}"#), "{transcript}");
    assert_eq!(ticks_of(&transcript, "EffectEnded"), [2 + 5]);
    assert_eq!(h.world().get::<SpeedFactor>(alice), Some(&SpeedFactor(1.0)), "back to normal");
}

/// Refresh starts the duration over; Stack adds stacks up to MaxStacks and starts it over for
/// all; Ignore does nothing while active (a second Rod is refused and kept; a command's grant
/// changes nothing).
#[test]
fn refresh_stack_and_ignore() {
    let pack = Pack::new();
    let mut h = pack.harness();
    alice_with_a_kit(&mut h);
    use_item(&mut h, "alice", 2, "Boots");
    use_item(&mut h, "alice", 3, "Charm");
    use_item(&mut h, "alice", 4, "Rod");
    h.tick();
    use_item(&mut h, "alice", 5, "Charm");
    use_item(&mut h, "alice", 6, "Rod");
    h.tick();
    let alice = h.player_entity("alice").unwrap();
    assert_eq!(
        effects::grant_now(h.world_mut(), alice, "Dowsing", None),
        Ok("Dowsing is already active for 29 more ticks: unchanged".into())
    );
    assert!(effects::grant_now(h.world_mut(), alice, "Dowsin", None).unwrap_err().contains("did you mean \"Dowsing\""));
    use_item(&mut h, "alice", 7, "Boots");
    use_item(&mut h, "alice", 8, "Charm");
    h.tick();
    h.run_until(15);
    insta::assert_snapshot!(h.transcript());
    let transcript = h.transcript();
    // Swift: from tick 2, refreshed in tick 4 for 5 ticks. Lucky: stacked in ticks 3 and 4, so
    // 10 ticks from tick 4.
    assert_eq!(ticks_of(&transcript, r#"EffectEnded {"Effect":"Swift"}"#), [4 + 5]);
    assert_eq!(ticks_of(&transcript, r#"EffectEnded {"Effect":"Lucky"}"#), [4 + 10]);
    assert!(transcript.contains(r#"EffectStarted #8 {"Effect":"Lucky","Stacks":2,"Ticks":10}"#), "{transcript}");
    assert!(transcript.contains("Dowsing is already active (ends in 2.9 s)"), "{transcript}");
}

/// With Swift (DigSpeed 2) a vault of 4 digs opens in 2; without, in 4. The effect applies to
/// a dig in the tick the item is used.
#[test]
fn dig_speed_opens_a_vault_in_fewer_digs() {
    let pack = Pack::new();
    let mut h = pack.harness();
    alice_with_a_kit(&mut h);
    h.join("bob", 12.5, 11.5);
    use_item(&mut h, "alice", 2, "Boots");
    dig(&mut h, "alice", 3, 12, 10);
    h.tick();
    dig(&mut h, "alice", 4, 12, 10);
    for request in 1..=4 {
        dig(&mut h, "bob", request, 12, 10);
        h.tick();
    }
    insta::assert_snapshot!(h.transcript());
    let transcript = h.transcript();
    assert_eq!(ticks_of(&transcript, "alice <- Veltrix:TreasureHunt/LootGranted #4"), [3]);
    assert_eq!(ticks_of(&transcript, "bob <- Veltrix:TreasureHunt/LootGranted #4"), [6]);
}

/// Dowsing (TreasureSense 10) tells alice, once a second and only when it changed, how many
/// vaults she may still claim are within 10 tiles: a count, never a vault's id or tile.
#[test]
fn treasure_sense_pings_a_count_and_no_position() {
    let pack = Pack::new();
    let mut h = pack.harness();
    alice_with_a_kit(&mut h);
    use_item(&mut h, "alice", 2, "Rod");
    h.run_until(10);
    // Deep and Gamble are near; Kit she claimed; Sense_A and Sense_B are far.
    dig(&mut h, "alice", 3, 11, 12);
    h.run_until(20);
    h.move_to("alice", 30.5, 12.5);
    h.run_until(33);
    insta::assert_snapshot!(h.transcript());
    let transcript = h.transcript();
    let pings: Vec<&str> = transcript.lines().filter(|l| l.contains("TreasureSense")).collect();
    assert_eq!(
        pings,
        [
            r#"tick 10 alice <- Veltrix:TreasureHunt/TreasureSense {"Vaults":2}"#,
            r#"tick 20 alice <- Veltrix:TreasureHunt/TreasureSense {"Vaults":1}"#,
            r#"tick 30 alice <- Veltrix:TreasureHunt/TreasureSense {"Vaults":2}"#,
        ]
    );
    assert_eq!(ticks_of(&transcript, "EffectEnded"), [2 + 30]);
    // Nothing she received names the vaults she sensed but did not open.
    for frame in h.frames("alice") {
        for id in [&b"Sense_A"[..], b"Sense_B", b"Deep"] {
            assert!(!frame.windows(id.len()).any(|w| w == id), "{frame:?}");
        }
    }
}

/// Effects keep their end tick while the player is away: back before it, the player hears of
/// the effect with the ticks left and it ends on time; one that ended meanwhile is gone.
#[test]
fn an_effect_survives_leave_and_join() {
    let pack = Pack::new();
    let mut h = pack.harness();
    alice_with_a_kit(&mut h);
    use_item(&mut h, "alice", 2, "Charm");
    use_item(&mut h, "alice", 3, "Boots");
    h.tick();
    // Away from tick 3 to tick 7.
    h.leave("alice");
    h.run_until(7);
    h.join("alice", 11.5, 11.5);
    h.run_until(13);
    insta::assert_snapshot!(h.transcript());
    let transcript = h.transcript();
    // Lucky: from tick 2, ends in 12. Swift ended in tick 7 while she was away: not a word.
    let back = r#"tick 8 alice <- Veltrix:TreasureHunt/EffectStarted {"Effect":"Lucky","Stacks":1,"Ticks":4}"#;
    assert!(transcript.contains(back), "{transcript}");
    assert_eq!(ticks_of(&transcript, "EffectEnded"), [12]);
    assert_eq!(ticks_of(&transcript, r#""Effect":"Swift""#), [2]);
}

/// After a restart, an effect has the ticks it had left when the server stopped, and the pity
/// counter of a table counts on.
#[test]
fn effects_and_pity_counters_survive_a_restart() {
    let pack = Pack::new();
    let mut h = pack.harness();
    alice_with_a_kit(&mut h);
    use_item(&mut h, "alice", 2, "Charm");
    dig(&mut h, "alice", 3, 11, 12);
    h.tick();
    h.run_until(5);
    let alice = h.player_entity("alice").unwrap();
    assert_eq!(h.world().get::<PityCounters>(alice).unwrap().0.get("Gamble"), Some(&1));
    let store = h.store();
    // Lucky from tick 2 ends in tick 12: 7 ticks left after tick 5.
    h.shutdown();

    let mut h = pack.harness_on(store);
    h.join("alice", 11.5, 11.5);
    h.run_until(9);
    insta::assert_snapshot!(h.transcript());
    let transcript = h.transcript();
    let back = r#"tick 1 alice <- Veltrix:TreasureHunt/EffectStarted {"Effect":"Lucky","Stacks":1,"Ticks":7}"#;
    assert!(transcript.contains(back), "{transcript}");
    assert_eq!(ticks_of(&transcript, "EffectEnded"), [1 + 7]);
    let alice = h.player_entity("alice").unwrap();
    assert_eq!(h.world().get::<PityCounters>(alice).unwrap().0.get("Gamble"), Some(&1));
}

/// Dig effort in a later run outlasts a restart for a player whose effect was still active at
/// shutdown (the effects' clocks are written last, and must name the run the effort is for).
#[test]
fn dig_effort_of_a_later_run_survives_a_restart_with_an_effect_active() {
    let pack = Pack::new();
    let mut h = pack.harness();
    alice_with_a_kit(&mut h);
    assert_eq!(h.console("hunt stop").unwrap(), "hunt Test ended (run 1): Stopped");
    assert!(h.console("hunt start Test").unwrap().starts_with("hunt Test started (run 2)"));
    use_item(&mut h, "alice", 2, "Charm");
    dig(&mut h, "alice", 3, 12, 10);
    h.tick();
    let progress = r#"alice <- Veltrix:TreasureHunt/DigProgress #3 {"Effort":1,"Required":4,"X":12,"Y":10}"#;
    assert!(h.transcript().contains(progress), "{}", h.transcript());
    let store = h.store();
    h.shutdown();

    let mut h = pack.harness_on(store);
    h.join("alice", 11.5, 11.5);
    dig(&mut h, "alice", 4, 12, 10);
    h.tick();
    let transcript = h.transcript();
    assert!(transcript.contains("EffectStarted"), "the effect was active at shutdown: {transcript}");
    let progress = r#"alice <- Veltrix:TreasureHunt/DigProgress #4 {"Effort":2,"Required":4,"X":12,"Y":10}"#;
    assert!(transcript.contains(progress), "{transcript}");
}

/// Pity in play: a claim of Long_Shot without the crown counts; the next claim's crown weight
/// is raised until the crown drops (with `Step` 1e12, at once), and the count starts over.
#[test]
fn pity_raises_the_rare_weight_until_it_drops_then_starts_over() {
    let pack = Pack::new();
    let mut h = pack.harness();
    h.join("alice", 51.5, 51.5);
    dig(&mut h, "alice", 1, 50, 50);
    h.tick();
    let alice = h.player_entity("alice").unwrap();
    let count = |h: &Harness| h.world().get::<PityCounters>(alice).unwrap().0.get("Long_Shot").copied();
    assert_eq!(count(&h), Some(1));
    dig(&mut h, "alice", 2, 52, 50);
    h.tick();
    assert_eq!(count(&h), None, "back to 0 after the crown");
    dig(&mut h, "alice", 3, 51, 52);
    h.tick();
    assert_eq!(count(&h), Some(1));
    let transcript = h.transcript();
    let loot: Vec<&str> = transcript
        .lines()
        .filter(|l| l.contains("LootGranted"))
        .map(|l| l.split(r#"{"Items":"#).nth(1).unwrap())
        .collect();
    assert_eq!(loot.len(), 3, "{transcript}");
    assert!(loot[0].starts_with(r#"[{"Item":"Coin""#) && loot[1].starts_with(r#"[{"Item":"Crown""#), "{loot:?}");
    assert!(loot[2].starts_with(r#"[{"Item":"Coin""#), "{loot:?}");
}
