//! The hunts in the store: their vaults' claims, their records (life, released clues, log
//! position), and the event log players catch up from.

use std::collections::BTreeMap;

use treasure_hunt_ecs::{
    assets::ClaimRule,
    clues::{ClueReleases, Released},
    hunt::{ActiveHunt, AssetsInForce, ClaimOutcome, LootGranted, Vault, VaultClaims},
    lifecycle::{HuntRuns, Phase},
};
use veltrix_sdk::{
    Changes, PlayerId, Store, StoreError,
    bevy_ecs::{self, system::SystemParam},
    prelude::*,
    tracing,
};

use super::{
    records::{ClaimRecord, EventRecord, HuntEvent, HuntRecord},
    tables::{CLAIMS, EVENTS, HUNTS, Tables},
};

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
    if restored + unknown > 0 {
        tracing::info!(
            "hunt {}: {restored} claimed vault(s) restored from the store{}",
            active.id,
            if unknown > 0 { format!(" ({unknown} vault(s) no longer in the hunt ignored)") } else { String::new() }
        );
    }
    Ok(())
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

/// The event log as a tick writes it: its position, every hunt's position, and the events
/// logged for the publisher.
#[derive(SystemParam)]
pub struct EventLog<'w> {
    log: Option<ResMut<'w, HuntLog>>,
    positions: ResMut<'w, LogPositions>,
    logged: MessageWriter<'w, Logged>,
}

/// Tick, after the hunt: numbers this tick's events (FirstFinder vaults claimed, then loot
/// granted) in the hunt's log and writes them; the oldest beyond the retention window go.
pub fn log_events(
    tables: Res<Tables>,
    tick: Res<TickInfo>,
    mut claims: MessageReader<ClaimOutcome>,
    mut granted: MessageReader<LootGranted>,
    hunt: Option<Res<ActiveHunt>>,
    mut changes: ResMut<Changes>,
    event_log: EventLog,
) {
    let EventLog { log, mut positions, mut logged } = event_log;
    let (Some(hunt), Some(mut log)) = (hunt, log) else { return };
    let opened = claims.read().filter_map(|c| match c {
        // Only FirstFinder vaults: one still open to others (PerPlayer, Team, the consolation of
        // FirstFinderThenPerPlayer) is not named to everyone.
        ClaimOutcome::Claimed(claim)
            if claim.first && !claim.opening_told && claim.vault.claim == ClaimRule::FirstFinder =>
        {
            Some((
                HuntEvent::VaultOpened {
                    vault: claim.vault.id.clone(),
                    by: claim.player,
                    name: claim.player_name.clone(),
                },
                None,
            ))
        }
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

/// What the hunts' records are written from: the running hunt, the hunts in force, their runs,
/// and the clues released.
#[derive(SystemParam)]
pub struct HuntRecordSources<'w> {
    hunt: Option<Res<'w, ActiveHunt>>,
    assets: Res<'w, AssetsInForce>,
    runs: Res<'w, HuntRuns>,
    releases: Res<'w, ClueReleases>,
}

/// Tick, after the events are logged: points the log at the running hunt when it changed, and
/// writes the hunts' records when their life, released clues or log position changed.
pub fn save_hunts(
    tables: Res<Tables>,
    sources: HuntRecordSources,
    mut positions: ResMut<LogPositions>,
    mut log: ResMut<HuntLog>,
    mut changes: ResMut<Changes>,
) {
    let HuntRecordSources { hunt, assets, runs, releases } = sources;
    if let Some(hunt) = &hunt
        && log.hunt != hunt.id
    {
        log.hunt = hunt.id.clone();
        log.next_seq = positions.0.get(&hunt.id).copied().unwrap_or(1);
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
/// vault opened, its own loot. Read from the store: committed events only. On the tick thread
/// (`catch_up`), bounded: one range read of at most `RetainedEvents` records per `CatchUp`,
/// which counts against the connection's rate limit.
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
