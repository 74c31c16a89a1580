//! Walking distances on a 2048 x 2048 world with rock stripes every 128 tiles, their gaps at
//! alternate ends, so that paths bend:
//!
//! - `walk_grid`: the world's tiles turned into the grid the fields are computed on;
//! - `distance_field`: the field to the world's middle (octile, without corner cutting), what a
//!   `veltrix-paths-*` thread computes for one hint target.
//!
//! `cargo bench -p treasure-hunt-ecs --bench paths`

use std::{hint::black_box, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use treasure_hunt_ecs::{
    assets::TilePos,
    paths::{DistanceField, WalkGrid},
};
use veltrix_sdk::{Tile, TileWorld};

const SIZE: u32 = 2048;

fn striped_world() -> TileWorld {
    let mut tiles = TileWorld::flat(SIZE, SIZE);
    for x in (64..SIZE).step_by(128) {
        for y in 0..SIZE - 8 {
            tiles.set(x, if x % 256 == 64 { y } else { y + 8 }, Tile::Rock);
        }
    }
    tiles
}

fn paths(c: &mut Criterion) {
    let tiles = striped_world();
    let middle = TilePos { x: SIZE / 2, y: SIZE / 2 };
    let mut group = c.benchmark_group("paths_2048");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    group.bench_function("walk_grid", |b| b.iter(|| black_box(WalkGrid::of(black_box(&tiles)))));
    let grid = WalkGrid::of(&tiles);
    assert!(DistanceField::compute_on(&grid, middle).distance(TilePos { x: 0, y: 0 }).is_some(), "a walled-in corner");
    group.bench_function("distance_field", |b| b.iter(|| black_box(DistanceField::compute_on(&grid, middle))));
    group.finish();
}

criterion_group!(benches, paths);
criterion_main!(benches);
