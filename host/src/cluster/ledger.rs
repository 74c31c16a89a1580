//! The host's side of the sdk's [`Ledger`]: a JetStream key-value bucket in which a key is
//! created once (`create` succeeds only when the key holds nothing), watched so every shard
//! learns every key any shard created.
//!
//! The tick never waits for NATS: [`send_asks`] hands the tick's asks to the async runtime,
//! where each is one `create` (a JetStream publish with `Nats-Expected-Last-Subject-Sequence: 0`,
//! acknowledged once the stream has stored it, fsynced with `sync_interval: always`), and
//! [`receive_answers`] puts what came back into the `Ledger` before the next tick's input.
//!
//! A read ([`Ledger::read`]) takes the bucket's stream's next message on the pattern's subject
//! from the stream's leader (not a replica, which may lag behind a key already acknowledged),
//! one key at a time, and tells each as news.
//!
//! An ask whose acknowledgement does not come (NATS down, the shard cut off) may still have been
//! stored, so it is never answered "no": it is asked again, with the same value, until the
//! ledger answers `Created` or holds a value (which is this ask's own when its server and ticket
//! match). Meanwhile the `Ledger` says it is unavailable and the mod refuses new claims.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;
use veltrix_sdk::{Decision, Ledger, LedgerAsk, LedgerNews, prelude::*};

use super::{ACK_TIMEOUT, RETRY};
use crate::config::ClusterConfig;

/// What comes back from the ledger's tasks to the tick.
#[derive(Debug)]
enum Event {
    Answer(u64, String, Decision),
    News(LedgerNews),
}

/// What goes from the tick to the ledger's tasks.
#[derive(Debug)]
enum Request {
    Create(LedgerAsk),
    /// Every key matching a pattern.
    Read(String),
}

/// The tick's ends of the ledger's channels.
#[derive(Resource)]
pub struct LedgerLink {
    asks: flume::Sender<Request>,
    events: flume::Receiver<Event>,
    /// Whether NATS can be reached now (connected, and the bucket opened).
    available: Arc<AtomicBool>,
    /// Whether the players online here are known to be this shard's since NATS came back
    /// (`handoff::check_sessions`): until then claims are refused as if NATS were away.
    sessions_checked: Arc<AtomicBool>,
}

/// Inserts the [`Ledger`] of shard number `server` and its [`LedgerLink`] in `world`; the ledger's
/// tasks start once NATS is reached ([`run`]), `available` saying whether it is; claims wait for
/// `sessions_checked` too.
pub fn insert(
    world: &mut World,
    server: u64,
    available: Arc<AtomicBool>,
    sessions_checked: Arc<AtomicBool>,
) -> LedgerTasks {
    let (asks_tx, asks_rx) = flume::unbounded::<Request>();
    let (events_tx, events_rx) = flume::unbounded::<Event>();
    world.insert_resource(Ledger::new(server));
    world.insert_resource(LedgerLink {
        asks: asks_tx,
        events: events_rx,
        available: Arc::clone(&available),
        sessions_checked,
    });
    LedgerTasks { asks: asks_rx, events: events_tx, available }
}

/// The tasks' ends of the ledger's channels, for [`run`].
pub struct LedgerTasks {
    asks: flume::Receiver<Request>,
    events: flume::Sender<Event>,
    available: Arc<AtomicBool>,
}

/// PostTick: the tick's asks and reads, to the ledger's tasks.
pub fn send_asks(mut ledger: ResMut<Ledger>, link: Res<LedgerLink>) {
    // The task ends only with the runtime, at exit.
    for ask in ledger.take_asks() {
        let _ = link.asks.send(Request::Create(ask));
    }
    for pattern in ledger.take_reads() {
        let _ = link.asks.send(Request::Read(pattern));
    }
}

/// PreTick: the answers and news that came, into the [`Ledger`]; held while the players online
/// here are not known to be this shard's (after a lost link or a stall): an answer to a claim
/// asked before is applied only once its player is known to be here still, and a player let in
/// elsewhere meanwhile has left first (its claim then waits for it to come back here).
pub fn receive_answers(mut ledger: ResMut<Ledger>, link: Res<LedgerLink>, net: Option<Res<crate::sessions::NetLink>>) {
    let checked = link.sessions_checked.load(Ordering::Relaxed);
    let available = link.available.load(Ordering::Relaxed) && checked;
    if ledger.available() != available {
        ledger.set_available(available);
        if let Some(net) = net {
            net.metrics.cluster_ledger_available.set(i64::from(available));
        }
    }
    if !checked {
        return;
    }
    for event in link.events.try_iter() {
        match event {
            Event::Answer(ticket, key, decision) => ledger.answer(ticket, key, decision),
            Event::News(news) => ledger.tell(news),
        }
    }
}

/// The ledger's main task, once NATS is reached: opens or creates the bucket, starts the
/// watch, then answers asks and reads, each in a task of its own.
pub async fn run(client: async_nats::Client, config: ClusterConfig, tasks: LedgerTasks) {
    let LedgerTasks { asks, events, available } = tasks;
    let js = jetstream::ContextBuilder::new().timeout(ACK_TIMEOUT).build(client);
    // One value per key: a key is written once and never changed.
    let store =
        super::open_bucket(&js, &config.bucket, "Veltrix: keys decided once across shards (claims)", config.replicas)
            .await;
    available.store(true, Ordering::Relaxed);
    tracing::info!("cluster: claims are decided in JetStream bucket {} at {}", config.bucket, config.nats);
    tokio::spawn(watch(store.clone(), events.clone()));
    while let Ok(request) = asks.recv_async().await {
        let (store, events) = (store.clone(), events.clone());
        match request {
            Request::Create(ask) => tokio::spawn(async move {
                let decision = create(&store, &ask.key, ask.value).await;
                let _ = events.send(Event::Answer(ask.ticket, ask.key, decision));
            }),
            Request::Read(pattern) => tokio::spawn(async move {
                for news in read(&store, &pattern).await {
                    let _ = events.send(Event::News(news));
                }
            }),
        };
    }
}

/// Every key matching `pattern`, read from the stream's leader; the whole read again after a
/// failure, until one is done.
async fn read(store: &kv::Store, pattern: &str) -> Vec<LedgerNews> {
    let subject = format!("{}{pattern}", store.prefix);
    super::until_ok(&format!("read {pattern} from the ledger"), || read_once(store, &subject)).await
}

/// The keys under `subject`, one message after the other (a key is written once, so each
/// message is a key). A pattern that is no subject finds nothing.
async fn read_once(store: &kv::Store, subject: &str) -> Result<Vec<LedgerNews>, jetstream::stream::RawMessageError> {
    use jetstream::stream::RawMessageErrorKind;
    let (mut found, mut next) = (Vec::new(), 1);
    loop {
        let message = match store.stream.raw_message_builder().next_by_subject(subject).sequence(next).send().await {
            Ok(message) => message,
            Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => return Ok(found),
            Err(e) if e.kind() == RawMessageErrorKind::InvalidSubject => {
                tracing::warn!("cluster: a mod read the ledger with a pattern that is no subject: {subject:?}");
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        next = message.sequence + 1;
        let deleted = message.headers.get(KV_OPERATION).is_some_and(|op| op.as_str() != "PUT");
        if let (false, Some(key)) = (deleted, message.subject.strip_prefix(store.prefix.as_str())) {
            found.push(LedgerNews { key: key.to_owned(), value: message.payload.to_vec() });
        }
    }
}

/// The header a key-value bucket's message says its operation in (absent on a put).
const KV_OPERATION: &str = "KV-Operation";

/// One ask, decided: created, or the value that holds the key (this ask's own, if an earlier
/// try was stored but its acknowledgement lost). Tried again until one of them is known; only a
/// key the ledger refuses is `Unavailable`.
async fn create(store: &kv::Store, key: &str, value: Vec<u8>) -> Decision {
    let value = bytes::Bytes::from(value);
    loop {
        match store.create(key, value.clone()).await {
            Ok(_) => return Decision::Created,
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                if let Ok(Some(held)) = store.get(key).await {
                    return Decision::Held(held.to_vec());
                }
            }
            Err(e) if e.kind() == kv::CreateErrorKind::InvalidKey => {
                return Decision::Unavailable(format!("the ledger refuses key {key:?}: {e}"));
            }
            Err(e) => tracing::debug!("cluster: ask for {key} not decided yet: {e}"),
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Every key of the bucket, the ones already there first, then each as it is created (by any
/// shard, this one too: the mod tells its own apart); started again after the last revision
/// seen when the watch ends (NATS went away).
async fn watch(store: kv::Store, events: flume::Sender<Event>) {
    let mut next = 1;
    loop {
        match store.watch_all_from_revision(next).await {
            Ok(mut entries) => {
                while let Some(entry) = entries.next().await {
                    let Ok(entry) = entry else { break };
                    next = entry.revision + 1;
                    if entry.operation != kv::Operation::Put {
                        continue;
                    }
                    let news = LedgerNews { key: entry.key, value: entry.value.to_vec() };
                    if events.send(Event::News(news)).is_err() {
                        return;
                    }
                }
            }
            Err(e) => tracing::warn!("cluster: cannot watch the bucket: {e}; trying again"),
        }
        tokio::time::sleep(RETRY).await;
    }
}
