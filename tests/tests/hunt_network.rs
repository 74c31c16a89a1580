//! The treasure hunt end to end: the shipped server and mod, real WebSocket clients, and an
//! asset pack written for each test into the mod's folder, so every vault's tile is known.
//!
//! The worlds are flat (every tile is ground) unless a test needs rock and water; players
//! appear at the spawn (256.5, 256.5) and dig within 3 tiles of where they stand. The hunt's
//! messages are read here as JSON values (MessagePack maps keyed by field name): the shape a
//! client of any language sees.
//!
//! Above 600 lines on purpose: one short test per behaviour of the hunt over the wire, sharing
//! the pack, server and client helpers at the top.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;
use veltrix_client::{Client, decode_mod_body, hello};
use veltrix_protocol::{ErrorCode, ErrorMessage, ServerFrame, ServerMessage, decode_server_frame};
use veltrix_tests::{LiveServer, TestServer};

const NS: &str = "Veltrix:TreasureHunt";
const WAIT: Duration = Duration::from_secs(5);
/// The mod's folder, which is also its data folder (config.json).
const MOD_DIR: &str = "mods/Veltrix_TreasureHunt";
/// Where players appear (the default `World.SpawnX` and `SpawnY`).
const SPAWN: f32 = 256.5;

// ---- the asset pack ----

/// A test's asset pack: items, loot tables of one fixed stack each, and the hunt `Test`.
#[derive(Default)]
struct Pack {
    /// Files under `assets/Server/`.
    files: Vec<(String, Value)>,
    vaults: Vec<Value>,
    /// Where the vault nobody digs goes, when not at (500, 500).
    far: Option<(u32, u32)>,
}

impl Pack {
    /// Puts the vault nobody digs at `tile` (a small world).
    fn far_vault_at(mut self, tile: (u32, u32)) -> Self {
        self.far = Some(tile);
        self
    }

    fn item(mut self, id: &str, max_stack: u32) -> Self {
        self.files.push((format!("Item/Items/{id}.json"), json!({"MaxStack": max_stack})));
        self
    }

    /// A loot table that always yields `quantity` of `item`.
    fn table(mut self, id: &str, item: &str, quantity: u32) -> Self {
        let single =
            json!({"Type": "Single", "Item": {"ItemId": item, "QuantityMin": quantity, "QuantityMax": quantity}});
        self.files.push((format!("Drops/{id}.json"), json!({ "Container": single })));
        self
    }

    fn vault(mut self, spec: Value) -> Self {
        self.vaults.push(spec);
        self
    }

    /// Replaces the shipped pack's game data with this pack's.
    fn write(&self, server: &TestServer) {
        let data = server.root().join(MOD_DIR).join("assets/Server");
        std::fs::remove_dir_all(&data).expect("the shipped pack's game data is removed");
        // Plus a vault nobody digs, so the hunt does not end with the test's claims.
        let mut vaults = self.vaults.clone();
        let (x, y) = self.far.unwrap_or((500, 500));
        vaults.push(json!({"Id": "Far_Away", "At": {"X": x, "Y": y}, "LootTable": self.vaults[0]["LootTable"]}));
        let hunt = json!({"Seed": 7, "Vaults": vaults});
        for (path, value) in self.files.iter().chain([&("TreasureHunt/Hunts/Test.json".to_string(), hunt)]) {
            server.write(&format!("{MOD_DIR}/assets/Server/{path}"), &serde_json::to_string_pretty(value).unwrap());
        }
    }
}

/// A vault on a fixed tile.
fn vault(id: &str, (x, y): (u32, u32), claim: &str, table: &str, effort: u32) -> Value {
    json!({"Id": id, "At": {"X": x, "Y": y}, "Claim": claim, "LootTable": table, "DigEffort": effort})
}

/// The server config of a flat world.
fn flat() -> Value {
    json!({"World": {"Terrain": "Flat"}})
}

/// Starts the server with `pack` and the hunt `Test` running: `mod_config` holds keys of the
/// mod's config beside `Hunt` and `HotReload`, `config` is the server's.
fn start(pack: &Pack, mod_config: Value, config: Value) -> (TestServer, LiveServer) {
    start_with_files(pack, mod_config, config, &[])
}

/// [`start`], with more files written under the server root first.
fn start_with_files(pack: &Pack, mod_config: Value, config: Value, files: &[(&str, &str)]) -> (TestServer, LiveServer) {
    let server = TestServer::new().with_treasure_hunt("Veltrix_TreasureHunt");
    pack.write(&server);
    for (path, text) in files {
        server.write(path, text);
    }
    let mut settings = json!({"Hunt": "Test", "HotReload": false});
    settings.as_object_mut().unwrap().extend(mod_config.as_object().expect("an object").clone());
    server.write(&format!("{MOD_DIR}/config.json"), &settings.to_string());
    server.write("config.json", &config.to_string());
    let live = server.start(&[]);
    // The pack's vaults and the one nobody digs ([`Pack::write`]).
    let running = format!("hunt Test running with {} vaults", pack.vaults.len() + 1);
    // The mods have started by the time the server is ready.
    assert!(!live.log().contains("DISABLED"), "the mod did not start:\n{}", live.log());
    live.wait_for_log(0, &running);
    (server, live)
}

/// Joins and reads the inventory every player gets as it joins (asserting it is empty).
async fn join(live: &LiveServer, name: &str) -> Client {
    let mut client = Client::connect(&live.addr, hello(name)).await.unwrap_or_else(|e| panic!("{name} joins: {e:?}")).0;
    let first = frames_through(&mut client, "the inventory on joining", |m| {
        hunt_message(0, m).is_some_and(|m| m.kind == "InventoryChanged")
    })
    .await;
    let inventory = first
        .iter()
        .flat_map(|f| &f.messages)
        .find_map(|m| hunt_message(0, m).filter(|h| h.kind == "InventoryChanged"))
        .expect("an inventory");
    assert_eq!(inventory.body["Pending"], json!([]), "{name} joins with nothing pending");
    assert!(inventory.body["Slots"].as_array().unwrap().iter().all(|s| s.is_null()), "{name} joins empty-handed");
    client
}

// ---- sending ----

async fn dig(client: &mut Client, x: u32, y: u32) -> u32 {
    client.mod_request(NS, "Dig", &json!({"X": x, "Y": y})).await.unwrap()
}

// ---- reading ----

/// A hunt message as read: the tick of its frame, the request it answers, kind and body (the
/// event log's `Seq` of a logged event taken out of the body into `seq`).
#[derive(Debug, Clone, PartialEq)]
struct Hunt {
    tick: u64,
    request: Option<u32>,
    kind: String,
    body: Value,
    seq: Option<u64>,
}

fn hunt_message(tick: u64, message: &ServerMessage) -> Option<Hunt> {
    match message {
        ServerMessage::Mod(m) if m.ns == NS => {
            let mut body: Value =
                decode_mod_body(m).unwrap_or_else(|e| panic!("{NS} {}: body does not decode: {e}", m.kind));
            let seq = body.as_object_mut().and_then(|o| o.remove("Seq")).and_then(|s| s.as_u64());
            if matches!(m.kind.as_str(), "LootGranted" | "VaultClaimed") {
                assert!(seq.is_some(), "a logged event carries its Seq: {body}");
            }
            Some(Hunt { tick, request: m.request, kind: m.kind.clone(), body, seq })
        }
        _ => None,
    }
}

/// The hunt messages of `kind` in `frames`.
fn of_kind(frames: &[ServerFrame], kind: &str) -> Vec<Hunt> {
    frames
        .iter()
        .flat_map(|f| f.messages.iter().filter_map(|m| hunt_message(f.tick, m)))
        .filter(|m| m.kind == kind)
        .collect()
}

fn bodies(messages: &[Hunt]) -> Vec<Value> {
    messages.iter().map(|m| m.body.clone()).collect()
}

/// Every frame read until (and with) the first holding a message that matches `pred`.
async fn frames_through(
    client: &mut Client,
    what: &str,
    mut pred: impl FnMut(&ServerMessage) -> bool,
) -> Vec<ServerFrame> {
    let deadline = Instant::now() + WAIT;
    let mut frames = Vec::new();
    loop {
        let frame = match tokio::time::timeout_at(deadline, client.next_frame()).await {
            Err(_) => panic!("player {} got no {what} within {WAIT:?}; it got {frames:?}", client.player()),
            Ok(read) => read.expect("a well-formed frame").expect("the connection stays open"),
        };
        let found = frame.messages.iter().any(&mut pred);
        frames.push(frame);
        if found {
            return frames;
        }
    }
}

fn answers(request: u32) -> impl Fn(&ServerMessage) -> bool {
    move |m| match m {
        ServerMessage::Mod(m) => m.ns == NS && m.request == Some(request),
        ServerMessage::Error(e) => e.request == Some(request),
        _ => false,
    }
}

/// Reads until the answer to `request`: a hunt message, or an Error; with every frame read.
async fn answer(client: &mut Client, request: u32) -> (Result<Hunt, ErrorMessage>, Vec<ServerFrame>) {
    let frames = frames_through(client, &format!("answer to request {request}"), answers(request)).await;
    let last = frames.last().unwrap();
    let found = last.messages.iter().find(|m| answers(request)(m)).unwrap();
    let answer = match found {
        ServerMessage::Error(e) => Err(e.clone()),
        m => Ok(hunt_message(last.tick, m).unwrap()),
    };
    (answer, frames)
}

/// The answer to `request`, which must be a hunt message of `kind`; with every frame read.
async fn reply(client: &mut Client, request: u32, kind: &str) -> (Hunt, Vec<ServerFrame>) {
    match answer(client, request).await {
        (Ok(m), frames) if m.kind == kind => (m, frames),
        (got, _) => panic!("player {}: request {request} got {got:?}, not a {kind}", client.player()),
    }
}

/// The answer to `request`, which must be an Error refusing it; its message.
async fn refusal(client: &mut Client, request: u32) -> String {
    match answer(client, request).await.0 {
        Err(e) if e.code == ErrorCode::Refused => e.message,
        got => panic!("player {}: request {request} got {got:?}, not a refusal", client.player()),
    }
}

/// An inventory of `slots` slots holding `held` from the first slot on, and `pending`.
fn inventory(slots: usize, held: &[(&str, u32)], pending: &[(&str, u32)]) -> Value {
    let stack = |(item, quantity): &(&str, u32)| json!({"Item": item, "Quantity": quantity});
    let mut all: Vec<Value> = held.iter().map(stack).collect();
    all.resize(slots, Value::Null);
    json!({"Slots": all, "Pending": pending.iter().map(stack).collect::<Vec<_>>()})
}

/// What a claimant of `vault` is granted.
fn loot(vault: &str, items: &[(&str, u32)], pending: &[(&str, u32)]) -> Value {
    let stack = |(item, quantity): &(&str, u32)| json!({"Item": item, "Quantity": quantity});
    json!({"Vault": vault, "Items": items.iter().map(stack).collect::<Vec<_>>(),
           "Pending": pending.iter().map(stack).collect::<Vec<_>>()})
}

fn discovered(vault: &str, (x, y): (u32, u32), by: &str, claim: &str, first: bool) -> Value {
    json!({"Vault": vault, "X": x, "Y": y, "By": by, "Claim": claim, "First": first})
}

/// Digs `vault` at `at` until it opens (one dig per tick: each after the last one's answer);
/// returns the LootGranted and every frame read with it.
async fn open(client: &mut Client, at: (u32, u32), effort: u32) -> (Hunt, Vec<ServerFrame>) {
    let mut frames = Vec::new();
    for done in 1..effort {
        let request = dig(client, at.0, at.1).await;
        let (progress, read) = reply(client, request, "DigProgress").await;
        assert_eq!(progress.body, json!({"X": at.0, "Y": at.1, "Effort": done, "Required": effort}));
        frames.extend(read);
    }
    let request = dig(client, at.0, at.1).await;
    let (granted, read) = reply(client, request, "LootGranted").await;
    frames.extend(read);
    (granted, frames)
}

// ---- the tests ----

/// Where [`one_cache`]'s vault is: a tile beside the spawn.
const CACHE: (u32, u32) = (257, 256);

/// A FirstFinder vault `Cache` at [`CACHE`] that opens after 3 digs and gives 5 `Coin`.
fn one_cache() -> Pack {
    Pack::default().item("Coin", 99).table("Coins", "Coin", 5).vault(vault("Cache", CACHE, "FirstFinder", "Coins", 3))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_opens_after_its_dig_effort_and_then_stays_claimed() {
    let at = CACHE;
    let (_s, live) = start(&one_cache(), json!({}), flat());
    let mut alice = join(&live, "alice").await;

    // One dig per tick: each sent after the last one's answer.
    for effort in 1..=2 {
        let request = dig(&mut alice, at.0, at.1).await;
        let (progress, _) = reply(&mut alice, request, "DigProgress").await;
        assert_eq!(progress.request, Some(request));
        assert_eq!(progress.body, json!({"X": 257, "Y": 256, "Effort": effort, "Required": 3}));
    }
    let request = dig(&mut alice, at.0, at.1).await;
    let (granted, frames) = reply(&mut alice, request, "LootGranted").await;
    assert_eq!(granted.request, Some(request));
    assert_eq!(granted.body, loot("Cache", &[("Coin", 5)], &[]));

    // In the same tick: the opening, to the players around the vault, and her inventory.
    let in_tick = |kind| of_kind(&frames, kind).into_iter().filter(|m| m.tick == granted.tick).collect::<Vec<_>>();
    assert_eq!(bodies(&in_tick("VaultDiscovered")), [discovered("Cache", at, "alice", "FirstFinder", true)]);
    assert_eq!(bodies(&in_tick("InventoryChanged")), [inventory(24, &[("Coin", 5)], &[])]);

    let request = dig(&mut alice, at.0, at.1).await;
    assert_eq!(refusal(&mut alice, request).await, "already claimed: alice opened this vault first");
}

/// A dig that arrives just before its connection drops (both in one tick's input) is applied,
/// and asked again with its request id on the next connection it gets that first answer; the
/// dig is not applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dig_sent_just_before_the_connection_drops_is_applied_and_answered_when_asked_again() {
    let at = CACHE;
    let (_s, live) = start(&one_cache(), json!({}), flat());
    let mut alice = join(&live, "alice").await;
    let request = dig(&mut alice, at.0, at.1).await;
    reply(&mut alice, request, "DigProgress").await;

    // Sent, then the connection dropped at once: the server reads the dig and the end together.
    let request = dig(&mut alice, at.0, at.1).await;
    drop(alice);
    let deadline = Instant::now() + WAIT;
    let mut alice = loop {
        // Refused (NameTaken) until the server has seen the old connection go.
        match Client::connect(&live.addr, hello("alice")).await {
            Ok((client, _)) => break client,
            Err(e) => assert!(Instant::now() < deadline, "alice could not join again: {e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    alice.send_mod(NS, "Dig", Some(request), &json!({"X": at.0, "Y": at.1})).await.unwrap();
    let (progress, _) = reply(&mut alice, request, "DigProgress").await;
    assert_eq!(progress.body, json!({"X": 257, "Y": 256, "Effort": 2, "Required": 3}), "the dig counted once");
    let request = dig(&mut alice, at.0, at.1).await;
    reply(&mut alice, request, "LootGranted").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_players_finishing_one_first_finder_vault_leave_exactly_one_claim() {
    // Several vaults, to give the two last digs more chances to land in one tick.
    let tiles = [(255, 256), (257, 256), (256, 255), (256, 257)];
    let mut pack = Pack::default().item("Coin", 99).table("Coins", "Coin", 5);
    for (i, &at) in tiles.iter().enumerate() {
        pack = pack.vault(vault(&format!("Tie_{i}"), at, "FirstFinder", "Coins", 2));
    }
    let (_s, live) = start(&pack, json!({}), flat());
    let mut alice = join(&live, "alice").await;
    let mut bob = join(&live, "bob").await;

    let mut same_tick = 0;
    for (i, &(x, y)) in tiles.iter().enumerate() {
        let id = format!("Tie_{i}");
        // Both dig each tick: sent back to back, the next round after both answers.
        let (a, b) = tokio::join!(dig(&mut alice, x, y), dig(&mut bob, x, y));
        let ((a, _), (b, _)) = tokio::join!(reply(&mut alice, a, "DigProgress"), reply(&mut bob, b, "DigProgress"));
        assert_eq!((a.body["Effort"].clone(), b.body["Effort"].clone()), (json!(1), json!(1)), "{id}");

        let (a, b) = tokio::join!(dig(&mut alice, x, y), dig(&mut bob, x, y));
        let ((a, a_frames), (b, b_frames)) = tokio::join!(answer(&mut alice, a), answer(&mut bob, b));
        let (winner, loser, granted, refused) = match (a, b) {
            (Ok(granted), Err(refused)) => ("alice", "bob", granted, refused),
            (Err(refused), Ok(granted)) => ("bob", "alice", granted, refused),
            both => panic!("{id}: exactly one of alice and bob claims a FirstFinder vault; they got {both:?}"),
        };
        assert_eq!((granted.kind.as_str(), &granted.body), ("LootGranted", &loot(&id, &[("Coin", 5)], &[])), "{id}");
        assert_eq!(refused.code, ErrorCode::Refused, "{id}: {refused:?}");
        assert_eq!(refused.message, format!("already claimed: {winner} opened this vault first"), "{id}: {loser}");
        if refused_tick(&a_frames, &b_frames) == Some(granted.tick) {
            same_tick += 1;
        }
        // Both stand within the sparkle radius: both saw the one opening.
        for (name, frames) in [("alice", &a_frames), ("bob", &b_frames)] {
            let seen: Vec<Value> =
                bodies(&of_kind(frames, "VaultDiscovered")).into_iter().filter(|d| d["Vault"] == id.as_str()).collect();
            assert_eq!(seen, [discovered(&id, (x, y), winner, "FirstFinder", true)], "{id}: what {name} saw");
        }
    }
    eprintln!("{same_tick} of {} ties were decided within one tick", tiles.len());
}

/// The tick of the loser's refusal, from whichever side holds an Error.
fn refused_tick(a: &[ServerFrame], b: &[ServerFrame]) -> Option<u64> {
    [a, b].iter().find_map(|frames| {
        let last = frames.last()?;
        last.messages.iter().any(|m| matches!(m, ServerMessage::Error(_))).then_some(last.tick)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digs_out_of_reach_on_bare_ground_rock_water_or_off_the_world_are_refused() {
    // A 20 x 5 map, the spawn on (5, 3) between a rock (4, 3) and water (6, 3), the map's
    // last row y = 4: so (5, 5) is off the world yet within reach.
    let map = "....................\n\
               ....................\n\
               ....................\n\
               ....#.~.............\n\
               ....................\n";
    let well = vault("Well", (7, 4), "FirstFinder", "Coins", 2);
    let pack = Pack::default().item("Coin", 99).table("Coins", "Coin", 1).vault(well).far_vault_at((19, 0));
    let config = json!({"World": {"Map": "Tiny", "SpawnX": 5.5, "SpawnY": 3.5}});
    let (_s, live) = start_with_files(&pack, json!({}), config, &[("universe/worlds/Tiny/map.txt", map)]);
    let mut alice = join(&live, "alice").await;
    assert_eq!((alice.welcome().x, alice.welcome().y), (5.5, 3.5));

    let cases: [((u32, u32), &str); 6] = [
        ((15, 3), "out of reach: the tile (15, 3) is 10.0 tiles from you; you reach 3.0"),
        // Reach is checked before the tile: a far tile tells nothing of what is there.
        ((100_000, 3), "out of reach: the tile (100000, 3) is 99995.0 tiles from you; you reach 3.0"),
        ((5, 2), "nothing here: you dig at (5, 2) and find only earth"),
        ((4, 3), "nothing to dig: the tile (4, 3) is Rock"),
        ((6, 3), "nothing to dig: the tile (6, 3) is Water"),
        ((5, 5), "nothing to dig: the tile (5, 5) is outside the world"),
    ];
    for ((x, y), expected) in cases {
        let request = dig(&mut alice, x, y).await;
        assert_eq!(refusal(&mut alice, request).await, expected, "dig at ({x}, {y})");
    }

    // Two digs read in one tick (one client frame): the second is refused, the first counts.
    let first = alice.next_request();
    let second = alice.next_request();
    let body = |x: u32, y: u32| {
        let mut body = Vec::new();
        veltrix_protocol::encode_value(&json!({"X": x, "Y": y}), &mut body);
        body
    };
    let mod_message = |request, body| {
        veltrix_protocol::ClientMessage::Mod(veltrix_protocol::ModMessage {
            ns: NS.into(),
            kind: "Dig".into(),
            request: Some(request),
            body,
        })
    };
    alice.send(&[mod_message(first, body(7, 4)), mod_message(second, body(7, 4))]).await.unwrap();
    let (progress, frames) = reply(&mut alice, first, "DigProgress").await;
    assert_eq!(progress.body, json!({"X": 7, "Y": 4, "Effort": 1, "Required": 2}));
    // Answered in the same tick, so in the same frame.
    let refused = frames.last().unwrap().messages.iter().find_map(|m| match m {
        ServerMessage::Error(e) if e.request == Some(second) => Some(e.clone()),
        _ => None,
    });
    let expected = ErrorMessage {
        code: ErrorCode::Refused,
        message: "you already dug this tick: one dig per tick".into(),
        request: Some(second),
    };
    assert_eq!(refused, Some(expected), "{frames:?}");
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The MessagePack bytes of one map entry keyed by a one-letter field name, as rmp-serde
/// writes a named field: a fixstr key, then the value (here a uint16, for 256 to 65535).
fn entry_bytes(key: u8, value: u16) -> Vec<u8> {
    assert!(value > 255, "encoded as a uint16");
    let mut bytes = vec![0xa1, key, 0xcd];
    bytes.extend(value.to_be_bytes());
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vaults_tile_reaches_no_player_beyond_its_sparkle_radius() {
    let id = "Hidden_Vault_Q7";
    let at = (258, 257);
    let mut spec = vault(id, at, "PerPlayer", "Coins", 2);
    spec["SparkleRadius"] = json!(4);
    let pack = Pack::default().item("Coin", 99).table("Coins", "Coin", 5).vault(spec);
    let (_s, live) = start(&pack, json!({}), flat());
    // Carol and alice record every frame's bytes from the Welcome's on.
    let (mut carol, welcome) = Client::connect_recording(&live.addr, hello("carol")).await.unwrap();
    let (mut alice, _) = Client::connect_recording(&live.addr, hello("alice")).await.unwrap();
    let mut bob = join(&live, "bob").await;

    // Carol steps 7 tiles west, within one second's budget, to 9.1 tiles from the vault's
    // centre (258.5, 257.5). A dig beside her new place is a fence: from the spawn it would be
    // out of reach, so "nothing here" says the server moved her.
    carol.move_to(SPAWN - 7.0, SPAWN).await.unwrap();
    let request = dig(&mut carol, 249, 256).await;
    assert_eq!(refusal(&mut carol, request).await, "nothing here: you dig at (249, 256) and find only earth");

    // Alice and bob, at the spawn (2.2 tiles from the vault), both open it.
    let ((alice_loot, alice_frames), (bob_loot, bob_frames)) =
        tokio::join!(open(&mut alice, at, 2), open(&mut bob, at, 2));
    assert_eq!(alice_loot.body, loot(id, &[("Coin", 5)], &[]));
    assert_eq!(bob_loot.body, loot(id, &[("Coin", 5)], &[]));
    // Each sees both openings (the other's perhaps a tick after its own), one of them first.
    for (client, mut frames) in [(&mut alice, alice_frames), (&mut bob, bob_frames)] {
        while of_kind(&frames, "VaultDiscovered").len() < 2 {
            let is_opening = |m: &ServerMessage| hunt_message(0, m).is_some_and(|m| m.kind == "VaultDiscovered");
            frames.extend(frames_through(client, "the other opening", is_opening).await);
        }
        let mut seen = bodies(&of_kind(&frames, "VaultDiscovered"));
        seen.sort_by_key(|d| d["By"].as_str().map(str::to_string));
        let first = seen[0]["First"].as_bool().unwrap();
        let expected =
            [discovered(id, at, "alice", "PerPlayer", first), discovered(id, at, "bob", "PerPlayer", !first)];
        assert_eq!(seen, expected, "what player {} saw", client.player());
    }
    // A second fence for carol, sent after both openings were seen: every frame of those
    // ticks has reached her by its answer.
    let request = dig(&mut carol, 249, 256).await;
    let (refused, frames) = answer(&mut carol, request).await;
    assert!(refused.is_err(), "{refused:?}");
    let carol_messages: Vec<&ServerMessage> = frames.iter().flat_map(|f| &f.messages).collect();
    assert!(of_kind(&frames, "VaultDiscovered").is_empty(), "carol, 9 tiles away, got {carol_messages:?}");

    // On the bytes: nothing carol received names the vault or holds its tile's X or Y.
    let needles = [
        ("the vault's id", id.as_bytes().to_vec()),
        ("X: 258", entry_bytes(b'X', 258)),
        ("Y: 257", entry_bytes(b'Y', 257)),
    ];
    let raw = carol.raw_frames();
    let first = decode_server_frame(&raw[0]).unwrap().frame;
    assert!(
        matches!(&first.messages[0], ServerMessage::Welcome(w) if *w == welcome),
        "the first frame recorded is the Welcome's: {first:?}"
    );
    for (what, needle) in &needles {
        for (i, frame) in raw.iter().enumerate() {
            assert!(!contains(frame, needle), "carol's frame {i} holds {what}: {frame:02x?}");
        }
        // The same bytes do reach alice, who may know: the search would find them.
        assert!(alice.raw_frames().iter().any(|f| contains(f, needle)), "alice got no frame holding {what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_vault_is_claimed_once_per_team_and_once_by_a_player_without_one() {
    let at = (257, 256);
    let pack =
        Pack::default().item("Banner", 1).table("Hoard", "Banner", 1).vault(vault("Guild", at, "Team", "Hoard", 1));
    let (_s, live) = start(&pack, json!({}), flat());
    let mut alice = join(&live, "alice").await;
    let mut bob = join(&live, "bob").await;
    let mut dave = join(&live, "dave").await;

    for client in [&mut alice, &mut bob] {
        let request = client.mod_request(NS, "JoinTeam", &json!({"Team": "Reds"})).await.unwrap();
        let (changed, _) = reply(client, request, "TeamChanged").await;
        assert_eq!(changed.body, json!({"Team": "Reds"}));
    }
    let request = dave.mod_request(NS, "JoinTeam", &json!({"Team": "no such name!"})).await.unwrap();
    let refused = refusal(&mut dave, request).await;
    assert_eq!(refused, "\"no such name!\" is not a team name: use 1 to 16 letters, digits or _");

    let (granted, frames) = open(&mut alice, at, 1).await;
    assert_eq!(granted.body, loot("Guild", &[("Banner", 1)], &[]));
    let opened = of_kind(&frames, "VaultDiscovered");
    assert_eq!(bodies(&opened), [discovered("Guild", at, "alice", "Team", true)]);

    // Bob's team has it: his dig is refused, and starts no effort.
    let request = dig(&mut bob, at.0, at.1).await;
    assert_eq!(refusal(&mut bob, request).await, "already claimed: your team Reds opened this vault");
    // Dave, in no team, is a team of one.
    let (granted, frames) = open(&mut dave, at, 1).await;
    assert_eq!(granted.body, loot("Guild", &[("Banner", 1)], &[]));
    let opened = of_kind(&frames, "VaultDiscovered");
    assert_eq!(bodies(&opened).last(), Some(&discovered("Guild", at, "dave", "Team", false)));
    let request = dig(&mut dave, at.0, at.1).await;
    assert_eq!(refusal(&mut dave, request).await, "already claimed: you opened this vault before");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_player_vaults_give_everyone_loot_and_the_first_finder_a_jackpot() {
    let (well, shrine) = ((257, 256), (255, 256));
    let mut jackpot = vault("Shrine", shrine, "FirstFinderThenPerPlayer", "Jackpot", 1);
    jackpot["ConsolationTable"] = json!("Consolation");
    let pack = Pack::default()
        .item("Coin", 99)
        .item("Crown", 1)
        .item("Pebble", 10)
        .table("Coins", "Coin", 3)
        .table("Jackpot", "Crown", 1)
        .table("Consolation", "Pebble", 2)
        .vault(vault("Well", well, "PerPlayer", "Coins", 1))
        .vault(jackpot);
    let (_s, live) = start(&pack, json!({}), flat());
    let mut alice = join(&live, "alice").await;
    let mut bob = join(&live, "bob").await;

    // PerPlayer: each opens it once, with loot of their own.
    for (name, client) in [("alice", &mut alice), ("bob", &mut bob)] {
        let (granted, frames) = open(client, well, 1).await;
        assert_eq!(granted.body, loot("Well", &[("Coin", 3)], &[]), "{name}");
        let inventories = of_kind(&frames, "InventoryChanged");
        assert_eq!(bodies(&inventories), [inventory(24, &[("Coin", 3)], &[])], "{name}");
        let request = dig(client, well.0, well.1).await;
        assert_eq!(refusal(client, request).await, "already claimed: you opened this vault before", "{name}");
    }

    // FirstFinderThenPerPlayer: alice first (the jackpot), then bob (the consolation).
    let (granted, frames) = open(&mut alice, shrine, 1).await;
    assert_eq!(granted.body, loot("Shrine", &[("Crown", 1)], &[]));
    let opening = of_kind(&frames, "VaultDiscovered");
    assert_eq!(bodies(&opening).last(), Some(&discovered("Shrine", shrine, "alice", "FirstFinderThenPerPlayer", true)));
    let (granted, frames) = open(&mut bob, shrine, 1).await;
    assert_eq!(granted.body, loot("Shrine", &[("Pebble", 2)], &[]));
    let opening = of_kind(&frames, "VaultDiscovered");
    assert_eq!(bodies(&opening).last(), Some(&discovered("Shrine", shrine, "bob", "FirstFinderThenPerPlayer", false)));
    assert_eq!(bodies(&of_kind(&frames, "InventoryChanged")), [inventory(24, &[("Coin", 3), ("Pebble", 2)], &[])]);
    for client in [&mut alice, &mut bob] {
        let request = dig(client, shrine.0, shrine.1).await;
        assert_eq!(refusal(client, request).await, "already claimed: you opened this vault before");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loot_that_does_not_fit_waits_and_comes_in_as_space_frees() {
    let at = (257, 256);
    let crypt = vault("Crypt", at, "FirstFinder", "Relics", 1);
    let pack = Pack::default().item("Relic", 1).table("Relics", "Relic", 2).vault(crypt);
    let (_s, live) = start(&pack, json!({"InventorySlots": 1}), flat());
    let mut alice = join(&live, "alice").await;

    // One slot, a MaxStack of 1, two relics: one in, one waiting.
    let (granted, frames) = open(&mut alice, at, 1).await;
    assert_eq!(granted.body, loot("Crypt", &[("Relic", 1)], &[("Relic", 1)]));
    let changed = of_kind(&frames, "InventoryChanged");
    assert_eq!(bodies(&changed), [inventory(1, &[("Relic", 1)], &[("Relic", 1)])]);
    assert_eq!(changed[0].tick, granted.tick);

    // More than she holds: refused, nothing changes.
    let request = alice.mod_request(NS, "Discard", &json!({"Item": "Relic", "Quantity": 2})).await.unwrap();
    assert_eq!(refusal(&mut alice, request).await, "you hold 1 Relic, cannot discard 2");

    let request = alice.mod_request(NS, "Discard", &json!({"Item": "Relic", "Quantity": 1})).await.unwrap();
    let (discarded, mut frames) = reply(&mut alice, request, "Discarded").await;
    assert_eq!(discarded.body, json!({"Item": "Relic", "Quantity": 1}));
    // The freed slot takes the waiting relic, in the discard's tick or the next.
    let delivered = inventory(1, &[("Relic", 1)], &[]);
    let is_delivered = |m: &ServerMessage| {
        hunt_message(0, m).is_some_and(|m| m.kind == "InventoryChanged" && m.body["Pending"] == json!([]))
    };
    if !frames.last().unwrap().messages.iter().any(is_delivered) {
        frames.extend(frames_through(&mut alice, "the pending relic delivered", is_delivered).await);
    }
    let after: Vec<Hunt> =
        of_kind(&frames, "InventoryChanged").into_iter().filter(|m| m.tick >= discarded.tick).collect();
    let last = after.last().unwrap();
    assert_eq!(last.body, delivered, "{after:?}");
    assert!(last.tick <= discarded.tick + 1, "delivered in tick {}, discarded in {}", last.tick, discarded.tick);
    // Before it, at most the empty slot of the discard's tick.
    for early in &after[..after.len() - 1] {
        assert_eq!(early.body, inventory(1, &[], &[("Relic", 1)]), "{after:?}");
    }
    // Nothing is lost or doubled: the two relics were one discarded, one held.
    let request = alice.mod_request(NS, "Discard", &json!({"Item": "Relic", "Quantity": 2})).await.unwrap();
    assert_eq!(refusal(&mut alice, request).await, "you hold 1 Relic, cannot discard 2");
}

/// An effect with `MoveSpeed` 2 lets a player move twice as far per second: a 12-tile step,
/// refused at the server's 8 tiles per second, is taken with the effect (the dig that follows
/// reaches a vault only from the new position).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_speed_effect_lets_a_player_move_farther() {
    let mut pack = Pack::default()
        .table("Kit", "Boots", 1)
        .vault(vault("Kit", (257, 256), "PerPlayer", "Kit", 1))
        .vault(vault("Far", (269, 256), "PerPlayer", "Kit", 1));
    pack.files.push(("Item/Items/Boots.json".into(), json!({"MaxStack": 5, "Effect": "Swift"})));
    pack.files.push(("TreasureHunt/Effects/Swift.json".into(), json!({"DurationSeconds": 30, "MoveSpeed": 2.0})));
    let (_server, live) = start(&pack, json!({}), flat());
    let mut alice = join(&live, "alice").await;
    open(&mut alice, (257, 256), 1).await;

    let seq = alice.move_to(SPAWN + 12.0, SPAWN).await.unwrap();
    let frames = frames_through(
        &mut alice,
        "a correction",
        |m| matches!(m, ServerMessage::PositionCorrected(c) if c.seq == seq),
    )
    .await;
    assert!(!frames.is_empty(), "without the effect, 12 tiles at once is too far");

    let request = alice.mod_request(NS, "UseItem", &json!({"Item": "Boots"})).await.unwrap();
    let (started, _) = reply(&mut alice, request, "EffectStarted").await;
    assert_eq!(started.body, json!({"Effect": "Swift", "Stacks": 1, "Ticks": 30 * 30}));
    // Over a second, the budget refills to a second's worth at twice the speed.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let seq = alice.move_to(SPAWN + 12.0, SPAWN).await.unwrap();
    let request = dig(&mut alice, 269, 256).await;
    let (granted, frames) = reply(&mut alice, request, "LootGranted").await;
    assert_eq!(granted.body, loot("Far", &[("Boots", 1)], &[]));
    let corrected = frames
        .iter()
        .flat_map(|f| &f.messages)
        .any(|m| matches!(m, ServerMessage::PositionCorrected(c) if c.seq == seq));
    assert!(!corrected, "the step is taken: {frames:?}");
}
