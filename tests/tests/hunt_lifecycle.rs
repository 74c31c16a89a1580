//! A hunt's life and its clues, through the sdk's harness with the clock derived from the tick
//! (so every run repeats): timed and scheduled starts, MinPlayers, the end warnings and the
//! end, new runs, clue chains, proximity clues, clues on request, the `hunt` command and its
//! permissions, and what survives a restart.

mod common;

use common::{HuntPack, dig};

use std::sync::Arc;

use serde_json::json;
use treasure_hunt::{TreasureHuntConfig, clock::ClockSource};
use veltrix_sdk::{MemoryStore, TileWorld, testing::Harness};

/// A pack with coins, one loot table, language files and the hunt `Test` given as JSON.
struct Pack(HuntPack);

impl Pack {
    fn new(hunt: serde_json::Value) -> Self {
        let pack = Pack(HuntPack::new());
        pack.0.write("Item/Items/Coin.json", r#"{"MaxStack": 50, "Value": 1}"#);
        pack.0.write(
            "Drops/Coins.json",
            r#"{"Container": {"Type": "Single", "Item": {"ItemId": "Coin", "QuantityMin": 5, "QuantityMax": 9}}}"#,
        );
        pack.0.write("Languages/en-US/clues.lang", "# riddles\nclue.well = Where water sleeps, gold waits.\n");
        pack.0.write("Languages/fr-FR/clues.lang", "clue.well = Là où l'eau dort, l'or attend.\n");
        pack.0.write("TreasureHunt/Hunts/Test.json", &hunt.to_string());
        pack
    }

    /// The mod at 10 ticks per second, its clock at the Unix epoch at tick 0.
    fn harness(&self, config: TreasureHuntConfig, store: Arc<MemoryStore>) -> Result<Harness, String> {
        self.harness_at(10, config, store)
    }

    /// The same at `rate` ticks per second.
    fn harness_at(&self, rate: u32, config: TreasureHuntConfig, store: Arc<MemoryStore>) -> Result<Harness, String> {
        let mut harness = Harness::new(TileWorld::flat(64, 64)).tick_rate(rate).with_store(store);
        harness.world_mut().insert_resource(ClockSource::Ticks { origin_ms: 0 });
        self.0.add_to(&mut harness, config)?;
        Ok(harness)
    }
}

/// Paths computed on the tick thread (no workers), so hints come in a fixed tick.
fn config(hunt: &str) -> TreasureHuntConfig {
    TreasureHuntConfig { hunt: hunt.into(), path_workers: 0, ..Default::default() }
}

fn vaults() -> serde_json::Value {
    json!([
        {"Id": "Well", "At": {"X": 10, "Y": 10}, "LootTable": "Coins", "DigEffort": 1},
        {"Id": "Oak", "At": {"X": 40, "Y": 40}, "LootTable": "Coins", "DigEffort": 1},
        {"Id": "Far", "At": {"X": 60, "Y": 5}, "LootTable": "Coins"}
    ])
}

/// The lines of a transcript with this text.
fn lines_with<'a>(transcript: &'a str, text: &str) -> Vec<&'a str> {
    transcript.lines().filter(|l| l.contains(text)).collect()
}

/// A 12-second hunt started with the server: announced at the start (it has less than a
/// minute, so the first warning comes with it), warned 10 s before the end, ended on the
/// tick its time is up; digs after that are refused.
#[test]
fn a_timed_run_is_announced_warned_and_ended_on_time() {
    let pack = Pack::new(json!({"Seed": 3, "Vaults": vaults(), "DurationSeconds": 12}));
    let mut h = pack.harness(config("Test"), Arc::default()).unwrap();
    h.join("alice", 10.5, 11.5);
    h.run_ticks(125);
    dig(&mut h, "alice", 1, 10, 10);
    h.tick();
    let transcript = h.transcript();
    let news: Vec<&str> = lines_with(&transcript, "HuntAnnounced");
    insta::assert_snapshot!(news.join("\n"));
    assert!(transcript.contains("Refused #1: the hunt Test is over"), "{transcript}");
}

/// A daily window with MinPlayers: the start waits for the second player, then the window's
/// end ends the run; the next day's window starts run 2 from nothing (the vault can be
/// claimed again).
#[test]
fn a_daily_window_waits_for_players_and_runs_again_the_next_day() {
    let hunt = json!({"Seed": 3, "Vaults": vaults(), "MinPlayers": 2,
                      "Schedule": {"Daily": {"At": "00:00", "Minutes": 1}}});
    let pack = Pack::new(hunt);
    let mut h = pack.harness(config(""), Arc::default()).unwrap();
    h.join("alice", 10.5, 11.5);
    h.run_ticks(3);
    h.join("bob", 40.5, 41.5);
    h.tick();
    dig(&mut h, "alice", 1, 10, 10);
    h.tick();
    h.run_until(601);
    let transcript = h.transcript_of("alice");
    let news = lines_with(&transcript, "HuntAnnounced");
    insta::assert_snapshot!(news.join("\n"));
    assert_eq!(lines_with(&transcript, "LootGranted").len(), 1, "{transcript}");
    let status = h.console("hunt status Test").unwrap();
    assert!(status.starts_with("hunt Test: Ended, run 1\n") && status.contains("ended: TimeUp"), "{status}");

    // The next day (the clock moved on a day): a new run; Well is open again.
    let tick_ms = h.current_tick() as i64 * 100;
    h.world_mut().insert_resource(ClockSource::Ticks { origin_ms: 86_400_000 - tick_ms });
    h.clear_transcript();
    h.tick();
    dig(&mut h, "alice", 2, 10, 10);
    h.tick();
    let transcript = h.transcript_of("alice");
    assert!(transcript.contains("\"Event\":\"Started\""), "{transcript}");
    assert!(transcript.contains("LootGranted #2"), "the new run's vault is claimable again: {transcript}");
    assert!(h.console("hunt status Test").unwrap().starts_with("hunt Test: Active, run 2\n"));
}

/// A clue chain: a riddle after 2 seconds (from the language files), an area when Well is
/// claimed, a reveal for whoever comes near; a late joiner gets what was released to all, and
/// players ask for clues by id (HotCold and Compass answered as hints from where they stand).
#[test]
fn clues_are_released_by_time_chain_and_proximity() {
    let hunt = json!({"Seed": 3, "Vaults": vaults(), "Clues": [
        {"Id": "Riddle", "Vault": "Well", "Trigger": {"AfterSeconds": 2}, "Kind": {"Text": "clue.well"}},
        {"Id": "Oak_Area", "Vault": "Oak", "Trigger": {"VaultClaimed": "Well"},
         "Kind": {"Area": {"Radius": 12, "ShrinkTo": 4, "ShrinkSeconds": 4}}},
        {"Id": "Oak_Spot", "Vault": "Oak", "Trigger": {"Enter": {"X": 30, "Y": 30, "Radius": 3}}, "Kind": "Reveal"},
        {"Id": "Well_Hint", "Vault": "Well", "Kind": {"Text": "clue.well"}},
        {"Id": "Oak_Heat", "Vault": "Oak", "Kind": "HotCold"},
        {"Id": "Oak_Way", "Vault": "Oak", "Kind": "Compass"}
    ]});
    let pack = Pack::new(hunt);
    let mut h = pack.harness(config("Test"), Arc::default()).unwrap();
    h.join("alice", 10.5, 11.5);
    h.join("bob", 50.5, 50.5);
    h.tick();
    h.send("bob", "AskClue", Some(1), &json!({"Clue": "Oak_Spot"}));
    h.send("bob", "AskClue", Some(2), &json!({"Clue": "Well_Hint"}));
    h.send("bob", "AskClue", Some(3), &json!({"Clue": "Oak_Spt"}));
    h.send("bob", "AskClue", Some(4), &json!({"Clue": "Oak_Heat"}));
    h.send("bob", "AskClue", Some(5), &json!({"Clue": "Oak_Way"}));
    h.run_until(20);
    dig(&mut h, "alice", 1, 10, 10);
    h.run_until(25);
    h.move_to("bob", 31.0, 30.0);
    h.run_until(70);
    h.join("carol", 60.5, 60.5);
    h.tick();
    let transcript = h.transcript();
    let clues: Vec<&str> =
        transcript.lines().filter(|l| l.contains("/Clue ") || l.contains("/Hint ") || l.contains("Refused")).collect();
    insta::assert_snapshot!(clues.join("\n"));
    // The area shrinks once a second, each time by whole tiles: 12 at release, 4 at the end.
    let areas = lines_with(&transcript, "alice <- Veltrix:TreasureHunt/Clue {\"Clue\":\"Oak_Area\"");
    assert!(areas.len() >= 4 && areas.last().unwrap().contains("\"Radius\":4.0"), "{areas:#?}");
    let oak_spot = lines_with(&transcript, "Clue {\"Clue\":\"Oak_Spot\"");
    assert!(
        !oak_spot.is_empty() && oak_spot.iter().all(|l| l.contains(" bob <- ")),
        "only bob came near: {oak_spot:#?}"
    );
}

/// A shrinking area follows its own clock: released at tick 31 at 20 ticks per second, it is
/// looked at on each whole second after that, and its radius (rounded up) loses its tile only
/// at the end of the shrink, not in the server's next whole second.
#[test]
fn a_shrinking_area_loses_a_tile_on_its_own_clock_and_no_earlier() {
    let hunt = json!({"Seed": 3, "Vaults": vaults(), "Clues": [
        {"Id": "Oak_Area", "Vault": "Oak", "Trigger": {"VaultClaimed": "Well"},
         "Kind": {"Area": {"Radius": 10, "ShrinkTo": 9, "ShrinkSeconds": 10}}}]});
    let pack = Pack::new(hunt);
    let mut h = pack.harness_at(20, config("Test"), Arc::default()).unwrap();
    h.join("alice", 10.5, 11.5);
    h.run_until(30);
    dig(&mut h, "alice", 1, 10, 10);
    h.run_until(260);
    let transcript = h.transcript_of("alice");
    let radii: Vec<(u64, String)> = lines_with(&transcript, "Clue {\"Clue\":\"Oak_Area\"")
        .iter()
        .map(|l| {
            let tick = l.split(' ').nth(1).unwrap().parse().unwrap();
            let radius = l.split("\"Radius\":").nth(1).unwrap().split(',').next().unwrap().to_string();
            (tick, radius)
        })
        .collect();
    assert_eq!(radii, [(31, "10.0".to_string()), (231, "9.0".to_string())], "{transcript}");
}

/// A clue the hunt has but has not released to the player gets the very answer an id the hunt
/// lacks gets: asking cannot list the hunt's clues.
#[test]
fn an_unreleased_clue_is_refused_as_an_unknown_one() {
    let hunt = json!({"Seed": 3, "Vaults": vaults(), "Clues": [
        {"Id": "Oak_Area", "Vault": "Oak", "Trigger": {"VaultClaimed": "Well"}, "Kind": {"Area": {"Radius": 12}}},
        {"Id": "Oak_Spot", "Vault": "Oak", "Trigger": {"Enter": {"X": 40, "Y": 40, "Radius": 3}}, "Kind": "Reveal"},
        {"Id": "Well_Hint", "Vault": "Well", "Kind": {"Text": "clue.well"}}]});
    let pack = Pack::new(hunt);
    let mut h = pack.harness(config("Test"), Arc::default()).unwrap();
    h.join("bob", 50.5, 50.5);
    h.tick();
    for (request, clue) in [(1, "Oak_Area"), (2, "Elm_Area"), (3, "Oak_Spot"), (4, "Elm_Spot")] {
        h.send("bob", "AskClue", Some(request), &json!({"Clue": clue}));
    }
    h.tick();
    let transcript = h.transcript_of("bob");
    let refusal = |request: u32, clue: &str| -> String {
        let line = lines_with(&transcript, &format!("Refused #{request}: "));
        assert_eq!(line.len(), 1, "{transcript}");
        line[0].split_once(": ").unwrap().1.replace(clue, "<clue>")
    };
    assert_eq!(refusal(1, "Oak_Area"), "you hold no clue \"<clue>\"; yours: Well_Hint");
    assert_eq!(refusal(1, "Oak_Area"), refusal(2, "Elm_Area"));
    assert_eq!(refusal(3, "Oak_Spot"), refusal(4, "Elm_Spot"));
}

/// A HotCold clue with bands of its own answers in its labels.
#[test]
fn a_hotcold_clue_answers_in_its_own_bands() {
    let hunt = json!({"Seed": 3, "Vaults": vaults(), "Clues": [
        {"Id": "Oak_Heat", "Vault": "Oak", "Kind": "HotCold",
         "Bands": [{"Within": 5, "Label": "Right here"}, {"Within": 20, "Label": "Close"}, {"Label": "Far off"}]}]});
    let pack = Pack::new(hunt);
    let mut h = pack.harness(config("Test"), Arc::default()).unwrap();
    h.join("alice", 40.5, 42.5);
    h.join("bob", 50.5, 50.5);
    h.join("carol", 5.5, 5.5);
    h.tick();
    for name in ["alice", "bob", "carol"] {
        h.send(name, "AskClue", Some(1), &json!({"Clue": "Oak_Heat"}));
    }
    h.tick();
    let bands: Vec<String> = ["alice", "bob", "carol"]
        .iter()
        .map(|name| {
            let transcript = h.transcript_of(name);
            let hint = lines_with(&transcript, "Hint #1");
            assert_eq!(hint.len(), 1, "{transcript}");
            hint[0].split("\"Band\":\"").nth(1).unwrap().split('"').next().unwrap().to_string()
        })
        .collect();
    assert_eq!(bands, ["Right here", "Close", "Far off"]);
}

/// The `hunt` command: players hold `hunt clues` but not the operator subcommands; mistakes
/// get the usage; an operator lists, stops, starts and gives.
#[test]
fn the_hunt_command_and_its_permissions() {
    let pack = Pack::new(json!({"Seed": 3, "Vaults": vaults()}));
    let mut h = pack.harness(config("Test"), Arc::default()).unwrap();
    h.join("alice", 10.5, 11.5);
    h.tick();
    h.command("alice", "hunt clues");
    h.command("alice", "hunt start Test");
    h.command("alice", "hunt strat");
    h.tick();
    let alice = h.transcript_of("alice");
    assert!(alice.contains("CommandResult ok: no clues yet"), "{alice}");
    assert!(
        alice.contains("you lack the permission veltrix.treasurehunt.command.hunt.start for `hunt start`"),
        "{alice}"
    );
    assert!(alice.contains("unknown subcommand `hunt strat` (did you mean `hunt start`?); usage:"), "{alice}");

    let list = h.console("hunt list").unwrap();
    assert_eq!(list, "Test (Test): Active, 3 vaults, 0 clues, schedule Manual, 1 run(s)");
    assert_eq!(h.console("hunt start Test").unwrap_err(), "hunt Test is already running\nusage: hunt start <id>");
    assert!(h.console("hunt start Tset").unwrap_err().starts_with("no hunt \"Tset\" (did you mean \"Test\"?)"));
    assert_eq!(h.console("hunt give alice Coin 3").unwrap(), "gave alice 3 Coin (3 in the inventory, 0 pending)");
    assert!(h.console("hunt give alice Coins").unwrap_err().starts_with("no item \"Coins\" (did you mean \"Coin\"?)"));
    assert!(h.console("hunt give bob Coin").unwrap_err().starts_with("no player bob online"));
    assert_eq!(h.console("hunt stop").unwrap(), "hunt Test ended (run 1): Stopped");
    assert_eq!(
        h.console("hunt start Test").unwrap(),
        "hunt Test started (run 2); it ends when every FirstFinder vault is claimed"
    );
    h.tick();
    let alice = h.transcript_of("alice");
    assert!(
        alice.contains("InventoryChanged {\"Pending\":[],\"Slots\":[{\"Item\":\"Coin\",\"Quantity\":3}"),
        "{alice}"
    );
    assert!(alice.contains("\"Event\":\"Ended\"") && alice.contains("The hunt Test was stopped."), "{alice}");
}

/// After a restart: a running hunt resumes with its run, start and released clues (a joining
/// player gets them); an ended hunt stays ended.
#[test]
fn runs_and_released_clues_survive_a_restart() {
    let hunt = json!({"Seed": 3, "Vaults": vaults(), "DurationSeconds": 600, "Clues": [
        {"Id": "Riddle", "Vault": "Well", "Trigger": {"AfterSeconds": 1}, "Kind": {"Text": "clue.well"}}]});
    let pack = Pack::new(hunt);
    let store = Arc::new(MemoryStore::default());
    let mut h = pack.harness(config("Test"), store.clone()).unwrap();
    h.run_ticks(15);
    h.shutdown();

    let mut h = pack.harness(config("Test"), store.clone()).unwrap();
    h.join("alice", 10.5, 11.5);
    h.tick();
    let alice = h.transcript_of("alice");
    assert!(alice.contains("Clue {\"Clue\":\"Riddle\""), "the released clue at join: {alice}");
    assert!(!alice.contains("\"Event\":\"Started\""), "a resumed run is not started again: {alice}");
    let status = h.console("hunt status").unwrap();
    assert!(status.starts_with("hunt Test: Active, run 1\n"), "{status}");
    assert_eq!(h.console("hunt stop Test").unwrap(), "hunt Test ended (run 1): Stopped");
    h.tick();
    h.shutdown();

    let mut h = pack.harness(config("Test"), store).unwrap();
    h.join("alice", 10.5, 11.5);
    dig(&mut h, "alice", 1, 10, 10);
    h.tick();
    assert!(h.transcript_of("alice").contains("Refused #1: the hunt Test is over"), "{}", h.transcript());
    assert!(h.console("hunt status Test").unwrap().starts_with("hunt Test: Ended, run 1\n"));
}

/// Mod config values that parse but make no sense stop the mod in setup, each named.
#[test]
fn config_values_out_of_range_stop_the_mod() {
    let pack = Pack::new(json!({"Seed": 3, "Vaults": vaults()}));
    let config = TreasureHuntConfig { inventory_slots: 0, reach: -1.0, ..config("Test") };
    let error = pack.harness(config, Arc::default()).err().expect("the config is refused");
    assert!(error.contains("the mod's config has 2 error(s):"), "{error}");
    assert!(error.contains("config.json: Reach: expected a distance of more than 0 tiles"), "{error}");
    assert!(error.contains("config.json: InventorySlots: expected 1 to 1000 slots (24 by default), not 0"), "{error}");
}

/// The designer's mistakes in clues and schedules, each located.
#[test]
fn clue_and_schedule_mistakes_are_located() {
    let hunt = json!({"Seed": 3, "Vaults": vaults(), "Schedule": {"Daily": {"At": "8pm", "Minutes": 30}},
        "Clues": [
            {"Id": "A", "Vault": "Wel", "Kind": "Reveal"},
            {"Id": "B", "Vault": "Well", "Trigger": {"VaultClaimed": "Oac"}, "Kind": {"Text": "clue.wel"}},
            {"Id": "C", "Vault": "Well", "Kind": {"Area": {"Radius": 5, "ShrinkTo": 8}}}]});
    let pack = Pack::new(hunt);
    let error = pack.harness(config(""), Arc::default()).err().expect("the pack is refused");
    insta::assert_snapshot!(error.replace(&pack.0.path().display().to_string(), "<mod>"));
}
