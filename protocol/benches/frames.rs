//! Frame encoding for N players in one tick, as the host builds them: one `FrameBuilder`
//! writes every player's frame of the tick, one after the other, into one buffer reserved for
//! all of them; the frames are dropped at the end of the tick, as if written, so the next
//! tick's frames reuse the allocation (the steady state).
//!
//! - `broadcast`: one mod message for everyone (a hunt's start announcement, 179 bytes), encoded
//!   once with `encode_message` and pushed into the N frames;
//! - `per_player`: one mod message per player (DigProgress: four numbers, 90 bytes with its
//!   namespace and kind), built and encoded as the sdk's `Outbox` does (the body with
//!   `encode_value`, then the `ServerMessage::Mod` with `encode_message`), each pushed into its
//!   player's frame.
//!
//! `cargo bench -p veltrix-protocol --bench frames`

use std::{hint::black_box, time::Duration};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde::Serialize;
use veltrix_protocol::{FrameBuilder, ModMessage, ServerMessage, encode_message, encode_value};

const PLAYER_COUNTS: [usize; 3] = [1_000, 4_000, 12_000];
const NS: &str = "Veltrix:TreasureHunt";

/// The shape of the treasure hunt's DigProgress.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DigProgress {
    x: u32,
    y: u32,
    effort: u32,
    required: u32,
}

/// The shape of the treasure hunt's HuntAnnounced.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct HuntAnnounced {
    hunt: &'static str,
    event: &'static str,
    text: &'static str,
    seconds_left: u32,
}

/// A mod message as the `Outbox` builds it: the body encoded, then wrapped.
fn mod_message(kind: &str, request: Option<u32>, body: &impl Serialize) -> ServerMessage {
    let mut encoded = Vec::with_capacity(32);
    encode_value(body, &mut encoded);
    ServerMessage::Mod(ModMessage { ns: NS.to_string(), kind: kind.to_string(), request, body: encoded })
}

fn frames(c: &mut Criterion) {
    let mut group = c.benchmark_group("frames");
    group.sample_size(30).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(2));
    let announced = HuntAnnounced {
        hunt: "Sunken_Isles",
        event: "Started",
        text: "The hunt The Sunken Isles has begun! It ends in 60 minutes.",
        seconds_left: 3600,
    };
    println!("broadcast message: {} bytes", encode_message(&mod_message("HuntAnnounced", None, &announced)).len());
    let progress = DigProgress { x: 287, y: 35, effort: 12, required: 30 };
    println!("per-player message: {} bytes", encode_message(&mod_message("DigProgress", Some(7), &progress)).len());
    for players in PLAYER_COUNTS {
        let mut builder = FrameBuilder::with_capacity(0);
        let mut frames = Vec::with_capacity(players);
        let mut tick = 0;
        group.throughput(Throughput::Elements(players as u64));
        group.bench_function(BenchmarkId::new("broadcast", players), |b| {
            b.iter(|| {
                tick += 1;
                let message = encode_message(&mod_message("HuntAnnounced", None, &announced));
                frames.clear();
                builder.reserve(players, players * message.len());
                for _ in 0..players {
                    builder.begin(tick);
                    builder.push(&message);
                    frames.push(builder.finish());
                }
                black_box(&frames);
            })
        });
        group.bench_function(BenchmarkId::new("per_player", players), |b| {
            b.iter(|| {
                tick += 1;
                let messages: Vec<_> = (0..players)
                    .map(|i| {
                        let progress = DigProgress { x: i as u32 % 512, y: 35, effort: 12, required: 30 };
                        encode_message(&mod_message("DigProgress", Some(tick as u32), &progress))
                    })
                    .collect();
                frames.clear();
                builder.reserve(players, messages.iter().map(|m| m.len()).sum());
                for message in &messages {
                    builder.begin(tick);
                    builder.push(message);
                    frames.push(builder.finish());
                }
                black_box(&frames);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
