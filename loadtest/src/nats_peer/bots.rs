//! The bots' side: one NATS connection per bot, subscribed to its 9 cells, recording the
//! latency of each delivery into a shard of tallies.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use async_nats::{Client, ConnectOptions, Event, Subscriber};
use futures_util::{StreamExt, stream};
use hdrhistogram::Histogram;

use super::{
    HEADER_BYTES,
    cells::{area_of, subject_of},
};
use crate::clock::monotonic_ns;

/// Per-shard tallies: bots record into the shard of their index, so that two runtime threads
/// rarely meet on one lock.
pub(super) struct Shard {
    pub(super) latency_us: Histogram<u64>,
    /// Measured deliveries.
    pub(super) delivered: u64,
    /// Every delivery, warm-up included (to see when deliveries stop).
    pub(super) received: u64,
}

pub(super) const SHARDS: usize = 64;

pub(super) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

#[derive(Default)]
pub(super) struct ClientEvents {
    pub(super) disconnects: AtomicU64,
    pub(super) slow_consumers: AtomicU64,
}

pub(super) fn options(events: &Arc<ClientEvents>) -> ConnectOptions {
    let events = events.clone();
    ConnectOptions::new()
        .no_echo()
        .connection_timeout(Duration::from_secs(30))
        // Small frames: a smaller read buffer than the default 64 KiB keeps 12,000 clients lean.
        .read_buffer_capacity(16 * 1024)
        .event_callback(move |event| {
            let events = events.clone();
            async move {
                match event {
                    Event::Disconnected => events.disconnects.fetch_add(1, Ordering::Relaxed),
                    Event::SlowConsumer(_) => events.slow_consumers.fetch_add(1, Ordering::Relaxed),
                    _ => 0,
                };
            }
        })
}

/// Connects one bot, subscribes it to its 9 cells, waits until the server has them, and spawns
/// its reader.
pub(super) async fn connect_bot(
    url: String,
    cell: (i32, i32),
    shard: Arc<Mutex<Shard>>,
    events: Arc<ClientEvents>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let client = options(&events).connect(url).await.context("connecting a bot")?;
    let mut subscribers: Vec<Subscriber> = Vec::with_capacity(9);
    for near in area_of(cell) {
        subscribers.push(client.subscribe(subject_of(near)).await.context("subscribing")?);
    }
    client.flush().await.context("flushing the subscriptions")?;
    Ok(tokio::spawn(read_loop(client, subscribers, shard)))
}

async fn read_loop(client: Client, subscribers: Vec<Subscriber>, shard: Arc<Mutex<Shard>>) {
    let mut messages = stream::select_all(subscribers);
    while let Some(message) = messages.next().await {
        let now = monotonic_ns();
        let payload = &message.payload;
        if payload.len() < HEADER_BYTES {
            continue;
        }
        let sent = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
        let measured = payload[8] == 1;
        let mut shard = shard.lock().expect("shard lock");
        shard.received += 1;
        if measured {
            shard.delivered += 1;
            shard.latency_us.saturating_record((now.saturating_sub(sent) / 1000).max(1));
        }
    }
    drop(client);
}

pub(super) fn totals(shards: &[Arc<Mutex<Shard>>]) -> (u64, u64) {
    shards.iter().fold((0, 0), |(d, r), s| {
        let s = s.lock().expect("shard lock");
        (d + s.delivered, r + s.received)
    })
}
