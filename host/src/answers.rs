//! Idempotent requests: a client's request that repeats one already applied (same player, same
//! request id), on this connection or a later one, before or after a restart, gets the
//! original answer again and is not applied twice.
//!
//! Every request delivered in a tick is recorded with the answers it got in that tick (mods
//! answer in the tick of the request), in the same commit as the tick's other changes: an
//! answer a player saw is always found again. The last [`WINDOW`] request ids of each player
//! are kept; a client must not reuse an id within them for a new request (the client library
//! starts each connection's ids at a random point).

use std::collections::hash_map::Entry;

use ahash::{AHashMap, AHashSet};
use veltrix_sdk::{Changes, Outbox, PlayerId, Store, bytes::Bytes, prelude::*, tracing};

/// Request ids remembered per player.
pub const WINDOW: usize = 16;
/// Table of answers: (player, request) to the encoded answers, and (player, [`IDS`]) to the
/// player's remembered request ids, oldest first. The ids sit beside the answers (their keys
/// share the player's prefix), so a tick's request rewrites one page of the file, not two.
pub const ANSWERS: &str = "veltrix/answers";
/// The second part of the key of a player's request ids in [`ANSWERS`].
pub const IDS: &str = "ids";
/// Where stores written before kept each player's request ids (by player id): read when the
/// ids are not in [`ANSWERS`], moved there at the player's next request.
pub const ANSWER_IDS: &str = "veltrix/answer-ids";

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// New: apply it.
    New,
    /// Applied before: send these answers again.
    Answered(Vec<Bytes>),
    /// Already delivered this tick: its answer is coming.
    InFlight,
}

/// The remembered request ids (answers stay in the store until needed).
#[derive(Resource, Default)]
pub struct Answers {
    ids: AHashMap<PlayerId, RequestIds>,
    /// Players whose ids were read from [`ANSWER_IDS`]: that row goes when they move.
    in_old_table: AHashSet<PlayerId>,
    in_flight: AHashSet<(PlayerId, u32)>,
    tables: Option<(std::sync::Arc<str>, std::sync::Arc<str>)>,
    scratch: Scratch,
}

/// A player's last [`WINDOW`] request ids, held in place: no allocation for a player that
/// joins, and a request's check reads the map's entry only (a list of its own on the heap was
/// one more miss for every request, a tenth of a tick in a dig spike).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct RequestIds {
    /// `ids[..len]` are the ids; once the window is full, the oldest is at `oldest`.
    ids: [u32; WINDOW],
    oldest: u8,
    len: u8,
}

impl RequestIds {
    fn contains(&self, request: u32) -> bool {
        self.ids[..usize::from(self.len)].contains(&request)
    }

    /// Adds `request` as the newest; the oldest it pushed out of the window, if it was full.
    fn push(&mut self, request: u32) -> Option<u32> {
        if usize::from(self.len) < WINDOW {
            self.ids[usize::from(self.len)] = request;
            self.len += 1;
            return None;
        }
        let at = usize::from(self.oldest);
        let old = std::mem::replace(&mut self.ids[at], request);
        self.oldest = ((at + 1) % WINDOW) as u8;
        Some(old)
    }

    /// Oldest first.
    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (0..usize::from(self.len)).map(|i| self.ids[(usize::from(self.oldest) + i) % WINDOW])
    }
}

/// As the store keeps them (docs/storage.md): a list, oldest first.
impl serde::Serialize for RequestIds {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

/// What [`Answers::record`] sorts each tick, kept for the next.
#[derive(Default)]
struct Scratch {
    /// Each answer with its request and its place in the order answers were sent.
    answered: Vec<(PlayerId, u32, u32, Bytes)>,
    requests: Vec<(PlayerId, u32)>,
}

/// One request's answers as stored: a list of byte strings, the encoding of `Vec<Vec<u8>>`
/// that [`load_answers`] reads, written from the outbox's bytes without copying them.
struct AnswerList<'a>(&'a [(PlayerId, u32, u32, Bytes)]);

impl serde::Serialize for AnswerList<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for (.., bytes) in self.0 {
            seq.serialize_element(&bytes[..])?;
        }
        seq.end()
    }
}

impl Answers {
    fn tables(&mut self) -> (std::sync::Arc<str>, std::sync::Arc<str>) {
        self.tables.get_or_insert_with(|| (ANSWERS.into(), ANSWER_IDS.into())).clone()
    }

    /// Whether `request` of `player` is new; marks a new one in flight.
    pub fn check(&mut self, store: Option<&Store>, player: PlayerId, request: u32) -> Seen {
        if self.in_flight.contains(&(player, request)) {
            return Seen::InFlight;
        }
        let ids = self.ids_of(store, player);
        if ids.contains(request) {
            return Seen::Answered(load_answers(store, player, request));
        }
        self.in_flight.insert((player, request));
        Seen::New
    }

    /// PostTick, before the commit: every request delivered this tick, with the answers it got,
    /// into the store; the oldest beyond the window out. An answer to a request of an earlier
    /// tick (a claim decided with servers sharing the hunt comes a few ticks after its dig) is
    /// added to that request's answers. The lists it sorts are kept from tick to tick.
    pub fn record(&mut self, outbox: &mut Outbox, changes: &mut Changes, store: Option<&Store>) {
        if self.in_flight.is_empty() && !outbox.has_answers() {
            return;
        }
        let (answers_table, ids_table) = self.tables();
        let Scratch { answered, requests } = &mut self.scratch;
        answered.clear();
        answered.extend(
            outbox.drain_answers().zip(0..).map(|((player, request, bytes), sent)| (player, request, sent, bytes)),
        );
        let in_flight = &self.in_flight;
        let ids = &self.ids;
        answered.retain(|(player, request, _, bytes)| {
            if in_flight.contains(&(*player, *request)) {
                return true;
            }
            let remembered = match ids.get(player) {
                Some(ids) => ids.contains(*request),
                None => load_ids(store, *player).0.contains(*request),
            };
            if remembered {
                let mut list: Vec<Vec<u8>> =
                    load_answers(store, *player, *request).iter().map(|b| b.to_vec()).collect();
                list.push(bytes.to_vec());
                changes.put(&answers_table, &(*player, *request), &list);
            }
            false
        });
        // By request, each request's answers in the order they were sent (an unstable sort, by
        // that order too: a stable one takes a buffer as long as the list).
        answered.sort_unstable_by_key(|&(player, request, sent, _)| (player, request, sent));
        requests.clear();
        requests.extend(self.in_flight.drain());
        requests.sort_unstable();
        for (i, &(player, request)) in requests.iter().enumerate() {
            let first = answered.partition_point(|a| (a.0, a.1) < (player, request));
            let count = answered[first..].iter().take_while(|a| (a.0, a.1) == (player, request)).count();
            changes.put(&answers_table, &(player, request), &AnswerList(&answered[first..first + count]));
            if let Some(old) = self.ids.entry(player).or_default().push(request) {
                changes.delete(&answers_table, &(player, old));
            }
            // A player's ids once, after its last request of the tick; out of the table of
            // stores written before, if they were read from there.
            if requests.get(i + 1).is_none_or(|next| next.0 != player) {
                changes.put(&answers_table, &(player, IDS), &self.ids[&player]);
                if self.in_old_table.remove(&player) {
                    changes.delete(&ids_table, &player);
                }
            }
        }
        answered.clear();
    }

    /// Reads the request ids of a player let in, with its other records (the join reads the
    /// store anyway): its first request then costs the tick no read and no allocation.
    pub fn joined(&mut self, store: Option<&Store>, player: PlayerId) {
        self.ids_of(store, player);
    }

    /// The player's request ids, read from the store the first time.
    fn ids_of(&mut self, store: Option<&Store>, player: PlayerId) -> &mut RequestIds {
        match self.ids.entry(player) {
            Entry::Occupied(ids) => ids.into_mut(),
            Entry::Vacant(slot) => {
                let (ids, in_old_table) = load_ids(store, player);
                if in_old_table {
                    self.in_old_table.insert(player);
                }
                slot.insert(ids)
            }
        }
    }

    /// Forgets a player who left (its ids are in the store).
    pub fn forget(&mut self, player: PlayerId) {
        self.ids.remove(&player);
        self.in_old_table.remove(&player);
    }
}

/// A player's remembered request ids, read on the tick thread as it joins: one point read (two
/// in a store written before), then kept in memory until it leaves; and whether they were read
/// from [`ANSWER_IDS`].
fn load_ids(store: Option<&Store>, player: PlayerId) -> (RequestIds, bool) {
    let mut ids = RequestIds::default();
    let Some(store) = store else { return (ids, false) };
    let read = |table: &str, key: Vec<u8>| match store.0.get(table, &key) {
        Ok(found) => found,
        Err(e) => {
            tracing::error!("player {player}: cannot read its request ids: {e}");
            None
        }
    };
    let (found, in_old_table) = match read(ANSWERS, to_key(&(player, IDS))) {
        Some(found) => (Some(found), false),
        None => {
            let old = read(ANSWER_IDS, to_key(&player));
            let in_old_table = old.is_some();
            (old, in_old_table)
        }
    };
    if let Some(bytes) = found {
        match veltrix_sdk::rmp_serde::from_slice::<Vec<u32>>(&bytes) {
            // The newest `WINDOW` (the server writes no more than that).
            Ok(found) => found.into_iter().for_each(|id| {
                ids.push(id);
            }),
            // Written over at its next request; meanwhile a repeat is not recognised.
            Err(e) => tracing::warn!(
                "player {player}: its request ids do not decode ({e}): a request it repeats is applied again"
            ),
        }
    }
    (ids, in_old_table)
}

/// A key of the answers' tables, as `Changes` encodes it.
fn to_key(key: &impl serde::Serialize) -> Vec<u8> {
    veltrix_sdk::rmp_serde::to_vec(key).expect("keys serialise")
}

/// The answers to a repeated request, read on the tick thread: one point read per repeat, and
/// repeats count against the connection's rate limit.
fn load_answers(store: Option<&Store>, player: PlayerId, request: u32) -> Vec<Bytes> {
    let Some(store) = store else { return Vec::new() };
    match store.0.get(ANSWERS, &to_key(&(player, request))) {
        Ok(Some(bytes)) => match veltrix_sdk::rmp_serde::from_slice::<Vec<Vec<u8>>>(&bytes) {
            Ok(answers) => answers.into_iter().map(Bytes::from).collect(),
            Err(e) => {
                tracing::warn!(
                    "player {player}: the answer to request {request} does not decode ({e}): not sent again"
                );
                Vec::new()
            }
        },
        Ok(None) => Vec::new(),
        Err(e) => {
            tracing::error!("player {player}: cannot read the answer to request {request}: {e}");
            Vec::new()
        }
    }
}

/// PostTick, before the commit.
pub fn record_answers(
    mut answers: ResMut<Answers>,
    mut outbox: ResMut<Outbox>,
    mut changes: ResMut<Changes>,
    store: Option<Res<Store>>,
) {
    answers.record(&mut outbox, &mut changes, store.as_deref());
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use veltrix_sdk::{Audience, MemoryStore, commit_tick};

    use super::*;

    fn new_world() -> World {
        let mut world = World::new();
        world.insert_resource(Store(Arc::new(MemoryStore::default())));
        world.init_resource::<Changes>();
        world.init_resource::<veltrix_sdk::StoreHealth>();
        world.init_resource::<Outbox>();
        world.init_resource::<Answers>();
        world
    }

    fn check(world: &mut World, player: PlayerId, request: u32) -> Seen {
        let store = world.resource::<Store>().clone();
        world.resource_mut::<Answers>().check(Some(&store), player, request)
    }

    fn end_tick(world: &mut World) {
        let store = world.resource::<Store>().clone();
        world.resource_scope(|world, mut answers: Mut<Answers>| {
            world.resource_scope(|world, mut outbox: Mut<Outbox>| {
                answers.record(&mut outbox, &mut world.resource_mut::<Changes>(), Some(&store));
            })
        });
        commit_tick(world);
        world.resource_mut::<Outbox>().drain().for_each(drop);
    }

    #[test]
    fn a_repeat_gets_the_original_answer_even_after_a_restart() {
        let mut world = new_world();
        assert_eq!(check(&mut world, 7, 41), Seen::New);
        assert_eq!(check(&mut world, 7, 41), Seen::InFlight, "a repeat in the same tick waits for the answer");
        world.resource_mut::<Outbox>().answer_encoded(7, Some(41), Bytes::from_static(b"dug"));
        world.resource_mut::<Outbox>().send_encoded(Audience::All, Bytes::from_static(b"news"));
        assert_eq!(check(&mut world, 8, 41), Seen::New, "request ids are per player");
        end_tick(&mut world);
        assert_eq!(check(&mut world, 7, 41), Seen::Answered(vec![Bytes::from_static(b"dug")]));
        assert_eq!(check(&mut world, 8, 41), Seen::Answered(vec![]), "answered with nothing, still not applied again");

        // A restart: nothing in memory, the store remembers.
        let store = world.resource::<Store>().clone();
        let mut restarted = new_world();
        restarted.insert_resource(store);
        assert_eq!(check(&mut restarted, 7, 41), Seen::Answered(vec![Bytes::from_static(b"dug")]));
        assert_eq!(check(&mut restarted, 7, 42), Seen::New);
    }

    /// An answer that comes ticks after its request (a claim decided with other servers) is
    /// added to the request's answers: a repeat gets both, after a restart too.
    #[test]
    fn an_answer_in_a_later_tick_is_remembered_with_its_request() {
        let mut world = new_world();
        assert_eq!(check(&mut world, 7, 41), Seen::New);
        world.resource_mut::<Outbox>().answer_encoded(7, Some(41), Bytes::from_static(b"dug"));
        end_tick(&mut world);
        end_tick(&mut world);
        world.resource_mut::<Outbox>().answer_encoded(7, Some(41), Bytes::from_static(b"granted"));
        world.resource_mut::<Outbox>().answer_encoded(7, Some(99), Bytes::from_static(b"never asked"));
        end_tick(&mut world);
        let both = vec![Bytes::from_static(b"dug"), Bytes::from_static(b"granted")];
        assert_eq!(check(&mut world, 7, 41), Seen::Answered(both.clone()));
        let store = world.resource::<Store>().clone();
        let mut restarted = new_world();
        restarted.insert_resource(store);
        assert_eq!(check(&mut restarted, 7, 41), Seen::Answered(both));
        assert_eq!(check(&mut restarted, 7, 99), Seen::New, "an answer to a request never seen is not kept");
    }

    /// A request answered several times in its tick, among other players' answers, is answered
    /// again with all of them in the order they were sent.
    #[test]
    fn a_requests_answers_of_one_tick_are_kept_in_the_order_sent() {
        let mut world = new_world();
        for player in [9, 3, 7] {
            assert_eq!(check(&mut world, player, 41), Seen::New);
        }
        let sent = [(9, "a"), (7, "b"), (3, "c"), (7, "d"), (9, "e"), (7, "f")];
        for (player, answer) in sent {
            world.resource_mut::<Outbox>().answer_encoded(player, Some(41), Bytes::from_static(answer.as_bytes()));
        }
        end_tick(&mut world);
        let answers =
            |list: &[&'static str]| Seen::Answered(list.iter().map(|a| Bytes::from_static(a.as_bytes())).collect());
        assert_eq!(check(&mut world, 7, 41), answers(&["b", "d", "f"]));
        assert_eq!(check(&mut world, 9, 41), answers(&["a", "e"]));
        assert_eq!(check(&mut world, 3, 41), answers(&["c"]));
    }

    #[test]
    fn only_the_last_window_of_requests_is_kept() {
        let mut world = new_world();
        for request in 0..(WINDOW as u32 + 3) {
            assert_eq!(check(&mut world, 1, request), Seen::New);
            world.resource_mut::<Outbox>().answer_encoded(1, Some(request), Bytes::from(request.to_string()));
            end_tick(&mut world);
        }
        let store = world.resource::<Store>().clone();
        assert_eq!(store.0.read_all(ANSWERS).unwrap().len(), WINDOW + 1, "the window's answers, and their ids");
        let ids = store.0.get(ANSWERS, &to_key(&(1u64, IDS))).unwrap().expect("the ids beside the answers");
        assert_eq!(
            veltrix_sdk::rmp_serde::from_slice::<Vec<u32>>(&ids).unwrap(),
            (3..WINDOW as u32 + 3).collect::<Vec<_>>(),
            "the window's ids, oldest first, after it turned over"
        );
        let mut restarted = new_world();
        restarted.insert_resource(store);
        assert_eq!(check(&mut restarted, 1, 2), Seen::New, "forgotten beyond the window");
        let last = WINDOW as u32 + 2;
        assert_eq!(check(&mut restarted, 1, last), Seen::Answered(vec![Bytes::from(last.to_string())]));
    }

    /// A store written before kept the ids in a table of their own: they are read from there,
    /// and move beside the answers with the player's next request.
    #[test]
    fn ids_kept_in_the_table_of_stores_written_before_are_read_and_moved() {
        use veltrix_sdk::Storage as _;

        let store = Arc::new(MemoryStore::default());
        let old =
            veltrix_sdk::Write { table: ANSWER_IDS.into(), key: to_key(&7u64), value: Some(to_key(&vec![40u32, 41])) };
        let answer = veltrix_sdk::Write {
            table: ANSWERS.into(),
            key: to_key(&(7u64, 41u32)),
            value: Some(to_key(&vec![b"dug".to_vec()])),
        };
        store.commit(&[old, answer]).unwrap();
        let mut world = new_world();
        world.insert_resource(Store(store.clone() as _));
        assert_eq!(check(&mut world, 7, 41), Seen::Answered(vec![Bytes::from_static(b"dug")]));
        assert_eq!(check(&mut world, 7, 42), Seen::New);
        end_tick(&mut world);
        assert!(store.read_all(ANSWER_IDS).unwrap().is_empty(), "moved out of the old table");
        let ids = store.get(ANSWERS, &to_key(&(7u64, IDS))).unwrap().expect("the ids beside the answers");
        assert_eq!(veltrix_sdk::rmp_serde::from_slice::<Vec<u32>>(&ids).unwrap(), [40, 41, 42]);
        let mut restarted = new_world();
        restarted.insert_resource(Store(store as _));
        assert_eq!(check(&mut restarted, 7, 40), Seen::Answered(vec![]), "still remembered after the move");
    }
}
