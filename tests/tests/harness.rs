//! The sdk's test harness (`veltrix_sdk::testing`): mods run headless with scripted players,
//! and what each player received is checked as a transcript snapshot.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use serde::{Deserialize, Serialize};
use serde_json::json;
use veltrix_protocol::{CommandResult, ErrorCode, ServerMessage, decode_server_frame};
use veltrix_sdk::{
    CommandSource, ModId,
    bevy_ecs::{self, system::SystemParam},
    prelude::*,
    testing::{Executor, Harness},
};

// ---------------------------------------------------------------------------------------------
// The example of the module documentation and of docs/testing.md, as it is written there.

/// A client asks...
#[derive(Serialize, Deserialize)]
struct Ping {
    n: u32,
}

/// ...and the mod answers.
#[derive(Serialize, Deserialize)]
struct Pong {
    n: u32,
}

#[derive(Default)]
struct PingPong;

impl Mod for PingPong {
    fn setup(&mut self, ctx: &mut ModContext) -> Result<(), ModError> {
        ctx.add_client_message::<Ping>("Ping").add_server_message::<Pong>("Pong").add_systems(Tick, pong);
        Ok(())
    }
}

fn pong(mut pings: MessageReader<FromClient<Ping>>, mut outbox: ResMut<Outbox>) {
    for ping in pings.read() {
        outbox.reply(ping.player, ping.request, &Pong { n: ping.message.n + 1 });
    }
}

#[test]
fn ping_is_answered_with_pong() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = Harness::new(TileWorld::flat(64, 64));
    harness.add_mod(ModId::new("Example", "PingPong"), PingPong, dir.path(), dir.path()).unwrap();
    harness.join("alice", 10.0, 12.0);
    harness.send("alice", "Ping", Some(1), &Ping { n: 41 });
    harness.tick();
    insta::assert_snapshot!(harness.transcript());
    harness.shutdown();
}

// ---------------------------------------------------------------------------------------------
// A small hunt: digging next to a spot, shouting to the players near, announcing to all, a
// secret for one player, a head count made with `par_iter`, and a command.

const HUNT: &str = "Fixtures:Hunt";

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Dig {
    x: i32,
    y: i32,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DigProgress {
    effort: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Shout {
    text: String,
    radius: f32,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Announce {
    text: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Heard {
    from: PlayerId,
    text: String,
}

/// Asks where the treasure is: the answer goes to the asker alone.
#[derive(Serialize, Deserialize)]
struct WhereIsIt {}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Secret {
    treasure: String,
}

#[derive(Serialize, Deserialize)]
struct Census {}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Population {
    players: u32,
    near_spawn: u32,
}

/// The secret only its asker may see.
const TREASURE: &str = "under-the-old-oak";

#[derive(Resource, Default)]
struct Efforts(std::collections::BTreeMap<PlayerId, u32>);

#[derive(Resource, Default)]
struct HeadCount {
    players: u32,
    near_spawn: u32,
}

#[derive(Default)]
struct Hunt {
    shut_down: Arc<AtomicBool>,
}

impl Mod for Hunt {
    fn setup(&mut self, ctx: &mut ModContext) -> Result<(), ModError> {
        ctx.world_mut().init_resource::<Efforts>();
        ctx.world_mut().init_resource::<HeadCount>();
        ctx.add_client_message::<Dig>("Dig")
            .add_client_message::<Shout>("Shout")
            .add_client_message::<Announce>("Announce")
            .add_client_message::<WhereIsIt>("WhereIsIt")
            .add_client_message::<Census>("Census")
            .add_server_message::<DigProgress>("DigProgress")
            .add_server_message::<Heard>("Heard")
            .add_server_message::<Secret>("Secret")
            .add_server_message::<Population>("Population");
        // One order for everything that writes the outbox, on either executor.
        ctx.add_systems(Tick, (count_heads, dig, talk).chain());
        ctx.add_command("greet", "greet <name>", "say hello to someone", greet);
        Ok(())
    }

    fn shutdown(&mut self, _ctx: &mut ModContext) {
        self.shut_down.store(true, Ordering::Relaxed);
    }
}

/// Counts the players, and those within 20 tiles of the spawn (0, 0), in parallel.
fn count_heads(players: Query<&Position, With<Player>>, mut count: ResMut<HeadCount>) {
    let near = std::sync::atomic::AtomicU32::new(0);
    players.par_iter().for_each(|at| {
        if at.distance_squared(0.0, 0.0) <= 20.0 * 20.0 {
            near.fetch_add(1, Ordering::Relaxed);
        }
    });
    *count = HeadCount { players: players.iter().len() as u32, near_spawn: near.into_inner() };
}

/// Digging at a tile needs the digger within 2 tiles of it; each dig adds one effort.
fn dig(
    mut digs: MessageReader<FromClient<Dig>>,
    positions: Query<&Position>,
    mut efforts: ResMut<Efforts>,
    mut outbox: ResMut<Outbox>,
) {
    for d in digs.read() {
        let Ok(at) = positions.get(d.entity) else { continue };
        if at.distance_squared(d.message.x as f32, d.message.y as f32) > 2.0 * 2.0 {
            outbox.refuse(d.player, d.request, "out of reach");
            continue;
        }
        let effort = efforts.0.entry(d.player).or_default();
        *effort += 1;
        outbox.reply(d.player, d.request, &DigProgress { effort: *effort });
    }
}

/// What players say this tick: shouts to those near, announcements to all, and questions.
#[derive(SystemParam)]
struct Talk<'w, 's> {
    shouts: MessageReader<'w, 's, FromClient<Shout>>,
    announcements: MessageReader<'w, 's, FromClient<Announce>>,
    questions: MessageReader<'w, 's, FromClient<WhereIsIt>>,
    census: MessageReader<'w, 's, FromClient<Census>>,
}

fn talk(talk: Talk, positions: Query<&Position>, count: Res<HeadCount>, mut outbox: ResMut<Outbox>) {
    let Talk { mut shouts, mut announcements, mut questions, mut census } = talk;
    for s in shouts.read() {
        let Ok(at) = positions.get(s.entity) else { continue };
        let heard = Heard { from: s.player, text: s.message.text.clone() };
        outbox.send(Audience::Near { x: at.x, y: at.y, radius: s.message.radius }, &heard);
    }
    for a in announcements.read() {
        outbox.send(Audience::All, &Heard { from: a.player, text: a.message.text.clone() });
    }
    for q in questions.read() {
        outbox.reply(q.player, q.request, &Secret { treasure: TREASURE.into() });
    }
    for c in census.read() {
        outbox.reply(c.player, c.request, &Population { players: count.players, near_spawn: count.near_spawn });
    }
}

fn greet(_: &mut World, source: &CommandSource, args: &[&str]) -> Result<String, String> {
    let [name] = args else { return Err("name one player to greet".into()) };
    let from = match source {
        CommandSource::Console => "the console",
        CommandSource::Player { name, .. } => name,
    };
    Ok(format!("{from} says hello to {name}"))
}

/// The hunt on `executor`. It touches no file: its folders are the tests' scratch folder.
fn hunt_harness(executor: Executor) -> Harness {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("harness");
    let mut harness = Harness::with_executor(TileWorld::flat(64, 64), executor);
    harness.add_mod(ModId::new("Fixtures", "Hunt"), Hunt::default(), &dir, &dir.join("Fixtures_Hunt")).unwrap();
    harness
}

/// Whether `needle` appears anywhere in `frame`.
fn contains(frame: &[u8], needle: &[u8]) -> bool {
    frame.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn near_reaches_only_the_players_within_the_radius() {
    let mut harness = hunt_harness(Executor::SingleThreaded);
    harness.join("alice", 10.0, 10.0);
    harness.join("bob", 12.0, 10.0);
    // Exactly on the radius: it hears, as in the host (distance <= radius).
    harness.join("dave", 15.0, 10.0);
    harness.join("carol", 40.0, 40.0);
    harness.send("alice", "Shout", None, &Shout { text: "over here".into(), radius: 5.0 });
    harness.tick();
    harness.move_to("carol", 11.0, 11.0);
    harness.move_to("dave", 30.0, 10.0);
    harness.send("alice", "Shout", None, &Shout { text: "again".into(), radius: 5.0 });
    harness.tick();
    insta::assert_snapshot!(harness.transcript());

    assert_eq!(harness.frames("alice").len(), 2, "one frame per tick with news");
    assert_eq!(harness.frames("dave").len(), 1, "dave moved away before the second shout");
    let carol = harness.frames("carol");
    assert_eq!(carol.len(), 1, "carol hears only once she came near");
    assert_eq!(decode_server_frame(&carol[0]).unwrap().frame.tick, 2);
    assert!(!contains(&carol[0], b"over here"));
}

#[test]
fn a_far_player_receives_nothing() {
    let mut harness = hunt_harness(Executor::SingleThreaded);
    harness.join("alice", 10.0, 10.0);
    harness.join("carol", 50.0, 50.0);
    harness.send("alice", "Shout", None, &Shout { text: "anyone?".into(), radius: 8.0 });
    harness.run_ticks(3);
    assert!(harness.frames("carol").is_empty(), "{:?}", harness.frames("carol"));
    assert!(harness.received("carol").is_empty());
    assert_eq!(harness.transcript_of("carol"), "tick 1 carol -> join at (50.0, 50.0)\n");
    assert_eq!(harness.frames("alice").len(), 1);
}

#[test]
fn request_ids_are_in_the_transcript() {
    let mut harness = hunt_harness(Executor::SingleThreaded);
    harness.join("alice", 10.0, 12.0);
    harness.tick();
    harness.send("alice", "Dig", Some(7), &Dig { x: 10, y: 12 });
    harness.send("alice", "Dig", Some(8), &Dig { x: 30, y: 12 });
    harness.send("alice", "Dig", None, &Dig { x: 11, y: 12 });
    harness.send("alice", "WhereIsIt", Some(9), &WhereIsIt {});
    harness.tick();
    insta::assert_snapshot!(harness.transcript());

    let received = harness.received("alice");
    assert!(matches!(&received[1], ServerMessage::Error(e) if e.code == ErrorCode::Refused && e.request == Some(8)));
}

#[test]
fn a_reply_reaches_only_its_player() {
    let mut harness = hunt_harness(Executor::SingleThreaded);
    harness.join("alice", 10.0, 10.0);
    harness.join("bob", 11.0, 10.0);
    harness.send("alice", "WhereIsIt", Some(1), &WhereIsIt {});
    harness.send("bob", "Announce", None, &Announce { text: "I found a coin".into() });
    harness.tick();
    assert!(harness.frames("alice").iter().any(|f| contains(f, TREASURE.as_bytes())));
    assert_eq!(harness.frames("bob").len(), 1);
    assert!(!harness.frames("bob").iter().any(|f| contains(f, TREASURE.as_bytes())), "bob must not see the secret");
    insta::assert_snapshot!(harness.transcript());
}

#[test]
fn malformed_and_unknown_messages_are_answered_as_the_host_answers() {
    let mut harness = hunt_harness(Executor::SingleThreaded);
    harness.join("alice", 10.0, 12.0);
    harness.send("alice", "Dig", Some(3), &json!({"X": "ten", "Y": 12}));
    harness.send_bytes("alice", HUNT, "Dig", Some(4), vec![0xc1]);
    harness.send("alice", "Teleport", Some(5), &json!({}));
    harness.send_to("alice", "Fixtures:Nobody", "Dig", None, &Dig { x: 10, y: 12 });
    harness.tick();
    insta::assert_snapshot!(harness.transcript());

    let codes: Vec<ErrorCode> = harness
        .received("alice")
        .iter()
        .map(|m| match m {
            ServerMessage::Error(e) => e.code,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        codes,
        [ErrorCode::Malformed, ErrorCode::Malformed, ErrorCode::UnknownMessage, ErrorCode::UnknownMessage]
    );
}

/// A script with moves, leaves, several messages per tick, parallel systems.
fn script(executor: Executor) -> String {
    let mut harness = hunt_harness(executor);
    for (i, name) in ["alice", "bob", "carol", "dave", "erin", "frank"].into_iter().enumerate() {
        harness.join(name, 5.0 * i as f32, 3.0 * i as f32);
    }
    harness.tick();
    for round in 0..5u32 {
        harness.send("alice", "Dig", Some(round), &Dig { x: 0, y: 1 });
        harness.send("bob", "Shout", None, &Shout { text: format!("round {round}"), radius: 12.0 });
        harness.send("carol", "Census", Some(100 + round), &Census {});
        harness.move_to("dave", 40.0 - 5.0 * round as f32, 20.0);
        if round == 2 {
            harness.leave("erin");
            harness.send("frank", "Announce", None, &Announce { text: "erin left".into() });
        }
        if round == 3 {
            harness.join("erin", 1.0, 1.0);
        }
        harness.tick();
    }
    harness.transcript()
}

#[test]
fn executors_give_the_same_transcript() {
    let single = script(Executor::SingleThreaded);
    for _ in 0..5 {
        assert_eq!(script(Executor::MultiThreaded), single);
    }
    insta::assert_snapshot!(single);
}

#[test]
fn player_commands_need_a_permission_until_granted() {
    let mut harness = hunt_harness(Executor::SingleThreaded);
    harness.join("alice", 1.0, 1.0);
    harness.command("alice", "greet bob");
    harness.tick();
    harness.grant_all_permissions();
    harness.command("alice", "greet bob");
    harness.command("alice", "greet");
    harness.command("alice", "gret bob");
    harness.tick();
    assert_eq!(harness.console("greet alice"), Ok("the console says hello to alice".into()));
    assert!(harness.console("").is_err());
    insta::assert_snapshot!(harness.transcript());

    let results: Vec<(u32, bool)> = harness
        .received("alice")
        .iter()
        .map(|m| match m {
            ServerMessage::CommandResult(CommandResult { request, ok, .. }) => (*request, *ok),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(results, [(1, false), (2, true), (3, false), (4, false)]);
}

#[test]
fn permissions_can_be_given_by_node() {
    let mut harness = hunt_harness(Executor::SingleThreaded);
    harness.set_permissions(|source, node| match source {
        CommandSource::Console => true,
        CommandSource::Player { name, .. } => name == "alice" && node == "fixtures.hunt.command.greet",
    });
    harness.join("alice", 1.0, 1.0);
    harness.join("bob", 2.0, 1.0);
    harness.command("alice", "greet bob");
    harness.command("bob", "greet alice");
    harness.tick();
    assert_eq!(
        harness.transcript_of("bob"),
        "tick 1 bob -> join at (2.0, 1.0)\n\
         tick 1 bob -> command \"greet alice\"\n\
         tick 1 bob <- CommandResult error: you lack the permission fixtures.hunt.command.greet for `greet`\n"
    );
    assert!(harness.transcript_of("alice").contains("CommandResult ok: alice says hello to bob"));
}

#[test]
fn players_leave_and_come_back_with_their_id() {
    let mut harness = hunt_harness(Executor::SingleThreaded);
    assert_eq!(harness.join("alice", 1.0, 1.0), 1);
    assert_eq!(harness.join("bob", 2.0, 1.0), 2);
    assert_eq!(harness.player_entity("alice"), None, "the join is applied in the next tick");
    harness.tick();
    let alice = harness.player_entity("alice").expect("alice is in the world");
    assert_eq!(harness.world().get::<Player>(alice), Some(&Player { id: 1, name: "alice".into() }));
    assert_eq!(harness.world().get::<Position>(alice), Some(&Position { x: 1.0, y: 1.0 }));

    // A message to a player who left in the same tick is lost, as for a closed connection.
    harness.send("alice", "Census", Some(1), &Census {});
    harness.leave("alice");
    harness.send("bob", "Census", Some(2), &Census {});
    harness.tick();
    assert_eq!(harness.player_entity("alice"), None);
    assert!(harness.world().get_entity(alice).is_err(), "alice's entity is despawned");
    assert_eq!(harness.join("Alice", 3.0, 3.0), 1, "a name keeps its id, whatever its case");
    harness.send("alice", "Census", Some(3), &Census {});
    harness.run_until(4);
    harness.run_until(2);
    assert_eq!(harness.current_tick(), 4);
    insta::assert_snapshot!(harness.transcript());
}

#[test]
fn clearing_the_transcript_keeps_what_was_received() {
    let mut harness = hunt_harness(Executor::SingleThreaded);
    harness.join("alice", 10.0, 12.0);
    harness.send("alice", "Dig", Some(1), &Dig { x: 10, y: 12 });
    harness.tick();
    harness.clear_transcript();
    harness.send("alice", "Dig", Some(2), &Dig { x: 10, y: 12 });
    harness.tick();
    assert_eq!(
        harness.transcript(),
        "tick 2 alice -> Fixtures:Hunt/Dig #2 {\"X\":10,\"Y\":12}\n\
         tick 2 alice <- Fixtures:Hunt/DigProgress #2 {\"Effort\":2}\n"
    );
    assert_eq!(harness.received("alice").len(), 2);
    assert_eq!(harness.frames("alice").len(), 2);
}

#[test]
fn tick_info_follows_the_rate_and_the_tick() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = Harness::new(TileWorld::flat(8, 8)).tick_rate(10);
    harness.add_mod(ModId::new("Fixtures", "Hunt"), Hunt::default(), dir.path(), dir.path()).unwrap();
    harness.run_ticks(5);
    let info = *harness.world().resource::<TickInfo>();
    assert_eq!((info.tick, info.rate, info.dt), (5, 10, std::time::Duration::from_millis(100)));
    assert_eq!(harness.world_mut().query::<&LoadedMod>().iter(harness.world()).count(), 1);
}

#[test]
fn shutdown_reaches_the_mod() {
    let dir = tempfile::tempdir().unwrap();
    let shut_down = Arc::new(AtomicBool::new(false));
    let mut harness = Harness::new(TileWorld::flat(8, 8));
    let hunt = Hunt { shut_down: Arc::clone(&shut_down) };
    harness.add_mod(ModId::new("Fixtures", "Hunt"), hunt, dir.path(), dir.path()).unwrap();
    harness.tick();
    assert!(!shut_down.load(Ordering::Relaxed));
    harness.shutdown();
    assert!(shut_down.load(Ordering::Relaxed));
}

/// A mod whose start fails: the error comes back and none of its systems runs.
struct FailsToStart;

#[derive(Resource, Default)]
struct Runs(u32);

impl Mod for FailsToStart {
    fn setup(&mut self, ctx: &mut ModContext) -> Result<(), ModError> {
        ctx.world_mut().init_resource::<Runs>();
        ctx.add_systems(Tick, |mut runs: ResMut<Runs>| runs.0 += 1);
        Ok(())
    }

    fn start(&mut self, _ctx: &mut ModContext) -> Result<(), ModError> {
        Err("no treasure map".into())
    }
}

#[test]
fn a_mod_that_fails_to_start_has_no_system() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = Harness::new(TileWorld::flat(8, 8));
    let error = harness.add_mod(ModId::new("Fixtures", "Fails"), FailsToStart, dir.path(), dir.path()).unwrap_err();
    assert_eq!(error.to_string(), "no treasure map");
    harness.run_ticks(2);
    assert_eq!(harness.world().resource::<Runs>().0, 0);
}
