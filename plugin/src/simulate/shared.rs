//! What simulated players share: what every one of them may know as of a tick ([`World`]),
//! the ways they walk to a tile they know of ([`Paths`]), their seeded generator ([`Rng`]), and
//! points of the world they aim at.

use std::collections::BTreeMap;

use treasure_hunt_ecs::model::{
    assets::TilePos,
    distance::{DistanceField, WalkGrid},
    pack::PlacedHunt,
};
use veltrix_sdk::{Tile, TileWorld};

/// A small seeded generator (SplitMix64): each player has its own, from the run's seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64, stream: u64) -> Self {
        Rng(mix(seed ^ mix(stream.wrapping_add(0x51_7cc1_b727_220a))))
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in lo..=hi.
    pub fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + (self.next() % u64::from(hi - lo + 1)) as u32
    }
}

/// The finaliser of SplitMix64.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// What every player may know and the world's rules, shared by all of them.
pub struct World<'a> {
    pub tick: u64,
    pub now_ms: i64,
    pub rate: u32,
    pub tiles: &'a TileWorld,
    pub hunt: &'a PlacedHunt,
    pub max_speed: f32,
    pub reach: f32,
    /// Clues released to everyone: when (ms).
    pub released: &'a [Option<i64>],
    /// Vaults no player may claim any more (FirstFinder vaults once claimed: everyone is told).
    pub closed: &'a [bool],
    /// Team vaults each team claimed: (team, vault index).
    pub team_claims: &'a std::collections::BTreeSet<(u32, usize)>,
    pub paths: &'a mut Paths,
}

impl World<'_> {
    pub(super) fn vault_index(&self, id: &str) -> Option<usize> {
        self.hunt.vaults.iter().position(|v| v.id == id)
    }
}

/// Shortest walks the players take to a tile they know of: one distance field per target,
/// computed on first use (the field hints use; a player who sees the map knows its way).
pub struct Paths {
    grid: WalkGrid,
    fields: BTreeMap<TilePos, DistanceField>,
}

impl Paths {
    pub fn new(tiles: &TileWorld) -> Self {
        Self { grid: WalkGrid::of(tiles), fields: BTreeMap::new() }
    }

    pub(super) fn field(&mut self, to: TilePos) -> &DistanceField {
        let grid = &self.grid;
        self.fields.entry(to).or_insert_with(|| DistanceField::compute_on(grid, to))
    }
}

/// A point inside the world, half a tile from its edges.
pub(super) fn clamp(tiles: &TileWorld, x: f32, y: f32) -> (f32, f32) {
    (x.clamp(0.5, tiles.width() as f32 - 0.5), y.clamp(0.5, tiles.depth() as f32 - 0.5))
}

/// The ground tile nearest (x, y), looked for in growing squares up to 32 tiles out.
pub(super) fn nearest_ground(tiles: &TileWorld, x: f32, y: f32) -> Option<TilePos> {
    let (cx, cy) = (x.floor() as i64, y.floor() as i64);
    for r in 0..=32i64 {
        let mut best: Option<(i64, TilePos)> = None;
        for dy in -r..=r {
            for dx in -r..=r {
                if dx.abs().max(dy.abs()) != r || tiles.get(cx + dx, cy + dy) != Some(Tile::Ground) {
                    continue;
                }
                let d = dx * dx + dy * dy;
                if best.is_none_or(|(b, _)| d < b) {
                    best = Some((d, TilePos { x: (cx + dx) as u32, y: (cy + dy) as u32 }));
                }
            }
        }
        if let Some((_, at)) = best {
            return Some(at);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same seed and stream give the same numbers; another stream others.
    #[test]
    fn the_generator_is_seeded() {
        let draw = |seed, stream| {
            let mut rng = Rng::new(seed, stream);
            (0..4).map(|_| rng.next()).collect::<Vec<_>>()
        };
        assert_eq!(draw(1, 2), draw(1, 2));
        assert_ne!(draw(1, 2), draw(1, 3));
        assert_ne!(draw(1, 2), draw(2, 2));
        let mut rng = Rng::new(9, 9);
        assert!((0..1000).all(|_| (0.0..1.0).contains(&rng.unit())));
        assert!((0..1000).all(|_| (3..=5).contains(&rng.range(3, 5))));
    }

    /// The ground nearest a point of rock is the closest ground tile around it.
    #[test]
    fn the_nearest_ground() {
        let mut tiles = TileWorld::flat(8, 8);
        tiles.set(3, 3, Tile::Rock);
        assert_eq!(nearest_ground(&tiles, 3.5, 3.5).map(|t| (t.x, t.y)), Some((3, 2)));
        assert_eq!(nearest_ground(&tiles, 5.5, 5.5).map(|t| (t.x, t.y)), Some((5, 5)));
        assert_eq!(clamp(&tiles, -3.0, 9.0), (0.5, 7.5));
    }
}
