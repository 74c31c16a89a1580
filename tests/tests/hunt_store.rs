//! The hunt across restarts: what a player was told is saved, and a server killed with
//! SIGKILL comes back with it (the real server, its store on disk, real clients).

use std::time::Duration;

use serde_json::{Value, json};
use veltrix_client::{Client, decode_mod_body, hello};
use veltrix_protocol::ServerMessage;
use veltrix_tests::{LiveServer, TestServer};

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

fn slots(inventory: &Value) -> Vec<(String, u64)> {
    inventory["Slots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s.is_null())
        .map(|s| (s["Item"].as_str().unwrap().to_string(), s["Quantity"].as_u64().unwrap()))
        .collect()
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
    assert_eq!(slots(&inventory), [("Crown".into(), 1), ("Coin".into(), 4)]);
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
    assert!(live.log().contains("hunt Test: 2 claimed vault(s) restored from the store"), "{}", live.log());
    let (mut alice, id) = join(&live, "alice").await;
    assert_eq!(id, alice_id, "a player keeps its id across restarts");
    let inventory = next(&mut alice, "InventoryChanged", None).await;
    assert_eq!(slots(&inventory), [("Crown".into(), 1), ("Coin".into(), 4)], "her loot is back, once");
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
