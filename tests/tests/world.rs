//! The tile world as players meet it: a map file's rock and water refuse moves onto them and
//! across them; a broken map stops the server with the place of the error.

use std::time::Duration;

use veltrix_client::{Client, hello};
use veltrix_protocol::{CorrectionReason, PositionCorrected, ServerMessage};
use veltrix_tests::{LiveServer, TestServer};

/// 20 x 20 ground with a rock at (12, 10) and water at (8, 10).
fn map() -> String {
    let mut rows = vec![".".repeat(20); 20];
    rows[10] = "........~...#.......".to_string();
    rows.join("\n") + "\n"
}

/// A server on the map above with ana joined at its spawn (x, y); the caller keeps the servers.
async fn ana_at_the_spawn(x: f32, y: f32) -> (TestServer, LiveServer, Client) {
    let server = TestServer::new().with_treasure_hunt("Veltrix_TreasureHunt");
    server.write("universe/worlds/tiny/map.txt", &map());
    server.write("config.json", &format!(r#"{{"World": {{"Map": "tiny", "SpawnX": {x}, "SpawnY": {y}}}}}"#));
    let live = server.start(&[]);
    let (ana, welcome) = Client::connect(&live.addr, hello("ana")).await.unwrap();
    assert_eq!((welcome.x, welcome.y), (x, y), "ana starts at the spawn");
    (server, live, ana)
}

/// The next `PositionCorrected` the player gets.
async fn next_correction(client: &mut Client) -> PositionCorrected {
    match client.recv_until(Duration::from_secs(5), |m| matches!(m, ServerMessage::PositionCorrected(_))).await {
        Ok(ServerMessage::PositionCorrected(c)) => c,
        Ok(_) => unreachable!(),
        Err(e) => panic!("no PositionCorrected: {e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moves_onto_rock_or_water_are_refused_and_onto_ground_accepted() {
    let (_server, _live, mut ana) = ana_at_the_spawn(10.5, 10.5).await;
    use CorrectionReason::{Bounds, Wall, Water};
    for (x, y, reason) in [(12.5, 10.5, Wall), (8.5, 10.5, Water), (25.0, 10.5, Bounds)] {
        let seq = ana.move_to(x, y).await.unwrap();
        let c = next_correction(&mut ana).await;
        assert_eq!((c.seq, c.x, c.y, c.reason), (seq, 10.5, 10.5, reason), "a move to ({x}, {y})");
    }
    ana.move_to(11.5, 11.5).await.unwrap();
    let frames = ana.collect_for(Duration::from_millis(500)).await.unwrap();
    assert!(
        !frames.iter().flat_map(|f| &f.messages).any(|m| matches!(m, ServerMessage::PositionCorrected(_))),
        "a move onto ground is accepted: {frames:?}"
    );
}

/// A move is checked along its straight line, not only where it ends: with budget enough, a hop
/// over rock or water one tile thick onto the ground beyond is corrected, and a move as long
/// over open ground is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_across_rock_or_water_is_refused_though_it_ends_on_ground() {
    // Beside the rock at (12, 10).
    let (_server, _live, mut ana) = ana_at_the_spawn(11.5, 10.5).await;
    // 2 and 4 tiles: within the budget a player joins with (a second at MaxSpeed, 8 tiles).
    for (x, y, reason) in [(13.5, 10.5, CorrectionReason::Wall), (7.5, 10.5, CorrectionReason::Water)] {
        let seq = ana.move_to(x, y).await.unwrap();
        let c = next_correction(&mut ana).await;
        assert_eq!(
            (c.seq, c.x, c.y, c.reason),
            (seq, 11.5, 10.5, reason),
            "a move to ({x}, {y}), across the rock or the water"
        );
    }
    // As long as the hop over the rock, along open ground. A move off the world after it is
    // refused with where the server has the player: the first correction is that one.
    let seq = ana.move_to(11.5, 12.5).await.unwrap();
    let off = ana.move_to(-1.0, 12.5).await.unwrap();
    let c = next_correction(&mut ana).await;
    assert_eq!(
        (c.seq, c.x, c.y, c.reason),
        (off, 11.5, 12.5, CorrectionReason::Bounds),
        "the move {seq} along open ground is accepted"
    );
}

#[test]
fn a_broken_map_stops_the_server_with_its_place() {
    let server = TestServer::new();
    server.write("universe/worlds/tiny/map.txt", "...\n.?.\n...\n");
    server.write("config.json", r#"{"World": {"Map": "tiny", "SpawnX": 0.5, "SpawnY": 0.5}}"#);
    let run = server.run_ticks(1, &[]);
    assert_eq!(run.code, Some(1));
    let path = server.root().join("universe/worlds/tiny/map.txt");
    assert!(
        run.log.contains(&format!(
            "{}: line 2, column 2: expected `.` (ground), `#` (rock) or `~` (water), found '?'",
            path.display()
        )),
        "{}",
        run.log
    );
}
