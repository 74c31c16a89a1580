//! Shards: servers that share one hunt through NATS (docs/scale-out.md). One connection to
//! NATS per shard, made on the async runtime; three uses of it, one file each: [`ledger`]
//! (what is decided once, in a JetStream key-value bucket), [`relay`] (where the players are, on
//! a plain NATS subject, so players near each other on different shards see each other) and
//! [`handoff`] (a player's records, following it from shard to shard).
//!
//! A server with no `Cluster.Nats` has none of this: no resource, no system, no task.

pub mod handoff;
pub mod ledger;
pub mod relay;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_nats::jetstream::{self, kv};
use veltrix_sdk::{Store, prelude::*};

use crate::config::ClusterConfig;

/// How long a JetStream request waits for its answer before it is sent again.
const ACK_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a shard tries again to reach NATS, to open the bucket or to decide an ask, while
/// it cannot.
const RETRY: Duration = Duration::from_millis(500);

/// How often the connection to NATS is pinged: a third ping sent with two unanswered and it
/// counts as lost, within 3 s of going silent, before another shard takes this one's players
/// over (`handoff::claim`, after 4 s without an answer): so a cut-off shard refuses claims
/// before its players can be let in elsewhere.
const PING: Duration = Duration::from_secs(1);

/// Where a shard keeps its number (docs/storage.md).
pub const SHARD_TABLE: &str = "veltrix/shard";

/// Makes this server a shard: its ledger and relay in `world`, their tasks on `runtime` once
/// NATS is reached. Does not wait for NATS: a shard starts while NATS is down, refuses claims
/// meanwhile, and connects when it can.
pub fn start(
    world: &mut World,
    config: &ClusterConfig,
    tick_rate: u32,
    runtime: &tokio::runtime::Handle,
) -> Result<(), String> {
    let server = shard_number(world.resource::<Store>())?;
    let available = Arc::new(AtomicBool::new(false));
    // Whether the players online here are known to be this shard's in NATS since the link
    // last came (`handoff::check_sessions`): claims wait for it.
    let sessions_checked = Arc::new(AtomicBool::new(false));
    let ledger = ledger::insert(world, server, Arc::clone(&available), Arc::clone(&sessions_checked));
    let relay = relay::insert(world, server, tick_rate, &config.bucket);
    let put_after = u64::from(config.records_every_seconds) * u64::from(tick_rate);
    let handoff = handoff::insert(world, server, put_after, Arc::clone(&available), Arc::clone(&sessions_checked))?;
    world.resource_mut::<crate::sessions::Sessions>().cluster = true;
    let config = config.clone();
    runtime.spawn(async move {
        let client = connect(&config, &available, &sessions_checked).await;
        tokio::spawn(relay::run(client.clone(), relay));
        tokio::spawn(handoff::run(client.clone(), config.clone(), handoff));
        ledger::run(client, config, ledger).await;
    });
    Ok(())
}

/// Connects to NATS, trying again until it can; `available` follows the connection from then
/// on (the ledger sets it once its bucket is open), and `sessions_checked` is cleared each
/// time it is lost.
async fn connect(
    config: &ClusterConfig,
    available: &Arc<AtomicBool>,
    sessions_checked: &Arc<AtomicBool>,
) -> async_nats::Client {
    until_ok(&format!("reach NATS at {}", config.nats), || {
        let (connected, checked) = (Arc::clone(available), Arc::clone(sessions_checked));
        async_nats::ConnectOptions::new()
            .name(&config.bucket)
            .connection_timeout(ACK_TIMEOUT)
            // A link that went silent (no reset: a partition) is noticed within a few seconds.
            .ping_interval(PING)
            .event_callback(move |event| {
                let (connected, checked) = (Arc::clone(&connected), Arc::clone(&checked));
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            tracing::info!("cluster: connected to NATS");
                            connected.store(true, Ordering::Relaxed);
                        }
                        async_nats::Event::Disconnected => {
                            tracing::warn!("cluster: NATS lost; claims are refused until it is back");
                            connected.store(false, Ordering::Relaxed);
                            checked.store(false, Ordering::Relaxed);
                        }
                        _ => {}
                    }
                }
            })
            .connect(config.nats_urls())
    })
    .await
}

/// `attempt`'s value once it gives one: tried every [`RETRY`], the first failure logged
/// ("cannot `what` yet"), the others not.
async fn until_ok<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
    what: &str,
    mut attempt: impl FnMut() -> F,
) -> T {
    let mut warned = false;
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(e) => {
                if !warned {
                    tracing::warn!("cluster: cannot {what} yet: {e}; claims are refused meanwhile");
                    warned = true;
                }
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// Opens the key-value bucket `bucket`, creating it (one value per key, on disk, `replicas`
/// replicas) if it is not there; tried until it can be.
async fn open_bucket(js: &jetstream::Context, bucket: &str, description: &str, replicas: u32) -> kv::Store {
    until_ok(&format!("open bucket {bucket}"), || async {
        if let Ok(store) = js.get_key_value(bucket).await {
            return Ok(store);
        }
        js.create_key_value(kv::Config {
            bucket: bucket.to_string(),
            description: description.to_string(),
            history: 1,
            storage: jetstream::stream::StorageType::File,
            num_replicas: replicas as usize,
            ..Default::default()
        })
        .await
    })
    .await
}

/// This shard's number among those sharing the hunt: drawn at random the first time, then kept
/// in the store, so that after a restart the shard knows the claims it asked for before (and
/// finds those it did not save).
fn shard_number(store: &Store) -> Result<u64, String> {
    let key = veltrix_sdk::rmp_serde::to_vec("number").expect("keys serialise");
    let unreadable = |e: &dyn std::fmt::Display| format!("cannot read the shard's number in table {SHARD_TABLE}: {e}");
    if let Some(value) = store.0.get(SHARD_TABLE, &key).map_err(|e| unreadable(&e))? {
        return veltrix_sdk::rmp_serde::from_slice(&value).map_err(|e| unreadable(&e));
    }
    let mut drawn = [0u8; 8];
    getrandom::fill(&mut drawn).map_err(|e| format!("cannot draw the shard's number: {e}"))?;
    let number = u64::from_le_bytes(drawn);
    let value = veltrix_sdk::rmp_serde::to_vec(&number).expect("numbers serialise");
    store
        .0
        .commit(&[veltrix_sdk::Write { table: SHARD_TABLE.into(), key, value: Some(value) }])
        .map_err(|e| format!("cannot save the shard's number: {e}"))?;
    Ok(number)
}
