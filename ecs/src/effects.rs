//! Active effects: granted by using an item (`UseItem`), by hunt events or by a command, they
//! change their holder's [`Modifiers`] (movement speed, dig speed, treasure sense, luck) until
//! they run out.
//!
//! Durations are counted in ticks: an effect granted in tick `T` for `S` seconds ends in tick
//! `T + round(S * rate)` (at least one tick later). In that tick, before anything else of the
//! hunt's input, it is gone: its modifiers apply in ticks `T` to `T + round(S * rate) - 1`, and
//! an [`EffectOutcome::Ended`] is written in the tick it ends.
//!
//! A grant of an effect already active follows its [`Stacking`]: `Refresh` starts the duration
//! over, `Stack` adds a stack (up to `MaxStacks`) and starts the duration over for all stacks
//! (they end together), `Ignore` does nothing. Stacks and effects combine: factors
//! (`MoveSpeed`, `DigSpeed`) multiply, `TreasureSense` and `Luck` add.
//!
//! The clock runs in ticks of the server: within one run an effect ends on its tick whether its
//! holder is online or not (a player who comes back after that finds it gone). Across a restart
//! the ticks left when the server stopped are kept and count on from the first tick after.
//!
//! Systems, in [`HuntSet::Input`](crate::vocab::HuntSet), in this order: [`expire_effects`],
//! [`use_items`], [`apply_effect_grants`], [`sync_speed_factor`] (then the hunt's `dig` reads
//! the modifiers); [`sense_treasure`] in `HuntSet::Deliver`. Anything may write an
//! [`EffectGrant`]: written before `apply_effect_grants` runs, it applies in the same tick;
//! after, in the next. Commands call [`grant_now`].

use veltrix_sdk::{
    PlayerId, SpeedFactor, StoreHealth,
    bevy_ecs::{self, message::Message, system::SystemParam},
    prelude::*,
};

use crate::{
    model::assets::{Effect, Stacking},
    model::inventory::Inventory,
    state::{AssetsInForce, Team, Vault, VaultClaims, already_claimed},
    vocab::{InventoryChanged, Reason, Refused},
};

/// One effect on a player: its id, its stacks, and the tick it ends in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveEffect {
    pub id: String,
    pub stacks: u32,
    /// The tick in which the effect is gone.
    pub expires_at: u64,
}

/// A player's active effects, sorted by id.
#[derive(Component, Debug, Clone, Default, PartialEq, Eq)]
pub struct ActiveEffects(pub Vec<ActiveEffect>);

/// What a player's active effects add up to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Modifiers {
    /// Multiplies movement speed.
    pub move_speed: f32,
    /// Multiplies the effort of each dig.
    pub dig_speed: f32,
    /// Radius in tiles within which the holder senses vaults it may claim (0: none).
    pub treasure_sense: f32,
    /// Added to 1, multiplies the weights of rare loot entries.
    pub luck: f32,
}

impl Default for Modifiers {
    fn default() -> Self {
        Self { move_speed: 1.0, dig_speed: 1.0, treasure_sense: 0.0, luck: 0.0 }
    }
}

impl ActiveEffects {
    /// The effect `id`, when active.
    pub fn get(&self, id: &str) -> Option<&ActiveEffect> {
        self.0.binary_search_by(|e| e.id.as_str().cmp(id)).ok().map(|i| &self.0[i])
    }

    /// The modifiers of the active effects (per the definitions in `effects`; an effect no
    /// longer defined changes nothing).
    pub fn modifiers(&self, effects: &std::collections::BTreeMap<String, Effect>) -> Modifiers {
        let mut m = Modifiers::default();
        for active in &self.0 {
            let Some(def) = effects.get(&active.id) else { continue };
            let stacks = active.stacks.max(1);
            m.move_speed *= def.move_speed.powi(stacks as i32);
            m.dig_speed *= def.dig_speed.powi(stacks as i32);
            m.treasure_sense += def.treasure_sense * stacks as f32;
            m.luck += def.luck * stacks as f32;
        }
        m
    }

    /// Applies a grant of `def` (`id`) in tick `now`, lasting `ticks`: what it did.
    pub fn grant(&mut self, id: &str, def: &Effect, now: u64, ticks: u64) -> GrantResult {
        let expires_at = now + ticks.max(1);
        match self.0.binary_search_by(|e| e.id.as_str().cmp(id)) {
            Err(at) => {
                self.0.insert(at, ActiveEffect { id: id.to_string(), stacks: 1, expires_at });
                GrantResult::Started { stacks: 1, expires_at }
            }
            Ok(at) => {
                let active = &mut self.0[at];
                match def.stacking {
                    Stacking::Ignore => GrantResult::Ignored { stacks: active.stacks, expires_at: active.expires_at },
                    Stacking::Refresh => {
                        active.expires_at = expires_at;
                        GrantResult::Refreshed { stacks: active.stacks, expires_at }
                    }
                    Stacking::Stack => {
                        active.stacks = (active.stacks + 1).min(def.max_stacks.unwrap_or(1).max(1));
                        active.expires_at = expires_at;
                        GrantResult::Stacked { stacks: active.stacks, expires_at }
                    }
                }
            }
        }
    }

    /// Removes the effects that end in tick `now` (or before), calling `ended` with each id.
    pub fn expire(&mut self, now: u64, mut ended: impl FnMut(&str)) {
        self.0.retain(|e| {
            let keep = e.expires_at > now;
            if !keep {
                ended(&e.id);
            }
            keep
        });
    }
}

/// What a grant did to the effect: its stacks and end tick after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantResult {
    Started { stacks: u32, expires_at: u64 },
    Refreshed { stacks: u32, expires_at: u64 },
    Stacked { stacks: u32, expires_at: u64 },
    Ignored { stacks: u32, expires_at: u64 },
}

/// The ticks an effect lasts: `seconds` at `rate` ticks per second, rounded, at least one.
pub fn duration_ticks(seconds: f32, rate: u32) -> u64 {
    (f64::from(seconds) * f64::from(rate)).round().max(1.0) as u64
}

/// When a holder of treasure sense last heard how many vaults it senses.
#[derive(Component, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenseState {
    /// The count last sent; `None` before the first (or after the sense ran out).
    pub last: Option<u32>,
}

// ---- input messages ----

/// Grants an effect to a player (anything may write it: `use_items`, hunt events, ...).
#[derive(Message, Debug, Clone, PartialEq)]
pub struct EffectGrant {
    pub entity: Entity,
    pub player: PlayerId,
    /// The effect's id (`TreasureHunt/Effects/<Id>.json`).
    pub effect: String,
    /// A duration instead of the effect's `DurationSeconds`.
    pub seconds: Option<f32>,
    /// The request it answers.
    pub request: Option<u32>,
}

/// A player uses one of an item it holds (consumed when the item has an effect).
#[derive(Message, Debug, Clone, PartialEq)]
pub struct UseItemRequest {
    pub entity: Entity,
    pub player: PlayerId,
    pub request: Option<u32>,
    pub item: String,
}

// ---- outcome messages ----

/// What happened to a player's effect.
#[derive(Message, Debug, Clone, PartialEq)]
pub enum EffectOutcome {
    /// The effect was not active and now is (also sent for the effects a player finds active
    /// as it joins, without a request).
    Started {
        player: PlayerId,
        request: Option<u32>,
        effect: String,
        stacks: u32,
        expires_at: u64,
    },
    /// Granted again: the duration started over.
    Refreshed {
        player: PlayerId,
        request: Option<u32>,
        effect: String,
        stacks: u32,
        expires_at: u64,
    },
    /// Granted again: one more stack (unless at the most), the duration started over.
    Stacked {
        player: PlayerId,
        request: Option<u32>,
        effect: String,
        stacks: u32,
        expires_at: u64,
    },
    /// Granted again to an `Ignore` effect: nothing changed.
    Ignored {
        player: PlayerId,
        request: Option<u32>,
        effect: String,
        stacks: u32,
        expires_at: u64,
    },
    /// The effect ran out this tick.
    Ended {
        player: PlayerId,
        effect: String,
    },
    Refused(Refused),
}

impl EffectOutcome {
    fn of(result: GrantResult, player: PlayerId, request: Option<u32>, effect: String) -> Self {
        match result {
            GrantResult::Started { stacks, expires_at } => {
                EffectOutcome::Started { player, request, effect, stacks, expires_at }
            }
            GrantResult::Refreshed { stacks, expires_at } => {
                EffectOutcome::Refreshed { player, request, effect, stacks, expires_at }
            }
            GrantResult::Stacked { stacks, expires_at } => {
                EffectOutcome::Stacked { player, request, effect, stacks, expires_at }
            }
            GrantResult::Ignored { stacks, expires_at } => {
                EffectOutcome::Ignored { player, request, effect, stacks, expires_at }
            }
        }
    }
}

/// How many vaults the player may still claim lie within its treasure sense (never where).
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreasurePing {
    pub player: PlayerId,
    pub vaults: u32,
}

/// Registers the effects' messages (the hunt's `register` calls this).
pub fn register(world: &mut World) {
    use veltrix_sdk::bevy_ecs::message::MessageRegistry;
    MessageRegistry::register_message::<EffectGrant>(world);
    MessageRegistry::register_message::<UseItemRequest>(world);
    MessageRegistry::register_message::<EffectOutcome>(world);
    MessageRegistry::register_message::<TreasurePing>(world);
}

/// Tick, first of the hunt's input: removes the effects that end in this tick.
pub fn expire_effects(
    tick: Res<TickInfo>,
    mut players: Query<(&Player, &mut ActiveEffects)>,
    mut out: MessageWriter<EffectOutcome>,
) {
    for (player, mut effects) in &mut players {
        // Only touched (and so saved) when something ends.
        if !effects.0.iter().any(|e| e.expires_at <= tick.tick) {
            continue;
        }
        effects.expire(tick.tick, |id| {
            out.write(EffectOutcome::Ended { player: player.id, effect: id.to_string() });
        });
    }
}

/// What using items writes: the effects granted, the outcomes (refusals), and the inventories
/// changed.
#[derive(SystemParam)]
pub struct UseOutcomes<'w> {
    grants: MessageWriter<'w, EffectGrant>,
    out: MessageWriter<'w, EffectOutcome>,
    changed: MessageWriter<'w, InventoryChanged>,
}

/// Uses items: one of the item is consumed and its effect granted; refused when the player
/// holds none, the item has no effect, or its `Ignore` effect is active (nothing consumed).
pub fn use_items(
    mut requests: MessageReader<UseItemRequest>,
    assets: Res<AssetsInForce>,
    tick: Res<TickInfo>,
    health: Option<Res<StoreHealth>>,
    mut players: Query<(&mut Inventory, &ActiveEffects)>,
    outcomes: UseOutcomes,
) {
    let UseOutcomes { mut grants, mut out, mut changed } = outcomes;
    let writable = health.is_none_or(|h| h.writable);
    for r in requests.read() {
        let refuse = |reason: Reason| EffectOutcome::Refused(Refused { player: r.player, request: r.request, reason });
        let Ok((mut inventory, active)) = players.get_mut(r.entity) else { continue };
        if !writable {
            out.write(refuse(StoreHealth::REFUSAL.into()));
            continue;
        }
        if inventory.count(&r.item) == 0 {
            out.write(refuse(format!("you hold no {}", r.item).into()));
            continue;
        }
        let Some(effect) = assets.0.items.get(&r.item).and_then(|i| i.effect.as_ref()) else {
            out.write(refuse(format!("{} cannot be used: it has no effect", r.item).into()));
            continue;
        };
        if let (Some(def), Some(running)) = (assets.0.effects.get(effect), active.get(effect))
            && def.stacking == Stacking::Ignore
        {
            let left = running.expires_at.saturating_sub(tick.tick) as f64 / f64::from(tick.rate);
            out.write(refuse(
                format!(
                    "{effect} is already active (ends in {left:.1} s): using another {} now would be wasted",
                    r.item
                )
                .into(),
            ));
            continue;
        }
        let taken = inventory.remove(&r.item, 1);
        debug_assert_eq!(taken, 1);
        changed.write(InventoryChanged { entity: r.entity, player: r.player });
        grants.write(EffectGrant {
            entity: r.entity,
            player: r.player,
            effect: effect.clone(),
            seconds: None,
            request: r.request,
        });
    }
}

/// Applies this tick's grants, in the order written.
pub fn apply_effect_grants(
    mut grants: MessageReader<EffectGrant>,
    assets: Res<AssetsInForce>,
    tick: Res<TickInfo>,
    mut players: Query<&mut ActiveEffects>,
    mut out: MessageWriter<EffectOutcome>,
) {
    for g in grants.read() {
        let Ok(mut effects) = players.get_mut(g.entity) else { continue };
        match grant(&mut effects, &assets, *tick, &g.effect, g.seconds) {
            Ok(result) => {
                out.write(EffectOutcome::of(result, g.player, g.request, g.effect.clone()));
            }
            Err(reason) => {
                out.write(EffectOutcome::Refused(Refused {
                    player: g.player,
                    request: g.request,
                    reason: reason.into(),
                }));
            }
        }
    }
}

fn grant(
    effects: &mut ActiveEffects,
    assets: &AssetsInForce,
    tick: TickInfo,
    id: &str,
    seconds: Option<f32>,
) -> Result<GrantResult, String> {
    let Some(def) = assets.0.effects.get(id) else {
        let known: Vec<&str> = assets.0.effects.keys().map(String::as_str).collect();
        return Err(match veltrix_sdk::did_you_mean(id, &known) {
            Some(hint) => format!("no effect \"{id}\" in the pack (did you mean \"{hint}\"?)"),
            None => format!("no effect \"{id}\" in the pack"),
        });
    };
    let seconds = seconds.unwrap_or(def.duration_seconds);
    if !(seconds > 0.0 && seconds.is_finite()) {
        return Err(format!("expected a duration of more than 0 seconds, not {seconds}"));
    }
    Ok(effects.grant(id, def, tick.tick, duration_ticks(seconds, tick.rate)))
}

/// Grants `effect` to the player `entity` at once (for commands, between or within ticks):
/// the tick's [`TickInfo`] is the grant's tick, and the player hears of it with the next
/// tick's messages. Returns what it did, in a sentence, or why it could not.
pub fn grant_now(world: &mut World, entity: Entity, effect: &str, seconds: Option<f32>) -> Result<String, String> {
    let Some(player) = world.get::<Player>(entity).map(|p| p.id) else {
        return Err("no such player online".into());
    };
    let tick = *world.resource::<TickInfo>();
    let assets = world.resource::<AssetsInForce>().clone();
    let Some(mut effects) = world.get_mut::<ActiveEffects>(entity) else {
        return Err("the player has not joined the hunt yet: try again next tick".into());
    };
    let result = grant(&mut effects, &assets, tick, effect, seconds)?;
    let ticks_left = |expires_at: u64| expires_at - tick.tick;
    let text = match result {
        GrantResult::Started { expires_at, .. } => format!("{effect} started, for {} ticks", ticks_left(expires_at)),
        GrantResult::Refreshed { expires_at, .. } => {
            format!("{effect} refreshed, for {} ticks", ticks_left(expires_at))
        }
        GrantResult::Stacked { stacks, expires_at } => {
            format!("{effect} now has {stacks} stack(s), for {} ticks", ticks_left(expires_at))
        }
        GrantResult::Ignored { expires_at, .. } => {
            format!("{effect} is already active for {} more ticks: unchanged", ticks_left(expires_at))
        }
    };
    world.write_message(EffectOutcome::of(result, player, None, effect.to_string()));
    Ok(text)
}

/// Keeps each player's [`SpeedFactor`] (read by the host's movement check) equal to its
/// effects' `MoveSpeed`: when its effects change, and for everyone when a reload changed them.
pub fn sync_speed_factor(
    mut commands: Commands,
    assets: Res<AssetsInForce>,
    players: Query<(Entity, Ref<ActiveEffects>, Option<&SpeedFactor>)>,
) {
    let reloaded = assets.is_changed();
    for (entity, effects, current) in &players {
        if !reloaded && !effects.is_changed() {
            continue;
        }
        let factor = effects.modifiers(&assets.0.effects).move_speed;
        match current {
            Some(SpeedFactor(f)) if *f == factor => {}
            None if factor == 1.0 => {}
            _ => {
                commands.entity(entity).insert(SpeedFactor(factor));
            }
        }
    }
}

/// Once a second (in ticks that are a multiple of the tick rate), tells each holder of
/// treasure sense how many vaults it may still claim lie within its radius, when that count
/// differs from the last it heard. Only the count: never a position or an id.
pub fn sense_treasure(
    tick: Res<TickInfo>,
    assets: Res<AssetsInForce>,
    mut holders: Query<(&Player, &Position, &ActiveEffects, Option<&Team>, &mut SenseState)>,
    vaults: Query<(&Vault, &VaultClaims)>,
    mut out: MessageWriter<TreasurePing>,
) {
    if !tick.tick.is_multiple_of(u64::from(tick.rate)) {
        return;
    }
    for (player, position, effects, team, mut state) in &mut holders {
        if effects.0.is_empty() && state.last.is_none() {
            continue;
        }
        let radius = effects.modifiers(&assets.0.effects).treasure_sense;
        if radius <= 0.0 {
            if state.last.is_some() {
                state.last = None;
            }
            continue;
        }
        let count = vaults
            .iter()
            .filter(|(vault, claims)| {
                vault.0.at.distance_to(position.x, position.y) <= radius
                    && already_claimed(&vault.0, claims, player.id, team).is_none()
            })
            .count() as u32;
        if state.last != Some(count) {
            state.last = Some(count);
            out.write(TreasurePing { player: player.id, vaults: count });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn effect(stacking: Stacking, max_stacks: Option<u32>) -> Effect {
        Effect {
            display_name: None,
            duration_seconds: 2.0,
            stacking,
            max_stacks,
            move_speed: 1.5,
            dig_speed: 2.0,
            treasure_sense: 8.0,
            luck: 0.25,
        }
    }

    #[test]
    fn durations_round_to_whole_ticks_and_last_at_least_one() {
        assert_eq!(duration_ticks(2.0, 20), 40);
        assert_eq!(duration_ticks(0.074, 20), 1);
        assert_eq!(duration_ticks(0.076, 20), 2);
        assert_eq!(duration_ticks(0.001, 20), 1);
    }

    #[test]
    fn refresh_stack_and_ignore_grants() {
        let mut effects = ActiveEffects::default();
        let refresh = effect(Stacking::Refresh, None);
        assert_eq!(effects.grant("Swift", &refresh, 10, 40), GrantResult::Started { stacks: 1, expires_at: 50 });
        assert_eq!(effects.grant("Swift", &refresh, 30, 40), GrantResult::Refreshed { stacks: 1, expires_at: 70 });
        let stack = effect(Stacking::Stack, Some(2));
        assert_eq!(effects.grant("Lucky", &stack, 30, 40), GrantResult::Started { stacks: 1, expires_at: 70 });
        assert_eq!(effects.grant("Lucky", &stack, 31, 40), GrantResult::Stacked { stacks: 2, expires_at: 71 });
        assert_eq!(effects.grant("Lucky", &stack, 32, 40), GrantResult::Stacked { stacks: 2, expires_at: 72 });
        let ignore = effect(Stacking::Ignore, None);
        assert_eq!(effects.grant("Dowse", &ignore, 30, 40), GrantResult::Started { stacks: 1, expires_at: 70 });
        assert_eq!(effects.grant("Dowse", &ignore, 60, 40), GrantResult::Ignored { stacks: 1, expires_at: 70 });
        let ids: Vec<&str> = effects.0.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["Dowse", "Lucky", "Swift"], "sorted by id");
        // Each ends in its own tick, not before.
        let mut ended = Vec::new();
        effects.expire(69, |id| ended.push(id.to_string()));
        assert!(ended.is_empty());
        effects.expire(70, |id| ended.push(id.to_string()));
        assert_eq!(ended, ["Dowse", "Swift"]);
        effects.expire(72, |id| ended.push(id.to_string()));
        assert_eq!(ended, ["Dowse", "Swift", "Lucky"]);
        assert!(effects.0.is_empty());
    }

    #[test]
    fn modifiers_multiply_factors_and_add_sense_and_luck() {
        let mut defs = std::collections::BTreeMap::new();
        defs.insert("A".to_string(), effect(Stacking::Stack, Some(3)));
        defs.insert("B".to_string(), effect(Stacking::Refresh, None));
        let effects = ActiveEffects(vec![
            ActiveEffect { id: "A".into(), stacks: 2, expires_at: 9 },
            ActiveEffect { id: "B".into(), stacks: 1, expires_at: 9 },
            ActiveEffect { id: "Gone_From_The_Pack".into(), stacks: 1, expires_at: 9 },
        ]);
        let m = effects.modifiers(&defs);
        assert_eq!(m.move_speed, 1.5 * 1.5 * 1.5);
        assert_eq!(m.dig_speed, 8.0);
        assert_eq!(m.treasure_sense, 24.0);
        assert_eq!(m.luck, 0.75);
        assert_eq!(ActiveEffects::default().modifiers(&defs), Modifiers::default());
    }
}
