//! The running hunt's leaderboard: per player, the vaults it claimed, its score (the sum of
//! `Value` x quantity of every item it was granted) and when it last found something.
//!
//! The order is total and deterministic: score descending, then vaults descending, then the
//! earlier last find first (who got there first ranks higher), then player id ascending. The
//! last key separates any two players, so no two share a rank: ranks are the positions 1..n.
//!
//! The board is kept sorted incrementally: a claim moves one key in a `BTreeSet` (O(log n)),
//! never a re-sort. A player's rank is counted from the top (O(rank)); the top N is the first
//! N keys.
//!
//! Systems ([`LeaderboardSet`], after `HuntSet::Loot`): [`update_leaderboard`] reads the tick's
//! claims and loot; [`announce_board`] writes a [`BoardChanged`] when the top N differs from
//! the last one announced, at most once per second of ticks.

use std::{
    cmp::Reverse,
    collections::{BTreeSet, HashMap},
};

use veltrix_sdk::{PlayerId, bevy_ecs::message::Message, bevy_ecs::schedule::SystemSet, prelude::*};

use veltrix_sdk::Ledger;

use crate::{
    state::{ActiveHunt, AssetsInForce, HuntClock, HuntRuns, is_run_key},
    vocab::{Claim, ClaimOutcome, HuntSet, LootGranted},
};

/// The leaderboard's systems, after `HuntSet::Loot` (they read its claims and loot).
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaderboardSet;

/// How many of the top players the board announces (the mod's `LeaderboardSize`).
#[derive(Resource, Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderboardRules {
    pub size: usize,
}

impl Default for LeaderboardRules {
    fn default() -> Self {
        Self { size: 10 }
    }
}

/// One player's standing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The player's name (as it was at its last claim).
    pub name: String,
    /// Vaults claimed.
    pub vaults: u32,
    /// The sum of `Value` x quantity of every item granted, in the inventory or pending.
    pub score: u64,
    /// The tick of the last claim, on the hunt's clock (see [`Leaderboard::clock`]).
    pub last_find_tick: u64,
}

/// The ranking key: sorts as the board ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    score: Reverse<u64>,
    vaults: Reverse<u32>,
    last_find_tick: u64,
    player: PlayerId,
}

impl Key {
    fn of(player: PlayerId, entry: &Entry) -> Self {
        Key { score: Reverse(entry.score), vaults: Reverse(entry.vaults), last_find_tick: entry.last_find_tick, player }
    }
}

/// The leaderboard of a hunt (the running one, or the last one until another starts).
#[derive(Resource, Debug, Clone, Default)]
pub struct Leaderboard {
    hunt: Option<String>,
    entries: HashMap<PlayerId, Entry>,
    order: BTreeSet<Key>,
    /// Players whose entry changed since [`Leaderboard::take_changed`] (for saving).
    changed: BTreeSet<PlayerId>,
    /// Bumped by every change, so the announcer looks at the top only after one.
    generation: u64,
    /// Added to `TickInfo::tick` for a find's tick: the ticks of earlier runs of the server,
    /// so a find after a restart never counts as earlier than one before it.
    clock_offset: u64,
    /// On servers sharing the hunt: the board's id of each player of this server (its id on
    /// the board is made from its name, the same on every server; see [`veltrix_sdk::shared_player_id`]).
    aliases: HashMap<PlayerId, PlayerId>,
}

/// A player's place on the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rank {
    /// 1 for the leader.
    pub rank: u32,
    /// How many players are ranked.
    pub of: u32,
    pub entry: Entry,
}

/// One row of the board, as announced or kept after the hunt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BoardEntry {
    pub rank: u32,
    pub player: PlayerId,
    pub name: String,
    pub vaults: u32,
    pub score: u64,
    pub last_find_tick: u64,
}

/// The top of the board changed (written at most once per second of ticks): the mod sends it
/// to every player.
#[derive(Message, Debug, Clone, PartialEq)]
pub struct BoardChanged {
    pub top: Vec<BoardEntry>,
    /// How many players are ranked.
    pub players: u32,
}

impl Leaderboard {
    /// An empty board for hunt `hunt`.
    pub fn new(hunt: impl Into<String>) -> Self {
        Self { hunt: Some(hunt.into()), ..Self::default() }
    }

    /// The hunt this board ranks, if any.
    pub fn hunt(&self) -> Option<&str> {
        self.hunt.as_deref()
    }

    /// How many players are ranked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A player's entry.
    pub fn entry(&self, player: PlayerId) -> Option<&Entry> {
        self.entries.get(&self.board_id(player))
    }

    /// The id a player of this server has on the board: its own, or on servers sharing the
    /// hunt the one made from its name.
    pub fn board_id(&self, player: PlayerId) -> PlayerId {
        self.aliases.get(&player).copied().unwrap_or(player)
    }

    /// The hunt's clock at tick `tick` of this run of the server.
    pub fn clock(&self, tick: u64) -> u64 {
        self.clock_offset + tick
    }

    /// Counts a claim: one more vault, `score` more points, the last find at `tick` (the hunt's
    /// clock). A player not on the board yet joins it.
    pub fn record(&mut self, player: PlayerId, name: &str, vaults: u32, score: u64, tick: u64) {
        self.update(player, Some(name), |e| {
            e.vaults = e.vaults.saturating_add(vaults);
            e.score = e.score.saturating_add(score);
            e.last_find_tick = e.last_find_tick.max(tick);
        });
    }

    /// Adds points to the score of a player on the board (loot granted), without counting a
    /// find. Returns false, changing nothing, for a player not on the board: loot always comes
    /// with a claim, which puts its player on the board first.
    pub fn add_score(&mut self, player: PlayerId, score: u64) -> bool {
        if !self.entries.contains_key(&player) {
            return false;
        }
        self.update(player, None, |e| e.score = e.score.saturating_add(score));
        true
    }

    /// Empties the board for hunt `hunt` (a new hunt starts).
    pub fn start(&mut self, hunt: impl Into<String>) {
        // The generation goes on, so an announcer never mistakes the new board for one it saw.
        let generation = self.generation + 1;
        let aliases = std::mem::take(&mut self.aliases);
        *self = Self { generation, aliases, ..Self::new(hunt) };
    }

    /// Puts an entry as it was stored (a restart); the hunt's clock moves past its last find.
    pub fn restore(&mut self, player: PlayerId, entry: Entry) {
        self.clock_offset = self.clock_offset.max(entry.last_find_tick);
        if let Some(old) = self.entries.get(&player) {
            self.order.remove(&Key::of(player, old));
        }
        self.order.insert(Key::of(player, &entry));
        self.entries.insert(player, entry);
        self.generation += 1;
    }

    /// Changes a player's entry (a new one when absent) and moves its key; `name`, when given,
    /// becomes its name.
    fn update(&mut self, player: PlayerId, name: Option<&str>, change: impl FnOnce(&mut Entry)) {
        let entry = match self.entries.get_mut(&player) {
            Some(entry) => {
                // The old key goes: the entry moves to where its new key sorts.
                self.order.remove(&Key::of(player, entry));
                if let Some(name) = name
                    && entry.name != name
                {
                    entry.name = name.to_string();
                }
                entry
            }
            None => self.entries.entry(player).or_insert_with(|| Entry {
                name: name.unwrap_or_default().to_string(),
                vaults: 0,
                score: 0,
                last_find_tick: 0,
            }),
        };
        change(entry);
        self.order.insert(Key::of(player, entry));
        self.changed.insert(player);
        self.generation += 1;
    }

    /// Whether an entry changed since the last [`Leaderboard::take_changed`].
    pub fn has_changes(&self) -> bool {
        !self.changed.is_empty()
    }

    /// Forgets which entries changed (nothing to save them to).
    pub fn forget_changes(&mut self) {
        self.changed.clear();
    }

    /// The players whose entry changed since the last call, by id.
    pub fn take_changed(&mut self) -> impl Iterator<Item = PlayerId> + use<> {
        std::mem::take(&mut self.changed).into_iter()
    }

    /// The board in rank order: (player, entry).
    pub fn iter(&self) -> impl Iterator<Item = (PlayerId, &Entry)> + Clone + '_ {
        self.order.iter().map(|k| (k.player, &self.entries[&k.player]))
    }
}

/// A player's rank, or `None` when it is not on the board (it claimed nothing yet). Counts the
/// players ranked above it: O(rank).
pub fn rank_of(board: &Leaderboard, player: PlayerId) -> Option<Rank> {
    let player = board.board_id(player);
    let entry = board.entries.get(&player)?;
    let above = board.order.range(..Key::of(player, entry)).count();
    Some(Rank { rank: above as u32 + 1, of: board.entries.len() as u32, entry: entry.clone() })
}

/// The ranks of several players at once (a tick's requests), in the order given: one walk down
/// the board to the lowest ranked of them, O(that rank + k log k) for k players, where
/// [`rank_of`] for each would walk once per player.
pub fn ranks_of(board: &Leaderboard, players: &[PlayerId]) -> Vec<Option<Rank>> {
    let mut wanted: Vec<(Key, usize)> = players
        .iter()
        .map(|p| board.board_id(*p))
        .enumerate()
        .filter_map(|(i, p)| board.entries.get(&p).map(|e| (Key::of(p, e), i)))
        .collect();
    wanted.sort_unstable();
    let mut ranks = vec![None; players.len()];
    let mut walk = board.order.iter().zip(1u32..);
    let mut last: Option<(Key, u32)> = None;
    for (key, i) in wanted {
        let rank = match last {
            // The same player asked twice.
            Some((k, rank)) if k == key => rank,
            _ => walk.find(|(k, _)| **k == key).map(|(_, rank)| rank).expect("every entry has its key in the order"),
        };
        last = Some((key, rank));
        let entry = board.entries[&key.player].clone();
        ranks[i] = Some(Rank { rank, of: board.entries.len() as u32, entry });
    }
    ranks
}

/// The first `n` rows of the board (all of it when it has fewer).
pub fn final_board(board: &Leaderboard, n: usize) -> Vec<BoardEntry> {
    board
        .iter()
        .take(n)
        .enumerate()
        .map(|(i, (player, e))| BoardEntry {
            rank: i as u32 + 1,
            player,
            name: e.name.clone(),
            vaults: e.vaults,
            score: e.score,
            last_find_tick: e.last_find_tick,
        })
        .collect()
}

/// What was last announced, and when.
#[derive(Resource, Debug, Clone, Default)]
pub struct BoardAnnouncer {
    /// The tick of the last announcement.
    last_tick: Option<u64>,
    /// The board generation last compared with the announced top.
    seen_generation: u64,
    /// The top last announced: (player, vaults, score), in rank order.
    announced: Vec<(PlayerId, u32, u64)>,
    /// How many players were ranked in the last announcement.
    announced_players: usize,
}

/// The leaderboard as one unit: its rules, resources and messages now, its systems once the mod
/// has started.
pub fn plugin(ctx: &mut ModContext, rules: LeaderboardRules) {
    register(ctx.world_mut(), rules);
    add_systems(ctx);
}

/// Registers the leaderboard's resources and messages.
pub fn register(world: &mut World, rules: LeaderboardRules) {
    world.insert_resource(rules);
    world.init_resource::<Leaderboard>();
    world.init_resource::<BoardAnnouncer>();
    veltrix_sdk::bevy_ecs::message::MessageRegistry::register_message::<BoardChanged>(world);
}

/// Adds the leaderboard's systems to `Tick`, after the hunt's loot.
pub fn add_systems(ctx: &mut ModContext) {
    ctx.configure_sets(Tick, LeaderboardSet.after(HuntSet::Loot));
    ctx.add_systems(Tick, (update_leaderboard, announce_board).chain().in_set(LeaderboardSet));
}

/// Counts the tick's claims (a vault each, the last find now) and their loot (the items'
/// `Value` in the assets in force, times their quantity, inventory and pending alike). A new
/// hunt starts an empty board. On servers sharing the hunt the board is [`shared`] instead.
pub fn update_leaderboard(
    mut claims: MessageReader<ClaimOutcome>,
    mut granted: MessageReader<LootGranted>,
    assets: Res<AssetsInForce>,
    tick: Res<TickInfo>,
    hunt: Option<Res<ActiveHunt>>,
    mut board: ResMut<Leaderboard>,
    shared: SharedBoard,
) {
    let Some(hunt) = hunt else {
        claims.clear();
        granted.clear();
        return;
    };
    // A new hunt, or a new run of it, ranks from nothing.
    if !board.hunt.as_deref().is_some_and(|key| is_run_key(key, &hunt.id, hunt.run)) {
        board.start(hunt.run_key());
    }
    if shared.ledger.is_some() {
        shared::update(&mut board, &hunt, &assets, &mut claims, &mut granted, shared);
        return;
    }
    let now = board.clock(tick.tick);
    for outcome in claims.read() {
        // A claim made on another server names that server's player id: the board is this
        // server's own until boards are shared (docs/scale-out.md).
        if let ClaimOutcome::Claimed(claim) = outcome
            && !claim.made_elsewhere()
        {
            board.record(claim.player, &claim.player_name, 1, 0, now);
        }
    }
    for loot in granted.read() {
        let score = loot_score(loot, &assets);
        if score > 0 {
            board.add_score(loot.player, score);
        }
    }
}

/// The points of a grant: `Value` x quantity of its items, inventory and pending alike.
fn loot_score(loot: &LootGranted, assets: &AssetsInForce) -> u64 {
    loot.items
        .iter()
        .chain(&loot.pending)
        .map(|s| u64::from(assets.0.items.get(&s.item).map_or(0, |i| i.value)) * u64::from(s.quantity))
        .sum()
}

/// What a server sharing the hunt needs for the board: the ledger, the run's start, the clock,
/// and the players who joined (their ids on the board).
#[derive(veltrix_sdk::bevy_ecs::system::SystemParam)]
pub struct SharedBoard<'w, 's> {
    ledger: Option<ResMut<'w, Ledger>>,
    runs: Res<'w, HuntRuns>,
    clock: Res<'w, HuntClock>,
    joined: Query<'w, 's, &'static Player, Added<Player>>,
}

/// The board of a hunt shared by several servers: the same on every one. Each claim's points
/// go to the ledger once (`scores.<hunt>.<run>.<vault>.<claimant>`, by the server that made the
/// claim) and every server, that one included, counts what the ledger holds, in any order: a
/// player's id on the board is made from its name, and a find's time is the milliseconds since
/// the run's start (the same on every server), so ties break alike everywhere. At a restart the
/// ledger tells every score again: the board is not read from the store.
mod shared {
    use super::*;

    const SCORES: &str = "scores.";

    /// A claim's points, as the ledger holds them.
    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    struct SharedScore {
        name: String,
        score: u64,
        /// Milliseconds since the run's start.
        at_ms: u64,
    }

    pub(super) fn update(
        board: &mut Leaderboard,
        hunt: &ActiveHunt,
        assets: &AssetsInForce,
        claims: &mut MessageReader<ClaimOutcome>,
        granted: &mut MessageReader<LootGranted>,
        shared: SharedBoard,
    ) {
        let SharedBoard { ledger, runs, clock, joined } = shared;
        let Some(mut ledger) = ledger else { return };
        for player in &joined {
            board.aliases.insert(player.id, veltrix_sdk::shared_player_id(&player.name));
        }
        let started_ms = runs.0.get(&hunt.id).and_then(|r| r.started_ms).unwrap_or(clock.unix_ms);
        let at_ms = u64::try_from(clock.unix_ms - started_ms).unwrap_or(0);
        let made: Vec<&Claim> = claims
            .read()
            .filter_map(|c| match c {
                ClaimOutcome::Claimed(claim) if !claim.made_elsewhere() => Some(claim),
                _ => None,
            })
            .collect();
        for loot in granted.read() {
            let Some(claim) = made.iter().find(|c| c.player == loot.player && c.vault.id == loot.vault) else {
                continue;
            };
            let key = crate::hunt::claim_key(SCORES, hunt, &loot.vault, Some((&claim.claimant, &claim.player_name)));
            let value = SharedScore { name: claim.player_name.clone(), score: loot_score(loot, assets), at_ms };
            ledger.ask(key, veltrix_sdk::rmp_serde::to_vec_named(&value).expect("scores serialise"));
        }
        // Created or held (asked again), the score is counted when the ledger tells it.
        drop(ledger.take_answers_under(SCORES));
        let news = ledger.take_news_under(SCORES);
        if news.is_empty() {
            return;
        }
        let run = crate::hunt::run_prefix(SCORES, hunt);
        for news in news {
            if !news.key.starts_with(&run) {
                continue;
            }
            let Ok(score) = veltrix_sdk::rmp_serde::from_slice::<SharedScore>(&news.value) else { continue };
            board.record(veltrix_sdk::shared_player_id(&score.name), &score.name, 1, score.score, score.at_ms);
        }
    }
}

/// Writes [`BoardChanged`] when the top `LeaderboardSize` or the number of players ranked
/// differs from the last one announced (a claim below the top still changes the count
/// clients show), at most once per `TickInfo::rate` ticks; a change within that second waits
/// for its end. Nothing with `LeaderboardSize` 0.
pub fn announce_board(
    board: Res<Leaderboard>,
    rules: Res<LeaderboardRules>,
    tick: Res<TickInfo>,
    mut announcer: ResMut<BoardAnnouncer>,
    mut out: MessageWriter<BoardChanged>,
) {
    if announcer.seen_generation == board.generation {
        return;
    }
    if announcer.last_tick.is_some_and(|last| tick.tick < last + u64::from(tick.rate)) {
        return;
    }
    announcer.seen_generation = board.generation;
    if rules.size == 0 {
        return;
    }
    let top = board.iter().take(rules.size).map(|(p, e)| (p, e.vaults, e.score));
    if top.clone().eq(announcer.announced.iter().copied()) && announcer.announced_players == board.len() {
        return;
    }
    announcer.announced = top.collect();
    announcer.announced_players = board.len();
    announcer.last_tick = Some(tick.tick);
    out.write(BoardChanged { top: final_board(&board, rules.size), players: board.len() as u32 });
}

#[cfg(test)]
mod tests {
    use rand::{RngExt, SeedableRng};

    use super::*;

    fn ranking(board: &Leaderboard) -> Vec<PlayerId> {
        board.iter().map(|(p, _)| p).collect()
    }

    #[test]
    fn ties_fall_to_vaults_then_the_earlier_find_then_the_lower_id() {
        let mut board = Leaderboard::new("Test");
        // Equal scores: more vaults first.
        board.record(1, "ann", 1, 100, 10);
        board.record(2, "ben", 2, 100, 20);
        assert_eq!(ranking(&board), [2, 1]);
        // Equal score and vaults: the earlier last find first.
        board.record(3, "cat", 2, 100, 15);
        assert_eq!(ranking(&board), [3, 2, 1]);
        // All equal: the lower player id.
        board.record(7, "dan", 2, 100, 15);
        board.record(5, "eve", 2, 100, 15);
        assert_eq!(ranking(&board), [3, 5, 7, 2, 1]);
        // A higher score beats everything.
        board.record(9, "fay", 1, 101, 99);
        assert_eq!(ranking(&board), [9, 3, 5, 7, 2, 1]);
        let ranks: Vec<u32> = [9, 3, 5, 7, 2, 1].iter().map(|p| rank_of(&board, *p).unwrap().rank).collect();
        assert_eq!(ranks, [1, 2, 3, 4, 5, 6], "no two players share a rank");
    }

    #[test]
    fn rank_of_counts_from_the_top_and_knows_who_is_not_ranked() {
        let mut board = Leaderboard::new("Test");
        assert_eq!(rank_of(&board, 1), None);
        board.record(1, "ann", 1, 5, 3);
        board.record(2, "ben", 1, 50, 4);
        assert!(board.add_score(1, 100));
        assert!(!board.add_score(3, 100), "not on the board");
        let ann = rank_of(&board, 1).unwrap();
        assert_eq!((ann.rank, ann.of, ann.entry.score, ann.entry.vaults), (1, 2, 105, 1));
        assert_eq!(rank_of(&board, 2).unwrap().rank, 2);
        assert_eq!(rank_of(&board, 3), None);
        let top = final_board(&board, 1);
        assert_eq!(top.len(), 1);
        assert_eq!((top[0].rank, top[0].player, top[0].name.as_str()), (1, 1, "ann"));
        assert_eq!(final_board(&board, 10).len(), 2);
    }

    /// Random claims and loot: after every step the board's order is the order a full sort of
    /// the entries gives, and every rank matches its position.
    #[test]
    fn incremental_updates_keep_the_order_of_a_full_sort() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let mut board = Leaderboard::new("Test");
        for step in 0..2000u64 {
            let player = rng.random_range(1..40u64);
            let tick = step / 3;
            match rng.random_range(0..3) {
                0 => board.record(player, "p", 1, rng.random_range(0..4), tick),
                1 => {
                    board.add_score(player, rng.random_range(0..4));
                }
                _ => board.record(player, "p", 0, 0, tick),
            }
            let mut sorted: Vec<(PlayerId, Entry)> = board.entries.iter().map(|(p, e)| (*p, e.clone())).collect();
            sorted.sort_by(|(pa, a), (pb, b)| {
                b.score
                    .cmp(&a.score)
                    .then(b.vaults.cmp(&a.vaults))
                    .then(a.last_find_tick.cmp(&b.last_find_tick))
                    .then(pa.cmp(pb))
            });
            let expected: Vec<PlayerId> = sorted.iter().map(|(p, _)| *p).collect();
            assert_eq!(ranking(&board), expected, "step {step}");
            assert_eq!(board.order.len(), board.entries.len());
            if step % 97 == 0 {
                for (i, p) in expected.iter().enumerate() {
                    assert_eq!(rank_of(&board, *p).unwrap().rank as usize, i + 1);
                }
                // Asked all at once, in any order, some twice, some not ranked.
                let asked: Vec<PlayerId> = (0..30).map(|_| rng.random_range(1..45u64)).collect();
                let one_by_one: Vec<Option<Rank>> = asked.iter().map(|p| rank_of(&board, *p)).collect();
                assert_eq!(ranks_of(&board, &asked), one_by_one, "step {step}");
            }
        }
    }

    #[test]
    fn a_restored_board_keeps_its_clock_ahead_of_its_finds() {
        let mut board = Leaderboard::new("Test");
        board.restore(4, Entry { name: "ann".into(), vaults: 1, score: 10, last_find_tick: 900 });
        // Tick 5 of the new run is later than tick 900 of the last one.
        assert_eq!(board.clock(5), 905);
        board.record(2, "ben", 1, 10, board.clock(5));
        assert_eq!(ranking(&board), [4, 2], "the find before the restart came first");
        assert_eq!(board.take_changed().collect::<Vec<_>>(), [2], "a restored entry is not saved again");
    }

    #[test]
    fn the_top_is_announced_on_change_at_most_once_per_second() {
        let mut world = World::new();
        register(&mut world, LeaderboardRules { size: 2 });
        world.insert_resource(TickInfo::new(10));
        let mut announce = veltrix_sdk::bevy_ecs::system::IntoSystem::into_system(announce_board);
        announce.initialize(&mut world);
        let mut sent = Vec::new();
        for tick in 1..=40u64 {
            world.resource_mut::<TickInfo>().tick = tick;
            let mut board = world.resource_mut::<Leaderboard>();
            match tick {
                2 => board.record(1, "ann", 1, 10, tick),
                // A change within the second after tick 2: announced at tick 12.
                5 => board.record(2, "ben", 1, 20, tick),
                // Below the top 2, but one more player ranked: announced at tick 22.
                15 => board.record(3, "cat", 1, 1, tick),
                // Below the top, the count unchanged: nothing to announce.
                24 => board.record(3, "cat", 1, 1, tick),
                // Reorders the top: announced at once (a second has passed).
                35 => board.record(1, "ann", 1, 30, tick),
                _ => {}
            }
            announce.run((), &mut world).unwrap();
            world.resource_mut::<Messages<BoardChanged>>().update();
            let mut messages = world.resource_mut::<Messages<BoardChanged>>();
            for m in messages.drain() {
                sent.push((tick, m.top.iter().map(|e| e.player).collect::<Vec<_>>(), m.players));
            }
        }
        assert_eq!(sent, [(2, vec![1], 1), (12, vec![2, 1], 2), (22, vec![2, 1], 3), (35, vec![1, 2], 3)]);
    }
}
