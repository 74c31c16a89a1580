//! The host's tile world: a grid of tiles, `width` along x by `depth` along y. Positions are in
//! tiles: the tile (3, 4) covers 3.0 <= x < 4.0, 4.0 <= y < 5.0.

use std::cmp::Ordering;

use bevy_ecs::resource::Resource;

/// Where players appear, in tiles. Inserted by the host from its config.
#[derive(Resource, Debug, Clone, Copy, PartialEq)]
pub struct Spawn {
    pub x: f32,
    pub y: f32,
}

/// What a tile is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Tile {
    /// Walkable and diggable.
    Ground,
    /// Solid: neither walkable nor diggable.
    Rock,
    /// Not walkable.
    Water,
}

impl Tile {
    pub fn walkable(self) -> bool {
        self == Tile::Ground
    }

    /// The tile a map file's character stands for: `.` ground, `#` rock, `~` water.
    pub fn from_map_char(c: char) -> Option<Tile> {
        match c {
            '.' => Some(Tile::Ground),
            '#' => Some(Tile::Rock),
            '~' => Some(Tile::Water),
            _ => None,
        }
    }
}

/// What stops a straight move ([`TileWorld::segment_blocked`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    /// An end of the line is outside the world.
    Outside,
    /// A tile on the way that is not walkable.
    Tile(Tile),
}

/// Tiles on a side of the squares whose openness a [`TileWorld`] keeps.
const SQUARE: u32 = 16;

/// The world's tiles. Read by mods; changed only by the host (each change bumps `version`).
#[derive(Resource, Debug, Clone, PartialEq, Eq)]
pub struct TileWorld {
    width: u32,
    depth: u32,
    tiles: Vec<Tile>,
    version: u64,
    /// One bit per square of [`SQUARE`] x [`SQUARE`] tiles (row by row; those at the far edges
    /// smaller), set when every tile in it is walkable: a straight move within such squares is
    /// open without a look at its tiles. A large world's tiles (4 MB at 2048 x 2048) are read
    /// in no order a cache follows, and the miss on a move's start tile was most of its check;
    /// these bits are 2 KB for that world.
    open: Vec<u64>,
}

impl TileWorld {
    /// A world of ground only.
    pub fn flat(width: u32, depth: u32) -> Self {
        assert!(width > 0 && depth > 0, "a world has at least one tile");
        Self::from_tiles(width, depth, vec![Tile::Ground; width as usize * depth as usize])
    }

    /// A world of the given tiles, row by row (y), each row `width` tiles (x).
    pub fn from_tiles(width: u32, depth: u32, tiles: Vec<Tile>) -> Self {
        assert_eq!(tiles.len(), width as usize * depth as usize, "one tile per cell");
        let squares = width.div_ceil(SQUARE) as usize * depth.div_ceil(SQUARE) as usize;
        let mut world = Self { width, depth, tiles, version: 0, open: vec![0; squares.div_ceil(64)] };
        for sy in 0..depth.div_ceil(SQUARE) {
            for sx in 0..width.div_ceil(SQUARE) {
                world.note_square(sx, sy);
            }
        }
        world
    }

    /// Notes whether every tile of the square (sx, sy) is walkable.
    fn note_square(&mut self, sx: u32, sy: u32) {
        let (x0, y0) = (sx * SQUARE, sy * SQUARE);
        let (x1, y1) = ((x0 + SQUARE).min(self.width), (y0 + SQUARE).min(self.depth));
        let row = |y: u32| y as usize * self.width as usize;
        let open =
            (y0..y1).all(|y| self.tiles[row(y) + x0 as usize..row(y) + x1 as usize].iter().all(|t| t.walkable()));
        let bit = (sy * self.width.div_ceil(SQUARE) + sx) as usize;
        if open { self.open[bit / 64] |= 1 << (bit % 64) } else { self.open[bit / 64] &= !(1 << (bit % 64)) }
    }

    /// Whether the squares hold every tile between the tiles `a` and `b` (the box they are
    /// corners of, both inside the world) walkable.
    fn open_between(&self, (ax, ay): (u32, u32), (bx, by): (u32, u32)) -> bool {
        let across = self.width.div_ceil(SQUARE);
        let (columns, rows) = (ax.min(bx) / SQUARE..=ax.max(bx) / SQUARE, ay.min(by) / SQUARE..=ay.max(by) / SQUARE);
        rows.into_iter().all(|sy| {
            columns.clone().all(|sx| {
                let bit = (sy * across + sx) as usize;
                self.open[bit / 64] & (1 << (bit % 64)) != 0
            })
        })
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// Bumped on every change; lets caches tell old tiles from new.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The tile at (x, y), or `None` outside the world.
    pub fn get(&self, x: i64, y: i64) -> Option<Tile> {
        self.get_ref(x, y).copied()
    }

    fn get_ref(&self, x: i64, y: i64) -> Option<&Tile> {
        if x < 0 || y < 0 || x >= i64::from(self.width) || y >= i64::from(self.depth) {
            return None;
        }
        Some(&self.tiles[y as usize * self.width as usize + x as usize])
    }

    /// The tile under a position.
    pub fn at(&self, x: f32, y: f32) -> Option<Tile> {
        self.tile_ref(x, y).copied()
    }

    /// The tile under a position, where it is held: for a caller that asks the processor for
    /// tiles ahead of reading them (a world of millions of tiles is read in no order a cache
    /// follows).
    pub fn tile_ref(&self, x: f32, y: f32) -> Option<&Tile> {
        if !x.is_finite() || !y.is_finite() {
            return None;
        }
        self.get_ref(x.floor() as i64, y.floor() as i64)
    }

    /// Whether a player may stand at a position: inside the world, on a walkable tile.
    pub fn walkable(&self, x: f32, y: f32) -> bool {
        self.at(x, y).is_some_and(Tile::walkable)
    }

    /// Whether a player may go in a straight line from (x0, y0) to (x1, y1): every tile the
    /// segment touches, those of both ends included, is inside the world and walkable
    /// ([`TileWorld::segment_blocked`] finds none). A segment of no length is
    /// [`TileWorld::walkable`] at its point.
    pub fn segment_walkable(&self, x0: f32, y0: f32, x1: f32, y1: f32) -> bool {
        self.segment_blocked(x0, y0, x1, y1).is_none()
    }

    /// What stops a straight line from (x0, y0) to (x1, y1): `Outside` when either end is
    /// outside the world (or not finite), else the first tile along the line that is not
    /// walkable (the start's own first), or `None` when the way is open.
    ///
    /// A point on the line between two tiles is in the tile on its higher side, as a position is
    /// (the tile (3, 4) covers 3.0 <= x < 4.0): a segment along such a line touches the tiles on
    /// that side only, and may run along the face of a rock. A segment that goes through a tile
    /// corner into the diagonal tile needs the two tiles beside that corner walkable too, so it
    /// cannot squeeze between two tiles of rock or water touching there (the rule the treasure
    /// hunt's path distances follow for a diagonal step).
    ///
    /// An exact grid traversal (Amanatides and Woo): it steps from tile to tile where the segment
    /// leaves each one, in O(tiles crossed), without allocating. For example, from (1.5, 2.5) to
    /// (4.5, 2.5) touches the tiles (1, 2) to (4, 2); from (0.5, 0.5) to (1.5, 1.5) touches
    /// (0, 0) and (1, 1) and, through their corner, (1, 0) and (0, 1).
    pub fn segment_blocked(&self, x0: f32, y0: f32, x1: f32, y1: f32) -> Option<Blocked> {
        // Both ends inside the world, and so every tile between them.
        if self.tile_ref(x0, y0).is_none() || self.tile_ref(x1, y1).is_none() {
            return Some(Blocked::Outside);
        }
        // In squares of walkable tiles only: no tile to look at. (Inside the world, the ends'
        // coordinates are finite and not negative.)
        if self.open_between((x0.floor() as u32, y0.floor() as u32), (x1.floor() as u32, y1.floor() as u32)) {
            return None;
        }
        self.tile_blocking(x0, y0, x1, y1)
    }

    /// [`TileWorld::segment_blocked`] for ends inside the world, tile by tile.
    fn tile_blocking(&self, x0: f32, y0: f32, x1: f32, y1: f32) -> Option<Blocked> {
        let Some(start) = self.at(x0, y0) else { return Some(Blocked::Outside) };
        if !start.walkable() {
            return Some(Blocked::Tile(start));
        }
        let closed = |x: i64, y: i64| self.get(x, y).filter(|t| !t.walkable()).map(Blocked::Tile);
        let (mut tx, mut ty) = (x0.floor() as i64, y0.floor() as i64);
        let (end_x, end_y) = (x1.floor() as i64, y1.floor() as i64);
        let (step_x, step_y) = ((end_x - tx).signum(), (end_y - ty).signum());
        // In f64 an edge minus an f32 position is exact (unless the position is very near 0), so
        // a segment through a corner leaves along x and along y at the same t and the corner is
        // seen; rounding can at worst make a near miss a tie, checked as a corner: the safe side.
        let (x0, y0) = (f64::from(x0), f64::from(y0));
        let (dx, dy) = ((f64::from(x1) - x0).abs(), (f64::from(y1) - y0).abs());
        while (tx, ty) != (end_x, end_y) {
            let order = if tx == end_x {
                Ordering::Greater
            } else if ty == end_y {
                Ordering::Less
            } else {
                // Where (0 at the start, 1 at the end) the segment leaves this tile along x, and
                // along y; dx and dy are not 0 here, as the ends are in other columns and rows.
                let edge_x = (if step_x > 0 { tx + 1 } else { tx }) as f64;
                let edge_y = (if step_y > 0 { ty + 1 } else { ty }) as f64;
                ((edge_x - x0).abs() / dx).total_cmp(&((edge_y - y0).abs() / dy))
            };
            match order {
                Ordering::Less => tx += step_x,
                Ordering::Greater => ty += step_y,
                Ordering::Equal => {
                    if let Some(blocked) = closed(tx + step_x, ty).or_else(|| closed(tx, ty + step_y)) {
                        return Some(blocked);
                    }
                    tx += step_x;
                    ty += step_y;
                }
            }
            if let Some(blocked) = closed(tx, ty) {
                return Some(blocked);
            }
        }
        None
    }

    /// Sets one tile (inside the world).
    pub fn set(&mut self, x: u32, y: u32, tile: Tile) {
        assert!(x < self.width && y < self.depth, "tile ({x}, {y}) outside the world");
        self.tiles[y as usize * self.width as usize + x as usize] = tile;
        self.note_square(x / SQUARE, y / SQUARE);
        self.version += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A world from rows of a map file's characters (`.` ground, `#` rock, `~` water), y = 0 first.
    fn world(rows: &[&str]) -> TileWorld {
        let tiles = rows
            .iter()
            .flat_map(|row| row.chars())
            .map(|c| Tile::from_map_char(c).unwrap_or_else(|| panic!("not a tile: {c:?}")))
            .collect();
        TileWorld::from_tiles(rows[0].len() as u32, rows.len() as u32, tiles)
    }

    /// The tiles of an 8 x 8 world whose rock alone refuses the segment from `a` to `b`: the
    /// tiles it touches. Checked both ways: a segment touches the same tiles either way.
    fn touched(a: (f32, f32), b: (f32, f32)) -> Vec<(u32, u32)> {
        let blocking = |from: (f32, f32), to: (f32, f32)| {
            let mut found = Vec::new();
            for y in 0..8 {
                for x in 0..8 {
                    let mut tiles = TileWorld::flat(8, 8);
                    tiles.set(x, y, Tile::Rock);
                    if !tiles.segment_walkable(from.0, from.1, to.0, to.1) {
                        found.push((x, y));
                    }
                }
            }
            found
        };
        let forth = blocking(a, b);
        assert_eq!(forth, blocking(b, a), "from {a:?} to {b:?} and back");
        assert!(TileWorld::flat(8, 8).segment_walkable(a.0, a.1, b.0, b.1), "all ground: {a:?} to {b:?}");
        forth
    }

    /// Tiles in the order `touched` lists them: by row, then by column.
    fn sorted(mut tiles: Vec<(u32, u32)>) -> Vec<(u32, u32)> {
        tiles.sort_by_key(|&(x, y)| (y, x));
        tiles
    }

    #[test]
    fn a_horizontal_segment_touches_its_row_from_end_to_end() {
        assert_eq!(touched((1.5, 2.5), (4.5, 2.5)), [(1, 2), (2, 2), (3, 2), (4, 2)]);
        assert_eq!(touched((1.2, 2.5), (1.8, 2.5)), [(1, 2)], "within one tile");
    }

    #[test]
    fn a_vertical_segment_touches_its_column_from_end_to_end() {
        assert_eq!(touched((2.5, 5.5), (2.5, 1.2)), [(2, 1), (2, 2), (2, 3), (2, 4), (2, 5)]);
    }

    #[test]
    fn a_diagonal_touches_the_tiles_beside_each_corner_it_goes_through() {
        let expected = sorted(vec![(0, 0), (1, 0), (0, 1), (1, 1), (2, 1), (1, 2), (2, 2), (3, 2), (2, 3), (3, 3)]);
        assert_eq!(touched((0.5, 0.5), (3.5, 3.5)), expected);
        // The other diagonal.
        assert_eq!(
            touched((0.5, 2.5), (2.5, 0.5)),
            sorted(vec![(0, 2), (0, 1), (1, 2), (1, 1), (2, 1), (1, 0), (2, 0)])
        );
    }

    #[test]
    fn a_shallow_segment_changes_row_once_where_it_crosses_the_line() {
        // y = 2 at x = 3.5.
        let expected = sorted(vec![(0, 1), (1, 1), (2, 1), (3, 1), (3, 2), (4, 2), (5, 2), (6, 2)]);
        assert_eq!(touched((0.5, 1.5), (6.5, 2.5)), expected);
    }

    #[test]
    fn a_steep_segment_changes_column_once_where_it_crosses_the_line() {
        // x = 2 at y = 3.5.
        let expected = sorted(vec![(1, 0), (1, 1), (1, 2), (1, 3), (2, 3), (2, 4), (2, 5), (2, 6)]);
        assert_eq!(touched((1.5, 0.5), (2.5, 6.5)), expected);
    }

    #[test]
    fn a_slope_through_a_corner_far_from_the_origin_is_seen_as_a_corner() {
        // y = 256.5 + (x - 256.5) / 3 goes through the corner (258, 257), from the tile (257, 256)
        // into (258, 257): the rock at (258, 256) is beside it.
        let mut tiles = TileWorld::flat(512, 512);
        assert!(tiles.segment_walkable(256.5, 256.5, 259.5, 257.5));
        tiles.set(258, 256, Tile::Rock);
        assert!(!tiles.segment_walkable(256.5, 256.5, 259.5, 257.5));
        assert!(!tiles.segment_walkable(259.5, 257.5, 256.5, 256.5));
    }

    #[test]
    fn a_wall_one_tile_thick_is_not_crossed() {
        let tiles = world(&["......", "..#...", "..~...", "......"]);
        assert!(!tiles.segment_walkable(1.5, 1.5, 3.5, 1.5), "over the rock");
        assert!(!tiles.segment_walkable(0.5, 2.5, 5.5, 2.5), "over the water");
        assert!(!tiles.segment_walkable(2.5, 0.5, 2.5, 3.5), "down through both");
        assert!(!tiles.segment_walkable(1.5, 0.5, 3.5, 3.5), "slantwise through the rock");
        assert!(tiles.segment_walkable(1.5, 0.5, 3.5, 0.5), "the row above it is open");
    }

    /// The first thing on the way is named: the world's edge before any tile, then the first
    /// tile of rock or water along the line (from either end), a corner's side tiles included.
    #[test]
    fn what_blocks_a_segment_is_the_first_thing_on_the_way() {
        let tiles = world(&["......", "..#~..", "..~#..", "......"]);
        let blocked = |a: (f32, f32), b: (f32, f32)| tiles.segment_blocked(a.0, a.1, b.0, b.1);
        assert_eq!(blocked((0.5, 1.5), (5.5, 1.5)), Some(Blocked::Tile(Tile::Rock)));
        assert_eq!(blocked((5.5, 1.5), (0.5, 1.5)), Some(Blocked::Tile(Tile::Water)), "the other way, water first");
        assert_eq!(blocked((0.5, 1.5), (9.5, 1.5)), Some(Blocked::Outside), "the edge before the rock");
        assert_eq!(blocked((0.5, 1.5), (f32::NAN, 1.5)), Some(Blocked::Outside));
        assert_eq!(blocked((2.5, 1.5), (2.5, 0.5)), Some(Blocked::Tile(Tile::Rock)), "standing in it");
        assert_eq!(blocked((1.5, 3.5), (2.5, 2.5)), Some(Blocked::Tile(Tile::Water)), "the target's tile");
        assert_eq!(blocked((1.5, 0.5), (3.5, 2.5)), Some(Blocked::Tile(Tile::Rock)), "through a corner into it");
        // Through the corner of (3, 0) and (4, 1), both open: beside it, (3, 1) is water.
        assert_eq!(blocked((3.5, 0.5), (4.5, 1.5)), Some(Blocked::Tile(Tile::Water)), "beside a corner");
        assert_eq!(blocked((0.5, 0.5), (5.5, 0.5)), None);
    }

    #[test]
    fn a_wall_beside_the_segment_is_not_touched() {
        // Along row 1, with rock right above and below it.
        let tiles = world(&["..#.", "....", "#..."]);
        assert!(tiles.segment_walkable(0.5, 1.5, 3.5, 1.5));
        assert!(!tiles.segment_walkable(0.5, 0.5, 3.5, 0.5), "along row 0, through the rock");
        // Through (0, 0), (1, 0), (1, 1), (2, 1): x = 2 at y = 1.25, a quarter of a tile past the
        // corner of the rock (2, 0); y = 1 at x = 1.5, half a tile past that of the rock (0, 1).
        let tiles = world(&["..#.", "#...", "...."]);
        assert!(tiles.segment_walkable(0.5, 0.5, 2.5, 1.5));
        assert!(!tiles.segment_walkable(0.5, 0.5, 2.5, 1.1), "a little flatter, it clips the rock (2, 0)");
    }

    #[test]
    fn a_segment_on_the_line_between_two_rows_is_in_the_higher_row() {
        let tiles = world(&["....", "####", "....", "...."]);
        assert!(tiles.segment_walkable(0.5, 2.0, 3.5, 2.0), "along the rock's face, in row 2");
        assert!(!tiles.segment_walkable(0.5, 1.0, 3.5, 1.0), "in row 1, the rock");
        assert!(tiles.segment_walkable(1.5, 3.5, 1.5, 2.0), "up to the face");
        assert!(!tiles.segment_walkable(1.5, 3.5, 1.5, 1.999), "into the rock");
        // From the line, going up, a segment is in row 1 at once.
        let tiles = world(&["....", ".#..", "....", "...."]);
        assert!(!tiles.segment_walkable(1.5, 2.0, 2.5, 1.0));
        assert!(tiles.segment_walkable(2.5, 2.0, 3.5, 1.0));
    }

    #[test]
    fn a_diagonal_squeeze_between_two_tiles_touching_at_a_corner_is_refused() {
        // Rock and water touching at the corner (1, 1), each way round.
        let tiles = world(&[".#.", "~..", "..."]);
        assert!(!tiles.segment_walkable(0.5, 0.5, 1.5, 1.5));
        assert!(!tiles.segment_walkable(1.5, 1.5, 0.5, 0.5));
        let tiles = world(&["#..", ".#.", "..."]);
        assert!(!tiles.segment_walkable(0.5, 1.5, 1.5, 0.5));
        assert!(!tiles.segment_walkable(1.5, 0.5, 0.5, 1.5));
        // One tile beside the corner is enough to refuse it; with none, it is open.
        let tiles = world(&[".#.", "...", "..."]);
        assert!(!tiles.segment_walkable(0.5, 0.5, 1.5, 1.5));
        assert!(TileWorld::flat(3, 3).segment_walkable(0.5, 0.5, 1.5, 1.5));
    }

    #[test]
    fn a_segment_with_an_end_outside_the_world_is_refused() {
        let tiles = TileWorld::flat(4, 4);
        assert!(!tiles.segment_walkable(-0.5, 1.5, 1.5, 1.5), "starts outside");
        assert!(!tiles.segment_walkable(1.5, 1.5, 4.5, 1.5), "ends outside");
        assert!(!tiles.segment_walkable(1.5, 1.5, 1.5, 4.0), "ends on the far edge, outside");
        assert!(!tiles.segment_walkable(1.5, 1.5, f32::NAN, 1.5));
        assert!(!tiles.segment_walkable(f32::INFINITY, 1.5, 1.5, 1.5));
        assert!(tiles.segment_walkable(0.0, 0.0, 3.999, 3.999), "corner to corner, inside");
    }

    #[test]
    fn a_segment_of_no_length_is_walkable_where_a_position_is() {
        let tiles = world(&["..#", ".~.", "..."]);
        for (x, y) in [(0.5, 0.5), (2.5, 0.5), (1.5, 1.5), (2.0, 2.0), (3.0, 1.0), (-0.0, 0.5), (-0.1, 0.5), (1.0, 1.0)]
        {
            assert_eq!(tiles.segment_walkable(x, y, x, y), tiles.walkable(x, y), "({x}, {y})");
        }
        assert!(tiles.segment_walkable(0.5, 0.5, 0.5, 0.5));
        assert!(!tiles.segment_walkable(2.5, 0.5, 2.5, 0.5));
    }

    #[test]
    fn negative_coordinates_are_outside_the_world() {
        let tiles = TileWorld::flat(4, 4);
        assert!(!tiles.segment_walkable(0.5, 0.5, -0.5, 0.5));
        assert!(!tiles.segment_walkable(-1.5, -1.5, 0.5, 0.5));
        assert!(!tiles.segment_walkable(0.5, 0.5, 0.5, -0.001));
        // -0.0 is on the line x = 0, in the tile 0, as for `walkable`.
        assert!(tiles.segment_walkable(-0.0, 0.5, 1.5, -0.0));
    }

    proptest::proptest! {
        /// Whatever the world, a segment is refused for what its tiles, looked at one by one,
        /// refuse it for: a square of walkable tiles lets it through only where they would.
        #[test]
        fn the_open_squares_agree_with_the_tiles(
            rocks in proptest::collection::vec((0u32..40, 0u32..36, proptest::bool::ANY), 0..12),
            cleared in proptest::collection::vec((0u32..40, 0u32..36), 0..4),
            a in (0.0f32..40.0, 0.0f32..36.0),
            step in (-20.0f32..20.0, -20.0f32..20.0),
        ) {
            let mut tiles = TileWorld::flat(40, 36);
            for (x, y, water) in rocks {
                tiles.set(x, y, if water { Tile::Water } else { Tile::Rock });
            }
            for (x, y) in cleared {
                tiles.set(x, y, Tile::Ground);
            }
            let b = ((a.0 + step.0).clamp(0.0, 39.99), (a.1 + step.1).clamp(0.0, 35.99));
            proptest::prop_assert_eq!(tiles.segment_blocked(a.0, a.1, b.0, b.1), tiles.tile_blocking(a.0, a.1, b.0, b.1));
            proptest::prop_assert_eq!(&tiles, &TileWorld::from_tiles(40, 36, tiles.tiles.clone()).with_version(tiles.version));
        }
    }

    impl TileWorld {
        fn with_version(mut self, version: u64) -> Self {
            self.version = version;
            self
        }
    }
}
