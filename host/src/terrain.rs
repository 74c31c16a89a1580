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

/// Every chunk's message, encoded when first needed, and its version.
#[derive(Resource, Debug)]
pub struct TerrainChunks {
    /// Chunks across and down.
    across: u32,
    down: u32,
    /// How far a player sees, in tiles: chunks overlapping the square of this half-side are sent.
    view: f32,
    /// By chunk index (`y * across + x`): the encoded `Terrain` message and its version.
    chunks: Vec<Option<(Bytes, u32)>>,
    /// The `TileWorld` version the chunks were encoded from.
    tiles_version: u64,
    /// Whether a chunk changed since the players' chunks were last looked at.
    changed: bool,
    /// What a Welcome says of the world.
    pub info: WorldInfo,
}

/// The chunks around its player this connection was sent, by index, with their versions;
/// where its player stood last.
#[derive(Component, Debug, Default)]
pub struct SentChunks {
    /// Sorted by chunk index.
    sent: Vec<(u32, u32)>,
    at: Option<(u32, u32)>,
}

impl SentChunks {
    /// Records that the connection has chunk `index` at `version`: false if it had it already.
    fn record(&mut self, index: u32, version: u32) -> bool {
        match self.sent.binary_search_by_key(&index, |&(i, _)| i) {
            Ok(at) if self.sent[at].1 == version => false,
            Ok(at) => {
                self.sent[at].1 = version;
                true
            }
            Err(at) => {
                self.sent.insert(at, (index, version));
                true
            }
        }
    }
}

impl TerrainChunks {
    /// `state_update_rate` is what Welcome tells: moves of others per second, at most the tick rate.
    pub fn new(tiles: &TileWorld, max_speed: f32, interest_radius: f32, state_update_rate: u32) -> Self {
        let across = tiles.width().div_ceil(CHUNK);
        let down = tiles.depth().div_ceil(CHUNK);
        Self {
            across,
            down,
            view: interest_radius + CHUNK as f32,
            chunks: vec![None; (across * down) as usize],
            tiles_version: tiles.version(),
            changed: false,
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

    /// The chunk's message, encoded now if it never was, and its version. Borrowed: a player
    /// walking into a chunk looks at every chunk in view and is sent few of them.
    fn message(&mut self, index: u32, tiles: &TileWorld) -> (&Bytes, u32) {
        let (across, slot) = (self.across, &mut self.chunks[index as usize]);
        let (bytes, version) = slot.get_or_insert_with(|| {
            (encode_message(&ServerMessage::Terrain(chunk_of(tiles, index % across, index / across))), 1)
        });
        (bytes, *version)
    }

    /// After the host changed tiles: every chunk encoded so far whose message differs gets a new
    /// version (and is sent again to those who had it).
    fn refresh(&mut self, tiles: &TileWorld) {
        if tiles.version() == self.tiles_version {
            return;
        }
        self.tiles_version = tiles.version();
        for index in 0..self.chunks.len() as u32 {
            let Some((bytes, version)) = &self.chunks[index as usize] else { continue };
            let now =
                encode_message(&ServerMessage::Terrain(chunk_of(tiles, index % self.across, index / self.across)));
            if now != *bytes {
                self.chunks[index as usize] = Some((now, version + 1));
                self.changed = true;
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
}

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
    if std::mem::take(&mut chunks.changed) {
        players.p1().iter_mut().for_each(|viewer| send_view(&mut chunks, &tiles, &mut outbox, viewer, true));
    } else {
        players.p0().iter_mut().for_each(|viewer| send_view(&mut chunks, &tiles, &mut outbox, viewer, false));
    }
}

/// A player who may be sent terrain.
type Viewer = (&'static Player, &'static Position, &'static mut SentChunks);
/// A player who joined or moved since the last tick.
type Moved = Or<(Changed<Position>, Added<SentChunks>)>;

/// Sends one player the chunks in its view it lacks, unless it is still in the chunk it was
/// last looked at in and no chunk changed.
fn send_view(
    chunks: &mut TerrainChunks,
    tiles: &TileWorld,
    outbox: &mut Outbox,
    (player, position, mut sent): (&Player, &Position, Mut<SentChunks>),
    chunk_changed: bool,
) {
    let at = chunks.chunk_at(position.x, position.y);
    if sent.at == Some(at) && !chunk_changed {
        return;
    }
    sent.at = Some(at);
    let (columns, rows) = chunks.view(position.x, position.y);
    let across = chunks.across;
    let kept = |view: &RangeInclusive<u32>, i: u32| {
        view.start().saturating_sub(KEPT_BEYOND_VIEW) <= i && i <= view.end() + KEPT_BEYOND_VIEW
    };
    sent.sent.retain(|&(index, _)| kept(&columns, index % across) && kept(&rows, index / across));
    for index in rows.flat_map(|cy| columns.clone().map(move |cx| cy * across + cx)) {
        let (bytes, version) = chunks.message(index, tiles);
        if sent.record(index, version) {
            outbox.send_encoded(Audience::Player(player.id), bytes.clone());
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
        let corner = decoded(chunks.message(5, &tiles).0);
        assert_eq!((corner.x, corner.y, corner.width, corner.height), (32, 16, 8, 4));
        let codes = terrain::decode_runs(&corner.tiles, 32).unwrap();
        assert_eq!(codes[31], terrain::WATER);
        assert_eq!(codes.iter().filter(|&&c| c == terrain::GROUND).count(), 31);
        let second = decoded(chunks.message(1, &tiles).0);
        assert_eq!(terrain::decode_runs(&second.tiles, 256).unwrap()[16 + 1], terrain::ROCK);
    }

    #[test]
    fn a_chunk_whose_tiles_changed_gets_a_new_version_and_others_keep_theirs() {
        let mut tiles = world();
        let mut chunks = TerrainChunks::new(&tiles, 8.0, 32.0, 30);
        let (before, v0) = chunks.message(0, &tiles);
        let before = before.clone();
        let (_, other) = chunks.message(2, &tiles);
        tiles.set(3, 3, Tile::Water);
        chunks.refresh(&tiles);
        let (after, v1) = chunks.message(0, &tiles);
        let after = after.clone();
        assert_ne!(before, after);
        assert_eq!((v0, v1), (1, 2));
        assert_eq!(chunks.message(2, &tiles).1, other);
        assert!(chunks.changed);
    }

    #[test]
    fn a_player_is_sent_the_chunks_it_walks_into_once_while_it_stays_near_them() {
        let tiles = TileWorld::flat(512, 512);
        let mut world = World::new();
        world.insert_resource(TerrainChunks::new(&tiles, 8.0, 32.0, 30));
        world.insert_resource(tiles);
        world.init_resource::<Outbox>();
        let player = (Player { id: 1, name: "ana".into() }, Position { x: 256.5, y: 256.5 });
        let ana = world.spawn((player, SentChunks::default())).id();
        let mut schedule = Schedule::default();
        schedule.add_systems(send_terrain);
        let mut tick = |world: &mut World| {
            schedule.run(world);
            world.resource_mut::<Outbox>().drain().count()
        };
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
        let remembered = world.get::<SentChunks>(ana).unwrap().sent.len();
        assert!(remembered <= ((7 + 2 * KEPT_BEYOND_VIEW) * (7 + 2 * KEPT_BEYOND_VIEW)) as usize, "{remembered}");
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
