//! The running hunt's leaderboard with N ranked players (each with a random score from 0 to
//! 5,000), as claims come in and players ask for their rank:
//!
//! - `claim`: one claim (a random player, 0 to 49 more points, a later find) moves its entry in
//!   the sorted set and marks it for saving;
//! - `rank_of`: one player's rank (a walk from the top, O(rank)), the players taken in turn, so
//!   the figure is the average over the board;
//! - `ranks_of`: every player's rank in one walk (a tick's `Rank` requests answered at once);
//! - `top_10`: the top 10 as the final board freezes it.
//!
//! `cargo bench -p treasure-hunt-ecs --bench leaderboard`

use std::{hint::black_box, time::Duration};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use treasure_hunt_ecs::leaderboard::{Leaderboard, final_board, rank_of, ranks_of};
use veltrix_sdk::PlayerId;

const PLAYER_COUNTS: [u64; 3] = [1_000, 4_000, 12_000];

/// A board of `players` ranked players, nothing left to save.
fn board(players: u64, rng: &mut ChaCha8Rng) -> Leaderboard {
    let mut board = Leaderboard::new("Test");
    for player in 1..=players {
        board.record(player, "player", 1, rng.random_range(0..5000), player / 4);
    }
    board.forget_changes();
    board
}

fn leaderboard(c: &mut Criterion) {
    let mut group = c.benchmark_group("leaderboard");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(2));
    for players in PLAYER_COUNTS {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut board = board(players, &mut rng);
        let mut tick = players;
        group.bench_function(BenchmarkId::new("claim", players), |b| {
            b.iter(|| {
                tick += 1;
                let player = rng.random_range(1..=players);
                board.record(black_box(player), "player", 1, rng.random_range(0..50), tick);
            })
        });
        board.forget_changes();
        let mut next = 0;
        group.bench_function(BenchmarkId::new("rank_of", players), |b| {
            b.iter(|| {
                next = next % players + 1;
                black_box(rank_of(&board, black_box(next)))
            })
        });
        let everyone: Vec<PlayerId> = (1..=players).collect();
        group.bench_function(BenchmarkId::new("ranks_of", players), |b| {
            b.iter(|| black_box(ranks_of(&board, black_box(&everyone))))
        });
        group.bench_function(BenchmarkId::new("top_10", players), |b| b.iter(|| black_box(final_board(&board, 10))));
    }
    group.finish();
}

criterion_group!(benches, leaderboard);
criterion_main!(benches);
