//! Claims and loot: who of a tick's finishers claims each vault, their loot rolled and granted,
//! and pending rewards delivered as space frees.

use std::sync::Arc;

use veltrix_sdk::{Decision, Ledger, PlayerId, bevy_ecs::system::SystemParam, key_level, prelude::*, rmp_serde};

use super::player::{ClaimsMade, PityCounters};
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

/// A dig that finished a vault, as claims are decided: its arrival, player, the player's entity,
/// request, and the vault.
type Finisher = (u32, PlayerId, Entity, Option<u32>, Entity);

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
    mut claims: Local<Vec<Finisher>>,
) {
    if shared.ledger.is_some() {
        shared.apply_answers(&mut vaults, &players, &mut out);
        shared.apply_news(&mut vaults, &mut out);
        shared.make_unmade(&mut vaults, &players, &mut out);
    }
    // Kept from tick to tick with its room: a vault's opening allocates less on the tick.
    claims.extend(finished.read().filter_map(|o| match o {
        DigOutcome::Finished { arrival, entity, player, request, vault } => {
            Some((*arrival, *player, *entity, *request, *vault))
        }
        _ => None,
    }));
    claims.sort_by_key(|(arrival, player, ..)| (*arrival, *player));
    for (_, player, entity, request, vault_entity) in claims.drain(..) {
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
    let table = claim_table(vault, first);
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
        vault: Arc::clone(&vault.0),
        claimant,
        table,
        first,
        opening_told: false,
    }
}

/// The table a claim of `vault` rolls: its loot table, or after the first claim the consolation
/// table under FirstFinderThenPerPlayer.
fn claim_table(vault: &Vault, first: bool) -> String {
    match (vault.0.claim, first) {
        (ClaimRule::FirstFinderThenPerPlayer, false) => {
            vault.0.consolation_table.clone().expect("validated: FirstFinderThenPerPlayer has a consolation table")
        }
        _ => vault.0.loot_table.clone(),
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
        Some((Claimant::Player(_), name)) => player_level(name),
        Some((Claimant::Team(t), _)) => team_level(t),
    };
    format!("{}{}.{who}", run_prefix(space, hunt), key_level(vault))
}

/// A player's claims' last level: `p` and its name, lower-cased.
fn player_level(name: &str) -> String {
    format!("p{}", key_level(&name.to_lowercase()))
}

/// A team's claims' last level: `t` and its name.
fn team_level(team: &str) -> String {
    format!("t{}", key_level(team))
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

/// Claims the ledger holds that may not be made yet, by their players' lower-cased names: each
/// is made (its loot granted) on the shard where its player is online, unless the player's
/// [`ClaimsMade`] has it. A claim is normally made by the shard that asked for it as the answer
/// comes; one is left here when that shard stopped between the answer and its commit, or when
/// its player left that shard first (taken over elsewhere).
///
/// Kept here: the claims of the players online here, and each vault's first claim (one per
/// vault a run), until made or found made. A player's and a team's other claims are let pass
/// while their player is elsewhere, and read from the ledger when it joins ([`joined`]): kept
/// all, they would grow with players times vaults on every shard.
///
/// [`joined`]: UnmadeClaims::joined
#[derive(Resource, Debug, Default)]
pub struct UnmadeClaims {
    by_name: std::collections::HashMap<String, Vec<Unmade>>,
    /// The players online here, by lower-cased name (checked against the player on use: one who
    /// left is dropped then, with its claims but the first ones).
    online: std::collections::HashMap<String, Entity>,
    /// Names to look at this tick: their claims came, or their player did.
    to_check: Vec<String>,
}

impl UnmadeClaims {
    /// Forgets every claim: a new run's keys are other keys.
    pub fn clear(&mut self) {
        self.by_name.clear();
        self.to_check.clear();
    }

    /// A player joined (on a server that shares its hunt): its claims kept here are looked at
    /// once it is equipped, and those of the running hunt's run under its name and its team's
    /// name are read from the ledger (they come as news, and are kept: it is online).
    pub(super) fn joined(
        &mut self,
        (entity, name, team): (Entity, &str, Option<&Team>),
        ledger: &mut Ledger,
        hunt: Option<&ActiveHunt>,
    ) {
        let lower = name.to_lowercase();
        self.online.insert(lower.clone(), entity);
        self.to_check.push(lower);
        let Some(hunt) = hunt else { return };
        let run = run_prefix(CLAIMS, hunt);
        ledger.read(format!("{run}*.{}", player_level(name)));
        if let Some(team) = team {
            ledger.read(format!("{run}*.{}", team_level(&team.0)));
        }
    }

    /// How many claims are kept.
    pub fn kept(&self) -> usize {
        self.by_name.values().map(Vec::len).sum()
    }

    /// Whether a claim the ledger tells of is kept: see [`UnmadeClaims`].
    fn keeps(&self, first: bool, held: &LedgerClaim) -> bool {
        first || self.online.contains_key(&held.name.to_lowercase())
    }

    /// A player not online here: its claims but the first ones are let pass (read again at its
    /// next join).
    fn gone(&mut self, name: &str) {
        self.online.remove(name);
        if let Some(claims) = self.by_name.get_mut(name) {
            claims.retain(|u| u.first);
            if claims.is_empty() {
                self.by_name.remove(name);
            }
        }
    }

    fn add(&mut self, unmade: Unmade) {
        if !self.keeps(unmade.first, &unmade.held) {
            return;
        }
        let name = unmade.held.name.to_lowercase();
        let claims = self.by_name.entry(name.clone()).or_default();
        if !claims.iter().any(|u| u.held.ask == unmade.held.ask) {
            claims.push(unmade);
        }
        self.to_check.push(name);
    }
}

/// A claim the ledger holds, as [`UnmadeClaims`] keeps it.
#[derive(Debug, Clone)]
struct Unmade {
    vault: Entity,
    /// Whether its key is the vault's first claim.
    first: bool,
    held: LedgerClaim,
}

/// Claims on a server that shares its hunt: the ledger (absent on a server alone), the claims
/// waiting for it or not made yet, the claims each player online has had made, and the running
/// hunt (its id and run name the keys).
#[derive(SystemParam)]
pub struct SharedClaims<'w, 's> {
    ledger: Option<ResMut<'w, Ledger>>,
    waiting: ResMut<'w, WaitingClaims>,
    unmade: ResMut<'w, UnmadeClaims>,
    made: Query<'w, 's, &'static mut ClaimsMade>,
    hunt: Option<Res<'w, ActiveHunt>>,
}

impl SharedClaims<'_, '_> {
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
        // The first claim made on another shard is known here by its player's name only (ids
        // are each server's): its finder claims no consolation on this one either.
        if vault.0.claim == ClaimRule::FirstFinderThenPerPlayer
            && record.first.as_ref().is_some_and(|(_, first)| first.eq_ignore_ascii_case(name))
        {
            out.write(ClaimOutcome::Refused(Refused {
                player: claim.player,
                request: claim.request,
                reason: Claimed::ByYou.reason(),
            }));
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
                    // Decided for a player who left meanwhile (taken over by another shard
                    // while this one was cut off): made where it is online.
                    self.unmade.add(Unmade { vault: claim.vault, first, held: asked });
                }
                continue;
            };
            // A claim of this player's kept while this one was asked is looked at again.
            let name = who.name.to_lowercase();
            if self.unmade.by_name.contains_key(&name) {
                self.unmade.to_check.push(name);
            }
            match (created, decision) {
                (true, _) => {
                    // The ask the ledger's value names: this one's, or one before a restart.
                    let ask = held.as_ref().map_or(asked.ask, |h| h.ask);
                    if let Ok(mut made) = self.made.get_mut(claim.entity)
                        && let Some(asks) = &mut made.0
                        && !asks.contains(&ask)
                    {
                        asks.push(ask);
                    }
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

    /// Claims the ledger tells of (made by other shards, or by this one before it last
    /// stopped): their vaults' records learn them, and a vault's first claim is told here as
    /// made elsewhere (no loot: its player is not on this server), so players near the vault on
    /// every server see it opened, and the clues and ends that follow a claim follow. Each is
    /// also kept until its player is online here, if [`UnmadeClaims`] keeps it.
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
            let opened = first && record.first.is_none();
            learn(&mut record, first, &held);
            if opened {
                out.write(ClaimOutcome::Claimed(opened_elsewhere(vault, &held)));
            }
            self.unmade.add(Unmade { vault: vault_entity, first, held });
        }
    }

    /// Makes the claims of the players looked at this tick that are online here and not made for
    /// them yet: as if just answered, without a request, the vault's opening not told again where
    /// it was. A player whose records were written before [`ClaimsMade`] was kept counts every
    /// claim the ledger holds for it as made.
    fn make_unmade(
        &mut self,
        vaults: &mut Query<(Entity, &Vault, &mut VaultClaims)>,
        players: &Query<(Entity, &Player, Option<&Team>)>,
        out: &mut MessageWriter<ClaimOutcome>,
    ) {
        let mut to_check = std::mem::take(&mut self.unmade.to_check);
        to_check.sort_unstable();
        to_check.dedup();
        let mut later = Vec::new();
        for name in to_check.drain(..) {
            let Some(&entity) = self.unmade.online.get(&name) else {
                self.unmade.gone(&name);
                continue;
            };
            let Some((_, who, _)) = players.get(entity).ok().filter(|(_, p, _)| p.name.to_lowercase() == name) else {
                self.unmade.gone(&name);
                continue;
            };
            let Some(claims) = self.unmade.by_name.get_mut(&name) else { continue };
            let Ok(mut made) = self.made.get_mut(entity) else {
                // Joined this tick, not equipped yet.
                later.push(name);
                continue;
            };
            let Some(asks) = &mut made.0 else {
                veltrix_sdk::tracing::info!(
                    "{}: records from before claims made were kept in them; the {} claim(s) the ledger holds for \
                     this player count as made",
                    who.name,
                    claims.len()
                );
                made.0 = Some(claims.drain(..).map(|u| u.held.ask).collect());
                self.unmade.by_name.remove(&name);
                continue;
            };
            let waiting = &self.waiting.0;
            claims.retain(|unmade| {
                if asks.contains(&unmade.held.ask) {
                    return false;
                }
                // This player's claim of this vault asked here and not answered yet: the answer
                // makes it.
                if waiting.values().any(|(w, ..)| w.vault == unmade.vault && w.entity == entity) {
                    return true;
                }
                let Ok((_, vault, mut record)) = vaults.get_mut(unmade.vault) else { return false };
                veltrix_sdk::tracing::info!(
                    "the claim of vault {} by {} was decided for a server that did not save it: made here",
                    vault.0.id,
                    who.name
                );
                asks.push(unmade.held.ask);
                out.write(ClaimOutcome::Claimed(make_decided(vault, &mut record, entity, who, unmade)));
                false
            });
            if claims.is_empty() {
                self.unmade.by_name.remove(&name);
            }
        }
        to_check.append(&mut later);
        self.unmade.to_check = to_check;
    }
}

/// A claim the ledger decided, made for `who` (online here, as `entity`): recorded in the
/// vault's record, its loot from the table its key says (the first claim's, or after it the
/// consolation under FirstFinderThenPerPlayer); the vault's opening told only where it was not.
fn make_decided(vault: &Vault, record: &mut VaultClaims, entity: Entity, who: &Player, unmade: &Unmade) -> Claim {
    let opening_told = unmade.first && record.first.is_some();
    if unmade.first && record.first.is_none() {
        record.first = Some((who.id, who.name.clone()));
    }
    record.claimed_by.insert(unmade.held.claimant.clone());
    record.claimed_by.insert(Claimant::Player(who.id));
    Claim {
        entity,
        player: who.id,
        player_name: who.name.clone(),
        request: None,
        vault: Arc::clone(&vault.0),
        claimant: unmade.held.claimant.clone(),
        table: claim_table(vault, unmade.first),
        first: unmade.first,
        opening_told,
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
        vault: Arc::clone(&vault.0),
        claimant: held.claimant.clone(),
        table: vault.0.loot_table.clone(),
        first: true,
        opening_told: false,
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
