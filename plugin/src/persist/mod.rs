//! The hunt in the store: what it writes each tick (through the host's per-tick commit, saved
//! before announced) and what it reads back after a restart.
//!
//! | table | key | value |
//! |---|---|---|
//! | `Veltrix:TreasureHunt/players` | player id | inventory slots, pending rewards, team, dig effort by vault id, active effects (ticks left), pity counters |
//! | `Veltrix:TreasureHunt/claims` | (hunt id, vault id) | first finder, every claimant |
//! | `Veltrix:TreasureHunt/hunts` | hunt id | seed, next event sequence number, its life (phase, run, start, end, archived runs), clues released to everyone this run |
//! | `Veltrix:TreasureHunt/clues` | (hunt id, run, player id) | the proximity clues released to the player |
//! | `Veltrix:TreasureHunt/events` | (hunt id, sequence) | tick and what happened (a vault opened, loot granted); the last `RetainedEvents` |
//! | `Veltrix:TreasureHunt/scores` | (`<hunt id>#<run>`, player id) | the player's leaderboard entry: name, vaults, score, last find (kept after the hunt) |
//! | `Veltrix:TreasureHunt/boards` | hunt id | the final board of an ended hunt: its top `LeaderboardSize`, how many were ranked |
//!
//! Keys and values are MessagePack (values as maps with field names, so fields can be added).
//! A player's record is written in every tick that changed it; a returning player's record is
//! read when it joins, not at start, so start time does not grow with the players ever seen.
//!
//! Effects are stored with the ticks they had left when the record was written, and restored
//! relative to the tick the player joins in after a restart. At shutdown the records of the
//! players (online or away) with active effects are written once more, so a restart keeps the
//! time left when the server stopped; after a crash, the time left at the last write counts.

use std::{collections::BTreeMap, sync::Arc};

use serde::{Deserialize, Serialize};
use treasure_hunt_ecs::{
    assets::ClaimRule,
    clues::{ClueOutcome, ClueReleases, Released},
    effects::{ActiveEffect, ActiveEffects},
    hunt::{
        ActiveHunt, AssetsInForce, ClaimOutcome, Claimant, Digging, EFFORT_PER_DIG, LootGranted, PityCounters, Stash,
        Stashed, Team, Vault, VaultClaims, run_key,
    },
    inventory::{Inventory, PendingRewards},
    leaderboard::{BoardEntry, Entry, Leaderboard},
    lifecycle::{HuntRun, HuntRuns, Phase},
    loot::ItemStack,
};
use veltrix_sdk::{Changes, Store, StoreError, prelude::*, tracing};

pub const PLAYERS: &str = "Veltrix:TreasureHunt/players";
pub const CLAIMS: &str = "Veltrix:TreasureHunt/claims";
pub const HUNTS: &str = "Veltrix:TreasureHunt/hunts";
pub const EVENTS: &str = "Veltrix:TreasureHunt/events";
pub const CLUES: &str = "Veltrix:TreasureHunt/clues";
pub const SCORES: &str = "Veltrix:TreasureHunt/scores";
pub const BOARDS: &str = "Veltrix:TreasureHunt/boards";

/// The table names, made once.
#[derive(Resource, Clone)]
pub struct Tables {
    players: Arc<str>,
    claims: Arc<str>,
    hunts: Arc<str>,
    events: Arc<str>,
    clues: Arc<str>,
    scores: Arc<str>,
    pub(crate) boards: Arc<str>,
}

impl Default for Tables {
    fn default() -> Self {
        Self {
            players: PLAYERS.into(),
            claims: CLAIMS.into(),
            hunts: HUNTS.into(),
            events: EVENTS.into(),
            clues: CLUES.into(),
            scores: SCORES.into(),
            boards: BOARDS.into(),
        }
    }
}

/// A player's hunt state as stored. Fields added later have defaults, so older records load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlayerRecord {
    pub slots: Vec<Option<ItemStack>>,
    pub pending: Vec<ItemStack>,
    pub team: Option<String>,
    /// Effort in whole digs, by vault id: what records held before effort was counted in
    /// hundredths. Read, no longer written (empty).
    pub effort: BTreeMap<String, u32>,
    /// The hunt run the effort is for (hunt id, run): effort of another run is dropped.
    #[serde(default)]
    pub effort_run: Option<(String, u32)>,
    /// Effort so far in hundredths of a dig, by vault id.
    #[serde(default)]
    pub effort_hundredths: BTreeMap<String, u32>,
    /// Active effects, with the ticks they had left when written.
    #[serde(default)]
    pub effects: Vec<StoredEffect>,
    /// Claims in a row without a rare item, by loot table (for pity).
    #[serde(default)]
    pub pity: BTreeMap<String, u32>,
}

/// An active effect as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEffect {
    pub id: String,
    pub stacks: u32,
    /// Ticks left when the record was written.
    pub ticks_left: u64,
}

impl PlayerRecord {
    /// Effort by vault id in hundredths of a dig, from either field.
    fn effort_in_hundredths(&self) -> BTreeMap<String, u32> {
        let mut effort: BTreeMap<String, u32> =
            self.effort.iter().map(|(id, digs)| (id.clone(), digs.saturating_mul(EFFORT_PER_DIG))).collect();
        effort.extend(self.effort_hundredths.iter().map(|(id, e)| (id.clone(), *e)));
        effort
    }
}

/// A [`PlayerRecord`] to store, borrowing the player's state instead of copying it (a player's
/// record is written in every tick it digs): the one way a player's record is written, every
/// tick and at shutdown.
#[derive(Serialize)]
#[serde(bound = "F: Fn(Entity) -> Option<&'a str>")]
struct PlayerRecordRef<'a, F> {
    slots: &'a [Option<ItemStack>],
    pending: &'a std::collections::VecDeque<ItemStack>,
    team: Option<&'a str>,
    effort: BTreeMap<String, u32>,
    effort_run: Option<(&'a str, u32)>,
    effort_hundredths: EffortById<'a, F>,
    effects: EffectsLeft<'a>,
    pity: &'a BTreeMap<String, u32>,
}

impl<'a, F: Fn(Entity) -> Option<&'a str>> PlayerRecordRef<'a, F> {
    /// The record of a player's state in tick `now`, its effort being for the hunt run `run`
    /// (hunt id, run); `vault_id` names a vault entity (effort on a vault no longer in the hunt
    /// is left out).
    #[allow(clippy::too_many_arguments)]
    fn new(
        inventory: &'a Inventory,
        pending: &'a PendingRewards,
        digging: &'a Digging,
        team: Option<&'a Team>,
        effects: &'a ActiveEffects,
        pity: &'a PityCounters,
        now: u64,
        run: Option<(&'a str, u32)>,
        vault_id: F,
    ) -> Self {
        PlayerRecordRef {
            slots: inventory.slots(),
            pending: &pending.0,
            team: team.map(|t| t.0.as_str()),
            effort: BTreeMap::new(),
            effort_run: run,
            effort_hundredths: EffortById { effort: &digging.effort, id: vault_id },
            effects: EffectsLeft { effects, now },
            pity: &pity.0,
        }
    }
}

/// Effort by vault id, as [`PlayerRecord::effort_hundredths`] holds it (sorted by id), from
/// effort by vault entity; `id` names a vault entity (effort on a vault no longer in the hunt is
/// left out).
struct EffortById<'a, F> {
    effort: &'a BTreeMap<Entity, u32>,
    id: F,
}

impl<'a, F: Fn(Entity) -> Option<&'a str>> Serialize for EffortById<'a, F> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let named = || self.effort.iter().filter_map(|(vault, effort)| (self.id)(*vault).map(|id| (id, *effort)));
        let count = named().count();
        let mut map = serializer.serialize_map(Some(count))?;
        if count <= 1 {
            for (id, effort) in named() {
                map.serialize_entry(id, &effort)?;
            }
        } else {
            // Effort on several vaults at once (rare): sorted by id, as a map by id is.
            let sorted: BTreeMap<&str, u32> = named().collect();
            for (id, effort) in sorted {
                map.serialize_entry(id, &effort)?;
            }
        }
        map.end()
    }
}

/// The effects still active in tick `now`, as [`StoredEffect`]s: with the ticks they have left.
struct EffectsLeft<'a> {
    effects: &'a ActiveEffects,
    now: u64,
}

impl Serialize for EffectsLeft<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        #[derive(Serialize)]
        struct StoredEffectRef<'a> {
            id: &'a str,
            stacks: u32,
            ticks_left: u64,
        }
        let active = || self.effects.0.iter().filter(|e| e.expires_at > self.now);
        let mut seq = serializer.serialize_seq(Some(active().count()))?;
        for e in active() {
            seq.serialize_element(&StoredEffectRef {
                id: &e.id,
                stacks: e.stacks,
                ticks_left: e.expires_at - self.now,
            })?;
        }
        seq.end()
    }
}

/// A vault's claims as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimRecord {
    pub first: Option<(PlayerId, String)>,
    pub claimed_by: Vec<Claimant>,
}

/// A hunt's record: its seed, the next number of its event log, its life, and the clues its
/// current run released to everyone (id, when in ms, area radius last sent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HuntRecord {
    pub seed: u64,
    pub next_seq: u64,
    #[serde(default)]
    pub state: Option<HuntRun>,
    #[serde(default)]
    pub released: Vec<(String, i64, Option<u32>)>,
}

/// A player's leaderboard entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoreRecord {
    pub name: String,
    pub vaults: u32,
    pub score: u64,
    /// On the hunt's clock, which goes on across restarts.
    pub last_find_tick: u64,
}

/// A [`ScoreRecord`] to store, its name borrowed: the same encoding.
#[derive(Serialize)]
struct ScoreRecordRef<'a> {
    name: &'a str,
    vaults: u32,
    score: u64,
    last_find_tick: u64,
}

/// An ended hunt's final board as stored: its top `LeaderboardSize`, and how many players were
/// ranked (every entry stays in the scores table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalBoard {
    pub top: Vec<BoardEntry>,
    pub players: u32,
}

/// One entry of a hunt's event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub tick: u64,
    pub event: HuntEvent,
}

/// What the event log records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HuntEvent {
    /// A FirstFinder vault was claimed, closing it to everyone (every player hears of it; its
    /// tile is not said).
    VaultOpened { vault: String, by: PlayerId, name: String },
    /// A claim's loot: `items` went into the inventory, `pending` into pending rewards (only
    /// the claimant hears of it).
    LootGranted { player: PlayerId, vault: String, items: Vec<ItemStack>, pending: Vec<ItemStack> },
}

/// The running hunt's event log: the next sequence number (numbers only grow), and how many
/// of the latest events are kept for players catching up.
#[derive(Resource, Debug, Clone, PartialEq, Eq)]
pub struct HuntLog {
    pub hunt: String,
    pub next_seq: u64,
    pub retained: u64,
}

/// After the hunt started: its claims and log position from the store.
pub fn restore_hunt(world: &mut World, store: &Store) -> Result<(), StoreError> {
    let Some(active) = world.get_resource::<ActiveHunt>().cloned() else { return Ok(()) };
    let mut by_id: BTreeMap<String, Entity> = BTreeMap::new();
    let mut vaults = world.query::<(Entity, &Vault)>();
    for (entity, vault) in vaults.iter(world) {
        by_id.insert(vault.0.id.clone(), entity);
    }
    let (mut restored, mut unknown) = (0, 0);
    for ((hunt, vault), record) in store.load::<(String, String), ClaimRecord>(CLAIMS)? {
        if hunt != active.id {
            continue;
        }
        match by_id.get(&vault) {
            Some(entity) => {
                let claims = VaultClaims { first: record.first, claimed_by: record.claimed_by.into_iter().collect() };
                world.entity_mut(*entity).insert(claims);
                restored += 1;
            }
            None => unknown += 1,
        }
    }
    if let Some(record) = store.load::<String, HuntRecord>(HUNTS)?.into_iter().find(|(id, _)| *id == active.id) {
        let mut releases = world.resource_mut::<ClueReleases>();
        for (clue, at_ms, radius_sent) in record.1.released {
            releases.to_all.insert(clue, Released { at_ms, radius_sent });
        }
    }
    let mut releases = ClueReleases::default();
    for ((hunt, run, player), clues) in store.load::<(String, u32, PlayerId), Vec<String>>(CLUES)? {
        if hunt == active.id && run == active.run {
            releases.to_player.insert(player, clues.into_iter().collect());
        }
    }
    world.resource_mut::<ClueReleases>().to_player = releases.to_player;
    if restored + unknown > 0 {
        tracing::info!(
            "hunt {}: {restored} claimed vault(s) restored from the store{}",
            active.id,
            if unknown > 0 { format!(" ({unknown} vault(s) no longer in the hunt ignored)") } else { String::new() }
        );
    }
    Ok(())
}

/// The leaderboard of run `run` of hunt `hunt` from the store, with the entries saved for it
/// (none for a new run). Called at start for the running hunt, after [`restore_hunt`], or for
/// the hunt that ended last ([`last_ended_run`]: its board stays until another starts).
pub fn restore_board(world: &mut World, store: &Store, hunt: &str, run: u32) -> Result<(), StoreError> {
    let key = run_key(hunt, run);
    let records: Vec<((String, PlayerId), ScoreRecord)> =
        store.load_range(SCORES, &(key.clone(), 0), &(key.clone(), PlayerId::MAX))?;
    let mut board = world.remove_resource::<Leaderboard>().unwrap_or_default();
    board.start(key);
    let restored = records.len();
    for ((_, player), r) in records {
        board.restore(
            player,
            Entry { name: r.name, vaults: r.vaults, score: r.score, last_find_tick: r.last_find_tick },
        );
    }
    world.insert_resource(board);
    if restored > 0 {
        tracing::info!(
            "hunt {hunt}: {restored} leaderboard entr{} restored from the store",
            if restored == 1 { "y" } else { "ies" }
        );
    }
    Ok(())
}

/// Tick, after the leaderboard: writes the entries that changed this tick.
pub fn save_scores(tables: Res<Tables>, mut board: ResMut<Leaderboard>, mut changes: ResMut<Changes>) {
    if !board.has_changes() {
        return;
    }
    let changed = board.take_changed();
    // Without a hunt, there is nothing to save the changes to: they are forgotten.
    let Some(hunt) = board.hunt() else { return };
    for player in changed {
        let Some(e) = board.entry(player) else { continue };
        let record =
            ScoreRecordRef { name: &e.name, vaults: e.vaults, score: e.score, last_find_tick: e.last_find_tick };
        changes.put(&tables.scores, &(hunt, player), &record);
    }
}

/// Tick, before the hunt's input: players joining who are not parked in memory get their
/// stored state parked, for `equip_players` to give back.
pub fn restore_players(
    store: Option<Res<Store>>,
    mut stash: ResMut<Stash>,
    joining: Query<&Player, Without<Inventory>>,
    vaults: Query<(Entity, &Vault)>,
    rules: Res<treasure_hunt_ecs::hunt::HuntRules>,
    hunt: Option<Res<ActiveHunt>>,
    tick: Res<TickInfo>,
) {
    let Some(store) = store else { return };
    for player in &joining {
        if stash.0.contains_key(&player.id) {
            continue;
        }
        // The join check read it in this tick's PreTick: it reads.
        let record = match stored_player(&store, player.id) {
            Ok(Some(record)) => record,
            Ok(None) => continue,
            Err(e) => {
                tracing::error!("player {} ({}): {e}", player.name, player.id);
                continue;
            }
        };
        let same_run = hunt.as_ref().is_some_and(|h| record.effort_run.as_ref() == Some(&(h.id.clone(), h.run)))
            // Records written before runs were numbered: the hunt's first run.
            || (record.effort_run.is_none() && hunt.as_ref().is_some_and(|h| h.run == 1));
        let effort = record
            .effort_in_hundredths()
            .iter()
            .filter(|_| same_run)
            .filter_map(|(id, effort)| vaults.iter().find(|(_, v)| v.0.id == *id).map(|(e, _)| (e, *effort)))
            .collect();
        // The clock counts on from this tick: the time left when the record was written.
        let mut effects: Vec<ActiveEffect> = record
            .effects
            .iter()
            .map(|e| ActiveEffect { id: e.id.clone(), stacks: e.stacks, expires_at: tick.tick + e.ticks_left.max(1) })
            .collect();
        effects.sort_by(|a, b| a.id.cmp(&b.id));
        stash.0.insert(
            player.id,
            Stashed {
                inventory: Inventory::from_slots(record.slots, rules.inventory_slots),
                pending: PendingRewards(record.pending.into()),
                digging: Digging { effort, last_dig_tick: None },
                team: record.team.map(Team),
                effects: ActiveEffects(effects),
                pity: PityCounters(record.pity),
            },
        );
    }
}

/// A player's stored record; `Err` when it cannot be read or does not decode.
fn stored_player(store: &Store, player: PlayerId) -> Result<Option<PlayerRecord>, String> {
    let bytes = store.0.get(PLAYERS, &rmp_key(&player)).map_err(|e| format!("cannot read its record: {e}"))?;
    bytes
        .map(|bytes| veltrix_sdk::rmp_serde::from_slice::<PlayerRecord>(&bytes))
        .transpose()
        .map_err(|e| format!("its record in table {PLAYERS} does not decode ({e})"))
}

/// The join check: a player whose stored record cannot be read stays out, its record kept (let
/// in, it would start empty and be saved over it). One still parked in memory this run is let
/// in: what it has is there, and saved over the damaged record.
pub fn player_record_reads(world: &World, player: &Player) -> Result<(), String> {
    let Some(store) = world.get_resource::<Store>() else { return Ok(()) };
    if world.get_resource::<Stash>().is_some_and(|stash| stash.0.contains_key(&player.id)) {
        return Ok(());
    }
    stored_player(store, player.id).map(drop)
}

fn rmp_key<K: Serialize + ?Sized>(key: &K) -> Vec<u8> {
    veltrix_sdk::rmp_serde::to_vec(key).expect("keys serialise")
}

/// A player's hunt state, as `save_players` reads it.
type PlayerState<'a> =
    (&'a Player, &'a Inventory, &'a PendingRewards, &'a Digging, Option<&'a Team>, &'a ActiveEffects, &'a PityCounters);

/// Tick, after the hunt: writes the players whose hunt state changed this tick.
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
pub fn save_players(
    tables: Res<Tables>,
    tick: Res<TickInfo>,
    changed: Query<
        PlayerState,
        Or<(
            Changed<Inventory>,
            Changed<PendingRewards>,
            Changed<Digging>,
            Changed<Team>,
            Changed<ActiveEffects>,
            Changed<PityCounters>,
        )>,
    >,
    all: Query<PlayerState>,
    mut left_teams: RemovedComponents<Team>,
    vaults: Query<&Vault>,
    hunt: Option<Res<ActiveHunt>>,
    mut changes: ResMut<Changes>,
) {
    let run = hunt.as_ref().map(|h| (h.id.as_str(), h.run));
    let mut save = |(player, inventory, pending, digging, team, effects, pity): PlayerState| {
        let vault_id = |vault| vaults.get(vault).ok().map(|v| v.0.id.as_str());
        let record = PlayerRecordRef::new(inventory, pending, digging, team, effects, pity, tick.tick, run, vault_id);
        changes.put(&tables.players, &player.id, &record);
    };
    for row in &changed {
        save(row);
    }
    for entity in left_teams.read() {
        if let Ok(row) = all.get(entity)
            && !changed.contains(entity)
        {
            save(row);
        }
    }
}

/// At shutdown: writes the records of the players with active effects, online or away, with
/// the ticks they have left now (a restart counts on from there). Written straight to the
/// store: the host committed the last tick before the mods' shutdown.
pub fn save_effect_clocks(world: &mut World) {
    let Some(store) = world.get_resource::<Store>().cloned() else { return };
    let now = world.resource::<TickInfo>().tick;
    let mut vault_ids: BTreeMap<Entity, String> = BTreeMap::new();
    for (entity, vault) in world.query::<(Entity, &Vault)>().iter(world) {
        vault_ids.insert(entity, vault.0.id.clone());
    }
    let vault_id = |e: Entity| vault_ids.get(&e).map(String::as_str);
    // Effort, online or stashed, is always for the running hunt's run: a new run clears it.
    let mut online = world.query::<PlayerState>();
    let hunt = world.get_resource::<ActiveHunt>();
    let run = hunt.map(|h| (h.id.as_str(), h.run));
    let mut changes = Changes::default();
    let table: Arc<str> = PLAYERS.into();
    for (player, inventory, pending, digging, team, effects, pity) in online.iter(world) {
        if !effects.0.is_empty() {
            let record = PlayerRecordRef::new(inventory, pending, digging, team, effects, pity, now, run, vault_id);
            changes.put(&table, &player.id, &record);
        }
    }
    for (id, s) in &world.resource::<Stash>().0 {
        if s.effects.0.iter().any(|e| e.expires_at > now) {
            let record = PlayerRecordRef::new(
                &s.inventory,
                &s.pending,
                &s.digging,
                s.team.as_ref(),
                &s.effects,
                &s.pity,
                now,
                run,
                vault_id,
            );
            changes.put(&table, id, &record);
        }
    }
    if changes.is_empty() {
        return;
    }
    match store.0.commit(changes.writes()) {
        Ok(()) => tracing::info!("saved the effects' time left of {} player(s)", changes.len()),
        Err(e) => tracing::error!("could not save the effects' time left: {e}"),
    }
}

/// Tick, after the hunt: writes the vaults claimed this tick.
pub fn save_claims(
    tables: Res<Tables>,
    claimed: Query<(&Vault, &VaultClaims), Changed<VaultClaims>>,
    hunt: Option<Res<ActiveHunt>>,
    mut changes: ResMut<Changes>,
) {
    let Some(hunt) = hunt else { return };
    for (vault, claims) in &claimed {
        if claims.claimed_by.is_empty() {
            // A new run's vault: the last run's claims go.
            changes.delete(&tables.claims, &(&hunt.id, &vault.0.id));
            continue;
        }
        let record =
            ClaimRecord { first: claims.first.clone(), claimed_by: claims.claimed_by.iter().cloned().collect() };
        changes.put(&tables.claims, &(&hunt.id, &vault.0.id), &record);
    }
}

/// An event of this tick with its number in the hunt's log, for the players who should hear
/// of it (written by [`log_events`], sent by the publisher).
#[derive(Message, Debug, Clone, PartialEq)]
pub struct Logged {
    pub seq: u64,
    pub event: HuntEvent,
    /// The request it answers, for the player it concerns.
    pub request: Option<u32>,
}

/// Tick, after the hunt: numbers this tick's events (FirstFinder vaults claimed, then loot
/// granted) in the hunt's log and writes them; the oldest beyond the retention window go.
#[allow(clippy::too_many_arguments)]
pub fn log_events(
    tables: Res<Tables>,
    tick: Res<TickInfo>,
    mut claims: MessageReader<ClaimOutcome>,
    mut granted: MessageReader<LootGranted>,
    log: Option<ResMut<HuntLog>>,
    hunt: Option<Res<ActiveHunt>>,
    mut changes: ResMut<Changes>,
    mut logged: MessageWriter<Logged>,
    mut positions: ResMut<LogPositions>,
) {
    let (Some(hunt), Some(mut log)) = (hunt, log) else { return };
    let opened = claims.read().filter_map(|c| match c {
        // Only FirstFinder vaults: one still open to others (PerPlayer, Team, the consolation of
        // FirstFinderThenPerPlayer) is not named to everyone.
        ClaimOutcome::Claimed(claim) if claim.first && claim.vault.claim == ClaimRule::FirstFinder => Some((
            HuntEvent::VaultOpened { vault: claim.vault.id.clone(), by: claim.player, name: claim.player_name.clone() },
            None,
        )),
        _ => None,
    });
    let loot = granted.read().map(|g| {
        let event = HuntEvent::LootGranted {
            player: g.player,
            vault: g.vault.clone(),
            items: g.items.clone(),
            pending: g.pending.clone(),
        };
        (event, g.request)
    });
    let before = log.next_seq;
    for (event, request) in opened.chain(loot) {
        let seq = log.next_seq;
        changes.put(&tables.events, &(&hunt.id, seq), &EventRecord { tick: tick.tick, event: event.clone() });
        if seq > log.retained {
            changes.delete(&tables.events, &(&hunt.id, seq - log.retained));
        }
        logged.write(Logged { seq, event, request });
        log.next_seq += 1;
    }
    if log.next_seq != before {
        positions.0.insert(hunt.id.clone(), log.next_seq);
    }
}

/// The next event number of each hunt's log (the running hunt's is also in [`HuntLog`]).
#[derive(Resource, Debug, Clone, Default, PartialEq, Eq)]
pub struct LogPositions(pub BTreeMap<String, u64>);

/// At start: every hunt's life and log position from the store.
pub fn restore_runs(world: &mut World, store: &Store) -> Result<(), StoreError> {
    let records = store.load::<String, HuntRecord>(HUNTS)?;
    let mut runs = world.resource_mut::<HuntRuns>();
    for (id, record) in &records {
        if let Some(state) = &record.state {
            runs.0.insert(id.clone(), state.clone());
        }
    }
    let positions = records.into_iter().map(|(id, r)| (id, r.next_seq)).collect();
    world.insert_resource(LogPositions(positions));
    Ok(())
}

/// Points the event log at hunt `id`, at its stored position.
pub fn point_log_at(world: &mut World, id: &str) {
    let next_seq = world.resource::<LogPositions>().0.get(id).copied().unwrap_or(1);
    let mut log = world.resource_mut::<HuntLog>();
    log.hunt = id.to_string();
    log.next_seq = next_seq;
}

/// The id of the hunt that was running when the server stopped, if any.
pub fn active_run(world: &World) -> Option<String> {
    world.resource::<HuntRuns>().0.iter().find(|(_, r)| r.phase == Phase::Active).map(|(id, _)| id.clone())
}

/// The hunt whose run ended last, and that run's number, if any ended.
pub fn last_ended_run(world: &World) -> Option<(String, u32)> {
    let runs = &world.resource::<HuntRuns>().0;
    runs.iter().filter(|(_, r)| r.ended_ms.is_some()).max_by_key(|(_, r)| r.ended_ms).map(|(id, r)| (id.clone(), r.run))
}

/// Tick, after the events are logged: points the log at the running hunt when it changed, and
/// writes the hunts' records when their life, released clues or log position changed.
#[allow(clippy::too_many_arguments)]
pub fn save_hunts(
    tables: Res<Tables>,
    hunt: Option<Res<ActiveHunt>>,
    assets: Res<AssetsInForce>,
    runs: Res<HuntRuns>,
    releases: Res<ClueReleases>,
    mut positions: ResMut<LogPositions>,
    mut log: ResMut<HuntLog>,
    mut clue_outcomes: MessageReader<ClueOutcome>,
    mut changes: ResMut<Changes>,
) {
    if let Some(hunt) = &hunt
        && log.hunt != hunt.id
    {
        log.hunt = hunt.id.clone();
        log.next_seq = positions.0.get(&hunt.id).copied().unwrap_or(1);
    }
    for outcome in clue_outcomes.read() {
        if let (ClueOutcome::ReleasedTo { player, .. }, Some(hunt)) = (outcome, &hunt) {
            let clues: Vec<&String> = releases.to_player.get(player).into_iter().flatten().collect();
            changes.put(&tables.clues, &(&hunt.id, hunt.run, player), &clues);
        }
    }
    if !(runs.is_changed() || releases.is_changed() || log.is_changed()) {
        return;
    }
    positions.0.insert(log.hunt.clone(), log.next_seq);
    for (id, placed) in &assets.0.hunts {
        let state = runs.0.get(id);
        let next_seq = positions.0.get(id).copied().unwrap_or(1);
        if state.is_none() && next_seq == 1 {
            continue;
        }
        let released = if hunt.as_ref().is_some_and(|h| h.id == *id) {
            releases.to_all.iter().map(|(clue, r)| (clue.clone(), r.at_ms, r.radius_sent)).collect()
        } else {
            Vec::new()
        };
        let record = HuntRecord { seed: placed.def.seed, next_seq, state: state.cloned(), released };
        changes.put(&tables.hunts, id, &record);
    }
}

/// What a catch-up found for a player.
#[derive(Debug, Clone, PartialEq)]
pub enum CatchUp {
    /// The events after the player's last, in order (those it should hear of).
    Events(Vec<(u64, HuntEvent)>),
    /// The player's last is older than the retention window: it needs a snapshot.
    TooOld,
}

/// The events of the running hunt numbered after `after` that `player` should hear of: every
/// vault opened, its own loot. Read from the store: committed events only.
pub fn events_since(store: &Store, log: &HuntLog, player: PlayerId, after: u64) -> Result<CatchUp, StoreError> {
    let oldest = log.next_seq.saturating_sub(log.retained).max(1);
    if after.saturating_add(1) < oldest {
        return Ok(CatchUp::TooOld);
    }
    let records: Vec<((String, u64), EventRecord)> =
        store.load_range(EVENTS, &(log.hunt.clone(), after.saturating_add(1)), &(log.hunt.clone(), log.next_seq))?;
    Ok(CatchUp::Events(
        records.into_iter().map(|((_, seq), r)| (seq, r.event)).filter(|(_, e)| e.concerns(player)).collect(),
    ))
}

impl HuntEvent {
    /// Whether `player` hears of it: public events, and its own loot.
    pub fn concerns(&self, player: PlayerId) -> bool {
        match self {
            HuntEvent::VaultOpened { .. } => true,
            HuntEvent::LootGranted { player: p, .. } => *p == player,
        }
    }
}

/// Persistence as one unit: its tables, log and message now; a returning player's record read
/// before the hunt's input, and the tick's changes saved after the hunt, once the mod has
/// started.
pub fn plugin(ctx: &mut ModContext, retained_events: u64) {
    let world = ctx.world_mut();
    world.init_resource::<Tables>();
    world.init_resource::<LogPositions>();
    world.insert_resource(HuntLog { hunt: String::new(), next_seq: 1, retained: retained_events.max(1) });
    veltrix_sdk::bevy_ecs::message::MessageRegistry::register_message::<Logged>(world);
    // A player whose record cannot be read is refused before joining: nothing is saved over it.
    ctx.add_join_check(player_record_reads);
    ctx.add_systems(Tick, restore_players.before(treasure_hunt_ecs::hunt::HuntSet::Input)).add_systems(
        Tick,
        (save_players, save_claims, log_events, save_hunts, save_scores).chain().in_set(crate::sets::AfterHunt::Save),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record written before effects, pity and effort in hundredths still loads: its effort in
    /// whole digs counts as hundredths, the new fields are empty.
    #[test]
    fn an_older_player_record_loads_with_defaults() {
        #[derive(Serialize)]
        struct Older {
            slots: Vec<Option<ItemStack>>,
            pending: Vec<ItemStack>,
            team: Option<String>,
            effort: BTreeMap<String, u32>,
        }
        let older = Older {
            slots: vec![Some(ItemStack { item: "Coin".into(), quantity: 3 }), None],
            pending: vec![],
            team: Some("Reds".into()),
            effort: [("Well".to_string(), 4)].into(),
        };
        let bytes = veltrix_sdk::rmp_serde::to_vec_named(&older).unwrap();
        let record: PlayerRecord = veltrix_sdk::rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(record.team.as_deref(), Some("Reds"));
        assert!(record.effects.is_empty() && record.pity.is_empty());
        assert_eq!(record.effort_in_hundredths(), [("Well".to_string(), 400)].into());
    }

    /// The record written from a player's state, read back as the store's reader reads it.
    #[allow(clippy::too_many_arguments)]
    fn written_and_read(
        inventory: &Inventory,
        pending: &PendingRewards,
        digging: &Digging,
        team: Option<&Team>,
        effects: &ActiveEffects,
        pity: &PityCounters,
        now: u64,
        run: Option<(&str, u32)>,
        ids: &BTreeMap<Entity, String>,
    ) -> PlayerRecord {
        let vault_id = |e: Entity| ids.get(&e).map(String::as_str);
        let record = PlayerRecordRef::new(inventory, pending, digging, team, effects, pity, now, run, vault_id);
        veltrix_sdk::rmp_serde::from_slice(&veltrix_sdk::rmp_serde::to_vec_named(&record).unwrap()).unwrap()
    }

    /// A player's record holds its state as it was: effort by vault id (vaults no longer in the
    /// hunt left out), the run the effort is for, the effects still active, and the rest as is.
    #[test]
    fn a_player_record_reads_back_as_the_state_it_was_written_from() {
        let mut world = World::new();
        let [zeta, alpha, gone, mid] = [(); 4].map(|_| world.spawn_empty().id());
        let ids: BTreeMap<Entity, String> =
            [(zeta, "Zeta"), (alpha, "Alpha"), (mid, "Mid")].into_iter().map(|(e, id)| (e, id.to_string())).collect();
        let inventory = Inventory::from_slots(vec![Some(ItemStack { item: "Coin".into(), quantity: 3 }), None], 3);
        let pending = PendingRewards([ItemStack { item: "Gem".into(), quantity: 1 }].into());
        let team = Team("Reds".into());
        let effects = ActiveEffects(vec![
            ActiveEffect { id: "Lucky".into(), stacks: 2, expires_at: 50 },
            ActiveEffect { id: "Swift".into(), stacks: 1, expires_at: 40 },
        ]);
        let pity = PityCounters([("Gamble".to_string(), 3)].into());
        // Effort by vault entity, and the effort by id that is stored.
        type Case = (BTreeMap<Entity, u32>, &'static [(&'static str, u32)]);
        let efforts: [Case; 3] = [
            (BTreeMap::new(), &[]),
            ([(gone, 5), (alpha, 7)].into(), &[("Alpha", 7)]),
            ([(zeta, 100), (gone, 5), (alpha, 250), (mid, 1)].into(), &[("Alpha", 250), ("Mid", 1), ("Zeta", 100)]),
        ];
        for (effort, by_id) in efforts {
            let digging = Digging { effort, last_dig_tick: Some(9) };
            for (team, run) in [(None, None), (Some(&team), Some(("Spring", 2)))] {
                let record = written_and_read(&inventory, &pending, &digging, team, &effects, &pity, 40, run, &ids);
                let expected = PlayerRecord {
                    slots: inventory.slots().to_vec(),
                    pending: pending.0.iter().cloned().collect(),
                    team: team.map(|t| t.0.clone()),
                    effort: BTreeMap::new(),
                    effort_run: run.map(|(id, run)| (id.to_string(), run)),
                    effort_hundredths: by_id.iter().map(|(id, e)| (id.to_string(), *e)).collect(),
                    effects: vec![StoredEffect { id: "Lucky".into(), stacks: 2, ticks_left: 10 }],
                    pity: pity.0.clone(),
                };
                assert_eq!(record, expected);
            }
        }
    }

    /// Effects are stored with the ticks they have left; ended ones are not stored.
    #[test]
    fn effects_are_stored_with_their_ticks_left() {
        let effects = ActiveEffects(vec![
            ActiveEffect { id: "Lucky".into(), stacks: 2, expires_at: 50 },
            ActiveEffect { id: "Swift".into(), stacks: 1, expires_at: 40 },
        ]);
        let pity = PityCounters([("Gamble".to_string(), 3)].into());
        let record = written_and_read(
            &Inventory::with_slots(2),
            &PendingRewards::default(),
            &Digging::default(),
            None,
            &effects,
            &pity,
            40,
            None,
            &BTreeMap::new(),
        );
        assert_eq!(record.effects, [StoredEffect { id: "Lucky".into(), stacks: 2, ticks_left: 10 }]);
        assert_eq!(record.pity, pity.0);
    }
}
