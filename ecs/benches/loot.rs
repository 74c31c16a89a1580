//! Loot rolls: N rolls, one per player, as `grant_loot` rolls a claim: a generator seeded from
//! (run seed, vault, claimant) and the table rolled with its rare entries boosted. The tables
//! are the shipped pack's six (`assets/Server/Drops/`), taken in turn, with their rare entries
//! as the pack works them out.
//!
//! - `plain`: no luck, no pity (a boost of 1: the unboosted roll);
//! - `luck`: one stack of the shipped `Lucky` effect (Luck 0.5, a boost of 1.5);
//! - `pity`: each claimant 4 dry claims past its table's `After` (boost 1 + 5 Step where the
//!   table has pity, 1 where it has none).
//!
//! `one_roll/<table>` rolls one table once: what each table costs; `one_roll/seed_only` only
//! seeds the roll's generator and draws one number (the part of a roll every table pays).
//!
//! `cargo bench -p treasure-hunt-ecs --bench loot`

mod common;

use std::{hint::black_box, time::Duration};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::Rng;
use treasure_hunt_ecs::{
    loot::{DropTable, RareEntries, loot_rng},
    pack::HuntAssets,
};
use veltrix_sdk::{Spawn, TileWorld};

const PLAYER_COUNTS: [usize; 3] = [1_000, 4_000, 12_000];
const SEED: u64 = 1721;
const VAULT: &str = "Buried_Cache_3";

fn pack() -> HuntAssets {
    common::shipped_pack(&TileWorld::flat(512, 512), Spawn { x: 256.5, y: 256.5 })
}

/// The boost a claim gets, as `grant_loot` works it out.
fn boost(table: &DropTable, luck: f32, dry: Option<u32>) -> f64 {
    let dry = match (dry, table.pity) {
        (Some(past), Some(pity)) => pity.after + past,
        _ => 0,
    };
    (1.0 + f64::from(luck)) * table.pity.map_or(1.0, |p| p.boost(dry))
}

fn loot(c: &mut Criterion) {
    let assets = pack();
    let tables: Vec<(&String, &DropTable, &RareEntries)> =
        assets.drops.iter().map(|(id, table)| (id, table, &assets.rare_entries[id])).collect();
    assert_eq!(tables.len(), 6, "the shipped pack has six loot tables");
    let luck = assets.effects["Lucky"].luck;

    let mut group = c.benchmark_group("loot_rolls");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(2));
    for players in PLAYER_COUNTS {
        group.throughput(Throughput::Elements(players as u64));
        for (name, luck, dry) in [("plain", 0.0, None), ("luck", luck, None), ("pity", 0.0, Some(4))] {
            let boosts: Vec<f64> = tables.iter().map(|(_, table, _)| boost(table, luck, dry)).collect();
            group.bench_function(BenchmarkId::new(name, players), |b| {
                b.iter(|| {
                    for claimant in 1..=players as u64 {
                        let at = claimant as usize % tables.len();
                        let (_, table, rare) = tables[at];
                        let mut rng = loot_rng(SEED, VAULT, claimant);
                        black_box(table.roll_boosted(&mut rng, rare, boosts[at]));
                    }
                })
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("one_roll");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(2));
    for (id, table, rare) in &tables {
        let mut claimant = 0;
        group.bench_function(id.as_str(), |b| {
            b.iter(|| {
                claimant += 1;
                let mut rng = loot_rng(SEED, VAULT, claimant);
                black_box(table.roll_boosted(&mut rng, rare, 1.0))
            })
        });
    }
    let mut claimant = 0;
    group.bench_function("seed_only", |b| {
        b.iter(|| {
            claimant += 1;
            loot_rng(SEED, VAULT, claimant).next_u64()
        })
    });
    group.finish();
}

criterion_group!(benches, loot);
criterion_main!(benches);
