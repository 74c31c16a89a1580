//! The hunt's logic through the sdk's test harness: the mod registered statically, the host's
//! schedules run headless, scripted players, and a transcript of what each player received,
//! checked as snapshots. Also: the schedule has no unexplained ambiguities, and both executors
//! give the same transcript.

mod common;

use common::{HuntPack, dig};

use std::sync::Arc;

use serde_json::json;
use treasure_hunt::TreasureHuntConfig;
use veltrix_sdk::{
    MemoryStore, Tick, Tile, TileWorld,
    bevy_ecs::schedule::{LogLevel, ScheduleBuildSettings, Schedules},
    testing::{Executor, Harness},
};

/// Items, loot tables and one hunt `Test` with the vaults given (JSON array text).
struct Pack(HuntPack);

impl Pack {
    fn new(vaults: &str) -> Self {
        let pack = Pack(HuntPack::new());
        pack.0.write("Item/Items/Coin.json", r#"{"MaxStack": 50, "Value": 1}"#);
        pack.0.write("Item/Items/Crown.json", r#"{"MaxStack": 1, "Value": 500, "Rarity": "Legendary"}"#);
        pack.0.write("Item/Items/Pebble.json", r#"{"MaxStack": 1}"#);
        pack.0.write(
            "Drops/Coins.json",
            r#"{"Container": {"Type": "Single", "Item": {"ItemId": "Coin", "QuantityMin": 5, "QuantityMax": 9}}}"#,
        );
        pack.0.write(
            "Drops/Jackpot.json",
            r#"{"Container": {"Type": "Multiple", "Containers": [
                {"Type": "Single", "Item": {"ItemId": "Crown"}},
                {"Type": "Single", "Item": {"ItemId": "Coin", "QuantityMin": 20, "QuantityMax": 30}}]}}"#,
        );
        pack.0.write(
            "Drops/Pebbles.json",
            r#"{"Container": {"Type": "Single", "Item": {"ItemId": "Pebble", "QuantityMin": 3, "QuantityMax": 3}}}"#,
        );
        pack.0.write("TreasureHunt/Hunts/Test.json", &format!(r#"{{"Seed": 77, "Vaults": {vaults}}}"#));
        pack
    }

    fn harness(&self, executor: Executor, slots: u32) -> Result<Harness, String> {
        self.harness_on(executor, slots, Arc::new(MemoryStore::default()))
    }

    /// The mod on a store that may hold an earlier run's saves (a restart).
    fn harness_on(&self, executor: Executor, slots: u32, store: Arc<MemoryStore>) -> Result<Harness, String> {
        let config = TreasureHuntConfig { hunt: "Test".into(), inventory_slots: slots, ..Default::default() };
        self.harness_with(executor, store, config)
    }

    fn harness_with(
        &self,
        executor: Executor,
        store: Arc<MemoryStore>,
        config: TreasureHuntConfig,
    ) -> Result<Harness, String> {
        let mut tiles = TileWorld::flat(64, 64);
        tiles.set(20, 20, Tile::Rock);
        let mut harness = Harness::with_executor(tiles, executor).with_store(store);
        self.0.add_to(&mut harness, config)?;
        Ok(harness)
    }
}

/// One vault to dig, and one nobody reaches, so the hunt does not end with the first claim.
const ONE_VAULT: &str = r#"[{"Id": "Well", "At": {"X": 10, "Y": 10}, "LootTable": "Coins", "DigEffort": 3, "SparkleRadius": 6},
    {"Id": "Far_Away", "At": {"X": 60, "Y": 60}, "LootTable": "Coins"}]"#;

/// Alice digs a vault open over three ticks; a neighbour sees it opened, a far player sees
/// nothing; a dig after that is refused, as are digs out of reach, on rock and on bare earth.
/// With both vaults claimed, the hunt ends: everyone hears it, and digging is over.
#[test]
fn solo_hunt_to_completion() {
    let vaults = r#"[
        {"Id": "Well", "At": {"X": 10, "Y": 10}, "LootTable": "Coins", "DigEffort": 3, "SparkleRadius": 6},
        {"Id": "Oak", "At": {"X": 14, "Y": 10}, "LootTable": "Jackpot", "DigEffort": 2, "SparkleRadius": 6}]"#;
    let pack = Pack::new(vaults);
    let mut h = pack.harness(Executor::SingleThreaded, 8).unwrap();
    h.join("alice", 10.5, 11.5);
    h.join("bob", 13.0, 13.0);
    h.join("carol", 50.0, 50.0);
    for request in 1..=3 {
        dig(&mut h, "alice", request, 10, 10);
        h.tick();
    }
    dig(&mut h, "alice", 4, 10, 10);
    dig(&mut h, "bob", 1, 30, 30);
    h.tick();
    dig(&mut h, "alice", 5, 20, 20);
    dig(&mut h, "bob", 2, 13, 13);
    h.tick();
    h.move_to("alice", 14.5, 11.0);
    h.tick();
    dig(&mut h, "alice", 6, 14, 10);
    h.tick();
    dig(&mut h, "alice", 7, 14, 10);
    dig(&mut h, "alice", 8, 14, 10);
    h.tick();
    // Every FirstFinder vault is claimed: the hunt ends at the next tick, and digs are refused.
    dig(&mut h, "bob", 3, 13, 13);
    h.tick();
    insta::assert_snapshot!(h.transcript());
    // Carol, far from every vault, learns no tile: her inventory as she joined, and that the
    // two FirstFinder vaults were claimed (closed to all), by name only.
    let carol = h.transcript_of("carol");
    assert!(!carol.contains("VaultDiscovered") && !carol.contains("\"X\""), "{carol}");
    assert_eq!(carol.matches("VaultClaimed").count(), 2, "{carol}");
}

/// Two players finish one FirstFinder vault in the same tick: exactly one claims it (the first
/// to arrive), the other is told it is already claimed.
#[test]
fn two_players_tie_for_one_vault_in_one_tick() {
    let pack = Pack::new(ONE_VAULT);
    let mut h = pack.harness(Executor::SingleThreaded, 8).unwrap();
    h.join("alice", 10.5, 11.5);
    h.join("bob", 11.5, 10.5);
    for request in 1..=3 {
        // Bob's dig arrives first each tick.
        dig(&mut h, "bob", request, 10, 10);
        dig(&mut h, "alice", request, 10, 10);
        h.tick();
    }
    insta::assert_snapshot!(h.transcript());
    let bob = h.transcript_of("bob");
    let alice = h.transcript_of("alice");
    assert!(bob.contains("LootGranted") && !alice.contains("LootGranted"), "{bob}\n{alice}");
    assert!(alice.contains("already claimed: bob opened this vault first"), "{alice}");
}

/// On a server that shares its hunt, a claim the ledger holds for a player and that was not
/// made where it was decided (that server stopped before its commit) is made where the player
/// is online: its loot granted without a request, the vault's opening not told again; once,
/// however often the ledger tells it (at every start). A player whose records were written
/// before the claims made for it were kept counts the claims the ledger holds for it as made.
#[test]
fn a_claim_the_ledger_holds_is_made_once_where_its_player_is() {
    use treasure_hunt_ecs::hunt::{ActiveHunt, Claimant, ClaimsMade, LedgerClaim, ledger_key};
    use veltrix_sdk::{Ledger, LedgerNews};
    let pack = Pack::new(ONE_VAULT);
    let mut h = pack.harness(Executor::SingleThreaded, 8).unwrap();
    let mut ledger = Ledger::new(1);
    ledger.set_available(true);
    h.world_mut().insert_resource(ledger);
    h.tick();
    // The vault's first claim, by `name`, asked by server 2 (`ask`): what the ledger's watch tells.
    let tell = |h: &mut Harness, vault: &str, name: &str, ask: u64| {
        let hunt = h.world().resource::<ActiveHunt>().clone();
        let value =
            LedgerClaim { player: 1 << 52, name: name.into(), claimant: Claimant::Player(1 << 52), ask: (2, ask) };
        let value = veltrix_sdk::rmp_serde::to_vec_named(&value).unwrap();
        h.world_mut().resource_mut::<Ledger>().tell(LedgerNews { key: ledger_key(&hunt, vault, None), value });
    };
    let granted = |h: &Harness, name: &str| h.transcript_of(name).matches("LootGranted").count();

    tell(&mut h, "Well", "alice", 5);
    h.tick();
    h.join("alice", 10.5, 11.5);
    h.tick();
    let alice = h.transcript_of("alice");
    assert_eq!(granted(&h, "alice"), 1, "{alice}");
    assert!(!alice.contains("LootGranted #") && !alice.contains("VaultDiscovered"), "unasked, not told again: {alice}");
    h.leave("alice");
    h.tick();
    h.join("alice", 10.5, 11.5);
    tell(&mut h, "Well", "alice", 5);
    h.tick();
    h.tick();
    assert_eq!(granted(&h, "alice"), 1, "made once: {}", h.transcript_of("alice"));

    h.join("bob", 50.0, 50.0);
    h.tick();
    let bob = h.player_entity("bob").unwrap();
    h.world_mut().entity_mut(bob).insert(ClaimsMade(None));
    tell(&mut h, "Far_Away", "bob", 6);
    h.tick();
    assert_eq!(granted(&h, "bob"), 0, "{}", h.transcript_of("bob"));
    assert_eq!(h.world().get::<ClaimsMade>(bob), Some(&ClaimsMade(Some(vec![(2, 6)]))), "counted as made");
}

/// On a server that shares its hunt, a per-player or team claim the ledger tells of is not kept
/// for a player who is not online here (kept all, they would grow with players times vaults on
/// every shard); a vault's first claim is. A joining player's claims are read from the ledger
/// instead, by its name and its team's, and what the read finds is made; a team change waits
/// while a claim of the player's is decided.
#[test]
fn claims_of_players_elsewhere_are_read_at_their_join_not_kept() {
    use treasure_hunt_ecs::hunt::{ActiveHunt, Claimant, LedgerClaim, UnmadeClaims, ledger_key};
    use veltrix_sdk::{Ledger, LedgerNews};
    let pack = Pack::new(
        r#"[{"Id": "Well", "At": {"X": 10, "Y": 10}, "LootTable": "Coins", "Claim": "PerPlayer", "DigEffort": 1},
            {"Id": "Banner", "At": {"X": 12, "Y": 10}, "LootTable": "Coins", "Claim": "Team", "DigEffort": 1},
            {"Id": "Shrine", "At": {"X": 10, "Y": 12}, "LootTable": "Coins", "DigEffort": 1},
            {"Id": "Far_Away", "At": {"X": 60, "Y": 60}, "LootTable": "Coins"}]"#,
    );
    let mut h = pack.harness(Executor::SingleThreaded, 8).unwrap();
    let mut ledger = Ledger::new(1);
    ledger.set_available(true);
    h.world_mut().insert_resource(ledger);
    h.tick();
    let hunt = h.world().resource::<ActiveHunt>().clone();
    // What the ledger tells of a claim of `vault` by `name` (for `claimant`), asked by server 2.
    let news = |vault: &str, name: &str, claimant: Claimant, first: bool, ask: u64| {
        let key = ledger_key(&hunt, vault, (!first).then_some((&claimant, name)));
        let value = LedgerClaim { player: 1 << 52, name: name.into(), claimant, ask: (2, ask) };
        LedgerNews { key, value: veltrix_sdk::rmp_serde::to_vec_named(&value).unwrap() }
    };
    let kept = |h: &Harness| h.world().resource::<UnmadeClaims>().kept();
    let reads = |h: &mut Harness| h.world_mut().resource_mut::<Ledger>().take_reads().collect::<Vec<_>>();

    // A thousand players elsewhere open the Well; one opens the Far_Away first.
    for i in 0..1000 {
        let name = format!("p{i}");
        let claim = news("Well", &name, Claimant::Player(1 << 52), false, i);
        h.world_mut().resource_mut::<Ledger>().tell(claim);
    }
    let first = news("Far_Away", "zed", Claimant::Player(1 << 52), true, 1000);
    h.world_mut().resource_mut::<Ledger>().tell(first);
    h.tick();
    assert_eq!(kept(&h), 1, "the first claim only");

    // Alice joins and joins a team, leaves and comes back: her claims are read at each join.
    h.join("alice", 10.5, 11.5);
    h.tick();
    let run = format!("claims.{}.{}.", hunt.id, hunt.run);
    assert_eq!(reads(&mut h), [format!("{run}*.palice")]);
    h.send("alice", "JoinTeam", Some(1), &json!({"Team": "Reds"}));
    h.tick();
    h.leave("alice");
    h.tick();
    h.join("alice", 10.5, 11.5);
    h.tick();
    assert_eq!(reads(&mut h), [format!("{run}*.palice"), format!("{run}*.tReds")]);
    // What the reads found, told as news: made, once each, without a request.
    for claim in [
        news("Well", "alice", Claimant::Player(1 << 52), false, 2000),
        news("Banner", "alice", Claimant::Team("Reds".into()), false, 2001),
    ] {
        h.world_mut().resource_mut::<Ledger>().tell(claim.clone());
        h.world_mut().resource_mut::<Ledger>().tell(claim);
    }
    h.tick();
    h.tick();
    let alice = h.transcript_of("alice");
    assert_eq!(alice.matches("LootGranted").count(), 2, "{alice}");
    assert!(!alice.contains("LootGranted #"), "unasked: {alice}");
    assert_eq!(kept(&h), 1, "made, not kept");

    // While her claim is decided, her team stays.
    dig(&mut h, "alice", 3, 10, 12);
    h.tick();
    h.send("alice", "JoinTeam", Some(4), &json!({"Team": "Blues"}));
    h.tick();
    let alice = h.transcript_of("alice");
    assert!(alice.contains("your claim on a vault is being decided"), "{alice}");
}

/// The first finder rolls the jackpot, everyone after the consolation table, once each.
#[test]
fn first_finder_then_per_player_vault() {
    let pack = Pack::new(
        r#"[{"Id": "Shrine", "At": {"X": 10, "Y": 10}, "LootTable": "Jackpot", "ConsolationTable": "Coins",
             "Claim": "FirstFinderThenPerPlayer", "DigEffort": 1, "SparkleRadius": 2}]"#,
    );
    let mut h = pack.harness(Executor::SingleThreaded, 8).unwrap();
    h.join("alice", 10.5, 11.5);
    h.join("bob", 11.5, 10.5);
    dig(&mut h, "alice", 1, 10, 10);
    h.tick();
    dig(&mut h, "bob", 1, 10, 10);
    h.tick();
    dig(&mut h, "alice", 2, 10, 10);
    dig(&mut h, "bob", 2, 10, 10);
    h.tick();
    insta::assert_snapshot!(h.transcript());
}

/// Loot that does not fit waits in pending rewards and arrives when room is made: never lost,
/// never doubled.
#[test]
fn inventory_overflow_into_pending_rewards() {
    let pack = Pack::new(
        r#"[{"Id": "Heap", "At": {"X": 10, "Y": 10}, "LootTable": "Pebbles", "DigEffort": 1, "SparkleRadius": 2}]"#,
    );
    let mut h = pack.harness(Executor::SingleThreaded, 2).unwrap();
    h.join("alice", 10.5, 11.5);
    dig(&mut h, "alice", 1, 10, 10);
    h.tick();
    h.send("alice", "Discard", Some(2), &json!({"Item": "Pebble", "Quantity": 1}));
    h.tick();
    h.send("alice", "Discard", Some(3), &json!({"Item": "Pebble", "Quantity": 5}));
    h.tick();
    insta::assert_snapshot!(h.transcript());
}

/// A team shares one claim of a Team vault; a player without a team is a team of one.
#[test]
fn team_vault_is_claimed_once_per_team() {
    let pack = Pack::new(
        r#"[{"Id": "Banner", "At": {"X": 10, "Y": 10}, "LootTable": "Coins", "Claim": "Team", "DigEffort": 1,
             "SparkleRadius": 0}]"#,
    );
    let mut h = pack.harness(Executor::SingleThreaded, 8).unwrap();
    for (name, x) in [("alice", 10.5), ("bob", 11.5), ("dave", 9.5)] {
        h.join(name, x, 11.5);
    }
    h.send("alice", "JoinTeam", Some(1), &json!({"Team": "Reds"}));
    h.send("bob", "JoinTeam", Some(1), &json!({"Team": "Reds"}));
    h.tick();
    dig(&mut h, "alice", 2, 10, 10);
    h.tick();
    dig(&mut h, "bob", 2, 10, 10);
    dig(&mut h, "dave", 2, 10, 10);
    h.tick();
    let bob = h.transcript_of("bob");
    assert!(bob.contains("already claimed: your team Reds opened this vault"), "{bob}");
    assert!(h.transcript_of("dave").contains("LootGranted"), "{}", h.transcript());
    // Changing teams does not open the vault again: not for a player who claimed alone, not
    // for a member who leaves the team that claimed it.
    h.clear_transcript();
    h.send("dave", "JoinTeam", Some(3), &json!({"Team": "Blues"}));
    h.send("alice", "JoinTeam", Some(3), &json!({"Team": ""}));
    h.tick();
    dig(&mut h, "dave", 4, 10, 10);
    dig(&mut h, "alice", 4, 10, 10);
    h.tick();
    let after = h.transcript();
    assert!(!after.contains("LootGranted"), "{after}");
    assert_eq!(after.matches("already claimed: you opened this vault before").count(), 2, "{after}");
}

/// The mod after a restart (a new harness on the same store): claims and inventories are back.
#[test]
fn claims_and_inventories_survive_a_restart() {
    let pack = Pack::new(ONE_VAULT);
    let mut h = pack.harness(Executor::SingleThreaded, 8).unwrap();
    h.join("alice", 10.5, 11.5);
    for request in 1..=3 {
        dig(&mut h, "alice", request, 10, 10);
        h.tick();
    }
    assert!(h.transcript_of("alice").contains("LootGranted"), "{}", h.transcript());
    let store = h.store();
    h.shutdown();

    let mut h = pack.harness_on(Executor::SingleThreaded, 8, store).unwrap();
    h.join("alice", 10.5, 11.5);
    h.join("bob", 11.5, 10.5);
    h.tick();
    dig(&mut h, "bob", 1, 10, 10);
    h.tick();
    insta::assert_snapshot!(h.transcript());
}

/// The error text a designer gets for a broken file, when the mod starts.
#[test]
fn broken_asset_file_error_text() {
    let pack = Pack::new(ONE_VAULT);
    pack.0.write(
        "Drops/Coins.json",
        "{\n  \"Container\": {\n    \"Type\": \"Choice\",\n    \"Containers\": [\n      \
         {\"Type\": \"Single\", \"Wieght\": 10, \"Item\": {\"ItemId\": \"Coin\"}}\n    ]\n  }\n}\n",
    );
    pack.0.write("Item/Items/Crown.json", "{\"MaxStack\": 1, \"Value\": \"lots\"}");
    let error = pack.harness(Executor::SingleThreaded, 8).err().expect("the pack is refused");
    insta::assert_snapshot!(error.replace(&pack.0.path().display().to_string(), "<mod>"));
}

/// A vault's position reaches only those who may know it: bytes sent to a player far away
/// never hold the coordinates of a vault, nor the id of one still open to them.
#[test]
fn hidden_vault_positions_never_reach_far_players() {
    let pack = Pack::new(
        r#"[{"Id": "Secret_Spot", "At": {"X": 41, "Y": 37}, "LootTable": "Coins", "DigEffort": 2, "SparkleRadius": 5,
             "Claim": "PerPlayer"}]"#,
    );
    let mut h = pack.harness(Executor::SingleThreaded, 8).unwrap();
    h.join("alice", 41.5, 38.5);
    h.join("bob", 20.0, 37.5);
    for request in 1..=3 {
        dig(&mut h, "alice", request, 41, 37);
        // Bob digs far away: his own refusals, nothing about the vault.
        dig(&mut h, "bob", request, 20, 36);
        h.tick();
    }
    assert!(h.transcript_of("alice").contains("VaultDiscovered"), "{}", h.transcript());
    let needles: [&[u8]; 3] = [b"Secret_Spot", &[0xa1, b'X', 41], &[0xa1, b'Y', 37]];
    assert!(!h.frames("bob").is_empty());
    for frame in h.frames("bob") {
        for needle in needles {
            assert!(!frame.windows(needle.len()).any(|w| w == needle), "bob's frame holds {needle:?}: {frame:?}");
        }
    }
    // The check would see them: alice's frames do hold both.
    let alice: Vec<u8> = h.frames("alice").iter().flat_map(|f| f.to_vec()).collect();
    for needle in needles {
        assert!(alice.windows(needle.len()).any(|w| w == needle), "{needle:?}");
    }
}

/// A player too far behind for the events kept gets a `Snapshot` naming only the opened vaults
/// those events would have named to it: a FirstFinder vault closed to all and its own claim,
/// never a vault someone else opened far from it that is still open to others.
#[test]
fn a_snapshot_names_only_the_vaults_a_player_may_know() {
    let pack = Pack::new(
        r#"[{"Id": "Secret_Spot", "At": {"X": 41, "Y": 37}, "LootTable": "Coins", "DigEffort": 1, "SparkleRadius": 5,
             "Claim": "PerPlayer"},
            {"Id": "Closed", "At": {"X": 43, "Y": 37}, "LootTable": "Coins", "DigEffort": 1, "SparkleRadius": 5},
            {"Id": "Mine", "At": {"X": 10, "Y": 10}, "LootTable": "Coins", "DigEffort": 1, "Claim": "PerPlayer"},
            {"Id": "Far_Away", "At": {"X": 60, "Y": 60}, "LootTable": "Coins"}]"#,
    );
    let config = TreasureHuntConfig { hunt: "Test".into(), retained_events: 1, ..Default::default() };
    let mut h = pack.harness_with(Executor::SingleThreaded, Arc::default(), config).unwrap();
    h.join("alice", 42.0, 38.5);
    h.join("bob", 10.5, 11.5);
    h.tick();
    dig(&mut h, "alice", 1, 41, 37);
    dig(&mut h, "bob", 1, 10, 10);
    h.tick();
    dig(&mut h, "alice", 2, 43, 37);
    h.tick();
    h.send("bob", "CatchUp", Some(2), &json!({"After": 0}));
    h.send("alice", "CatchUp", Some(3), &json!({"After": 0}));
    h.tick();
    let transcript = h.transcript();
    let snapshots: Vec<&str> = transcript.lines().filter(|l| l.contains("/Snapshot ")).collect();
    assert_eq!(
        snapshots,
        [
            r#"tick 4 alice <- Veltrix:TreasureHunt/Snapshot #3 {"Opened":["Closed","Secret_Spot"],"Seq":4}"#,
            r#"tick 4 bob <- Veltrix:TreasureHunt/Snapshot #2 {"Opened":["Closed","Mine"],"Seq":4}"#,
        ]
    );
    for frame in h.frames("bob") {
        assert!(!frame.windows(11).any(|w| w == b"Secret_Spot"), "bob's frame names Secret_Spot: {frame:?}");
    }
}

/// A script with ties, overflow, teams and refusals, for the executor comparison.
fn busy_script(executor: Executor) -> String {
    let pack = Pack::new(
        r#"[{"Id": "A", "At": {"X": 10, "Y": 10}, "LootTable": "Jackpot", "DigEffort": 2},
            {"Id": "B", "At": {"X": 12, "Y": 10}, "LootTable": "Pebbles", "Claim": "PerPlayer", "DigEffort": 1},
            {"Id": "C", "At": {"X": 11, "Y": 12}, "LootTable": "Jackpot", "ConsolationTable": "Coins",
             "Claim": "FirstFinderThenPerPlayer", "DigEffort": 2},
            {"Id": "D", "Count": 6, "Region": {"MinX": 0, "MinY": 0, "MaxX": 30, "MaxY": 30}, "MinSpacing": 4,
             "LootTable": "Coins", "Claim": "Team", "DigEffort": 1}]"#,
    );
    let mut h = pack.harness(executor, 2).unwrap();
    let names = ["ann", "ben", "cat", "dan", "eve", "fay"];
    for (i, name) in names.iter().enumerate() {
        h.join(name, 10.0 + i as f32 * 0.4, 11.0);
    }
    h.send("eve", "JoinTeam", None, &json!({"Team": "Blue"}));
    h.send("fay", "JoinTeam", None, &json!({"Team": "Blue"}));
    for round in 0..8u32 {
        for (i, name) in names.iter().enumerate() {
            let (x, y) = [(10, 10), (12, 10), (11, 12)][(i + round as usize) % 3];
            dig(&mut h, name, round, x, y);
        }
        if round == 5 {
            h.send("ben", "Discard", None, &json!({"Item": "Pebble", "Quantity": 1}));
        }
        h.tick();
    }
    h.transcript()
}

#[test]
fn single_and_multi_threaded_executors_give_the_same_transcript() {
    let single = busy_script(Executor::SingleThreaded);
    assert!(single.contains("LootGranted") && single.contains("already claimed"), "{single}");
    for _ in 0..3 {
        assert_eq!(busy_script(Executor::MultiThreaded), single);
    }
}

/// Every pair of systems in `Tick` that touch the same data is ordered, or the schedule fails to
/// build: bevy's ambiguity detection set to error.
#[test]
fn the_tick_schedule_has_no_ambiguities() {
    let pack = Pack::new(ONE_VAULT);
    let mut h = pack.harness(Executor::MultiThreaded, 8).unwrap();
    let world = h.world_mut();
    let mut schedule = world.resource_mut::<Schedules>().remove(Tick).expect("the Tick schedule");
    schedule.set_build_settings(ScheduleBuildSettings {
        ambiguity_detection: LogLevel::Error,
        ..ScheduleBuildSettings::default()
    });
    if let Err(e) = schedule.initialize(world) {
        panic!("{}", e.to_string(schedule.graph(), world));
    }
    assert!(schedule.systems_len() >= 8, "the hunt's systems are in Tick ({})", schedule.systems_len());
    world.resource_mut::<Schedules>().insert(schedule);
}
