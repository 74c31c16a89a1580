//! Digging: each dig's effort added to its vault, refused when it cannot count; and items
//! thrown away.

use veltrix_sdk::{
    StoreHealth,
    bevy_ecs::{self, system::SystemParam},
    prelude::*,
};

use super::{player::Digging, rules::HuntRules};
use crate::{
    effects::ActiveEffects,
    model::inventory::Inventory,
    state::{ActiveHunt, AssetsInForce, HuntRuns, Team, Vault, VaultClaims, VaultIndex, already_claimed},
    vocab::{DigOutcome, DigRequest, DiscardOutcome, DiscardRequest, InventoryChanged, Reason, Refused},
};

/// Effort units per dig at normal speed (effort is counted in hundredths of a dig).
pub const EFFORT_PER_DIG: u32 = 100;

/// The effort one dig adds at `dig_speed` (a factor): `EFFORT_PER_DIG` times it, rounded, at
/// least 1.
pub fn dig_effort(dig_speed: f32) -> u32 {
    (f64::from(dig_speed) * f64::from(EFFORT_PER_DIG)).round().clamp(1.0, f64::from(u32::MAX / 2)) as u32
}

/// What a dig is checked against before it counts: the rules, the ground, the tick, whether
/// the store takes writes; and the running hunt (or the one that ended last).
#[derive(SystemParam)]
pub struct DigChecks<'w> {
    rules: Res<'w, HuntRules>,
    tiles: Res<'w, TileWorld>,
    tick: Res<'w, TickInfo>,
    health: Option<Res<'w, StoreHealth>>,
    hunt: Option<Res<'w, ActiveHunt>>,
    runs: Option<Res<'w, HuntRuns>>,
}

impl DigChecks<'_> {
    /// Why the dig `r`, by a player at `position` who last dug as `digging` says, does not
    /// count, if it does not: no hunt running, the store not writable, a second dig in the
    /// tick, out of reach, or not on ground.
    fn refusal(&self, r: &DigRequest, position: &Position, digging: &Digging) -> Option<Reason> {
        if self.hunt.is_none() {
            let ended = self
                .runs
                .as_ref()
                .and_then(|r| r.0.iter().filter(|(_, run)| run.ended_ms.is_some()).max_by_key(|(_, run)| run.ended_ms));
            return Some(match ended {
                Some((id, _)) => format!("the hunt {id} is over: nothing to dig for until the next one starts").into(),
                None => "no hunt is running: there is nothing to dig for yet".into(),
            });
        }
        if !self.health.as_ref().is_none_or(|h| h.writable) {
            return Some(StoreHealth::REFUSAL.into());
        }
        if digging.last_dig_tick == Some(self.tick.tick) {
            return Some("you already dug this tick: one dig per tick".into());
        }
        let distance = r.at.distance_to(position.x, position.y);
        if distance > self.rules.reach {
            return Some(Reason::OutOfReach { at: r.at, distance, reach: self.rules.reach });
        }
        match self.tiles.get(i64::from(r.at.x), i64::from(r.at.y)) {
            Some(Tile::Ground) => None,
            tile => Some(Reason::NotGround(r.at, tile)),
        }
    }
}

/// The vaults as a dig finds them: by tile, with their claims and the effects' rules.
#[derive(SystemParam)]
pub struct DigTargets<'w, 's> {
    index: Res<'w, VaultIndex>,
    vaults: Query<'w, 's, (&'static Vault, &'static VaultClaims)>,
    assets: Res<'w, AssetsInForce>,
}

/// Adds each dig's effort to its vault; reports progress, refusals, and finished digs.
pub fn dig(
    mut requests: MessageReader<DigRequest>,
    checks: DigChecks,
    targets: DigTargets,
    mut diggers: Query<(&Position, &mut Digging, Option<&Team>, Option<&ActiveEffects>)>,
    mut out: MessageWriter<DigOutcome>,
) {
    for (arrival, r) in requests.read().enumerate() {
        let refuse = |reason: Reason| DigOutcome::Refused(Refused { player: r.player, request: r.request, reason });
        let Ok((position, mut digging, team, active)) = diggers.get_mut(r.entity) else { continue };
        if let Some(reason) = checks.refusal(r, position, &digging) {
            out.write(refuse(reason));
            continue;
        }
        digging.last_dig_tick = Some(checks.tick.tick);
        let Some((vault_entity, (vault, claims))) =
            targets.index.0.get(&r.at).and_then(|e| targets.vaults.get(*e).ok().map(|v| (*e, v)))
        else {
            out.write(refuse(Reason::NothingHere(r.at)));
            continue;
        };
        if let Some(reason) = already_claimed(&vault.0, claims, r.player, team) {
            out.write(refuse(reason.reason()));
            continue;
        }
        let speed = active.map_or(1.0, |a| a.modifiers(&targets.assets.0.effects).dig_speed);
        let effort = digging.effort.add(vault_entity, dig_effort(speed));
        let required = vault.0.dig_effort.saturating_mul(EFFORT_PER_DIG);
        if effort >= required {
            digging.effort.remove(vault_entity);
            out.write(DigOutcome::Finished {
                arrival: arrival as u32,
                entity: r.entity,
                player: r.player,
                request: r.request,
                vault: vault_entity,
            });
        } else {
            out.write(DigOutcome::Progress {
                player: r.player,
                request: r.request,
                at: r.at,
                effort: effort / EFFORT_PER_DIG,
                required: vault.0.dig_effort,
            });
        }
    }
}

/// Throws items away.
pub fn discard_items(
    mut requests: MessageReader<DiscardRequest>,
    mut players: Query<&mut Inventory>,
    mut out: MessageWriter<DiscardOutcome>,
    mut changed: MessageWriter<InventoryChanged>,
) {
    for r in requests.read() {
        let Ok(mut inventory) = players.get_mut(r.entity) else { continue };
        let held = inventory.count(&r.item);
        if r.quantity == 0 || held < u64::from(r.quantity) {
            out.write(DiscardOutcome::Refused(Refused {
                player: r.player,
                request: r.request,
                reason: format!("you hold {held} {}, cannot discard {}", r.item, r.quantity).into(),
            }));
            continue;
        }
        let taken = inventory.remove(&r.item, r.quantity);
        debug_assert_eq!(taken, r.quantity);
        out.write(DiscardOutcome::Discarded {
            player: r.player,
            request: r.request,
            item: r.item.clone(),
            quantity: taken,
        });
        changed.write(InventoryChanged { entity: r.entity, player: r.player });
    }
}
