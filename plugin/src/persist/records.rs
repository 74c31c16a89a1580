//! The records the hunt stores, and the borrowed forms its players' and scores' records are
//! written from (same encoding, nothing copied).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use treasure_hunt_ecs::{
    effects::ActiveEffects,
    hunt::{Claimant, ClaimsMade, Digging, EFFORT_PER_DIG, Effort, PityCounters, PlayerHuntStateItem, Stashed, Team},
    inventory::{Inventory, PendingRewards, SlotList},
    leaderboard::BoardEntry,
    lifecycle::HuntRun,
    loot::ItemStack,
};
use veltrix_sdk::prelude::*;

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
    /// On a server that shares its hunt: the asks (server, ticket) of the ledger's claims made
    /// for the player in the run `effort_run` ([`ClaimsMade`]). Absent on a server alone, and
    /// in records written before it was kept.
    #[serde(default)]
    pub ledger_claims: Option<Vec<(u64, u64)>>,
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
    pub(super) fn effort_in_hundredths(&self) -> BTreeMap<String, u32> {
        let mut effort: BTreeMap<String, u32> =
            self.effort.iter().map(|(id, digs)| (id.clone(), digs.saturating_mul(EFFORT_PER_DIG))).collect();
        effort.extend(self.effort_hundredths.iter().map(|(id, e)| (id.clone(), *e)));
        effort
    }
}

/// A player's hunt state, borrowed: what its record is written from, online or stashed.
#[derive(Debug, Clone, Copy)]
pub(super) struct PlayerStateRef<'a> {
    pub inventory: &'a Inventory,
    pub pending: &'a PendingRewards,
    pub digging: &'a Digging,
    pub team: Option<&'a Team>,
    pub effects: &'a ActiveEffects,
    pub pity: &'a PityCounters,
    pub claims_made: &'a ClaimsMade,
}

impl<'a> From<&'a Stashed> for PlayerStateRef<'a> {
    fn from(s: &'a Stashed) -> Self {
        PlayerStateRef {
            inventory: &s.inventory,
            pending: &s.pending,
            digging: &s.digging,
            team: s.team.as_ref(),
            effects: &s.effects,
            pity: &s.pity,
            claims_made: &s.claims_made,
        }
    }
}

impl<'a> From<&PlayerHuntStateItem<'a, '_>> for PlayerStateRef<'a> {
    fn from(s: &PlayerHuntStateItem<'a, '_>) -> Self {
        PlayerStateRef {
            inventory: s.inventory,
            pending: s.pending,
            digging: s.digging,
            team: s.team,
            effects: s.effects,
            pity: s.pity,
            claims_made: s.claims_made,
        }
    }
}

/// A [`PlayerRecord`] to store, borrowing the player's state instead of copying it (a player's
/// record is written in every tick it digs): the one way a player's record is written, every
/// tick and at shutdown.
#[derive(Serialize)]
#[serde(bound = "F: Fn(Entity) -> Option<&'a str>")]
pub(super) struct PlayerRecordRef<'a, F> {
    slots: SlotList<'a>,
    pending: &'a std::collections::VecDeque<ItemStack>,
    team: Option<&'a str>,
    effort: BTreeMap<String, u32>,
    effort_run: Option<(&'a str, u32)>,
    effort_hundredths: EffortById<'a, F>,
    effects: EffectsLeft<'a>,
    pity: &'a BTreeMap<String, u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ledger_claims: Option<&'a [(u64, u64)]>,
}

impl<'a, F: Fn(Entity) -> Option<&'a str>> PlayerRecordRef<'a, F> {
    /// The record of a player's state in tick `now`, its effort being for the hunt run `run`
    /// (hunt id, run); `vault_id` names a vault entity (effort on a vault no longer in the hunt
    /// is left out).
    pub(super) fn new(state: PlayerStateRef<'a>, now: u64, run: Option<(&'a str, u32)>, vault_id: F) -> Self {
        let PlayerStateRef { inventory, pending, digging, team, effects, pity, claims_made } = state;
        PlayerRecordRef {
            slots: SlotList(inventory),
            pending: &pending.0,
            team: team.map(|t| t.0.as_str()),
            effort: BTreeMap::new(),
            effort_run: run,
            effort_hundredths: EffortById { effort: &digging.effort, id: vault_id },
            effects: EffectsLeft { effects, now },
            pity: &pity.0,
            ledger_claims: claims_made.0.as_deref(),
        }
    }
}

/// Effort by vault id, as [`PlayerRecord::effort_hundredths`] holds it (sorted by id), from
/// effort by vault entity; `id` names a vault entity (effort on a vault no longer in the hunt is
/// left out).
struct EffortById<'a, F> {
    effort: &'a Effort,
    id: F,
}

impl<'a, F: Fn(Entity) -> Option<&'a str>> Serialize for EffortById<'a, F> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let named = || self.effort.iter().filter_map(|(vault, effort)| (self.id)(vault).map(|id| (id, effort)));
        let count = named().count();
        let mut map = serializer.serialize_map(Some(count))?;
        if count <= 2 {
            // One vault or two, as a player's effort holds them in place: sorted by id (as a map
            // by id is) without a map, so that saving a player allocates nothing for it.
            let mut pair = [None, None];
            named().zip(&mut pair).for_each(|(named, slot)| *slot = Some(named));
            if pair[0].zip(pair[1]).is_some_and(|(a, b)| b.0 < a.0) {
                pair.swap(0, 1);
            }
            for (id, effort) in pair.into_iter().flatten() {
                map.serialize_entry(id, &effort)?;
            }
        } else {
            // Effort on more vaults at once (rare): sorted by id, as a map by id is.
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
pub(super) struct ScoreRecordRef<'a> {
    pub name: &'a str,
    pub vaults: u32,
    pub score: u64,
    pub last_find_tick: u64,
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

impl HuntEvent {
    /// Whether `player` hears of it: public events, and its own loot.
    pub fn concerns(&self, player: PlayerId) -> bool {
        match self {
            HuntEvent::VaultOpened { .. } => true,
            HuntEvent::LootGranted { player: p, .. } => *p == player,
        }
    }
}

#[cfg(test)]
mod tests {
    use treasure_hunt_ecs::effects::ActiveEffect;

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
    fn written_and_read(
        state: PlayerStateRef,
        now: u64,
        run: Option<(&str, u32)>,
        ids: &BTreeMap<Entity, String>,
    ) -> PlayerRecord {
        let vault_id = |e: Entity| ids.get(&e).map(String::as_str);
        let record = PlayerRecordRef::new(state, now, run, vault_id);
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
        type Case = (Effort, &'static [(&'static str, u32)]);
        let efforts: [Case; 3] = [
            (Effort::default(), &[]),
            ([(gone, 5), (alpha, 7)].into(), &[("Alpha", 7)]),
            ([(zeta, 100), (gone, 5), (alpha, 250), (mid, 1)].into(), &[("Alpha", 250), ("Mid", 1), ("Zeta", 100)]),
        ];
        for (effort, by_id) in efforts {
            let digging = Digging { effort, last_dig_tick: Some(9) };
            // A server alone keeps no ledger claims; a shard does.
            let on_a_shard = ClaimsMade(Some(vec![(7, 3), (9, 1)]));
            let alone = ClaimsMade(None);
            for (team, run, claims_made) in [(None, None, &alone), (Some(&team), Some(("Spring", 2)), &on_a_shard)] {
                let state = PlayerStateRef {
                    inventory: &inventory,
                    pending: &pending,
                    digging: &digging,
                    team,
                    effects: &effects,
                    pity: &pity,
                    claims_made,
                };
                let record = written_and_read(state, 40, run, &ids);
                let expected = PlayerRecord {
                    slots: inventory.slot_list(),
                    pending: pending.0.iter().cloned().collect(),
                    team: team.map(|t| t.0.clone()),
                    effort: BTreeMap::new(),
                    effort_run: run.map(|(id, run)| (id.to_string(), run)),
                    effort_hundredths: by_id.iter().map(|(id, e)| (id.to_string(), *e)).collect(),
                    effects: vec![StoredEffect { id: "Lucky".into(), stacks: 2, ticks_left: 10 }],
                    pity: pity.0.clone(),
                    ledger_claims: claims_made.0.clone(),
                };
                assert_eq!(record, expected);
            }
        }
    }

    /// Effort is written in vault id order whatever order the player's effort holds it in (the
    /// same state, the same bytes), by vaults one, two (held in place) and more.
    #[test]
    fn effort_is_written_in_id_order() {
        let mut world = World::new();
        let [zeta, alpha, gone, mid] = [(); 4].map(|_| world.spawn_empty().id());
        let ids: BTreeMap<Entity, &str> = [(zeta, "Zeta"), (alpha, "Alpha"), (mid, "Mid")].into();
        let cases: [&[(Entity, u32)]; 4] = [
            &[(zeta, 1)],
            &[(zeta, 1), (alpha, 2)],
            &[(gone, 5), (zeta, 1), (alpha, 2)],
            &[(zeta, 1), (mid, 3), (alpha, 2)],
        ];
        for held in cases {
            let effort: Effort = held.iter().copied().collect();
            let written = EffortById { effort: &effort, id: |e: Entity| ids.get(&e).copied() };
            let sorted: BTreeMap<&str, u32> = held.iter().filter_map(|(e, n)| Some((*ids.get(e)?, *n))).collect();
            assert_eq!(
                veltrix_sdk::rmp_serde::to_vec(&written).unwrap(),
                veltrix_sdk::rmp_serde::to_vec(&sorted).unwrap(),
                "{held:?}"
            );
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
        let (inventory, pending, digging) = (Inventory::with_slots(2), PendingRewards::default(), Digging::default());
        let state = PlayerStateRef {
            inventory: &inventory,
            pending: &pending,
            digging: &digging,
            team: None,
            effects: &effects,
            pity: &pity,
            claims_made: &ClaimsMade(None),
        };
        let record = written_and_read(state, 40, None, &BTreeMap::new());
        assert_eq!(record.effects, [StoredEffect { id: "Lucky".into(), stacks: 2, ticks_left: 10 }]);
        assert_eq!(record.pity, pity.0);
    }
}
