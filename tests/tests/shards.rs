//! Shards: two servers (each its own root and store) sharing one hunt through a real
//! nats-server with JetStream, real WebSocket clients on each (docs/scale-out.md).
//!
//! Every test starts its own nats-server on loopback; without one installed the tests say
//! SKIPPED (CI installs it and requires it).

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;
use veltrix_client::{Client, decode_mod_body, hello};
use veltrix_protocol::{ErrorCode, ServerFrame, ServerMessage};
use veltrix_tests::{
    LiveServer, TestServer,
    nats::{NatsCluster, NatsServer},
};

const NS: &str = "Veltrix:TreasureHunt";
const MOD_DIR: &str = "mods/Veltrix_TreasureHunt";
const WAIT: Duration = Duration::from_secs(10);

/// FirstFinder vaults of one dig each around the spawn (256.5, 256.5), within every player's
/// reach and sparkle radius.
const TILES: [(u32, u32); 8] =
    [(255, 256), (257, 256), (256, 255), (256, 257), (255, 255), (257, 257), (255, 257), (257, 255)];

/// A shard: the shipped server and mod with the hunt `Test` (the vaults at [`TILES`], one
/// nobody digs far away), its `Cluster` pointing at `nats`.
fn shard(nats: &NatsServer) -> (TestServer, LiveServer) {
    shard_of(nats, "FirstFinder")
}

/// [`shard`], its vaults under claim rule `rule`.
fn shard_of(nats: &NatsServer, rule: &str) -> (TestServer, LiveServer) {
    let server = shard_server(nats, &TILES, 1, rule);
    let live = start_shard(&server);
    (server, live)
}

/// A shard's server, not started: vaults `Race_<i>` at `tiles` under claim rule `rule`, each
/// opened by `effort` digs, players appearing exactly at the spawn.
fn shard_server(nats: &NatsServer, tiles: &[(u32, u32)], effort: u32, rule: &str) -> TestServer {
    shard_server_on(&nats.url(), 1, tiles, effort, rule)
}

/// [`shard_server`] with `Cluster.Nats` `urls` and the bucket's `Cluster.Replicas`.
fn shard_server_on(urls: &str, replicas: u32, tiles: &[(u32, u32)], effort: u32, rule: &str) -> TestServer {
    let server = TestServer::new().with_treasure_hunt("Veltrix_TreasureHunt");
    let data = server.root().join(MOD_DIR).join("assets/Server");
    std::fs::remove_dir_all(&data).expect("the shipped pack's game data is removed");
    let mut vaults: Vec<Value> = tiles
        .iter()
        .enumerate()
        .map(|(i, (x, y))| {
            let mut vault = json!({"Id": format!("Race_{i}"), "At": {"X": x, "Y": y}, "Claim": rule,
                                   "LootTable": "Coins", "DigEffort": effort});
            if rule == "FirstFinderThenPerPlayer" {
                vault["ConsolationTable"] = json!("Coins");
            }
            vault
        })
        .collect();
    vaults.push(json!({"Id": "Far_Away", "At": {"X": 500, "Y": 500}, "LootTable": "Coins"}));
    let coins =
        json!({"Container": {"Type": "Single", "Item": {"ItemId": "Coin", "QuantityMin": 5, "QuantityMax": 5}}});
    for (path, value) in [
        ("Item/Items/Coin.json", json!({"MaxStack": 99})),
        ("Drops/Coins.json", coins),
        ("TreasureHunt/Hunts/Test.json", json!({"Seed": 7, "Vaults": vaults})),
    ] {
        server.write(&format!("{MOD_DIR}/assets/Server/{path}"), &value.to_string());
    }
    server.write(&format!("{MOD_DIR}/config.json"), &json!({"Hunt": "Test", "HotReload": false}).to_string());
    let config = json!({"World": {"Terrain": "Flat", "SpawnRadius": 0},
                        "Cluster": {"Nats": urls, "Bucket": "race", "Replicas": replicas, "RecordsEverySeconds": 1}});
    server.write("config.json", &config.to_string());
    server
}

/// Starts a shard and waits until its hunt runs and its ledger is open.
fn start_shard(server: &TestServer) -> LiveServer {
    let live = server.start(&[]);
    live.wait_for_log(0, "hunt Test running with");
    live.wait_for_log(0, "claims are decided in JetStream bucket race");
    live
}

async fn join(live: &LiveServer, name: &str) -> Client {
    Client::connect(&live.addr, hello(name)).await.unwrap_or_else(|e| panic!("{name} joins: {e:?}")).0
}

async fn dig(client: &mut Client, (x, y): (u32, u32)) -> u32 {
    client.mod_request(NS, "Dig", &json!({"X": x, "Y": y})).await.unwrap()
}

/// A hunt message's kind and body (MessagePack maps read as JSON).
fn hunt(message: &ServerMessage) -> Option<(String, Value)> {
    match message {
        ServerMessage::Mod(m) if m.ns == NS => Some((m.kind.clone(), decode_mod_body(m).expect("a hunt body"))),
        _ => None,
    }
}

/// Every frame read until one holds a message matching `pred`.
async fn frames_through(client: &mut Client, what: &str, pred: impl Fn(&ServerMessage) -> bool) -> Vec<ServerFrame> {
    let deadline = Instant::now() + WAIT;
    let mut frames = Vec::new();
    loop {
        let frame = match tokio::time::timeout_at(deadline, client.next_frame()).await {
            Err(_) => panic!("player {} got no {what} within {WAIT:?}", client.player()),
            Ok(read) => read.expect("a well-formed frame").expect("the connection stays open"),
        };
        let found = frame.messages.iter().any(&pred);
        frames.push(frame);
        if found {
            return frames;
        }
    }
}

/// The answer to `request`: a hunt message's kind and body, or a refusal's words; with every
/// frame read.
async fn answer(client: &mut Client, request: u32) -> (Result<(String, Value), String>, Vec<ServerFrame>) {
    let answers = |m: &ServerMessage| match m {
        ServerMessage::Mod(m) => m.ns == NS && m.request == Some(request),
        ServerMessage::Error(e) => e.request == Some(request),
        _ => false,
    };
    let frames = frames_through(client, &format!("answer to request {request}"), answers).await;
    let found = frames.last().unwrap().messages.iter().find(|m| answers(m)).unwrap();
    let answer = match found {
        ServerMessage::Error(e) => {
            assert_eq!(e.code, ErrorCode::Refused, "{e:?}");
            Err(e.message.clone())
        }
        m => Ok(hunt(m).unwrap()),
    };
    (answer, frames)
}

/// Who `frames` say opened `vault` (VaultDiscovered).
fn opened_by(frames: &[ServerFrame], vault: &str) -> Vec<String> {
    frames
        .iter()
        .flat_map(|f| &f.messages)
        .filter_map(hunt)
        .filter(|(kind, body)| kind == "VaultDiscovered" && body["Vault"] == vault)
        .map(|(_, body)| body["By"].as_str().unwrap().to_string())
        .collect()
}

/// Two shards, a player on each, both digging every FirstFinder vault at once: each vault goes
/// to exactly one of them, the other is refused naming the winner, and both see the one
/// opening (the loser's shard learns it from the ledger).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_finder_vault_raced_from_two_shards_has_exactly_one_winner() {
    let Some(nats) = NatsServer::start() else { return };
    let ((_a, shard_a), (_b, shard_b)) = (shard(&nats), shard(&nats));
    let mut alice = join(&shard_a, "alice").await;
    let mut bob = join(&shard_b, "bob").await;
    let mut wins = [0; 2];
    for (i, &at) in TILES.iter().enumerate() {
        let id = format!("Race_{i}");
        let (a, b) = tokio::join!(dig(&mut alice, at), dig(&mut bob, at));
        let ((a, a_frames), (b, b_frames)) = tokio::join!(answer(&mut alice, a), answer(&mut bob, b));
        let (winner, refused) = match (a, b) {
            (Ok((kind, body)), Err(refused)) | (Err(refused), Ok((kind, body))) => {
                assert_eq!(kind, "LootGranted", "{id}: {body}");
                assert_eq!(body["Vault"], id.as_str());
                assert_eq!(body["Items"], json!([{"Item": "Coin", "Quantity": 5}]));
                let winner = if a_frames.last().unwrap().messages.iter().any(|m| matches!(m, ServerMessage::Error(_))) {
                    "bob"
                } else {
                    "alice"
                };
                (winner, refused)
            }
            both => panic!("{id}: exactly one of alice and bob claims it; they got {both:?}"),
        };
        wins[usize::from(winner == "bob")] += 1;
        assert_eq!(refused, format!("already claimed: {winner} opened this vault first"), "{id}");
        for (name, frames) in [("alice", &a_frames), ("bob", &b_frames)] {
            assert_eq!(opened_by(frames, &id), [winner], "{id}: what {name} saw");
        }
    }
    eprintln!("alice won {}, bob {} of {} races", wins[0], wins[1], TILES.len());
}

/// A claim on one shard reaches a player near the vault on the other (its opening, at once),
/// and a dig there afterwards is refused without asking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_on_one_shard_is_seen_near_the_vault_on_the_other() {
    let Some(nats) = NatsServer::start() else { return };
    let ((_a, shard_a), (_b, shard_b)) = (shard(&nats), shard(&nats));
    let mut alice = join(&shard_a, "alice").await;
    let mut carol = join(&shard_b, "carol").await;
    let request = dig(&mut alice, TILES[0]).await;
    let (granted, _) = answer(&mut alice, request).await;
    assert_eq!(granted.expect("alice claims it").0, "LootGranted");
    let seen = frames_through(&mut carol, "the opening of Race_0", |m| {
        hunt(m).is_some_and(|(kind, body)| kind == "VaultDiscovered" && body["Vault"] == "Race_0")
    })
    .await;
    assert_eq!(opened_by(&seen, "Race_0"), ["alice"]);
    let request = dig(&mut carol, TILES[0]).await;
    let (refused, _) = answer(&mut carol, request).await;
    assert_eq!(refused, Err("already claimed: alice opened this vault first".to_string()));
}

/// NATS killed: a claim is refused in words (the hunt cannot save), movement and the rest go
/// on; NATS back (same store): the shards reconnect by themselves and the next dig claims.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nats_down_claims_are_refused_in_words_and_resume_when_it_returns() {
    let Some(mut nats) = NatsServer::start() else { return };
    let (_a, shard_a) = shard(&nats);
    let mut alice = join(&shard_a, "alice").await;
    assert_eq!(shard_a.metric("veltrix_cluster_ledger_available"), "1");
    nats.kill();
    shard_a.wait_for_log(0, "NATS lost");
    veltrix_tests::poll(WAIT, || (shard_a.metric("veltrix_cluster_ledger_available") == "0").then_some(()))
        .expect("the metric says the ledger is away");
    let request = dig(&mut alice, TILES[1]).await;
    let (refused, _) = answer(&mut alice, request).await;
    assert_eq!(refused, Err("the hunt cannot save right now; try again in a moment".to_string()));

    let before = shard_a.log().len();
    nats.restart();
    shard_a.wait_for_log(before, "connected to NATS");
    let deadline = Instant::now() + WAIT;
    loop {
        let request = dig(&mut alice, TILES[1]).await;
        match answer(&mut alice, request).await.0 {
            Ok((kind, body)) => {
                assert_eq!((kind.as_str(), &body["Vault"]), ("LootGranted", &json!("Race_1")));
                break;
            }
            // The connection is back a moment before the bucket answers.
            Err(refusal) if refusal.starts_with("the hunt cannot save") && Instant::now() < deadline => {}
            Err(refusal) => panic!("after NATS came back: {refusal}"),
        }
    }
}

/// What a digger was told: the vaults granted to it (answers, and grants that came without a
/// request: a claim decided before a kill, made when it came back), and who opened the vaults
/// it was refused.
#[derive(Debug, Default)]
struct Told {
    granted: Vec<String>,
    refused: Vec<(String, String)>,
}

/// Digs every vault of `tiles` in turn until it is granted or refused as claimed, through
/// kills: a connection that closes is made again to the shard's address of the moment.
async fn digger(name: &str, addr: std::sync::Arc<std::sync::Mutex<String>>, tiles: &[(u32, u32)]) -> Told {
    let connect = || async {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let at = addr.lock().unwrap().clone();
            match Client::connect(&at, hello(name)).await {
                Ok((client, _)) => return client,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("{name} cannot join {at}: {e:?}"),
            }
        }
    };
    let mut told = Told::default();
    let mut client = connect().await;
    for (i, &(x, y)) in tiles.iter().enumerate() {
        let id = format!("Race_{i}");
        'vault: loop {
            let Ok(request) = client.mod_request(NS, "Dig", &json!({"X": x, "Y": y})).await else {
                client = connect().await;
                continue;
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let frame = match tokio::time::timeout_at(deadline, client.next_frame()).await {
                    Err(_) => panic!("{name}: no answer to its dig of {id} within 30 s"),
                    Ok(Ok(Some(frame))) => frame,
                    Ok(_) => {
                        client = connect().await;
                        continue 'vault;
                    }
                };
                let mut answered = None;
                for m in &frame.messages {
                    if let Some((kind, body)) = hunt(m)
                        && kind == "LootGranted"
                    {
                        told.granted.push(body["Vault"].as_str().unwrap().to_string());
                    }
                    match m {
                        ServerMessage::Mod(m) if m.ns == NS && m.request == Some(request) => {
                            answered = Some(Ok(m.kind.clone()))
                        }
                        ServerMessage::Error(e) if e.request == Some(request) => {
                            answered = Some(Err(e.message.clone()))
                        }
                        _ => {}
                    }
                }
                match answered {
                    None => continue,
                    Some(Ok(kind)) if kind == "LootGranted" => break 'vault,
                    Some(Ok(_)) => continue 'vault,
                    Some(Err(refusal)) => {
                        if let Some(who) = refusal.strip_prefix("already claimed: ") {
                            let who = who.trim_end_matches(" opened this vault first");
                            told.refused.push((id.clone(), who.to_string()));
                            break 'vault;
                        }
                        assert!(
                            refusal.starts_with("the hunt cannot save") || refusal.contains("being decided"),
                            "{name}: {id} refused: {refusal}"
                        );
                        // Tried again at the next frame.
                        continue 'vault;
                    }
                }
            }
        }
    }
    told
}

/// The grants in a stopped shard's event log: (vault, player id) for each.
fn logged_grants(server: &TestServer) -> Vec<(String, u64)> {
    use treasure_hunt::persist::{EVENTS, EventRecord, HuntEvent};
    let path = server.root().join("universe").join(veltrix_host::store::FILE);
    let store =
        veltrix_sdk::Store(std::sync::Arc::new(veltrix_host::store::RedbStore::open(&path).expect("the store opens")));
    let events: Vec<((String, u64), EventRecord)> = store.load(EVENTS).expect("events decode");
    events
        .into_iter()
        .filter_map(|(_, record)| match record.event {
            HuntEvent::LootGranted { player, vault, .. } => Some((vault, player)),
            HuntEvent::VaultOpened { .. } => None,
        })
        .collect()
}

/// Two shards race for 24 FirstFinder vaults of two digs each while one shard is SIGKILLed and
/// restarted three times and nats-server once. Afterwards, from both shards' stores and what
/// the players were told: no vault is granted twice (in the logs or to the players), every
/// grant a player was told of is in its shard's log, and every vault someone was refused as
/// claimed was granted to the one named (none lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_and_nats_killed_during_claims_never_grant_a_vault_twice_or_lose_one() {
    let Some(mut nats) = NatsServer::start() else { return };
    // Every tile within reach of the spawn but the one players stand on.
    let tiles: Vec<(u32, u32)> =
        (254..=258).flat_map(|x| (254..=258).map(move |y| (x, y))).filter(|&t| t != (256, 256)).collect();
    let (server_a, server_b) =
        (shard_server(&nats, &tiles, 2, "FirstFinder"), shard_server(&nats, &tiles, 2, "FirstFinder"));
    let (mut live_a, live_b) = (start_shard(&server_a), start_shard(&server_b));
    let addr_a = std::sync::Arc::new(std::sync::Mutex::new(live_a.addr.clone()));
    let addr_b = std::sync::Arc::new(std::sync::Mutex::new(live_b.addr.clone()));
    let killer = {
        let addr_a = std::sync::Arc::clone(&addr_a);
        tokio::task::spawn_blocking(move || {
            for pause in [400, 900, 250] {
                std::thread::sleep(Duration::from_millis(pause));
                live_a.kill();
                live_a = start_shard(&server_a);
                *addr_a.lock().unwrap() = live_a.addr.clone();
            }
            std::thread::sleep(Duration::from_millis(300));
            nats.kill();
            std::thread::sleep(Duration::from_millis(500));
            nats.restart();
            (server_a, live_a, nats)
        })
    };
    let (alice, bob) = tokio::join!(digger("alice", addr_a, &tiles), digger("bob", addr_b, &tiles));
    let (server_a, live_a, _nats) = killer.await.unwrap();
    let (_, _) = (live_a.stop(), live_b.stop());
    check_claims([("alice", &alice, &server_a), ("bob", &bob, &server_b)], tiles.len());
}

/// The checks over a race between two shards' diggers, from each shard's store and what its
/// digger was told: no vault is granted twice (in the logs or to the players), every grant a
/// player was told of is in its shard's log, and every vault someone was refused as claimed was
/// granted to the one named (none lost).
fn check_claims(diggers: [(&str, &Told, &TestServer); 2], vaults: usize) {
    let logs = diggers.map(|(name, told, server)| (name, told, logged_grants(server)));
    let mut grants: std::collections::BTreeMap<String, Vec<&str>> = std::collections::BTreeMap::new();
    for (name, _, log) in &logs {
        for (vault, _) in log {
            grants.entry(vault.clone()).or_default().push(name);
        }
    }
    for (vault, to) in &grants {
        assert_eq!(to.len(), 1, "{vault} granted more than once: {to:?}");
    }
    for (name, told, log) in &logs {
        let mut once = told.granted.clone();
        once.sort();
        once.dedup();
        assert_eq!(once.len(), told.granted.len(), "{name} was told of a grant twice: {:?}", told.granted);
        for vault in &told.granted {
            assert!(log.iter().any(|(v, _)| v == vault), "{name} was told of {vault}, which its shard did not log");
        }
        for (vault, who) in &told.refused {
            assert_eq!(
                grants.get(vault).map(Vec::as_slice),
                Some(&[who.as_str()][..]),
                "{name} was refused {vault} as {who}'s"
            );
        }
    }
    let [(a, told_a, _), (b, told_b, _)] = &logs;
    eprintln!(
        "{a} was granted {}, {b} {}; {} of {vaults} vaults granted in all",
        told_a.granted.len(),
        told_b.granted.len(),
        grants.len(),
    );
}

/// As above on a three-node JetStream cluster, the bucket replicated on all three
/// (`Cluster.Replicas: 3`, the shards given every node's URL), as docs/scale-out.md says to run
/// it: while two shards race for the vaults, the node that leads the bucket's stream is
/// SIGKILLed three times (restarted each time once the other two have elected a new leader),
/// so claims are asked of a leader that dies and decided by the one elected after it. The same
/// checks hold, and the three nodes end holding the same claims.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_survive_the_bucket_leader_killed_in_a_three_node_jetstream() {
    let Some(mut nats) = NatsCluster::start() else { return };
    let tiles: Vec<(u32, u32)> =
        (254..=258).flat_map(|x| (254..=258).map(move |y| (x, y))).filter(|&t| t != (256, 256)).collect();
    let urls = nats.urls();
    let (server_a, server_b) =
        (shard_server_on(&urls, 3, &tiles, 2, "FirstFinder"), shard_server_on(&urls, 3, &tiles, 2, "FirstFinder"));
    let (live_a, live_b) = (start_shard(&server_a), start_shard(&server_b));
    let bucket = nats.nodes[0].stream_detail(STREAM).expect("the bucket's stream");
    assert_eq!(bucket["config"]["num_replicas"], 3, "the bucket is on every node: {bucket}");
    let addr_a = std::sync::Arc::new(std::sync::Mutex::new(live_a.addr.clone()));
    let addr_b = std::sync::Arc::new(std::sync::Mutex::new(live_b.addr.clone()));
    let killer = tokio::task::spawn_blocking(move || {
        // JetStream elects a stream's new leader 4 to 9 s after it lost the old one.
        const ELECTION: Duration = Duration::from_secs(30);
        let mut elections = Vec::new();
        for pause in [300, 400, 400] {
            std::thread::sleep(Duration::from_millis(pause));
            let leader = veltrix_tests::poll(ELECTION, || nats.stream_leader_with_current_replicas(STREAM))
                .expect("the bucket has a leader and both other nodes hold it all");
            nats.nodes[leader].kill();
            let killed = std::time::Instant::now();
            let next = veltrix_tests::poll(ELECTION, || nats.stream_leader(STREAM).filter(|&l| l != leader));
            assert!(next.is_some(), "no new leader within {ELECTION:?} after node {leader} was killed");
            elections.push((leader, killed.elapsed()));
            nats.nodes[leader].restart();
        }
        (nats, elections)
    });
    let (alice, bob) = tokio::join!(digger("alice", addr_a, &tiles), digger("bob", addr_b, &tiles));
    let (nats, elections) = killer.await.unwrap();
    let (_, _) = (live_a.stop(), live_b.stop());
    check_claims([("alice", &alice, &server_a), ("bob", &bob, &server_b)], tiles.len());
    // Every node catches up with the claims, the ones killed too.
    let last = |node: &veltrix_tests::nats::NatsServer| {
        node.stream_detail(STREAM).and_then(|d| d["state"]["last_seq"].as_u64())
    };
    let same = veltrix_tests::poll(WAIT, || {
        let seqs: Vec<Option<u64>> = nats.nodes.iter().map(last).collect();
        seqs[0].filter(|_| seqs.iter().all(|s| *s == seqs[0]))
    });
    assert!(same.is_some(), "the nodes hold different claims: {:?}", nats.nodes.iter().map(last).collect::<Vec<_>>());
    eprintln!("the bucket's leader killed (node, until the next was elected): {elections:?}");
}

/// The JetStream stream behind the shards' bucket `race`.
const STREAM: &str = "KV_race";

/// The `Event` of the next `HuntAnnounced` `client` receives.
async fn next_announcement(client: &mut Client) -> String {
    let frames =
        frames_through(client, "an announcement", |m| hunt(m).is_some_and(|(kind, _)| kind == "HuntAnnounced")).await;
    let (_, body) =
        frames.iter().flat_map(|f| &f.messages).filter_map(hunt).find(|(kind, _)| kind == "HuntAnnounced").unwrap();
    body["Event"].as_str().unwrap().to_string()
}

/// A run stopped on one shard ends on the other, and a run started on one starts on the other
/// with the same number: their players hear it, and a vault of the new run is claimed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_or_started_on_one_shard_is_followed_by_the_other() {
    let Some(nats) = NatsServer::start() else { return };
    let ((_a, mut shard_a), (_b, shard_b)) = (shard(&nats), shard(&nats));
    let mut bob = join(&shard_b, "bob").await;

    let said = shard_a.console("hunt stop Test");
    assert!(said.contains("hunt Test ended (run 1)"), "{said}");
    assert_eq!(next_announcement(&mut bob).await, "Ended");
    shard_b.wait_for_log(0, "hunt Test ended (run 1): Stopped, as another server ended it");

    let said = shard_a.console("hunt start Test");
    assert!(said.contains("hunt Test started (run 2)"), "{said}");
    assert_eq!(next_announcement(&mut bob).await, "Started");
    shard_b.wait_for_log(0, "hunt Test started (run 2)");

    let mut alice = join(&shard_a, "alice").await;
    let (a, b) = tokio::join!(dig(&mut alice, TILES[0]), dig(&mut bob, TILES[0]));
    let ((a, _), (b, _)) = tokio::join!(answer(&mut alice, a), answer(&mut bob, b));
    assert!(a.is_ok() != b.is_ok(), "run 2's vault goes to exactly one of them: {a:?} / {b:?}");
}

/// A PerPlayer vault claimed by alice on one shard is refused to alice on the other (her claim
/// is in the ledger), and still granted to bob there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_player_claim_counts_on_every_shard() {
    let Some(nats) = NatsServer::start() else { return };
    let ((_a, shard_a), (_b, shard_b)) = (shard_of(&nats, "PerPlayer"), shard_of(&nats, "PerPlayer"));
    let mut alice = join(&shard_a, "alice").await;
    let request = dig(&mut alice, TILES[0]).await;
    assert_eq!(answer(&mut alice, request).await.0.expect("alice claims it").0, "LootGranted");
    alice.close().await.unwrap();
    // One session per name: shard B lets alice in once it heard she left shard A.
    veltrix_tests::poll(WAIT, || (shard_b.metric("veltrix_cluster_remote_players") == "0").then_some(()))
        .expect("shard B hears alice left");

    let mut alice = join(&shard_b, "Alice").await;
    let request = dig(&mut alice, TILES[0]).await;
    assert_eq!(answer(&mut alice, request).await.0, Err("already claimed: you opened this vault before".to_string()));
    let mut bob = join(&shard_b, "bob").await;
    let request = dig(&mut bob, TILES[0]).await;
    assert_eq!(answer(&mut bob, request).await.0.expect("bob claims it too").0, "LootGranted");
}

/// The top of the board in the next `Leaderboard` that ranks `players` players: names in rank
/// order with their vaults.
async fn board_of(client: &mut Client, players: u64) -> Vec<(String, u64)> {
    let is_board = |m: &ServerMessage| {
        hunt(m).is_some_and(|(kind, body)| kind == "Leaderboard" && body["Players"].as_u64() == Some(players))
    };
    let frames = frames_through(client, &format!("a board of {players} players"), is_board).await;
    let (_, body) =
        frames.iter().flat_map(|f| &f.messages).filter(|m| is_board(m)).filter_map(hunt).next_back().unwrap();
    body["Top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| (row["Player"].as_str().unwrap().to_string(), row["Vaults"].as_u64().unwrap()))
        .collect()
}

/// Claims on both shards make one board, the same on both, and a player's rank on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leaderboard_is_one_board_across_shards() {
    let Some(nats) = NatsServer::start() else { return };
    let ((_a, shard_a), (_b, shard_b)) = (shard(&nats), shard(&nats));
    let mut alice = join(&shard_a, "alice").await;
    let mut bob = join(&shard_b, "bob").await;
    for (bob_digs, tile) in [(false, TILES[0]), (true, TILES[1]), (true, TILES[2])] {
        let client = if bob_digs { &mut bob } else { &mut alice };
        let request = dig(client, tile).await;
        assert_eq!(answer(client, request).await.0.expect("claimed").0, "LootGranted");
    }
    let expected = vec![("bob".to_string(), 2), ("alice".to_string(), 1)];
    assert_eq!(board_of(&mut alice, 2).await, expected, "alice's shard");
    assert_eq!(board_of(&mut bob, 2).await, expected, "bob's shard");
    let request = alice.mod_request(NS, "Rank", &json!({})).await.unwrap();
    let (rank, _) = answer(&mut alice, request).await;
    let (_, body) = rank.expect("a rank");
    assert_eq!((body["Rank"].as_u64(), body["Of"].as_u64(), body["Vaults"].as_u64()), (Some(2), Some(2), Some(1)));
}

/// Players on different shards see each other: appearing, moving (at the state-update rate),
/// and gone when one leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_near_each_other_on_different_shards_see_each_other_move() {
    let Some(nats) = NatsServer::start() else { return };
    let ((_a, shard_a), (_b, shard_b)) = (shard(&nats), shard(&nats));
    let mut alice = join(&shard_a, "alice").await;
    let mut bob = join(&shard_b, "bob").await;
    let appeared =
        |name: &'static str| move |m: &ServerMessage| matches!(m, ServerMessage::PlayerAppeared(p) if p.name == name);
    let frames = frames_through(&mut bob, "alice appearing", appeared("alice")).await;
    let alice_there = frames
        .iter()
        .flat_map(|f| &f.messages)
        .find_map(|m| match m {
            ServerMessage::PlayerAppeared(p) if p.name == "alice" => Some(p.player),
            _ => None,
        })
        .unwrap();
    frames_through(&mut alice, "bob appearing", appeared("bob")).await;
    assert_eq!(shard_b.metric("veltrix_cluster_remote_players"), "1", "alice, on bob's shard");

    alice.move_to(258.0, 256.5).await.unwrap();
    frames_through(
        &mut bob,
        "alice's move",
        |m| matches!(m, ServerMessage::PlayerMoved(p) if p.player == alice_there && p.x == 258.0 && p.y == 256.5),
    )
    .await;

    alice.close().await.unwrap();
    frames_through(&mut bob, "alice gone", |m| matches!(m, ServerMessage::PlayerGone(p) if p.player == alice_there))
        .await;
}

/// A nats-server on every address, and a shard started in a network namespace of its own, its
/// vaults under claim rule `rule`, whose link to NATS the namespace cuts and heals (its players
/// still reach it); none (SKIPPED) without namespaces or nats-server.
fn cut_off_shard(rule: &str) -> Option<(veltrix_tests::netns::Netns, NatsServer, TestServer, LiveServer)> {
    let ns = match veltrix_tests::netns::Netns::create() {
        Ok(ns) => ns,
        Err(why) => {
            eprintln!("SKIPPED: no network namespace for the partition ({why})");
            return None;
        }
    };
    let nats = NatsServer::start_on("0.0.0.0")?;
    let server = shard_server(&nats, &TILES, 1, rule).with_wrapper(ns.exec());
    let config = json!({"World": {"Terrain": "Flat", "SpawnRadius": 0},
                        "Cluster": {"Nats": nats.url_at(&ns.nats_ip()), "Bucket": "race", "RecordsEverySeconds": 1}});
    server.write("config.json", &config.to_string());
    let mut live = start_shard(&server);
    let port = live.addr.rsplit_once(':').unwrap().1.to_string();
    live.addr = format!("{}:{port}", ns.players_ip());
    Some((ns, nats, server, live))
}

/// A shard cut off from NATS by a real partition (its own network namespace, the NATS link
/// down, players still connected): a vault finished there meanwhile is not granted; the other
/// shard claims it; once the link is back the cut-off shard refuses its player naming the
/// winner, and claims again by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_cut_off_from_nats_grants_nothing_and_recovers_when_the_link_returns() {
    let Some((ns, nats, _a, shard_a)) = cut_off_shard("FirstFinder") else { return };
    let (_b, shard_b) = shard(&nats);
    let mut alice = join(&shard_a, "alice").await;
    let mut bob = join(&shard_b, "bob").await;

    ns.cut();
    let asked = dig(&mut alice, TILES[0]).await;
    let request = dig(&mut bob, TILES[0]).await;
    assert_eq!(answer(&mut bob, request).await.0.expect("bob claims it").0, "LootGranted");
    // Nothing for alice while cut off: no grant, and no answer that could not be saved.
    let waited = tokio::time::timeout(Duration::from_secs(3), answer(&mut alice, asked)).await;
    assert!(waited.is_err(), "alice was answered while her shard was cut off: {:?}", waited.map(|a| a.0));

    ns.heal();
    let (refused, _) = answer(&mut alice, asked).await;
    assert_eq!(refused, Err("already claimed: bob opened this vault first".to_string()));
    let deadline = Instant::now() + WAIT;
    loop {
        let request = dig(&mut alice, TILES[1]).await;
        match answer(&mut alice, request).await.0 {
            Ok((kind, _)) => {
                assert_eq!(kind, "LootGranted");
                break;
            }
            Err(refusal) if refusal.starts_with("the hunt cannot save") && Instant::now() < deadline => {}
            Err(refusal) => panic!("after the link came back: {refusal}"),
        }
    }
}

/// A player let in on another shard while its own was cut off from NATS: the cut-off shard
/// answers nothing for it, so the other lets it in after a few seconds, with its records as of
/// their last put. The cut-off shard refuses claims from the moment it notices, and when the
/// link is back it ends the player's session there (Replaced) before claims resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_let_in_elsewhere_while_its_shard_was_cut_off_loses_its_session_there() {
    let Some((ns, nats, _a, shard_a)) = cut_off_shard("PerPlayer") else { return };
    let (_b, shard_b) = shard_of(&nats, "PerPlayer");
    // Her coins from shard B are in NATS as she joins shard A (which only the shards can see).
    let mut on_b = join(&shard_b, "alice").await;
    claim(&mut on_b, TILES[0]).await;
    on_b.close().await.unwrap();
    let mut on_a = join_when_let_in(&shard_a, "alice").await;
    assert_eq!(inventory_on_joining(&mut on_a).await, [("Coin".to_string(), 5)]);

    ns.cut();
    shard_a.wait_for_log(0, "NATS lost; claims are refused");
    let mut on_b = join_when_let_in(&shard_b, "alice").await;
    assert_eq!(inventory_on_joining(&mut on_b).await, [("Coin".to_string(), 5)], "as of their last put");

    ns.heal();
    let ended = on_a.recv_until(WAIT, |m| matches!(m, ServerMessage::Error(_))).await.expect("an Error on shard A");
    let ServerMessage::Error(ended) = ended else { unreachable!() };
    assert_eq!(
        (ended.code, ended.message.as_str()),
        (ErrorCode::Replaced, "you logged in on another server of this hunt")
    );
    claim(&mut on_b, TILES[1]).await;
}

/// A shard whose tick stalled (its process stopped: its NATS link idle, never dropped) while its
/// player was let in on another shard: when it runs again, a dig the player sent it meanwhile is
/// refused or never applied, nothing is granted there, and the player's session there ends
/// (`Replaced`); the vault is the other shard's player's to claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_that_stalled_while_its_player_went_elsewhere_grants_that_player_nothing() {
    let Some(nats) = NatsServer::start() else { return };
    let ((_a, shard_a), (_b, shard_b)) = (shard_of(&nats, "FirstFinder"), shard_of(&nats, "FirstFinder"));
    let mut on_a = join(&shard_a, "alice").await;
    let signal = |which: &str| {
        let sent = std::process::Command::new("kill").arg(format!("-{which}")).arg(shard_a.pid().to_string()).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -{which} shard A");
    };
    signal("STOP");
    // Shard A does not answer for alice; after 4 s shard B takes her over.
    let mut on_b = join_when_let_in(&shard_b, "alice").await;
    let request = dig(&mut on_a, TILES[0]).await;
    signal("CONT");
    shard_a.wait_for_log(0, "tick stalled for");
    // Everything shard A sends alice from then on, to the end of her session there.
    let mut told = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, on_a.next_frame()).await {
            Err(_) => panic!("shard A kept alice's session: {told:?}"),
            Ok(Ok(Some(frame))) => told.extend(frame.messages),
            Ok(Ok(None) | Err(_)) => break,
        }
    }
    let granted = told.iter().filter_map(hunt).any(|(kind, _)| kind == "LootGranted");
    assert!(!granted, "nothing granted on the stalled shard: {told:?}");
    let answered = told.iter().find(|m| matches!(m, ServerMessage::Mod(m) if m.request == Some(request)));
    assert!(answered.is_none(), "the dig is refused or never applied: {answered:?}");
    let ended = told.iter().find_map(|m| match m {
        ServerMessage::Error(e) if e.request.is_none() => Some((e.code, e.message.as_str())),
        _ => None,
    });
    assert_eq!(ended, Some((ErrorCode::Replaced, "you logged in on another server of this hunt")), "{told:?}");
    claim(&mut on_b, TILES[0]).await;
}

/// One session per name across the shards: a name online on one shard is refused on another
/// (NameTaken), and let in once it left the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_online_on_one_shard_is_refused_on_another_until_it_leaves() {
    let Some(nats) = NatsServer::start() else { return };
    let ((_a, shard_a), (_b, shard_b)) = (shard(&nats), shard(&nats));
    let alice = join(&shard_a, "alice").await;
    veltrix_tests::poll(WAIT, || (shard_b.metric("veltrix_cluster_remote_players") == "1").then_some(()))
        .expect("shard B hears of alice");
    let refused = match Client::connect(&shard_b.addr, hello("Alice")).await {
        Ok(_) => panic!("Alice got in on shard B while online on shard A"),
        Err(e) => format!("{e:?}"),
    };
    assert!(refused.contains("NameTaken") && refused.contains("online on another server"), "{refused}");

    alice.close().await.unwrap();
    veltrix_tests::poll(WAIT, || (shard_b.metric("veltrix_cluster_remote_players") == "0").then_some(()))
        .expect("shard B hears alice left");
    join(&shard_b, "alice").await;
}

/// One session per name across the shards even before they hear of each other: a name joining
/// two shards at the same moment is let in on one and refused on the other (NameTaken), every
/// time; a shard started after it joined refuses it at once, before any roster reached it. The
/// player's entry in NATS names its shard, written before it is let in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_is_let_in_on_one_shard_only_even_before_the_others_hear_of_it() {
    let Some(nats) = NatsServer::start() else { return };
    let ((_a, shard_a), (_b, shard_b)) = (shard(&nats), shard(&nats));
    let refused_elsewhere = |refused: String| {
        assert!(refused.contains("NameTaken") && refused.contains("online on another server"), "{refused}");
    };
    // Each round has about a tick's chance in twenty of both shards letting the name in
    // before either hears of the other (without the entry's shard, the test fails within 60).
    let mut twin0 = None;
    for round in 0..60 {
        let name = format!("twin{round}");
        let (on_a, on_b) =
            tokio::join!(Client::connect(&shard_a.addr, hello(&name)), Client::connect(&shard_b.addr, hello(&name)));
        match (on_a, on_b) {
            (Ok((client, _)), Err(e)) | (Err(e), Ok((client, _))) => {
                refused_elsewhere(format!("{e:?}"));
                match twin0 {
                    None => twin0 = Some(client),
                    Some(_) => client.close().await.unwrap(),
                }
            }
            (Ok(_), Ok(_)) => panic!("{name} was let in on both shards"),
            (Err(a), Err(b)) => panic!("{name} was refused on both shards: {a:?}; {b:?}"),
        }
    }

    // Its roster comes once a second: this shard has not heard it yet.
    let (_c, shard_c) = shard(&nats);
    match Client::connect(&shard_c.addr, hello("twin0")).await {
        Ok(_) => panic!("twin0 was let in on a shard started after it joined another"),
        Err(e) => refused_elsewhere(format!("{e:?}")),
    }
}

/// The inventory a player is told of as it joins: (item, quantity) of each filled slot.
async fn inventory_on_joining(client: &mut Client) -> Vec<(String, u64)> {
    let is_inventory = |m: &ServerMessage| hunt(m).is_some_and(|(kind, _)| kind == "InventoryChanged");
    let frames = frames_through(client, "the inventory on joining", is_inventory).await;
    let (_, body) = frames.iter().flat_map(|f| &f.messages).filter(|m| is_inventory(m)).find_map(hunt).unwrap();
    veltrix_tests::inventory_slots(&body)
}

/// A player who leaves one shard and joins another finds its inventory there, and a request it
/// repeats there is answered as the first time, not applied again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_players_inventory_and_answers_follow_it_to_another_shard() {
    let Some(nats) = NatsServer::start() else { return };
    let ((_a, shard_a), (_b, shard_b)) = (shard_of(&nats, "PerPlayer"), shard_of(&nats, "PerPlayer"));
    let mut alice = join(&shard_a, "alice").await;
    let request = dig(&mut alice, TILES[0]).await;
    let (granted, _) = answer(&mut alice, request).await;
    let (kind, body) = granted.expect("alice claims it");
    assert_eq!(kind, "LootGranted");
    alice.close().await.unwrap();

    // Let in on shard B once shard A handed over her records.
    let deadline = Instant::now() + WAIT;
    let mut alice = loop {
        match Client::connect(&shard_b.addr, hello("alice")).await {
            Ok((client, _)) => break client,
            Err(e) => assert!(Instant::now() < deadline, "alice could not join shard B: {e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(inventory_on_joining(&mut alice).await, [("Coin".to_string(), 5)], "her coins came with her");
    alice.send_mod(NS, "Dig", Some(request), &json!({"X": TILES[0].0, "Y": TILES[0].1})).await.unwrap();
    let (again, _) = answer(&mut alice, request).await;
    assert_eq!(again, Ok(("LootGranted".to_string(), body)), "answered as the first time");
    let request = dig(&mut alice, TILES[0]).await;
    assert_eq!(answer(&mut alice, request).await.0, Err("already claimed: you opened this vault before".to_string()));
}

/// A player who leaves a shard while its claim is being decided (the dig that opens the vault
/// the last thing it sent) finds the vault's loot on the shard it joins next: its departure
/// waits for the ledger's answer, so the records it leaves with hold the loot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_who_leaves_while_its_claim_is_decided_finds_the_loot_on_the_next_shard() {
    let Some(nats) = NatsServer::start() else { return };
    let ((_a, shard_a), (_b, shard_b)) = (shard(&nats), shard(&nats));
    let mut alice = join(&shard_a, "alice").await;
    dig(&mut alice, TILES[0]).await;
    alice.close().await.unwrap();
    let mut alice = join_when_let_in(&shard_b, "alice").await;
    assert_eq!(inventory_on_joining(&mut alice).await, [("Coin".to_string(), 5)], "the vault's coins came with her");
    let request = dig(&mut alice, TILES[0]).await;
    let again = answer(&mut alice, request).await.0;
    assert!(again.as_ref().is_err_and(|why| why.starts_with("already claimed")), "{again:?}");
}

/// Under FirstFinderThenPerPlayer the first finder does not claim the vault's consolation too:
/// not on the shard it opened the vault on, nor on another (whose vault records know the first
/// claim by the player's name only); another player still claims the consolation there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_finder_claims_no_consolation_on_another_shard() {
    let Some(nats) = NatsServer::start() else { return };
    let ((_a, shard_a), (_b, shard_b)) =
        (shard_of(&nats, "FirstFinderThenPerPlayer"), shard_of(&nats, "FirstFinderThenPerPlayer"));
    let mut alice = join(&shard_a, "alice").await;
    claim(&mut alice, TILES[0]).await;
    alice.close().await.unwrap();
    let mut alice = join_when_let_in(&shard_b, "alice").await;
    let request = dig(&mut alice, TILES[0]).await;
    let again = answer(&mut alice, request).await.0;
    assert_eq!(again, Err("already claimed: you opened this vault before".to_string()));
    let mut bob = join(&shard_b, "bob").await;
    claim(&mut bob, TILES[0]).await;
}

/// Two shards whose vaults ([`TILES`]) are claimed once per player, started.
fn per_player_shards(nats: &NatsServer) -> [(TestServer, LiveServer); 2] {
    [0, 1].map(|_| shard_of(nats, "PerPlayer"))
}

/// `client` digs the vault at `tile` and is granted its loot.
async fn claim(client: &mut Client, tile: (u32, u32)) {
    let request = dig(client, tile).await;
    let (granted, _) = answer(client, request).await;
    assert_eq!(granted.expect("the vault is claimed").0, "LootGranted");
}

/// `name` let in on `live` once the shard it was on is heard gone (until then the name is
/// online there).
async fn join_when_let_in(live: &LiveServer, name: &str) -> Client {
    let deadline = Instant::now() + WAIT;
    loop {
        match Client::connect(&live.addr, hello(name)).await {
            Ok((client, _)) => return client,
            Err(e) => assert!(Instant::now() < deadline, "{name} could not join: {e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A shard killed while its player plays: the player goes on on another shard with what it
/// was granted (its records were put in NATS while it played). A shard killed before it could
/// put them puts them when it restarts, and the player finds them wherever it joins next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_shards_player_goes_on_elsewhere_with_what_it_was_granted() {
    let Some(nats) = NatsServer::start() else { return };
    let [(server_a, live_a), (server_b, live_b)] = per_player_shards(&nats);

    let mut alice = join(&live_a, "alice").await;
    claim(&mut alice, TILES[0]).await;
    veltrix_tests::poll(WAIT, || (live_a.metric("veltrix_cluster_records_unsent") == "0").then_some(()))
        .expect("shard A puts alice's records in NATS while she plays");
    live_a.kill();
    let mut alice = join_when_let_in(&live_b, "alice").await;
    assert_eq!(inventory_on_joining(&mut alice).await, [("Coin".to_string(), 5)], "her coins from shard A");

    // Killed at once after a grant: the records are put when the shard is back.
    claim(&mut alice, TILES[1]).await;
    assert_eq!(live_b.metric("veltrix_cluster_records_unsent"), "1", "not in NATS yet");
    live_b.kill();
    let live_b = start_shard(&server_b);
    veltrix_tests::poll(WAIT, || (live_b.metric("veltrix_cluster_records_unsent") == "0").then_some(()))
        .expect("shard B puts alice's records once it is back");
    let live_a = start_shard(&server_a);
    let mut alice = join_when_let_in(&live_a, "alice").await;
    assert_eq!(inventory_on_joining(&mut alice).await, [("Coin".to_string(), 10)], "all her coins, on shard A");
    let (_, _) = (live_a.stop(), live_b.stop());
}

/// A scheduled hunt waiting for two players starts when one is online on each of two shards:
/// `MinPlayers` counts the players of every shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_players_counts_the_players_of_every_shard() {
    let Some(nats) = NatsServer::start() else { return };
    let vaults = json!([{"Id": "Well", "At": {"X": 255, "Y": 256}, "LootTable": "Coins"}]);
    let hunt = json!({"Seed": 7, "Vaults": vaults, "MinPlayers": 2,
                      "Schedule": {"Daily": {"At": "00:00", "Minutes": 1440}}});
    let shards: Vec<(TestServer, LiveServer)> = (0..2)
        .map(|_| {
            let server = shard_server(&nats, &TILES, 1, "FirstFinder");
            server.write(&format!("{MOD_DIR}/assets/Server/TreasureHunt/Hunts/Test.json"), &hunt.to_string());
            server.write(&format!("{MOD_DIR}/config.json"), &json!({"Hunt": "", "HotReload": false}).to_string());
            let live = server.start(&[]);
            live.wait_for_log(0, "claims are decided in JetStream bucket race");
            (server, live)
        })
        .collect();
    let mut alice = join(&shards[0].1, "alice").await;
    assert_eq!(next_announcement(&mut alice).await, "Waiting", "one player of two");
    let mut bob = join(&shards[1].1, "bob").await;
    let mut heard = Vec::new();
    for client in [&mut alice, &mut bob] {
        loop {
            let event = next_announcement(client).await;
            heard.push(event.clone());
            if event == "Started" {
                break;
            }
        }
    }
    assert!(heard.iter().filter(|e| *e == "Started").count() == 2, "both hear the start: {heard:?}");
}

/// The loot of `vault`, granted to `client` without a request (a claim decided for a shard
/// that did not save it, made on this one): what it then holds, (item, quantity) of each filled
/// slot.
async fn granted_unasked(client: &mut Client, vault: &str) -> Vec<(String, u64)> {
    let granted = |m: &ServerMessage| {
        matches!(m, ServerMessage::Mod(m) if m.request.is_none())
            && hunt(m).is_some_and(|(kind, body)| kind == "LootGranted" && body["Vault"] == vault)
    };
    let is_inventory = |m: &ServerMessage| hunt(m).is_some_and(|(kind, _)| kind == "InventoryChanged");
    // The inventory told in the frame of the grant (the grant's tick), else in the next one.
    let mut frames = frames_through(client, &format!("the loot of {vault}"), granted).await;
    let grant = frames.pop().unwrap();
    let inventory = match grant.messages.iter().filter(|m| is_inventory(m)).find_map(hunt) {
        Some((_, body)) => body,
        None => {
            let frames = frames_through(client, "the inventory after the grant", is_inventory).await;
            frames.iter().flat_map(|f| &f.messages).filter(|m| is_inventory(m)).find_map(hunt).unwrap().1
        }
    };
    veltrix_tests::inventory_slots(&inventory)
}

/// A shard killed before it put a player's records, who then plays on another shard, does not
/// write its older records over the other shard's when it restarts: it logs that they stay in
/// its store, and the player finds the other shard's records wherever it joins. The claim those
/// older records held is the ledger's: the other shard makes it for the player, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_shard_never_writes_over_records_another_shard_wrote_since() {
    let Some(nats) = NatsServer::start() else { return };
    let [(server_a, live_a), (_server_b, live_b)] = per_player_shards(&nats);

    let mut alice = join(&live_a, "alice").await;
    claim(&mut alice, TILES[0]).await;
    assert_eq!(live_a.metric("veltrix_cluster_records_unsent"), "1", "not in NATS yet");
    live_a.kill();

    // Shard A never put her coins; her claim there is made on B.
    let mut alice = join_when_let_in(&live_b, "alice").await;
    assert_eq!(granted_unasked(&mut alice, "Race_0").await, [("Coin".to_string(), 5)], "her claim on A, made on B");
    for tile in [TILES[1], TILES[2]] {
        claim(&mut alice, tile).await;
    }
    alice.close().await.unwrap();
    veltrix_tests::poll(WAIT, || (live_b.metric("veltrix_cluster_records_unsent") == "0").then_some(()))
        .expect("shard B puts her records as she leaves");

    let live_a = start_shard(&server_a);
    live_a.wait_for_log(0, "were written by another server after this one's last write");
    let mut alice = join_when_let_in(&live_a, "alice").await;
    assert_eq!(
        inventory_on_joining(&mut alice).await,
        [("Coin".to_string(), 15)],
        "shard B's records, not A's older ones"
    );
    let (_, _) = (live_a.stop(), live_b.stop());
}

/// A shard whose commit fails right after the ledger decided a claim for its player (its store
/// failing from that commit on), then killed: the ledger holds the claim, the shard never saved
/// it and never told the player. The shard the player joins next makes it (the loot, told
/// without a request; the vault refused as hers); the first shard, back, does not make it again
/// when she returns there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_its_shard_did_not_save_is_made_once_on_the_shard_its_player_joins_next() {
    let Some(nats) = NatsServer::start() else { return };
    let faults = veltrix_host::store::FAULTS_VAR;
    let mut server_a =
        shard_server(&nats, &TILES, 1, "FirstFinder").with_env(faults, "table=Veltrix:TreasureHunt/events");
    let live_a = start_shard(&server_a);
    let (_server_b, live_b) = shard(&nats);

    let mut alice = join(&live_a, "alice").await;
    dig(&mut alice, TILES[0]).await;
    live_a.wait_for_log(0, "STORE COMMIT FAILED");
    live_a.kill();

    let mut alice = join_when_let_in(&live_b, "alice").await;
    assert_eq!(granted_unasked(&mut alice, "Race_0").await, [("Coin".to_string(), 5)], "her claim, made on B");
    live_b.wait_for_log(0, "did not save it: made here");
    let request = dig(&mut alice, TILES[0]).await;
    let again = answer(&mut alice, request).await.0;
    assert!(again.as_ref().is_err_and(|why| why.starts_with("already claimed")), "{again:?}");

    server_a.remove_env(faults);
    let live_a = start_shard(&server_a);
    alice.close().await.unwrap();
    veltrix_tests::poll(WAIT, || (live_b.metric("veltrix_cluster_records_unsent") == "0").then_some(()))
        .expect("shard B puts her records as she leaves");
    let mut alice = join_when_let_in(&live_a, "alice").await;
    assert_eq!(inventory_on_joining(&mut alice).await, [("Coin".to_string(), 5)], "made once");
    let request = dig(&mut alice, TILES[1]).await;
    assert_eq!(answer(&mut alice, request).await.0.expect("another vault is hers").0, "LootGranted");
    let (_, log_a) = live_a.stop();
    assert!(!log_a.contains("made here"), "shard A made it again:\n{log_a}");
    let _ = live_b.stop();
}

/// A proximity clue released to a player on one shard is the player's on the next shard it
/// joins: told to it as it joins there, and answered when it asks for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_players_proximity_clue_follows_it_to_another_shard() {
    let Some(nats) = NatsServer::start() else { return };
    let hunt_file = json!({"Seed": 7, "Vaults": [{"Id": "Far_Away", "At": {"X": 500, "Y": 500}, "LootTable": "Coins"}],
                      "Clues": [{"Id": "Spot", "Vault": "Far_Away", "Kind": "Reveal",
                                 "Trigger": {"Enter": {"X": 258.0, "Y": 256.5, "Radius": 0.5}}}]});
    let [shard_a, shard_b] = [0, 1].map(|_| {
        let server = shard_server(&nats, &TILES, 1, "FirstFinder");
        server.write(&format!("{MOD_DIR}/assets/Server/TreasureHunt/Hunts/Test.json"), &hunt_file.to_string());
        let live = start_shard(&server);
        (server, live)
    });
    let is_spot = |m: &ServerMessage| hunt(m).is_some_and(|(kind, body)| kind == "Clue" && body["Clue"] == "Spot");

    // Into the circle and out again on shard A: she leaves where it is not released.
    let mut alice = join(&shard_a.1, "alice").await;
    alice.move_to(258.0, 256.5).await.unwrap();
    frames_through(&mut alice, "the clue as she comes near", is_spot).await;
    alice.move_to(256.5, 256.5).await.unwrap();
    let asked = alice.mod_request(NS, "AskClue", &json!({"Clue": "Spot"})).await.unwrap();
    assert_eq!(answer(&mut alice, asked).await.0.expect("hers on shard A").0, "Clue");
    alice.close().await.unwrap();

    let mut alice = join_when_let_in(&shard_b.1, "alice").await;
    frames_through(&mut alice, "the clue as she joins shard B", is_spot).await;
    let asked = alice.mod_request(NS, "AskClue", &json!({"Clue": "Spot"})).await.unwrap();
    let (told, _) = answer(&mut alice, asked).await;
    assert_eq!(told.expect("hers on shard B").1["Clue"], "Spot");
}

/// Moves go to the shards whose players are near: a shard follows the areas around its own
/// players. A player of another shard beyond them is online there but not in its world; it
/// comes in as it walks into them, and goes as it walks out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_hears_the_moves_of_other_shards_players_only_near_its_own() {
    let Some(nats) = NatsServer::start() else { return };
    // Interest cells 3 tiles wide, areas of 8 x 8 cells: 24 tiles, x 240 to 264, 264 to 288.
    // Alice at x 250.5 (cells 82 to 84 around her): shard A follows the first only.
    let [(_a, shard_a), (_b, shard_b)] = [250.5, 266.5].map(|spawn_x| {
        let server = shard_server(&nats, &TILES, 1, "FirstFinder");
        let config = json!({"World": {"Terrain": "Flat", "SpawnRadius": 0, "SpawnX": spawn_x,
                                      "InterestRadius": 2, "InterestHysteresis": 1},
                            "Cluster": {"Nats": nats.url(), "Bucket": "race"}});
        server.write("config.json", &config.to_string());
        let live = start_shard(&server);
        (server, live)
    });
    let metric = |live: &LiveServer, name: &str| live.metric(&format!("veltrix_cluster_remote_players{name}"));
    let _alice = join(&shard_a, "alice").await;
    let mut bob = join(&shard_b, "bob").await;
    veltrix_tests::poll(WAIT, || (metric(&shard_a, "") == "1").then_some(())).expect("shard A hears bob is online");
    assert_eq!(metric(&shard_a, "_near"), "0", "bob, at x 266.5, is beyond the area shard A follows");

    bob.move_to(262.5, 256.5).await.unwrap();
    veltrix_tests::poll(WAIT, || (metric(&shard_a, "_near") == "1").then_some(()))
        .expect("shard A places bob once he is in its area");
    bob.move_to(266.5, 256.5).await.unwrap();
    veltrix_tests::poll(WAIT, || (metric(&shard_a, "_near") == "0").then_some(()))
        .expect("shard A drops bob once he is beyond its area");
    assert_eq!(metric(&shard_a, ""), "1", "still online");
}

/// A name a server knew before it joined a cluster keeps the id that server gave it there, and
/// its records follow it all the same: to a shard where it has the id every shard gives a name,
/// and back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_records_of_a_name_known_before_the_cluster_follow_it() {
    let Some(nats) = NatsServer::start() else { return };
    // Shard A's root first served alone: alice got its first id there.
    let server_a = shard_server(&nats, &TILES, 1, "PerPlayer");
    let clustered = std::fs::read_to_string(server_a.root().join("config.json")).unwrap();
    server_a.write("config.json", &json!({"World": {"Terrain": "Flat", "SpawnRadius": 0}}).to_string());
    let alone = server_a.start(&[]);
    alone.wait_for_log(0, "hunt Test running with");
    let (alice, welcome) = Client::connect(&alone.addr, hello("alice")).await.unwrap();
    let legacy_id = welcome.player;
    alice.close().await.unwrap();
    let (status, log) = alone.stop();
    assert!(status.success(), "{log}");

    server_a.write("config.json", &clustered);
    let live_a = start_shard(&server_a);
    let server_b = shard_server(&nats, &TILES, 1, "PerPlayer");
    let live_b = start_shard(&server_b);
    let (mut alice, welcome) = Client::connect(&live_a.addr, hello("alice")).await.unwrap();
    assert_eq!(welcome.player, legacy_id, "shard A keeps the id it gave alice");
    claim(&mut alice, TILES[0]).await;
    alice.close().await.unwrap();

    let mut alice = join_when_let_in(&live_b, "alice").await;
    assert_ne!(alice.player(), legacy_id, "shard B gives the name the id every shard gives it");
    assert_eq!(inventory_on_joining(&mut alice).await, [("Coin".to_string(), 5)], "her coins from shard A");
    claim(&mut alice, TILES[1]).await;
    alice.close().await.unwrap();

    let mut alice = join_when_let_in(&live_a, "alice").await;
    assert_eq!(alice.player(), legacy_id);
    assert_eq!(inventory_on_joining(&mut alice).await, [("Coin".to_string(), 10)], "and back, with shard B's");
    let (_, _) = (live_a.stop(), live_b.stop());
}
