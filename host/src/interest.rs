//! Area of interest: which players see which. A uniform spatial hash grid (cells one interest
//! radius plus hysteresis wide, so the 3x3 cells around a player hold everyone it may see),
//! updated only for players that moved; visibility with hysteresis: a player comes into view
//! within `radius` and leaves it beyond `radius + hysteresis`, so one walking along the edge
//! does not flicker in and out.

use std::collections::BTreeSet;

use ahash::AHashMap;

use veltrix_sdk::{
    Player, PlayerId, Position, TickInfo,
    prelude::*,
    protocol::{PlayerAppeared, PlayerGone, PlayerMoved, ServerMessage, encode_message, encode_value},
};

use crate::sessions::Connection;

/// The grid of players by cell.
#[derive(Resource, Debug)]
pub struct InterestGrid {
    radius: f32,
    hysteresis: f32,
    cell: f32,
    /// aHash, not std's SipHash: hashing cell keys was a sixth of the interest update's
    /// instructions (callgrind). Its keys are random per process, so iteration order is never
    /// relied on (`for_each_near` sorts).
    cells: AHashMap<(i32, i32), Vec<Entity>>,
    /// The emptied lists of cells no one is in any more, with their room, for the next cells
    /// someone enters (spread players empty and fill cells all the time).
    spare: Vec<Vec<Entity>>,
}

/// At most this many emptied cell lists are kept: as many as cells a busy tick empties, not as
/// many as a crowd that dispersed once left behind.
const SPARE_CELLS: usize = 1024;

/// A player's place in the grid and the players it sees.
#[derive(Component, Debug, Default)]
pub struct Interest {
    cell: Option<(i32, i32)>,
    /// Ordered, so that messages come out in the same order on every run.
    pub visible: BTreeSet<Entity>,
}

impl InterestGrid {
    pub fn new(radius: f32, hysteresis: f32) -> Self {
        Self { radius, hysteresis, cell: radius + hysteresis, cells: AHashMap::new(), spare: Vec::new() }
    }

    fn cell_of(&self, x: f32, y: f32) -> (i32, i32) {
        ((x / self.cell).floor() as i32, (y / self.cell).floor() as i32)
    }

    /// Moves `entity` to the cell of (x, y).
    fn place(&mut self, entity: Entity, interest: &mut Interest, x: f32, y: f32) {
        let cell = self.cell_of(x, y);
        if interest.cell == Some(cell) {
            return;
        }
        if let Some(old) = interest.cell.take() {
            self.remove_from(old, entity);
        }
        self.cells.entry(cell).or_insert_with(|| self.spare.pop().unwrap_or_default()).push(entity);
        interest.cell = Some(cell);
    }

    fn remove_from(&mut self, cell: (i32, i32), entity: Entity) {
        if let Some(members) = self.cells.get_mut(&cell) {
            if let Some(i) = members.iter().position(|e| *e == entity) {
                members.swap_remove(i);
            }
            if members.is_empty()
                && let Some(members) = self.cells.remove(&cell)
                && self.spare.len() < SPARE_CELLS
            {
                self.spare.push(members);
            }
        }
    }

    /// Calls `f` for every entity in the cells that may hold players within `radius` of (x, y)
    /// (a superset: the caller checks the distance). Costs the smaller of the cells in the
    /// radius's box and the occupied cells, so any radius (even infinite) is cheap.
    pub fn for_each_near(&self, x: f32, y: f32, radius: f32, mut f: impl FnMut(Entity)) {
        if radius.is_nan() || x.is_nan() || y.is_nan() {
            return;
        }
        // Float to int casts saturate, so an infinite radius spans every cell.
        let (x0, y0) = self.cell_of(x - radius, y - radius);
        let (x1, y1) = self.cell_of(x + radius, y + radius);
        let box_cells = (i64::from(x1) - i64::from(x0) + 1).saturating_mul(i64::from(y1) - i64::from(y0) + 1);
        if box_cells > self.cells.len() as i64 {
            let mut cells: Vec<(&(i32, i32), &Vec<Entity>)> =
                self.cells.iter().filter(|((cx, cy), _)| (x0..=x1).contains(cx) && (y0..=y1).contains(cy)).collect();
            // Cell order, so that delivery order does not depend on the hash map.
            cells.sort_unstable_by_key(|(cell, _)| (cell.1, cell.0));
            for (_, members) in cells {
                members.iter().copied().for_each(&mut f);
            }
            return;
        }
        for cy in y0..=y1 {
            for cx in x0..=x1 {
                if let Some(members) = self.cells.get(&(cx, cy)) {
                    members.iter().copied().for_each(&mut f);
                }
            }
        }
    }
}

/// Buffers [`update_interest`] reuses from tick to tick.
#[derive(Default)]
pub struct Scratch {
    /// The movers by (row, column) of their new cell, then id.
    order: Vec<((i32, i32), PlayerId, Entity)>,
    near: Vec<Entity>,
    /// The mover's visible set, sorted (copied from the BTreeSet).
    seen: Vec<Entity>,
    /// Encoded messages, written into each recipient's frame: buffers kept from tick to tick
    /// (no allocation per mover). The mover's PlayerMoved, PlayerAppeared and PlayerGone
    /// (empty until needed), and another player's, for the mover.
    moved: Vec<u8>,
    appeared: Vec<u8>,
    gone: Vec<u8>,
    other: Vec<u8>,
    /// The name of the PlayerAppeared being encoded, kept with its room.
    name: String,
}

/// `message` encoded into `buf` (cleared first); its bytes.
fn encode_into<'a>(buf: &'a mut Vec<u8>, message: &ServerMessage) -> &'a [u8] {
    buf.clear();
    encode_value(message, buf);
    buf
}

/// For each player whose position changed this tick (joined players included): updates its
/// cell and visibility both ways, and queues PlayerAppeared, PlayerMoved and PlayerGone for the
/// players concerned. Work is proportional to the movers and their neighbours.
pub fn update_interest(
    mut grid: ResMut<InterestGrid>,
    moved: Query<Entity, Changed<Position>>,
    players: Query<(&Player, &Position)>,
    mut interests: Query<&mut Interest>,
    mut conns: Query<&mut Connection>,
    tick: Res<TickInfo>,
    mut scratch: Local<Scratch>,
) {
    let Scratch { order, near, seen, moved: moved_msg, appeared: appeared_msg, gone: gone_msg, other: other_msg, name } =
        &mut *scratch;
    order.clear();
    // Movers in grid-cell order, not id order: the next mover is likely in the same cell, so
    // the neighbours it looks at (positions, views, frames) are still in the cache from the
    // last one. The order stays the same on every run.
    order.extend(moved.iter().filter_map(|e| {
        let (player, pos) = players.get(e).ok()?;
        let (cx, cy) = grid.cell_of(pos.x, pos.y);
        Some(((cy, cx), player.id, e))
    }));
    order.sort_unstable();
    let enter = grid.radius * grid.radius;
    let leave = (grid.radius + grid.hysteresis) * (grid.radius + grid.hysteresis);
    for &(_, _, mover) in order.iter() {
        let Ok((player, pos)) = players.get(mover) else { continue };
        near.clear();
        seen.clear();
        {
            let Ok(mut interest) = interests.get_mut(mover) else { continue };
            grid.place(mover, &mut interest, pos.x, pos.y);
            grid.for_each_near(pos.x, pos.y, grid.radius, |e| near.push(e));
            seen.extend(interest.visible.iter().copied());
        }
        encode_into(moved_msg, &ServerMessage::PlayerMoved(PlayerMoved { player: player.id, x: pos.x, y: pos.y }));
        appeared_msg.clear();
        gone_msg.clear();
        // Those it sees: still in range (with hysteresis), or gone.
        for &other in seen.iter() {
            let in_range = players.get(other).is_ok_and(|(_, p)| pos.distance_squared(p.x, p.y) <= leave);
            if in_range {
                push(&mut conns, other, tick.tick, moved_msg);
            } else {
                unsee(mover, other, &mut interests, &mut conns, &players, &tick, gone_msg, other_msg);
            }
        }
        // Those it does not see yet: in view once within the radius.
        for &other in near.iter() {
            if other == mover || seen.binary_search(&other).is_ok() {
                continue;
            }
            let Ok((other_player, other_pos)) = players.get(other) else { continue };
            if pos.distance_squared(other_pos.x, other_pos.y) > enter {
                continue;
            }
            for (a, b) in [(mover, other), (other, mover)] {
                if let Ok(mut i) = interests.get_mut(a) {
                    i.visible.insert(b);
                }
            }
            if appeared_msg.is_empty() {
                encode_appeared(appeared_msg, name, player, pos);
            }
            push(&mut conns, other, tick.tick, appeared_msg);
            push(&mut conns, mover, tick.tick, encode_appeared(other_msg, name, other_player, other_pos));
        }
    }
}

/// Ends visibility between `a` and `b` both ways, telling each (`a_gone` holds `a`'s
/// PlayerGone once encoded, `b_gone` is a buffer for `b`'s).
#[allow(clippy::too_many_arguments)]
fn unsee(
    a: Entity,
    b: Entity,
    interests: &mut Query<&mut Interest>,
    conns: &mut Query<&mut Connection>,
    players: &Query<(&Player, &Position)>,
    tick: &TickInfo,
    a_gone: &mut Vec<u8>,
    b_gone: &mut Vec<u8>,
) {
    for (x, y) in [(a, b), (b, a)] {
        if let Ok(mut i) = interests.get_mut(x) {
            i.visible.remove(&y);
        }
    }
    if let Ok((pa, _)) = players.get(a) {
        if a_gone.is_empty() {
            encode_into(a_gone, &ServerMessage::PlayerGone(PlayerGone { player: pa.id }));
        }
        push(conns, b, tick.tick, a_gone);
    }
    if let Ok((pb, _)) = players.get(b) {
        push(conns, a, tick.tick, encode_into(b_gone, &ServerMessage::PlayerGone(PlayerGone { player: pb.id })));
    }
}

/// Removes a leaving player from the grid and from everyone's view, telling them.
pub fn forget(world: &mut World, leaving: Entity, id: PlayerId) {
    let tick = world.resource::<TickInfo>().tick;
    let Some(mut interest) = world.get_mut::<Interest>(leaving) else { return };
    let visible = std::mem::take(&mut interest.visible);
    let cell = interest.cell.take();
    if let Some(cell) = cell {
        world.resource_mut::<InterestGrid>().remove_from(cell, leaving);
    }
    let gone = encode_message(&ServerMessage::PlayerGone(PlayerGone { player: id }));
    for other in visible {
        if let Some(mut i) = world.get_mut::<Interest>(other) {
            i.visible.remove(&leaving);
        }
        if let Some(mut conn) = world.get_mut::<Connection>(other) {
            conn.push(tick, &gone);
        }
    }
}

/// `player`'s PlayerAppeared encoded into `buf` (cleared first); its bytes. The message's name
/// is copied into `name`, a buffer kept with its room, not into a new `String`.
fn encode_appeared<'a>(buf: &'a mut Vec<u8>, name: &mut String, player: &Player, pos: &Position) -> &'a [u8] {
    name.clear();
    name.push_str(&player.name);
    let message = ServerMessage::PlayerAppeared(PlayerAppeared {
        player: player.id,
        name: std::mem::take(name),
        x: pos.x,
        y: pos.y,
    });
    encode_into(buf, &message);
    if let ServerMessage::PlayerAppeared(appeared) = message {
        *name = appeared.name;
    }
    buf
}

fn push(conns: &mut Query<&mut Connection>, to: Entity, tick: u64, bytes: &[u8]) {
    if let Ok(mut conn) = conns.get_mut(to) {
        conn.push(tick, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid_with(points: &[(f32, f32)]) -> (InterestGrid, Vec<Entity>) {
        let mut world = World::new();
        let mut grid = InterestGrid::new(32.0, 4.0);
        let mut entities = Vec::new();
        for &(x, y) in points {
            let e = world.spawn_empty().id();
            let mut interest = Interest::default();
            grid.place(e, &mut interest, x, y);
            entities.push(e);
        }
        (grid, entities)
    }

    /// A cell no one is in any more gives its list to the next cell someone enters.
    #[test]
    fn emptied_cells_lists_are_reused() {
        let mut world = World::new();
        let mut grid = InterestGrid::new(32.0, 4.0);
        let (a, b) = (world.spawn_empty().id(), world.spawn_empty().id());
        let (mut ia, mut ib) = (Interest::default(), Interest::default());
        grid.place(a, &mut ia, 10.0, 10.0);
        let list = grid.cells[&(0, 0)].as_ptr();
        grid.place(a, &mut ia, 100.0, 10.0);
        assert!(!grid.cells.contains_key(&(0, 0)), "an empty cell goes");
        assert_eq!(grid.cells[&(2, 0)].as_ptr(), list, "its list kept for the next cell entered");
        grid.place(b, &mut ib, 490.0, 490.0);
        grid.place(a, &mut ia, 495.0, 495.0);
        assert_eq!(grid.cells[&(13, 13)], [b, a]);
        assert!(!grid.cells.contains_key(&(2, 0)));
        grid.place(b, &mut ib, 10.0, 10.0);
        assert_eq!(grid.cells[&(0, 0)].as_ptr(), list, "and again, from the spare lists");
    }

    #[test]
    fn near_finds_neighbouring_cells_only() {
        let (grid, e) = grid_with(&[(10.0, 10.0), (50.0, 10.0), (500.0, 500.0)]);
        let mut found = Vec::new();
        grid.for_each_near(12.0, 12.0, 40.0, |x| found.push(x));
        assert!(found.contains(&e[0]) && found.contains(&e[1]) && !found.contains(&e[2]), "{found:?}");
    }

    #[test]
    fn huge_and_infinite_radii_visit_occupied_cells_only() {
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
