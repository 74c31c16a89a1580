//! The running hunt: vaults as entities, digging, claims, loot into inventories.
//!
//! A tick goes through four sets, in order ([`HuntSet`]):
//!
//! 1. `Input`: [`equip_players`], [`expire_effects`], [`change_team`], [`use_items`],
//!    [`apply_effect_grants`], [`sync_speed_factor`], then [`dig`] and [`discard_items`]
//!    (`dig` and `discard_items` touch different data and run in parallel). Effects change
//!    before the digs of the tick: a dig in the tick an effect ends no longer has it.
//! 2. `Claim`: [`resolve_claims`] decides, per vault, who of this tick's finishers claims it:
//!    in arrival order, then by player id. Never both, never none.
//! 3. `Loot`: [`grant_loot`] rolls each claim's table and fills the claimant's inventory;
//!    what does not fit waits in its pending rewards.
//! 4. `Deliver`: [`deliver_pending_rewards`] moves pending rewards in as space frees;
//!    [`sense_treasure`] tells holders of treasure sense how many vaults are near.
//!
//! [`expire_effects`]: crate::effects::expire_effects
//! [`use_items`]: crate::effects::use_items
//! [`apply_effect_grants`]: crate::effects::apply_effect_grants
//! [`sync_speed_factor`]: crate::effects::sync_speed_factor
//! [`sense_treasure`]: crate::effects::sense_treasure
//!
//! The requests and outcomes these systems read and write are in [`crate::vocab`]; the vaults,
//! teams and running hunt they share with the other concerns in [`crate::state`]. Both are
//! named here too, where the mod and its tests have always found them.
//!
//! In modules, each with one job: `rules` (the mod's config), `player` (a player's hunt state,
//! equipped, stashed, its team), `dig` (digging and discarding), `claims` (claims, loot and
//! pending rewards). Their items are named here.

mod claims;
mod dig;
mod player;
mod rules;

use std::{collections::HashMap, sync::Arc};

use veltrix_sdk::prelude::*;

pub use self::{
    claims::{
        LedgerClaim, SharedClaims, UnmadeClaims, WaitingClaims, claim_key, deliver_pending_rewards, grant_loot,
        ledger_key, resolve_claims, run_prefix,
    },
    dig::{DigChecks, DigTargets, EFFORT_PER_DIG, dig, dig_effort, discard_items},
    player::{
        ClaimsMade, Digging, Effort, PityCounters, PlayerHuntState, PlayerHuntStateItem, Stash, Stashed, change_team,
        equip_players,
    },
    rules::HuntRules,
};
use crate::{effects, model::inventory::ItemCatalog, model::pack::HuntAssets, state::run_seed};
pub use crate::{
    state::{ActiveHunt, AssetsInForce, Team, Vault, VaultClaims, VaultIndex, is_run_key, run_key},
    vocab::{
        Claim, ClaimOutcome, Claimant, DigOutcome, DigRequest, DiscardOutcome, DiscardRequest, HuntSet,
        InventoryChanged, LootGranted, Reason, Refused, TeamOutcome, TeamRequest,
    },
};

/// The hunt (digging, claims, loot, effects, the players' stash) as one unit: its rules,
/// resources and messages in the world now, its systems and observer once the mod has started.
pub fn plugin(ctx: &mut ModContext, rules: HuntRules) {
    register(ctx.world_mut(), rules);
    add_systems(ctx);
}

/// Registers the hunt's resources and messages (and the effects').
pub fn register(world: &mut World, rules: HuntRules) {
    world.insert_resource(rules);
    world.init_resource::<AssetsInForce>();
    world.init_resource::<ItemCatalog>();
    world.init_resource::<VaultIndex>();
    world.init_resource::<Stash>();
    world.init_resource::<claims::WaitingClaims>();
    world.init_resource::<claims::UnmadeClaims>();
    for register in [
        veltrix_sdk::bevy_ecs::message::MessageRegistry::register_message::<DigRequest>,
        veltrix_sdk::bevy_ecs::message::MessageRegistry::register_message::<DiscardRequest>,
        veltrix_sdk::bevy_ecs::message::MessageRegistry::register_message::<TeamRequest>,
        veltrix_sdk::bevy_ecs::message::MessageRegistry::register_message::<DigOutcome>,
        veltrix_sdk::bevy_ecs::message::MessageRegistry::register_message::<ClaimOutcome>,
        veltrix_sdk::bevy_ecs::message::MessageRegistry::register_message::<LootGranted>,
        veltrix_sdk::bevy_ecs::message::MessageRegistry::register_message::<InventoryChanged>,
        veltrix_sdk::bevy_ecs::message::MessageRegistry::register_message::<DiscardOutcome>,
        veltrix_sdk::bevy_ecs::message::MessageRegistry::register_message::<TeamOutcome>,
    ] {
        register(world);
    }
    effects::register(world);
}

/// Adds the hunt's systems to `Tick`, in their sets, and the observer that parks a leaving
/// player's state.
pub fn add_systems(ctx: &mut ModContext) {
    ctx.add_observer(player::stash_leaving_player);
    ctx.configure_sets(Tick, (HuntSet::Input, HuntSet::Claim, HuntSet::Loot, HuntSet::Deliver).chain());
    ctx.add_systems(
        Tick,
        (
            (
                equip_players,
                effects::expire_effects,
                change_team,
                effects::use_items,
                effects::apply_effect_grants,
                effects::sync_speed_factor,
                (dig, discard_items),
            )
                .chain()
                .in_set(HuntSet::Input),
            resolve_claims.in_set(HuntSet::Claim),
            grant_loot.in_set(HuntSet::Loot),
            (deliver_pending_rewards, effects::sense_treasure).in_set(HuntSet::Deliver),
        ),
    );
}

/// Starts hunt `id` of the assets in force: spawns its vaults. Claims of a vault already
/// running under the same id are kept (a reload changes a vault's rules, not its history).
pub fn start_hunt(world: &mut World, id: &str) -> Result<(), String> {
    let assets = world.resource::<AssetsInForce>().0.clone();
    let Some(hunt) = assets.hunts.get(id) else {
        let known: Vec<&str> = assets.hunts.keys().map(String::as_str).collect();
        return Err(match veltrix_sdk::did_you_mean(id, &known) {
            Some(hint) => format!("no hunt \"{id}\" in the pack (did you mean \"{hint}\"?)"),
            None => format!("no hunt \"{id}\" in the pack; it has: {}", known.join(", ")),
        });
    };
    let mut existing: HashMap<String, Entity> = HashMap::new();
    let mut vaults = world.query::<(Entity, &Vault)>();
    for (entity, vault) in vaults.iter(world) {
        existing.insert(vault.0.id.clone(), entity);
    }
    let mut index = HashMap::with_capacity(hunt.vaults.len());
    for vault in &hunt.vaults {
        let entity = match existing.remove(&vault.id) {
            Some(entity) => {
                world.entity_mut(entity).insert(Vault(Arc::new(vault.clone())));
                entity
            }
            None => world.spawn((Vault(Arc::new(vault.clone())), VaultClaims::default())).id(),
        };
        index.insert(vault.at, entity);
    }
    for (_, gone) in existing {
        world.despawn(gone);
    }
    world.insert_resource(VaultIndex(index));
    let run = world.get_resource::<ActiveHunt>().filter(|a| a.id == id).map_or(1, |a| a.run);
    let seed = run_seed(hunt.def.seed, run);
    world.insert_resource(ActiveHunt { id: id.to_string(), seed, run });
    Ok(())
}

/// Puts a pack in force: items, loot tables, hunts. The running hunt's vaults follow its new
/// definition (by vault id, keeping claims). A pack without the running hunt is refused: the
/// hunt goes on with the pack it has.
pub fn put_in_force(world: &mut World, assets: HuntAssets) -> Result<(), String> {
    if let Some(active) = world.get_resource::<ActiveHunt>()
        && !assets.hunts.contains_key(&active.id)
    {
        return Err(format!("the running hunt {} is not in the new pack", active.id));
    }
    let mut catalog = ItemCatalog::default();
    for (id, item) in &assets.items {
        catalog.insert(id.clone(), item.max_stack);
    }
    world.insert_resource(catalog);
    world.insert_resource(AssetsInForce(Arc::new(assets)));
    if let Some(active) = world.get_resource::<ActiveHunt>().cloned() {
        start_hunt(world, &active.id).expect("the hunt is in the pack");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::pack::PlacedHunt;

    fn hunt(id: &str) -> PlacedHunt {
        let def: crate::model::assets::Hunt = serde_json::from_str(r#"{"Seed": 1, "Vaults": []}"#).unwrap();
        PlacedHunt { id: id.into(), def, vaults: vec![], clues: vec![] }
    }

    #[test]
    fn run_keys_are_recognised_without_being_built() {
        for (id, run) in [("Spring", 1), ("Spring", 0), ("Spring", 10), ("A#1", 23), ("", u32::MAX)] {
            let key = run_key(id, run);
            assert!(is_run_key(&key, id, run), "{key}");
            assert!(!is_run_key(&key, id, run.wrapping_add(1)), "{key}");
            assert!(!is_run_key(&format!("{key}0"), id, run), "{key}0");
            assert!(!is_run_key(&key, "Sprin", run), "{key}");
        }
        assert!(!is_run_key("Spring#01", "Spring", 1));
        assert!(!is_run_key("Spring#+1", "Spring", 1));
        assert!(!is_run_key("Spring1", "Spring", 1));
    }

    #[test]
    fn a_pack_without_the_running_hunt_is_not_put_in_force() {
        let mut world = World::new();
        let mut assets = HuntAssets::default();
        assets.hunts.insert("Spring".into(), hunt("Spring"));
        put_in_force(&mut world, assets.clone()).unwrap();
        start_hunt(&mut world, "Spring").unwrap();
        let mut other = HuntAssets::default();
        other.hunts.insert("Autumn".into(), hunt("Autumn"));
        assert_eq!(put_in_force(&mut world, other).unwrap_err(), "the running hunt Spring is not in the new pack");
        assert!(world.resource::<AssetsInForce>().0.hunts.contains_key("Spring"), "the pack in force stays");
        assert!(start_hunt(&mut world, "Sprig").unwrap_err().contains("did you mean \"Spring\""));
    }
}
