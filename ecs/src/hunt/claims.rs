//! Claims and loot: who of a tick's finishers claims each vault, their loot rolled and granted,
//! and pending rewards delivered as space frees.

use std::sync::Arc;

use veltrix_sdk::{PlayerId, prelude::*};

use super::player::PityCounters;
use crate::{
    effects::ActiveEffects,
    model::assets::ClaimRule,
    model::inventory::{Inventory, ItemCatalog, PendingRewards, deliver_pending, grant},
    model::loot::{ItemStack, loot_rng},
    state::{ActiveHunt, AssetsInForce, Team, Vault, VaultClaims, already_claimed},
    vocab::{Claim, ClaimOutcome, Claimant, DigOutcome, InventoryChanged, LootGranted, Refused},
};

/// Who a claim by `player` would count against under the vault's rule.
fn claimant(rule: ClaimRule, player: PlayerId, team: Option<&Team>) -> Claimant {
    match (rule, team) {
        (ClaimRule::Team, Some(team)) => Claimant::Team(team.0.clone()),
        _ => Claimant::Player(player),
    }
}

/// Decides this tick's claims. Finishers of one vault are taken in arrival order, then by
/// player id; each is checked against the claims made so far (earlier ticks and earlier
/// finishers of this tick). A FirstFinder vault finished by two players in one tick goes to
/// exactly one of them.
pub fn resolve_claims(
    mut finished: MessageReader<DigOutcome>,
    mut vaults: Query<(&Vault, &mut VaultClaims)>,
    players: Query<(&Player, Option<&Team>)>,
    mut out: MessageWriter<ClaimOutcome>,
) {
    let mut claims: Vec<(u32, PlayerId, Entity, Option<u32>, Entity)> = finished
        .read()
        .filter_map(|o| match o {
            DigOutcome::Finished { arrival, entity, player, request, vault } => {
                Some((*arrival, *player, *entity, *request, *vault))
            }
            _ => None,
        })
        .collect();
    claims.sort_by_key(|(arrival, player, ..)| (*arrival, *player));
    for (_, player, entity, request, vault_entity) in claims {
        let Ok((vault, mut record)) = vaults.get_mut(vault_entity) else { continue };
        let Ok((who, team)) = players.get(entity) else { continue };
        if let Some(reason) = already_claimed(&vault.0, &record, player, team) {
            let reason = reason.reason();
            out.write(ClaimOutcome::Refused(Refused { player, request, reason }));
            continue;
        }
        let first = record.first.is_none();
        let claimant = claimant(vault.0.claim, player, team);
        let table = match (vault.0.claim, first) {
            (ClaimRule::FirstFinderThenPerPlayer, false) => {
                vault.0.consolation_table.clone().expect("validated: FirstFinderThenPerPlayer has a consolation table")
            }
            _ => vault.0.loot_table.clone(),
        };
        if first {
            record.first = Some((player, who.name.clone()));
        }
        let inserted = record.claimed_by.insert(claimant.clone());
        debug_assert!(inserted, "a claimant claims a vault once");
        // Under Team, the member is marked as well: a team change does not claim it again.
        record.claimed_by.insert(Claimant::Player(player));
        out.write(ClaimOutcome::Claimed(Claim {
            entity,
            player,
            player_name: who.name.clone(),
            request,
            vault: Arc::new(vault.0.clone()),
            claimant,
            table,
            first,
        }));
    }
}

/// The players loot goes to: their inventory and pending rewards, the effects that bring luck,
/// and their pity counters.
type LootReceivers<'w, 's> = Query<
    'w,
    's,
    (
        &'static mut Inventory,
        &'static mut PendingRewards,
        Option<&'static ActiveEffects>,
        Option<&'static mut PityCounters>,
    ),
>;

/// Rolls each claim's loot table and grants the loot: into the inventory as far as it fits,
/// the rest into pending rewards. The claimant's luck and the table's pity (its count of the
/// claimant's claims without a rare item) boost the table's rare entries.
pub fn grant_loot(
    mut claims: MessageReader<ClaimOutcome>,
    assets: Res<AssetsInForce>,
    hunt: Option<Res<ActiveHunt>>,
    catalog: Res<ItemCatalog>,
    mut players: LootReceivers,
    mut granted: MessageWriter<LootGranted>,
    mut changed: MessageWriter<InventoryChanged>,
) {
    let Some(hunt) = hunt else { return };
    for outcome in claims.read() {
        let ClaimOutcome::Claimed(claim) = outcome else { continue };
        let Some(table) = assets.0.drops.get(&claim.table) else { continue };
        let Ok((mut inventory, mut pending, active, pity)) = players.get_mut(claim.entity) else { continue };
        let luck = active.map_or(0.0, |a| a.modifiers(&assets.0.effects).luck);
        let rare = assets.0.rare_entries.get(&claim.table);
        let dry = pity.as_ref().and_then(|p| p.0.get(&claim.table).copied()).unwrap_or(0);
        let boost = (1.0 + f64::from(luck)) * table.pity.map_or(1.0, |p| p.boost(dry));
        let mut rng = loot_rng(hunt.seed, &claim.vault.id, claim.claimant.seed());
        let loot = match rare {
            Some(rare) if rare.any() => table.roll_boosted(&mut rng, rare, boost),
            _ => table.roll(&mut rng),
        };
        // Counted only for tables with pity and a rare entry: others never need it.
        if let (Some(mut pity), Some(_), Some(true)) = (pity, table.pity, rare.map(|r| r.any())) {
            if loot.iter().any(|s| assets.0.is_rare(&s.item)) {
                if pity.0.get(&claim.table).is_some_and(|n| *n > 0) {
                    pity.0.remove(&claim.table);
                }
            } else {
                *pity.0.entry(claim.table.clone()).or_insert(0) += 1;
            }
        }
        let waiting_before = pending.0.len();
        let now = grant(&mut inventory, &mut pending, &loot, &catalog);
        let later: Vec<ItemStack> = pending.0.iter().skip(waiting_before).cloned().collect();
        granted.write(LootGranted {
            player: claim.player,
            request: claim.request,
            vault: claim.vault.id.clone(),
            items: now,
            pending: later,
        });
        changed.write(InventoryChanged { entity: claim.entity, player: claim.player });
    }
}

/// Moves pending rewards into inventories that changed (space may have freed).
pub fn deliver_pending_rewards(
    catalog: Res<ItemCatalog>,
    mut players: Query<(Entity, &Player, &mut Inventory, &mut PendingRewards), Changed<Inventory>>,
    mut changed: MessageWriter<InventoryChanged>,
) {
    for (entity, player, mut inventory, mut pending) in &mut players {
        if pending.0.is_empty() {
            continue;
        }
        let moved = deliver_pending(inventory.bypass_change_detection(), pending.bypass_change_detection(), &catalog);
        if !moved.is_empty() {
            inventory.set_changed();
            pending.set_changed();
            changed.write(InventoryChanged { entity, player: player.id });
        }
    }
}
