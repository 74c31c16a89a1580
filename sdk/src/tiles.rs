//! The host's tile world: a grid of tiles, `width` along x by `depth` along y. Positions are in
//! tiles: the tile (3, 4) covers 3.0 <= x < 4.0, 4.0 <= y < 5.0.

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
}

/// The world's tiles. Read by mods; changed only by the host (each change bumps `version`).
#[derive(Resource, Debug, Clone, PartialEq, Eq)]
pub struct TileWorld {
    width: u32,
    depth: u32,
    tiles: Vec<Tile>,
    version: u64,
}

impl TileWorld {
    /// A world of ground only.
    pub fn flat(width: u32, depth: u32) -> Self {
        assert!(width > 0 && depth > 0, "a world has at least one tile");
        Self { width, depth, tiles: vec![Tile::Ground; width as usize * depth as usize], version: 0 }
    }

    /// A world of the given tiles, row by row (y), each row `width` tiles (x).
    pub fn from_tiles(width: u32, depth: u32, tiles: Vec<Tile>) -> Self {
        assert_eq!(tiles.len(), width as usize * depth as usize, "one tile per cell");
        Self { width, depth, tiles, version: 0 }
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
        if x < 0 || y < 0 || x >= i64::from(self.width) || y >= i64::from(self.depth) {
            return None;
        }
        Some(self.tiles[y as usize * self.width as usize + x as usize])
    }

    /// The tile under a position.
    pub fn at(&self, x: f32, y: f32) -> Option<Tile> {
        if !x.is_finite() || !y.is_finite() {
            return None;
        }
        self.get(x.floor() as i64, y.floor() as i64)
    }

    /// Whether a player may stand at a position: inside the world, on a walkable tile.
    pub fn walkable(&self, x: f32, y: f32) -> bool {
        self.at(x, y).is_some_and(Tile::walkable)
    }

    /// Sets one tile (inside the world).
    pub fn set(&mut self, x: u32, y: u32, tile: Tile) {
        assert!(x < self.width && y < self.depth, "tile ({x}, {y}) outside the world");
        self.tiles[y as usize * self.width as usize + x as usize] = tile;
        self.version += 1;
    }
}
