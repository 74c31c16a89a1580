//! Area of interest: which players see which. A uniform grid over the world (cells at least one
//! interest radius plus hysteresis wide, so the 3x3 cells around a player hold everyone it may
//! see, each with its position and who it is, so a neighbour costs a subtraction, not a lookup
//! of its components; the players in one array by cell, so those cells are three runs of
//! memory), visibility updated only for players that moved; with hysteresis: a player comes
//! into view within `radius` and leaves it beyond `radius + hysteresis`, so one walking along
//! the edge does not flicker in and out. What players must be told goes to delivery as
//! [`Mail`]: this module never writes to a connection.
//!
//! What a player sees of the others is told at the state-update rate ([`StateUpdates`]): `rate`
//! times a second, at ticks of its own phase, a player is told who came into its view and who
//! left it since its last update, in the order they did, then where the players it sees that
//! moved since are now; so each tick writes to only `rate / tick rate` of the players, and a
//! frame carries several neighbours' news instead of one. A player that joins is told who is
//! near at once, in its first frame.
//!
//! Moves are pulled, not pushed: a mover notes the tick it moved in (one number in a dense
//! table by entity index) and queues each player that sees it for its next update (a look at
//! one more dense table); at that update the player's view is read for whoever moved since its
//! last. So the hottest loop, a mover's neighbours, touches none of their components.

use std::collections::hash_map::Entry;

use ahash::AHashMap;
use smallvec::SmallVec;

use veltrix_sdk::{
    Player, PlayerId, Position, TickInfo,
    bevy_ecs::system::SystemParam,
    prelude::*,
    protocol::{PlayerAppeared, PlayerGone, PlayerMoved, ServerMessage},
};

use crate::{
    cache::{PREFETCH_AHEAD, prefetch},
    mail::{Letter, Mail},
};

/// A player of another server sharing the hunt (docs/scale-out.md), seen here: in the grid and
/// in views like a player of this server, told of to those who see it, told nothing itself (it
/// has no connection here). Its id is this server's for it, above every id it gives its own.
#[derive(Component, Debug, Clone)]
pub struct RemotePlayer {
    pub id: PlayerId,
    pub name: String,
}

/// Whose a position is: a player of this server, or of another.
type Who = AnyOf<(&'static Player, &'static RemotePlayer)>;

/// The id and name of whoever `who` is, and whether it is a player of this server (one with a
/// connection, to be told things).
fn identity<'a>(who: (Option<&'a Player>, Option<&'a RemotePlayer>)) -> (PlayerId, &'a str, bool) {
    match who {
        (Some(p), _) => (p.id, &p.name, true),
        (None, Some(r)) => (r.id, &r.name, false),
        (None, None) => unreachable!("AnyOf matches one at least"),
    }
}

/// Positions and who they are: players of this server and of others.
type Located<'w, 's> = Query<'w, 's, (Who, &'static Position)>;

/// The players whose position changed this tick: who, where, and their place in the grid.
type Movers<'w, 's> = Query<'w, 's, (Entity, Who, &'static Position, &'static mut Interest), Changed<Position>>;

/// The grid of players by cell, and when each last moved.
#[derive(Resource, Debug)]
pub struct InterestGrid {
    radius: f32,
    hysteresis: f32,
    /// The side of an area of interest ([`InterestGrid::cell_of`]): the radius and hysteresis.
    cell: f32,
    /// The side of the grid's own cells: `cell`, or more in a world that would have more than
    /// [`MAX_CELLS`] of them. Any side from `cell` up keeps the cells around a point within
    /// `cell` of it a superset of who is that near.
    side: f32,
    /// Cells along x and along y, covering the world. A position outside it counts in the
    /// nearest cell (clamped): the cells around any point stay a superset.
    columns: i32,
    rows: i32,
    /// Every player in the grid, by its entity's index (`None` where none): where it is, and
    /// its cell.
    slots: Vec<Option<Member>>,
    /// The players by cell, row by row, each cell's by entity index: cell `i`'s are
    /// `members[starts[i]..starts[i + 1]]`, rebuilt from `slots` (a counting sort, about 0.1
    /// ms at 12,000) when they changed, once a tick. So the 3 x 3 cells around a player are
    /// three runs of memory (a row's three cells are one), found without hashing; and no
    /// cell has a list of its own to grow: a tick allocates nothing for the grid.
    members: Vec<Member>,
    starts: Vec<u32>,
    /// Where the next member of each cell goes while `members` is rebuilt.
    fill: Vec<u32>,
    /// `slots` changed since `members` was built.
    stale: bool,
    /// Each player's last move, by its entity's index, so the table stays in the core's cache
    /// where the players' components would not. An index another entity held before keeps
    /// that one's move until the new one's first, which is its join: no player is told of a
    /// move before it is told the player appeared.
    moves: Vec<LastMove>,
    /// The tick of each player's last move, by its entity's index, beside `moves`: a state
    /// update asks it of every player seen (a dozen each, thousands of updates a tick), and
    /// most did not move since; 8 bytes a player (96 KB at 12,000) stay in the cache where
    /// the 32 of a `LastMove` did not.
    moved_in: Vec<u64>,
    /// How many times [`update_interest`] has run: what a [`LastMove`]'s letter is stamped
    /// with, valid in the update that wrote it (the mail is delivered and emptied after).
    updates: u64,
}

/// At most this many cells in the grid (256 KB of `starts`), whatever the world's size and the
/// radius: the rebuild of `members` passes over every cell.
const MAX_CELLS: usize = 1 << 16;

/// A player's last move: what PlayerMoved tells of it (its tick is in
/// [`InterestGrid::moved_in`]); and that PlayerMoved, once written in an update, for every
/// player told of it in that update (beside the move it tells, so it costs no lookup of its
/// own).
#[derive(Debug, Clone, Copy, Default)]
struct LastMove {
    id: PlayerId,
    x: f32,
    y: f32,
    /// The update (`InterestGrid::updates`) `letter` was written in; 0: none yet.
    written_in: u64,
    letter: Letter,
}

/// A player in the grid: where it is, and who. [`update_interest`] places every mover of a
/// tick, in its new cell, before any looks around it: so the cells around a player hold
/// everyone near it, each where it is now.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Member {
    entity: Entity,
    x: f32,
    y: f32,
    id: PlayerId,
    /// A player of this server (one to be told things), not of another.
    here: bool,
    /// Its cell's index in the grid's `starts`.
    cell: u32,
}

/// Those a player sees held in its [`Interest`] itself: spread players see about a dozen and
/// hardly ever more than 32, so a list goes to the heap only in a crowd. Entity indices of 4
/// bytes, so 32 take what 16 entities did.
const SEEN_INLINE: usize = 32;

/// A player's place in the grid and the players it sees.
#[derive(Component, Debug, Default)]
pub struct Interest {
    cell: Option<(i32, i32)>,
    /// Their entities' indices (the grid's slots give the entity), sorted as their entities
    /// sort (by index, highest first, bevy's order of entities of one generation), so that
    /// messages come out in the same order on every run: a sorted vector, not a tree, because
    /// it holds a dozen or so and is read far more often than changed. Held in the component
    /// up to `SEEN_INLINE` (on the heap beyond): a tick reads the lists of thousands of players
    /// in no order memory likes, and a list elsewhere on the heap was a second cache miss for
    /// each; and a list that went to the heap was an allocation in a steady tick.
    pub visible: SmallVec<[u32; SEEN_INLINE]>,
    /// The tick it was first placed in the grid: in that tick it is told at once who is near.
    joined: Option<u64>,
    /// The tick it was last told where those it sees are (its last state update, or its join):
    /// those that moved after it are told at its next.
    told_tick: u64,
}

/// Where `index` is in a list of those a player sees (highest index first), or would go.
fn find_seen(seen: &[u32], index: u32) -> Result<usize, usize> {
    seen.binary_search_by(|x| index.cmp(x))
}

/// A change of what a player sees, to be told at its next state update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ViewChange {
    /// Told with where it is then.
    Appeared(Entity),
    /// The player and its id.
    Gone(Entity, PlayerId),
}

/// When players are told of the moves of those they see: `rate` times a second, each player at
/// ticks of its own phase (from its id), so the updates of a second are spread evenly over its
/// ticks. At `rate >= tick_rate` every player every tick.
#[derive(Resource, Debug, Clone, Copy)]
pub struct StateUpdates {
    rate: u64,
    tick_rate: u64,
}

impl StateUpdates {
    pub fn new(rate: u32, tick_rate: u32) -> Self {
        let tick_rate = u64::from(tick_rate.max(1));
        Self { rate: u64::from(rate).clamp(1, tick_rate), tick_rate }
    }

    /// Updates per second, as Welcome tells them (at most the tick rate).
    pub fn rate(&self) -> u32 {
        self.rate as u32
    }

    /// The first tick from `tick` on in which `player` gets its state update: where `t * rate /
    /// tick_rate` (see [`StateUpdates::due`]) next reaches a whole number, worked out rather
    /// than searched for (it is asked once per player and update, on the tick's hottest path).
    pub fn next_due(&self, player: PlayerId, tick: u64) -> u64 {
        let t = self.shifted(player, tick);
        let next_whole = (t - 1) * self.rate / self.tick_rate + 1;
        let due = (next_whole * self.tick_rate).div_ceil(self.rate);
        tick + (due - t)
    }

    /// `tick` shifted by `player`'s phase (and a whole cycle, so that `t - 1` never wraps).
    fn shifted(&self, player: PlayerId, tick: u64) -> u64 {
        tick.wrapping_add(player % self.tick_rate).wrapping_add(self.tick_rate)
    }

    /// Whether `player` gets its state update in `tick`: when `rate` ticks out of every
    /// `tick_rate` are due, spaced as evenly as whole ticks allow, shifted by the player's phase.
    pub fn due(&self, player: PlayerId, tick: u64) -> bool {
        if self.rate == self.tick_rate {
            return true;
        }
        let t = self.shifted(player, tick);
        (t * self.rate) / self.tick_rate != ((t - 1) * self.rate) / self.tick_rate
    }
}

impl Interest {
    fn see(&mut self, other: Entity) {
        if let Err(at) = find_seen(&self.visible, other.index_u32()) {
            self.visible.insert(at, other.index_u32());
        }
    }

    fn unsee(&mut self, other: Entity) {
        if let Ok(at) = find_seen(&self.visible, other.index_u32()) {
            self.visible.remove(at);
        }
    }
}

/// Adds `change` to `views`, the changes to tell a player at one update in the order they
/// happened. A player gone that came into view since the last update cancels its arrival
/// instead: the client never heard of it, and hears of neither.
fn note(views: &mut Vec<ViewChange>, change: ViewChange) {
    if let ViewChange::Gone(other, _) = change
        && let Some(at) = views.iter().position(|&v| v == ViewChange::Appeared(other))
    {
        views.remove(at);
        return;
    }
    views.push(change);
}

/// The players waiting for their state update, by the tick it is due in (slot `tick %
/// tick_rate`; the pattern of due ticks repeats every `tick_rate` ticks), each with a grid
/// cell (row, column) it was at or beside when it got its first news: a tick looks only at the
/// players due in it, and tells them in cell order, so that one player's neighbours (their
/// moves, their letters) are still in the cache for the next.
#[derive(Resource, Debug, Default)]
pub struct DueUpdates {
    slots: Vec<DueSlot>,
    /// Who waits in a slot, by entity index ([`Entity::PLACEHOLDER`]: none; an entity, so that
    /// a stale index another entity held is not taken for this one): a player is in a slot
    /// exactly while it has news. Apart from `chains`: a mover's every neighbour is looked up
    /// here, nearly all of them queued already, and 8 bytes a player (96 KB at 12,000) stay in
    /// the cache where the 24 of both together did not.
    waiting: Vec<Entity>,
    /// Where each waiting player's news is, by entity index.
    chains: Vec<Chain>,
    /// The last tick whose slot was told.
    told_tick: u64,
}

/// The players due in one tick of the cycle, and their news. Both lists keep their room: a
/// player's news is not a list of its own, which grew (an allocation) whenever one player had
/// more news than ever before, and was one more load in no order memory likes at its update.
#[derive(Debug, Default)]
struct DueSlot {
    /// Each player with the cell (row, column) it was at or beside when it got its first news.
    players: Vec<((i32, i32), Entity)>,
    /// Changes of what they see, each player's chained from its [`Chain::first`] in the
    /// order they happened.
    changes: Vec<NotedChange>,
}

/// A change of what a player sees, and the index in its slot's `changes` of that player's
/// next ([`NO_CHANGE`]: none yet).
#[derive(Debug, Clone, Copy)]
struct NotedChange {
    change: ViewChange,
    next: u32,
}

/// The end of a chain of changes.
const NO_CHANGE: u32 = u32::MAX;

/// A waiting player's slot, and the first and last of its changes there.
#[derive(Debug, Clone, Copy)]
struct Chain {
    slot: u32,
    first: u32,
    last: u32,
}

impl Chain {
    const NONE: Self = Self { slot: 0, first: NO_CHANGE, last: NO_CHANGE };
}

impl DueUpdates {
    /// Puts `to` (id `id`, at or beside `cell`, row and column) in the slot of its next update,
    /// unless it waits in one already; its place in `waiting` and `chains`.
    fn queue(
        &mut self,
        (updates, tick): (&StateUpdates, u64),
        (to, id): (Entity, PlayerId),
        cell: (i32, i32),
    ) -> usize {
        let at = to.index_u32() as usize;
        if at >= self.waiting.len() {
            self.waiting.resize(at + 1, Entity::PLACEHOLDER);
            self.chains.resize(at + 1, Chain::NONE);
        }
        if self.waiting[at] == to {
            return at;
        }
        if self.slots.len() != updates.tick_rate as usize {
            self.slots.resize_with(updates.tick_rate as usize, DueSlot::default);
        }
        // Its own slot until it is told, even when ticks were skipped and its next due tick
        // from now on is a later one.
        let slot = (updates.next_due(id, tick) % updates.tick_rate) as u32;
        self.waiting[at] = to;
        self.chains[at] = Chain { slot, ..Chain::NONE };
        self.slots[slot as usize].players.push((cell, to));
        at
    }

    /// Notes `change` of what `to` (id `id`, in `cell`, column and row) sees for its next
    /// update.
    fn tell(
        &mut self,
        clock: (&StateUpdates, u64),
        (to, id): (Entity, PlayerId),
        cell: Option<(i32, i32)>,
        change: ViewChange,
    ) {
        let (x, y) = cell.unwrap_or_default();
        let at = self.queue(clock, (to, id), (y, x));
        let chain = &mut self.chains[at];
        let changes = &mut self.slots[chain.slot as usize].changes;
        let noted = changes.len() as u32;
        changes.push(NotedChange { change, next: NO_CHANGE });
        match chain.last {
            NO_CHANGE => chain.first = noted,
            last => changes[last as usize].next = noted,
        }
        chain.last = noted;
    }
}

impl InterestGrid {
    /// The grid of a world `width` by `depth` tiles.
    pub fn new(radius: f32, hysteresis: f32, (width, depth): (u32, u32)) -> Self {
        let cell = radius + hysteresis;
        let along = |tiles: u32, side: f32| ((tiles as f32 / side).ceil().min(MAX_CELLS as f32) as usize).max(1);
        let mut side = cell;
        while along(width, side) * along(depth, side) > MAX_CELLS {
            side *= 2.0;
        }
        let (columns, rows) = (along(width, side) as i32, along(depth, side) as i32);
        Self {
            radius,
            hysteresis,
            cell,
            side,
            columns,
            rows,
            slots: Vec::new(),
            members: Vec::new(),
            starts: vec![0; (columns * rows) as usize + 1],
            fill: Vec::new(),
            stale: false,
            moves: Vec::new(),
            moved_in: Vec::new(),
            updates: 0,
        }
    }

    /// The area of interest (x, y) is in, cells `radius + hysteresis` wide, unbounded: what
    /// shards name their areas by.
    pub(crate) fn cell_of(&self, x: f32, y: f32) -> (i32, i32) {
        ((x / self.cell).floor() as i32, (y / self.cell).floor() as i32)
    }

    /// The grid's cell (column, row) of (x, y), the nearest when outside the world. Float to
    /// int casts saturate (NaN gives 0).
    fn cell_at(&self, x: f32, y: f32) -> (i32, i32) {
        (
            ((x / self.side).floor() as i32).clamp(0, self.columns - 1),
            ((y / self.side).floor() as i32).clamp(0, self.rows - 1),
        )
    }

    /// The index in `starts` of the cell (column, row).
    fn index_of(&self, (cx, cy): (i32, i32)) -> usize {
        (cy * self.columns + cx) as usize
    }

    /// Puts `member` where it is, in its cell once [`sort`](Self::sort)ed; that cell (column,
    /// row).
    fn place(&mut self, interest: &mut Interest, mut member: Member) -> (i32, i32) {
        let (cx, cy) = self.cell_at(member.x, member.y);
        member.cell = self.index_of((cx, cy)) as u32;
        let at = member.entity.index_u32() as usize;
        if at >= self.slots.len() {
            self.slots.resize(at + 1, None);
        }
        self.slots[at] = Some(member);
        interest.cell = Some((cx, cy));
        self.stale = true;
        (cx, cy)
    }

    fn remove(&mut self, entity: Entity) {
        if let Some(slot) = self.slots.get_mut(entity.index_u32() as usize)
            && slot.is_some_and(|m| m.entity == entity)
        {
            *slot = None;
            self.stale = true;
        }
    }

    /// Rebuilds `members` from `slots` if they changed: counts per cell, their sums, then each
    /// player in its cell's run, in entity order. Its buffers keep their room.
    fn sort(&mut self) {
        if !self.stale {
            return;
        }
        self.stale = false;
        let Self { slots, members, starts, fill, .. } = self;
        starts.fill(0);
        for m in slots.iter().flatten() {
            starts[m.cell as usize + 1] += 1;
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        fill.clear();
        fill.extend_from_slice(&starts[..starts.len() - 1]);
        let placeholder = Member { entity: Entity::PLACEHOLDER, x: 0.0, y: 0.0, id: 0, here: false, cell: 0 };
        members.clear();
        members.resize(starts[starts.len() - 1] as usize, placeholder);
        for &m in slots.iter().flatten() {
            let at = &mut fill[m.cell as usize];
            members[*at as usize] = m;
            *at += 1;
        }
    }

    /// Notes that `member` moved in `tick`, to where it is.
    fn note_move(&mut self, member: &Member, tick: u64) {
        let at = member.entity.index_u32() as usize;
        if at >= self.moves.len() {
            self.moves.resize(at + 1, LastMove::default());
            self.moved_in.resize(at + 1, 0);
        }
        self.moves[at] = LastMove { id: member.id, x: member.x, y: member.y, ..LastMove::default() };
        self.moved_in[at] = tick;
    }

    /// The PlayerMoved of the entity of index `index`, if it moved after `tick`: written into
    /// `mail` the first time it is asked for in this update, the same letter after.
    fn moved_letter(&mut self, index: u32, tick: u64, mail: &mut Mail) -> Option<Letter> {
        let update = self.updates;
        if *self.moved_in.get(index as usize)? <= tick {
            return None;
        }
        let moved = &mut self.moves[index as usize];
        if moved.written_in != update {
            let LastMove { id, x, y, .. } = *moved;
            moved.letter = mail.write(&ServerMessage::PlayerMoved(PlayerMoved { player: id, x, y }));
            moved.written_in = update;
        }
        Some(moved.letter)
    }

    /// The player in the grid whose entity's index is `index`.
    fn member_at(&self, index: u32) -> Option<&Member> {
        self.slots.get(index as usize)?.as_ref()
    }

    /// The entity of the player in the grid whose entity's index is `index`.
    fn entity_at(&self, index: u32) -> Option<Entity> {
        self.member_at(index).map(|m| m.entity)
    }

    /// Calls `f` for every player in the cells that may hold players within `radius` of (x, y)
    /// (a superset: the caller checks the distance), where they were at the last interest
    /// update, in cell order (row by row) and entity order within a cell. Costs the cells in
    /// the radius's box and their players, so any radius (even infinite) is bounded by the
    /// grid. One that left since is not given.
    pub fn for_each_near(&self, x: f32, y: f32, radius: f32, mut f: impl FnMut(Entity)) {
        self.for_each_member_near(x, y, radius, |m| {
            if self.slots.get(m.entity.index_u32() as usize).is_some_and(|s| s.is_some_and(|s| s.entity == m.entity)) {
                f(m.entity)
            }
        });
    }

    /// [`InterestGrid::for_each_near`], with where each one is and who, as of the last
    /// [`sort`](Self::sort).
    fn for_each_member_near(&self, x: f32, y: f32, radius: f32, mut f: impl FnMut(&Member)) {
        if radius.is_nan() || x.is_nan() || y.is_nan() {
            return;
        }
        let (x0, y0) = self.cell_at(x - radius, y - radius);
        let (x1, y1) = self.cell_at(x + radius, y + radius);
        for cy in y0..=y1 {
            // A row's cells from x0 to x1 are one run.
            let (from, to) = (self.starts[self.index_of((x0, cy))], self.starts[self.index_of((x1, cy)) + 1]);
            self.members[from as usize..to as usize].iter().for_each(&mut f);
        }
    }
}

/// The tick being run and the state-update rate: which players are told of moves now.
#[derive(SystemParam)]
pub struct UpdateClock<'w> {
    updates: Res<'w, StateUpdates>,
    tick: Res<'w, TickInfo>,
}

/// Buffers [`update_interest`] reuses from tick to tick.
#[derive(Default)]
pub struct Scratch {
    /// The movers by (row, column) of their new cell, then id.
    order: Vec<((i32, i32), Member)>,
    /// Those within the radius of the mover that it did not see.
    near: Vec<Member>,
    /// The mover's visible set (a copy: visibility changes while it is walked).
    seen: Vec<u32>,
    /// The name of the PlayerAppeared being encoded, kept with its room.
    name: String,
    /// This tick's letters, each written once when first needed: each player's PlayerAppeared,
    /// and PlayerGone by id (its PlayerMoved is kept with its move, [`LastMove`]).
    letters: TickLetters,
    /// Those told as appeared in the update being told (their moves are not told again), by
    /// entity index.
    appeared_now: Vec<u32>,
    /// The changes of what the player being told sees.
    views: Vec<ViewChange>,
}

/// This tick's letters about players, each written once when first needed.
#[derive(Default)]
struct TickLetters {
    appeared: AHashMap<Entity, Letter>,
    gone: AHashMap<PlayerId, Letter>,
}

impl TickLetters {
    fn clear(&mut self) {
        self.appeared.clear();
        self.gone.clear();
    }
}

/// For each player whose position changed this tick (joined players included): places it in
/// its cell; then, mover by mover, updates visibility both ways, noting who came into and left
/// the view of the players concerned (a player that joined this tick is told who is near at
/// once), and queues those that see it for their next state update; then tells each player
/// whose state update is due its news, as mail for delivery: PlayerAppeared and PlayerGone in
/// the order they happened, then where the players it sees that moved since its last update
/// are (one PlayerMoved each, the latest position). Work is proportional to the movers and
/// their neighbours.
#[allow(clippy::too_many_arguments)]
pub fn update_interest(
    mut grid: ResMut<InterestGrid>,
    mut interests: ParamSet<(Movers, Query<&mut Interest>)>,
    players: Located,
    mut mail: ResMut<Mail>,
    mut due: ResMut<DueUpdates>,
    clock: UpdateClock,
    mut scratch: Local<Scratch>,
) {
    let UpdateClock { updates, tick } = clock;
    let Scratch { order, near, seen, name, letters, appeared_now, views } = &mut *scratch;
    letters.clear();
    grid.updates += 1;
    let tick = tick.tick;
    order.clear();
    // Every mover in its cell first: a neighbour that moved out of the cells around a player
    // is found in its new one, not missed in its old. Placed as the query passes over the
    // players' table (in any order: the grid keeps them by entity index): a lookup by entity
    // for each was a miss.
    for (mover, who, pos, mut interest) in &mut interests.p0() {
        let (id, _, here) = identity(who);
        let member = Member { entity: mover, x: pos.x, y: pos.y, id, here, cell: 0 };
        if interest.cell.is_none() {
            interest.joined = Some(tick);
            interest.told_tick = tick;
        }
        let (cx, cy) = grid.place(&mut interest, member);
        grid.note_move(&member, tick);
        order.push(((cy, cx), member));
    }
    grid.sort();
    // Movers in grid-cell order, not id order: the next mover is likely in the same cell, so
    // the neighbours it looks at (positions, views, frames) are still in the cache from the
    // last one. Ids are unique: the order stays the same on every run.
    order.sort_unstable_by_key(|&(cell, member)| (cell, member.id));
    let mut interests = interests.p1();
    let enter = grid.radius * grid.radius;
    let leave = (grid.radius + grid.hysteresis) * (grid.radius + grid.hysteresis);
    for &(cell, Member { entity: mover, x, y, here, .. }) in order.iter() {
        let pos = &Position { x, y };
        let Ok(interest) = interests.get(mover) else { continue };
        seen.clear();
        seen.extend_from_slice(&interest.visible);
        // Those it sees: still in range (with hysteresis), to hear of its move at their next
        // update, or gone. Each where the grid has it (placed this tick if it moved).
        for &other in seen.iter() {
            // One it sees is in the grid: a player that leaves goes from every view first.
            let Some(&m) = grid.member_at(other) else {
                debug_assert!(false, "one seen is in the grid");
                continue;
            };
            if pos.distance_squared(m.x, m.y) > leave {
                unsee(mover, m.entity, &mut interests, &players, &mut due, &updates, tick);
            } else if m.here {
                // A player of another server is told by its own. The mover's cell stands for the
                // neighbour's (it is at most one cell away) for the order updates are told in.
                due.queue((&updates, tick), (m.entity, m.id), cell);
            }
        }
        // Those it does not see yet, within the radius: in view now.
        near.clear();
        grid.for_each_member_near(pos.x, pos.y, grid.radius, |m| {
            if pos.distance_squared(m.x, m.y) <= enter
                && m.entity != mover
                && find_seen(seen, m.entity.index_u32()).is_err()
            {
                near.push(*m);
            }
        });
        for &m in near.iter() {
            // Two players of other servers: their servers tell them of each other.
            if !here && !m.here {
                continue;
            }
            let other = m.entity;
            let (Ok((who, _)), Ok((other_who, other_pos))) = (players.get(mover), players.get(other)) else { continue };
            let (player, other_player) = (identity(who), identity(other_who));
            for (a, b) in [(mover, other), (other, mover)] {
                if let Ok(mut i) = interests.get_mut(a) {
                    i.see(b);
                }
            }
            for (to, (to_id, _, here), seen, seen_who, seen_pos) in
                [(other, other_player, mover, player, pos), (mover, player, other, other_player, other_pos)]
            {
                if !here {
                    continue;
                }
                let Ok(i) = interests.get(to) else { continue };
                if i.joined == Some(tick) {
                    // Its first frame shows who is near.
                    let appeared = *letters
                        .appeared
                        .entry(seen)
                        .or_insert_with(|| write_appeared(&mut mail, name, seen_who, seen_pos));
                    mail.send(to, appeared);
                } else {
                    due.tell((&updates, tick), (to, to_id), i.cell, ViewChange::Appeared(seen));
                }
            }
        }
    }
    // The slots of every tick since the last one told (more than one after skipped ticks); none
    // until a player first had news.
    let first = (due.told_tick + 1).max(tick.saturating_sub(updates.tick_rate - 1));
    let DueUpdates { slots, waiting, chains, .. } = &mut *due;
    for t in first..=tick {
        let Some(slot) = slots.get_mut((t % updates.tick_rate) as usize) else { break };
        let mut told = Told {
            letters: &mut *letters,
            appeared_now: &mut *appeared_now,
            name: &mut *name,
            views: &mut *views,
            tick,
        };
        tell_updates(slot, (waiting, chains), &mut told, (&mut grid, &players), &mut interests, &mut mail);
    }
    due.told_tick = tick;
}

/// What telling the updates of a tick writes into and keeps, and the tick.
struct Told<'a> {
    letters: &'a mut TickLetters,
    appeared_now: &'a mut Vec<u32>,
    name: &'a mut String,
    /// The changes of what the player being told sees, gathered from its slot.
    views: &'a mut Vec<ViewChange>,
    tick: u64,
}

/// Tells each player of a slot, whose state update is due, its news: who came into its view
/// and who left it since its last update, in that order (PlayerAppeared with where the player
/// is now); then where the players it still sees that moved since are now, one PlayerMoved
/// each, in entity order (none for those it was just told appeared). Empties the slot, and
/// takes its players off the queue.
fn tell_updates(
    slot: &mut DueSlot,
    (waiting, chains): (&mut [Entity], &[Chain]),
    told: &mut Told,
    (grid, players): (&mut InterestGrid, &Located),
    interests: &mut Query<&mut Interest>,
    mail: &mut Mail,
) {
    let Told { letters, appeared_now, name, views, tick } = told;
    let DueSlot { players: due, changes } = slot;
    due.sort_unstable();
    for i in 0..due.len() {
        if let Some(&(_, ahead)) = due.get(i + PREFETCH_AHEAD)
            && let Ok(interest) = interests.get(ahead)
        {
            // Where a tell reads it: the list of those seen.
            prefetch(&interest.visible);
        }
        let (_, to) = due[i];
        let mut next = NO_CHANGE;
        let at = to.index_u32() as usize;
        if waiting.get(at) == Some(&to) {
            next = chains[at].first;
            waiting[at] = Entity::PLACEHOLDER;
        }
        let Ok(mut interest) = interests.get_mut(to) else { continue };
        let Interest { visible, told_tick, .. } = &mut *interest;
        views.clear();
        while let Some(&NotedChange { change, next: after }) = changes.get(next as usize) {
            note(views, change);
            next = after;
        }
        appeared_now.clear();
        for &view in views.iter() {
            let letter = match view {
                ViewChange::Gone(_, id) => *letters
                    .gone
                    .entry(id)
                    .or_insert_with(|| mail.write(&ServerMessage::PlayerGone(PlayerGone { player: id }))),
                ViewChange::Appeared(other) => {
                    debug_assert!(
                        find_seen(visible, other.index_u32()).is_ok(),
                        "one told of as appeared is one it sees"
                    );
                    appeared_now.push(other.index_u32());
                    match letters.appeared.entry(other) {
                        Entry::Occupied(written) => *written.get(),
                        Entry::Vacant(slot) => {
                            let Ok((who, pos)) = players.get(other) else { continue };
                            *slot.insert(write_appeared(mail, name, identity(who), pos))
                        }
                    }
                }
            };
            mail.send(to, letter);
        }
        for &mover in visible.iter() {
            if appeared_now.contains(&mover) {
                continue;
            }
            let Some(letter) = grid.moved_letter(mover, *told_tick, mail) else { continue };
            mail.send(to, letter);
        }
        *told_tick = *tick;
    }
    due.clear();
    changes.clear();
}

/// Ends visibility between `a` and `b` both ways; each that is a player of this server is told
/// at its next state update.
fn unsee(
    a: Entity,
    b: Entity,
    interests: &mut Query<&mut Interest>,
    players: &Located,
    due: &mut DueUpdates,
    updates: &StateUpdates,
    tick: u64,
) {
    for (x, y) in [(a, b), (b, a)] {
        if let Ok(mut i) = interests.get_mut(x) {
            i.unsee(y);
        }
    }
    let (Ok((a_who, _)), Ok((b_who, _))) = (players.get(a), players.get(b)) else { return };
    let (a, b) = ((a, identity(a_who)), (b, identity(b_who)));
    for ((to, (to_id, _, here)), (other, (other_id, ..))) in [(b, a), (a, b)] {
        if here && let Ok(i) = interests.get(to) {
            due.tell((updates, tick), (to, to_id), i.cell, ViewChange::Gone(other, other_id));
        }
    }
}

/// Removes a leaving player from the grid and from everyone's view; those of this server that
/// saw it are told at their next state update.
pub fn forget(world: &mut World, leaving: Entity, id: PlayerId) {
    let Some(mut interest) = world.get_mut::<Interest>(leaving) else { return };
    let visible = std::mem::take(&mut interest.visible);
    if interest.cell.take().is_some() {
        world.resource_mut::<InterestGrid>().remove(leaving);
    }
    let clock = (*world.resource::<StateUpdates>(), world.resource::<TickInfo>().tick);
    world.resource_scope(|world, mut due: Mut<DueUpdates>| {
        for other in visible {
            let Some(other) = world.resource::<InterestGrid>().entity_at(other) else { continue };
            // A player of another server is told by its own.
            let other_id = world.get::<Player>(other).map(|p| p.id);
            let Some(mut i) = world.get_mut::<Interest>(other) else { continue };
            i.unsee(leaving);
            if let Some(other_id) = other_id {
                due.tell((&clock.0, clock.1), (other, other_id), i.cell, ViewChange::Gone(leaving, id));
            }
        }
    });
}

/// `player`'s PlayerAppeared written into the mail. The message's name is copied into `name`,
/// a buffer kept with its room, not into a new `String`.
fn write_appeared(mail: &mut Mail, name: &mut String, player: (PlayerId, &str, bool), pos: &Position) -> Letter {
    name.clear();
    name.push_str(player.1);
    let message = ServerMessage::PlayerAppeared(PlayerAppeared {
        player: player.0,
        name: std::mem::take(name),
        x: pos.x,
        y: pos.y,
    });
    let letter = mail.write(&message);
    if let ServerMessage::PlayerAppeared(appeared) = message {
        *name = appeared.name;
    }
    letter
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A player of this server at (x, y), id 0.
    fn member(entity: Entity, x: f32, y: f32) -> Member {
        Member { entity, x, y, id: 0, here: true, cell: 0 }
    }

    /// The test worlds' size.
    const WORLD: (u32, u32) = (1024, 1024);

    impl InterestGrid {
        /// Who is in the cell (column, row), as of the last sort.
        fn members_in(&self, cell: (i32, i32)) -> &[Member] {
            let i = self.index_of(cell);
            &self.members[self.starts[i] as usize..self.starts[i + 1] as usize]
        }
    }

    fn grid_with(points: &[(f32, f32)]) -> (InterestGrid, Vec<Entity>) {
        let mut world = World::new();
        let mut grid = InterestGrid::new(32.0, 4.0, WORLD);
        let mut entities = Vec::new();
        for &(x, y) in points {
            let e = world.spawn_empty().id();
            let mut interest = Interest::default();
            grid.place(&mut interest, member(e, x, y));
            entities.push(e);
        }
        grid.sort();
        (grid, entities)
    }

    /// Each player is in its cell's run, in entity order, and moves with its position; a
    /// player removed is gone at the next sort; the runs keep their buffer, so a tick with
    /// the same number of players allocates nothing.
    #[test]
    fn players_are_in_their_cells_run_and_the_runs_keep_their_room() {
        let mut world = World::new();
        let mut grid = InterestGrid::new(32.0, 4.0, WORLD);
        let (a, b, c) = (world.spawn_empty().id(), world.spawn_empty().id(), world.spawn_empty().id());
        let (mut ia, mut ib, mut ic) = (Interest::default(), Interest::default(), Interest::default());
        grid.place(&mut ic, member(c, 12.0, 10.0));
        grid.place(&mut ia, member(a, 10.0, 10.0));
        grid.place(&mut ib, member(b, 100.0, 10.0));
        grid.sort();
        let entities = |grid: &InterestGrid, cell| grid.members_in(cell).iter().map(|m| m.entity).collect::<Vec<_>>();
        assert_eq!(entities(&grid, (0, 0)), [a, c], "in entity order");
        assert_eq!(entities(&grid, (2, 0)), [b]);
        assert_eq!(ia.cell, Some((0, 0)));
        let buffer = (grid.members.as_ptr(), grid.members.capacity());
        grid.place(&mut ia, member(a, 495.0, 495.0));
        grid.sort();
        assert_eq!(entities(&grid, (0, 0)), [c]);
        assert_eq!(entities(&grid, (13, 13)), [a]);
        assert_eq!(grid.members_in((13, 13))[0].x, 495.0, "where it is now");
        assert_eq!((grid.members.as_ptr(), grid.members.capacity()), buffer, "the same buffer");
        grid.remove(c);
        let mut near = Vec::new();
        grid.for_each_near(10.0, 10.0, 40.0, |e| near.push(e));
        assert!(near.is_empty(), "one removed is not given, even before the sort: {near:?}");
        grid.sort();
        assert!(entities(&grid, (0, 0)).is_empty());
    }

    /// Positions outside the world count in its nearest cell: the cells around them still hold
    /// everyone near. A world too large for cells of the radius's size gets larger cells.
    #[test]
    fn outside_the_world_and_in_a_huge_world() {
        let (grid, e) = grid_with(&[(-5.0, -5.0), (1030.0, 10.0), (2000.0, 2000.0)]);
        let found = |x, y| {
            let mut found = Vec::new();
            grid.for_each_near(x, y, 36.0, |e| found.push(e));
            found
        };
        assert_eq!(found(-10.0, -10.0), [e[0]]);
        assert_eq!(found(1040.0, 12.0), [e[1]]);
        assert_eq!(found(1023.0, 1023.0), [e[2]], "a superset: the caller checks the distance");
        let huge = InterestGrid::new(0.5, 0.0, (65_536, 256));
        assert!((huge.columns * huge.rows) as usize <= MAX_CELLS, "{} x {}", huge.columns, huge.rows);
        assert!(huge.side >= 0.5 && huge.cell == 0.5);
    }

    /// Runs `update_interest` over a world of players at the given rates: each step sets
    /// positions, runs one tick, and returns each player's mail in order.
    struct Moves {
        world: World,
        schedule: Schedule,
        players: Vec<Entity>,
    }

    impl Moves {
        fn new(rate: u32, tick_rate: u32, at: &[(f32, f32)]) -> Self {
            let mut world = World::new();
            world.insert_resource(InterestGrid::new(32.0, 4.0, WORLD));
            world.insert_resource(StateUpdates::new(rate, tick_rate));
            world.init_resource::<DueUpdates>();
            world.insert_resource(TickInfo::new(tick_rate));
            world.init_resource::<Mail>();
            let players = at
                .iter()
                .enumerate()
                .map(|(i, &(x, y))| {
                    let player = Player { id: i as PlayerId + 1, name: format!("p{i}") };
                    world.spawn((player, Position { x, y }, Interest::default())).id()
                })
                .collect();
            let mut schedule = Schedule::default();
            schedule.add_systems(update_interest);
            Self { world, schedule, players }
        }

        /// [`tick`](Self::tick) with moves of any player index, taken modulo the number of
        /// players (what a property test draws).
        fn tick_wrapping(&mut self, moves: Vec<(usize, f32, f32)>) -> Vec<Vec<ServerMessage>> {
            let players = self.players.len();
            let moves: Vec<(usize, f32, f32)> = moves.into_iter().map(|(i, x, y)| (i % players, x, y)).collect();
            self.tick(&moves)
        }

        /// One tick with these moves; what each player was told, by player index.
        fn tick(&mut self, moves: &[(usize, f32, f32)]) -> Vec<Vec<ServerMessage>> {
            self.world.resource_mut::<TickInfo>().tick += 1;
            for &(i, x, y) in moves {
                *self.world.get_mut::<Position>(self.players[i]).unwrap() = Position { x, y };
            }
            self.schedule.run(&mut self.world);
            let mut told = vec![Vec::new(); self.players.len()];
            let players = self.players.clone();
            let mut mail = self.world.resource_mut::<Mail>();
            for (to, letter) in mail.sent() {
                let i = players.iter().position(|&p| p == to).unwrap();
                told[i].push(veltrix_sdk::protocol::decode_value::<ServerMessage>(mail.bytes(letter)).unwrap());
            }
            mail.clear();
            told
        }
    }

    fn moved(player: PlayerId, x: f32, y: f32) -> ServerMessage {
        ServerMessage::PlayerMoved(PlayerMoved { player, x, y })
    }

    /// At every tick's rate, each move is told in its own tick.
    #[test]
    fn at_the_tick_rate_every_move_is_told_in_its_tick() {
        let mut world = Moves::new(30, 30, &[(10.0, 10.0), (12.0, 10.0)]);
        let first = world.tick(&[]);
        assert!(matches!(first[0][..], [ServerMessage::PlayerAppeared(_)]), "{first:?}");
        for step in 1..=4 {
            let x = 10.0 + step as f32;
            let told = world.tick(&[(0, x, 10.0)]);
            assert_eq!(told[1], [moved(1, x, 10.0)], "step {step}");
            assert!(told[0].is_empty());
        }
    }

    /// A move told to several players in one update is written into the mail once, for all of
    /// them; the next update writes it again, with the position then (the mail was delivered
    /// and emptied in between).
    #[test]
    fn a_move_told_to_many_is_written_once_an_update() {
        let mut world = Moves::new(30, 30, &[(10.0, 10.0), (12.0, 10.0), (10.0, 12.0)]);
        world.tick(&[]);
        for step in 1..=3 {
            let x = 10.0 + step as f32 * 0.5;
            world.world.resource_mut::<TickInfo>().tick += 1;
            *world.world.get_mut::<Position>(world.players[0]).unwrap() = Position { x, y: 10.0 };
            world.schedule.run(&mut world.world);
            let mut mail = world.world.resource_mut::<Mail>();
            let sent: Vec<(Entity, Letter)> = mail.sent().collect();
            assert_eq!(sent.len(), 2, "both neighbours are told, step {step}: {sent:?}");
            assert_eq!(sent[0].1, sent[1].1, "one letter for both, step {step}");
            let told = veltrix_sdk::protocol::decode_value::<ServerMessage>(mail.bytes(sent[0].1)).unwrap();
            assert_eq!(told, moved(1, x, 10.0), "this update's position, step {step}");
            mail.clear();
        }
    }

    /// At a third of the tick rate, a player hears of a neighbour's moves once in three ticks,
    /// the latest position only; appearing and going come at its updates too, in order, and a
    /// joining player is told who is near at once.
    #[test]
    fn below_the_tick_rate_moves_and_visibility_are_told_at_each_players_updates() {
        let mut world = Moves::new(10, 30, &[(10.0, 10.0), (12.0, 10.0)]);
        let first = world.tick(&[]);
        assert!(
            first.iter().all(|told| matches!(told[..], [ServerMessage::PlayerAppeared(_)])),
            "joined: at once, {first:?}"
        );
        let mut heard = Vec::new();
        for step in 1..=9 {
            let x = 10.0 + step as f32 * 0.5;
            let told = world.tick(&[(0, x, 10.0)]);
            heard.extend(told[1].iter().cloned().map(|m| (step, m)));
        }
        assert_eq!(heard.len(), 3, "once a third tick: {heard:?}");
        for (step, message) in &heard {
            assert_eq!(*message, moved(1, 10.0 + *step as f32 * 0.5, 10.0), "the latest position");
        }
        assert!(heard.windows(2).all(|w| w[1].0 - w[0].0 == 3), "evenly spaced: {heard:?}");
        // Far away at once: gone at its next update, and no move after it.
        let mut told = world.tick(&[(0, 200.0, 10.0)]).swap_remove(1);
        for _ in 0..2 {
            told.extend(world.tick(&[]).swap_remove(1));
        }
        assert_eq!(told, [ServerMessage::PlayerGone(PlayerGone { player: 1 })]);
        for _ in 0..3 {
            assert!(world.tick(&[]).iter().all(Vec::is_empty));
        }
        // Back in view and walking on: appeared at its next update, where it is then, and no
        // move told beside it.
        let mut told = Vec::new();
        for (i, x) in [11.0, 11.5, 12.0].into_iter().enumerate() {
            told.extend(world.tick(&[(0, x, 10.0)]).swap_remove(1).into_iter().map(|m| (i, x, m)));
        }
        assert!(
            matches!(&told[..], [(_, x, ServerMessage::PlayerAppeared(a))] if a.player == 1 && a.x == *x),
            "{told:?}"
        );
        // A move, then ticks skipped (a loop that fell behind skips ahead): told all the same.
        let mut told = world.tick(&[(0, 12.5, 10.0)]);
        world.world.resource_mut::<TickInfo>().tick += 40;
        told.extend(world.tick(&[]));
        assert!(told.iter().flatten().any(|m| *m == moved(1, 12.5, 10.0)), "{told:?}");
    }

    /// A player that leaves while it waits for its update gives its entity's index to the next
    /// one that joins: the newcomer is queued for its own update all the same, not taken for
    /// the one that left, and hears of a neighbour's move at its first update.
    #[test]
    fn a_reused_entity_index_is_not_taken_for_the_player_that_held_it() {
        let mut world = Moves::new(1, 30, &[(10.0, 10.0), (12.0, 10.0)]);
        world.tick(&[]);
        // Player 2 hears of player 1's move at its next update, a second away at most.
        world.tick(&[(0, 11.0, 10.0)]);
        let leaving = world.players[1];
        forget(&mut world.world, leaving, 2);
        // The index given straight to the next entity, as the allocator does once its freed
        // indices are handed back.
        let newcomer = world.world.despawn_no_free(leaving).expect("spawned");
        world
            .world
            .spawn_at(
                newcomer,
                (Player { id: 3, name: "p3".into() }, Position { x: 13.0, y: 10.0 }, Interest::default()),
            )
            .expect("the index is free");
        assert_eq!(newcomer.index(), leaving.index());
        world.players[1] = newcomer;
        let joined = world.tick(&[]);
        assert!(matches!(joined[1][..], [ServerMessage::PlayerAppeared(_)]), "{joined:?}");
        let updates = StateUpdates::new(1, 30);
        let mut x = 11.0;
        loop {
            x += 0.5;
            let told = world.tick(&[(0, x, 10.0)]);
            if updates.due(3, world.world.resource::<TickInfo>().tick) {
                assert_eq!(told[1], [moved(1, x, 10.0)], "told at its first update");
                break;
            }
            assert!(told[1].is_empty(), "{told:?}");
        }
    }

    /// A player that comes into view and leaves it again between two of a player's updates is
    /// never told of: the client hears neither.
    #[test]
    fn a_player_in_and_out_of_view_between_two_updates_is_not_told_of() {
        let mut world = Moves::new(1, 30, &[(10.0, 10.0), (300.0, 10.0)]);
        let updates = StateUpdates::new(1, 30);
        world.tick(&[]);
        // Up to a tick after which neither player's update is due for the next two.
        while {
            let next = world.world.resource::<TickInfo>().tick + 1;
            (next..next + 2).any(|t| updates.due(1, t) || updates.due(2, t))
        } {
            assert!(world.tick(&[]).iter().all(Vec::is_empty));
        }
        world.tick(&[(1, 20.0, 10.0)]);
        world.tick(&[(1, 300.0, 10.0)]);
        for _ in 0..40 {
            assert!(world.tick(&[]).iter().all(Vec::is_empty));
        }
    }

    /// The players' updates are spread over the ticks: at a third of the tick rate, each tick
    /// tells about a third of them.
    #[test]
    fn state_updates_are_spread_over_the_ticks() {
        let updates = StateUpdates::new(10, 30);
        for tick in 1..=30 {
            let due = (1..=300).filter(|&p| updates.due(p, tick)).count();
            assert_eq!(due, 100, "tick {tick}");
        }
        let updates = StateUpdates::new(20, 30);
        let due: Vec<u64> = (1..=30).filter(|&t| updates.due(7, t)).collect();
        assert_eq!(due.len(), 20, "{due:?}");
        assert!(due.windows(2).all(|w| w[1] - w[0] <= 2), "at most two ticks apart: {due:?}");
        assert!((1..=30).all(|t| StateUpdates::new(100, 30).due(5, t)), "above the tick rate: every tick");
    }

    proptest::proptest! {
        /// The next due tick is the first tick from `tick` on that is due, at any rates.
        #[test]
        fn next_due_is_the_first_due_tick(
            rate in 1u32..=120, tick_rate in 1u32..=120, player in 0u64..1 << 53, tick in 0u64..1 << 32,
        ) {
            let updates = StateUpdates::new(rate, tick_rate);
            let scanned = (tick..).find(|&t| updates.due(player, t)).expect("a due tick within a cycle");
            proptest::prop_assert_eq!(updates.next_due(player, tick), scanned);
        }
    }

    proptest::proptest! {
        /// Whatever the moves, after each tick: two players within the radius see each other,
        /// two beyond the radius and hysteresis do not, and the grid holds each player at its
        /// position, in its cell.
        #[test]
        fn visibility_and_the_grid_follow_any_moves(
            start in proptest::collection::vec((0f32..120.0, 0f32..120.0), 2..24),
            ticks in proptest::collection::vec(proptest::collection::vec((0usize..24, 0f32..120.0, 0f32..120.0), 0..12), 1..8),
        ) {
            let mut world = Moves::new(30, 30, &start);
            for moves in ticks {
                world.tick_wrapping(moves);
                let positions: Vec<Position> =
                    world.players.iter().map(|&e| *world.world.get::<Position>(e).unwrap()).collect();
                let grid = world.world.resource::<InterestGrid>();
                for (i, &a) in world.players.iter().enumerate() {
                    let (cx, cy) = grid.cell_at(positions[i].x, positions[i].y);
                    let cell = grid.index_of((cx, cy)) as u32;
                    let member = Member { entity: a, x: positions[i].x, y: positions[i].y, id: i as PlayerId + 1, here: true, cell };
                    proptest::prop_assert!(grid.members_in((cx, cy)).contains(&member), "player {} in its cell", i);
                    let visible = &world.world.get::<Interest>(a).unwrap().visible;
                    let visible: Vec<Entity> = visible.iter().map(|&i| grid.entity_at(i).unwrap()).collect();
                    for (j, &b) in world.players.iter().enumerate() {
                        // Squared, as the server compares: a square root rounded to exactly 32
                        // is not within 32.
                        let d2 = positions[i].distance_squared(positions[j].x, positions[j].y);
                        if i != j && d2 <= 32.0 * 32.0 {
                            proptest::prop_assert!(visible.contains(&b), "{} sees {} at {}", i, j, d2.sqrt());
                        }
                        if d2 > 36.0 * 36.0 {
                            proptest::prop_assert!(!visible.contains(&b), "{} does not see {} at {}", i, j, d2.sqrt());
                        }
                    }
                }
            }
        }
    }

    proptest::proptest! {
        /// Whatever the moves, below the tick rate: a client that keeps the players it was told
        /// appeared, until told they went, is never told of a move or a departure of one it
        /// does not see, nor of an arrival of one it sees; and after each of its updates it
        /// sees exactly whom the server has it see, each where it is.
        #[test]
        fn what_a_client_is_told_adds_up_to_what_it_sees(
            start in proptest::collection::vec((0f32..120.0, 0f32..120.0), 2..16),
            ticks in proptest::collection::vec(proptest::collection::vec((0usize..16, 0f32..120.0, 0f32..120.0), 0..8), 1..24),
        ) {
            let mut world = Moves::new(10, 30, &start);
            let updates = StateUpdates::new(10, 30);
            let mut clients: Vec<std::collections::BTreeMap<PlayerId, (f32, f32)>> = vec![Default::default(); start.len()];
            for moves in ticks {
                let told = world.tick_wrapping(moves);
                let tick = world.world.resource::<TickInfo>().tick;
                for (i, messages) in told.into_iter().enumerate() {
                    let client = &mut clients[i];
                    for message in messages {
                        match message {
                            ServerMessage::PlayerAppeared(a) => {
                                proptest::prop_assert!(client.insert(a.player, (a.x, a.y)).is_none(), "{} told {} appeared twice", i, a.player);
                            }
                            ServerMessage::PlayerMoved(m) => {
                                proptest::prop_assert!(client.insert(m.player, (m.x, m.y)).is_some(), "{} told {} moved unseen", i, m.player);
                            }
                            ServerMessage::PlayerGone(g) => {
                                proptest::prop_assert!(client.remove(&g.player).is_some(), "{} told {} went unseen", i, g.player);
                            }
                            other => proptest::prop_assert!(false, "unexpected {:?}", other),
                        }
                    }
                    let id = i as PlayerId + 1;
                    if tick == 1 || updates.due(id, tick) {
                        let visible = &world.world.get::<Interest>(world.players[i]).unwrap().visible;
                        let grid = world.world.resource::<InterestGrid>();
                        let sees: std::collections::BTreeMap<PlayerId, (f32, f32)> = visible
                            .iter()
                            .map(|&index| {
                                let e = grid.entity_at(index).unwrap();
                                let p = world.world.get::<Position>(e).unwrap();
                                (world.world.get::<Player>(e).unwrap().id, (p.x, p.y))
                            })
                            .collect();
                        proptest::prop_assert_eq!(&*client, &sees, "player {} after its update at tick {}", i, tick);
                    }
                }
            }
        }
    }

    #[test]
    fn near_finds_neighbouring_cells_only() {
        let (grid, e) = grid_with(&[(10.0, 10.0), (50.0, 10.0), (500.0, 500.0)]);
        let mut found = Vec::new();
        grid.for_each_near(12.0, 12.0, 40.0, |x| found.push(x));
        assert!(found.contains(&e[0]) && found.contains(&e[1]) && !found.contains(&e[2]), "{found:?}");
    }

    #[test]
    fn huge_and_infinite_radii_find_everyone_once() {
        let (grid, e) = grid_with(&[(10.0, 10.0), (500.0, 500.0)]);
        for radius in [1e9, f32::INFINITY] {
            let mut found = Vec::new();
            grid.for_each_near(0.0, 0.0, radius, |x| found.push(x));
            assert_eq!(found.len(), 2, "radius {radius}");
            assert!(found.contains(&e[0]) && found.contains(&e[1]));
        }
        let mut found = Vec::new();
        grid.for_each_near(0.0, 0.0, f32::NAN, |x| found.push(x));
        assert!(found.is_empty());
    }
}
