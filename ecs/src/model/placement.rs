//! Where a hunt's vaults are: fixed tiles as written, random groups resolved from the hunt's
//! seed. The same seed, world and spawn give the same tiles on every machine.

use rand::{SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;
use veltrix_sdk::{Tile, TileWorld};

use crate::{
    model::assets::{Region, TilePos, VaultSpec},
    model::loot::stable_hash,
};

/// Why a vault could not be placed; the caller names the file and key.
#[derive(Debug, Clone, PartialEq)]
pub enum PlacementError {
    /// A fixed vault outside the world.
    OutsideWorld { at: TilePos, width: u32, depth: u32 },
    /// A fixed vault on a tile that cannot be dug.
    NotDiggable { at: TilePos, tile: Tile },
    /// A fixed vault on a tile another vault already holds.
    TileTaken { at: TilePos, by: String },
    /// A group's region reaches outside the world or has its corners swapped.
    BadRegion { region: Region },
    /// Fewer tiles than `Count` satisfy the group's constraints.
    RegionTooSmall { wanted: u32, placed: u32 },
}

impl std::fmt::Display for PlacementError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlacementError::OutsideWorld { at, width, depth } => write!(
                f,
                "the tile ({}, {}) is outside the world, which is {width} x {depth} tiles (x 0 to {}, y 0 to {})",
                at.x,
                at.y,
                width - 1,
                depth - 1
            ),
            PlacementError::NotDiggable { at, tile } => {
                write!(f, "the tile ({}, {}) is {tile:?}: a vault must be on diggable ground", at.x, at.y)
            }
            PlacementError::TileTaken { at, by } => {
                write!(f, "the tile ({}, {}) already holds the vault {by}", at.x, at.y)
            }
            PlacementError::BadRegion { region } => write!(
                f,
                "the region ({}, {}) to ({}, {}) must lie inside the world with MinX <= MaxX and MinY <= MaxY",
                region.min_x, region.min_y, region.max_x, region.max_y
            ),
            PlacementError::RegionTooSmall { wanted, placed } => write!(
                f,
                "the region is too small for {wanted} vaults with these constraints: only {placed} fit \
                 on ground reachable on foot from the spawn (enlarge Region, or lower Count, MinSpacing or \
                 MinSpawnDistance)"
            ),
        }
    }
}

/// A fixed vault's tile, checked against the world and the vaults placed so far.
pub fn place_fixed(at: TilePos, tiles: &TileWorld, placed: &[(String, TilePos)]) -> Result<TilePos, PlacementError> {
    let Some(tile) = tiles.get(i64::from(at.x), i64::from(at.y)) else {
        return Err(PlacementError::OutsideWorld { at, width: tiles.width(), depth: tiles.depth() });
    };
    if tile != Tile::Ground {
        return Err(PlacementError::NotDiggable { at, tile });
    }
    if let Some((by, _)) = placed.iter().find(|(_, p)| *p == at) {
        return Err(PlacementError::TileTaken { at, by: by.clone() });
    }
    Ok(at)
}

/// A random group of vaults to place: an entry of a hunt's `Vaults` with its region and count.
#[derive(Debug, Clone, Copy)]
pub struct Group<'a> {
    /// The hunt's seed.
    pub hunt_seed: u64,
    pub spec: &'a VaultSpec,
    pub region: Region,
    pub count: u32,
}

/// The tiles of a random group: every tile of the region that is ground, `reachable` (on foot
/// from the spawn), far enough from the spawn and from the vaults placed so far, taken in an order shuffled from the hunt's seed and
/// the group's id, each kept when it is far enough from those already kept.
pub fn place_group(
    group: &Group,
    tiles: &TileWorld,
    spawn: (f32, f32),
    placed: &[(String, TilePos)],
    reachable: &dyn Fn(TilePos) -> bool,
) -> Result<Vec<TilePos>, PlacementError> {
    let Group { hunt_seed, spec, region, count } = *group;
    if region.min_x > region.max_x
        || region.min_y > region.max_y
        || region.max_x >= tiles.width()
        || region.max_y >= tiles.depth()
    {
        return Err(PlacementError::BadRegion { region });
    }
    let mut candidates: Vec<TilePos> = (region.min_y..=region.max_y)
        .flat_map(|y| (region.min_x..=region.max_x).map(move |x| TilePos { x, y }))
        .filter(|at| tiles.get(i64::from(at.x), i64::from(at.y)) == Some(Tile::Ground))
        .filter(|at| at.distance_to(spawn.0, spawn.1) >= spec.min_spawn_distance)
        .filter(|at| reachable(*at))
        .filter(|at| placed.iter().all(|(_, p)| p != at && p.distance(*at) >= spec.min_spacing))
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(stable_hash(hunt_seed, &spec.id, 0));
    candidates.shuffle(&mut rng);
    let mut chosen: Vec<TilePos> = Vec::with_capacity(count as usize);
    for at in candidates {
        if chosen.len() == count as usize {
            break;
        }
        if chosen.iter().all(|c| c.distance(at) >= spec.min_spacing) {
            chosen.push(at);
        }
    }
    if chosen.len() < count as usize {
        return Err(PlacementError::RegionTooSmall { wanted: count, placed: chosen.len() as u32 });
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::assets::ClaimRule;

    fn group(id: &str, spacing: f32, spawn_distance: f32) -> VaultSpec {
        VaultSpec {
            id: id.into(),
            at: None,
            count: None,
            region: None,
            min_spacing: spacing,
            min_spawn_distance: spawn_distance,
            loot_table: "T".into(),
            consolation_table: None,
            dig_effort: 1,
            claim: ClaimRule::FirstFinder,
            sparkle_radius: 1.0,
        }
    }

    const REGION: Region = Region { min_x: 0, min_y: 0, max_x: 63, max_y: 63 };

    #[test]
    fn groups_are_deterministic_spaced_on_ground_and_away_from_spawn() {
        let mut tiles = TileWorld::flat(64, 64);
        for x in 0..64 {
            tiles.set(x, 10, Tile::Rock);
        }
        let spec = group("Dune", 8.0, 12.0);
        let a = place_group(
            &Group { hunt_seed: 7, spec: &spec, region: REGION, count: 12 },
            &tiles,
            (32.0, 32.0),
            &[],
            &|_| true,
        )
        .unwrap();
        assert_eq!(
            a,
            place_group(
                &Group { hunt_seed: 7, spec: &spec, region: REGION, count: 12 },
                &tiles,
                (32.0, 32.0),
                &[],
                &|_| true
            )
            .unwrap()
        );
        assert_ne!(
            a,
            place_group(
                &Group { hunt_seed: 8, spec: &spec, region: REGION, count: 12 },
                &tiles,
                (32.0, 32.0),
                &[],
                &|_| true
            )
            .unwrap()
        );
        for (i, p) in a.iter().enumerate() {
            assert_ne!(p.y, 10, "not on rock");
            assert!(p.distance_to(32.0, 32.0) >= 12.0);
            for q in &a[i + 1..] {
                assert!(p.distance(*q) >= 8.0, "{p:?} {q:?}");
            }
        }
    }

    #[test]
    fn too_many_vaults_for_the_region_is_an_error_saying_how_many_fit() {
        let tiles = TileWorld::flat(64, 64);
        let region = Region { min_x: 0, min_y: 0, max_x: 9, max_y: 9 };
        let err = place_group(
            &Group { hunt_seed: 1, spec: &group("G", 5.0, 0.0), region, count: 20 },
            &tiles,
            (60.0, 60.0),
            &[],
            &|_| true,
        )
        .unwrap_err();
        let PlacementError::RegionTooSmall { wanted: 20, placed } = err else { panic!("{err:?}") };
        assert!((1..=9).contains(&placed), "{placed}");
    }

    #[test]
    fn fixed_vaults_are_checked() {
        let mut tiles = TileWorld::flat(8, 8);
        tiles.set(2, 2, Tile::Water);
        let at = |x, y| TilePos { x, y };
        assert!(matches!(place_fixed(at(8, 0), &tiles, &[]), Err(PlacementError::OutsideWorld { .. })));
        assert!(matches!(place_fixed(at(2, 2), &tiles, &[]), Err(PlacementError::NotDiggable { .. })));
        assert!(matches!(
            place_fixed(at(1, 1), &tiles, &[("A".into(), at(1, 1))]),
            Err(PlacementError::TileTaken { .. })
        ));
        assert_eq!(place_fixed(at(1, 1), &tiles, &[]), Ok(at(1, 1)));
    }
}
