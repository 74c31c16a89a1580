//! One bot: a real client on its own connection, acting on an open-loop schedule. Every action
//! has an intended time drawn in advance (moves at a fixed rate, digs as a Poisson process);
//! a bot that falls behind sends what is due at once, and latencies count from the intended
//! time, so a slow server cannot hide its slowness by slowing the bots (no coordinated
//! omission).

use std::{
    collections::{HashMap, HashSet},
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
};

use parking_lot::Mutex;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use treasure_hunt_wire::{Clue, Dig, LootGranted, NAMESPACE as NS, VaultClaimed, VaultDiscovered};
use veltrix_client::{decode_mod_body, hello};
use veltrix_protocol::{ErrorCode, ServerMessage};

use crate::{
    bot_loop::Out,
    clock::monotonic_ns,
    plan::{BotPlan, REACH, clue_id},
    report::Recorder,
    scenario::Scenario,
    shards::{ClaimLog, Heard, Topology},
};

/// Connecting is retried this often before the bot gives up.
pub(crate) const CONNECT_ATTEMPTS: u32 = 5;

/// What every bot shares: the scenario's clock, the vaults, the recorders and the counters.
pub struct Shared {
    /// Each shard's player endpoint; bot i plays on shard i mod their count.
    pub addrs: Vec<String>,
    pub topology: Topology,
    pub scenario: Scenario,
    pub vaults: VaultGrid,
    /// The measured window, in monotonic nanoseconds (0 until the controller sets it).
    pub window_start: AtomicU64,
    pub window_end: AtomicU64,
    /// When the reconnect storm hits (0: none yet).
    pub storm_at: AtomicU64,
    /// Bots stop acting (and then reading, after the drain) when set.
    pub stop_acting: AtomicBool,
    pub stop_reading: AtomicBool,
    pub recorder: Recorder,
    /// The intended time of the latest dig of (vault, bot), to time a vault's discovery at the
    /// players around it from the dig that opened it.
    pub dig_intents: Mutex<HashMap<(u32, u32), u64>>,
    /// Bots connected now.
    pub online: AtomicU64,
    /// Digs sent and not answered yet, over all bots (the drain waits for them).
    pub outstanding: AtomicU64,
    /// Each bot's latest moves, to time a move at the bots that see it.
    pub moves: MoveLog,
    /// FirstFinder vaults' first claims and who heard of them (with such vaults only).
    pub claims: Option<ClaimLog>,
}

impl Shared {
    fn in_window(&self, at: u64) -> bool {
        let start = self.window_start.load(Ordering::Relaxed);
        start != 0 && at >= start && at < self.window_end.load(Ordering::Relaxed)
    }
}

/// Every bot's last few moves (where to, and when it meant to send it), and which bot each
/// player id is: a bot that is told of a neighbour's move finds the move by its position and
/// times it from the mover's intended time.
pub struct MoveLog {
    bots: Vec<Mutex<[(f32, f32, u64); MOVES_KEPT]>>,
    /// Player id to bot index, filled as bots are welcomed.
    ids: parking_lot::RwLock<HashMap<u64, u32>>,
}

/// Moves kept per bot: a neighbour is told within one state update, a few moves at most.
const MOVES_KEPT: usize = 4;
/// One bot in this many times the moves it is told of: enough samples for a p99, a small
/// share of the swarm's work.
pub const MOVE_SAMPLE: u32 = 8;

impl MoveLog {
    pub fn new(bots: usize) -> Self {
        Self {
            bots: (0..bots).map(|_| Mutex::new([(f32::NAN, f32::NAN, 0); MOVES_KEPT])).collect(),
            ids: Default::default(),
        }
    }

    pub(crate) fn welcomed(&self, player: u64, bot: u32) {
        self.ids.write().insert(player, bot);
    }

    fn moved(&self, bot: u32, x: f32, y: f32, intended: u64) {
        let mut moves = self.bots[bot as usize].lock();
        moves.rotate_right(1);
        moves[0] = (x, y, intended);
    }

    /// When player `player` meant to send its move to (x, y), if it is one of its last moves.
    fn intended(&self, player: u64, x: f32, y: f32) -> Option<u64> {
        let bot = *self.ids.read().get(&player)?;
        self.bots[bot as usize].lock().iter().find(|m| m.0 == x && m.1 == y).map(|m| m.2)
    }
}

/// The vaults on a grid of cells, to find the one within reach of a bot.
pub struct VaultGrid {
    cell: f32,
    cells: HashMap<(i32, i32), Vec<u32>>,
    tiles: Vec<(u32, u32)>,
}

impl VaultGrid {
    pub fn new(tiles: &[(u32, u32)]) -> Self {
        let cell = 16.0;
        let mut cells: HashMap<(i32, i32), Vec<u32>> = HashMap::new();
        for (i, &(x, y)) in tiles.iter().enumerate() {
            cells.entry(((x as f32 / cell) as i32, (y as f32 / cell) as i32)).or_default().push(i as u32);
        }
        Self { cell, cells, tiles: tiles.to_vec() }
    }

    /// The vault within reach of (x, y), if any.
    pub fn within_reach(&self, x: f32, y: f32) -> Option<u32> {
        let (cx, cy) = ((x / self.cell) as i32, (y / self.cell) as i32);
        (cx - 1..=cx + 1)
            .flat_map(|i| (cy - 1..=cy + 1).map(move |j| (i, j)))
            .filter_map(|c| self.cells.get(&c))
            .flatten()
            .copied()
            .find(|&v| {
                let (vx, vy) = self.tiles[v as usize];
                let (dx, dy) = (vx as f32 + 0.5 - x, vy as f32 + 0.5 - y);
                dx * dx + dy * dy <= REACH * REACH
            })
    }

    pub fn tile(&self, vault: u32) -> (u32, u32) {
        self.tiles[vault as usize]
    }
}

/// What one bot counted, summed by the controller at the end.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub connected: bool,
    pub connect_failures: u32,
    /// Frames read from the server, over every connection the bot had.
    pub frames: u64,
    pub messages: u64,
    pub digs_sent: u64,
    pub digs_answered: u64,
    /// Digs sent in the measured window, and those of them answered.
    pub window_digs: u64,
    pub window_answered: u64,
    pub moves: u64,
    pub corrections: u64,
    pub reconnected: bool,
    /// Clue drops this bot received (bit i: drop i).
    pub clues: u64,
}

impl Tally {
    /// Adds another bot's counts (the swarm's totals).
    pub fn add(&mut self, other: &Tally) {
        self.connect_failures += other.connect_failures;
        self.frames += other.frames;
        self.messages += other.messages;
        self.digs_sent += other.digs_sent;
        self.digs_answered += other.digs_answered;
        self.window_digs += other.window_digs;
        self.window_answered += other.window_answered;
        self.moves += other.moves;
        self.corrections += other.corrections;
    }
}

/// The `Hello` of bot `index`.
pub(crate) fn hello_of(index: u32) -> veltrix_protocol::Hello {
    hello(format!("bot{index}"))
}

/// Loopback addresses the bots connect from, bot i from the (i mod this)th: players come from
/// many addresses. From one, 12,000 bots reconnecting at once had the kernel search its
/// ephemeral ports past the 12,000 just closed (in TIME_WAIT) for each connect: 17 % of the
/// machine in `__inet_check_established` during the storm (docs/benchmarks.md).
const SOURCE_ADDRESSES: u32 = 64;

/// The loopback address bot `index` connects from: 127.0.1.1 and up.
pub(crate) fn source_address(index: u32) -> std::net::IpAddr {
    std::net::Ipv4Addr::new(127, 0, 1, 1 + (index % SOURCE_ADDRESSES) as u8).into()
}

/// A bot's state between frames.
pub(crate) struct Bot {
    index: u32,
    /// The shard it plays on.
    shard: usize,
    plan: BotPlan,
    rng: ChaCha8Rng,
    at: (f32, f32),
    waypoint: (f32, f32),
    step: f32,
    move_period: u64,
    next_move: u64,
    dig_mean_ns: f64,
    next_dig: u64,
    /// Digs dig faster than this until then (a clue's spike).
    spike_until: u64,
    spike_factor: f64,
    /// Digs sent and not answered yet: request id, intended time, tile dug.
    pending: Vec<(u32, u64, (u32, u32))>,
    /// Vaults whose first claim it heard of, and what it heard, waiting for the claim log.
    heard_vaults: HashSet<u32>,
    heard: Vec<Heard>,
}

impl Bot {
    pub(crate) fn new(index: u32, plan: BotPlan, shared: &Shared) -> Self {
        let s = &shared.scenario;
        let mut rng = ChaCha8Rng::seed_from_u64(s.seed ^ (u64::from(index) << 20) ^ 0x5eed);
        let now = monotonic_ns();
        let move_period = (1e9 / s.moves.per_second) as u64;
        let dig_mean_ns = if s.digs.per_minute > 0.0 { 60e9 / s.digs.per_minute } else { f64::INFINITY };
        let mut bot = Bot {
            index,
            shard: shared.topology.shard_of(index),
            plan,
            at: plan.home,
            waypoint: plan.home,
            step: s.moves.speed / s.moves.per_second as f32,
            move_period,
            // Spread over the period, so the bots do not all move in the same tick.
            next_move: now + rng.random_range(0..move_period.max(1)),
            dig_mean_ns,
            next_dig: u64::MAX,
            spike_until: 0,
            spike_factor: 1.0,
            pending: Vec::new(),
            heard_vaults: HashSet::new(),
            heard: Vec::new(),
            rng,
        };
        bot.next_dig = bot.draw_dig(now);
        bot
    }

    pub(crate) fn next_due(&self) -> u64 {
        self.next_move.min(self.next_dig)
    }

    /// The next dig's intended time after `from`: exponential gaps (a Poisson process).
    fn draw_dig(&mut self, from: u64) -> u64 {
        if !self.dig_mean_ns.is_finite() {
            return u64::MAX;
        }
        let factor = if from < self.spike_until { self.spike_factor } else { 1.0 };
        let u: f64 = self.rng.random_range(f64::EPSILON..1.0);
        from + (-u.ln() * self.dig_mean_ns / factor) as u64
    }

    /// Sends every action that is due.
    pub(crate) fn act(&mut self, out: &mut Out, shared: &Shared, tally: &mut Tally) -> tungstenite::Result<()> {
        let now = monotonic_ns();
        if self.next_move <= now {
            // Moves carry a position, not a delta: one move catches up with any missed.
            let mut intended = self.next_move;
            while self.next_move <= now {
                self.walk();
                intended = self.next_move;
                self.next_move += self.move_period;
            }
            shared.moves.moved(self.index, self.at.0, self.at.1, intended);
            out.move_to(self.at.0, self.at.1)?;
            tally.moves += 1;
        }
        while self.next_dig <= now {
            let intended = self.next_dig;
            let vault = shared.vaults.within_reach(self.at.0, self.at.1);
            let tile = vault.map_or((self.at.0 as u32, self.at.1 as u32), |v| shared.vaults.tile(v));
            let request = out.request(NS, "Dig", &Dig { x: tile.0, y: tile.1 })?;
            if let Some(v) = vault {
                shared.dig_intents.lock().insert((v, self.index), intended);
            }
            self.pending.push((request, intended, tile));
            shared.outstanding.fetch_add(1, Ordering::Relaxed);
            tally.digs_sent += 1;
            if shared.in_window(intended) {
                tally.window_digs += 1;
            }
            self.next_dig = self.draw_dig(intended);
        }
        Ok(())
    }

    /// On a new connection (the storm dropped the last): the digs whose answers went to the old
    /// one asked again with their ids (the server answers a repeated request with its first
    /// answer), and where the bot is.
    pub(crate) fn resume(&mut self, out: &mut Out) -> tungstenite::Result<()> {
        for &(request, _, vault_tile) in &self.pending {
            out.send_mod(NS, "Dig", Some(request), &Dig { x: vault_tile.0, y: vault_tile.1 })?;
        }
        out.move_to(self.at.0, self.at.1)
    }

    /// One step toward the waypoint; a new waypoint around home once there.
    fn walk(&mut self) {
        let (dx, dy) = (self.waypoint.0 - self.at.0, self.waypoint.1 - self.at.1);
        let distance = (dx * dx + dy * dy).sqrt();
        if distance <= self.step {
            self.at = self.waypoint;
            let angle = self.rng.random_range(0.0..std::f32::consts::TAU);
            let r = self.plan.roam * self.rng.random::<f32>().sqrt();
            self.waypoint = (self.plan.home.0 + r * angle.cos(), self.plan.home.1 + r * angle.sin());
        } else {
            self.at = (self.at.0 + dx / distance * self.step, self.at.1 + dy / distance * self.step);
        }
    }

    /// Whether [`Bot::read`] looks at messages of `kind`: the others of a frame are passed
    /// over undecoded, so that the swarm, which shares the machine with the server, spends
    /// little beyond the read floor on a frame (most of a frame is other players' moves).
    pub(crate) fn reads(&self, kind: &str) -> bool {
        match kind {
            "Mod" | "Error" | "PositionCorrected" => true,
            "PlayerMoved" => self.index.is_multiple_of(MOVE_SAMPLE),
            _ => false,
        }
    }

    /// Takes in a frame: latencies, answers to digs, vaults opened nearby, clues.
    pub(crate) fn read(
        &mut self,
        shared: &Shared,
        (messages, count): (&[ServerMessage], usize),
        committed: Option<u64>,
        (tally, fanout): (&mut Tally, &mut FanoutSamples),
    ) {
        let now = monotonic_ns();
        tally.messages += count as u64;
        if let Some(committed) = committed
            && shared.in_window(now)
        {
            fanout.push(shared, self.shard, now.saturating_sub(committed));
        }
        for message in messages {
            // The vault a LootGranted claimed, when first claims are timed.
            let mut won = None;
            // A dig is answered by its progress, its loot (the dig that opens the vault) or a refusal.
            let request = match message {
                ServerMessage::Mod(m) if m.kind == "LootGranted" => {
                    if shared.claims.is_some() {
                        won = decode_mod_body::<LootGranted>(m).ok().and_then(|g| vault_number(&g.vault));
                    }
                    m.request
                }
                ServerMessage::Mod(m) if m.kind == "DigProgress" => m.request,
                ServerMessage::Error(e) if e.code == ErrorCode::Refused => e.request,
                ServerMessage::PlayerMoved(m) if self.index.is_multiple_of(MOVE_SAMPLE) && shared.in_window(now) => {
                    if let Some(intended) = shared.moves.intended(m.player, m.x, m.y) {
                        shared.recorder.record_move(now.saturating_sub(intended));
                    }
                    None
                }
                ServerMessage::PositionCorrected(c) => {
                    tally.corrections += 1;
                    self.at = (c.x, c.y);
                    None
                }
                ServerMessage::Mod(m) if m.kind == "VaultDiscovered" => {
                    if let Ok(found) = decode_mod_body::<VaultDiscovered>(m) {
                        self.discovered(shared, &found, now);
                        self.heard_claim(shared, &found.vault, &found.by, now, committed);
                    }
                    None
                }
                ServerMessage::Mod(m) if m.kind == "VaultClaimed" && shared.claims.is_some() => {
                    if let Ok(claimed) = decode_mod_body::<VaultClaimed>(m) {
                        self.heard_claim(shared, &claimed.vault, &claimed.by, now, committed);
                    }
                    None
                }
                ServerMessage::Mod(m) if m.kind == "Clue" => {
                    if let Ok(clue) = decode_mod_body::<Clue>(m) {
                        self.clue(shared, &clue, committed, now, tally);
                    }
                    None
                }
                _ => None,
            };
            if let Some(request) = request
                && let Some(i) = self.pending.iter().position(|p| p.0 == request)
            {
                let (_, intended, _) = self.pending.swap_remove(i);
                shared.outstanding.fetch_sub(1, Ordering::Relaxed);
                tally.digs_answered += 1;
                if shared.in_window(intended) {
                    tally.window_answered += 1;
                    shared.recorder.record_dig(self.shard, now.saturating_sub(intended));
                }
                if let (Some(vault), Some(log)) = (won, &shared.claims) {
                    log.won(vault, self.index, intended, now, committed);
                }
            }
        }
    }

    /// A vault's first claim heard of (`VaultClaimed` to all, `VaultDiscovered` nearby): the
    /// first of the two per vault is kept for the claim log, unless this bot made the claim.
    fn heard_claim(&mut self, shared: &Shared, vault: &str, by: &str, now: u64, committed: Option<u64>) {
        if shared.claims.is_none() {
            return;
        }
        let (Some(vault), Some(by)) = (vault_number(vault), by.strip_prefix("bot").and_then(|b| b.parse::<u32>().ok()))
        else {
            return;
        };
        if by != self.index && self.heard_vaults.insert(vault) {
            self.heard.push(Heard { vault, by, bot: self.index, received: now, committed });
        }
    }

    /// A vault opened within sight: timed from the intended time of the dig that opened it.
    fn discovered(&self, shared: &Shared, found: &VaultDiscovered, now: u64) {
        let (Some(vault), Some(by)) = (
            found.vault.strip_prefix('V').and_then(|v| v.parse::<u32>().ok()),
            found.by.strip_prefix("bot").and_then(|b| b.parse::<u32>().ok()),
        ) else {
            return;
        };
        if by == self.index {
            return;
        }
        let intended = shared.dig_intents.lock().get(&(vault, by)).copied();
        if let Some(intended) = intended
            && shared.in_window(intended)
        {
            shared.recorder.record_nearby(now.saturating_sub(intended));
        }
    }

    /// An Area clue: counted once per drop; the bot may head for it, and digs faster a while.
    fn clue(&mut self, shared: &Shared, clue: &Clue, committed: Option<u64>, now: u64, tally: &mut Tally) {
        let drops = &shared.scenario.clue_drops;
        let Some(i) = (0..drops.len()).find(|&i| clue.clue == clue_id(i)) else { return };
        if tally.clues & (1 << i) != 0 {
            return;
        }
        tally.clues |= 1 << i;
        shared.recorder.record_clue(i, committed.map(|c| now.saturating_sub(c)));
        let drop = drops[i];
        if let (Some(x), Some(y), Some(radius)) = (clue.x, clue.y, clue.radius)
            && self.rng.random_bool(drop.converge_share.clamp(0.0, 1.0))
        {
            self.plan.home = (x, y);
            self.plan.roam = radius;
            self.waypoint = (x, y);
        }
        if let Some(spike) = drop.spike {
            self.spike_until = now + spike.ms * 1_000_000;
            self.spike_factor = spike.factor.max(1.0);
            self.next_dig = self.next_dig.min(self.draw_dig(now));
        }
    }

    /// What it heard of first claims, to the claim log.
    pub(crate) fn flush(&mut self, shared: &Shared) {
        if let Some(log) = &shared.claims
            && !self.heard.is_empty()
        {
            log.heard(&mut self.heard);
        }
    }
}

/// Vault `V<i>`'s number i.
fn vault_number(id: &str) -> Option<u32> {
    id.strip_prefix('V').and_then(|v| v.parse().ok())
}

/// Fan-out samples of one thread's bots, by shard, waiting to go to the shared recorder: held
/// by the thread, not by each bot, so that a frame's sample goes where the last one went (a
/// buffer of each bot's own was a cache miss for every frame read, the most of the swarm's
/// time on a frame after the system calls).
#[derive(Default)]
pub(crate) struct FanoutSamples {
    by_shard: Vec<Vec<u64>>,
}

impl FanoutSamples {
    fn push(&mut self, shared: &Shared, shard: usize, ns: u64) {
        if shard >= self.by_shard.len() {
            self.by_shard.resize_with(shard + 1, || Vec::with_capacity(FLUSH_AT));
        }
        let samples = &mut self.by_shard[shard];
        samples.push(ns);
        if samples.len() >= FLUSH_AT {
            shared.recorder.record_fanout(shard, samples);
            samples.clear();
        }
    }

    /// Every sample held, to the shared recorder.
    pub(crate) fn flush(&mut self, shared: &Shared) {
        for (shard, samples) in self.by_shard.iter_mut().enumerate() {
            shared.recorder.record_fanout(shard, samples);
            samples.clear();
        }
    }
}

/// Fan-out samples a thread keeps for a shard before taking the shared recorder's lock.
const FLUSH_AT: usize = 1024;
