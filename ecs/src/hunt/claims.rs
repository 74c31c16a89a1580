//! Claims and loot: who of a tick's finishers claims each vault, their loot rolled and granted,
//! and pending rewards delivered as space frees.

use std::sync::Arc;

use veltrix_sdk::{Decision, Ledger, PlayerId, bevy_ecs::system::SystemParam, key_level, prelude::*, rmp_serde};

use super::player::PityCounters;
use crate::{
    effects::ActiveEffects,
    model::assets::ClaimRule,
    model::inventory::{Inventory, ItemCatalog, PendingRewards, deliver_pending, grant},
    model::loot::{ItemStack, loot_rng},
    state::{ActiveHunt, AssetsInForce, Claimed, Team, Vault, VaultClaims, already_claimed},
    vocab::{Claim, ClaimOutcome, Claimant, DigOutcome, InventoryChanged, LootGranted, Reason, Refused},
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
///
/// On a server that shares its hunt (a [`Ledger`] exists), a claim that passes the checks here
/// is asked of the ledger instead, and made when the ledger answers that its key is this
/// server's ([`SharedClaims`]): exactly once across every server.
pub fn resolve_claims(
    mut finished: MessageReader<DigOutcome>,
    mut vaults: Query<(Entity, &Vault, &mut VaultClaims)>,
    players: Query<(Entity, &Player, Option<&Team>)>,
    mut shared: SharedClaims,
    mut out: MessageWriter<ClaimOutcome>,
) {
    if shared.ledger.is_some() {
        shared.apply_answers(&mut vaults, &players, &mut out);
        shared.apply_news(&mut vaults, &mut out);
        shared.settle(&mut vaults, &players, &mut out);
    }
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
        let Ok((_, vault, mut record)) = vaults.get_mut(vault_entity) else { continue };
        let Ok((_, who, team)) = players.get(entity) else { continue };
        if let Some(reason) = already_claimed(&vault.0, &record, player, team) {
            let reason = reason.reason();
            out.write(ClaimOutcome::Refused(Refused { player, request, reason }));
            continue;
        }
        if shared.ledger.is_some() {
            shared.ask(
                Waiting { player, entity, request, vault: vault_entity },
                vault,
                &record,
                (&who.name, team),
                &mut out,
            );
            continue;
        }
        let claimant = claimant(vault.0.claim, player, team);
        out.write(ClaimOutcome::Claimed(record_claim(
            vault,
            &mut record,
            entity,
            player,
            &who.name,
            request,
            claimant,
        )));
    }
}

/// Records a claim of `vault` by `player` (as `claimant`) and says what it is: the first, or
/// one after it (its loot from the consolation table under FirstFinderThenPerPlayer).
fn record_claim(
    vault: &Vault,
    record: &mut VaultClaims,
    entity: Entity,
    player: PlayerId,
    name: &str,
    request: Option<u32>,
    claimant: Claimant,
) -> Claim {
    let first = record.first.is_none();
    let table = match (vault.0.claim, first) {
        (ClaimRule::FirstFinderThenPerPlayer, false) => {
            vault.0.consolation_table.clone().expect("validated: FirstFinderThenPerPlayer has a consolation table")
        }
        _ => vault.0.loot_table.clone(),
    };
    if first {
        record.first = Some((player, name.to_owned()));
    }
    let inserted = record.claimed_by.insert(claimant.clone());
    debug_assert!(inserted, "a claimant claims a vault once");
    // Under Team, the member is marked as well: a team change does not claim it again.
    record.claimed_by.insert(Claimant::Player(player));
    Claim {
        entity,
        player,
        player_name: name.to_owned(),
        request,
        vault: Arc::new(vault.0.clone()),
        claimant,
        table,
        first,
    }
}

/// What the ledger holds under a claim's key: who made it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LedgerClaim {
    pub player: PlayerId,
    pub name: String,
    pub claimant: Claimant,
    /// The server and ticket of the ask that made it: an ask answered twice (asked again after
    /// its first acknowledgement was lost) knows its own value.
    pub ask: (u64, u64),
}

/// Where claims are in the ledger.
const CLAIMS: &str = "claims.";

/// The level of a claim's ledger key after the vault's: the vault's first claim, or a
/// claimant's (under PerPlayer, Team and the consolation of FirstFinderThenPerPlayer).
const FIRST: &str = "first";

/// The ledger key of a claim: `claims.<hunt>.<run>.<vault>.<first | p<name> | t<team>>`. A
/// player is named by its name, lower-cased: player ids are given by each server, names are
/// one across servers.
pub fn ledger_key(hunt: &ActiveHunt, vault: &str, who: Option<(&Claimant, &str)>) -> String {
    claim_key(CLAIMS, hunt, vault, who)
}

/// A key about a claim under `space` (`claims.`, or `scores.` for its points): see
/// [`ledger_key`].
pub fn claim_key(space: &str, hunt: &ActiveHunt, vault: &str, who: Option<(&Claimant, &str)>) -> String {
    let who = match who {
        None => FIRST.to_owned(),
        Some((Claimant::Player(_), name)) => format!("p{}", key_level(&name.to_lowercase())),
        Some((Claimant::Team(t), _)) => format!("t{}", key_level(t)),
    };
    format!("{}{}.{who}", run_prefix(space, hunt), key_level(vault))
}

/// Where the keys under `space` of the running hunt's run start: `<space><hunt>.<run>.`.
pub fn run_prefix(space: &str, hunt: &ActiveHunt) -> String {
    format!("{space}{}.{}.", key_level(&hunt.id), hunt.run)
}

/// A claim asked of the ledger, waiting for its answer.
#[derive(Debug, Clone)]
pub struct Waiting {
    player: PlayerId,
    entity: Entity,
    request: Option<u32>,
    vault: Entity,
}

/// Claims asked of the ledger, by ticket: each with whether it asked for the vault's first
/// claim, its key and its value.
#[derive(Resource, Debug, Default)]
pub struct WaitingClaims(std::collections::HashMap<u64, (Waiting, bool, String, LedgerClaim)>);

/// Claims the ledger holds for this server's players that this server did not save: it
/// stopped between the ledger's answer and its commit. Each is made (its loot granted) when
/// its player is online here; the ledger tells them again at every start until they are saved.
#[derive(Resource, Debug, Default)]
pub struct UnsettledClaims(Vec<(Entity, LedgerClaim)>);

/// Claims on a server that shares its hunt: the ledger (absent on a server alone), the claims
/// waiting for it or left unsettled, and the running hunt (its id and run name the keys).
#[derive(SystemParam)]
pub struct SharedClaims<'w> {
    ledger: Option<ResMut<'w, Ledger>>,
    waiting: ResMut<'w, WaitingClaims>,
    unsettled: ResMut<'w, UnsettledClaims>,
    hunt: Option<Res<'w, ActiveHunt>>,
}

impl SharedClaims<'_> {
    /// Asks the ledger for `claim` of `vault`: its first claim while it has none (the rules
    /// with a first finder), else the claimant's. A player already waiting for this vault is
    /// told so.
    fn ask(
        &mut self,
        claim: Waiting,
        vault: &Vault,
        record: &VaultClaims,
        (name, team): (&str, Option<&Team>),
        out: &mut MessageWriter<ClaimOutcome>,
    ) {
        let (Some(ledger), Some(hunt)) = (self.ledger.as_mut(), self.hunt.as_ref()) else { return };
        if self.waiting.0.values().any(|(w, ..)| w.vault == claim.vault && w.player == claim.player) {
            let reason = "your claim on this vault is being decided".into();
            out.write(ClaimOutcome::Refused(Refused { player: claim.player, request: claim.request, reason }));
            return;
        }
        let claimant = claimant(vault.0.claim, claim.player, team);
        let first = record.first.is_none()
            && matches!(vault.0.claim, ClaimRule::FirstFinder | ClaimRule::FirstFinderThenPerPlayer);
        let key = ledger_key(hunt, &vault.0.id, (!first).then_some((&claimant, name)));
        if !ledger.available() {
            out.write(ClaimOutcome::Refused(Refused {
                player: claim.player,
                request: claim.request,
                reason: Ledger::REFUSAL.into(),
            }));
            return;
        }
        let ask = (ledger.server(), ledger.next_ticket());
        let value = LedgerClaim { player: claim.player, name: name.to_owned(), claimant, ask };
        let ticket =
            ledger.ask_for(claim.player, key.clone(), rmp_serde::to_vec_named(&value).expect("claims serialise"));
        debug_assert_eq!(ticket, ask.1);
        self.waiting.0.insert(ticket, (claim, first, key, value));
    }

    /// The ledger's answers: a key this server created is a claim made (as locally); one held
    /// by another is a refusal, or under FirstFinderThenPerPlayer the ask for a consolation
    /// claim; a ledger that could not decide is a refusal in words.
    fn apply_answers(
        &mut self,
        vaults: &mut Query<(Entity, &Vault, &mut VaultClaims)>,
        players: &Query<(Entity, &Player, Option<&Team>)>,
        out: &mut MessageWriter<ClaimOutcome>,
    ) {
        let Some(ledger) = self.ledger.as_mut() else { return };
        let answers = ledger.take_answers_under(CLAIMS);
        for (ticket, decision) in answers {
            let Some((claim, first, _, asked)) = self.waiting.0.remove(&ticket) else { continue };
            let Ok((_, vault, mut record)) = vaults.get_mut(claim.vault) else { continue };
            let refuse = |out: &mut MessageWriter<ClaimOutcome>, reason: Reason| {
                out.write(ClaimOutcome::Refused(Refused { player: claim.player, request: claim.request, reason }));
            };
            let held = match &decision {
                Decision::Held(value) => rmp_serde::from_slice::<LedgerClaim>(value).ok(),
                _ => None,
            };
            // A key that holds this server's claim for this player is its own: this ask, asked
            // again after its acknowledgement was lost, or an ask before a restart whose claim
            // was not saved here.
            let created = matches!(decision, Decision::Created)
                || held.as_ref().is_some_and(|h| h.ask.0 == asked.ask.0 && h.player == asked.player);
            let Ok((_, who, team)) = players.get(claim.entity) else {
                if created {
                    // Decided for a player who left meanwhile: made when it is online again.
                    self.unsettled.0.push((claim.vault, asked));
                }
                continue;
            };
            match (created, decision) {
                (true, _) => {
                    let claimant = asked.claimant;
                    if record.claimed_by.contains(&claimant) {
                        continue;
                    }
                    let made = record_claim(
                        vault,
                        &mut record,
                        claim.entity,
                        claim.player,
                        &who.name,
                        claim.request,
                        claimant,
                    );
                    out.write(ClaimOutcome::Claimed(made));
                }
                (false, Decision::Held(_)) => {
                    let by_you = held.as_ref().is_some_and(|h| h.name.eq_ignore_ascii_case(&who.name));
                    if let Some(held) = held {
                        if first && record.first.is_none() {
                            out.write(ClaimOutcome::Claimed(opened_elsewhere(vault, &held)));
                        }
                        learn(&mut record, first, &held);
                    }
                    if first && vault.0.claim == ClaimRule::FirstFinderThenPerPlayer {
                        // The first claim went elsewhere: this one is for the consolation.
                        self.ask(claim, vault, &record, (&who.name, team), out);
                    } else if let Some(reason) = already_claimed(&vault.0, &record, claim.player, team) {
                        refuse(out, reason.reason());
                    } else if by_you {
                        // On another server: its claims count here through the ledger only.
                        refuse(out, Claimed::ByYou.reason());
                    } else {
                        refuse(out, "already claimed".into());
                    }
                }
                (false, _) => refuse(out, Ledger::REFUSAL.into()),
            }
        }
    }

    /// Claims other servers made: their vaults' records learn them, and a vault's first claim
    /// is told here as theirs (no loot: its player is not on this server), so players near the
    /// vault on every server see it opened, and the clues and ends that follow a claim follow.
    fn apply_news(
        &mut self,
        vaults: &mut Query<(Entity, &Vault, &mut VaultClaims)>,
        out: &mut MessageWriter<ClaimOutcome>,
    ) {
        let (Some(ledger), Some(hunt)) = (self.ledger.as_mut(), self.hunt.as_ref()) else { return };
        let news = ledger.take_news_under(CLAIMS);
        if news.is_empty() {
            return;
        }
        let prefix = run_prefix(CLAIMS, hunt);
        for news in news {
            // This server's own ask: its answer decides.
            if self.waiting.0.values().any(|(_, _, key, _)| *key == news.key) {
                continue;
            }
            let Some(rest) = news.key.strip_prefix(&prefix) else { continue };
            let Some((vault_level, who)) = rest.rsplit_once('.') else { continue };
            let Ok(held) = rmp_serde::from_slice::<LedgerClaim>(&news.value) else { continue };
            let Some((vault_entity, vault, mut record)) =
                vaults.iter_mut().find(|(_, v, _)| key_level(&v.0.id) == vault_level)
            else {
                continue;
            };
            let first = who == FIRST;
            if held.ask.0 == ledger.server() {
                // This server's own claim, decided before it last stopped: saved here, or not.
                let saved = record.claimed_by.contains(&Claimant::Player(held.player));
                if !saved && !self.unsettled.0.iter().any(|(v, h)| *v == vault_entity && h.ask == held.ask) {
                    veltrix_sdk::tracing::warn!(
                        "the claim of vault {} by {} was decided for this server before it stopped, and not saved \
                         here: it is made when {} is next online",
                        vault.0.id,
                        held.name,
                        held.name
                    );
                    self.unsettled.0.push((vault_entity, held));
                }
                continue;
            }
            let opened = first && record.first.is_none();
            learn(&mut record, first, &held);
            if opened {
                out.write(ClaimOutcome::Claimed(opened_elsewhere(vault, &held)));
            }
        }
    }

    /// Makes the unsettled claims whose players are online: as if just answered, without a
    /// request.
    fn settle(
        &mut self,
        vaults: &mut Query<(Entity, &Vault, &mut VaultClaims)>,
        players: &Query<(Entity, &Player, Option<&Team>)>,
        out: &mut MessageWriter<ClaimOutcome>,
    ) {
        if self.unsettled.0.is_empty() {
            return;
        }
        self.unsettled.0.retain(|(vault, held)| {
            let Some((entity, who, _)) = players.iter().find(|(_, p, _)| p.id == held.player) else { return true };
            let Ok((_, vault, mut record)) = vaults.get_mut(*vault) else { return false };
            if !record.claimed_by.contains(&held.claimant) {
                let claim =
                    record_claim(vault, &mut record, entity, held.player, &who.name, None, held.claimant.clone());
                out.write(ClaimOutcome::Claimed(claim));
            }
            false
        });
    }
}

/// The first claim of `vault`, made on another server: told here as a claim whose player is
/// not on this server (no entity, no loot: [`Claim::made_elsewhere`]).
fn opened_elsewhere(vault: &Vault, held: &LedgerClaim) -> Claim {
    Claim {
        entity: Entity::PLACEHOLDER,
        player: held.player,
        player_name: held.name.clone(),
        request: None,
        vault: Arc::new(vault.0.clone()),
        claimant: held.claimant.clone(),
        table: vault.0.loot_table.clone(),
        first: true,
    }
}

/// A vault's record learns a claim the ledger holds, made elsewhere. A team's claim counts
/// here; a player's does not (its id is another server's), the ledger's key for it refuses
/// that player again.
fn learn(record: &mut VaultClaims, first: bool, held: &LedgerClaim) {
    if first && record.first.is_none() {
        record.first = Some((held.player, held.name.clone()));
    }
    if let Claimant::Team(_) = held.claimant {
        record.claimed_by.insert(held.claimant.clone());
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
