//! The tile world the host holds: flat, generated from a seed, or loaded from a map file.

use std::path::Path;

use veltrix_sdk::{Tile, TileWorld};

use crate::config::{Terrain, WorldConfig};

/// Tiles of ground kept clear around the spawn area of a generated world.
pub const SPAWN_PLAZA: f32 = 8.0;

/// The world the config asks for. In a generated world the spawn is a plaza of ground
/// ([`SPAWN_PLAZA`] tiles beyond `SpawnRadius`), so players never start in rock or water.
pub fn build(config: &WorldConfig, universe: &Path) -> Result<TileWorld, String> {
    if !config.map.is_empty() {
        let path = universe.join("worlds").join(&config.map).join("map.txt");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("World.Map: {}: cannot read: {e}", path.display()))?;
        let world = parse_map(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if !world.walkable(config.spawn_x, config.spawn_y) {
            return Err(format!(
                "{}: the spawn ({}, {}) is not on walkable ground in this map",
                path.display(),
                config.spawn_x,
                config.spawn_y
            ));
        }
        return Ok(world);
    }
    Ok(match config.terrain {
        Terrain::Flat => TileWorld::flat(config.width, config.depth),
        Terrain::Generated => {
            let clear = config.spawn_radius + SPAWN_PLAZA;
            generate(config.seed, config.width, config.depth, |x, y| {
                let (dx, dy) = (x + 0.5 - config.spawn_x, y + 0.5 - config.spawn_y);
                dx * dx + dy * dy <= clear * clear
            })
        }
    })
}

/// Terrain from `seed`: smooth value noise in three octaves; low ground is water, high ground
/// rock, the rest diggable ground; tiles where `keep_clear` holds are ground.
pub fn generate(seed: u64, width: u32, depth: u32, keep_clear: impl Fn(f32, f32) -> bool) -> TileWorld {
    let mut tiles = Vec::with_capacity(width as usize * depth as usize);
    for y in 0..depth {
        for x in 0..width {
            let (fx, fy) = (x as f32, y as f32);
            let height = 0.57 * noise(seed, fx / 48.0, fy / 48.0)
                + 0.29 * noise(seed ^ 0x9e37, fx / 16.0, fy / 16.0)
                + 0.14 * noise(seed ^ 0x7f4a, fx / 6.0, fy / 6.0);
            tiles.push(if keep_clear(fx, fy) {
                Tile::Ground
            } else if height < 0.30 {
                Tile::Water
            } else if height > 0.68 {
                Tile::Rock
            } else {
                Tile::Ground
            });
        }
    }
    TileWorld::from_tiles(width, depth, tiles)
}

/// Value noise in [0, 1): random values at integer points, smoothly interpolated.
fn noise(seed: u64, x: f32, y: f32) -> f32 {
    let (x0, y0) = (x.floor(), y.floor());
    let (tx, ty) = (smooth(x - x0), smooth(y - y0));
    let corner = |dx: f32, dy: f32| lattice(seed, (x0 + dx) as i64, (y0 + dy) as i64);
    let top = corner(0.0, 0.0) + (corner(1.0, 0.0) - corner(0.0, 0.0)) * tx;
    let bottom = corner(0.0, 1.0) + (corner(1.0, 1.0) - corner(0.0, 1.0)) * tx;
    top + (bottom - top) * ty
}

fn smooth(t: f32) -> f32 {
    t * t * (3.0 - 2.0 * t)
}

/// A value in [0, 1) for a lattice point: the seed and the point, mixed.
fn lattice(seed: u64, x: i64, y: i64) -> f32 {
    let z =
        mix64(seed ^ (x as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (y as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f));
    (z >> 40) as f32 / (1u64 << 24) as f32
}

/// splitmix64's finaliser: spreads every input bit over the output. Stable across Rust
/// releases and machines, which seeded worlds and spawn points rely on.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A map file: one line per row (y = 0 first), one character per tile: `.` ground, `#` rock,
/// `~` water. Every row as long as the first. Blank lines at the end are ignored.
pub fn parse_map(text: &str) -> Result<TileWorld, String> {
    let rows: Vec<&str> = text.trim_end_matches(['\n', '\r']).lines().map(|l| l.trim_end_matches('\r')).collect();
    let width = rows.first().map_or(0, |r| r.chars().count());
    if width == 0 {
        return Err("line 1: expected a row of tiles (`.` ground, `#` rock, `~` water), found an empty line".into());
    }
    let mut tiles = Vec::with_capacity(width * rows.len());
    for (y, row) in rows.iter().enumerate() {
        let mut count = 0;
        for (x, c) in row.chars().enumerate() {
            tiles.push(Tile::from_map_char(c).ok_or_else(|| {
                format!(
                    "line {}, column {}: expected `.` (ground), `#` (rock) or `~` (water), found {c:?}",
                    y + 1,
                    x + 1
                )
            })?);
            count += 1;
        }
        if count != width {
            return Err(format!("line {}: expected {width} tiles like the first row, found {count}", y + 1));
        }
    }
    Ok(TileWorld::from_tiles(width as u32, rows.len() as u32, tiles))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(world: &TileWorld) -> [usize; 3] {
        let mut n = [0; 3];
        for y in 0..world.depth() as i64 {
            for x in 0..world.width() as i64 {
                n[world.get(x, y).unwrap() as usize] += 1;
            }
        }
        n
    }

    #[test]
    fn same_seed_same_world_other_seed_other_world() {
        let a = generate(7, 200, 150, |_, _| false);
        assert_eq!(a, generate(7, 200, 150, |_, _| false));
        assert_ne!(a, generate(8, 200, 150, |_, _| false));
    }

    #[test]
    fn generated_world_has_every_kind_mostly_ground() {
        let [ground, rock, water] = counts(&generate(1, 256, 256, |_, _| false));
        let all = (256 * 256) as f64;
        assert!(rock > 0 && water > 0, "rock {rock}, water {water}");
        assert!(ground as f64 / all > 0.5, "ground is {ground} of {all}");
    }

    #[test]
    fn spawn_is_cleared() {
        let config = WorldConfig { terrain: Terrain::Generated, seed: 3, spawn_radius: 10.0, ..WorldConfig::default() };
        let world = build(&config, Path::new("/nonexistent")).unwrap();
        for (dx, dy) in [(0.0, 0.0), (10.0, 0.0), (-7.0, 7.0), (0.0, -11.0)] {
            assert!(world.walkable(config.spawn_x + dx, config.spawn_y + dy), "({dx}, {dy})");
        }
    }

    #[test]
    fn map_file_parses_and_errors_name_line_and_column() {
        let world = parse_map("..#\n~..\n").unwrap();
        assert_eq!((world.width(), world.depth()), (3, 2));
        assert_eq!(world.get(2, 0), Some(Tile::Rock));
        assert_eq!(world.get(0, 1), Some(Tile::Water));
        assert_eq!(
            parse_map("..\n.x\n").unwrap_err(),
            "line 2, column 2: expected `.` (ground), `#` (rock) or `~` (water), found 'x'"
        );
        assert_eq!(parse_map("...\n..\n").unwrap_err(), "line 2: expected 3 tiles like the first row, found 2");
        assert!(parse_map("").is_err());
    }
}
