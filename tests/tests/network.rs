//! The player endpoint over real sockets on loopback: handshake and its refusals, movement and
//! area of interest, rate limits, bad input, slow clients, the admin listener and the console.
//!
//! Above 600 lines on purpose: one short test per behaviour of the endpoint, sharing the server
//! and client helpers at the top.

use std::time::{Duration, Instant};

use veltrix_client::{Client, ClientError, hello, hello_with_token};
use veltrix_protocol::{
    ClientMessage, CorrectionReason, ErrorCode, Hello, Move, PROTOCOL_VERSION, ServerMessage, encode_client_frame,
};
use veltrix_tests::{LiveServer, TestServer};

const WAIT: Duration = Duration::from_secs(5);

fn start(args: &[&str]) -> (TestServer, LiveServer) {
    let server = TestServer::new().with_treasure_hunt("Veltrix_TreasureHunt");
    let live = server.start(args);
    (server, live)
}

fn refused(result: Result<(Client, veltrix_protocol::Welcome), ClientError>) -> (ErrorCode, String) {
    match result {
        Err(ClientError::Refused(e)) => (e.code, e.message),
        Err(other) => panic!("expected a refusal, got {other:?}"),
        Ok(_) => panic!("expected a refusal, got a Welcome"),
    }
}

/// The next Error the server sends, with the close code that follows it.
async fn error_then_close(client: &mut Client) -> (ErrorCode, String, Option<u16>) {
    let error = client.recv_until(WAIT, |m| matches!(m, ServerMessage::Error(_))).await.expect("an Error");
    let ServerMessage::Error(e) = error else { unreachable!() };
    let deadline = Instant::now() + WAIT;
    while !client.is_closed() && Instant::now() < deadline {
        if let Ok(None) | Err(_) = tokio::time::timeout(WAIT, client.next_frame()).await.unwrap_or(Ok(None)) {
            break;
        }
    }
    (e.code, e.message, client.close_reason().map(|c| c.code))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_welcomes_with_the_server_and_its_mods() {
    let (_s, live) = start(&["--server-name", "Hunt Night"]);
    let (client, welcome) = Client::connect(&live.addr, hello("ana")).await.unwrap();
    assert_eq!(welcome.server_name, "Hunt Night");
    assert_eq!(welcome.tick_rate, 30);
    assert_eq!(welcome.protocol, PROTOCOL_VERSION);
    assert_eq!((welcome.x, welcome.y), (256.5, 256.5));
    assert!(welcome.player > 0);
    assert_eq!(welcome.mods.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["Veltrix:TreasureHunt"]);
    assert_eq!(client.player(), welcome.player);
}

/// A client may connect from a local address of its choosing (a load generator spreads its
/// bots over several): the server sees that address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_connects_from_the_local_address_it_names() {
    let (_s, live) = start(&[]);
    let from = std::net::Ipv4Addr::new(127, 0, 1, 7).into();
    Client::connect_from(&live.addr, hello("ana"), WAIT, from).await.unwrap();
    live.wait_for_log(0, "player ana (id 1) joined from 127.0.1.7:");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_version_mismatch_is_refused() {
    let (_s, live) = start(&[]);
    let hello = Hello { protocol: PROTOCOL_VERSION + 1, name: "ana".into(), token: None };
    let (code, message) = refused(Client::connect(&live.addr, hello).await);
    assert_eq!(code, ErrorCode::ProtocolVersion);
    assert_eq!(
        message,
        format!("this server speaks protocol version {PROTOCOL_VERSION}, the client {}", PROTOCOL_VERSION + 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_bad_expired_and_good() {
    let (server, mut live) = start(&["--auth", "token"]);
    let (code, _) = refused(Client::connect(&live.addr, hello("ana")).await);
    assert_eq!(code, ErrorCode::BadCredentials, "no token");
    let (code, _) = refused(Client::connect(&live.addr, hello_with_token("ana", "ana.9999999999.Zm9yZ2Vk")).await);
    assert_eq!(code, ErrorCode::BadCredentials, "forged token");

    // A token the server really signed, but expired: made with its own key.
    let key = veltrix_host::auth::TokenKey::load_or_create(&server.root().join("auth.secret")).unwrap();
    let expired = key.issue("ana", veltrix_host::auth::unix_now() - 1);
    let (code, _) = refused(Client::connect(&live.addr, hello_with_token("ana", expired)).await);
    assert_eq!(code, ErrorCode::TokenExpired);

    // The console's token for bob is not ana's.
    let token = live.console("token bob").trim().to_string();
    let (code, _) = refused(Client::connect(&live.addr, hello_with_token("ana", token.clone())).await);
    assert_eq!(code, ErrorCode::BadCredentials, "someone else's token");
    let (_, welcome) = Client::connect(&live.addr, hello_with_token("bob", token)).await.unwrap();
    assert!(welcome.player > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_full() {
    let (_s, live) = start(&["--max-players", "1"]);
    let (_first, _) = Client::connect(&live.addr, hello("ana")).await.unwrap();
    let (code, message) = refused(Client::connect(&live.addr, hello("bob")).await);
    assert_eq!(code, ErrorCode::ServerFull);
    assert_eq!(message, "the server is full (1 players)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_login_offline_is_name_taken() {
    let (_s, live) = start(&[]);
    let (_first, _) = Client::connect(&live.addr, hello("ana")).await.unwrap();
    let (code, _) = refused(Client::connect(&live.addr, hello("ANA")).await);
    assert_eq!(code, ErrorCode::NameTaken);
}

/// A client reconnecting at once, in the tick its last connection ended, is let in at the next
/// tick, not refused (`NameTaken`) while its old session is still being removed. One tick a
/// second, so the close and the new `Hello` fall in the same tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_reconnecting_in_the_tick_its_connection_ended_is_let_in_at_the_next() {
    let (_s, live) = start(&["--tick-rate", "1"]);
    let (first, welcome) = Client::connect(&live.addr, hello("ana")).await.unwrap();
    first.close().await.unwrap();
    let (mut again, rejoined) = Client::connect(&live.addr, hello("ana")).await.expect("let in at the next tick");
    assert_eq!(rejoined.player, welcome.player, "the same player");
    let request = again.command("help").await.unwrap();
    let answered =
        again.recv_until(WAIT, |m| matches!(m, ServerMessage::CommandResult(r) if r.request == request)).await;
    answered.expect("it plays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_login_with_a_token_replaces_the_older_session() {
    let (_s, mut live) = start(&["--auth", "token"]);
    let token = live.console("token ana").trim().to_string();
    let (mut first, first_welcome) = Client::connect(&live.addr, hello_with_token("ana", token.clone())).await.unwrap();
    let (_second, second_welcome) = Client::connect(&live.addr, hello_with_token("ana", token)).await.unwrap();
    assert_eq!(first_welcome.player, second_welcome.player, "the same player");
    let (code, message, close) = error_then_close(&mut first).await;
    assert_eq!((code, message.as_str(), close), (ErrorCode::Replaced, "you logged in from somewhere else", Some(1000)));
}

/// While the store cannot be written a joining player's Welcome waits (its id is saved
/// first), and so does what its join tick told it, not lost: it is told of the player standing
/// beside it. Commits fail at random, one in two, so some of the eight joins wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_welcome_the_store_delays_is_followed_by_what_the_join_told() {
    let server = TestServer::new().with_treasure_hunt("Veltrix_TreasureHunt").with_env("VELTRIX_STORE_FAULTS", "0.5,7");
    let live = server.start(&[]);
    let (_ana, welcome) = Client::connect(&live.addr, hello("ana")).await.unwrap();
    for i in 0..8 {
        let name = format!("late{i}");
        let (mut late, _) = Client::connect(&live.addr, hello(&name)).await.unwrap();
        let told =
            late.recv_until(WAIT, |m| matches!(m, ServerMessage::PlayerAppeared(p) if p.player == welcome.player));
        assert!(told.await.is_ok(), "{name} was never told of ana beside it");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_players_see_each_other_move_and_far_players_hear_nothing() {
    let (_s, live) = start(&[]);
    let (mut ana, _) = Client::connect(&live.addr, hello("ana")).await.unwrap();
    let (mut bob, _) = Client::connect(&live.addr, hello("bob")).await.unwrap();
    let bob_id = bob.player();
    let ana_id = ana.player();
    // Both at spawn: each appears to the other.
    let seen =
        ana.recv_until(WAIT, |m| matches!(m, ServerMessage::PlayerAppeared(p) if p.player == bob_id)).await.unwrap();
    let ServerMessage::PlayerAppeared(p) = seen else { unreachable!() };
    assert_eq!((p.name.as_str(), p.x, p.y), ("bob", 256.5, 256.5));
    bob.recv_until(WAIT, |m| matches!(m, ServerMessage::PlayerAppeared(p) if p.player == ana_id)).await.unwrap();

    // Carol walks away, a few tiles a step, until out of range (32 + 4 hysteresis).
    let (mut carol, _) = Client::connect(&live.addr, hello("carol")).await.unwrap();
    let carol_id = carol.player();
    let mut x = 256.5;
    while x < 256.5 + 60.0 {
        x += 4.0;
        carol.move_to(x, 256.5).await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    ana.recv_until(WAIT, |m| matches!(m, ServerMessage::PlayerGone(g) if g.player == carol_id)).await.unwrap();
    // Drain what carol got on the way out.
    let _ = carol.collect_for(Duration::from_millis(300)).await.unwrap();

    // Bob moves near ana: ana hears it; carol, far away, hears nothing at all.
    let seq = bob.move_to(258.0, 257.0).await.unwrap();
    assert!(seq > 0);
    let moved =
        ana.recv_until(WAIT, |m| matches!(m, ServerMessage::PlayerMoved(p) if p.player == bob_id)).await.unwrap();
    assert_eq!(moved, ServerMessage::PlayerMoved(veltrix_protocol::PlayerMoved { player: bob_id, x: 258.0, y: 257.0 }));
    let frames = carol.collect_for(Duration::from_millis(500)).await.unwrap();
    assert!(frames.is_empty(), "a far player receives nothing: {frames:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_speed_hack_is_corrected() {
    let (_s, live) = start(&[]);
    let (mut ana, welcome) = Client::connect(&live.addr, hello("ana")).await.unwrap();
    let seq = ana.move_to(welcome.x + 100.0, welcome.y).await.unwrap();
    let correction = ana.recv_until(WAIT, |m| matches!(m, ServerMessage::PositionCorrected(_))).await.unwrap();
    assert_eq!(
        correction,
        ServerMessage::PositionCorrected(veltrix_protocol::PositionCorrected {
            seq,
            x: welcome.x,
            y: welcome.y,
            reason: CorrectionReason::Speed
        })
    );
    // Off the world: refused too.
    let seq = ana.move_to(-1.0, welcome.y).await.unwrap();
    let ServerMessage::PositionCorrected(c) =
        ana.recv_until(WAIT, |m| matches!(m, ServerMessage::PositionCorrected(_))).await.unwrap()
    else {
        unreachable!()
    };
    assert_eq!((c.seq, c.reason), (seq, CorrectionReason::Bounds));
}

async fn next_error(client: &mut Client) -> (ErrorCode, String) {
    match client.recv_until(WAIT, |m| matches!(m, ServerMessage::Error(_))).await.unwrap() {
        ServerMessage::Error(e) => (e.code, e.message),
        _ => unreachable!(),
    }
}

/// Round trip of a request the server answers in the next tick (a refused move).
async fn round_trip(client: &mut Client) -> Duration {
    let sent = Instant::now();
    let seq = client.move_to(-5.0, -5.0).await.unwrap();
    client.recv_until(WAIT, |m| matches!(m, ServerMessage::PositionCorrected(c) if c.seq == seq)).await.unwrap();
    sent.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_client_is_rate_limited_and_others_are_unaffected() {
    let (_s, live) = start(&[]);
    let (mut calm, _) = Client::connect(&live.addr, hello("calm")).await.unwrap();
    let (mut flood, _) = Client::connect(&live.addr, hello("flood")).await.unwrap();
    let batch: Vec<ClientMessage> = (0..20).map(|i| ClientMessage::Move(Move { seq: i, x: 256.5, y: 256.5 })).collect();
    for _ in 0..50 {
        flood.send(&batch).await.unwrap();
    }
    let limited = flood
        .recv_until(WAIT, |m| matches!(m, ServerMessage::Error(e) if e.code == ErrorCode::RateLimited))
        .await
        .unwrap();
    let ServerMessage::Error(e) = limited else { unreachable!() };
    assert_eq!(e.message, "more than 60 messages per second: the excess is dropped");
    // Told once for the burst.
    let again = flood.collect_for(Duration::from_millis(300)).await.unwrap();
    assert!(!again.iter().flat_map(|f| &f.messages).any(|m| matches!(m, ServerMessage::Error(_))), "{again:?}");
    let rtt = round_trip(&mut calm).await;
    assert!(rtt < Duration::from_millis(250), "the calm client's round trip stays within a few ticks: {rtt:?}");
    let metrics = live.admin_get("/metrics").1;
    let dropped: f64 = metrics
        .lines()
        .find(|l| l.starts_with("veltrix_messages_dropped_total{reason=\"rate_limited\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .expect("a rate_limited series");
    assert!(dropped >= 900.0, "1000 sent in a burst, 60 allowed: dropped {dropped}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_the_documented_answers() {
    let (_s, live) = start(&[]);
    let (mut ana, _) = Client::connect(&live.addr, hello("ana")).await.unwrap();
    ana.send_raw(vec![0xc1]).await.unwrap();
    assert_eq!(next_error(&mut ana).await.0, ErrorCode::Malformed);
    ana.send_text("hello?").await.unwrap();
    assert_eq!(
        next_error(&mut ana).await,
        (ErrorCode::Malformed, "malformed frame: frames must be binary MessagePack, not text".into())
    );
    // An unknown message kind.
    let mut unknown = Vec::new();
    veltrix_protocol::encode_value(&vec![std::collections::BTreeMap::from([("Teleport", 1)])], &mut unknown);
    ana.send_raw(unknown).await.unwrap();
    assert_eq!(next_error(&mut ana).await.0, ErrorCode::UnknownMessage);
    // A field of the wrong type.
    let mut wrong = Vec::new();
    veltrix_protocol::encode_value(
        &vec![std::collections::BTreeMap::from([("Move", std::collections::BTreeMap::from([("seq", "one")]))])],
        &mut wrong,
    );
    ana.send_raw(wrong).await.unwrap();
    assert_eq!(next_error(&mut ana).await.0, ErrorCode::Malformed);
    // A mod message nobody registered.
    ana.send_mod("Veltrix:TreasureHunt", "Nope", Some(7), &()).await.unwrap();
    let ServerMessage::Error(e) = ana.recv_until(WAIT, |m| matches!(m, ServerMessage::Error(_))).await.unwrap() else {
        unreachable!()
    };
    assert_eq!((e.code, e.request), (ErrorCode::UnknownMessage, Some(7)));
    // A second Hello.
    ana.send(&[ClientMessage::Hello(hello("ana"))]).await.unwrap();
    assert_eq!(next_error(&mut ana).await.0, ErrorCode::HandshakeRequired);

    // Still served after all that.
    let (mut bob, _) = Client::connect(&live.addr, hello("bob")).await.unwrap();
    assert!(round_trip(&mut bob).await < Duration::from_millis(250));

    // Too large: answered, then closed with 1009.
    ana.send_raw(vec![0x90; 20_000]).await.unwrap();
    let (code, _, close) = error_then_close(&mut ana).await;
    assert_eq!((code, close), (ErrorCode::FrameTooLarge, Some(1009)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_errors_close_the_connection() {
    let (_s, live) = start(&[]);
    let (mut ana, _) = Client::connect(&live.addr, hello("ana")).await.unwrap();
    for _ in 0..10 {
        ana.send_raw(vec![0xc1]).await.unwrap();
    }
    let mut codes = Vec::new();
    while let Ok(m) = ana.recv_until(WAIT, |m| matches!(m, ServerMessage::Error(_))).await {
        let ServerMessage::Error(e) = m else { unreachable!() };
        codes.push(e.code);
        if e.code == ErrorCode::TooManyErrors {
            break;
        }
    }
    assert_eq!(codes.len(), 10, "{codes:?}");
    assert!(codes[..9].iter().all(|c| *c == ErrorCode::Malformed));
    assert_eq!(codes[9], ErrorCode::TooManyErrors);
}

/// A server with small socket send buffers, room for `max_queued_frames` frames per client and
/// for the movers that make traffic beside a slow reader.
fn slow_reader_server(max_queued_frames: u32) -> (TestServer, LiveServer) {
    let server = TestServer::new().with_treasure_hunt("Veltrix_TreasureHunt");
    // Moves told every tick: the most frames, so that a client that does not read falls behind
    // within the test's few seconds.
    server.write(
        "config.json",
        &format!(
            r#"{{"Network": {{"MaxQueuedFrames": {max_queued_frames}, "SendBufferBytes": 4096, "MaxConnectionsPerIp": 64}},
                "World": {{"StateUpdateRate": 1000}}}}"#
        ),
    );
    let live = server.start(&[]);
    (server, live)
}

/// A raw WebSocket client with a 4 KiB receive buffer that has sent its Hello as `name`: the
/// server's writes to it block soon after it stops reading.
async fn small_buffer_client(
    live: &LiveServer,
    name: &str,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    use futures_util::SinkExt;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(live.addr.parse().unwrap()).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{}/", live.addr), stream).await.unwrap();
    let hello_frame = encode_client_frame(&[ClientMessage::Hello(hello(name))]);
    ws.send(tokio_tungstenite::tungstenite::Message::Binary(hello_frame.into())).await.unwrap();
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_disconnected_and_memory_stays_bounded() {
    let (_server, live) = slow_reader_server(8);
    // The stuck client: never read.
    let _stuck = small_buffer_client(&live, "stuck").await;
    let rss_before = live.rss_kib();
    // Movers beside it make traffic for it every tick.
    let mut movers = Vec::new();
    for i in 0..20 {
        movers.push(Client::connect(&live.addr, hello(format!("mover{i}"))).await.unwrap().0);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut step = 0.0;
    loop {
        step = if step == 0.0 { 0.2 } else { 0.0 };
        for m in movers.iter_mut() {
            m.move_to(256.5 + step, 256.5).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
        if live.log().contains("player stuck left (slow_consumer)") {
            break;
        }
        assert!(Instant::now() < deadline, "the stuck client was not disconnected:\n{}", live.log());
    }
    let metrics = live.admin_get("/metrics").1;
    assert!(metrics.contains("veltrix_disconnects_total{reason=\"slow_consumer\"} 1"), "{metrics}");
    let growth = live.rss_kib().saturating_sub(rss_before);
    assert!(growth < 16 * 1024, "RSS grew by {growth} KiB while a client was stuck");
    // The movers were served throughout.
    assert!(round_trip(&mut movers[0]).await < Duration::from_millis(250));
}

/// A client that stops reading for a while gets every frame it missed, in tick order, and the
/// server writes the backlog several frames at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_falls_behind_gets_its_backlog_in_order_in_fewer_writes() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let (_server, live) = slow_reader_server(4096);
    let mut laggard = small_buffer_client(&live, "laggard").await;
    let welcome = tokio::time::timeout(WAIT, laggard.next()).await.unwrap().unwrap().unwrap();
    let welcome = veltrix_protocol::decode_server_frame(&welcome.into_data()).unwrap().frame;
    assert!(matches!(welcome.messages[0], ServerMessage::Welcome(_)), "{welcome:?}");
    let counter = |name: &str| -> u64 {
        let body = live.admin_get("/metrics").1;
        let line = body.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name}:\n{body}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let (frames_before, writes_before) = (counter("veltrix_frames_out_total"), counter("veltrix_socket_writes_total"));

    // Movers beside it make traffic for it every tick while it does not read.
    let mut movers = Vec::new();
    for i in 0..20 {
        movers.push(Client::connect(&live.addr, hello(format!("mover{i}"))).await.unwrap().0);
    }
    let mut last = Vec::new();
    let until = Instant::now() + Duration::from_secs(2);
    let mut step = 0.0;
    while Instant::now() < until {
        step = if step == 0.0 { 0.2 } else { 0.0 };
        last.clear();
        for m in movers.iter_mut() {
            m.move_to(256.5 + step, 256.5).await.unwrap();
            last.push((m.player(), 256.5 + step));
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }

    // Then it reads everything: frames in tick order, ending with every mover's last position.
    // The Welcome is a frame of its own, before its tick's frame.
    let mut previous_tick = welcome.tick - 1;
    let mut positions = std::collections::HashMap::new();
    while let Ok(Some(message)) = tokio::time::timeout(Duration::from_millis(1500), laggard.next()).await {
        let Message::Binary(bytes) = message.unwrap() else { continue };
        let frame = veltrix_protocol::decode_server_frame(&bytes).unwrap().frame;
        assert!(frame.tick > previous_tick, "tick {} after tick {previous_tick}", frame.tick);
        previous_tick = frame.tick;
        for message in frame.messages {
            if let ServerMessage::PlayerMoved(p) = message {
                positions.insert(p.player, p.x);
            }
        }
    }
    for (player, x) in &last {
        assert_eq!(positions.get(player), Some(x), "the last move of {player:?}");
    }
    assert!(!live.log().contains("player laggard left"), "{}", live.log());
    let frames = counter("veltrix_frames_out_total") - frames_before;
    let writes = counter("veltrix_socket_writes_total") - writes_before;
    assert!(writes < frames, "{frames} frames in {writes} writes: the backlog was written a frame at a time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kick_from_the_console_closes_with_the_reason() {
    let (_s, mut live) = start(&[]);
    let (mut ana, _) = Client::connect(&live.addr, hello("ana")).await.unwrap();
    let out = live.console("players");
    assert!(out.starts_with("1 player(s) online\n  ana (id "), "{out}");
    assert_eq!(live.console("kick ana spamming the chat"), "kicked ana: spamming the chat\n");
    let (code, message, close) = error_then_close(&mut ana).await;
    assert_eq!((code, message.as_str(), close), (ErrorCode::Kicked, "spamming the chat", Some(1000)));
    // Gone once the server has seen the connection end (the tick after the close at most).
    live.wait_for_log(0, "player ana left (kicked)");
    assert_eq!(live.console("kick ana"), "error: no player named ana is online\nusage: kick <player> [reason]\n");
    assert!(live.console("frobnicate").starts_with("error: unknown command `frobnicate`"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ban_refuses_the_player_and_persists() {
    let (server, mut live) = start(&[]);
    let (mut ana, _) = Client::connect(&live.addr, hello("ana")).await.unwrap();
    assert_eq!(live.console("ban ana"), "banned ana\n");
    let (code, _, _) = error_then_close(&mut ana).await;
    assert_eq!(code, ErrorCode::Banned);
    let (code, _) = refused(Client::connect(&live.addr, hello("ana")).await);
    assert_eq!(code, ErrorCode::Banned);
    let bans = std::fs::read_to_string(server.root().join("bans.json")).unwrap();
    assert_eq!(serde_json::from_str::<Vec<String>>(&bans).unwrap(), ["ana"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_cannot_run_operator_commands() {
    let (_s, live) = start(&[]);
    let (mut ana, _) = Client::connect(&live.addr, hello("ana")).await.unwrap();
    let request = ana.command("kick bob").await.unwrap();
    let answer = ana.recv_until(WAIT, |m| matches!(m, ServerMessage::CommandResult(_))).await.unwrap();
    let ServerMessage::CommandResult(r) = answer else { unreachable!() };
    assert_eq!(
        (r.request, r.ok, r.text.as_str()),
        (request, false, "you lack the permission veltrix.server.command.kick for `kick`")
    );
    // Every player is in the Default group, which may ask for help.
    ana.command("help").await.unwrap();
    let answer = ana.recv_until(WAIT, |m| matches!(m, ServerMessage::CommandResult(_))).await.unwrap();
    let ServerMessage::CommandResult(r) = answer else { unreachable!() };
    assert!(r.ok && r.text.contains("kick <player>"), "{}", r.text);
}

/// `permissions.json`: a player given a group (or a node) may run what it grants; a denial wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_json_grants_and_denies_commands() {
    let server = TestServer::new();
    server.write(
        "permissions.json",
        r#"{"users": {"Ana": {"groups": ["OP"], "permissions": ["-veltrix.server.command.stop"]}},
            "groups": {"OP": ["*"], "Default": []}}"#,
    );
    let live = server.start(&[]);
    let (mut ana, _) = Client::connect(&live.addr, hello("ana")).await.unwrap();
    let (mut bob, _) = Client::connect(&live.addr, hello("bob")).await.unwrap();
    for (who, line, ok, text) in [
        ("ana", "players", true, "2 player(s) online"),
        ("ana", "stop", false, "you lack the permission veltrix.server.command.stop for `stop`"),
        ("bob", "help", false, "you lack the permission veltrix.server.command.help for `help`"),
    ] {
        let client = if who == "ana" { &mut ana } else { &mut bob };
        let request = client.command(line).await.unwrap();
        let answer = client
            .recv_until(WAIT, |m| matches!(m, ServerMessage::CommandResult(r) if r.request == request))
            .await
            .unwrap();
        let ServerMessage::CommandResult(r) = answer else { unreachable!() };
        assert_eq!(r.ok, ok, "{line}: {}", r.text);
        assert!(r.text.starts_with(text), "{line}: {}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health_on_loopback_only() {
    let (_s, live) = start(&[]);
    let (_ana, _) = Client::connect(&live.addr, hello("ana")).await.unwrap();
    // The gauges are set after the tick's joins: wait for that tick's.
    veltrix_tests::poll(WAIT, || (live.health()["players"] == 1).then_some(())).expect("ana is never counted online");
    let (status, body) = live.admin_get("/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    for series in [
        "veltrix_players_online 1",
        "veltrix_connections_open 1",
        "veltrix_tick_duration_seconds_bucket{le=\"0.005\"}",
        "veltrix_frames_in_total",
        "veltrix_bytes_in_total",
        "veltrix_frames_out_total",
        "veltrix_bytes_out_total",
        "veltrix_socket_writes_total",
        "veltrix_inbound_queue_depth",
        "veltrix_outbound_queue_depth_max",
    ] {
        assert!(body.contains(series), "/metrics lacks {series}:\n{body}");
    }
    let (status, body) = live.admin_get("/health");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.starts_with("{\"status\":\"ok\",\"tick\":") && body.contains("\"players\":1"), "{body}");

    assert!(live.admin.starts_with("127.0.0.1:"), "bound to loopback: {}", live.admin);
    let port = live.admin.rsplit(':').next().unwrap();
    // Every non-loopback address of this machine refuses the admin port.
    let out = std::process::Command::new("hostname").arg("-I").output().unwrap();
    for ip in String::from_utf8_lossy(&out.stdout).split_whitespace().filter(|ip| !ip.contains(':')) {
        let refused =
            std::net::TcpStream::connect_timeout(&format!("{ip}:{port}").parse().unwrap(), Duration::from_secs(1))
                .is_err();
        assert!(refused, "the admin listener answered on {ip}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_address_are_limited() {
    let server = TestServer::new().with_treasure_hunt("Veltrix_TreasureHunt");
    server.write("config.json", r#"{"Network": {"MaxConnectionsPerIp": 2}}"#);
    let live2 = server.start(&[]);
    let (_a, _) = Client::connect(&live2.addr, hello("ana")).await.unwrap();
    let (_b, _) = Client::connect(&live2.addr, hello("bob")).await.unwrap();
    let (code, message) = refused(Client::connect(&live2.addr, hello("carol")).await);
    assert_eq!((code, message.as_str()), (ErrorCode::TooManyConnections, "too many connections from your address"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_times_out_and_a_reading_one_stays() {
    let server = TestServer::new().with_treasure_hunt("Veltrix_TreasureHunt");
    server.write("config.json", r#"{"Network": {"IdleTimeoutSeconds": 2, "PingIntervalSeconds": 1}}"#);
    let live = server.start(&[]);
    // Silent: a raw WebSocket that joins, then neither reads (so never answers a ping) nor sends.
    let stream = tokio::net::TcpStream::connect(&live.addr).await.unwrap();
    let (mut silent, _) = tokio_tungstenite::client_async(format!("ws://{}/", live.addr), stream).await.unwrap();
    use futures_util::SinkExt;
    let hello_frame = encode_client_frame(&[ClientMessage::Hello(hello("silent"))]);
    silent.send(tokio_tungstenite::tungstenite::Message::Binary(hello_frame.into())).await.unwrap();
    // Reading: the client library answers pings while it reads.
    let (mut reader, _) = Client::connect(&live.addr, hello("reader")).await.unwrap();
    let _ = reader.collect_for(Duration::from_secs(4)).await.unwrap();
    live.wait_for_log(0, "player silent left (idle_timeout)");
    assert!(!live.log().contains("player reader left"), "{}", live.log());
    let metrics = live.admin_get("/metrics").1;
    assert!(metrics.contains("veltrix_disconnects_total{reason=\"idle_timeout\"} 1"), "{metrics}");
}

/// WebSocket framing by hand, over a raw TCP socket, to send what no WebSocket library sends.
mod raw {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpStream,
    };
    use veltrix_protocol::{ClientMessage, ErrorMessage, ServerMessage, decode_server_frame, encode_client_frame};

    /// The example opening of RFC 6455 section 1.3.
    pub const OPENING: &[u8] = b"GET / HTTP/1.1\r\nHost: veltrix\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

    /// Sends `request` and reads the response head (and, with `Connection: close`, the body).
    pub async fn http(addr: &str, request: &[u8]) -> (TcpStream, String) {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(request).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0];
            assert_eq!(tcp.read(&mut byte).await.unwrap(), 1, "the response ended early: {head:?}");
            head.push(byte[0]);
        }
        (tcp, String::from_utf8(head).unwrap())
    }

    /// A client frame: `first` is the FIN, RSV and opcode byte; `masked` as a client must.
    pub fn frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
        let mut out = vec![first];
        let mask_bit = if masked { 0x80 } else { 0 };
        match payload.len() {
            len @ 0..=125 => out.push(mask_bit | len as u8),
            len => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
        }
        let key = [0x37, 0xfa, 0x21, 0x3d];
        if masked {
            out.extend_from_slice(&key);
        }
        out.extend(payload.iter().enumerate().map(|(i, b)| if masked { b ^ key[i % 4] } else { *b }));
        out
    }

    /// A client's close frame with `code` and `reason`.
    pub fn close(code: u16, reason: &str) -> Vec<u8> {
        frame(0x88, &[&code.to_be_bytes()[..], reason.as_bytes()].concat(), true)
    }

    /// The next frame from the server: opcode and payload; `None` at the end of the stream.
    pub async fn read_frame(tcp: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
        let mut head = [0; 2];
        tcp.read_exact(&mut head).await.ok()?;
        let len = match head[1] & 0x7f {
            126 => u64::from(tcp.read_u16().await.ok()?),
            127 => tcp.read_u64().await.ok()?,
            len => u64::from(len),
        };
        let mut payload = vec![0; len as usize];
        tcp.read_exact(&mut payload).await.ok()?;
        Some((head[0] & 0x0f, payload))
    }

    /// Opens a WebSocket and joins as `name`; returns once the Welcome came.
    pub async fn joined(addr: &str, name: &str) -> TcpStream {
        let (mut tcp, head) = http(addr, OPENING).await;
        assert!(head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"), "{head}");
        let hello = encode_client_frame(&[ClientMessage::Hello(veltrix_client::hello(name))]);
        tcp.write_all(&frame(0x82, &hello, true)).await.unwrap();
        loop {
            let (opcode, payload) = read_frame(&mut tcp).await.expect("a Welcome");
            if opcode == 0x2
                && decode_server_frame(&payload)
                    .unwrap()
                    .frame
                    .messages
                    .iter()
                    .any(|m| matches!(m, ServerMessage::Welcome(_)))
            {
                return tcp;
            }
        }
    }

    /// Reads frames to the server's close frame: the last `Error` before it, and its close code
    /// and reason; `None` when the connection ended without a close frame.
    pub async fn until_close(tcp: &mut TcpStream) -> Option<(Option<ErrorMessage>, u16, String)> {
        let mut error = None;
        loop {
            let (opcode, payload) = read_frame(tcp).await?;
            match opcode {
                0x8 => {
                    let code = u16::from_be_bytes([payload[0], payload[1]]);
                    return Some((error, code, String::from_utf8(payload[2..].to_vec()).unwrap()));
                }
                0x2 => {
                    for m in decode_server_frame(&payload).unwrap().frame.messages {
                        if let ServerMessage::Error(e) = m {
                            error = Some(e);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// Every breach of RFC 6455 gets an `Error` `ProtocolViolation` and a close frame with 1002 (1007
/// for text that is not UTF-8), before the handshake and after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_violations_are_answered_with_their_close_code() {
    use tokio::io::AsyncWriteExt;
    let (_s, live) = start(&[]);
    let text = |payload: &[u8]| raw::frame(0x81, payload, true);
    let cases: [(&str, Vec<u8>, u16); 8] = [
        ("unmasked", raw::frame(0x82, &[0x90], false), 1002),
        ("a reserved bit", raw::frame(0xc2, &[0x90], true), 1002),
        ("opcode 3", raw::frame(0x83, &[0x90], true), 1002),
        ("a ping of 126 bytes", raw::frame(0x89, &[0; 126], true), 1002),
        ("a fragmented ping", raw::frame(0x09, b"hi", true), 1002),
        ("a continuation of nothing", raw::frame(0x80, &[0x90], true), 1002),
        ("a close of one byte", raw::frame(0x88, &[3], true), 1002),
        ("text that is not UTF-8", text(&[0xff, 0xfe]), 1007),
    ];
    for (i, (what, bytes, expected)) in cases.into_iter().enumerate() {
        for joined in [false, true] {
            let mut tcp = if joined {
                raw::joined(&live.addr, &format!("p{i}")).await
            } else {
                let (tcp, head) = raw::http(&live.addr, raw::OPENING).await;
                assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
                tcp
            };
            tcp.write_all(&bytes).await.unwrap();
            let answer = tokio::time::timeout(WAIT, raw::until_close(&mut tcp)).await.unwrap();
            let Some((Some(error), code, reason)) = answer else {
                panic!("{what} (joined: {joined}): no Error and close frame, got {answer:?}")
            };
            assert_eq!(
                (error.code, code, reason.as_str()),
                (ErrorCode::ProtocolViolation, expected, "ProtocolViolation"),
                "{what}"
            );
            assert!(error.message.starts_with("WebSocket protocol violation: "), "{what}: {}", error.message);
        }
    }
    // Counted once each connection's task has ended, which may be just after its close frame.
    let deadline = Instant::now() + WAIT;
    loop {
        let metrics = live.admin_get("/metrics").1;
        if metrics.contains("veltrix_disconnects_total{reason=\"protocol_violation\"} 16") {
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A client's close frame is answered with its own code (RFC 6455 section 5.5.1); a code a
/// client may not send (999) is answered with 1002.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_close_is_echoed() {
    use tokio::io::AsyncWriteExt;
    let (_s, live) = start(&[]);
    for (name, sent, echoed) in [("ana", 1000, 1000), ("bob", 4001, 4001), ("cy", 999, 1002)] {
        let mut tcp = raw::joined(&live.addr, name).await;
        tcp.write_all(&raw::close(sent, "bye")).await.unwrap();
        let answer = tokio::time::timeout(WAIT, raw::until_close(&mut tcp)).await.unwrap();
        let Some((error, code, _)) = answer else { panic!("close {sent}: no close frame came back") };
        assert_eq!((error, code), (None, echoed), "close {sent}");
    }
    // Before the handshake too.
    let (mut tcp, _) = raw::http(&live.addr, raw::OPENING).await;
    tcp.write_all(&raw::close(1000, "")).await.unwrap();
    let answer = tokio::time::timeout(WAIT, raw::until_close(&mut tcp)).await.unwrap();
    assert_eq!(answer.map(|a| a.1), Some(1000));
}

/// A browser's plain request for `/` gets the client's page; any other request that is not a
/// WebSocket opening gets an HTTP answer saying what this port is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_http_request_gets_the_page_or_is_answered_426() {
    use tokio::io::AsyncReadExt;
    let (_s, live) = start(&[]);
    let (mut tcp, head) = raw::http(&live.addr, b"GET / HTTP/1.1\r\nHost: veltrix\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n") && head.contains("content-type: text/html"), "{head}");
    let mut page = String::new();
    tcp.read_to_string(&mut page).await.unwrap();
    assert!(page.starts_with("<!doctype html>"), "{page}");
    let (mut tcp, head) = raw::http(&live.addr, b"GET /chat HTTP/1.1\r\nHost: veltrix\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 426 Upgrade Required\r\n"), "{head}");
    assert!(head.contains("upgrade: websocket\r\n") && head.contains("connection: close\r\n"), "{head}");
    let mut body = String::new();
    tcp.read_to_string(&mut body).await.unwrap();
    assert!(body.starts_with("This is the player port of a Veltrix game server. Open http://"), "{body}");
    // A WebSocket opening of another version is told the one this server speaks.
    let opening = String::from_utf8(raw::OPENING.to_vec()).unwrap().replace("Version: 13", "Version: 8");
    let (_tcp, head) = raw::http(&live.addr, opening.as_bytes()).await;
    assert!(head.starts_with("HTTP/1.1 426 ") && head.contains("sec-websocket-version: 13\r\n"), "{head}");
    // Not HTTP at all.
    let (_tcp, head) = raw::http(&live.addr, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
}
