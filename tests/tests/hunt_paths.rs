//! Hints on a 2048 x 2048 world through the harness with the treasure-hunt mod: the walking
//! distance field of a clue's target is computed on the mod's path worker while the ticks go
//! on, each within the tick budget, and the hint is answered in the tick the field is ready,
//! with the band of the walk around a wall, not of the straight line.

mod common;

use std::time::{Duration, Instant};

use common::HuntPack;
use treasure_hunt::TreasureHuntConfig;
use treasure_hunt_ecs::{
    assets::TilePos,
    hints::{HeatBand, HintKind, HintRequest},
    paths::PathCache,
};
use veltrix_sdk::{Tile, TileWorld, protocol::ServerMessage, testing::Harness};

const SIZE: u32 = 2048;
/// The tick budget at 30 ticks per second.
const BUDGET: Duration = Duration::from_millis(33);

/// 2048 x 2048 tiles with a rock wall along x = 1000, from y = 0 to y = 2039: the gap is at the
/// far end (y = 2040 to 2047).
fn walled_world() -> TileWorld {
    let mut tiles = vec![Tile::Ground; (SIZE * SIZE) as usize];
    for y in 0..2040 {
        tiles[(y * SIZE + 1000) as usize] = Tile::Rock;
    }
    TileWorld::from_tiles(SIZE, SIZE, tiles)
}

fn pack() -> HuntPack {
    let pack = HuntPack::new();
    pack.write("Item/Items/Coin.json", r#"{"MaxStack": 50}"#);
    pack.write("Drops/Coins.json", r#"{"Container": {"Type": "Single", "Item": {"ItemId": "Coin"}}}"#);
    pack.write(
        "TreasureHunt/Hunts/Test.json",
        r#"{"Seed": 1, "Vaults": [{"Id": "Far_Side", "At": {"X": 1010, "Y": 100}, "LootTable": "Coins"}]}"#,
    );
    pack
}

#[test]
fn ticks_stay_within_budget_while_a_2048_square_field_is_computed() {
    let pack = pack();
    let mut harness = Harness::new(walled_world());
    let config = TreasureHuntConfig { hunt: "Test".into(), path_workers: 1, ..Default::default() };
    pack.add_to(&mut harness, config).unwrap();
    // 20 tiles from the target as the crow flies, on the other side of the wall.
    harness.join("alice", 990.5, 100.5);
    harness.tick();
    let entity = harness.player_entity("alice").unwrap();
    let player = harness.player_id("alice").unwrap();
    let target = TilePos { x: 1010, y: 100 };
    for (request, clue, kind) in
        [(Some(7), "Heat", HintKind::HotCold { bands: HeatBand::defaults() }), (Some(8), "Needle", HintKind::Compass)]
    {
        harness.world_mut().write_message(HintRequest { entity, player, request, clue: clue.into(), target, kind });
    }
    let asked = harness.current_tick() + 1;
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    let answered = loop {
        let tick_start = Instant::now();
        harness.tick();
        let took = tick_start.elapsed();
        slowest = slowest.max(took);
        assert!(took < BUDGET, "tick {} took {took:?}, over the {BUDGET:?} budget", harness.current_tick());
        if !hints(&harness).is_empty() {
            break harness.current_tick();
        }
        assert!(start.elapsed() < Duration::from_secs(25), "no hint after 25 s ({} ticks)", harness.current_tick());
        // Ticks at the server's pace, so that the worker gets the time a real server leaves it.
        std::thread::sleep(BUDGET.saturating_sub(took));
    };
    assert!(answered > asked, "the field is computed off the tick: never in the tick that asked for it");
    let cache = harness.world().resource::<PathCache>().stats();
    assert_eq!(cache.computations, 1, "{cache:?}");
    assert_eq!(cache.bytes_held, (SIZE as usize + 2) * (SIZE as usize + 2) * 4);
    // Around the wall's far end: about 3900 tiles on foot, so Cold; the first step goes down toward the gap
    // (SouthEast and South start equally short walks: SouthEast is nearer the straight line).
    assert_eq!(
        hints(&harness),
        [
            r#"Veltrix:TreasureHunt/Hint #Some(7) {"Band":"Cold","Clue":"Heat","Direction":null,"Kind":"HotCold"}"#,
            r#"Veltrix:TreasureHunt/Hint #Some(8) {"Band":null,"Clue":"Needle","Direction":"SouthEast","Kind":"Compass"}"#,
        ]
    );
    eprintln!(
        "2048 x 2048 field ready {} tick(s) after the request ({:?}); slowest tick {slowest:?}",
        answered - asked,
        start.elapsed()
    );
    harness.shutdown();
}

/// A clue's field is computed when the pack comes in force, before any run: once it is ready, a
/// HotCold or Compass clue asked after `hunt start` is answered in the tick it is asked, on the
/// same 2048 x 2048 world, without a computation of its own.
#[test]
fn clue_hints_on_a_2048_square_world_are_answered_in_the_tick_they_are_asked() {
    let pack = pack();
    pack.write(
        "TreasureHunt/Hunts/Test.json",
        r#"{"Seed": 1, "Vaults": [{"Id": "Far_Side", "At": {"X": 1010, "Y": 100}, "LootTable": "Coins"}],
            "Clues": [{"Id": "Heat", "Vault": "Far_Side", "Kind": "HotCold"},
                      {"Id": "Needle", "Vault": "Far_Side", "Kind": "Compass"}]}"#,
    );
    let mut harness = Harness::new(walled_world());
    // No hunt running at start: the fields come from the pack alone.
    let config = TreasureHuntConfig { hunt: String::new(), path_workers: 1, ..Default::default() };
    pack.add_to(&mut harness, config).unwrap();
    let target = TilePos { x: 1010, y: 100 };
    let start = Instant::now();
    while harness.world().resource::<PathCache>().stats().bytes_held == 0 {
        assert!(start.elapsed() < Duration::from_secs(25), "the clue's field was never computed");
        harness.tick();
        std::thread::sleep(BUDGET);
    }
    assert!(!harness.world().resource::<PathCache>().is_computing(target));
    harness.console("hunt start Test").unwrap();
    harness.join("alice", 990.5, 100.5);
    harness.tick();
    harness.send("alice", "AskClue", Some(7), &serde_json::json!({"Clue": "Heat"}));
    harness.send("alice", "AskClue", Some(8), &serde_json::json!({"Clue": "Needle"}));
    harness.tick();
    assert_eq!(
        hints(&harness),
        [
            r#"Veltrix:TreasureHunt/Hint #Some(7) {"Band":"Cold","Clue":"Heat","Direction":null,"Kind":"HotCold"}"#,
            r#"Veltrix:TreasureHunt/Hint #Some(8) {"Band":null,"Clue":"Needle","Direction":"SouthEast","Kind":"Compass"}"#,
        ],
        "both hints in the tick they were asked"
    );
    let cache = harness.world().resource::<PathCache>().stats();
    assert_eq!((cache.computations, cache.hits, cache.misses), (1, 2, 0), "{cache:?}");
    harness.shutdown();
}

/// The hints alice received, as `Kind #request {json body}`.
fn hints(harness: &Harness) -> Vec<String> {
    harness
        .received("alice")
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Mod(m) if m.kind == "Hint" => {
                let body: serde_json::Value = veltrix_sdk::rmp_serde::from_slice(&m.body).unwrap();
                Some(format!("{}/{} #{:?} {body}", m.ns, m.kind, m.request))
            }
            _ => None,
        })
        .collect()
}
