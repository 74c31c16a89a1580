//! A player's records follow it from shard to shard (docs/scale-out.md). When a player leaves a
//! shard, once the tick's commit saved its records, the shard puts them (every record of the
//! tables in [`PlayerTables`], the host's and the mods') in a JetStream key-value bucket of its
//! own, `<bucket>-players`, under the player's name; only then does it tell the other shards the
//! player left, so until then they refuse the name (one session per name). When a player joins a
//! shard, the join waits for that entry: if it is newer than what this shard last wrote or took
//! for the player, its records replace the player's records here before the join goes on, and
//! the mods drop what they kept of the player in memory ([`ReplacedPlayers`]).
//!
//! Ids are the same on every shard for a name first seen in a cluster (see
//! `veltrix_sdk::shared_player_id`), so records keyed by id follow as they are.

use std::collections::HashMap;

use async_nats::jetstream::{self, kv};
use serde::{Deserialize, Serialize};
use veltrix_sdk::{Changes, PlayerId, PlayerTables, ReplacedPlayers, Store, Write, key_level, prelude::*};

use super::ACK_TIMEOUT;
use crate::{config::ClusterConfig, net::JoinRequest};

/// Where a shard keeps the revision of each player's records it last wrote or took (docs/storage.md).
pub const HANDOFF_TABLE: &str = "veltrix/handoff";

/// How long a join waits for the player's records before it goes on with what this shard has.
const JOIN_WAIT_TICKS_PER_SECOND: u64 = 5;

/// A record: table, key and value.
type Record = (String, Vec<u8>, Vec<u8>);

/// A player's records, as put in the bucket.
#[derive(Debug, Serialize, Deserialize)]
struct Bundle {
    /// The shard that put them.
    shard: u64,
    records: Vec<Record>,
}

/// What the tick asks of the handoff's task.
enum Job {
    Put { name: String, bundle: Vec<u8> },
    Get { name: String },
}

/// What comes back.
enum Done {
    /// The records of `name` are in the bucket at `revision` (`None`: NATS could not take
    /// them; they stay here, and the next shard the player joins goes on without them).
    Put { name: String, revision: Option<u64> },
    /// The entry of `name`: its revision and bundle, none, or why it could not be read.
    Got { name: String, entry: Result<Option<(u64, Vec<u8>)>, String> },
}

/// A join waiting for the player's records.
struct Parked {
    request: JoinRequest,
    /// What the client sent after its Hello meanwhile: applied once it is in.
    held: Vec<veltrix_sdk::protocol::ClientMessage>,
    /// The tick it came in.
    since: u64,
    /// Whether its records were asked for (not yet while this shard's own put of them flies).
    asked: bool,
}

/// The tick's ends of the handoff.
#[derive(Resource)]
pub struct HandoffLink {
    shard: u64,
    jobs: flume::Sender<Job>,
    done: flume::Receiver<Done>,
    /// Joins waiting, by lower-cased name.
    parked: HashMap<String, Parked>,
    /// Joins whose records came, to go on this tick, with what their clients sent meanwhile.
    ready: Vec<(JoinRequest, Vec<veltrix_sdk::protocol::ClientMessage>)>,
    /// Players who left this tick: id and name, put once the commit saved them.
    departed: Vec<(PlayerId, String)>,
    /// Names whose records this shard is putting, with where they left: still online for the
    /// other shards.
    leaving: HashMap<String, (f32, f32)>,
    /// The revision of each player's records this shard last wrote or took, by lower-cased name.
    revisions: HashMap<String, u64>,
    /// Names to tell the other shards gone (their records are in the bucket).
    gone: Vec<String>,
}

/// The tasks' ends of the handoff's channels, for [`run`].
pub struct HandoffTasks {
    jobs: flume::Receiver<Job>,
    done: flume::Sender<Done>,
}

/// Inserts the handoff of shard number `shard` in `world`, with the revisions it kept.
pub fn insert(world: &mut World, shard: u64) -> Result<HandoffTasks, String> {
    let store = world.resource::<Store>().clone();
    let revisions = store
        .load::<String, u64>(HANDOFF_TABLE)
        .map_err(|e| format!("cannot read table {HANDOFF_TABLE}: {e}"))?
        .into_iter()
        .collect();
    let (jobs_tx, jobs_rx) = flume::unbounded();
    let (done_tx, done_rx) = flume::unbounded();
    world.insert_resource(HandoffLink {
        shard,
        jobs: jobs_tx,
        done: done_rx,
        parked: HashMap::new(),
        ready: Vec::new(),
        departed: Vec::new(),
        leaving: HashMap::new(),
        revisions,
        gone: Vec::new(),
    });
    world.init_resource::<ReplacedPlayers>();
    let mut tables = world.get_resource_or_init::<PlayerTables>();
    for table in [crate::sessions::POSITIONS, crate::answers::ANSWERS, crate::answers::ANSWER_IDS] {
        tables.0.push(table.into());
    }
    Ok(HandoffTasks { jobs: jobs_rx, done: done_tx })
}

impl HandoffLink {
    /// Parks a join until the player's records are known here.
    pub fn park(&mut self, request: JoinRequest, tick: u64) {
        let name = request.name.to_lowercase();
        let asked = !self.leaving.contains_key(&name);
        if asked {
            let _ = self.jobs.send(Job::Get { name: name.clone() });
        }
        if let Some(old) = self.parked.insert(name, Parked { request, held: Vec::new(), since: tick, asked }) {
            old.request.handle.close(veltrix_sdk::protocol::ErrorCode::Replaced, "you logged in from somewhere else");
        }
    }

    /// Joins whose records came, to go on, with what their clients sent meanwhile.
    fn take_ready(&mut self) -> Vec<(JoinRequest, Vec<veltrix_sdk::protocol::ClientMessage>)> {
        std::mem::take(&mut self.ready)
    }

    /// Keeps what a parked join's client sent, for when it is in; gives back what is not a
    /// parked join's.
    pub fn hold(
        &mut self,
        conn: crate::net::ConnId,
        messages: Vec<veltrix_sdk::protocol::ClientMessage>,
    ) -> Option<Vec<veltrix_sdk::protocol::ClientMessage>> {
        match self.parked.values_mut().find(|p| p.request.conn == conn) {
            Some(parked) => {
                parked.held.extend(messages);
                None
            }
            None => Some(messages),
        }
    }

    /// A player left this tick from (x, y): its records go to the bucket once saved.
    pub fn departed(&mut self, id: PlayerId, name: &str, (x, y): (f32, f32)) {
        self.leaving.insert(name.to_lowercase(), (x, y));
        self.departed.push((id, name.to_string()));
    }

    /// Whether a parked join has this connection (it ended: the join is dropped).
    pub fn drop_parked(&mut self, conn: crate::net::ConnId) {
        self.parked.retain(|_, p| p.request.conn != conn);
    }

    /// Players still online for the other shards, and where they left: leaving here, their
    /// records not yet put.
    pub fn leaving(&self) -> impl Iterator<Item = (&String, &(f32, f32))> {
        self.leaving.iter()
    }

    /// Names whose records are put: the other shards may let them in now.
    pub fn take_gone(&mut self) -> Vec<String> {
        std::mem::take(&mut self.gone)
    }
}

/// PreTick, before the network's input: what the handoff's task did. A put done is recorded
/// (and its name told gone); records that came replace the player's here if newer, and the
/// waiting join goes on; a join that waited too long goes on with what this shard has.
pub fn receive_handoffs(world: &mut World) {
    let tick = world.resource::<TickInfo>().tick;
    let rate = u64::from(world.resource::<TickInfo>().rate.max(1));
    world.resource_mut::<ReplacedPlayers>().0.clear();
    let done: Vec<Done> = world.resource::<HandoffLink>().done.try_iter().collect();
    for done in done {
        match done {
            Done::Put { name, revision } => {
                let mut link = world.resource_mut::<HandoffLink>();
                link.leaving.remove(&name);
                link.gone.push(name.clone());
                if let Some(revision) = revision {
                    link.revisions.insert(name.clone(), revision);
                    world.resource_mut::<Changes>().put(&HANDOFF_TABLE.into(), &name, &revision);
                }
                let mut link = world.resource_mut::<HandoffLink>();
                if let Some(parked) = link.parked.get_mut(&name)
                    && !parked.asked
                {
                    parked.asked = true;
                    let _ = link.jobs.send(Job::Get { name });
                }
            }
            Done::Got { name, entry } => {
                match entry {
                    Ok(Some((revision, bytes))) => take(world, &name, revision, &bytes),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(
                        "cluster: the records of {name} cannot be read from NATS ({e}); it plays with what this \
                         server has"
                    ),
                }
                let mut link = world.resource_mut::<HandoffLink>();
                if let Some(parked) = link.parked.remove(&name) {
                    link.ready.push((parked.request, parked.held));
                }
            }
        }
    }
    let mut link = world.resource_mut::<HandoffLink>();
    let waited: Vec<String> = link
        .parked
        .iter()
        .filter(|(_, p)| tick.saturating_sub(p.since) > JOIN_WAIT_TICKS_PER_SECOND * rate)
        .map(|(n, _)| n.clone())
        .collect();
    for name in waited {
        tracing::warn!(
            "cluster: the records of {name} did not come from NATS in time; it plays with what this server has"
        );
        let parked = link.parked.remove(&name).expect("listed above");
        link.ready.push((parked.request, parked.held));
    }
}

/// PreTick, after [`receive_handoffs`]: the joins whose records came go on.
pub fn admit_ready(world: &mut World) {
    for (request, held) in world.resource_mut::<HandoffLink>().take_ready() {
        let conn = request.conn;
        crate::sessions::intake::join(world, request);
        crate::sessions::intake::apply_messages(world, conn, held);
    }
}

/// Puts the records of a bundle in the store here, if newer than what this shard has.
fn take(world: &mut World, name: &str, revision: u64, bytes: &[u8]) {
    let link = world.resource::<HandoffLink>();
    if link.revisions.get(name).is_some_and(|&have| have >= revision) {
        return;
    }
    let bundle: Bundle = match veltrix_sdk::rmp_serde::from_slice(bytes) {
        Ok(bundle) => bundle,
        Err(e) => {
            tracing::error!(
                "cluster: the records of {name} in NATS do not decode ({e}); it plays with what this server has"
            );
            return;
        }
    };
    if bundle.shard == link.shard {
        return;
    }
    let mut writes: Vec<Write> = bundle
        .records
        .into_iter()
        .map(|(table, key, value)| Write { table: table.into(), key, value: Some(value) })
        .collect();
    let key = veltrix_sdk::rmp_serde::to_vec(name).expect("keys serialise");
    let value = veltrix_sdk::rmp_serde::to_vec(&revision).expect("revisions serialise");
    writes.push(Write { table: HANDOFF_TABLE.into(), key, value: Some(value) });
    // A point write on the tick thread, once per player coming from another shard: its join
    // reads these records in this tick.
    if let Err(e) = world.resource::<Store>().0.commit(&writes) {
        tracing::error!("cluster: the records of {name} from another server cannot be saved here ({e})");
        return;
    }
    world.resource_mut::<HandoffLink>().revisions.insert(name.to_string(), revision);
    let id = veltrix_sdk::shared_player_id(name);
    world.resource_mut::<ReplacedPlayers>().0.push(id);
    tracing::info!("cluster: {name} comes from another server; its records came with it (revision {revision})");
}

/// PostTick, after the commit: the records of the players who left this tick, to the bucket.
pub fn put_departed(world: &mut World) {
    let departed = std::mem::take(&mut world.resource_mut::<HandoffLink>().departed);
    if departed.is_empty() {
        return;
    }
    let store = world.resource::<Store>().clone();
    let tables = world.get_resource::<PlayerTables>().cloned().unwrap_or_default();
    let shard = world.resource::<HandoffLink>().shard;
    for (id, name) in departed {
        let records = match player_records(&store, &tables, id) {
            Ok(records) => records,
            Err(e) => {
                tracing::error!("cluster: the records of {name} cannot be read to hand over ({e})");
                Vec::new()
            }
        };
        let bundle = veltrix_sdk::rmp_serde::to_vec(&Bundle { shard, records }).expect("bundles serialise");
        let _ = world.resource::<HandoffLink>().jobs.send(Job::Put { name: name.to_lowercase(), bundle });
    }
}

/// Every record of player `id` in `tables`: keyed by the id, or by a tuple of two or three
/// that begins with it.
fn player_records(store: &Store, tables: &PlayerTables, id: PlayerId) -> Result<Vec<Record>, String> {
    let own = veltrix_sdk::rmp_serde::to_vec(&id).expect("ids serialise");
    let mut records = Vec::new();
    for table in &tables.0 {
        if let Some(value) = store.0.get(table, &own).map_err(|e| e.to_string())? {
            records.push((table.to_string(), own.clone(), value));
        }
        // MessagePack arrays of two and three: their header, then the id.
        for header in [0x92u8, 0x93] {
            let from: Vec<u8> = std::iter::once(header).chain(own.iter().copied()).collect();
            let to: Vec<u8> = from.iter().copied().chain([0xff]).collect();
            for (key, value) in store.0.read_range(table, &from, &to).map_err(|e| e.to_string())? {
                records.push((table.to_string(), key, value));
            }
        }
    }
    Ok(records)
}

/// The handoff's task, once NATS is reached: opens its bucket, then puts and gets.
pub async fn run(client: async_nats::Client, config: ClusterConfig, tasks: HandoffTasks) {
    let HandoffTasks { jobs, done } = tasks;
    let js = jetstream::ContextBuilder::new().timeout(ACK_TIMEOUT).build(client);
    let bucket = format!("{}-players", config.bucket);
    let store =
        super::open_bucket(&js, &bucket, "Veltrix: each player's records, handed from shard to shard", config.replicas)
            .await;
    while let Ok(job) = jobs.recv_async().await {
        let (store, done) = (store.clone(), done.clone());
        tokio::spawn(async move {
            let result = match job {
                Job::Put { name, bundle } => {
                    let revision = match store.put(key(&name), bundle.into()).await {
                        Ok(revision) => Some(revision),
                        Err(e) => {
                            tracing::warn!(
                                "cluster: the records of {name} cannot be handed over ({e}): they stay here"
                            );
                            None
                        }
                    };
                    Done::Put { name, revision }
                }
                Job::Get { name } => {
                    let entry = match store.entry(key(&name)).await {
                        Ok(Some(entry)) if entry.operation == kv::Operation::Put => {
                            Ok(Some((entry.revision, entry.value.to_vec())))
                        }
                        Ok(_) => Ok(None),
                        Err(e) => Err(e.to_string()),
                    };
                    Done::Got { name, entry }
                }
            };
            let _ = done.send(result);
        });
    }
}

/// A player's key in the bucket.
fn key(name: &str) -> String {
    format!("p.{}", key_level(name))
}
