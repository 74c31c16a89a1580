//! Crashes under load: the real server, real clients digging as fast as the rules allow, and
//! SIGKILL at random moments, 50 times (`VELTRIX_CRASH_KILLS=N` for a longer run), the server
//! restarted in the same root each time. After a clean last stop, the store is opened directly
//! and checked against what the clients were told:
//!
//! 1. a FirstFinder vault has at most one claimant, its `first` consistent;
//! 2. the event log grants a FirstFinder vault once, and a PerPlayer vault once per player; it
//!    has a `VaultOpened` for a FirstFinder vault exactly when the vault was claimed, once, in
//!    the tick of its grant and just before it, naming its first claimant (and none for
//!    the other claim rules);
//! 3. each player's inventory plus pending rewards is the sum of its grants, item by item;
//! 4. every `LootGranted` and `VaultClaimed` a client received is the log's event of its `Seq`;
//! 5. the log's sequence numbers are 1..N without gaps, and the hunt's `next_seq` is N + 1;
//! 6. every grant of the log reached its player: a dig left unanswered by a kill is sent again
//!    with its request id after the restart, and a repeat is answered as the first time;
//! 7. no client has a gap: each bot catches up on every join (`CatchUp {After}`, 0 the first
//!    time a name joins, so a name is owed every event that concerns it), and for each name,
//!    every event of the log that concerns its player up to the last `CaughtUp` it got
//!    reached it, live or in a catch-up after a rejoin. Before leaving, a bot catches up once
//!    more: that brings nothing new (what came live had no gap), and extends the check to
//!    the end of its last session. A `Snapshot` is a fault of the test's setup
//!    (`RetainedEvents` too small for the run).
//!
//! A bot's `After` is the highest `Seq` it saw while in sync: from the `CaughtUp` of its
//! join's catch-up on (events that came live before it on a connection killed before it came
//! do not count, or the catch-up after the next join would skip what came before them).
//! Repeats are dropped by `Seq`.
//!
//! The schedule is random: the seed is printed, and `VELTRIX_CRASH_SEED=S` runs it again (as
//! far as timing allows). Run with `-- --nocapture` to see the counts checked.
//!
//! Above 600 lines on purpose: one scenario (load, kill, restart, check) with the bookkeeping and
//! checks only it uses, read together with the run they serve.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use treasure_hunt::persist::{
    CLAIMS, ClaimRecord, EVENTS, EventRecord, HUNTS, HuntEvent, HuntRecord, PLAYERS, PlayerRecord,
};
use treasure_hunt_ecs::hunt::Claimant;
use treasure_hunt_wire::{CatchUp, CaughtUp, Dig, ItemStack, LootGranted, Snapshot, Stack, VaultClaimed};
use veltrix_client::{Client, decode_mod_body, hello};
use veltrix_protocol::{PlayerId, ServerFrame, ServerMessage};
use veltrix_sdk::Store;
use veltrix_tests::TestServer;

const NS: &str = "Veltrix:TreasureHunt";
const MOD_DIR: &str = "mods/Veltrix_TreasureHunt";
const HUNT: &str = "Test";
/// Kills in a default run.
const KILLS: usize = 50;
/// Bots digging at once.
const BOTS: usize = 6;
/// How long the load runs before each kill, in milliseconds (from the server being ready).
const RUN_MS: std::ops::Range<u64> = 50..400;
/// The spawn, in the middle of a 64 x 64 flat world.
const SPAWN: (f32, f32) = (32.5, 32.5);
/// Where bots stand to dig a cluster of vaults: the spawn, and one move east or west. Each
/// cluster is the 5 x 5 tiles around its stand point, all within the dig reach of 3 tiles.
const STANDS: [(f32, f32); 3] = [SPAWN, (38.5, 32.5), (26.5, 32.5)];
/// Dig reach (the mod's default).
const REACH: f32 = 3.0;
/// Players move at most this many tiles per second (`World.MaxSpeed`'s default), and may
/// bank one second of it.
const MAX_SPEED: f32 = 8.0;

// ---- a small seeded generator (the schedule only needs to be varied, and printable) ----

struct Rng(u64);

impl Rng {
    /// splitmix64.
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn range(&mut self, range: std::ops::Range<u64>) -> u64 {
        range.start + self.next() % (range.end - range.start)
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.range(0..i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

// ---- the hunt ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    FirstFinder,
    PerPlayer,
    FirstFinderThenPerPlayer,
}

impl Rule {
    fn name(self) -> &'static str {
        match self {
            Rule::FirstFinder => "FirstFinder",
            Rule::PerPlayer => "PerPlayer",
            Rule::FirstFinderThenPerPlayer => "FirstFinderThenPerPlayer",
        }
    }
}

#[derive(Debug, Clone)]
struct VaultSpec {
    id: String,
    tile: (u32, u32),
    rule: Rule,
    effort: u32,
    table: &'static str,
    consolation: Option<&'static str>,
    /// Where a bot stands to reach it.
    stand: (f32, f32),
}

/// Items and their MaxStack: small, so four slots fill after a few claims and the rest waits in
/// pending rewards.
const ITEMS: &[(&str, u32)] = &[("Coin", 20), ("Gem", 3), ("Crown", 1), ("Shell", 10)];

/// Loot tables, each always yielding these stacks.
const TABLES: &[(&str, &[(&str, u32)])] = &[
    ("Jackpot", &[("Crown", 1), ("Coin", 7)]),
    ("Gems", &[("Gem", 2), ("Shell", 3)]),
    ("Coins", &[("Coin", 4)]),
    ("Shells", &[("Shell", 2)]),
];

fn table(id: &str) -> &'static [(&'static str, u32)] {
    TABLES.iter().find(|(t, _)| *t == id).map(|(_, stacks)| *stacks).expect("a table of the pack")
}

/// 75 vaults: per cluster 10 FirstFinder, 12 PerPlayer and 3 FirstFinderThenPerPlayer, spread
/// over its 25 tiles, with efforts of 1 to 3 digs.
fn vaults() -> Vec<VaultSpec> {
    let mut out = Vec::new();
    for (c, &stand) in STANDS.iter().enumerate() {
        let (cx, cy) = ((stand.0 - 0.5) as i32, (stand.1 - 0.5) as i32);
        for k in 0..25 {
            let (dx, dy) = (k % 5 - 2, k / 5 - 2);
            let rank = (k * 7) % 25;
            let rule = match rank {
                0..10 => Rule::FirstFinder,
                10..22 => Rule::PerPlayer,
                _ => Rule::FirstFinderThenPerPlayer,
            };
            let (table, consolation) = match (rule, k % 2) {
                (Rule::FirstFinder, 0) => ("Jackpot", None),
                (Rule::FirstFinder, _) => ("Gems", None),
                (Rule::PerPlayer, 0) => ("Coins", None),
                (Rule::PerPlayer, _) => ("Gems", None),
                (Rule::FirstFinderThenPerPlayer, _) => ("Jackpot", Some("Shells")),
            };
            out.push(VaultSpec {
                id: format!("V{c}_{k}"),
                tile: ((cx + dx) as u32, (cy + dy) as u32),
                rule,
                effort: 1 + (k as u32 + c as u32) % 3,
                table,
                consolation,
                stand,
            });
        }
    }
    out
}

fn distance((ax, ay): (f32, f32), (bx, by): (f32, f32)) -> f32 {
    ((ax - bx).powi(2) + (ay - by).powi(2)).sqrt()
}

fn tile_centre((x, y): (u32, u32)) -> (f32, f32) {
    (x as f32 + 0.5, y as f32 + 0.5)
}

/// A flat 64 x 64 world (quick to start), the hunt `Test` and its pack; four inventory slots.
fn server(vaults: &[VaultSpec]) -> TestServer {
    let server = TestServer::new().with_treasure_hunt("Veltrix_TreasureHunt");
    let data = server.root().join(MOD_DIR).join("assets/Server");
    std::fs::remove_dir_all(&data).unwrap();
    let file = |path: &str, value: Value| server.write(&format!("{MOD_DIR}/assets/Server/{path}"), &value.to_string());
    for (item, max_stack) in ITEMS {
        file(&format!("Item/Items/{item}.json"), json!({"MaxStack": max_stack}));
    }
    for (id, stacks) in TABLES {
        let single = |(item, n): &(&str, u32)| {
            let stack = json!({"ItemId": item, "QuantityMin": n, "QuantityMax": n});
            json!({"Type": "Single", "Item": stack})
        };
        let containers: Vec<Value> = stacks.iter().map(single).collect();
        file(&format!("Drops/{id}.json"), json!({"Container": {"Type": "Multiple", "Containers": containers}}));
    }
    let specs: Vec<Value> = vaults
        .iter()
        .map(|v| {
            let mut spec = json!({"Id": v.id, "At": {"X": v.tile.0, "Y": v.tile.1}, "Claim": v.rule.name(),
                "LootTable": v.table, "DigEffort": v.effort});
            if let Some(consolation) = v.consolation {
                spec["ConsolationTable"] = json!(consolation);
            }
            spec
        })
        .collect();
    // A vault no bot digs: the hunt does not end when the bots have claimed theirs.
    let mut specs = specs;
    specs.push(json!({"Id": "Far_Away", "At": {"X": 63, "Y": 0}, "LootTable": "Coins"}));
    file(&format!("TreasureHunt/Hunts/{HUNT}.json"), json!({"Seed": 11, "Vaults": specs}));
    server.write(
        &format!("{MOD_DIR}/config.json"),
        &json!({"Hunt": HUNT, "HotReload": false, "InventorySlots": 4}).to_string(),
    );
    let world = json!({"Terrain": "Flat", "Width": 64, "Depth": 64, "SpawnX": SPAWN.0, "SpawnY": SPAWN.1});
    server.write("config.json", &json!({ "World": world }).to_string());
    server
}

// ---- the bots ----

/// How long a bot waits for the answer to a `CatchUp`.
const CATCH_UP_WAIT: Duration = Duration::from_secs(10);

/// How a hunt event reached a bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    /// As it happened (or as the answer to a dig repeated after a restart).
    Live,
    /// In the catch-up after a join: before the `CaughtUp` in its frame.
    CatchUp,
    /// In the catch-up a bot makes before leaving.
    Leaving,
}

/// What a hunt event said.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Told {
    Loot { vault: String, items: Vec<(String, u32)>, pending: Vec<(String, u32)> },
    Claimed { vault: String, by: String },
}

/// A hunt event (`LootGranted`, `VaultClaimed`) a bot received.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Received {
    name: String,
    player: PlayerId,
    seq: u64,
    /// The dig a `LootGranted` answered.
    request: Option<u32>,
    how: How,
    /// The first time this name saw this `Seq` (a repeat is dropped).
    new: bool,
    told: Told,
}

/// What the bots share with the kill loop.
#[derive(Default)]
struct Shared {
    /// The running server's address; `None` while it is down.
    addr: Mutex<Option<String>>,
    stop: AtomicBool,
}

impl Shared {
    fn addr(&self) -> Option<String> {
        self.addr.lock().unwrap().clone()
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// What one bot did and saw.
#[derive(Debug, Default)]
struct BotReport {
    received: Vec<Received>,
    /// Every player id the server gave each name.
    ids: BTreeMap<String, BTreeSet<PlayerId>>,
    /// The last `CaughtUp` `Seq` each name got: every event up to it that concerns the name's
    /// player reached it.
    caught_up_to: BTreeMap<String, u64>,
    /// Snapshots received (the retention window is too small for the run).
    snapshots: Vec<String>,
    joins: u64,
    drops: u64,
    digs: u64,
    /// Digs sent again, with their request id, after a reconnect.
    resent: u64,
    moves: u64,
    /// `CatchUp`s sent after a join, and how many of them a kill left unanswered.
    catch_ups: u64,
    interrupted: u64,
    /// `CatchUp`s sent before leaving.
    leaving: u64,
    /// Events first received in a catch-up after a join.
    caught_up: u64,
    /// Events received again (dropped by `Seq`).
    repeats: u64,
    vault_claimed: u64,
    loot_granted: u64,
    refusals: BTreeMap<&'static str, u64>,
    /// Refusals (and answers) no bot should ever get.
    unexpected: Vec<String>,
}

/// How a session ended.
enum End {
    /// The connection went away (the server was killed).
    Dropped,
    /// Every vault is done for this name: the bot comes back as a new player.
    Retired,
    Stopped,
}

/// What the answer to a dig said about its vault.
enum Answer {
    /// Claimed, or refused as claimed: done with this vault.
    Done,
    /// Not finished yet (effort so far), or refused for a reason that may pass.
    Again,
}

/// One bot: joins as `b<i>g<generation>`, digs its vaults in a random order until each one is
/// claimed or refused as already claimed, then comes back under the next generation's name.
/// A dropped connection is joined again under the same name once the server is back, and a
/// dig left unanswered is sent again with its request id (the server answers a repeat from
/// the store, or applies it if it never was). Each join starts with a catch-up, each clean
/// leave ends with one.
struct Bot {
    index: usize,
    generation: usize,
    rng: Rng,
    vaults: Arc<Vec<VaultSpec>>,
    /// Vaults still to dig, in the bot's order.
    todo: Vec<usize>,
    /// The dig sent and not answered yet: request id and vault.
    in_flight: Option<(u32, usize)>,
    /// Where the player is, as far as the bot knows.
    position: (f32, f32),
    /// When the player last moved (moves spend a budget that refills at `MAX_SPEED`).
    last_move: Instant,
    /// The `Seq`s this name saw, and the highest of them.
    seen: BTreeSet<u64>,
    highest: u64,
    /// Whether this connection's catch-up was answered: from then on, what comes live has no
    /// gap, and `after` follows `highest`.
    synced: bool,
    /// The `After` of the next catch-up: the highest `Seq` seen while in sync.
    after: u64,
    /// The `CatchUp` sent and not answered yet: request id, and why.
    catching_up: Option<(u32, How)>,
    report: BotReport,
}

impl Bot {
    fn new(index: usize, seed: u64, vaults: Arc<Vec<VaultSpec>>) -> Self {
        let mut bot = Bot {
            index,
            generation: 0,
            rng: Rng(seed),
            vaults,
            todo: Vec::new(),
            in_flight: None,
            position: SPAWN,
            last_move: Instant::now(),
            seen: BTreeSet::new(),
            highest: 0,
            synced: false,
            after: 0,
            catching_up: None,
            report: BotReport::default(),
        };
        bot.todo = bot.fresh_todo();
        bot
    }

    fn fresh_todo(&mut self) -> Vec<usize> {
        let mut todo: Vec<usize> = (0..self.vaults.len()).collect();
        self.rng.shuffle(&mut todo);
        todo
    }

    fn name(&self) -> String {
        format!("b{}g{}", self.index, self.generation)
    }

    async fn run(mut self, shared: Arc<Shared>) -> BotReport {
        // Stopping waits for the dig in flight: its answer is what the test checks.
        while !(shared.stopping() && self.in_flight.is_none()) {
            let Some(addr) = shared.addr() else {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            };
            let name = self.name();
            let connected = Client::connect_with_timeout(&addr, hello(&name), Duration::from_secs(2)).await;
            let Ok((client, welcome)) = connected else {
                // Killed meanwhile, or not listening yet: wait for the next address.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            self.report.joins += 1;
            self.report.ids.entry(name).or_default().insert(welcome.player);
            self.position = (welcome.x, welcome.y);
            // A joining player may move a second's worth at once.
            self.last_move = Instant::now() - Duration::from_secs(1);
            match self.session(client, &shared).await {
                End::Dropped => self.report.drops += 1,
                End::Retired => {
                    // A new name, a new player: it is owed every event from the first.
                    self.generation += 1;
                    self.todo = self.fresh_todo();
                    self.seen.clear();
                    self.highest = 0;
                    self.after = 0;
                }
                End::Stopped => break,
            }
        }
        self.report
    }

    async fn session(&mut self, mut client: Client, shared: &Shared) -> End {
        // What was missed first (everything, on a name's first join); then the dig in flight.
        if let Err(end) = self.catch_up(&mut client, How::CatchUp).await {
            return end;
        }
        loop {
            let (request, vault) = match self.in_flight {
                Some((request, vault)) => {
                    let tile = self.vaults[vault].tile;
                    if client.send_mod(NS, "Dig", Some(request), &Dig { x: tile.0, y: tile.1 }).await.is_err() {
                        return End::Dropped;
                    }
                    self.report.resent += 1;
                    (request, vault)
                }
                None => {
                    if shared.stopping() {
                        return self.leave(client, End::Stopped).await;
                    }
                    if self.todo.is_empty() {
                        return self.leave(client, End::Retired).await;
                    }
                    let Some(vault) = self.next_vault(&mut client).await else { continue };
                    let vault = match vault {
                        Ok(vault) => vault,
                        Err(end) => return end,
                    };
                    let request = client.next_request();
                    self.in_flight = Some((request, vault));
                    let tile = self.vaults[vault].tile;
                    if client.send_mod(NS, "Dig", Some(request), &Dig { x: tile.0, y: tile.1 }).await.is_err() {
                        return End::Dropped;
                    }
                    self.report.digs += 1;
                    (request, vault)
                }
            };
            match self.answer(&mut client, request).await {
                Ok(Some(answer)) => {
                    self.in_flight = None;
                    let slot = self.todo.iter().position(|&v| v == vault).expect("a vault to do");
                    match answer {
                        Answer::Done => {
                            self.todo.remove(slot);
                        }
                        // Keep at it most of the time; sometimes turn to another vault.
                        Answer::Again if self.rng.range(0..4) == 0 => {
                            let v = self.todo.remove(slot);
                            self.todo.push(v);
                        }
                        Answer::Again => {}
                    }
                }
                // No answer in time: the same dig again.
                Ok(None) => {}
                Err(end) => return end,
            }
        }
    }

    /// A clean leave: a last catch-up (it should bring nothing new), then the close.
    async fn leave(&mut self, mut client: Client, end: End) -> End {
        if let Err(end) = self.catch_up(&mut client, How::Leaving).await {
            return end;
        }
        let _ = client.close().await;
        end
    }

    /// Sends `CatchUp {After}` and handles what comes until its answer (`CaughtUp`, or a
    /// `Snapshot`).
    async fn catch_up(&mut self, client: &mut Client, how: How) -> Result<(), End> {
        let request = client.next_request();
        self.catching_up = Some((request, how));
        match how {
            How::CatchUp => {
                self.synced = false;
                self.report.catch_ups += 1;
            }
            How::Leaving => self.report.leaving += 1,
            How::Live => unreachable!("a catch-up is not live"),
        }
        if client.send_mod(NS, "CatchUp", Some(request), &CatchUp { after: self.after }).await.is_err() {
            return Err(self.dropped_catching_up());
        }
        let deadline = tokio::time::Instant::now() + CATCH_UP_WAIT;
        while self.catching_up.is_some() {
            let frame = match tokio::time::timeout_at(deadline, client.next_frame()).await {
                Err(_) => {
                    let after = self.after;
                    self.report
                        .unexpected
                        .push(format!("{}: no answer to CatchUp {{After: {after}}} in {CATCH_UP_WAIT:?}", self.name()));
                    self.catching_up = None;
                    return Err(End::Dropped);
                }
                Ok(Ok(Some(frame))) => frame,
                Ok(Ok(None) | Err(_)) => return Err(self.dropped_catching_up()),
            };
            self.frame(client.player(), frame, None);
        }
        Ok(())
    }

    fn dropped_catching_up(&mut self) -> End {
        if let Some((_, How::CatchUp)) = self.catching_up.take() {
            self.report.interrupted += 1;
        }
        End::Dropped
    }

    /// The first vault in the bot's order within reach. When none is, walks towards the first
    /// one's stand (by the spawn when it is farther than a move), waiting for the move budget
    /// first; `None` after a move or a wait, to look again.
    async fn next_vault(&mut self, client: &mut Client) -> Option<Result<usize, End>> {
        let reachable = |v: &usize| distance(self.position, tile_centre(self.vaults[*v].tile)) <= REACH - 0.05;
        if let Some(&vault) = self.todo.iter().find(|v| reachable(v)) {
            return Some(Ok(vault));
        }
        let target = self.vaults[self.todo[0]].stand;
        let to = if distance(self.position, target) > MAX_SPEED - 1.0 { SPAWN } else { target };
        let needed = distance(self.position, to) + 0.5;
        let banked = (self.last_move.elapsed().as_secs_f32() * MAX_SPEED).min(MAX_SPEED);
        if banked < needed {
            let wait = Duration::from_secs_f32((needed - banked) / MAX_SPEED);
            return self.read_for(client, wait).await.err().map(Err);
        }
        if client.move_to(to.0, to.1).await.is_err() {
            return Some(Err(End::Dropped));
        }
        self.report.moves += 1;
        self.last_move = Instant::now();
        self.position = to;
        None
    }

    /// Reads until the answer to dig `request` comes (`None` if none comes in 3 seconds),
    /// handling everything else that comes.
    async fn answer(&mut self, client: &mut Client, request: u32) -> Result<Option<Answer>, End> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        loop {
            let frame = match tokio::time::timeout_at(deadline, client.next_frame()).await {
                Err(_) => return Ok(None),
                Ok(Ok(Some(frame))) => frame,
                Ok(Ok(None) | Err(_)) => return Err(End::Dropped),
            };
            let found = self.frame(client.player(), frame, Some(request));
            if found.is_some() {
                return Ok(found);
            }
        }
    }

    /// Reads and handles whatever comes for `wait`.
    async fn read_for(&mut self, client: &mut Client, wait: Duration) -> Result<(), End> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = match tokio::time::timeout_at(deadline, client.next_frame()).await {
                Err(_) => return Ok(()),
                Ok(Ok(Some(frame))) => frame,
                Ok(Ok(None) | Err(_)) => return Err(End::Dropped),
            };
            self.frame(client.player(), frame, None);
        }
    }

    /// Handles a frame's messages in order, and returns what they said about dig `request`.
    /// The catch-up's events come in the frame of its answer, before it (the server answers a
    /// catch-up before it logs the tick's events); every other event came live.
    fn frame(&mut self, player: PlayerId, frame: ServerFrame, request: Option<u32>) -> Option<Answer> {
        let answer = self.catching_up.and_then(|(c, _)| frame.messages.iter().position(|m| answers_catch_up(m, c)));
        let mut found = None;
        for (i, message) in frame.messages.into_iter().enumerate() {
            let how = match (self.catching_up, answer) {
                (Some((_, how)), Some(at)) if i < at => how,
                _ => How::Live,
            };
            if let Some(answer) = self.handle(player, message, request, how) {
                found = Some(answer);
            }
        }
        found
    }

    /// Records a hunt event (dropping a repeat by `Seq`).
    fn record(&mut self, player: PlayerId, seq: u64, request: Option<u32>, how: How, told: Told) {
        let new = self.seen.insert(seq);
        self.highest = self.highest.max(seq);
        if self.synced {
            self.after = self.highest;
        }
        if !new {
            self.report.repeats += 1;
        } else if how == How::CatchUp {
            self.report.caught_up += 1;
        }
        self.report.received.push(Received { name: self.name(), player, seq, request, how, new, told });
    }

    /// Records hunt events, follows corrections and catch-ups, and returns what a message says
    /// about dig `request`.
    fn handle(&mut self, player: PlayerId, message: ServerMessage, request: Option<u32>, how: How) -> Option<Answer> {
        let answers = |r: Option<u32>| request.is_some() && r == request;
        let catch_up = self.catching_up.map(|(c, _)| c);
        match message {
            ServerMessage::Mod(m) if m.ns == NS && m.kind == "LootGranted" => {
                let granted: LootGranted = decode_mod_body(&m).expect("LootGranted decodes");
                let stacks = |s: &[Stack]| s.iter().map(|s| (s.item.clone(), s.quantity)).collect();
                let told = Told::Loot {
                    vault: granted.vault,
                    items: stacks(&granted.items),
                    pending: stacks(&granted.pending),
                };
                self.report.loot_granted += 1;
                self.record(player, granted.seq, m.request, how, told);
                answers(m.request).then_some(Answer::Done)
            }
            ServerMessage::Mod(m) if m.ns == NS && m.kind == "VaultClaimed" => {
                let claimed: VaultClaimed = decode_mod_body(&m).expect("VaultClaimed decodes");
                self.report.vault_claimed += 1;
                self.record(player, claimed.seq, None, how, Told::Claimed { vault: claimed.vault, by: claimed.by });
                None
            }
            ServerMessage::Mod(m) if m.ns == NS && (m.kind == "CaughtUp" || m.kind == "Snapshot") => {
                if catch_up.is_none() || m.request != catch_up {
                    self.report.unexpected.push(format!("{}: a {} for no catch-up: {m:?}", self.name(), m.kind));
                    return None;
                }
                self.catching_up = None;
                if m.kind == "CaughtUp" {
                    let caught_up: CaughtUp = decode_mod_body(&m).expect("CaughtUp decodes");
                    let to = self.report.caught_up_to.entry(self.name()).or_default();
                    *to = (*to).max(caught_up.seq);
                } else {
                    let snapshot: Snapshot = decode_mod_body(&m).expect("Snapshot decodes");
                    let after = self.after;
                    self.report.snapshots.push(format!("{} after {after}: {snapshot:?}", self.name()));
                }
                // Everything up to here is in: what comes live from now on has no gap.
                self.synced = true;
                self.after = self.highest;
                None
            }
            ServerMessage::Mod(m) if m.ns == NS && m.kind == "DigProgress" => {
                answers(m.request).then_some(Answer::Again)
            }
            ServerMessage::PositionCorrected(c) => {
                self.position = (c.x, c.y);
                None
            }
            ServerMessage::Error(e) if catch_up.is_some() && e.request == catch_up => {
                self.report.unexpected.push(format!("{}: CatchUp refused: {e:?}", self.name()));
                self.catching_up = None;
                None
            }
            ServerMessage::Error(e) if answers(e.request) => {
                let (kind, done) = if e.message.starts_with("already claimed") {
                    ("already claimed", true)
                } else if e.message.starts_with("out of reach") {
                    ("out of reach", false)
                } else if e.message == veltrix_sdk::StoreHealth::REFUSAL {
                    ("cannot save", false)
                } else if e.message.starts_with("you already dug this tick") {
                    ("already dug this tick", false)
                } else {
                    self.report.unexpected.push(format!("{}: {e:?}", self.name()));
                    ("other", false)
                };
                *self.report.refusals.entry(kind).or_default() += 1;
                Some(if done { Answer::Done } else { Answer::Again })
            }
            _ => None,
        }
    }
}

/// Whether `message` answers catch-up `request`.
fn answers_catch_up(message: &ServerMessage, request: u32) -> bool {
    match message {
        ServerMessage::Mod(m) => {
            m.ns == NS && (m.kind == "CaughtUp" || m.kind == "Snapshot") && m.request == Some(request)
        }
        ServerMessage::Error(e) => e.request == Some(request),
        _ => false,
    }
}

// ---- the test ----

/// The schedule's seed: `VELTRIX_CRASH_SEED`, or the clock.
fn seed() -> u64 {
    std::env::var("VELTRIX_CRASH_SEED").ok().map_or_else(
        || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64,
        |v| v.parse().expect("a number"),
    )
}

/// Tells the bots to stop and waits for their reports (each finishes the dig in flight first).
fn stop_bots(
    runtime: &tokio::runtime::Runtime,
    shared: &Shared,
    bots: Vec<tokio::task::JoinHandle<BotReport>>,
) -> Vec<BotReport> {
    shared.stop.store(true, Ordering::Relaxed);
    runtime.block_on(async {
        let mut reports = Vec::new();
        for bot in bots {
            reports.push(tokio::time::timeout(Duration::from_secs(30), bot).await.expect("a bot stops").unwrap());
        }
        reports
    })
}

#[test]
fn a_server_killed_at_random_under_load_keeps_every_claim_it_announced() {
    let kills: usize = std::env::var("VELTRIX_CRASH_KILLS").ok().map_or(KILLS, |v| v.parse().expect("a number"));
    let seed = seed();
    println!("crash test: seed {seed} (VELTRIX_CRASH_SEED={seed} to run this schedule again), {kills} kills");
    // Built before the clock starts: the build is not the test.
    veltrix_tests::artifacts();
    let started = Instant::now();
    let mut rng = Rng(seed);
    let vaults = Arc::new(vaults());
    let server = server(&vaults);

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let shared = Arc::new(Shared::default());
    let bots: Vec<_> = (0..BOTS)
        .map(|i| runtime.spawn(Bot::new(i, rng.next(), Arc::clone(&vaults)).run(Arc::clone(&shared))))
        .collect();

    let mut restarts = 0;
    let mut restored_runs = 0;
    let mut live = server.start(&[]);
    *shared.addr.lock().unwrap() = Some(live.addr.clone());
    for kill in 0..kills {
        std::thread::sleep(Duration::from_millis(rng.range(RUN_MS)));
        *shared.addr.lock().unwrap() = None;
        let log = live.kill();
        assert!(problems(&log).is_empty(), "run {kill} logged errors:\n{log}");
        live = server.start(&[]);
        restarts += 1;
        if live.log().contains("claimed vault(s) restored from the store") {
            restored_runs += 1;
        }
        *shared.addr.lock().unwrap() = Some(live.addr.clone());
    }
    // The last run: some load, then the bots leave and the server stops cleanly.
    std::thread::sleep(Duration::from_millis(300));
    let reports = stop_bots(&runtime, &shared, bots);
    let (status, log) = live.stop();
    assert!(status.success(), "the last run did not stop cleanly:\n{log}");
    assert!(problems(&log).is_empty(), "the last run logged errors:\n{log}");
    let load_time = started.elapsed();

    let checked = check(&server, &vaults, &reports, Leaving::CaughtUp);
    let sum = |f: fn(&BotReport) -> u64| reports.iter().map(f).sum::<u64>();
    let mut refusals: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &reports {
        for (kind, n) in &r.refusals {
            *refusals.entry(kind).or_default() += n;
        }
    }
    println!(
        "crash test: {kills} kills, {restarts} restarts ({restored_runs} of them restored claims), {} joins, {} dropped \
         connections, {} digs ({} sent again after a kill), {} moves, refusals {refusals:?}, in {:.1} s",
        sum(|r| r.joins),
        sum(|r| r.drops),
        sum(|r| r.digs),
        sum(|r| r.resent),
        sum(|r| r.moves),
        load_time.as_secs_f64(),
    );
    println!(
        "crash test: {} catch-ups on joining ({} cut short by a kill), {} before leaving; {} events caught up, {} \
         repeats dropped; {} VaultClaimed and {} LootGranted received",
        sum(|r| r.catch_ups),
        sum(|r| r.interrupted),
        sum(|r| r.leaving),
        sum(|r| r.caught_up),
        sum(|r| r.repeats),
        sum(|r| r.vault_claimed),
        sum(|r| r.loot_granted),
    );
    println!(
        "crash test: checked {} grants acknowledged (all in the log), {} events in the log (seq 1..={} without \
         gaps, all acknowledged; {} VaultOpened), {} vaults ({} claimed), {} players, {} effort entries",
        checked.acks,
        checked.events,
        checked.events,
        checked.opened,
        checked.vaults,
        checked.claimed_vaults,
        checked.players,
        checked.efforts,
    );
    println!(
        "crash test: no gaps for {} names: {} events owed to them, each received ({} names never caught up)",
        checked.names, checked.owed, checked.unsynced,
    );
}

/// The log's lines that say something went wrong: errors (a failed commit, a mod's panic).
fn problems(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains("ERROR") || l.contains("panic")).collect()
}

/// The chance of each commit failing in the store fault test.
const FAULT_CHANCE: f64 = 0.2;
/// How long the bots dig while commits fail at random.
const FAULT_RUN: Duration = Duration::from_secs(6);

/// The store failing at random under load (`VELTRIX_STORE_FAULTS`: a fifth of the commits fail
/// before they reach redb): each failure holds the tick's news until a commit saves it and
/// refuses claims in words meanwhile. The checker then finds the same as after crashes: no
/// vault claimed twice, no grant twice, every grant told is in the store, and no client missed
/// an event.
#[test]
fn a_store_failing_at_random_under_load_loses_nothing_it_announced() {
    let seed = seed();
    println!("store fault test: seed {seed} (VELTRIX_CRASH_SEED={seed} to run this schedule again)");
    veltrix_tests::artifacts();
    let mut rng = Rng(seed);
    let vaults = Arc::new(vaults());
    let faults = format!("{FAULT_CHANCE},{seed}");
    let server = server(&vaults).with_env(veltrix_host::store::FAULTS_VAR, &faults);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let shared = Arc::new(Shared::default());
    let live = server.start(&[]);
    *shared.addr.lock().unwrap() = Some(live.addr.clone());
    let bots: Vec<_> = (0..BOTS)
        .map(|i| runtime.spawn(Bot::new(i, rng.next(), Arc::clone(&vaults)).run(Arc::clone(&shared))))
        .collect();
    std::thread::sleep(FAULT_RUN);
    let reports = stop_bots(&runtime, &shared, bots);
    let (status, log) = live.stop();
    assert!(status.success(), "the server did not stop cleanly:\n{log}");
    let failures = log.matches("STORE COMMIT FAILED").count();
    assert!(failures > 0 && log.contains("the store is writable again"), "no commit failed, or none recovered:\n{log}");
    // Failed commits (and, at the very end, a last one that failed too) are what this test
    // makes happen; anything else is a problem.
    let others: Vec<&str> = problems(&log)
        .into_iter()
        .filter(|l| !l.contains("STORE COMMIT FAILED") && !l.contains("could not be saved (none of them was announced"))
        .collect();
    assert!(others.is_empty(), "the run logged errors:\n{}", others.join("\n"));

    let checked = check(&server, &vaults, &reports, Leaving::MaybeLive);
    let cannot_save: u64 = reports.iter().filter_map(|r| r.refusals.get("cannot save")).sum();
    println!(
        "store fault test: {failures} outages, {cannot_save} digs refused meanwhile, {} digs; checked {} grants \
         acknowledged, {} events in the log, {} vaults claimed; no gaps for {} names ({} events owed)",
        reports.iter().map(|r| r.digs).sum::<u64>(),
        checked.acks,
        checked.events,
        checked.claimed_vaults,
        checked.names,
        checked.owed,
    );
    assert!(cannot_save > 0, "no dig was refused while the store could not save");
}

// ---- the checker ----

#[derive(Debug, Default)]
struct Checked {
    acks: usize,
    events: usize,
    opened: usize,
    vaults: usize,
    claimed_vaults: usize,
    players: usize,
    efforts: usize,
    /// Names checked for gaps, the events owed to them, and names that never got a `CaughtUp`.
    names: usize,
    owed: usize,
    unsynced: usize,
}

type Counts = BTreeMap<String, u64>;

fn add(counts: &mut Counts, stacks: impl IntoIterator<Item = (String, u32)>) {
    for (item, quantity) in stacks {
        *counts.entry(item).or_default() += u64::from(quantity);
    }
}

fn pairs(stacks: &[ItemStack]) -> Vec<(String, u32)> {
    stacks.iter().map(|s| (s.item.clone(), s.quantity)).collect()
}

/// How the no-gap check (7) counts what came in the frame of a leaving bot's catch-up answer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Leaving {
    /// As caught up, not live: every commit worked, so nothing live waits for a later frame.
    CaughtUp,
    /// As possibly live: news held by a failed commit goes out, before the tick's own messages,
    /// in the frame of the tick whose commit saves it, so it can share a frame with (and come
    /// before) a catch-up answer, and be taken for part of it.
    MaybeLive,
}

/// Opens the stopped server's store and checks it against the hunt and what the bots were told.
fn check(server: &TestServer, vaults: &[VaultSpec], reports: &[BotReport], leaving: Leaving) -> Checked {
    let path = server.root().join("universe").join(veltrix_host::store::FILE);
    let store = Store(Arc::new(veltrix_host::store::RedbStore::open(&path).expect("the store opens")));
    let players: Vec<(PlayerId, PlayerRecord)> = store.load(PLAYERS).expect("players decode");
    let claims: Vec<((String, String), ClaimRecord)> = store.load(CLAIMS).expect("claims decode");
    let hunts: Vec<(String, HuntRecord)> = store.load(HUNTS).expect("hunts decode");
    let events: Vec<((String, u64), EventRecord)> = store.load(EVENTS).expect("events decode");
    let by_id: BTreeMap<&str, &VaultSpec> = vaults.iter().map(|v| (v.id.as_str(), v)).collect();
    let mut checked = Checked { vaults: vaults.len(), players: players.len(), ..Checked::default() };

    // Each name kept one id across every restart.
    let mut names: BTreeMap<&str, PlayerId> = BTreeMap::new();
    for r in reports {
        for (name, ids) in &r.ids {
            assert_eq!(ids.len(), 1, "{name} was given several ids across restarts: {ids:?}");
            names.insert(name, *ids.first().unwrap());
        }
        assert!(r.unexpected.is_empty(), "unexpected answers: {:#?}", r.unexpected);
        assert!(
            r.snapshots.is_empty(),
            "the test's setup is wrong: a catch-up fell outside the retained events (RetainedEvents too small for \
             this run): {:#?}",
            r.snapshots
        );
    }

    // 5. The log: 1..N, no gaps, next_seq N + 1.
    let mut log: Vec<(u64, EventRecord)> =
        events.into_iter().filter(|((hunt, _), _)| hunt == HUNT).map(|((_, seq), e)| (seq, e)).collect();
    log.sort_by_key(|(seq, _)| *seq);
    let seqs: Vec<u64> = log.iter().map(|(seq, _)| *seq).collect();
    let expected: Vec<u64> = (1..=log.len() as u64).collect();
    assert!(seqs == expected, "the log's sequence numbers are not 1..={}: {seqs:?}", log.len());
    assert!(!log.is_empty(), "the log is empty: nothing was claimed");
    let hunt = hunts.iter().find(|(id, _)| id == HUNT).map(|(_, r)| r).expect("the hunt's record");
    assert_eq!(hunt.next_seq, log.len() as u64 + 1, "next_seq after {} events", log.len());
    checked.events = log.len();

    // 2. Grants per vault and player; each grant is the vault's table, whole. A vault opened
    // (FirstFinder only) at most once.
    let mut granted: BTreeMap<&str, Vec<(u64, u64, PlayerId)>> = BTreeMap::new();
    let mut opened: BTreeMap<&str, (u64, u64, PlayerId, &str)> = BTreeMap::new();
    let mut per_player: BTreeMap<PlayerId, Counts> = BTreeMap::new();
    for (seq, EventRecord { tick, event }) in &log {
        match event {
            HuntEvent::VaultOpened { vault, by, name } => {
                let spec = by_id.get(vault.as_str()).unwrap_or_else(|| panic!("event {seq}: unknown vault {vault}"));
                assert_eq!(
                    spec.rule,
                    Rule::FirstFinder,
                    "event {seq}: {vault} opened by {name} ({by}) is not a FirstFinder vault"
                );
                if let Some(earlier) = opened.insert(vault, (*seq, *tick, *by, name)) {
                    panic!("FirstFinder vault {vault} opened twice: {earlier:?}, then at {seq} by {name} ({by})");
                }
            }
            HuntEvent::LootGranted { player, vault, items, pending } => {
                let spec = by_id.get(vault.as_str()).unwrap_or_else(|| panic!("event {seq}: unknown vault {vault}"));
                let earlier = granted.entry(vault).or_default();
                match spec.rule {
                    Rule::FirstFinder => assert!(
                        earlier.is_empty(),
                        "FirstFinder vault {vault} granted again at {seq}: {earlier:?} before"
                    ),
                    _ => assert!(
                        earlier.iter().all(|(_, _, p)| p != player),
                        "vault {vault} granted to player {player} twice ({earlier:?}, then {seq})"
                    ),
                }
                let table_id = match (spec.consolation, earlier.is_empty()) {
                    (Some(consolation), false) => consolation,
                    _ => spec.table,
                };
                let mut got = Counts::new();
                add(&mut got, pairs(items).into_iter().chain(pairs(pending)));
                let mut want = Counts::new();
                add(&mut want, table(table_id).iter().map(|(i, n)| (i.to_string(), *n)));
                assert_eq!(got, want, "event {seq}: vault {vault} to {player} is not table {table_id}");
                earlier.push((*seq, *tick, *player));
                add(per_player.entry(*player).or_default(), pairs(items).into_iter().chain(pairs(pending)));
            }
        }
    }
    checked.opened = opened.len();

    // 1. Claims: FirstFinder at most one claimant; every vault's claims are its grants; a
    // FirstFinder vault's opening is its first claim.
    let mut claimed: BTreeMap<&str, &ClaimRecord> = BTreeMap::new();
    for ((hunt, vault), record) in &claims {
        assert_eq!(hunt, HUNT);
        let spec = by_id.get(vault.as_str()).unwrap_or_else(|| panic!("a claim of unknown vault {vault}"));
        if spec.rule == Rule::FirstFinder {
            assert!(record.claimed_by.len() <= 1, "FirstFinder vault {vault}: {record:?}");
        }
        claimed.insert(&spec.id, record);
    }
    for spec in vaults {
        let grants = granted.get(spec.id.as_str()).map(Vec::as_slice).unwrap_or_default();
        let (first, claimed_by) = match claimed.get(spec.id.as_str()) {
            Some(r) => (r.first.clone(), r.claimed_by.clone()),
            None => (None, Vec::new()),
        };
        let unique: BTreeSet<&Claimant> = claimed_by.iter().collect();
        assert_eq!(unique.len(), claimed_by.len(), "vault {}: a claimant twice: {claimed_by:?}", spec.id);
        let from_log: BTreeSet<Claimant> = grants.iter().map(|(_, _, p)| Claimant::Player(*p)).collect();
        assert_eq!(
            unique.into_iter().cloned().collect::<BTreeSet<_>>(),
            from_log,
            "vault {}: the claims are not the log's grants ({grants:?})",
            spec.id
        );
        let first_grant = grants.first().copied();
        assert_eq!(
            first.as_ref().map(|(p, _)| *p),
            first_grant.map(|(_, _, p)| p),
            "vault {}: first is not the first grant",
            spec.id
        );
        if let Some((player, name)) = &first
            && let Some(id) = names.get(name.as_str())
        {
            assert_eq!(id, player, "vault {}: first finder {name} has id {player}, not {id}", spec.id);
        }
        let opening = opened.get(spec.id.as_str()).copied();
        match (spec.rule, opening, first_grant, &first) {
            (Rule::FirstFinder, None, None, None) => {}
            (Rule::FirstFinder, Some((seq, tick, by, name)), Some((grant_seq, grant_tick, grantee)), Some(first)) => {
                assert_eq!((by, name), (first.0, first.1.as_str()), "vault {}: opened at {seq} by another", spec.id);
                assert_eq!(by, grantee, "vault {}: opened at {seq} by {name} ({by}), granted to {grantee}", spec.id);
                assert!(
                    tick == grant_tick && seq < grant_seq,
                    "vault {}: opened at {seq} (tick {tick}), granted at {grant_seq} (tick {grant_tick})",
                    spec.id
                );
                if let Some(id) = names.get(name) {
                    assert_eq!(*id, by, "vault {}: opened by {name} with id {by}, not {id}", spec.id);
                }
            }
            (Rule::FirstFinder, opening, grant, first) => panic!(
                "vault {}: opened {opening:?}, first granted {grant:?}, first claimant {first:?}: not one opening per \
                 claim",
                spec.id
            ),
            (_, opening, _, _) => {
                assert_eq!(opening, None, "vault {} ({}) has a VaultOpened", spec.id, spec.rule.name())
            }
        }
        checked.claimed_vaults += usize::from(!grants.is_empty());
    }

    // 3. Inventory + pending == grants, item by item, for every player.
    let stored: BTreeSet<PlayerId> = players.iter().map(|(id, _)| *id).collect();
    for id in per_player.keys() {
        assert!(stored.contains(id), "player {id} was granted loot but has no record");
    }
    for (id, record) in &players {
        let mut held = Counts::new();
        add(&mut held, record.slots.iter().flatten().map(|s| (s.item.clone(), s.quantity)));
        add(&mut held, pairs(&record.pending));
        let want = per_player.get(id).cloned().unwrap_or_default();
        assert_eq!(
            held, want,
            "player {id}: inventory {:?} + pending {:?} is not its grants",
            record.slots, record.pending
        );
        for (vault, effort) in &record.effort {
            let spec = by_id.get(vault.as_str()).unwrap_or_else(|| panic!("player {id}: effort on unknown {vault}"));
            assert!((1..spec.effort).contains(effort), "player {id}: effort {effort} on {vault} of {}", spec.effort);
            checked.efforts += 1;
        }
    }

    // 4. Every event a bot was told of is the log's event of its `Seq`.
    let at: BTreeMap<u64, &HuntEvent> = log.iter().map(|(seq, r)| (*seq, &r.event)).collect();
    // Grants told as the answer to a dig: the request.
    let mut answered: BTreeMap<u64, u32> = BTreeMap::new();
    for got in reports.iter().flat_map(|r| &r.received) {
        let event = at.get(&got.seq).unwrap_or_else(|| {
            panic!("{} (player {}) was told of an event the log lacks: {got:?}", got.name, got.player)
        });
        let same = match (&got.told, event) {
            (
                Told::Loot { vault, items, pending },
                HuntEvent::LootGranted { player, vault: v, items: i, pending: p },
            ) => got.player == *player && vault == v && *items == pairs(i) && *pending == pairs(p),
            (Told::Claimed { vault, by }, HuntEvent::VaultOpened { vault: v, name, .. }) => vault == v && by == name,
            _ => false,
        };
        assert!(same, "{} (player {}) was told {got:?}, the log has {event:?}", got.name, got.player);
        // Told twice as an answer only to one request repeated (the server answers it again).
        if let Some(request) = got.request
            && let Some(before) = answered.insert(got.seq, request)
        {
            assert_eq!(before, request, "{} was told of one grant for two requests: {got:?}", got.name);
        }
    }
    checked.acks = answered.len();

    // 6. Every dig unanswered at a kill was sent again after the restart, so every grant in the
    // log reached its player as the answer to its dig: from the tick that made it, or as the
    // answer to the repeat.
    let unanswered: Vec<&(u64, EventRecord)> = log
        .iter()
        .filter(|(seq, r)| matches!(r.event, HuntEvent::LootGranted { .. }) && !answered.contains_key(seq))
        .collect();
    assert!(unanswered.is_empty(), "{} grant(s) of the log never answered their dig: {unanswered:?}", unanswered.len());

    // 7. No gaps: each name got every event of the log that concerns it up to its last
    // `CaughtUp`, not counting what only the catch-up before leaving brought.
    let mut gaps = Vec::new();
    for r in reports {
        for name in r.ids.keys() {
            let player = names[name.as_str()];
            let Some(&to) = r.caught_up_to.get(name) else {
                checked.unsynced += 1;
                continue;
            };
            let live = |g: &&Received| g.how != How::Leaving || leaving == Leaving::MaybeLive;
            let got: BTreeSet<u64> =
                r.received.iter().filter(|g| g.name == *name).filter(live).map(|g| g.seq).collect();
            let late: BTreeSet<u64> =
                r.received.iter().filter(|g| g.name == *name && g.how == How::Leaving).map(|g| g.seq).collect();
            for (seq, record) in log.iter().take_while(|(seq, _)| *seq <= to) {
                if !record.event.concerns(player) {
                    continue;
                }
                checked.owed += 1;
                if !got.contains(seq) {
                    let how = if late.contains(seq) {
                        "came only in the catch-up before leaving (lost live)"
                    } else {
                        "never came"
                    };
                    gaps.push(format!("{name} (player {player}, caught up to {to}): {seq} {how}: {record:?}"));
                }
            }
            checked.names += 1;
        }
    }
    assert!(gaps.is_empty(), "{} event(s) missing from clients' transcripts:\n{}", gaps.len(), gaps.join("\n"));
    checked
}
