//! Testing mods headless: the host schedules, scripted players and a transcript.
//!
//! A [`Harness`] drives the host's own tick pipeline ([`runtime`]: the schedules [`PreTick`],
//! [`Tick`](crate::Tick) and [`PostTick`] and their stages, [`TickInfo`], the [`TileWorld`],
//! the [`Outbox`], [`ClientMessages`](crate::ClientMessages), a
//! [`CommandRegistry`](crate::CommandRegistry), the refusals and permission checks, and a store
//! in memory committed each tick before delivery, [`Harness::store`]) with mods added
//! statically: no library is opened, no socket is bound. Scripted players join, move, send mod messages, type commands
//! and leave; each tick, what every player would have received is assembled into one frame per
//! player, as the host does, and written down in a transcript meant for snapshot tests
//! (`insta::assert_snapshot!`).
//!
//! ```ignore
//! use serde::{Deserialize, Serialize};
//! use veltrix_sdk::{ModId, prelude::*, testing::Harness};
//!
//! /// A client asks...
//! #[derive(Serialize, Deserialize)]
//! struct Ping {
//!     n: u32,
//! }
//!
//! /// ...and the mod answers.
//! #[derive(Serialize, Deserialize)]
//! struct Pong {
//!     n: u32,
//! }
//!
//! #[derive(Default)]
//! struct PingPong;
//!
//! impl Mod for PingPong {
//!     fn setup(&mut self, ctx: &mut ModContext) -> Result<(), ModError> {
//!         ctx.add_client_message::<Ping>("Ping").add_server_message::<Pong>("Pong").add_systems(Tick, pong);
//!         Ok(())
//!     }
//! }
//!
//! fn pong(mut pings: MessageReader<FromClient<Ping>>, mut outbox: ResMut<Outbox>) {
//!     for ping in pings.read() {
//!         outbox.reply(ping.player, ping.request, &Pong { n: ping.message.n + 1 });
//!     }
//! }
//!
//! #[test]
//! fn ping_is_answered_with_pong() {
//!     let dir = tempfile::tempdir().unwrap();
//!     let mut harness = Harness::new(TileWorld::flat(64, 64));
//!     harness.add_mod(ModId::new("Example", "PingPong"), PingPong, dir.path(), dir.path()).unwrap();
//!     harness.join("alice", 10.0, 12.0);
//!     harness.send("alice", "Ping", Some(1), &Ping { n: 41 });
//!     harness.tick();
//!     insta::assert_snapshot!(harness.transcript());
//!     harness.shutdown();
//! }
//! ```
//!
//! The snapshot it writes, once reviewed and accepted, holds:
//!
//! ```text
//! tick 1 alice -> join at (10.0, 12.0)
//! tick 1 alice -> Example:PingPong/Ping #1 {"n":41}
//! tick 1 alice <- Example:PingPong/Pong #1 {"n":42}
//! ```
//!
//! (The sdk is a dylib and cannot run doc tests: this example runs as a test in
//! `tests/tests/harness.rs`. docs/testing.md is the guide.)
//!
//! # The transcript
//!
//! One line per event, `tick <n> <who> <arrow> <what>`, in the order they happened:
//!
//! - what the script did (`->`), in the order it was written, at the start of the tick that
//!   applied it: `join at (10.0, 12.0)`, `move to (11.0, 12.0)`, `Group:Name/Kind #7 {json}`
//!   (a mod message with its request id, when it has one, and its body as compact JSON),
//!   `command "hunt rank"`, `leave`;
//! - what each player received (`<-`), at the end of the tick, player by player in id order,
//!   each in the order of its frame: `Group:Name/Kind #7 {json}`, `Error Refused #7: why`,
//!   `CommandResult ok: text`, `CommandResult error: text`, and the host's other messages in a
//!   short form;
//! - the console (`console -> command "..."`, `console <- CommandResult ok: ...`), at once,
//!   numbered with the last tick run.
//!
//! Line breaks inside a text are written `\n`, so an event is always one line. Nothing in the
//! transcript depends on hash order or timing: the same script gives the same transcript, on
//! either [`Executor`], as long as the mod itself is deterministic.
//!
//! # What the harness does not emulate
//!
//! No network (no handshake, no `Welcome`, no rate limit, no frame size cap), no movement rules
//! ([`Harness::move_to`] teleports: no speed budget, no walkability check), no area of interest
//! (no `PlayerAppeared`/`PlayerMoved`/`PlayerGone`; [`Audience::Near`](crate::Audience::Near) is
//! the exact distance, without the grid's hysteresis), no repeated-request check (a request id
//! sent again is applied again: tests reuse ids freely), no host commands. Permissions are the host's by default: the
//! console holds all, players none ([`Harness::grant_all_permissions`],
//! [`Harness::set_permissions`]). A panic in a mod is not caught: it fails the test.

use std::{
    collections::BTreeMap,
    mem,
    path::{Path, PathBuf},
    sync::Arc,
};

use bevy_ecs::{
    entity::Entity,
    resource::Resource,
    schedule::{IntoScheduleConfigs, Schedules},
    world::World,
};
use bytes::Bytes;
use serde::Serialize;
use veltrix_protocol::{
    Command, ModMessage, PlayerId, ServerMessage, decode_server_frame, encode_value, valid_player_name,
};

use crate::{
    CommandSource, LoadedMod, MemoryStore, Mod, ModContext, ModError, ModId, Position, PostTick, PreTick, Store,
    TickInfo, TileWorld,
    runtime::{
        self, Stage,
        requests::{self, CommandPermissions, PermissionRules},
    },
};

mod stages;
mod transcript;

use stages::{apply_script, commit, deliver};
use transcript::{Line, describe_mod, describe_server, one_line, render};

/// The tick rate of a new harness, the host's default.
pub const DEFAULT_TICK_RATE: u32 = 30;

pub use crate::runtime::Executor;

/// A test's permission rule, `allowed(source, node)`; players also hold the nodes of
/// subcommands made for every player, as in the host.
struct TestPermissions<F>(F);

impl<F: Fn(&CommandSource, &str) -> bool + Send + Sync + 'static> PermissionRules for TestPermissions<F> {
    fn allows(&self, source: &CommandSource, node: &str, everyone: bool) -> bool {
        (self.0)(source, node) || (everyone && matches!(source, CommandSource::Player { .. }))
    }
}

/// A headless server running mods for a test: see the [module documentation](self).
pub struct Harness {
    world: World,
    store: Arc<MemoryStore>,
    mods: Vec<AddedMod>,
    /// Index `id - 1`: ids are given in join order, from 1.
    players: Vec<Scripted>,
    /// Lowercased name to id: a name keeps its id for the whole run, whatever its case.
    ids: BTreeMap<String, PlayerId>,
    /// What the script asked for since the last tick.
    queue: Vec<Input>,
    lines: Vec<Line>,
}

struct AddedMod {
    id: ModId,
    instance: Box<dyn Mod>,
    mod_dir: PathBuf,
    data_dir: PathBuf,
}

/// A scripted player.
struct Scripted {
    name: String,
    /// Online as far as the script goes (its join may not be applied yet).
    online: bool,
    next_request: u32,
    frames: Vec<Bytes>,
    received: Vec<ServerMessage>,
}

/// A scripted action, applied in the next tick's `PreTick`.
pub(super) enum Input {
    Join { id: PlayerId, name: String, at: Position },
    Move { id: PlayerId, to: Position },
    Mod { id: PlayerId, message: ModMessage },
    Command { id: PlayerId, command: Command },
    Leave { id: PlayerId },
}

impl Input {
    fn player(&self) -> PlayerId {
        match self {
            Input::Join { id, .. }
            | Input::Move { id, .. }
            | Input::Mod { id, .. }
            | Input::Command { id, .. }
            | Input::Leave { id } => *id,
        }
    }

    fn describe(&self) -> String {
        match self {
            Input::Join { at, .. } => format!("join at ({:?}, {:?})", at.x, at.y),
            Input::Move { to, .. } => format!("move to ({:?}, {:?})", to.x, to.y),
            Input::Mod { message, .. } => describe_mod(message),
            Input::Command { command, .. } => format!("command {:?}", command.line),
            Input::Leave { .. } => "leave".into(),
        }
    }
}

/// The harness's side of the world: the inputs of this tick, who is in the world, and the
/// frames of the tick.
#[derive(Resource)]
struct Script {
    inputs: Vec<Input>,
    /// Players whose join was applied, by id.
    online: BTreeMap<PlayerId, Entity>,
    /// The frames of this tick, by player in id order, from [`stages::deliver`].
    delivered: Vec<(PlayerId, Bytes)>,
}

impl Harness {
    /// A harness on the single-threaded executor at [`DEFAULT_TICK_RATE`] ticks per second.
    pub fn new(tiles: TileWorld) -> Self {
        Self::with_executor(tiles, Executor::SingleThreaded)
    }

    /// A harness whose schedules run on `executor`.
    pub fn with_executor(tiles: TileWorld, executor: Executor) -> Self {
        // The host's world and pipeline; the script is the input, the transcript the output.
        runtime::init_task_pools();
        let mut world = runtime::new_world(executor, DEFAULT_TICK_RATE, tiles);
        let mut schedules = world.resource_mut::<Schedules>();
        schedules.add_systems(PreTick, apply_script.in_set(Stage::Input));
        schedules.add_systems(PostTick, commit.in_set(Stage::Commit));
        schedules.add_systems(PostTick, deliver.in_set(Stage::Deliver));
        // A store in memory, committed each tick before delivery, as the host's on disk.
        let store = Arc::new(MemoryStore::default());
        world.insert_resource(Store(store.clone()));
        // As the host: the console holds every permission, players none.
        world.insert_resource(CommandPermissions::new(TestPermissions(|source: &CommandSource, _: &str| {
            matches!(source, CommandSource::Console)
        })));
        world.insert_resource(Script { inputs: Vec::new(), online: BTreeMap::new(), delivered: Vec::new() });
        Self {
            world,
            store,
            mods: Vec::new(),
            players: Vec::new(),
            ids: BTreeMap::new(),
            queue: Vec::new(),
            lines: Vec::new(),
        }
    }

    /// Sets the ticks per second ([`TickInfo::rate`] and [`TickInfo::dt`]).
    ///
    /// # Panics
    /// When `rate` is 0.
    pub fn tick_rate(mut self, rate: u32) -> Self {
        let tick = self.current_tick();
        self.world.insert_resource(TickInfo { tick, ..TickInfo::new(rate) });
        self
    }

    /// Adds a mod as the host adds a loaded one: its setup, then its start, each with a
    /// [`ModContext`] on this world, then its registrations committed and a [`LoadedMod`]
    /// (version `0.0.0`) spawned. Add mods in their load order. `data_dir` is created when
    /// missing.
    ///
    /// An error from setup or start is returned and the mod is not added: none of its systems
    /// runs, as in the host. [`Harness::shutdown`] calls the added mods' shutdown.
    pub fn add_mod(&mut self, id: ModId, m: impl Mod, mod_dir: &Path, data_dir: &Path) -> Result<(), ModError> {
        std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: cannot create: {e}", data_dir.display()))?;
        let mut instance: Box<dyn Mod> = Box::new(m);
        let mut ctx = ModContext::new(&mut self.world, &id, mod_dir, data_dir);
        instance.setup(&mut ctx)?;
        let mut pending = ctx.into_pending();
        let mut ctx = ModContext::new(&mut self.world, &id, mod_dir, data_dir);
        instance.start(&mut ctx)?;
        pending.extend(ctx.into_pending());
        ModContext::commit(&mut self.world, pending);
        self.world.spawn(LoadedMod { id: id.to_string(), version: "0.0.0".into() });
        self.mods.push(AddedMod { id, instance, mod_dir: mod_dir.to_path_buf(), data_dir: data_dir.to_path_buf() });
        Ok(())
    }

    /// Calls every added mod's shutdown, in reverse order, as the host does at exit.
    pub fn shutdown(mut self) {
        while let Some(mut m) = self.mods.pop() {
            let mut ctx = ModContext::new(&mut self.world, &m.id, &m.mod_dir, &m.data_dir);
            m.instance.shutdown(&mut ctx);
        }
    }

    /// Who holds which permission from now on: `allowed(source, node)`. The default is the
    /// host's: the console holds every permission, players none but the nodes of subcommands
    /// made for every player (`hunt rank`), which they always hold here.
    pub fn set_permissions(&mut self, allowed: impl Fn(&CommandSource, &str) -> bool + Send + Sync + 'static) {
        self.world.insert_resource(CommandPermissions::new(TestPermissions(allowed)));
    }

    /// Every player holds every permission from now on, to test the commands players type.
    pub fn grant_all_permissions(&mut self) {
        self.set_permissions(|_, _| true);
    }

    /// A player joins at (x, y) in the next tick: an entity with [`Player`] and [`Position`].
    /// Returns its id: 1, 2, 3... in order of first join; a name that joins again keeps its id
    /// (names are compared without case, as the host does).
    ///
    /// # Panics
    /// When the name is not a valid player name or the player is online.
    pub fn join(&mut self, name: &str, x: f32, y: f32) -> PlayerId {
        assert!(valid_player_name(name), "{name:?} is not a valid player name (1 to 16 letters, digits or _)");
        let id = match self.ids.get(&name.to_lowercase()) {
            Some(&id) => {
                let player = &mut self.players[index(id)];
                assert!(!player.online, "{name} is online already");
                player.online = true;
                player.name = name.to_string();
                id
            }
            None => {
                self.players.push(Scripted {
                    name: name.to_string(),
                    online: true,
                    next_request: 1,
                    frames: Vec::new(),
                    received: Vec::new(),
                });
                let id = self.players.len() as PlayerId;
                self.ids.insert(name.to_lowercase(), id);
                id
            }
        };
        self.queue.push(Input::Join { id, name: name.to_string(), at: Position { x, y } });
        id
    }

    /// The player is at (x, y) from the next tick on: a teleport. The harness tests a mod's
    /// logic, not the host's movement rules, so there is no speed budget and no walkability
    /// check, and no `PositionCorrected`.
    ///
    /// # Panics
    /// When the player is not online.
    pub fn move_to(&mut self, name: &str, x: f32, y: f32) {
        let id = self.online_id(name);
        self.queue.push(Input::Move { id, to: Position { x, y } });
    }

    /// The player sends the mod message `kind` of the namespace of the one mod added, with the
    /// request id `request`. The message is encoded as a client encodes it (MessagePack, named
    /// fields) and delivered in the next tick as the host delivers it: a kind no mod registered,
    /// or a body that does not decode as its type, is answered with the host's `Error`.
    ///
    /// # Panics
    /// When the player is not online, or when not exactly one mod was added (name the
    /// namespace with [`Harness::send_to`]).
    pub fn send<T: Serialize + ?Sized>(&mut self, name: &str, kind: &str, request: Option<u32>, message: &T) {
        let ns = match self.mods.as_slice() {
            [only] => only.id.to_string(),
            mods => panic!("send needs exactly one mod added ({} are): name the namespace with send_to", mods.len()),
        };
        self.send_to(name, &ns, kind, request, message);
    }

    /// [`Harness::send`] to the namespace `ns` (a mod's id, `Group:Name`).
    pub fn send_to<T: Serialize + ?Sized>(
        &mut self,
        name: &str,
        ns: &str,
        kind: &str,
        request: Option<u32>,
        message: &T,
    ) {
        let mut body = Vec::with_capacity(32);
        encode_value(message, &mut body);
        self.send_bytes(name, ns, kind, request, body);
    }

    /// Sends a mod message whose body is `body` as it is: to test what a mod does with bytes a
    /// well-behaved client would not send.
    pub fn send_bytes(&mut self, name: &str, ns: &str, kind: &str, request: Option<u32>, body: Vec<u8>) {
        let id = self.online_id(name);
        let message = ModMessage { ns: ns.to_string(), kind: kind.to_string(), request, body };
        self.queue.push(Input::Mod { id, message });
    }

    /// The player types a command, run in the next tick with the player's permissions (none by
    /// default, as in the host) and answered with a `CommandResult`.
    ///
    /// # Panics
    /// When the player is not online.
    pub fn command(&mut self, name: &str, line: &str) {
        let id = self.online_id(name);
        let player = &mut self.players[index(id)];
        let request = player.next_request;
        player.next_request += 1;
        self.queue.push(Input::Command { id, command: Command { request, line: line.to_string() } });
    }

    /// The player leaves in the next tick: its entity is despawned; messages to it in that
    /// tick are lost, as for a connection that closed.
    ///
    /// # Panics
    /// When the player is not online.
    pub fn leave(&mut self, name: &str) {
        let id = self.online_id(name);
        self.players[index(id)].online = false;
        self.queue.push(Input::Leave { id });
    }

    /// Runs a command on the console, at once (between ticks), with the console's permissions.
    /// Anything it sends players goes out at the end of the next tick.
    pub fn console(&mut self, line: &str) -> Result<String, String> {
        let tick = self.current_tick();
        self.record(tick, None, format!("console -> command {line:?}"));
        let result = requests::run_command_line(&mut self.world, &CommandSource::Console, line);
        let text = match &result {
            Ok(text) => format!("console <- CommandResult ok: {}", one_line(text)),
            Err(text) => format!("console <- CommandResult error: {}", one_line(text)),
        };
        self.record(tick, None, text);
        result
    }

    /// Runs one tick: applies the inputs given since the last one (in `PreTick`), runs
    /// `PreTick`, `Tick` and `PostTick`, commits the tick's changes to the store, then sends
    /// each player with something new its one frame of the tick, and clears the change
    /// trackers.
    pub fn tick(&mut self) {
        let tick = self.current_tick() + 1;
        self.world.resource_mut::<TickInfo>().tick = tick;
        let inputs = mem::take(&mut self.queue);
        for input in &inputs {
            self.record(tick, Some(input.player()), format!("-> {}", input.describe()));
        }
        self.world.resource_mut::<Script>().inputs = inputs;
        runtime::run_tick(&mut self.world, tick);
        self.record_frames(tick);
    }

    /// The harness's store (in memory): what the mod saved so far; set its `fail` switch to see
    /// what the mod does when saving fails. A new harness given this store (see
    /// [`Harness::with_store`]) is the mod after a restart.
    pub fn store(&self) -> Arc<MemoryStore> {
        self.store.clone()
    }

    /// Uses `store` instead of an empty one (add mods after this).
    pub fn with_store(mut self, store: Arc<MemoryStore>) -> Self {
        self.world.insert_resource(Store(store.clone()));
        self.store = store;
        self
    }

    /// Runs `n` ticks.
    pub fn run_ticks(&mut self, n: u64) {
        for _ in 0..n {
            self.tick();
        }
    }

    /// Runs ticks until tick `tick` has run (none when it has already).
    pub fn run_until(&mut self, tick: u64) {
        while self.current_tick() < tick {
            self.tick();
        }
    }

    /// The last tick run; 0 before the first.
    pub fn current_tick(&self) -> u64 {
        self.world.resource::<TickInfo>().tick
    }

    /// The whole transcript, one line per event, each ending with a line break.
    pub fn transcript(&self) -> String {
        render(self.lines.iter())
    }

    /// The lines of one player: what its script did and what it received.
    ///
    /// # Panics
    /// When no player of that name ever joined.
    pub fn transcript_of(&self, name: &str) -> String {
        let id = self.id(name);
        render(self.lines.iter().filter(|l| l.player == Some(id)))
    }

    /// Forgets the transcript so far (frames and received messages are kept): to snapshot only
    /// what follows a setup.
    pub fn clear_transcript(&mut self) {
        self.lines.clear();
    }

    /// The frames the player received, as the bytes a client would read, one per tick with
    /// something for it.
    ///
    /// # Panics
    /// When no player of that name ever joined.
    pub fn frames(&self, name: &str) -> &[Bytes] {
        &self.players[index(self.id(name))].frames
    }

    /// Every message the player received, decoded, in order.
    ///
    /// # Panics
    /// When no player of that name ever joined.
    pub fn received(&self, name: &str) -> &[ServerMessage] {
        &self.players[index(self.id(name))].received
    }

    /// The player's id, when it ever joined.
    pub fn player_id(&self, name: &str) -> Option<PlayerId> {
        self.ids.get(&name.to_lowercase()).copied()
    }

    /// The player's entity, while it is in the world (from the tick that applied its join to
    /// the one that applied its leave).
    pub fn player_entity(&self, name: &str) -> Option<Entity> {
        let id = self.player_id(name)?;
        self.world.resource::<Script>().online.get(&id).copied()
    }

    pub fn world(&self) -> &World {
        &self.world
    }

    pub fn world_mut(&mut self) -> &mut World {
        &mut self.world
    }

    fn id(&self, name: &str) -> PlayerId {
        self.player_id(name).unwrap_or_else(|| panic!("no player named {name} ever joined"))
    }

    fn online_id(&self, name: &str) -> PlayerId {
        let id = self.id(name);
        assert!(self.players[index(id)].online, "{name} is not online");
        id
    }

    fn record(&mut self, tick: u64, player: Option<PlayerId>, what: String) {
        let text = match player {
            Some(id) => format!("tick {tick} {} {what}", self.players[index(id)].name),
            None => format!("tick {tick} {what}"),
        };
        self.lines.push(Line { player, text });
    }

    /// Records what each player received this tick, in player id order.
    fn record_frames(&mut self, tick: u64) {
        let delivered = mem::take(&mut self.world.resource_mut::<Script>().delivered);
        for (id, frame) in delivered {
            let mut seen = Vec::new();
            match decode_server_frame(&frame) {
                Ok(decoded) => {
                    seen.extend(decoded.frame.messages.iter().map(|m| format!("<- {}", describe_server(m))));
                    if decoded.skipped > 0 {
                        seen.push(format!("<- ({} message(s) a client cannot decode)", decoded.skipped));
                    }
                    self.players[index(id)].received.extend(decoded.frame.messages);
                }
                Err(e) => seen.push(format!("<- (a frame a client cannot decode: {e})")),
            }
            for what in seen {
                self.record(tick, Some(id), what);
            }
            self.players[index(id)].frames.push(frame);
        }
    }
}

fn index(id: PlayerId) -> usize {
    (id - 1) as usize
}
