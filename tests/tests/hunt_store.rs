//! The hunt across restarts: what a player was told is saved, and a server killed with
//! SIGKILL comes back with it (the real server, its store on disk, real clients).

use std::time::Duration;

use serde_json::{Value, json};
use veltrix_client::{Client, decode_mod_body, hello};
use veltrix_protocol::ServerMessage;
use veltrix_tests::{LiveServer, TestServer, Tmpfs};

const NS: &str = "Veltrix:TreasureHunt";
const MOD_DIR: &str = "mods/Veltrix_TreasureHunt";
const WAIT: Duration = Duration::from_secs(5);

/// A flat world; a hunt `Test` with a FirstFinder vault and a PerPlayer vault beside the spawn.
fn server() -> TestServer {
    let server = TestServer::new().with_treasure_hunt("Veltrix_TreasureHunt");
    let data = server.root().join(MOD_DIR).join("assets/Server");
    std::fs::remove_dir_all(&data).unwrap();
    let file = |path: &str, value: Value| server.write(&format!("{MOD_DIR}/assets/Server/{path}"), &value.to_string());
    file("Item/Items/Coin.json", json!({"MaxStack": 99}));
    file("Item/Items/Crown.json", json!({"MaxStack": 1}));
    let single = |item: &str, n: u32| json!({"Container": {"Type": "Single", "Item": {"ItemId": item, "QuantityMin": n, "QuantityMax": n}}});
    file("Drops/Crowns.json", single("Crown", 1));
    file("Drops/Coins.json", single("Coin", 4));
    file(
        "TreasureHunt/Hunts/Test.json",
        json!({"Seed": 5, "Vaults": [
            {"Id": "Throne", "At": {"X": 257, "Y": 256}, "LootTable": "Crowns", "DigEffort": 2},
            {"Id": "Well", "At": {"X": 255, "Y": 256}, "LootTable": "Coins", "Claim": "PerPlayer", "DigEffort": 1},
            {"Id": "Far_Away", "At": {"X": 500, "Y": 500}, "LootTable": "Coins"}]}),
    );
    server.write(&format!("{MOD_DIR}/config.json"), &json!({"Hunt": "Test", "HotReload": false}).to_string());
    server.write("config.json", &json!({"World": {"Terrain": "Flat"}}).to_string());
    server
}

async fn join(live: &LiveServer, name: &str) -> (Client, u64) {
    let (client, welcome) = Client::connect(&live.addr, hello(name)).await.unwrap_or_else(|e| panic!("{name}: {e:?}"));
    (client, welcome.player)
}

/// The body of the next hunt message of `kind` (answering `request` when given).
async fn next(client: &mut Client, kind: &str, request: Option<u32>) -> Value {
    let found = client
        .recv_until(WAIT, |m| {
            matches!(m, ServerMessage::Mod(m) if m.ns == NS && m.kind == kind && (request.is_none() || m.request == request))
        })
        .await
        .unwrap_or_else(|e| panic!("no {kind}: {e:?}"));
    let ServerMessage::Mod(m) = found else { unreachable!() };
    decode_mod_body(&m).unwrap()
}

async fn dig(client: &mut Client, x: u32, y: u32) -> u32 {
    client.mod_request(NS, "Dig", &json!({"X": x, "Y": y})).await.unwrap()
}

async fn refusal(client: &mut Client, request: u32) -> String {
    let found = client
        .recv_until(WAIT, |m| matches!(m, ServerMessage::Error(e) if e.request == Some(request)))
        .await
        .unwrap_or_else(|e| panic!("no refusal of {request}: {e:?}"));
    let ServerMessage::Error(e) = found else { unreachable!() };
    e.message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_comes_back_with_every_claim_and_item_it_announced() {
    let server = server();
    let live = server.start(&[]);
    let (mut alice, alice_id) = join(&live, "alice").await;
    next(&mut alice, "InventoryChanged", None).await;
    // The crown, over two ticks; the coins at once.
    let first = dig(&mut alice, 257, 256).await;
    next(&mut alice, "DigProgress", Some(first)).await;
    let second = dig(&mut alice, 257, 256).await;
    assert_eq!(next(&mut alice, "LootGranted", Some(second)).await["Items"], json!([{"Item": "Crown", "Quantity": 1}]));
    let third = dig(&mut alice, 255, 256).await;
    next(&mut alice, "LootGranted", Some(third)).await;
    let inventory = next(&mut alice, "InventoryChanged", None).await;
    assert_eq!(veltrix_tests::inventory_slots(&inventory), [("Crown".into(), 1), ("Coin".into(), 4)]);
    // The same request again (a client retrying): the same answer, nothing applied twice.
    alice.send_mod(NS, "Dig", Some(third), &json!({"X": 255, "Y": 256})).await.unwrap();
    assert_eq!(next(&mut alice, "LootGranted", Some(third)).await["Items"], json!([{"Item": "Coin", "Quantity": 4}]));
    // Bob walks a few tiles and leaves: his id and where he left are kept.
    let (mut bob, bob_id) = join(&live, "bob").await;
    let seq = bob.move_to(251.5, 256.5).await.unwrap();
    let frames = bob.collect_for(Duration::from_millis(300)).await.unwrap();
    assert!(
        !frames
            .iter()
            .flat_map(|f| &f.messages)
            .any(|m| matches!(m, ServerMessage::PositionCorrected(p) if p.seq == seq)),
        "the move is allowed"
    );
    bob.close().await.unwrap();
    // Where he left is saved with the tick that removed him: done once the next one has begun.
    live.wait_for_log(0, "player bob left");
    live.wait_for_tick(live.current_tick() + 1);

    // No shutdown at all: what the clients were told must already be on disk.
    let log = live.kill();
    assert!(!log.contains("STORE COMMIT FAILED"), "{log}");

    let live = server.start(&[]);
    live.wait_for_log(0, "hunt Test: 2 claimed vault(s) restored from the store");
    let (mut alice, id) = join(&live, "alice").await;
    assert_eq!(id, alice_id, "a player keeps its id across restarts");
    let inventory = next(&mut alice, "InventoryChanged", None).await;
    assert_eq!(
        veltrix_tests::inventory_slots(&inventory),
        [("Crown".into(), 1), ("Coin".into(), 4)],
        "her loot is back, once"
    );
    let again = dig(&mut alice, 255, 256).await;
    assert_eq!(refusal(&mut alice, again).await, "already claimed: you opened this vault before");
    // Her retry of a request answered before the crash: its original answer, from the store.
    alice.send_mod(NS, "Dig", Some(second), &json!({"X": 257, "Y": 256})).await.unwrap();
    let answer = next(&mut alice, "LootGranted", Some(second)).await;
    assert_eq!(answer["Items"], json!([{"Item": "Crown", "Quantity": 1}]));
    alice.send_mod(NS, "Dig", Some(third), &json!({"X": 255, "Y": 256})).await.unwrap();
    next(&mut alice, "LootGranted", Some(third)).await;
    let inventory = alice.collect_for(Duration::from_millis(300)).await.unwrap();
    assert!(
        !inventory
            .iter()
            .flat_map(|f| &f.messages)
            .any(|m| matches!(m, ServerMessage::Mod(m) if m.kind == "InventoryChanged")),
        "a replayed answer changes nothing: {inventory:?}"
    );
    let (mut bob, welcome) = Client::connect(&live.addr, hello("bob")).await.unwrap();
    assert_eq!(welcome.player, bob_id);
    assert_eq!((welcome.x, welcome.y), (251.5, 256.5), "bob comes back where he left");
    let (x, y) = (welcome.x, welcome.y);
    bob.move_to(x + 3.0, y).await.unwrap();
    next(&mut bob, "InventoryChanged", None).await;
    let r = dig(&mut bob, 257, 256).await;
    assert_eq!(refusal(&mut bob, r).await, "already claimed: alice opened this vault first");
    let r = dig(&mut bob, 255, 256).await;
    assert_eq!(next(&mut bob, "LootGranted", Some(r)).await["Items"], json!([{"Item": "Coin", "Quantity": 4}]));
    let (status, log) = live.stop();
    assert!(status.success(), "{log}");
}

/// The last answer of `kind` to `request`, with every hunt message read before it.
async fn until_answer(client: &mut Client, kind: &str, request: u32) -> Vec<(String, Value)> {
    let mut seen = Vec::new();
    loop {
        let found = client
            .recv_until(WAIT, |m| matches!(m, ServerMessage::Mod(m) if m.ns == NS))
            .await
            .unwrap_or_else(|e| panic!("no {kind}: {e:?}"));
        let ServerMessage::Mod(m) = found else { unreachable!() };
        let done = m.kind == kind && m.request == Some(request);
        seen.push((m.kind.clone(), decode_mod_body::<Value>(&m).unwrap()));
        if done {
            return seen;
        }
    }
}

/// A client back after a disconnect and a crash asks for what it missed: the events after the
/// last it saw that concern it, or a snapshot when that is older than the events kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_catches_up_on_the_events_it_missed() {
    let server = server();
    server.write(
        &format!("{MOD_DIR}/config.json"),
        &json!({"Hunt": "Test", "HotReload": false, "RetainedEvents": 3}).to_string(),
    );
    std::fs::write(
        server.root().join(MOD_DIR).join("assets/Server/TreasureHunt/Hunts/Test.json"),
        json!({"Seed": 5, "Vaults": [
            {"Id": "North", "At": {"X": 257, "Y": 256}, "LootTable": "Coins", "DigEffort": 1},
            {"Id": "South", "At": {"X": 255, "Y": 256}, "LootTable": "Crowns", "DigEffort": 1},
            {"Id": "Far_Away", "At": {"X": 500, "Y": 500}, "LootTable": "Coins"}]})
        .to_string(),
    )
    .unwrap();
    let live = server.start(&[]);
    let (mut alice, _) = join(&live, "alice").await;
    let (mut bob, _) = join(&live, "bob").await;
    let r = dig(&mut alice, 257, 256).await;
    assert_eq!(next(&mut alice, "LootGranted", Some(r)).await["Seq"], 2);
    let claimed = next(&mut bob, "VaultClaimed", None).await;
    assert_eq!(claimed, json!({"Seq": 1, "Vault": "North", "By": "alice"}));
    bob.close().await.unwrap();
    let r = dig(&mut alice, 255, 256).await;
    assert_eq!(next(&mut alice, "LootGranted", Some(r)).await["Seq"], 4);
    live.kill();

    let live = server.start(&[]);
    // Bob saw 1: he gets South's claim (3), not alice's loot (2, 4), then where the log is.
    let (mut bob, _) = join(&live, "bob").await;
    let r = bob.mod_request(NS, "CatchUp", &json!({"After": 1})).await.unwrap();
    let got: Vec<(String, Value)> = until_answer(&mut bob, "CaughtUp", r)
        .await
        .into_iter()
        .filter(|(k, _)| k != "InventoryChanged" && k != "Leaderboard")
        .collect();
    assert_eq!(
        got,
        [
            ("VaultClaimed".to_string(), json!({"Seq": 3, "Vault": "South", "By": "alice"})),
            ("CaughtUp".to_string(), json!({"Seq": 4})),
        ]
    );
    // Alice from the start: further back than the 3 events kept, so a snapshot.
    let (mut alice, _) = join(&live, "alice").await;
    let r = alice.mod_request(NS, "CatchUp", &json!({"After": 0})).await.unwrap();
    assert_eq!(next(&mut alice, "Snapshot", Some(r)).await, json!({"Seq": 4, "Opened": ["North", "South"]}));
    // From 2 (within the window): South's claim and her own loot, in order.
    let r = alice.mod_request(NS, "CatchUp", &json!({"After": 2})).await.unwrap();
    let got: Vec<(String, u64)> = until_answer(&mut alice, "CaughtUp", r)
        .await
        .into_iter()
        .filter(|(k, _)| k != "InventoryChanged" && k != "Leaderboard")
        .map(|(k, v)| (k, v["Seq"].as_u64().unwrap()))
        .collect();
    assert_eq!(got, [("VaultClaimed".into(), 3), ("LootGranted".into(), 4), ("CaughtUp".into(), 4)]);
    let (status, log) = live.stop();
    assert!(status.success(), "{log}");
}

/// The answer to `request`: a hunt message answering it, or its refusal (as `Err`).
async fn answer(client: &mut Client, request: u32) -> Result<(String, Value), String> {
    let found = client
        .recv_until(WAIT, |m| match m {
            ServerMessage::Mod(m) => m.ns == NS && m.request == Some(request),
            ServerMessage::Error(e) => e.request == Some(request),
            _ => false,
        })
        .await
        .unwrap_or_else(|e| panic!("no answer to {request}: {e:?}"));
    match found {
        ServerMessage::Mod(m) => Ok((m.kind.clone(), decode_mod_body(&m).unwrap())),
        ServerMessage::Error(e) => Err(e.message),
        _ => unreachable!(),
    }
}

/// A full disk for real (a small tmpfs under `universe/`): digs are refused in words while the
/// commits fail, the metric says so; once there is room again the store is opened again, the
/// next commit saves everything kept since, digs are answered again, and nothing a player was
/// told is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_digs_in_words_and_loses_nothing_once_there_is_room() {
    let server = server();
    let Some(disk) = Tmpfs::mount(&server.root().join("universe"), "4m") else { return };
    let live = server.start(&[]);
    let (mut alice, _) = join(&live, "alice").await;
    next(&mut alice, "InventoryChanged", None).await;
    let well = dig(&mut alice, 255, 256).await;
    next(&mut alice, "LootGranted", Some(well)).await;
    assert_eq!(live.metric("veltrix_store_writable"), "1");
    let behind = live.metric("veltrix_store_log_behind_bytes");
    assert!(behind.parse::<u64>().is_ok(), "bytes the store file has not taken: {behind}");

    let filler = disk.fill();
    // Digs where nothing is: each one's answer is recorded, a write every tick, until the full
    // disk fails a commit. Every dig is answered in words all along.
    let mut refusals = Vec::new();
    while refusals.last().is_none_or(|r| r != veltrix_sdk::StoreHealth::REFUSAL) {
        assert!(refusals.len() < 2000, "the disk never filled: {:?}", refusals.last());
        let r = dig(&mut alice, 256, 257).await;
        refusals.push(answer(&mut alice, r).await.expect_err("nothing to find there"));
    }
    // The log line may come a moment after the refusal that follows it.
    let failed = live.wait_for_log(0, "STORE COMMIT FAILED");
    assert!(failed.contains("No space left on device"), "{failed}");
    assert_eq!(live.log().matches("STORE COMMIT FAILED").count(), 1, "{}", live.log());
    let throne = dig(&mut alice, 257, 256).await;
    assert_eq!(answer(&mut alice, throne).await, Err(veltrix_sdk::StoreHealth::REFUSAL.to_string()));
    assert_eq!(live.metric("veltrix_store_writable"), "0");
    assert_ne!(live.metric("veltrix_store_commit_failures_total"), "0");

    // Room again: the next commits work, digs are answered.
    std::fs::remove_file(filler).unwrap();
    let mut granted = None;
    while granted.is_none() {
        let r = dig(&mut alice, 257, 256).await;
        match answer(&mut alice, r).await {
            Ok((kind, body)) if kind == "LootGranted" => granted = Some(body),
            Ok(_) => {}
            Err(refusal) => assert_eq!(refusal, veltrix_sdk::StoreHealth::REFUSAL),
        }
    }
    assert_eq!(granted.unwrap()["Items"], json!([{"Item": "Crown", "Quantity": 1}]));
    live.wait_for_log(0, "the store is writable again; claims resume");
    assert_eq!(live.metric("veltrix_store_writable"), "1");
    let (status, log) = live.stop();
    assert!(status.success(), "{log}");
    assert!(!log.contains("could not be saved"), "{log}");

    // Everything alice was told is there after a restart.
    let live = server.start(&[]);
    let (mut alice, _) = join(&live, "alice").await;
    let inventory = next(&mut alice, "InventoryChanged", None).await;
    assert_eq!(veltrix_tests::inventory_slots(&inventory), [("Coin".into(), 4), ("Crown".into(), 1)]);
    let (status, log) = live.stop();
    assert!(status.success(), "{log}");
    drop(disk);
}

/// A player record that does not decode: the player is refused when it joins, with a code
/// and the operator told what to do; the record is kept byte for byte, and `check` names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_whose_record_does_not_decode_is_refused_and_the_record_kept() {
    use veltrix_host::store::{FILE, RedbStore};
    use veltrix_sdk::Storage;

    let server = server();
    let live = server.start(&[]);
    let (mut alice, alice_id) = join(&live, "alice").await;
    next(&mut alice, "InventoryChanged", None).await;
    let well = dig(&mut alice, 255, 256).await;
    next(&mut alice, "LootGranted", Some(well)).await;
    let (status, log) = live.stop();
    assert!(status.success(), "{log}");

    // Her record's first byte overwritten with one MessagePack never uses.
    let path = server.root().join("universe").join(FILE);
    let key = veltrix_sdk::rmp_serde::to_vec(&alice_id).unwrap();
    let damaged = {
        let store = RedbStore::open(&path).unwrap();
        let mut record = store.get(treasure_hunt::persist::PLAYERS, &key).unwrap().expect("alice's record");
        record[0] = 0xc1;
        let table = treasure_hunt::persist::PLAYERS.into();
        store.commit(&[veltrix_sdk::Write { table, key: key.clone(), value: Some(record.clone()) }]).unwrap();
        record
    };

    let live = server.start(&[]);
    let error = match Client::connect(&live.addr, hello("alice")).await {
        Err(veltrix_client::ClientError::Refused(error)) => error,
        Err(other) => panic!("not a refusal: {other:?}"),
        Ok(_) => panic!("alice is let in"),
    };
    assert_eq!(error.code, veltrix_protocol::ErrorCode::SavedStateUnreadable);
    assert!(error.message.contains("your saved state cannot be read"), "{}", error.message);
    // The log line comes a moment after the refusal, through the server's standard error.
    let refused = live.wait_for_log(
        0,
        &format!(
            "player alice (id {alice_id}) refused: Veltrix:TreasureHunt cannot read its saved state: its record in \
             table Veltrix:TreasureHunt/players does not decode"
        ),
    );
    assert!(refused.contains("veltrix-server check"), "{refused}");
    // Others play on.
    let (mut bob, _) = join(&live, "bob").await;
    next(&mut bob, "InventoryChanged", None).await;
    let (status, log) = live.stop();
    assert!(status.success(), "{log}");

    let store = RedbStore::open(&path).unwrap();
    assert_eq!(store.get(treasure_hunt::persist::PLAYERS, &key).unwrap(), Some(damaged), "kept as it was");
    drop(store);
    let check = server.command().arg("check").output().unwrap();
    let out = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!("table Veltrix:TreasureHunt/players: key {alice_id} (base64 "))
            && out.contains("1 problem(s)"),
        "{out}"
    );
}

/// A proximity clue stays the player's across restarts, and so does one in a store written
/// before clue records were keyed by player first: the server rekeys them as it starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proximity_clue_stays_the_players_across_restarts_and_the_rekeying_of_its_record() {
    use veltrix_host::store::{FILE, RedbStore};
    use veltrix_sdk::{Storage, Write, rmp_serde};

    let server = server();
    server.write("config.json", &json!({"World": {"Terrain": "Flat", "SpawnRadius": 0}}).to_string());
    let hunt = json!({"Seed": 5, "Vaults": [{"Id": "Far_Away", "At": {"X": 500, "Y": 500}, "LootTable": "Coins"}],
                      "Clues": [{"Id": "Spot", "Vault": "Far_Away", "Kind": "Reveal",
                                 "Trigger": {"Enter": {"X": 258.0, "Y": 256.5, "Radius": 0.5}}}]});
    server.write(&format!("{MOD_DIR}/assets/Server/TreasureHunt/Hunts/Test.json"), &hunt.to_string());
    let live = server.start(&[]);
    let (mut alice, alice_id) = join(&live, "alice").await;
    // Into the circle and out again: she leaves where it is not released.
    alice.move_to(258.0, 256.5).await.unwrap();
    assert_eq!(next(&mut alice, "Clue", None).await["Clue"], "Spot");
    alice.move_to(256.5, 256.5).await.unwrap();
    // Answered after the move back is applied (a player's messages are taken in order).
    let asked = alice.mod_request(NS, "AskClue", &json!({"Clue": "Spot"})).await.unwrap();
    next(&mut alice, "Clue", Some(asked)).await;
    alice.close().await.unwrap();
    let (status, log) = live.stop();
    assert!(status.success(), "{log}");

    // Her record under the key an older server wrote: (hunt id, run, player id).
    let path = server.root().join("universe").join(FILE);
    let table = treasure_hunt::persist::CLUES;
    let key = rmp_serde::to_vec(&(alice_id, "Test", 1u32)).unwrap();
    {
        let store = RedbStore::open(&path).unwrap();
        let record = store.get(table, &key).unwrap().expect("her clues, keyed by her id first");
        let older = rmp_serde::to_vec(&("Test", 1u32, alice_id)).unwrap();
        store
            .commit(&[
                Write { table: table.into(), key: key.clone(), value: None },
                Write { table: table.into(), key: older, value: Some(record) },
            ])
            .unwrap();
    }

    let live = server.start(&[]);
    live.wait_for_log(0, "rekeyed 1 clue record(s) by player");
    let (mut alice, _) = join(&live, "alice").await;
    assert_eq!(next(&mut alice, "Clue", None).await["Clue"], "Spot", "told again as she joins");
    let asked = alice.mod_request(NS, "AskClue", &json!({"Clue": "Spot"})).await.unwrap();
    assert_eq!(next(&mut alice, "Clue", Some(asked)).await["Clue"], "Spot", "still hers");
    alice.close().await.unwrap();
    let (status, log) = live.stop();
    assert!(status.success(), "{log}");
    let store = RedbStore::open(&path).unwrap();
    let keys: Vec<Vec<u8>> = store.read_all(table).unwrap().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, [key], "one record, keyed by her id first");
}
