//! Mods and clients exchanging typed messages over real sockets, through the sdk: the probe
//! fixture mod registers its kinds under `Fixtures:Probe`, reads them in `Tick` and answers one
//! player, the players near a point, or everyone. See tests/fixtures/probe-mod/src/lib.rs for
//! what it answers to what.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;
use veltrix_client::{Client, decode_mod_body, hello};
use veltrix_protocol::{
    ClientMessage, ErrorCode, ErrorMessage, ModInfo, ModMessage, PlayerId, ServerFrame, ServerMessage,
};
use veltrix_tests::{LiveServer, TestServer, artifacts};

const WAIT: Duration = Duration::from_secs(5);
const NS: &str = "Fixtures:Probe";
const MANIFEST: &str = r#"{"Group": "Fixtures", "Name": "Probe", "Version": "1.0.0", "Main": "libprobe_mod.so"}"#;
/// Where players appear (the default `World.SpawnX` and `SpawnY`).
const SPAWN: f32 = 256.5;

// The probe's messages are written and read here as JSON values, which encode as MessagePack
// maps keyed by field name: the shape a client of any language sends and sees.

fn echo(text: &str) -> Value {
    json!({"text": text})
}

fn shout(text: &str, radius: f32) -> Value {
    json!({"text": text, "radius": radius})
}

fn announce(text: &str) -> Value {
    json!({"text": text})
}

fn heard(from: PlayerId, text: &str) -> Value {
    json!({"from": from, "text": text})
}

/// A probe message's body, as a JSON value.
fn body(message: &ModMessage) -> Value {
    decode_mod_body(message).unwrap_or_else(|e| panic!("{} {}: body does not decode: {e}", message.ns, message.kind))
}

/// A server with the treasure-hunt mod and the probe, each in its folder.
fn start_with_probe(probe_config: Option<&str>, args: &[&str]) -> (TestServer, LiveServer) {
    let server = TestServer::new().with_treasure_hunt("Veltrix_TreasureHunt");
    server.add_mod("probe", MANIFEST, Some((&artifacts().probe_lib, "libprobe_mod.so")));
    if let Some(config) = probe_config {
        server.write("mods/Fixtures_Probe/config.json", config);
    }
    let live = server.start(args);
    (server, live)
}

async fn join(live: &LiveServer, name: &str) -> Client {
    Client::connect(&live.addr, hello(name)).await.unwrap_or_else(|e| panic!("{name} joins: {e:?}")).0
}

fn is_probe(kind: &'static str) -> impl Fn(&ServerMessage) -> bool {
    move |m| matches!(m, ServerMessage::Mod(m) if m.ns == NS && m.kind == kind)
}

/// The next probe message of `kind`.
async fn next_probe(client: &mut Client, kind: &'static str) -> ModMessage {
    match client.recv_until(WAIT, is_probe(kind)).await {
        Ok(ServerMessage::Mod(m)) => m,
        Ok(_) => unreachable!(),
        Err(e) => panic!("player {} got no {NS} {kind}: {e:?}", client.player()),
    }
}

/// The next Error answering `request`.
async fn error_for(client: &mut Client, request: u32) -> ErrorMessage {
    let found = client.recv_until(WAIT, |m| matches!(m, ServerMessage::Error(e) if e.request == Some(request))).await;
    match found {
        Ok(ServerMessage::Error(e)) => e,
        Ok(_) => unreachable!(),
        Err(e) => panic!("no Error for request {request}: {e:?}"),
    }
}

/// Reads whole frames until one holds a message matching `pred`, and returns that frame.
async fn frame_with(client: &mut Client, mut pred: impl FnMut(&ServerMessage) -> bool) -> ServerFrame {
    let deadline = Instant::now() + WAIT;
    loop {
        let frame = tokio::time::timeout_at(deadline, client.next_frame())
            .await
            .expect("the awaited frame came in time")
            .expect("a well-formed frame")
            .expect("the connection stays open");
        if frame.messages.iter().any(&mut pred) {
            return frame;
        }
    }
}

/// Every message read until the end of the frame holding one that matches `pred`.
async fn messages_through(client: &mut Client, mut pred: impl FnMut(&ServerMessage) -> bool) -> Vec<ServerMessage> {
    let deadline = Instant::now() + WAIT;
    let mut messages = Vec::new();
    loop {
        let frame = tokio::time::timeout_at(deadline, client.next_frame())
            .await
            .unwrap_or_else(|_| panic!("nothing matched within {WAIT:?}; read {messages:?}"))
            .expect("a well-formed frame")
            .expect("the connection stays open");
        let found = frame.messages.iter().any(&mut pred);
        messages.extend(frame.messages);
        if found {
            return messages;
        }
    }
}

/// Walks `client` along y = SPAWN from x = `from` to x = `to`, at most 4 tiles every 600 ms
/// (MaxSpeed is 8 tiles a second), so that no step is refused.
async fn walk(client: &mut Client, from: f32, to: f32) {
    let mut x = from;
    while x != to {
        x = if to > x { (x + 4.0).min(to) } else { (x - 4.0).max(to) };
        client.move_to(x, SPAWN).await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
}

fn corrections(messages: &[ServerMessage]) -> Vec<&ServerMessage> {
    messages.iter().filter(|m| matches!(m, ServerMessage::PositionCorrected(_))).collect()
}

/// Waits until `observer` sees `player` arrive at x (on y = SPAWN): the server applied the walk.
async fn seen_at(observer: &mut Client, player: PlayerId, x: f32) {
    let arrived = observer
        .recv_until(WAIT, |m| matches!(m, ServerMessage::PlayerMoved(p) if p.player == player && p.x == x))
        .await;
    if let Err(e) = arrived {
        panic!("player {player} was not seen at x = {x}: {e:?}");
    }
}

/// Waits until `client` sees each of `others` appear. The host places a player in its interest
/// grid, which `Audience::Near` searches, at the end of the tick it joined (or moved) in: once
/// the last to join has seen the others, everyone is in the grid.
async fn sees(client: &mut Client, others: &[PlayerId]) {
    for &other in others {
        let appeared =
            client.recv_until(WAIT, |m| matches!(m, ServerMessage::PlayerAppeared(p) if p.player == other)).await;
        if let Err(e) = appeared {
            panic!("player {} did not see player {other} appear: {e:?}", client.player());
        }
    }
}

/// A mod message carrying `body`, encoded as is: for bodies a JSON value cannot hold.
fn raw_mod(kind: &str, request: Option<u32>, body: Vec<u8>) -> ClientMessage {
    ClientMessage::Mod(ModMessage { ns: NS.into(), kind: kind.into(), request, body })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn welcome_lists_the_probe_and_its_message_kinds() {
    let (_s, live) = start_with_probe(None, &[]);
    let (_ana, welcome) = Client::connect(&live.addr, hello("ana")).await.unwrap();
    let mut ids: Vec<&str> = welcome.mods.iter().map(|m| m.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["Fixtures:Probe", "Veltrix:TreasureHunt"], "{:?}", welcome.mods);
    let probe = welcome.mods.iter().find(|m| m.id == NS).unwrap();
    assert_eq!(
        probe,
        &ModInfo {
            id: NS.into(),
            version: "1.0.0".into(),
            client_messages: vec!["Announce".into(), "Echo".into(), "Fail".into(), "Shout".into()],
            server_messages: vec!["Echoed".into(), "Heard".into()],
        }
    );
    // Each mod's kinds are listed under its own id.
    let hunt = welcome.mods.iter().find(|m| m.id == "Veltrix:TreasureHunt").unwrap();
    assert!(hunt.client_messages.contains(&"Dig".to_string()), "{hunt:?}");
    assert!(!hunt.client_messages.contains(&"Echo".to_string()), "{hunt:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_is_answered_to_the_sender_in_the_tick_that_read_it() {
    let (_s, live) = start_with_probe(None, &[]);
    let mut ana = join(&live, "ana").await;
    let mut bob = join(&live, "bob").await;
    let request = ana.mod_request(NS, "Echo", &echo("hello, probe")).await.unwrap();
    let frame = frame_with(&mut ana, is_probe("Echoed")).await;
    let Some(ServerMessage::Mod(reply)) = frame.messages.iter().find(|m| is_probe("Echoed")(m)) else { unreachable!() };
    assert_eq!((reply.ns.as_str(), reply.kind.as_str(), reply.request), (NS, "Echoed", Some(request)));
    assert_eq!(body(reply), json!({"text": "hello, probe", "tick": frame.tick}), "read, answered and sent in one tick");

    // A second one gets its own request id, and is answered in a later tick.
    let again = ana.mod_request(NS, "Echo", &echo("again")).await.unwrap();
    assert_ne!(again, request);
    let reply = next_probe(&mut ana, "Echoed").await;
    assert_eq!(reply.request, Some(again));
    let later = body(&reply);
    assert_eq!(later["text"], "again");
    assert!(later["tick"].as_u64().unwrap() > frame.tick, "{later} after tick {}", frame.tick);

    // A reply is for its sender only: bob, beside ana, gets none of it.
    let frames = bob.collect_for(Duration::from_millis(300)).await.unwrap();
    let mods: Vec<_> =
        frames.iter().flat_map(|f| &f.messages).filter(|m| matches!(m, ServerMessage::Mod(m) if m.ns == NS)).collect();
    assert!(mods.is_empty(), "bob got ana's replies: {mods:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shout_reaches_the_players_within_its_radius_only() {
    let (_s, live) = start_with_probe(None, &[]);
    let mut ana = join(&live, "ana").await;
    let mut bob = join(&live, "bob").await;
    let mut carol = join(&live, "carol").await;
    let (ana_id, bob_id, carol_id) = (ana.player(), bob.player(), carol.player());
    // Bob 6 tiles east of ana, carol 20: both still in ana's view and in her interest grid
    // cell, so only the distance check leaves carol out of a 10-tile shout.
    tokio::join!(walk(&mut bob, SPAWN, SPAWN + 6.0), walk(&mut carol, SPAWN, SPAWN + 20.0));
    seen_at(&mut ana, bob_id, SPAWN + 6.0).await;
    seen_at(&mut ana, carol_id, SPAWN + 20.0).await;

    ana.send_mod(NS, "Shout", None, &shout("over here", 10.0)).await.unwrap();
    // Then an announcement, which every player hears after the shout if it heard the shout:
    // the probe handles shouts before announcements, and one player's frames come in order.
    ana.send_mod(NS, "Announce", None, &announce("everyone")).await.unwrap();

    for (name, client) in [("ana", &mut ana), ("bob", &mut bob)] {
        let first = next_probe(client, "Heard").await;
        assert_eq!((first.request, body(&first)), (None, heard(ana_id, "over here")), "{name} hears the shout");
        let second = next_probe(client, "Heard").await;
        assert_eq!(body(&second), heard(ana_id, "everyone"), "{name}");
    }
    let first = next_probe(&mut carol, "Heard").await;
    assert_eq!(body(&first), heard(ana_id, "everyone"), "carol, 20 tiles away, hears the announcement only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announcement_reaches_every_player_near_and_far() {
    let (_s, live) = start_with_probe(None, &[]);
    let mut ana = join(&live, "ana").await;
    let mut bob = join(&live, "bob").await;
    let mut far = join(&live, "far").await;
    let far_id = far.player();
    // Far walks 60 tiles away, out of everyone's view (interest radius 32 + 4).
    walk(&mut far, SPAWN, SPAWN + 60.0).await;
    let gone = ana.recv_until(WAIT, |m| matches!(m, ServerMessage::PlayerGone(g) if g.player == far_id)).await;
    assert!(gone.is_ok(), "far left ana's view: {gone:?}");

    let request = bob.mod_request(NS, "Announce", &announce("the hunt begins")).await.unwrap();
    let expected = heard(bob.player(), "the hunt begins");
    for (name, client) in [("ana", &mut ana), ("bob", &mut bob), ("far", &mut far)] {
        let message = next_probe(client, "Heard").await;
        // One message for all: it does not carry the sender's request id.
        assert_eq!(message.request, None, "{name}: the announcement is not a reply to request {request}");
        assert_eq!(body(&message), expected, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipients_of_one_message_get_the_same_bytes() {
    let (_s, live) = start_with_probe(None, &[]);
    let mut clients = [join(&live, "ana").await, join(&live, "bob").await, join(&live, "carol").await];
    let (ana_id, bob_id) = (clients[0].player(), clients[1].player());
    sees(&mut clients[2], &[ana_id, bob_id]).await;
    clients[2].send_mod(NS, "Announce", None, &announce("same for all")).await.unwrap();
    clients[0].send_mod(NS, "Shout", None, &shout("near ones", 5.0)).await.unwrap();
    // Each player's two Heard messages, whatever their order (they may come in one tick).
    let mut received: Vec<Vec<ModMessage>> = Vec::new();
    for client in clients.iter_mut() {
        let mut two = vec![next_probe(client, "Heard").await, next_probe(client, "Heard").await];
        two.sort_by_key(|m| body(m)["text"].as_str().map(str::to_string));
        received.push(two);
    }
    assert_eq!(body(&received[0][0]), heard(ana_id, "near ones"));
    assert_eq!(body(&received[0][1]), heard(clients[2].player(), "same for all"));
    // Equal whole messages: namespace, kind, request and the body's bytes.
    assert!(received.windows(2).all(|w| w[0] == w[1]), "{received:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_an_error_naming_the_request() {
    let (_s, live) = start_with_probe(None, &[]);
    let mut ana = join(&live, "ana").await;
    let request = ana.mod_request(NS, "Fail", &json!({})).await.unwrap();
    let error = error_for(&mut ana, request).await;
    assert_eq!(
        error,
        ErrorMessage { code: ErrorCode::Refused, message: "probe refuses".into(), request: Some(request) }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_of_the_wrong_shape_and_unknown_kinds_are_refused_alone() {
    let (_s, live) = start_with_probe(None, &[]);
    let mut ana = join(&live, "ana").await;

    // Echo wants {text: string}, Shout {text, radius}.
    for (kind, wrong) in [("Echo", json!(42)), ("Echo", json!({"text": 42})), ("Shout", announce("no radius"))] {
        let request = ana.mod_request(NS, kind, &wrong).await.unwrap();
        let error = error_for(&mut ana, request).await;
        assert_eq!(error.code, ErrorCode::Malformed, "{kind} {wrong}: {error:?}");
        assert!(error.message.starts_with(&format!("{NS} {kind}: ")), "{kind} {wrong}: {error:?}");
    }

    // A kind nobody registered, and one the probe sends but clients may not.
    for kind in ["Whisper", "Echoed"] {
        let request = ana.mod_request(NS, kind, &echo("hi")).await.unwrap();
        let error = error_for(&mut ana, request).await;
        let expected = format!("no mod message {NS} {kind} on this server (see Welcome.mods)");
        assert_eq!((error.code, error.message), (ErrorCode::UnknownMessage, expected));
    }
    // The right kind in another mod's namespace.
    let request = ana.mod_request("Veltrix:TreasureHunt", "Echo", &echo("hi")).await.unwrap();
    assert_eq!(error_for(&mut ana, request).await.code, ErrorCode::UnknownMessage);

    // A body with bytes after its value, beside a good message in one frame, more often than
    // MaxErrors (10): each is refused alone, the good ones are answered, the connection stays.
    let mut trailing = Vec::new();
    veltrix_protocol::encode_value(&echo("hi"), &mut trailing);
    trailing.push(0xc0);
    for _ in 0..12 {
        let (bad, good) = (ana.next_request(), ana.next_request());
        ana.send(&[
            raw_mod("Echo", Some(bad), trailing.clone()),
            raw_mod("Echo", Some(good), trailing[..trailing.len() - 1].to_vec()),
        ])
        .await
        .unwrap();
        let error = error_for(&mut ana, bad).await;
        let expected = format!("{NS} Echo: 1 bytes after the end of the value");
        assert_eq!((error.code, error.message), (ErrorCode::Malformed, expected));
        assert_eq!(next_probe(&mut ana, "Echoed").await.request, Some(good));
    }

    // Still served; and keys the kind does not have are ignored, as everywhere in the protocol.
    let request = ana.mod_request(NS, "Echo", &json!({"text": "still here", "volume": 11})).await.unwrap();
    let reply = next_probe(&mut ana, "Echoed").await;
    assert_eq!((reply.request, &body(&reply)["text"]), (Some(request), &json!("still here")));
}

/// One client frame with a request of each kind is read in one tick and answered in that
/// tick's one frame, in the same order on either executor.
async fn answers_of_one_tick_come_in_one_frame(executor: &str) {
    let (_s, live) = start_with_probe(None, &["--executor", executor]);
    let mut ana = join(&live, "ana").await;
    // A round trip first: then ana is in the interest grid that shouts search.
    let request = ana.mod_request(NS, "Echo", &echo("ready")).await.unwrap();
    assert_eq!(next_probe(&mut ana, "Echoed").await.request, Some(request));

    let requests: Vec<u32> = (0..4).map(|_| ana.next_request()).collect();
    let encode = |value: Value| {
        let mut body = Vec::new();
        veltrix_protocol::encode_value(&value, &mut body);
        body
    };
    ana.send(&[
        raw_mod("Echo", Some(requests[0]), encode(echo("one frame"))),
        raw_mod("Shout", Some(requests[1]), encode(shout("near", 5.0))),
        raw_mod("Announce", Some(requests[2]), encode(announce("all"))),
        raw_mod("Fail", Some(requests[3]), encode(json!({}))),
    ])
    .await
    .unwrap();

    let frame = frame_with(&mut ana, is_probe("Echoed")).await;
    let answers: Vec<(String, Option<u32>, Value)> = frame
        .messages
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Mod(m) => Some((m.kind.clone(), m.request, body(m))),
            ServerMessage::Error(e) => Some((format!("{:?}", e.code), e.request, json!(e.message))),
            _ => None,
        })
        .collect();
    let me = ana.player();
    let expected = [
        ("Echoed".to_string(), Some(requests[0]), json!({"text": "one frame", "tick": frame.tick})),
        ("Heard".to_string(), None, heard(me, "near")),
        ("Heard".to_string(), None, heard(me, "all")),
        ("Refused".to_string(), Some(requests[3]), json!("probe refuses")),
    ];
    assert_eq!(answers, expected, "{executor}: the frame of tick {}", frame.tick);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_of_one_tick_come_in_one_frame_multi_threaded() {
    answers_of_one_tick_come_in_one_frame("multi-threaded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_of_one_tick_come_in_one_frame_single_threaded() {
    answers_of_one_tick_come_in_one_frame("single-threaded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shouter_hears_its_shout_in_the_tick_it_changed_cells() {
    let (_s, live) = start_with_probe(None, &[]);
    let mut ana = join(&live, "ana").await;
    // Interest grid cells are 36 tiles wide (radius 32 + hysteresis 4): spawn x = 256.5 is in
    // the cell [252, 288). Ana walks to its west edge, then steps over it into [216, 252) and
    // shouts in the same frame, so the move and the shout are read in one tick. The probe
    // shouts from her new position; she is 0 tiles from it.
    walk(&mut ana, SPAWN, SPAWN - 4.0).await;
    let request = ana.mod_request(NS, "Echo", &echo("walked")).await.unwrap();
    let received =
        messages_through(&mut ana, |m| matches!(m, ServerMessage::Mod(e) if e.request == Some(request))).await;
    assert!(corrections(&received).is_empty(), "the walk was refused: {received:?}");
    let text = "from the new cell";
    let mut shout_body = Vec::new();
    veltrix_protocol::encode_value(&shout(text, 1.0), &mut shout_body);
    ana.send(&[
        // Any seq: a refusal would name it.
        ClientMessage::Move(veltrix_protocol::Move { seq: 100, x: SPAWN - 6.0, y: SPAWN }),
        raw_mod("Shout", None, shout_body),
    ])
    .await
    .unwrap();
    // An Echo after it as a fence: it is read in the shout's tick or a later one, so what the
    // shout's tick sent has come by the end of the fence's frame.
    let fence = ana.mod_request(NS, "Echo", &echo("fence")).await.unwrap();
    let received = messages_through(
        &mut ana,
        |m| matches!(m, ServerMessage::Mod(e) if e.ns == NS && e.kind == "Echoed" && e.request == Some(fence)),
    )
    .await;
    let heard_texts: Vec<Value> = received
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Mod(m) if m.ns == NS && m.kind == "Heard" => Some(body(m)["text"].clone()),
            _ => None,
        })
        .collect();
    assert!(corrections(&received).is_empty(), "the step was refused: {received:?}");
    // The same shout a tick later, from where she stands, is heard.
    ana.send_mod(NS, "Shout", None, &shout("a tick later", 1.0)).await.unwrap();
    let later = next_probe(&mut ana, "Heard").await;
    assert_eq!(body(&later), heard(ana.player(), "a tick later"));
    assert_eq!(heard_texts, [text], "ana, 0 tiles from her own 1-tile shout, did not hear it in the tick she moved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shout_without_bounds_does_not_stall_the_server() {
    let (_s, live) = start_with_probe(None, &[]);
    let mut ana = join(&live, "ana").await;
    let mut bob = join(&live, "bob").await;
    sees(&mut bob, &[ana.player()]).await;
    // {"text": "anyone?", "radius": +infinity as a float 32}, which JSON cannot hold. Every
    // player is within an infinite radius.
    let mut infinite = vec![0x82, 0xa4];
    infinite.extend(b"text");
    infinite.push(0xa7);
    infinite.extend(b"anyone?");
    infinite.push(0xa6);
    infinite.extend(b"radius");
    infinite.push(0xca);
    infinite.extend(f32::INFINITY.to_be_bytes());
    ana.send(&[raw_mod("Shout", None, infinite)]).await.unwrap();
    let expected = heard(ana.player(), "anyone?");
    for (name, client) in [("ana", &mut ana), ("bob", &mut bob)] {
        assert_eq!(body(&next_probe(client, "Heard").await), expected, "{name}");
    }
    // The shout was handled: the ticks after it keep their pace (a second of them is the
    // measure, not a wait for anything).
    let before = live.current_tick();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = live.current_tick();
    assert!(after >= before + 15, "the tick thread is stuck after the shout: tick {before}, a second later {after}");
    let request = bob.mod_request(NS, "Echo", &echo("still ticking")).await.unwrap();
    assert_eq!(next_probe(&mut bob, "Echoed").await.request, Some(request));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mod_that_failed_to_start_has_no_messages() {
    let (_s, live) = start_with_probe(Some(r#"{"Failure": "PanicInStart"}"#), &[]);
    let (mut ana, welcome) = Client::connect(&live.addr, hello("ana")).await.unwrap();
    assert_eq!(welcome.mods.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["Veltrix:TreasureHunt"]);
    let request = ana.mod_request(NS, "Echo", &echo("anyone?")).await.unwrap();
    let error = error_for(&mut ana, request).await;
    assert_eq!(error.code, ErrorCode::UnknownMessage, "{error:?}");
}
