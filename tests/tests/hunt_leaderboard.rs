//! The hunt's leaderboard through the harness: ties broken as documented, the top sent at most
//! once a second and only when it changed, the board to a player who joins, ranks on request,
//! and the board (and an ended hunt's final board) across a restart.

mod common;

use common::HuntPack;

use std::sync::Arc;

use serde_json::json;
use treasure_hunt::{TreasureHuntConfig, leaderboard};
use veltrix_sdk::{
    ClientMessages, MemoryStore, Outbox, TileWorld,
    testing::{Executor, Harness},
};

/// Ticks per second in these tests: "once a second" is every 10 ticks.
const RATE: u32 = 10;

/// Items and loot tables of fixed yield, and one hunt `Test` of PerPlayer vaults, each opened
/// by one dig: `Five` and `Five_Again` give 5 points, `Dust` a worthless pebble.
struct Pack(HuntPack);

impl Pack {
    fn new() -> Self {
        let pack = Pack(HuntPack::new());
        pack.0.write("Item/Items/Coin.json", r#"{"MaxStack": 50, "Value": 1}"#);
        pack.0.write("Item/Items/Pebble.json", r#"{"MaxStack": 10}"#);
        let single = |item: &str, n: u32| {
            json!({"Container": {"Type": "Single", "Item": {"ItemId": item, "QuantityMin": n, "QuantityMax": n}}})
                .to_string()
        };
        pack.0.write("Drops/Five.json", &single("Coin", 5));
        pack.0.write("Drops/Dust.json", &single("Pebble", 1));
        let vault = |id: &str, x: u32, table: &str| json!({"Id": id, "At": {"X": x, "Y": 10}, "LootTable": table, "Claim": "PerPlayer", "DigEffort": 1});
        let hunt = json!({"Seed": 3, "Vaults": [vault("Five", 10, "Five"), vault("Dust", 11, "Dust"),
                                                vault("Five_Again", 12, "Five")]});
        pack.0.write("TreasureHunt/Hunts/Test.json", &hunt.to_string());
        pack
    }

    /// The mod with a top 3 on `store` (a restart when it holds an earlier run's saves).
    fn harness(&self, store: Arc<MemoryStore>) -> Harness {
        self.harness_running(store, "Test")
    }

    fn harness_running(&self, store: Arc<MemoryStore>, hunt: &str) -> Harness {
        let mut h =
            Harness::with_executor(TileWorld::flat(32, 32), Executor::SingleThreaded).tick_rate(RATE).with_store(store);
        let config = TreasureHuntConfig { hunt: hunt.into(), leaderboard_size: 3, ..Default::default() };
        self.0.add_to(&mut h, config).unwrap();
        h
    }
}

fn dig(h: &mut Harness, name: &str, request: u32, x: u32) {
    h.send(name, "Dig", Some(request), &json!({"X": x, "Y": 10}));
}

/// The ticks at which `name` received a `Leaderboard`.
fn board_ticks(h: &Harness, name: &str) -> Vec<u64> {
    h.transcript_of(name)
        .lines()
        .filter(|l| l.contains("<- Veltrix:TreasureHunt/Leaderboard "))
        .map(|l| l.split(' ').nth(1).unwrap().parse().unwrap())
        .collect()
}

/// Only the leaderboard's lines (the digs' own answers are the hunt snapshots' business).
fn board_lines(h: &Harness) -> String {
    h.transcript()
        .lines()
        .filter(|l| l.contains("Leaderboard") || l.contains("Rank") || l.contains(" join ") || l.contains("Refused"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Four players tie on score in every way the order knows; the top 3 goes out at the first
/// change, then no sooner than a second later, also when a first claim below the top only
/// changes how many are ranked; a player joining late gets the board; `Rank` answers everyone,
/// ranked or not.
#[test]
fn leaderboard_ties() {
    let pack = Pack::new();
    let mut h = pack.harness(Arc::new(MemoryStore::default()));
    for name in ["ann", "ben", "cat", "dan", "eve"] {
        h.join(name, 11.5, 11.5);
    }
    h.tick();
    // Tick 2: ann finds 5 points: the first board goes out at once.
    dig(&mut h, "ann", 1, 10);
    h.tick();
    // Tick 3: ben, the same 5 points later; tick 4: a worthless vault gives him a second vault,
    // putting him ahead of ann on vaults.
    dig(&mut h, "ben", 1, 10);
    h.tick();
    dig(&mut h, "ben", 2, 11);
    h.tick();
    // Tick 5: dan's dig arrives before cat's, both find 5 points: equal score, vaults and tick,
    // so cat (the lower id) ranks first; both behind ann, who found hers earlier.
    dig(&mut h, "dan", 1, 10);
    dig(&mut h, "cat", 1, 10);
    h.tick();
    // Tick 14: eve finds 5 points, last of all: fifth, below the top 3; the top is the same but
    // five players are ranked now: sent at tick 22, a second after the last board.
    h.run_until(13);
    dig(&mut h, "eve", 1, 10);
    h.tick();
    h.run_until(24);
    // Tick 25: fay joins and gets the board; eve, fay, cat and dan ask their rank.
    h.join("fay", 11.5, 11.5);
    h.send("eve", "Rank", Some(2), &json!({}));
    h.send("fay", "Rank", Some(1), &json!({}));
    h.send("cat", "Rank", Some(2), &json!({}));
    h.send("dan", "Rank", Some(2), &json!({}));
    h.tick();
    // Tick 26: dan's second vault reorders the top: sent at tick 32, a second after the last.
    dig(&mut h, "dan", 2, 12);
    h.send("dan", "Rank", Some(3), &json!({}));
    h.tick();
    h.run_until(40);

    // ann's board: tick 2 (first change), tick 12 (the changes of ticks 3 to 5, a second after
    // tick 2), tick 22 (eve ranked fifth: Players 5), tick 32 (dan's second vault).
    assert_eq!(board_ticks(&h, "ann"), [2, 12, 22, 32]);
    assert_eq!(board_ticks(&h, "fay"), [25, 32], "at join, then with everyone");
    let transcript = board_lines(&h);
    assert!(
        transcript.contains(
            r#"tick 22 ann <- Veltrix:TreasureHunt/Leaderboard {"Players":5,"Top":[{"Player":"ben","Rank":1,"Score":5,"Vaults":2},{"Player":"ann","Rank":2,"Score":5,"Vaults":1},{"Player":"cat","Rank":3,"Score":5,"Vaults":1}]}"#
        ),
        "{transcript}"
    );
    let transcript = board_lines(&h);
    assert!(
        transcript.contains(
            r#"tick 12 ann <- Veltrix:TreasureHunt/Leaderboard {"Players":4,"Top":[{"Player":"ben","Rank":1,"Score":5,"Vaults":2},{"Player":"ann","Rank":2,"Score":5,"Vaults":1},{"Player":"cat","Rank":3,"Score":5,"Vaults":1}]}"#
        ),
        "{transcript}"
    );
    insta::assert_snapshot!(transcript);
}

/// The board, a find after the restart, and an ended hunt's final board across a restart.
#[test]
fn the_leaderboard_survives_a_restart() {
    let pack = Pack::new();
    let mut h = pack.harness(Arc::new(MemoryStore::default()));
    // The harness gives ids in join order: cat 1, ann 2, ben 3, in both runs.
    for name in ["cat", "ann", "ben"] {
        h.join(name, 11.5, 11.5);
    }
    h.tick();
    dig(&mut h, "ben", 1, 10);
    h.tick();
    dig(&mut h, "ann", 1, 10);
    h.tick();
    h.run_until(40);
    let store = h.store();
    h.shutdown();

    let mut h = pack.harness(store);
    for name in ["cat", "ann", "ben"] {
        h.join(name, 11.5, 11.5);
    }
    h.tick();
    // Cat's find, at tick 2 of this run, is later than ann's at tick 3 of the last one: cat
    // ranks behind her, though its id is lower.
    dig(&mut h, "cat", 1, 10);
    h.send("ann", "Rank", Some(1), &json!({}));
    h.tick();
    h.send("cat", "Rank", Some(2), &json!({}));
    h.tick();
    let frozen = leaderboard::freeze(h.world_mut(), "Test").unwrap();
    assert_eq!(frozen.players, 3, "{}", h.transcript());
    assert_eq!(frozen.top.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["ben", "ann", "cat"]);
    assert!(leaderboard::freeze(h.world_mut(), "Other").unwrap_err().contains("not Other's"));
    h.tick();
    insta::assert_snapshot!(board_lines(&h));
    let store = h.store();
    h.shutdown();

    // The final board stays after the hunt: a server that runs no hunt still has it.
    let h = pack.harness_running(store, "");
    assert_eq!(leaderboard::final_board_of(h.world(), "Test").unwrap(), Some(frozen));
    assert_eq!(leaderboard::final_board_of(h.world(), "Other").unwrap(), None);
}

/// After a restart with the hunt ended, its board is kept as before the restart: a player
/// joining gets it, and `Rank` answers from it, as `hunt status` shows it.
#[test]
fn an_ended_hunts_board_and_ranks_survive_a_restart() {
    let pack = Pack::new();
    let mut h = pack.harness(Arc::new(MemoryStore::default()));
    h.join("ann", 11.5, 11.5);
    h.tick();
    dig(&mut h, "ann", 1, 10);
    h.tick();
    assert_eq!(h.console("hunt stop Test").unwrap(), "hunt Test ended (run 1): Stopped");
    h.tick();
    let store = h.store();
    h.shutdown();

    let mut h = pack.harness(store);
    assert!(h.console("hunt status Test").unwrap().starts_with("hunt Test: Ended, run 1\n"));
    h.join("ann", 11.5, 11.5);
    h.join("ben", 11.5, 11.5);
    h.tick();
    h.send("ann", "Rank", Some(2), &json!({}));
    h.send("ben", "Rank", Some(1), &json!({}));
    h.tick();
    let lines = board_lines(&h);
    let board = r#"Leaderboard {"Players":1,"Top":[{"Player":"ann","Rank":1,"Score":5,"Vaults":1}]}"#;
    for expected in [
        format!("tick 1 ann <- Veltrix:TreasureHunt/{board}"),
        format!("tick 1 ben <- Veltrix:TreasureHunt/{board}"),
        r#"tick 2 ann <- Veltrix:TreasureHunt/YourRank #2 {"Of":1,"Rank":1,"Score":5,"Vaults":1}"#.into(),
        r#"tick 2 ben <- Veltrix:TreasureHunt/YourRank #1 {"Of":1,"Rank":null,"Score":0,"Vaults":0}"#.into(),
    ] {
        assert!(lines.contains(&expected), "{expected}\n{lines}");
    }
}

/// Without a hunt there is no board to rank on.
#[test]
fn rank_without_a_hunt_is_refused() {
    let pack = Pack::new();
    let mut h = pack.harness_running(Arc::new(MemoryStore::default()), "");
    h.join("ann", 1.5, 1.5);
    h.send("ann", "Rank", Some(1), &json!({}));
    h.tick();
    assert!(
        h.transcript().contains("Refused #1: no hunt is running: there is no leaderboard yet"),
        "{}",
        h.transcript()
    );
}

/// docs/protocol.md lists, for the mod's `Welcome.mods` entry, exactly the kinds the mod
/// registers (so a new message cannot go undocumented there).
#[test]
fn the_protocol_doc_lists_the_kinds_the_mod_registers() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md")).unwrap();
    let section = &docs[docs.find("## The treasure hunt's messages").expect("the mod's section")..];
    let listed = |row: &str| -> Vec<String> {
        let line = section.lines().find(|l| l.starts_with(row)).unwrap_or_else(|| panic!("no row {row}"));
        line[row.len()..].split('`').skip(1).step_by(2).map(str::to_string).collect()
    };
    let pack = Pack::new();
    let h = pack.harness(Arc::new(MemoryStore::default()));
    let ns = "Veltrix:TreasureHunt";
    assert_eq!(listed("| `client_messages` |"), h.world().resource::<ClientMessages>().kinds(ns));
    assert_eq!(listed("| `server_messages` |"), h.world().resource::<Outbox>().kinds(ns));
}
