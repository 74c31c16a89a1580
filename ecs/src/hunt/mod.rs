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

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use veltrix_sdk::{
    PlayerId, StoreHealth,
    bevy_ecs::{lifecycle::Remove, observer::On},
    prelude::*,
};

use crate::{
    effects::{self, ActiveEffects, EffectOutcome, SenseState},
    model::assets::ClaimRule,
    model::inventory::{Inventory, ItemCatalog, PendingRewards, deliver_pending, grant},
    model::loot::{ItemStack, loot_rng},
    model::pack::HuntAssets,
    state::{HuntRuns, already_claimed, run_seed},
};
pub use crate::{
    state::{ActiveHunt, AssetsInForce, Team, Vault, VaultClaims, VaultIndex, is_run_key, run_key},
    vocab::{
        Claim, ClaimOutcome, Claimant, DigOutcome, DigRequest, DiscardOutcome, DiscardRequest, HuntSet,
        InventoryChanged, LootGranted, Reason, Refused, TeamOutcome, TeamRequest,
    },
};

/// Rules from the mod's config.
#[derive(Resource, Debug, Clone, PartialEq)]
pub struct HuntRules {
    /// How far from a player's position (to the tile's centre) a dig reaches, in tiles.
    pub reach: f32,
    /// Inventory slots per player.
    pub inventory_slots: usize,
}

impl Default for HuntRules {
    fn default() -> Self {
        Self { reach: 3.0, inventory_slots: 24 }
    }
}

/// A player's digging: effort so far per vault, in hundredths of a dig, and the last tick it
/// dug.
#[derive(Component, Debug, Clone, Default, PartialEq, Eq)]
pub struct Digging {
    /// Hundredths of a dig per vault: a dig adds 100 times the digger's `DigSpeed` (rounded,
    /// at least 1), so effort stays a whole number and every machine adds alike.
    pub effort: BTreeMap<Entity, u32>,
    pub last_dig_tick: Option<u64>,
}

/// Effort units per dig at normal speed (effort is counted in hundredths of a dig).
pub const EFFORT_PER_DIG: u32 = 100;

/// The effort one dig adds at `dig_speed` (a factor): `EFFORT_PER_DIG` times it, rounded, at
/// least 1.
pub fn dig_effort(dig_speed: f32) -> u32 {
    (f64::from(dig_speed) * f64::from(EFFORT_PER_DIG)).round().clamp(1.0, f64::from(u32::MAX / 2)) as u32
}

/// Per player, per loot table: claims in a row without a Rare-or-better item (for the
/// tables' pity). A table's count goes back to 0 when a rare item drops.
#[derive(Component, Debug, Clone, Default, PartialEq, Eq)]
pub struct PityCounters(pub BTreeMap<String, u32>);

/// What players left behind when they went offline, given back when they return (this run).
#[derive(Resource, Debug, Clone, Default)]
pub struct Stash(pub HashMap<PlayerId, Stashed>);

/// One player's parked hunt state.
#[derive(Debug, Clone, PartialEq)]
pub struct Stashed {
    pub inventory: Inventory,
    pub pending: PendingRewards,
    pub digging: Digging,
    pub team: Option<Team>,
    /// Effects keep their end tick: their clock runs while the player is away.
    pub effects: ActiveEffects,
    pub pity: PityCounters,
}

// ---- outcome messages (read by the mod and sent to players) ----

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
    ctx.add_observer(stash_leaving_player);
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
                world.entity_mut(entity).insert(Vault(vault.clone()));
                entity
            }
            None => world.spawn((Vault(vault.clone()), VaultClaims::default())).id(),
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

/// Gives each new player an inventory (and what it left behind, when it comes back: its
/// inventory, team, effort, pity counters, and its effects that have not ended meanwhile).
pub fn equip_players(
    mut commands: Commands,
    rules: Res<HuntRules>,
    tick: Res<TickInfo>,
    mut stash: ResMut<Stash>,
    new: Query<(Entity, &Player), Without<Inventory>>,
    mut changed: MessageWriter<InventoryChanged>,
    mut effect_outcomes: MessageWriter<EffectOutcome>,
) {
    for (entity, player) in &new {
        // The client learns its inventory (and pending rewards) as it joins.
        changed.write(InventoryChanged { entity, player: player.id });
        let mut e = commands.entity(entity);
        match stash.0.remove(&player.id) {
            Some(s) => {
                let mut effects = s.effects;
                // Ended while the player was away: gone without a word (this connection never
                // heard of it).
                effects.expire(tick.tick, |_| {});
                // The client learns the effects it still has as it joins.
                for active in &effects.0 {
                    effect_outcomes.write(EffectOutcome::Started {
                        player: player.id,
                        request: None,
                        effect: active.id.clone(),
                        stacks: active.stacks,
                        expires_at: active.expires_at,
                    });
                }
                e.insert((s.inventory, s.pending, s.digging, effects, s.pity, SenseState::default()));
                if let Some(team) = s.team {
                    e.insert(team);
                }
            }
            None => {
                e.insert((
                    Inventory::with_slots(rules.inventory_slots),
                    PendingRewards::default(),
                    Digging::default(),
                    ActiveEffects::default(),
                    PityCounters::default(),
                    SenseState::default(),
                ));
            }
        }
    }
}

/// Parks a leaving player's hunt state, to give it back if it returns.
#[allow(clippy::type_complexity)]
fn stash_leaving_player(
    event: On<Remove<Player>>,
    players: Query<(&Player, &Inventory, &PendingRewards, &Digging, Option<&Team>, &ActiveEffects, &PityCounters)>,
    mut stash: ResMut<Stash>,
) {
    if let Ok((player, inventory, pending, digging, team, effects, pity)) = players.get(event.event().entity) {
        stash.0.insert(
            player.id,
            Stashed {
                inventory: inventory.clone(),
                pending: pending.clone(),
                digging: digging.clone(),
                team: team.cloned(),
                effects: effects.clone(),
                pity: pity.clone(),
            },
        );
    }
}

/// Joins or leaves teams.
pub fn change_team(
    mut commands: Commands,
    mut requests: MessageReader<TeamRequest>,
    mut out: MessageWriter<TeamOutcome>,
) {
    for r in requests.read() {
        let team = r.team.trim();
        if team.is_empty() {
            commands.entity(r.entity).remove::<Team>();
            out.write(TeamOutcome::Joined { player: r.player, request: r.request, team: None });
        } else if veltrix_sdk::protocol::valid_player_name(team) {
            commands.entity(r.entity).insert(Team(team.to_string()));
            out.write(TeamOutcome::Joined { player: r.player, request: r.request, team: Some(team.to_string()) });
        } else {
            out.write(TeamOutcome::Refused(Refused {
                player: r.player,
                request: r.request,
                reason: format!("{team:?} is not a team name: use 1 to 16 letters, digits or _").into(),
            }));
        }
    }
}

/// Adds each dig's effort to its vault; reports progress, refusals, and finished digs.
#[allow(clippy::too_many_arguments)]
pub fn dig(
    mut requests: MessageReader<DigRequest>,
    rules: Res<HuntRules>,
    hunt: Option<Res<ActiveHunt>>,
    index: Res<VaultIndex>,
    tiles: Res<TileWorld>,
    tick: Res<TickInfo>,
    mut diggers: Query<(&Position, &mut Digging, Option<&Team>, Option<&ActiveEffects>)>,
    vaults: Query<(&Vault, &VaultClaims)>,
    assets: Res<AssetsInForce>,
    health: Option<Res<StoreHealth>>,
    runs: Option<Res<HuntRuns>>,
    mut out: MessageWriter<DigOutcome>,
) {
    let writable = health.is_none_or(|h| h.writable);
    for (arrival, r) in requests.read().enumerate() {
        let refuse = |reason: Reason| DigOutcome::Refused(Refused { player: r.player, request: r.request, reason });
        let Ok((position, mut digging, team, active)) = diggers.get_mut(r.entity) else { continue };
        if hunt.is_none() {
            let ended = runs
                .as_ref()
                .and_then(|r| r.0.iter().filter(|(_, run)| run.ended_ms.is_some()).max_by_key(|(_, run)| run.ended_ms));
            out.write(refuse(match ended {
                Some((id, _)) => format!("the hunt {id} is over: nothing to dig for until the next one starts").into(),
                None => "no hunt is running: there is nothing to dig for yet".into(),
            }));
            continue;
        }
        if !writable {
            out.write(refuse(StoreHealth::REFUSAL.into()));
            continue;
        }
        if digging.last_dig_tick == Some(tick.tick) {
            out.write(refuse("you already dug this tick: one dig per tick".into()));
            continue;
        }
        let distance = r.at.distance_to(position.x, position.y);
        if distance > rules.reach {
            out.write(refuse(Reason::OutOfReach { at: r.at, distance, reach: rules.reach }));
            continue;
        }
        match tiles.get(i64::from(r.at.x), i64::from(r.at.y)) {
            Some(Tile::Ground) => {}
            tile => {
                out.write(refuse(Reason::NotGround(r.at, tile)));
                continue;
            }
        }
        digging.last_dig_tick = Some(tick.tick);
        let Some((vault_entity, (vault, claims))) =
            index.0.get(&r.at).and_then(|e| vaults.get(*e).ok().map(|v| (*e, v)))
        else {
            out.write(refuse(Reason::NothingHere(r.at)));
            continue;
        };
        if let Some(reason) = already_claimed(&vault.0, claims, r.player, team) {
            out.write(refuse(reason.reason()));
            continue;
        }
        let speed = active.map_or(1.0, |a| a.modifiers(&assets.0.effects).dig_speed);
        let effort = digging.effort.entry(vault_entity).or_insert(0);
        *effort = effort.saturating_add(dig_effort(speed));
        let (effort, required) = (*effort, vault.0.dig_effort.saturating_mul(EFFORT_PER_DIG));
        if effort >= required {
            digging.effort.remove(&vault_entity);
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

/// Rolls each claim's loot table and grants the loot: into the inventory as far as it fits,
/// the rest into pending rewards. The claimant's luck and the table's pity (its count of the
/// claimant's claims without a rare item) boost the table's rare entries.
#[allow(clippy::type_complexity)]
pub fn grant_loot(
    mut claims: MessageReader<ClaimOutcome>,
    assets: Res<AssetsInForce>,
    hunt: Option<Res<ActiveHunt>>,
    catalog: Res<ItemCatalog>,
    mut players: Query<(&mut Inventory, &mut PendingRewards, Option<&ActiveEffects>, Option<&mut PityCounters>)>,
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
