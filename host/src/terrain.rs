//! The world's tiles for clients to draw: each chunk encoded once (`Terrain`, run-length) and
//! its bytes shared by every player it is sent to; each connection gets a chunk when it comes
//! within the player's view, and again only if its tiles changed or the player went
//! [`KEPT_BEYOND_VIEW`] chunks past seeing it (a connection remembers only the chunks around
//! its player, so its memory stays bounded however far it walks).

use std::ops::RangeInclusive;

use veltrix_sdk::{
    Audience, Outbox, Player, Position, Tile, TileWorld,
    bytes::Bytes,
    prelude::*,
    protocol::{ServerMessage, Terrain, WorldInfo, encode_message, terrain},
};

/// Tiles on a side of a chunk.
pub const CHUNK: u32 = 16;

/// Chunks beyond its view in which a connection still remembers having a chunk: one that
/// comes back into view after the player went farther is sent again (docs/protocol.md).
pub const KEPT_BEYOND_VIEW: u32 = 2;

/// Every chunk's message, encoded when first needed.
#[derive(Resource, Debug)]
pub struct TerrainChunks {
    /// Chunks across and down.
    across: u32,
    down: u32,
    /// How far a player sees, in tiles: chunks overlapping the square of this half-side are sent.
    view: f32,
    /// By chunk index (`y * across + x`): the encoded `Terrain` message.
    chunks: Vec<Option<Bytes>>,
    /// The `TileWorld` version the chunks were encoded from.
    tiles_version: u64,
    /// The side of the square of chunks a connection remembers ([`SentChunks`]).
    side: u32,
    /// Chunks whose tiles changed since the players' chunks were last looked at.
    changed: Vec<u32>,
    /// The chunk (its index) each player stood in when last looked at, by its entity's index
    /// ([`NOT_LOOKED`]: none): a mover still in that chunk is
    /// passed over on this table (48 KB at 12,000) without a load of its `SentChunks` (one in
    /// 750 KB, a cache miss for each of the tick's hundreds of movers). An index another entity
    /// held keeps that one's chunk until the new one's first look, which its `SentChunks`
    /// being added forces.
    looked_at: Vec<u32>,
    /// What a Welcome says of the world.
    pub info: WorldInfo,
}

/// The chunks around its player this connection was sent: one bit per chunk of the square it
/// remembers (its view and [`KEPT_BEYOND_VIEW`] more each way), laid out by chunk column and row
/// modulo the square's side, so the square follows the player without moving a bit (a few
/// words a player, where a list of the chunks and their versions took a kilobyte).
#[derive(Component, Debug, Default)]
pub struct SentChunks {
    /// Bit `(row % side) * side + column % side`; allocated at the first look.
    bits: Vec<u64>,
    /// The chunks remembered: their columns and rows (empty before the first look). The chunk
    /// its player stood in then is in [`TerrainChunks::looked_at`].
    kept: Option<(RangeInclusive<u32>, RangeInclusive<u32>)>,
}

impl SentChunks {
    fn slot(side: u32, cx: u32, cy: u32) -> usize {
        ((cy % side) * side + cx % side) as usize
    }

    /// Whether the connection has chunk (cx, cy) of the square it remembers.
    fn has(&self, side: u32, cx: u32, cy: u32) -> bool {
        let slot = Self::slot(side, cx, cy);
        self.bits[slot / 64] & (1 << (slot % 64)) != 0
    }

    fn set(&mut self, side: u32, cx: u32, cy: u32, has: bool) {
        let slot = Self::slot(side, cx, cy);
        let bit = 1 << (slot % 64);
        if has { self.bits[slot / 64] |= bit } else { self.bits[slot / 64] &= !bit }
    }

    /// Remembers the square `columns` x `rows` (at most `side` each way) from now on: a bit whose
    /// column (or row) stands for another chunk in it than before, or for none, is cleared.
    fn keep(&mut self, side: u32, columns: RangeInclusive<u32>, rows: RangeInclusive<u32>) {
        debug_assert!(columns.end() - columns.start() < side && rows.end() - rows.start() < side);
        let words = (side * side).div_ceil(64) as usize;
        if self.bits.len() != words {
            // The first look (or a square of another size: everything is sent again).
            self.bits = vec![0; words];
            self.kept = None;
        }
        if let Some((old_columns, old_rows)) = self.kept.take() {
            for residue in 0..side {
                if chunk_with(&old_columns, residue, side) != chunk_with(&columns, residue, side) {
                    (0..side).for_each(|row| self.set(side, residue, row, false));
                }
                if chunk_with(&old_rows, residue, side) != chunk_with(&rows, residue, side) {
                    (0..side).for_each(|column| self.set(side, column, residue, false));
                }
            }
        }
        self.kept = Some((columns, rows));
    }

    /// Forgets chunk `index` (its tiles changed), if it is in the square remembered.
    fn forget(&mut self, side: u32, across: u32, index: u32) {
        let (cx, cy) = (index % across, index / across);
        if self.kept.as_ref().is_some_and(|(columns, rows)| columns.contains(&cx) && rows.contains(&cy)) {
            self.set(side, cx, cy, false);
        }
    }

    /// How many chunks it remembers having.
    #[cfg(test)]
    fn count(&self) -> u32 {
        self.bits.iter().map(|word| word.count_ones()).sum()
    }
}

/// The chunk of `range` whose number is `residue` modulo `side`, if any.
fn chunk_with(range: &RangeInclusive<u32>, residue: u32, side: u32) -> Option<u32> {
    let chunk = range.start() + (residue + side - range.start() % side) % side;
    (chunk <= *range.end()).then_some(chunk)
}

impl TerrainChunks {
    /// `state_update_rate` is what Welcome tells: moves of others per second, at most the tick rate.
    pub fn new(tiles: &TileWorld, max_speed: f32, interest_radius: f32, state_update_rate: u32) -> Self {
        let across = tiles.width().div_ceil(CHUNK);
        let down = tiles.depth().div_ceil(CHUNK);
        let view = interest_radius + CHUNK as f32;
        Self {
            across,
            down,
            view,
            // A view spans at most this many chunks each way (see `view`), and a connection
            // remembers KEPT_BEYOND_VIEW more on each side.
            side: (2.0 * view / CHUNK as f32).floor() as u32 + 2 + 2 * KEPT_BEYOND_VIEW,
            chunks: vec![None; (across * down) as usize],
            tiles_version: tiles.version(),
            changed: Vec::new(),
            looked_at: Vec::new(),
            info: WorldInfo {
                width: tiles.width(),
                height: tiles.depth(),
                chunk: CHUNK,
                max_speed,
                interest_radius,
                state_update_rate,
            },
        }
    }

    /// The chunk's message, encoded now if it never was.
    fn message(&mut self, index: u32, tiles: &TileWorld) -> &Bytes {
        let (across, slot) = (self.across, &mut self.chunks[index as usize]);
        slot.get_or_insert_with(|| {
            encode_message(&ServerMessage::Terrain(chunk_of(tiles, index % across, index / across)))
        })
    }

    /// After the host changed tiles: every chunk encoded so far whose message differs is encoded
    /// anew and noted as changed (and is sent again to those who had it).
    fn refresh(&mut self, tiles: &TileWorld) {
        if tiles.version() == self.tiles_version {
            return;
        }
        self.tiles_version = tiles.version();
        for index in 0..self.chunks.len() as u32 {
            let Some(bytes) = &self.chunks[index as usize] else { continue };
            let now =
                encode_message(&ServerMessage::Terrain(chunk_of(tiles, index % self.across, index / self.across)));
            if now != *bytes {
                self.chunks[index as usize] = Some(now);
                self.changed.push(index);
            }
        }
    }

    /// The chunks within view of (x, y): their columns and rows.
    fn view(&self, x: f32, y: f32) -> (RangeInclusive<u32>, RangeInclusive<u32>) {
        let span = |at: f32, count: u32| {
            let low = ((at - self.view) / CHUNK as f32).floor().max(0.0) as u32;
            let high = (((at + self.view) / CHUNK as f32).floor().max(0.0) as u32).min(count.saturating_sub(1));
            low..=high
        };
        (span(x, self.across), span(y, self.down))
    }

    /// The chunk indices within view of (x, y), row by row.
    #[cfg(test)]
    fn in_view(&self, x: f32, y: f32) -> impl Iterator<Item = u32> + '_ {
        let (columns, rows) = self.view(x, y);
        rows.flat_map(move |cy| columns.clone().map(move |cx| cy * self.across + cx))
    }

    fn chunk_at(&self, x: f32, y: f32) -> (u32, u32) {
        let clamp = |at: f32, count: u32| ((at / CHUNK as f32).floor().max(0.0) as u32).min(count.saturating_sub(1));
        (clamp(x, self.across), clamp(y, self.down))
    }

    /// Notes that the player of entity `index` was looked at in chunk `chunk`: whether it was
    /// in that chunk at its last look already.
    fn note_look(&mut self, index: u32, chunk: u32) -> bool {
        let at = index as usize;
        if at >= self.looked_at.len() {
            self.looked_at.resize(at + 1, NOT_LOOKED);
        }
        std::mem::replace(&mut self.looked_at[at], chunk) == chunk
    }
}

/// No chunk in [`TerrainChunks::looked_at`].
const NOT_LOOKED: u32 = u32::MAX;

/// The `Terrain` message of chunk (cx, cy).
fn chunk_of(tiles: &TileWorld, cx: u32, cy: u32) -> Terrain {
    let (x, y) = (cx * CHUNK, cy * CHUNK);
    let width = CHUNK.min(tiles.width() - x);
    let height = CHUNK.min(tiles.depth() - y);
    let codes = (y..y + height).flat_map(|ty| {
        (x..x + width).map(move |tx| match tiles.get(tx as i64, ty as i64) {
            Some(Tile::Ground) => terrain::GROUND,
            Some(Tile::Rock) | None => terrain::ROCK,
            Some(Tile::Water) => terrain::WATER,
        })
    });
    let mut runs = Vec::new();
    terrain::encode_runs(codes, &mut runs);
    Terrain { x, y, width, height, tiles: runs }
}

/// PostTick, beside the area of interest: each player that joined or moved into another chunk
/// (or every player, when a chunk changed) is sent the chunks in view it lacks. Only players
/// whose position changed this tick are looked at.
pub fn send_terrain(
    mut chunks: ResMut<TerrainChunks>,
    tiles: Res<TileWorld>,
    mut outbox: ResMut<Outbox>,
    mut players: ParamSet<(Query<Viewer, Moved>, Query<Viewer>)>,
) {
    chunks.refresh(&tiles);
    if !chunks.changed.is_empty() {
        let mut changed = std::mem::take(&mut chunks.changed);
        let (side, across) = (chunks.side, chunks.across);
        players.p1().iter_mut().for_each(|mut viewer| {
            changed.iter().for_each(|&index| viewer.3.forget(side, across, index));
            send_view(&mut chunks, &tiles, &mut outbox, viewer, true)
        });
        changed.clear();
        chunks.changed = changed;
    } else {
        players.p0().iter_mut().for_each(|viewer| send_view(&mut chunks, &tiles, &mut outbox, viewer, false));
    }
}

/// A player who may be sent terrain.
type Viewer = (Entity, &'static Player, &'static Position, &'static mut SentChunks);
/// A player who joined or moved since the last tick.
type Moved = Or<(Changed<Position>, Added<SentChunks>)>;

/// Sends one player the chunks in its view it lacks, unless it is still in the chunk it was
/// last looked at in and no chunk changed.
fn send_view(
    chunks: &mut TerrainChunks,
    tiles: &TileWorld,
    outbox: &mut Outbox,
    (entity, player, position, mut sent): (Entity, &Player, &Position, Mut<SentChunks>),
    chunk_changed: bool,
) {
    let (cx, cy) = chunks.chunk_at(position.x, position.y);
    let still = chunks.note_look(entity.index_u32(), cy * chunks.across + cx);
    // A new connection's first look, whatever an earlier entity of its index left in the table.
    if still && !chunk_changed && !sent.is_added() {
        return;
    }
    let (columns, rows) = chunks.view(position.x, position.y);
    let (across, side) = (chunks.across, chunks.side);
    let kept =
        |view: &RangeInclusive<u32>| view.start().saturating_sub(KEPT_BEYOND_VIEW)..=view.end() + KEPT_BEYOND_VIEW;
    sent.keep(side, kept(&columns), kept(&rows));
    for cy in rows {
        for cx in columns.clone() {
            if !sent.has(side, cx, cy) {
                sent.set(side, cx, cy, true);
                outbox.send_encoded(Audience::Player(player.id), chunks.message(cy * across + cx, tiles).clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use veltrix_sdk::protocol::decode_value;

    use super::*;

    fn world() -> TileWorld {
        let mut tiles = TileWorld::flat(40, 20);
        tiles.set(17, 1, Tile::Rock);
        tiles.set(39, 19, Tile::Water);
        tiles
    }

    fn decoded(bytes: &Bytes) -> Terrain {
        match decode_value::<ServerMessage>(bytes).unwrap() {
            ServerMessage::Terrain(t) => t,
            other => panic!("not terrain: {other:?}"),
        }
    }

    #[test]
    fn chunks_cover_the_world_and_edge_chunks_are_smaller() {
        let tiles = world();
        let mut chunks = TerrainChunks::new(&tiles, 8.0, 32.0, 30);
        assert_eq!((chunks.across, chunks.down), (3, 2));
        let corner = decoded(chunks.message(5, &tiles));
        assert_eq!((corner.x, corner.y, corner.width, corner.height), (32, 16, 8, 4));
        let codes = terrain::decode_runs(&corner.tiles, 32).unwrap();
        assert_eq!(codes[31], terrain::WATER);
        assert_eq!(codes.iter().filter(|&&c| c == terrain::GROUND).count(), 31);
        let second = decoded(chunks.message(1, &tiles));
        assert_eq!(terrain::decode_runs(&second.tiles, 256).unwrap()[16 + 1], terrain::ROCK);
    }

    #[test]
    fn a_chunk_whose_tiles_changed_is_encoded_anew_and_others_are_kept() {
        let mut tiles = world();
        let mut chunks = TerrainChunks::new(&tiles, 8.0, 32.0, 30);
        let before = chunks.message(0, &tiles).clone();
        let other = chunks.message(2, &tiles).clone();
        tiles.set(3, 3, Tile::Water);
        chunks.refresh(&tiles);
        assert_ne!(*chunks.message(0, &tiles), before);
        assert_eq!(chunks.message(2, &tiles).as_ptr(), other.as_ptr(), "the same bytes, not encoded again");
        assert_eq!(chunks.changed, [0]);
    }

    /// A flat world of 512 x 512 tiles (views of 7 x 7 chunks), and a tick of `send_terrain`:
    /// how many chunks it sent.
    fn sending_terrain() -> (World, impl FnMut(&mut World) -> usize) {
        let tiles = TileWorld::flat(512, 512);
        let mut world = World::new();
        world.insert_resource(TerrainChunks::new(&tiles, 8.0, 32.0, 30));
        world.insert_resource(tiles);
        world.init_resource::<Outbox>();
        let mut schedule = Schedule::default();
        schedule.add_systems(send_terrain);
        let tick = move |world: &mut World| {
            schedule.run(world);
            world.resource_mut::<Outbox>().drain().count()
        };
        (world, tick)
    }

    /// A player whose entity's index an earlier player held, in the chunk that one stood in,
    /// is sent its view all the same.
    #[test]
    fn a_player_in_a_reused_entity_index_is_sent_its_view() {
        let (mut world, mut tick) = sending_terrain();
        let player =
            |id: u64| (Player { id, name: format!("p{id}") }, Position { x: 256.5, y: 256.5 }, SentChunks::default());
        let ana = world.spawn(player(1)).id();
        assert_eq!(tick(&mut world), 7 * 7);
        // The index given straight to the next entity, as the allocator does once its freed
        // indices are handed back.
        let bea = world.despawn_no_free(ana).expect("spawned");
        world.spawn_at(bea, player(2)).expect("the index is free");
        assert_eq!(bea.index(), ana.index());
        assert_eq!(tick(&mut world), 7 * 7, "its own first look");
        assert_eq!(tick(&mut world), 0, "then standing still");
    }

    #[test]
    fn a_player_is_sent_the_chunks_it_walks_into_once_while_it_stays_near_them() {
        let (mut world, mut tick) = sending_terrain();
        let player = (Player { id: 1, name: "ana".into() }, Position { x: 256.5, y: 256.5 });
        let ana = world.spawn((player, SentChunks::default())).id();
        assert_eq!(tick(&mut world), 7 * 7, "joining: the whole view");
        assert_eq!(tick(&mut world), 0, "standing still");
        world.get_mut::<Position>(ana).unwrap().x = 260.5;
        assert_eq!(tick(&mut world), 0, "a step within the chunk");
        world.get_mut::<Position>(ana).unwrap().x = 272.5;
        assert_eq!(tick(&mut world), 7, "into the next chunk east: one new column");
        world.get_mut::<Position>(ana).unwrap().x = 256.5;
        assert_eq!(tick(&mut world), 0, "back: every chunk was had already");
        world.get_mut::<Position>(ana).unwrap().x = 256.5 + (7 + KEPT_BEYOND_VIEW) as f32 * 16.0;
        assert_eq!(tick(&mut world), 7 * 7, "far east: a view of its own");
        world.get_mut::<Position>(ana).unwrap().x = 256.5;
        assert_eq!(tick(&mut world), 7 * 7, "back from farther than it remembers: the view again");
        world.get_mut::<Position>(ana).unwrap().x = 256.5 - KEPT_BEYOND_VIEW as f32 * 16.0;
        assert_eq!(tick(&mut world), KEPT_BEYOND_VIEW as usize * 7, "west by as many chunks as are kept");
        world.get_mut::<Position>(ana).unwrap().x = 256.5;
        assert_eq!(tick(&mut world), 0, "back from within what it remembers: nothing");
        let remembered = world.get::<SentChunks>(ana).unwrap().count();
        assert!(remembered <= (7 + 2 * KEPT_BEYOND_VIEW) * (7 + 2 * KEPT_BEYOND_VIEW), "{remembered}");

        // Tiles change in the chunk it stands in, and in one it remembers but does not see.
        world.resource_mut::<TileWorld>().set(260, 260, Tile::Rock);
        world.resource_mut::<TileWorld>().set(256 - 5 * 16, 256, Tile::Rock);
        assert_eq!(tick(&mut world), 1, "the chunk in view that changed, again");
        world.get_mut::<Position>(ana).unwrap().x = 256.5 - KEPT_BEYOND_VIEW as f32 * 16.0;
        assert_eq!(tick(&mut world), 1, "the remembered one that changed, once back in view");
    }

    proptest::proptest! {
        // Each case walks up to 40 steps through the system: fewer cases than the default.
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Whatever the walk and the tile changes, a player is sent exactly what a plain list of
        /// the chunks it has (dropping those beyond what is kept, and those whose tiles changed)
        /// says it lacks of the view from where it stands, each time it enters a chunk or a
        /// chunk changes, and it remembers exactly that list.
        #[test]
        fn the_chunks_sent_are_those_a_plain_list_of_what_it_has_lacks(
            steps in proptest::collection::vec((0f32..400.0, 0f32..300.0, proptest::option::of((0i64..400, 0i64..300))), 1..40),
        ) {
            let tiles = TileWorld::flat(400, 300);
            let mut world = World::new();
            world.insert_resource(TerrainChunks::new(&tiles, 8.0, 24.0, 30));
            world.insert_resource(tiles);
            world.init_resource::<Outbox>();
            let ana = world.spawn((Player { id: 1, name: "ana".into() }, Position { x: 0.5, y: 0.5 }, SentChunks::default())).id();
            let mut schedule = Schedule::default();
            schedule.add_systems(send_terrain);
            let (mut had, mut encoded) = (std::collections::BTreeSet::<u32>::new(), std::collections::BTreeSet::<u32>::new());
            let mut at = None;
            for (x, y, change) in steps {
                let mut changed = false;
                if let Some((tx, ty)) = change {
                    let mut tiles = world.resource_mut::<TileWorld>();
                    let tile = if tiles.get(tx, ty) == Some(Tile::Rock) { Tile::Ground } else { Tile::Rock };
                    tiles.set(tx as u32, ty as u32, tile);
                    let chunks = world.resource::<TerrainChunks>();
                    // Only chunks encoded before count as changed; every chunk it had was.
                    let index = (ty as u32 / CHUNK) * chunks.across + tx as u32 / CHUNK;
                    changed = encoded.contains(&index);
                    had.remove(&index);
                }
                *world.get_mut::<Position>(ana).unwrap() = Position { x, y };
                let chunks = world.resource::<TerrainChunks>();
                // The view is looked at as it enters a chunk: it reaches a chunk past the radius.
                if at == Some(chunks.chunk_at(x, y)) && !changed {
                    schedule.run(&mut world);
                    proptest::prop_assert_eq!(world.resource_mut::<Outbox>().drain().count(), 0);
                    continue;
                }
                at = Some(chunks.chunk_at(x, y));
                let (columns, rows) = chunks.view(x, y);
                let across = chunks.across;
                let (low_x, low_y) = (columns.start().saturating_sub(KEPT_BEYOND_VIEW), rows.start().saturating_sub(KEPT_BEYOND_VIEW));
                let (high_x, high_y) = (columns.end() + KEPT_BEYOND_VIEW, rows.end() + KEPT_BEYOND_VIEW);
                had.retain(|i| (low_x..=high_x).contains(&(i % across)) && (low_y..=high_y).contains(&(i / across)));
                let mut lacking: Vec<u32> = rows.flat_map(|cy| columns.clone().map(move |cx| cy * across + cx)).filter(|i| !had.contains(i)).collect();
                had.extend(lacking.iter().copied());
                encoded.extend(lacking.iter().copied());
                let expected: Vec<Bytes> = {
                    let (mut chunks, tiles) = (world.remove_resource::<TerrainChunks>().unwrap(), world.resource::<TileWorld>());
                    chunks.refresh(tiles);
                    let expected = lacking.drain(..).map(|i| chunks.message(i, tiles).clone()).collect();
                    world.insert_resource(chunks);
                    expected
                };
                schedule.run(&mut world);
                let sent: Vec<Bytes> = world.resource_mut::<Outbox>().drain().map(|(_, bytes)| bytes).collect();
                proptest::prop_assert_eq!(sent, expected);
                proptest::prop_assert_eq!(world.get::<SentChunks>(ana).unwrap().count(), had.len() as u32);
            }
        }
    }

    #[test]
    fn the_view_is_the_chunks_within_the_radius_and_one_chunk_more() {
        let tiles = TileWorld::flat(512, 512);
        let chunks = TerrainChunks::new(&tiles, 8.0, 32.0, 30);
        // 48 tiles each way from (256, 256): tiles 208 to 304, chunks 13 to 19.
        let view: Vec<u32> = chunks.in_view(256.0, 256.0).collect();
        assert_eq!(view.len(), 7 * 7);
        assert_eq!(view[0], 13 * 32 + 13);
        // At the world's corner the view stops at its edge.
        assert_eq!(chunks.in_view(0.5, 0.5).count(), 4 * 4);
    }
}
