//! A player's records follow it from shard to shard (docs/scale-out.md). When a player leaves a
//! shard, once the tick's commit saved its records, the shard puts them (every record of the
//! tables in [`PlayerTables`], the host's and the mods') in a JetStream key-value bucket of its
//! own, `<bucket>-players`, under the player's name; only then does it tell the other shards the
//! player left. When a player joins a shard, the join waits for that entry: if it is newer than
//! what this shard last wrote or took for the player, its records replace the player's records
//! here before the join goes on, and the mods drop what they kept of the player in memory
//! ([`ReplacedPlayers`]).
//!
//! The entry also says which shard the player is on (`on`), so one name is let in on one shard
//! only: a join writes its own shard there (compare-and-set) before the player is let in, and
//! the put as it leaves clears it. A join that finds another shard there asks that shard
//! ([`Where`]): one whose last put of the player flies is waited on, one that has the player
//! online (or is letting it in) refuses the join, and one that does not answer (dead, cut off
//! from NATS) or no longer has the player is taken over. So two shards never let one name in at
//! once, even before they hear each other's rosters, and a player who left one shard is let in
//! on the next only with the records it left with.
//!
//! While a player plays, its records are also put there when they changed, at most once every
//! `Cluster.RecordsEverySeconds`, so a shard that dies does not keep them: its players go on
//! elsewhere with their records as of that put. Which players changed since their last put is
//! kept in the store with the change ([`UNSENT_TABLE`]); a shard that restarts puts those
//! first, unless the player changed on another shard meanwhile (then they stay here, logged).
//! Every put names the revision this shard last wrote or took (compare-and-set), so a shard never
//! overwrites records another shard wrote after it. The handoff's task reads the records it puts
//! off the tick thread, in one read transaction: all as one commit (the one that asked for the
//! put, or a later one) left them.
//!
//! Ids are the same on every shard for a name first seen in a cluster (see
//! `veltrix_sdk::shared_player_id`), so records keyed by id follow as they are.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use veltrix_sdk::{Changes, KeyRange, PlayerId, PlayerTables, ReplacedPlayers, Store, Write, key_level, prelude::*};

use super::ACK_TIMEOUT;
use crate::{config::ClusterConfig, net::JoinRequest};

/// Where a shard keeps the revision of each player's records it last wrote or took (docs/storage.md).
pub const HANDOFF_TABLE: &str = "veltrix/handoff";
/// Where a shard marks the players whose records changed since it last put them in NATS
/// (docs/storage.md).
pub const UNSENT_TABLE: &str = "veltrix/handoff-unsent";

/// How long a join waits for the player's records before it goes on with what this shard has.
const JOIN_WAIT_TICKS_PER_SECOND: u64 = 6;
/// How long a join waits for another shard to let the player go (its last put in flight)
/// before it is refused, or for a silent one to answer before it is taken over: well below the
/// join's own wait, so the join is answered.
const CONTESTED_WAIT: Duration = Duration::from_secs(4);
/// How often a join waiting for the player to leave another shard reads its entry again.
const LEAVING_POLL: Duration = Duration::from_millis(20);
/// How long a shard waits for another to say whether it has a player.
const WHERE_TIMEOUT: Duration = Duration::from_millis(500);
/// A tick this long after the last one finds the shard was silent long enough for another to
/// take its players over ([`CONTESTED_WAIT`]): well below it, so any takeover is noticed.
const STALLED: Duration = Duration::from_secs(2);
/// A shard asked whether it has a player and not subscribed is asked once more this much later
/// (a subscription made on another node of a NATS cluster reaches this one a moment later).
const NO_RESPONDERS_AGAIN: Duration = Duration::from_millis(250);

/// A record: table, key and value.
type Record = (String, Vec<u8>, Vec<u8>);

/// A player's records, as put in the bucket.
#[derive(Debug, Serialize, Deserialize)]
struct Bundle {
    /// The shard that put them.
    shard: u64,
    records: Vec<Record>,
    /// The player's id on that shard, which begins the records' keys (absent in bundles of
    /// older servers: the id every shard gives the name).
    #[serde(default)]
    id: Option<PlayerId>,
    /// The shard the player is on (online, or its join let in), none once it left (absent in
    /// bundles of older servers: none).
    #[serde(default)]
    on: Option<u64>,
}

/// Whether a shard has a player, as it answers another shard's join of the name.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Where {
    /// Online, or its join here is let in or about to be.
    Online,
    /// It left, or is leaving (kept until the ledger answers its claims); its last put is to
    /// come or flies.
    Leaving,
    /// Not here.
    Absent,
}

impl Where {
    fn word(self) -> &'static [u8] {
        match self {
            Where::Online => b"online",
            Where::Leaving => b"leaving",
            Where::Absent => b"absent",
        }
    }

    fn from_word(word: &[u8]) -> Option<Where> {
        [Where::Online, Where::Leaving, Where::Absent].into_iter().find(|w| w.word() == word)
    }
}

/// What the tick asks of the handoff's task.
enum Job {
    /// Put the records of player `id` (`name`) in `tables`, read then, over revision `over`
    /// (none: there is no entry); `online`: the player is online here (the entry says so).
    Put { name: String, id: PlayerId, tables: Arc<[Arc<str>]>, over: Option<u64>, leaving: bool, online: bool },
    /// Make `name` this shard's in the bucket, and give its records ([`claim`]).
    Claim { name: String },
    /// Answer another shard that asked whether this one has a player.
    Answer { reply: async_nats::Subject, answer: Where },
}

/// What came of a put.
#[derive(Debug, PartialEq)]
enum Put {
    /// In the bucket at this revision.
    Saved(u64),
    /// NATS could not take them: they stay here (and are tried again while the player plays).
    Unreachable,
    /// Another shard wrote the player's records after the revision this shard knew: this
    /// shard's stay here.
    Overtaken,
}

/// What comes back.
enum Done {
    /// The put of `name`'s records (`leaving`: the last, as it left).
    Put { name: String, put: Put, leaving: bool },
    /// What came of the claim of `name` for a join.
    Claimed { name: String, claim: Claim },
    /// Another shard asks whether this one has `name` (lower-cased).
    Asked { name: String, reply: async_nats::Subject },
}

/// What came of a join's claim of a player in the bucket.
enum Claim {
    /// The player is this shard's at `revision`; the entry held this before (its revision and
    /// bundle), if anything readable.
    Made { revision: u64, held: Option<(u64, Bundle)> },
    /// Another shard has the player.
    Elsewhere,
    /// NATS could not be read or written.
    Unreachable(String),
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
    /// Names to tell the other shards gone (their records are in the bucket), with where they
    /// left from.
    gone: Vec<(String, (f32, f32))>,
    /// Players whose records changed since their last put, each with the tick it first did;
    /// `changed_order` the same names, oldest first (a name may be there again, or gone).
    changed: HashMap<String, u64>,
    changed_order: VecDeque<(String, u64)>,
    /// Names marked in [`UNSENT_TABLE`].
    unsent: HashSet<String>,
    /// Names whose put flies; a put asked meanwhile waits here (the latest only), with the
    /// player's id, whether it is the last and whether the player is online.
    in_flight: HashSet<String>,
    waiting_put: HashMap<String, (PlayerId, bool, bool)>,
    /// The tables whose records are a player's ([`PlayerTables`], complete once the mods are
    /// set up), taken at the first put.
    tables: Option<Arc<[Arc<str>]>>,
    /// How long a changed player's records wait before they are put, in ticks.
    put_after: u64,
    /// Whether NATS is reached now.
    connected: Arc<AtomicBool>,
    /// Whether the players online here are known to be this shard's since NATS last came
    /// ([`check_sessions`]; claims wait for it); the names whose put checks it, and whether one
    /// of those puts could not be made.
    sessions_checked: Arc<AtomicBool>,
    checking: HashSet<String>,
    check_failed: bool,
}

/// The tasks' ends of the handoff's channels, for [`run`], the shard's number and its store.
pub struct HandoffTasks {
    shard: u64,
    local: Store,
    jobs: flume::Receiver<Job>,
    done: flume::Sender<Done>,
}

/// Inserts the handoff of shard number `shard` in `world`, with the revisions it kept; a
/// changed player's records are put after `put_after` ticks. The players whose records changed
/// before this shard stopped and were not put are put first. `connected` says whether NATS is
/// reached; `sessions_checked` is set once the players online here are known to be this shard's.
pub fn insert(
    world: &mut World,
    shard: u64,
    put_after: u64,
    connected: Arc<AtomicBool>,
    sessions_checked: Arc<AtomicBool>,
) -> Result<HandoffTasks, String> {
    let store = world.resource::<Store>().clone();
    let revisions = store
        .load::<String, u64>(HANDOFF_TABLE)
        .map_err(|e| format!("cannot read table {HANDOFF_TABLE}: {e}"))?
        .into_iter()
        .collect();
    let unsent: HashSet<String> = store
        .load::<String, bool>(UNSENT_TABLE)
        .map_err(|e| format!("cannot read table {UNSENT_TABLE}: {e}"))?
        .into_iter()
        .map(|(name, _)| name)
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
        // Those left unsent when this shard stopped go at its first ticks.
        changed: unsent.iter().map(|name| (name.clone(), 0)).collect(),
        changed_order: unsent.iter().map(|name| (name.clone(), 0)).collect(),
        unsent,
        in_flight: HashSet::new(),
        waiting_put: HashMap::new(),
        tables: None,
        put_after: put_after.max(1),
        connected,
        sessions_checked,
        checking: HashSet::new(),
        check_failed: false,
    });
    world.init_resource::<ReplacedPlayers>();
    let mut tables = world.get_resource_or_init::<PlayerTables>();
    for table in [crate::sessions::POSITIONS, crate::answers::ANSWERS, crate::answers::ANSWER_IDS] {
        tables.0.push(table.into());
    }
    report_unsent(world);
    Ok(HandoffTasks { shard, local: store, jobs: jobs_rx, done: done_tx })
}

impl HandoffLink {
    /// Parks a join until the player is this shard's in the bucket, with its records.
    pub fn park(&mut self, request: JoinRequest, tick: u64) {
        let name = request.name.to_lowercase();
        let asked = !self.leaving.contains_key(&name);
        if asked {
            let _ = self.jobs.send(Job::Claim { name: name.clone() });
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
        messages: crate::net::FrameMessages,
    ) -> Option<crate::net::FrameMessages> {
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
        let key = name.to_lowercase();
        // The put as it leaves takes all it changed.
        self.changed.remove(&key);
        self.leaving.insert(key, (x, y));
        self.departed.push((id, name.to_string()));
    }

    /// Puts the records of player `id` (`name`, `online` here or not) over the revision this
    /// shard knows, or after the put of them that flies. The task reads them when it puts them:
    /// as the last commit then left them, this tick's or a later one's.
    fn put(&mut self, name: String, id: PlayerId, leaving: bool, online: bool) {
        if self.in_flight.contains(&name) {
            // A last put (leaving) is not replaced by an earlier one.
            let leaving = leaving || self.waiting_put.get(&name).is_some_and(|(_, l, _)| *l);
            self.waiting_put.insert(name, (id, leaving, online && !leaving));
            return;
        }
        let over = self.revisions.get(&name).copied();
        let tables = Arc::clone(self.tables.as_ref().expect("taken before the first put"));
        self.in_flight.insert(name.clone());
        let _ = self.jobs.send(Job::Put { name, id, tables, over, leaving, online: online && !leaving });
    }

    /// Whether this shard has `name` (lower-cased), as it answers another shard's join.
    fn where_is(&self, name: &str, sessions: &crate::sessions::Sessions) -> Where {
        let online = sessions.by_name(name);
        if self.leaving.contains_key(name) || online.is_some_and(|entity| sessions.is_leaving(entity)) {
            Where::Leaving
        } else if self.parked.contains_key(name)
            || self.ready.iter().any(|(request, _)| request.name.to_lowercase() == name)
            || online.is_some()
        {
            Where::Online
        } else {
            Where::Absent
        }
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
    pub fn take_gone(&mut self) -> Vec<(String, (f32, f32))> {
        std::mem::take(&mut self.gone)
    }
}

/// PreTick, first of the shard's systems: a tick that comes [`STALLED`] or more after the last
/// one (the process was stopped, or starved of CPU) finds that this shard answered no other
/// for as long, and another may have let one of its players in meanwhile (a silent shard is
/// taken over after [`CONTESTED_WAIT`]). Its NATS link may never have dropped, so claims wait,
/// as after a lost link, until each player online here is known to be this shard's again
/// ([`check_sessions`]): a dig sent to this shard meanwhile is refused, not granted here.
pub fn notice_stall(link: Res<HandoffLink>, mut last: Local<Option<Instant>>) {
    let now = Instant::now();
    let Some(last) = last.replace(now) else { return };
    let silent = now.duration_since(last);
    if silent >= STALLED && link.sessions_checked.swap(false, Ordering::Relaxed) {
        tracing::warn!(
            "cluster: this server's tick stalled for {:.1} s; claims wait until the players online here are known to be this server's",
            silent.as_secs_f64()
        );
    }
}

/// PreTick, before the network's input: what the handoff's task did. A put done is recorded
/// (and its name told gone); a join whose player is this shard's now goes on, its records
/// replaced by those that came if newer; one another shard has is refused; one that waited too
/// long, or could not reach NATS, goes on with what this shard has. Another shard's question
/// is answered.
pub fn receive_handoffs(world: &mut World) {
    let tick = world.resource::<TickInfo>().tick;
    let rate = u64::from(world.resource::<TickInfo>().rate.max(1));
    world.resource_mut::<ReplacedPlayers>().0.clear();
    let done: Vec<Done> = world.resource::<HandoffLink>().done.try_iter().collect();
    for done in done {
        match done {
            Done::Put { name, put, leaving } => put_done(world, name, put, leaving),
            Done::Claimed { name, claim } => claimed(world, name, claim),
            Done::Asked { name, reply } => {
                let link = world.resource::<HandoffLink>();
                let answer = link.where_is(&name, world.resource());
                let _ = link.jobs.send(Job::Answer { reply, answer });
            }
        }
    }
    let link = world.resource::<HandoffLink>();
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
        let parked = world.resource_mut::<HandoffLink>().parked.remove(&name).expect("listed above");
        admit_unclaimed(world, parked);
    }
    check_sessions(world);
}

/// Once NATS is reached (the first time, and each time it comes back), before claims resume:
/// each player online here is put again over the revision this shard knows. One let in on
/// another shard meanwhile (this one, cut off, did not answer for it) has its put overtaken and
/// its session here ended ([`put_done`]) before it can claim anything here.
fn check_sessions(world: &mut World) {
    let link = world.resource::<HandoffLink>();
    let checked = link.sessions_checked.load(Ordering::Relaxed);
    if checked || !link.connected.load(Ordering::Relaxed) || !link.checking.is_empty() {
        return;
    }
    let players: Vec<(PlayerId, String)> =
        world.query::<&Player>().iter(world).map(|p| (p.id, p.name.to_lowercase())).collect();
    if players.is_empty() {
        world.resource::<HandoffLink>().sessions_checked.store(true, Ordering::Relaxed);
        return;
    }
    tracing::info!(
        "cluster: NATS reached; claims wait until the {} player(s) online here are known to be this server's",
        players.len()
    );
    take_tables(world);
    let mut link = world.resource_mut::<HandoffLink>();
    for (id, name) in players {
        link.checking.insert(name.clone());
        link.put(name, id, false, true);
    }
}

/// What came of a parked join's claim of its player: let in (with the records that came, if
/// newer than this shard's), refused, or let in with what this shard has.
fn claimed(world: &mut World, name: String, claim: Claim) {
    let Some(parked) = world.resource_mut::<HandoffLink>().parked.remove(&name) else {
        // The join ended meanwhile; the entry names this shard until another asks it.
        return;
    };
    match claim {
        Claim::Made { revision, held } => {
            if let Some((over, bundle)) = held {
                take(world, &name, over, bundle);
            }
            world.resource_mut::<HandoffLink>().revisions.insert(name.clone(), revision);
            world.resource_mut::<Changes>().put(&HANDOFF_TABLE.into(), &name, &revision);
            world.resource_mut::<HandoffLink>().ready.push((parked.request, parked.held));
        }
        Claim::Elsewhere => refuse_elsewhere(parked.request),
        Claim::Unreachable(e) => {
            tracing::warn!("cluster: {name} cannot be claimed in NATS ({e}); it plays with what this server has");
            admit_unclaimed(world, parked);
        }
    }
}

/// A parked join let in without NATS's word: refused if this shard heard the name is online
/// on another, let in with what this shard has otherwise.
fn admit_unclaimed(world: &mut World, parked: Parked) {
    let relay = world.get_resource::<super::relay::RelayLink>();
    if relay.is_some_and(|relay| relay.online_elsewhere(&parked.request.name.to_lowercase())) {
        refuse_elsewhere(parked.request);
        return;
    }
    world.resource_mut::<HandoffLink>().ready.push((parked.request, parked.held));
}

/// Refuses a join whose player is online on another shard.
fn refuse_elsewhere(request: JoinRequest) {
    let why = format!("a player named {} is online on another server of this hunt", request.name);
    request.handle.close(veltrix_sdk::protocol::ErrorCode::NameTaken, why);
}

/// What a put of `name`'s records came to: its revision kept; the player told gone if it was
/// the last; the put that waited for it sent.
fn put_done(world: &mut World, name: String, put: Put, leaving: bool) {
    let mut link = world.resource_mut::<HandoffLink>();
    link.in_flight.remove(&name);
    let mut writes = Vec::new();
    match put {
        Put::Saved(revision) => {
            link.revisions.insert(name.clone(), revision);
            writes.push((HANDOFF_TABLE, Some(revision)));
        }
        // Tried again at its next change, or when it next leaves.
        Put::Unreachable if !leaving => {
            let tick = world.resource::<TickInfo>().tick;
            let mut link = world.resource_mut::<HandoffLink>();
            link.changed.entry(name.clone()).or_insert(tick);
            link.changed_order.push_back((name.clone(), tick));
        }
        Put::Unreachable | Put::Overtaken => {}
    }
    // Another shard let the player in while this one could not reach NATS (cut off): its
    // session here ends, and what it did here since stays here (logged as the put was made).
    if put == Put::Overtaken
        && !leaving
        && let Some(entity) = world.resource::<crate::sessions::Sessions>().by_name(&name)
    {
        // At once: nothing it sent meanwhile is applied here.
        crate::sessions::intake::replace_session(world, entity, "you logged in on another server of this hunt");
    }
    let mut link = world.resource_mut::<HandoffLink>();
    if link.checking.remove(&name) {
        link.check_failed |= put == Put::Unreachable;
        if link.checking.is_empty() && !std::mem::take(&mut link.check_failed) {
            link.sessions_checked.store(true, Ordering::Relaxed);
            tracing::info!("cluster: the players online here are this server's; claims resume");
        }
    }
    let settled = !link.changed.contains_key(&name) && !link.waiting_put.contains_key(&name);
    if settled && link.unsent.remove(&name) {
        writes.push((UNSENT_TABLE, None));
    }
    if leaving {
        if let Some(at) = link.leaving.remove(&name) {
            link.gone.push((name.clone(), at));
        }
        if let Some(parked) = link.parked.get_mut(&name)
            && !parked.asked
        {
            parked.asked = true;
            let _ = link.jobs.send(Job::Claim { name: name.clone() });
        }
    }
    if let Some((id, leaving, online)) = link.waiting_put.remove(&name) {
        link.put(name.clone(), id, leaving, online);
    }
    let mut changes = world.resource_mut::<Changes>();
    for (table, revision) in writes {
        match revision {
            Some(revision) => changes.put(&table.into(), &name, &revision),
            None => changes.delete(&table.into(), &name),
        }
    }
    report_unsent(world);
}

/// `veltrix_cluster_records_unsent`: the players whose changed records are not in NATS yet.
fn report_unsent(world: &World) {
    if let Some(net) = world.get_resource::<crate::sessions::NetLink>() {
        net.metrics.cluster_records_unsent.set(world.resource::<HandoffLink>().unsent.len() as i64);
    }
}

/// Commit, before the tick's writes are handed to the store: notes the players online here
/// whose records this tick changes (marked in the store with them, so a restart knows).
pub fn note_changed_players(world: &mut World) {
    let tick = world.resource::<TickInfo>().tick;
    let Some(tables) = world.get_resource::<PlayerTables>() else { return };
    let changes = world.resource::<Changes>();
    let sessions = world.resource::<crate::sessions::Sessions>();
    let link = world.resource::<HandoffLink>();
    // A dig writes several of a player's records: each player once.
    let ids: HashSet<PlayerId> =
        changes.writes().iter().filter(|w| tables.0.contains(&w.table)).filter_map(|w| key_player(&w.key)).collect();
    let noted: Vec<String> = ids
        .into_iter()
        .filter_map(|id| sessions.entity(id).and_then(|e| world.get::<Player>(e)))
        .map(|player| player.name.to_lowercase())
        .filter(|name| !link.changed.contains_key(name))
        .collect();
    if noted.is_empty() {
        return;
    }
    let mut link = world.resource_mut::<HandoffLink>();
    let mut marks = Vec::new();
    for name in noted {
        link.changed.insert(name.clone(), tick);
        link.changed_order.push_back((name.clone(), tick));
        if link.unsent.insert(name.clone()) {
            marks.push(name);
        }
    }
    let mut changes = world.resource_mut::<Changes>();
    for name in marks {
        changes.put(&UNSENT_TABLE.into(), &name, &true);
    }
    report_unsent(world);
}

/// The player a record's key names: the id itself, or a tuple of two or three that begins
/// with it (as [`player_records`] reads them).
fn key_player(key: &[u8]) -> Option<PlayerId> {
    // From the slice itself: a reader would allocate a buffer for each write looked at.
    let mut de = veltrix_sdk::rmp_serde::Deserializer::from_read_ref(&key[id_start(key)..]);
    PlayerId::deserialize(&mut de).ok()
}

/// Where the id begins in a key of a player's record: at the start, or after the header of a
/// MessagePack array of two or three.
fn id_start(key: &[u8]) -> usize {
    match key.first() {
        Some(0x92 | 0x93) => 1,
        _ => 0,
    }
}

/// PostTick, after the commit: the records of the players who changed `put_after` ticks ago
/// or more (and those left unsent when this shard last stopped), to the bucket.
pub fn put_changed(world: &mut World) {
    let tick = world.resource::<TickInfo>().tick;
    let mut due = Vec::new();
    {
        let mut link = world.resource_mut::<HandoffLink>();
        let put_after = link.put_after;
        while let Some((_, since)) = link.changed_order.front()
            && since + put_after <= tick
        {
            let (name, since) = link.changed_order.pop_front().expect("looked at");
            // Still changed since that tick (not put, left, or changed again since).
            if link.changed.get(&name) == Some(&since) {
                link.changed.remove(&name);
                due.push(name);
            }
        }
    }
    if due.is_empty() {
        return;
    }
    take_tables(world);
    for name in due {
        let sessions = world.resource::<crate::sessions::Sessions>();
        let Some(id) = sessions.known_id(&name) else { continue };
        let online = sessions.entity(id).is_some();
        world.resource_mut::<HandoffLink>().put(name, id, false, online);
    }
}

/// The tables whose records are a player's, as the mods left them once set up: taken once.
fn take_tables(world: &mut World) {
    if world.resource::<HandoffLink>().tables.is_none() {
        let tables: Arc<[Arc<str>]> = world.get_resource::<PlayerTables>().map_or(Arc::new([]), |t| t.0.clone().into());
        world.resource_mut::<HandoffLink>().tables = Some(tables);
    }
}

/// PreTick, after [`receive_handoffs`]: the joins whose records came go on.
pub fn admit_ready(world: &mut World) {
    for (request, held) in world.resource_mut::<HandoffLink>().take_ready() {
        let conn = request.conn;
        crate::sessions::intake::join(world, request);
        crate::sessions::intake::apply_messages(world, conn, held);
    }
    crate::sessions::movement::apply_moves(world);
}

/// Puts the records of a bundle in the store here, if newer than what this shard has.
fn take(world: &mut World, name: &str, revision: u64, bundle: Bundle) {
    let link = world.resource::<HandoffLink>();
    if link.revisions.get(name).is_some_and(|&have| have >= revision) {
        return;
    }
    if bundle.shard == link.shard {
        return;
    }
    // Its id here: the one every shard gives the name, or the one this server gave it before it
    // joined a cluster. Records from a shard where it has the other are keyed by this one.
    let here = world
        .resource::<crate::sessions::Sessions>()
        .known_id(name)
        .unwrap_or_else(|| veltrix_sdk::shared_player_id(name));
    let there = bundle.id.unwrap_or_else(|| veltrix_sdk::shared_player_id(name));
    let (there_key, here_key) = (rmp_key(&there), rmp_key(&here));
    let mut writes: Vec<Write> = bundle
        .records
        .into_iter()
        .map(|(table, key, value)| {
            let key = if there == here { key } else { rekeyed(key, &there_key, &here_key) };
            Write { table: table.into(), key, value: Some(value) }
        })
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
    world.resource_mut::<ReplacedPlayers>().0.push(here);
    tracing::info!("cluster: {name} comes from another server; its records came with it (revision {revision})");
}

/// PostTick, after the commit: the records of the players who left this tick, to the bucket.
pub fn put_departed(world: &mut World) {
    let departed = std::mem::take(&mut world.resource_mut::<HandoffLink>().departed);
    if departed.is_empty() {
        return;
    }
    take_tables(world);
    for (id, name) in departed {
        world.resource_mut::<HandoffLink>().put(name.to_lowercase(), id, true, false);
    }
}

/// Player `id`'s records as shard `shard` puts them in the bucket: [`player_records`] in a
/// [`Bundle`], saying the player is on it if `online`.
fn bundle(shard: u64, id: PlayerId, records: Vec<Record>, online: bool) -> Vec<u8> {
    let on = online.then_some(shard);
    veltrix_sdk::rmp_serde::to_vec(&Bundle { shard, records, id: Some(id), on }).expect("bundles serialise")
}

/// A player id as keys begin with it.
fn rmp_key(id: &PlayerId) -> Vec<u8> {
    veltrix_sdk::rmp_serde::to_vec(id).expect("ids serialise")
}

/// `key`, a key of a player's record (the id, or a tuple of two or three that begins with it),
/// with the id `there` made `here`; any other key as it is.
fn rekeyed(key: Vec<u8>, there: &[u8], here: &[u8]) -> Vec<u8> {
    let start = id_start(&key);
    if !key[start..].starts_with(there) {
        return key;
    }
    [&key[..start], here, &key[start + there.len()..]].concat()
}

/// Every record of player `id` in `tables`: keyed by the id, or by a tuple of two or three
/// that begins with it. Read in one transaction, so all as one commit left them.
fn player_records(store: &Store, tables: &[Arc<str>], id: PlayerId) -> Result<Vec<Record>, String> {
    let own = rmp_key(&id);
    // The id alone (its key and the next one up: the key's bytes and a zero), then MessagePack
    // arrays of two and three: their header, then the id.
    let exact: Vec<u8> = own.iter().copied().chain([0]).collect();
    let pairs: Vec<u8> = std::iter::once(0x92).chain(own.iter().copied()).collect();
    let triples: Vec<u8> = std::iter::once(0x93).chain(own.iter().copied()).collect();
    let (pairs_end, triples_end) = ([&pairs[..], &[0xff]].concat(), [&triples[..], &[0xff]].concat());
    let bounds = [(&own[..], &exact[..]), (&pairs[..], &pairs_end[..]), (&triples[..], &triples_end[..])];
    let ranges: Vec<KeyRange> =
        tables.iter().flat_map(|table| bounds.iter().map(move |&(from, to)| KeyRange { table, from, to })).collect();
    let read = store.0.read_ranges(&ranges).map_err(|e| e.to_string())?;
    Ok(ranges
        .iter()
        .zip(read)
        .flat_map(|(range, records)| records.into_iter().map(move |(key, value)| (range.table.to_string(), key, value)))
        .collect())
}

/// The handoff's task, once NATS is reached: answers the other shards asking whether this one
/// has a player (subscribed first, so no entry names this shard before it can answer for it),
/// opens its bucket, then claims, puts and answers.
pub async fn run(client: async_nats::Client, config: ClusterConfig, tasks: HandoffTasks) {
    let HandoffTasks { shard, local, jobs, done } = tasks;
    let prefix = format!("veltrix.{}.where", config.bucket);
    let mut asked = super::until_ok("answer for this server's players", || {
        let (client, subject) = (client.clone(), format!("{prefix}.{shard}"));
        async move { client.subscribe(subject).await }
    })
    .await;
    let forward = done.clone();
    tokio::spawn(async move {
        while let Some(message) = asked.next().await {
            let (Some(reply), Ok(name)) = (message.reply, std::str::from_utf8(&message.payload)) else { continue };
            let _ = forward.send(Done::Asked { name: name.to_lowercase(), reply });
        }
    });
    let js = jetstream::ContextBuilder::new().timeout(ACK_TIMEOUT).build(client.clone());
    let bucket = format!("{}-players", config.bucket);
    let store =
        super::open_bucket(&js, &bucket, "Veltrix: each player's records, handed from shard to shard", config.replicas)
            .await;
    while let Ok(job) = jobs.recv_async().await {
        let (store, local, done, client, prefix) =
            (store.clone(), local.clone(), done.clone(), client.clone(), prefix.clone());
        tokio::spawn(async move {
            let result = match job {
                Job::Put { name, id, tables, over, leaving, online } => {
                    // Read off the tick thread: a dozen reads, a few hundred allocations.
                    let read = tokio::task::spawn_blocking(move || player_records(&local, &tables, id)).await;
                    let records = match read {
                        Ok(Ok(records)) => Some(records),
                        Ok(Err(e)) => {
                            tracing::error!("cluster: the records of {name} cannot be read to put in NATS ({e})");
                            None
                        }
                        Err(e) => {
                            tracing::error!("cluster: reading the records of {name} failed ({e})");
                            None
                        }
                    };
                    let put = match records {
                        Some(records) => put(&store, shard, &name, bundle(shard, id, records, online), over).await,
                        // Put all the same, empty: the other shards wait for its put to let the
                        // name in.
                        None if leaving => put(&store, shard, &name, bundle(shard, id, Vec::new(), false), over).await,
                        None => Put::Unreachable,
                    };
                    match &put {
                        Put::Saved(_) => {}
                        Put::Unreachable => tracing::warn!(
                            "cluster: the records of {name} cannot be put in NATS now: they stay here{}",
                            if leaving { "" } else { " and are tried again" }
                        ),
                        Put::Overtaken => tracing::error!(
                            "cluster: the records of {name} were written by another server after this one's last \
                             write: this server's changes to them since then stay in its store only"
                        ),
                    }
                    Done::Put { name, put, leaving }
                }
                Job::Claim { name } => {
                    let claim = claim(&client, &store, &prefix, shard, &name).await;
                    Done::Claimed { name, claim }
                }
                Job::Answer { reply, answer } => {
                    let _ = client.publish(reply, bytes::Bytes::from_static(answer.word())).await;
                    return;
                }
            };
            let _ = done.send(result);
        });
    }
}

/// Makes `name` this shard's in the bucket for a join: its entry written again (compare-and-
/// set) with the records it held and `on` this shard, or made. An entry on another shard: that
/// shard is asked first; one that has the player refuses the join, one whose last put of it
/// flies is waited on (up to [`CONTESTED_WAIT`]), and one that does not have it, or that
/// nobody answers for (dead), or that does not answer all that time (cut off from NATS), is
/// taken over.
async fn claim(client: &async_nats::Client, store: &kv::Store, prefix: &str, shard: u64, name: &str) -> Claim {
    let deadline = tokio::time::Instant::now() + CONTESTED_WAIT;
    loop {
        let entry = match store.entry(key(name)).await {
            Ok(Some(entry)) if entry.operation == kv::Operation::Put => Some(entry),
            Ok(_) => None,
            Err(e) => return Claim::Unreachable(e.to_string()),
        };
        let over = entry.as_ref().map(|entry| entry.revision);
        let held = entry.and_then(|entry| match veltrix_sdk::rmp_serde::from_slice::<Bundle>(&entry.value) {
            Ok(bundle) => Some((entry.revision, bundle)),
            Err(e) => {
                tracing::error!(
                    "cluster: the records of {name} in NATS do not decode ({e}); it plays with what this server has"
                );
                None
            }
        });
        if let Some(other) = held.as_ref().and_then(|(_, bundle)| bundle.on).filter(|&on| on != shard) {
            let waited = tokio::time::Instant::now() >= deadline;
            match ask_where(client, prefix, other, name).await {
                Ok(Some(Where::Absent)) => {}
                Ok(Some(Where::Online)) => return Claim::Elsewhere,
                Err(e) => return Claim::Unreachable(e),
                // Leaving, or no answer yet: asked again while the join waits.
                Ok(_) if !waited => {
                    tokio::time::sleep(LEAVING_POLL).await;
                    continue;
                }
                Ok(Some(Where::Leaving)) => return Claim::Elsewhere,
                // Silent all this time: cut off from NATS (it refuses claims until it is back,
                // and then ends its session of the player, `check_sessions`), or stalled.
                Ok(None) => tracing::warn!(
                    "cluster: the server {name} was on has not answered for {:.1} s; {name} is let in here",
                    CONTESTED_WAIT.as_secs_f32()
                ),
            }
        }
        let (records, id) = held.as_ref().map_or((Vec::new(), None), |(_, bundle)| (bundle.records.clone(), bundle.id));
        let mine = Bundle { shard, records, id, on: Some(shard) };
        let bytes = bytes::Bytes::from(veltrix_sdk::rmp_serde::to_vec(&mine).expect("bundles serialise"));
        match write_over(store, name, bytes, over).await {
            Ok(revision) => return Claim::Made { revision, held },
            // Written meanwhile (another shard's join or put): read again, unless the join
            // waited long enough.
            Err((true, _)) if tokio::time::Instant::now() < deadline => {}
            Err((true, _)) => return Claim::Elsewhere,
            Err((false, e)) => return Claim::Unreachable(e),
        }
    }
}

/// Asks shard `other` whether it has `name`: its answer; none if it did not answer in time (it
/// is busy: asked again while the join waits); absent if nobody answers for it, twice
/// [`NO_RESPONDERS_AGAIN`] apart (it is dead, or cut off from NATS).
async fn ask_where(client: &async_nats::Client, prefix: &str, other: u64, name: &str) -> Result<Option<Where>, String> {
    let subject = format!("{prefix}.{other}");
    for first in [true, false] {
        let request =
            async_nats::Request::new().payload(bytes::Bytes::from(name.to_string())).timeout(Some(WHERE_TIMEOUT));
        match client.send_request(subject.clone(), request).await {
            // A word this server does not know: as if the player were there.
            Ok(answer) => return Ok(Some(Where::from_word(&answer.payload).unwrap_or(Where::Online))),
            Err(e) => match e.kind() {
                async_nats::RequestErrorKind::NoResponders if first => tokio::time::sleep(NO_RESPONDERS_AGAIN).await,
                async_nats::RequestErrorKind::NoResponders => return Ok(Some(Where::Absent)),
                async_nats::RequestErrorKind::TimedOut => return Ok(None),
                _ => return Err(e.to_string()),
            },
        }
    }
    Ok(Some(Where::Absent))
}

/// Puts `bundle` as `name`'s records over revision `over` (none: there is no entry yet). An
/// entry written since by this shard (number `shard`) itself (a put whose answer was lost, or
/// not recorded before a restart) is written over; one written by another shard is not.
async fn put(store: &kv::Store, shard: u64, name: &str, bundle: Vec<u8>, mut over: Option<u64>) -> Put {
    let bundle = bytes::Bytes::from(bundle);
    for _ in 0..2 {
        match write_over(store, name, bundle.clone(), over).await {
            Ok(revision) => return Put::Saved(revision),
            Err((false, e)) => {
                tracing::debug!("cluster: put of {name}'s records: {e}");
                return Put::Unreachable;
            }
            Err((true, _)) => {}
        }
        // Someone wrote since the revision this shard knew: itself, or another shard.
        match store.entry(key(name)).await {
            Ok(Some(entry)) if entry.operation == kv::Operation::Put => {
                let writer = veltrix_sdk::rmp_serde::from_slice::<Bundle>(&entry.value).map(|b| b.shard).ok();
                if writer != Some(shard) {
                    return Put::Overtaken;
                }
                over = Some(entry.revision);
            }
            Ok(_) => over = None,
            Err(_) => return Put::Unreachable,
        }
    }
    Put::Unreachable
}

/// Writes `value` as `name`'s entry over revision `over` (none: there is no entry yet),
/// compare-and-set: its new revision, or why not, `true` when another write came first.
async fn write_over(
    store: &kv::Store,
    name: &str,
    value: bytes::Bytes,
    over: Option<u64>,
) -> Result<u64, (bool, String)> {
    match over {
        Some(revision) => store.update(key(name), value, revision).await.map_err(|e| {
            let stale = e.kind() == kv::UpdateErrorKind::WrongLastRevision;
            (stale, e.to_string())
        }),
        None => store.create(key(name), value).await.map_err(|e| {
            let stale = e.kind() == kv::CreateErrorKind::AlreadyExists;
            (stale, e.to_string())
        }),
    }
}

/// A player's key in the bucket.
fn key(name: &str) -> String {
    format!("p.{}", key_level(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys of a player's records (its id, or a tuple of two or three that begins with it)
    /// move from one id to another; any other key stays.
    #[test]
    fn a_players_keys_move_from_one_id_to_another() {
        let (there, here) = (1u64, veltrix_sdk::shared_player_id("alice"));
        let (t, h) = (rmp_key(&there), rmp_key(&here));
        assert_eq!(rekeyed(rmp_key(&there), &t, &h), rmp_key(&here));
        let pair = veltrix_sdk::rmp_serde::to_vec(&(there, 17u32)).unwrap();
        assert_eq!(rekeyed(pair, &t, &h), veltrix_sdk::rmp_serde::to_vec(&(here, 17u32)).unwrap());
        let triple = veltrix_sdk::rmp_serde::to_vec(&(there, "Hunt", 2u32)).unwrap();
        assert_eq!(rekeyed(triple, &t, &h), veltrix_sdk::rmp_serde::to_vec(&(here, "Hunt", 2u32)).unwrap());
        let other = veltrix_sdk::rmp_serde::to_vec(&("Hunt", 2u32, there)).unwrap();
        assert_eq!(rekeyed(other.clone(), &t, &h), other);
    }
}
