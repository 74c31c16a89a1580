//! What a simulation saw ([`Recorder`], fed each tick's outcomes) and the report made of it
//! ([`Report`]): as a table for the terminal, or as JSON for tools.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
};

use serde::Serialize;
use treasure_hunt_ecs::{
    hunt::{Claim, LootGranted},
    leaderboard::BoardEntry,
    lifecycle::EndReason,
    model::{
        assets::{ClaimRule, ClueTrigger},
        odds,
        pack::{HuntAssets, PlacedHunt},
    },
};
use veltrix_sdk::PlayerId;

use super::bots::{Bot, Kind};

/// One claim, when and by whom.
#[derive(Debug, Clone, Copy)]
pub struct ClaimEvent {
    pub tick: u64,
    pub vault: usize,
    pub player: PlayerId,
    pub first: bool,
}

/// What one loot table yielded.
#[derive(Debug, Clone, Default)]
struct TableSeen {
    claims: u32,
    /// Claims rolled with a pity boost above 1.
    boosted: u32,
    /// Of those, the claims that yielded a rare item.
    boosted_rare: u32,
    /// Per item: quantity, and the claims that yielded any.
    items: BTreeMap<String, (u64, u32)>,
}

/// The run's events, as they happen.
#[derive(Debug, Default)]
pub struct Recorder {
    pub claims: Vec<ClaimEvent>,
    tables: BTreeMap<String, TableSeen>,
    /// The tables rolled by this tick's claims, by (player, vault id), until their loot is seen.
    rolled: Vec<(PlayerId, String, String)>,
    /// Each player's claims in a row without a rare item, per table with pity.
    dry: BTreeMap<(PlayerId, String), u32>,
    /// Per clue: the tick it was released to everyone, and how many players it reached.
    pub released: Vec<Option<u64>>,
    pub reached: Vec<BTreeSet<PlayerId>>,
    pub end: Option<(u64, EndReason)>,
}

impl Recorder {
    pub fn new(hunt: &PlacedHunt) -> Self {
        Recorder {
            released: vec![None; hunt.clues.len()],
            reached: vec![BTreeSet::new(); hunt.clues.len()],
            ..Default::default()
        }
    }

    pub fn claim(&mut self, tick: u64, vault: usize, claim: &Claim) {
        self.claims.push(ClaimEvent { tick, vault, player: claim.player, first: claim.first });
        self.rolled.push((claim.player, claim.vault.id.clone(), claim.table.clone()));
    }

    /// Loot of a claim of this tick: counted against the table its claim rolled, with the
    /// claimant's pity as it was before the claim.
    pub fn loot(&mut self, assets: &HuntAssets, loot: &LootGranted) {
        let Some(i) = self.rolled.iter().position(|(p, v, _)| *p == loot.player && *v == loot.vault) else { return };
        let (_, _, table) = self.rolled.swap_remove(i);
        let seen = self.tables.entry(table.clone()).or_default();
        seen.claims += 1;
        let mut rare = false;
        for stack in loot.items.iter().chain(&loot.pending) {
            let entry = seen.items.entry(stack.item.clone()).or_default();
            entry.0 += u64::from(stack.quantity);
            rare |= assets.is_rare(&stack.item);
        }
        let mut items: Vec<&str> = loot.items.iter().chain(&loot.pending).map(|s| s.item.as_str()).collect();
        items.sort_unstable();
        items.dedup();
        for item in items {
            seen.items.get_mut(item).expect("counted above").1 += 1;
        }
        // Pity counts only for tables with pity and a rare entry, as the claim counts it.
        let pity = assets.drops.get(&table).and_then(|t| t.pity);
        let counts = assets.rare_entries.get(&table).is_some_and(|r| r.any());
        if let (Some(pity), true) = (pity, counts) {
            let dry = self.dry.entry((loot.player, table)).or_insert(0);
            if pity.boost(*dry) > 1.0 {
                seen.boosted += 1;
                seen.boosted_rare += u32::from(rare);
            }
            *dry = if rare { 0 } else { *dry + 1 };
        }
    }

    /// The end of the tick: claims whose loot was never seen (no room, no table) are dropped.
    pub fn end_tick(&mut self) {
        self.rolled.clear();
    }
}

/// The report, as `--json` prints it (times in seconds of game time from the run's start).
#[derive(Debug, Serialize)]
pub struct Report {
    pub hunt: String,
    pub name: String,
    pub players: u32,
    pub behaviours: BTreeMap<Kind, u32>,
    pub teams: Option<u32>,
    pub seed: u64,
    pub tick_rate: u32,
    pub duration_seconds: f64,
    pub played_seconds: f64,
    pub ticks: u64,
    /// How the run ended, if it did within the duration: `AllClaimed` or `TimeUp`.
    pub ended: Option<EndReason>,
    pub ended_seconds: Option<f64>,
    pub vaults: Vec<VaultRow>,
    pub never_found: Vec<String>,
    pub rules: Vec<RuleRow>,
    pub tables: Vec<TableRow>,
    pub clues: Vec<ClueRow>,
    pub leaderboard: Vec<BoardRow>,
    pub ranked_players: u32,
    pub got_nothing: Nothing,
    pub discoveries: Vec<Discovery>,
}

#[derive(Debug, Serialize)]
pub struct VaultRow {
    pub vault: String,
    pub rule: ClaimRule,
    pub x: u32,
    pub y: u32,
    pub first_found_seconds: Option<f64>,
    pub first_finder: Option<String>,
    pub claims: u32,
}

#[derive(Debug, Serialize)]
pub struct RuleRow {
    pub rule: ClaimRule,
    pub vaults: u32,
    pub found: u32,
    pub claims: u32,
}

#[derive(Debug, Serialize)]
pub struct TableRow {
    pub table: String,
    pub claims: u32,
    pub pity: Option<PityRow>,
    pub items: Vec<ItemRow>,
}

#[derive(Debug, Serialize)]
pub struct PityRow {
    pub after: u32,
    pub step: f32,
    /// Claims rolled with a pity boost, and how many of them yielded a rare item.
    pub boosted_claims: u32,
    pub boosted_rare: u32,
}

#[derive(Debug, Serialize)]
pub struct ItemRow {
    pub item: String,
    pub rare: bool,
    /// Quantity dropped, and the claims that yielded any.
    pub dropped: u64,
    pub claims_with: u32,
    /// The table's mean per claim for a fresh claimant (no luck, no pity), times the claims.
    pub expected: f64,
    /// The same over many claims of a player, with the table's pity (`expected` without pity).
    pub expected_with_pity: f64,
}

#[derive(Debug, Serialize)]
pub struct ClueRow {
    pub clue: String,
    pub kind: &'static str,
    pub trigger: String,
    pub vault: String,
    /// When it went out to everyone; none for clues asked for or released one by one.
    pub released_seconds: Option<f64>,
    /// Players it reached: everyone online at a release to all; those who came near; for a
    /// clue given on request, those who asked.
    pub reached: u32,
    /// Claims of its vault from its release (or the start) on.
    pub claims_after: u32,
}

#[derive(Debug, Serialize)]
pub struct BoardRow {
    pub rank: u32,
    pub player: String,
    pub vaults: u32,
    pub score: u64,
}

/// The players whose claims yielded no item at all (or who claimed nothing).
#[derive(Debug, Serialize)]
pub struct Nothing {
    pub players: u32,
    pub by_behaviour: BTreeMap<Kind, u32>,
}

#[derive(Debug, Serialize)]
pub struct Discovery {
    pub seconds: f64,
    pub vault: String,
    pub player: String,
    pub first: bool,
}

/// What the report is made of.
pub struct Inputs<'a> {
    pub assets: &'a HuntAssets,
    pub hunt: &'a PlacedHunt,
    pub bots: &'a [Bot],
    pub recorder: &'a Recorder,
    pub board: Vec<BoardEntry>,
    pub ranked: u32,
    pub teams: Option<u32>,
    pub seed: u64,
    pub rate: u32,
    pub duration_ticks: u64,
    pub ticks: u64,
}

impl Report {
    pub fn new(i: Inputs) -> Report {
        let secs = |tick: u64| tick as f64 / f64::from(i.rate);
        let name = |id: PlayerId| i.bots.get(id as usize - 1).map_or_else(|| format!("#{id}"), |b| b.name.clone());
        let rec = i.recorder;
        let vaults: Vec<VaultRow> = i
            .hunt
            .vaults
            .iter()
            .enumerate()
            .map(|(v, vault)| {
                let first = rec.claims.iter().find(|c| c.vault == v && c.first);
                VaultRow {
                    vault: vault.id.clone(),
                    rule: vault.claim,
                    x: vault.at.x,
                    y: vault.at.y,
                    first_found_seconds: first.map(|c| secs(c.tick)),
                    first_finder: first.map(|c| name(c.player)),
                    claims: rec.claims.iter().filter(|c| c.vault == v).count() as u32,
                }
            })
            .collect();
        let never_found = vaults.iter().filter(|v| v.claims == 0).map(|v| v.vault.clone()).collect();
        let rules =
            [ClaimRule::FirstFinder, ClaimRule::FirstFinderThenPerPlayer, ClaimRule::PerPlayer, ClaimRule::Team]
                .into_iter()
                .filter_map(|rule| {
                    let of: Vec<&VaultRow> = vaults.iter().filter(|v| v.rule == rule).collect();
                    (!of.is_empty()).then(|| RuleRow {
                        rule,
                        vaults: of.len() as u32,
                        found: of.iter().filter(|v| v.claims > 0).count() as u32,
                        claims: of.iter().map(|v| v.claims).sum(),
                    })
                })
                .collect();
        let clues = i
            .hunt
            .clues
            .iter()
            .enumerate()
            .map(|(c, clue)| {
                let from = rec.released[c].unwrap_or(0);
                let vault = i.hunt.vaults.iter().position(|v| v.id == clue.vault);
                let reached = match (&clue.trigger, rec.released[c]) {
                    (ClueTrigger::AfterSeconds(_) | ClueTrigger::VaultClaimed(_), Some(_)) => i.bots.len() as u32,
                    _ => rec.reached[c].len() as u32,
                };
                let released =
                    matches!(clue.trigger, ClueTrigger::OnRequest) || rec.released[c].is_some() || reached > 0;
                ClueRow {
                    clue: clue.id.clone(),
                    kind: clue.kind.name(),
                    trigger: trigger_words(&clue.trigger),
                    vault: clue.vault.clone(),
                    released_seconds: rec.released[c].map(secs),
                    reached,
                    claims_after: if released {
                        rec.claims.iter().filter(|e| Some(e.vault) == vault && e.tick >= from).count() as u32
                    } else {
                        0
                    },
                }
            })
            .collect();
        let mut behaviours = BTreeMap::new();
        let mut nothing = BTreeMap::new();
        for bot in i.bots {
            *behaviours.entry(bot.kind).or_insert(0) += 1;
            if bot.items == 0 {
                *nothing.entry(bot.kind).or_insert(0) += 1;
            }
        }
        Report {
            hunt: i.hunt.id.clone(),
            name: i.hunt.def.display_name.clone().unwrap_or_else(|| i.hunt.id.clone()),
            players: i.bots.len() as u32,
            behaviours,
            teams: i.teams,
            seed: i.seed,
            tick_rate: i.rate,
            duration_seconds: secs(i.duration_ticks),
            played_seconds: secs(i.ticks),
            ticks: i.ticks,
            ended: rec.end.map(|(_, reason)| reason),
            ended_seconds: rec.end.map(|(tick, _)| secs(tick)),
            vaults,
            never_found,
            rules,
            tables: tables(i.assets, rec),
            clues,
            leaderboard: i
                .board
                .iter()
                .map(|e| BoardRow { rank: e.rank, player: e.name.clone(), vaults: e.vaults, score: e.score })
                .collect(),
            ranked_players: i.ranked,
            got_nothing: Nothing { players: nothing.values().sum(), by_behaviour: nothing },
            discoveries: rec
                .claims
                .iter()
                .map(|c| Discovery {
                    seconds: secs(c.tick),
                    vault: i.hunt.vaults[c.vault].id.clone(),
                    player: name(c.player),
                    first: c.first,
                })
                .collect(),
        }
    }
}

/// Each table claimed: its items' drops against its odds.
fn tables(assets: &HuntAssets, rec: &Recorder) -> Vec<TableRow> {
    rec.tables
        .iter()
        .filter_map(|(id, seen)| {
            let table = assets.drops.get(id)?;
            let rare = assets.rare_entries.get(id).cloned().unwrap_or_default();
            let odds = odds::table_odds(table, &rare, |item| assets.is_rare(item), 0.0, 0);
            let claims = f64::from(seen.claims);
            let items = odds
                .items
                .iter()
                .map(|o| {
                    let (dropped, claims_with) = seen.items.get(&o.item).copied().unwrap_or_default();
                    ItemRow {
                        item: o.item.clone(),
                        rare: o.rare,
                        dropped,
                        claims_with,
                        expected: o.mean_quantity * claims,
                        expected_with_pity: o.long_run_mean_quantity * claims,
                    }
                })
                .collect();
            let pity = table.pity.filter(|_| rare.any()).map(|p| PityRow {
                after: p.after,
                step: p.step,
                boosted_claims: seen.boosted,
                boosted_rare: seen.boosted_rare,
            });
            Some(TableRow { table: id.clone(), claims: seen.claims, pity, items })
        })
        .collect()
}

fn trigger_words(trigger: &ClueTrigger) -> String {
    match trigger {
        ClueTrigger::OnRequest => "on request".into(),
        ClueTrigger::AfterSeconds(s) => format!("after {}", clock(f64::from(*s))),
        ClueTrigger::VaultClaimed(v) => format!("{v} claimed"),
        ClueTrigger::Enter(c) => format!("near ({}, {}) r {}", c.x, c.y, c.radius),
    }
}

/// Seconds as h:mm:ss.
pub fn clock(seconds: f64) -> String {
    let s = seconds.floor() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn rule_name(rule: ClaimRule) -> &'static str {
    match rule {
        ClaimRule::FirstFinder => "FirstFinder",
        ClaimRule::PerPlayer => "PerPlayer",
        ClaimRule::FirstFinderThenPerPlayer => "FirstFinderThenPerPlayer",
        ClaimRule::Team => "Team",
    }
}

fn percent(part: u32, whole: u32) -> String {
    if whole == 0 { "-".into() } else { format!("{:.1} %", f64::from(part) * 100.0 / f64::from(whole)) }
}

impl Report {
    /// The report as a table for the terminal.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let kinds: Vec<String> = self.behaviours.iter().map(|(k, n)| format!("{n} {}", k.name())).collect();
        let teams = self.teams.map_or_else(|| "no teams".to_string(), |k| format!("{k} teams"));
        let _ = writeln!(
            out,
            "Simulation of hunt {} ({}): {} players ({}), {teams}, seed {}.",
            self.hunt,
            self.name,
            self.players,
            kinds.join(", "),
            self.seed
        );
        let at = clock(self.ended_seconds.unwrap_or(self.played_seconds));
        let end = match self.ended {
            Some(EndReason::AllClaimed) => format!("the run ended at {at}: every FirstFinder vault was claimed"),
            Some(EndReason::TimeUp) => format!("the run ended at {at}: its time was up"),
            Some(EndReason::Stopped) => format!("the run was stopped at {at}"),
            None => "the run was still going".into(),
        };
        let _ = writeln!(
            out,
            "Played {} of {} at {} ticks per second ({} ticks); {end}.",
            clock(self.played_seconds),
            clock(self.duration_seconds),
            self.tick_rate,
            self.ticks
        );

        let found = self.vaults.len() - self.never_found.len();
        let _ = writeln!(out, "\nVaults: {found} of {} found.", self.vaults.len());
        let w = self.vaults.iter().map(|v| v.vault.len()).max().unwrap_or(5).max(5);
        let pw = self.vaults.iter().filter_map(|v| v.first_finder.as_ref().map(String::len)).max().unwrap_or(2).max(8);
        let _ = writeln!(out, "{:<w$}  {:<24}  {:>11}  {:<pw$}  {:>6}", "vault", "rule", "first found", "by", "claims");
        for v in &self.vaults {
            let _ = writeln!(
                out,
                "{:<w$}  {:<24}  {:>11}  {:<pw$}  {:>6}",
                v.vault,
                rule_name(v.rule),
                v.first_found_seconds.map_or_else(|| "never".into(), clock),
                v.first_finder.as_deref().unwrap_or("-"),
                v.claims
            );
        }
        if !self.never_found.is_empty() {
            let _ = writeln!(out, "Never found: {}.", self.never_found.join(", "));
        }

        let _ = writeln!(out, "\nClaims per rule:");
        let _ = writeln!(out, "{:<24}  {:>6}  {:>5}  {:>6}", "rule", "vaults", "found", "claims");
        for r in &self.rules {
            let _ = writeln!(out, "{:<24}  {:>6}  {:>5}  {:>6}", rule_name(r.rule), r.vaults, r.found, r.claims);
        }

        let _ = writeln!(
            out,
            "\nDrops per loot table: each item's quantity against the table's odds for as many claims \
             (fresh: no luck, no pity; with pity: over many claims of a player)."
        );
        let iw = self
            .tables
            .iter()
            .flat_map(|t| t.items.iter().map(|i| i.item.len() + 4).chain([t.table.len()]))
            .max()
            .unwrap_or(4)
            .max(12);
        let _ = writeln!(
            out,
            "{:<iw$}  {:>7}  {:>9}  {:>10}  {:>10}",
            "table / item", "claims", "dropped", "fresh", "with pity"
        );
        for t in &self.tables {
            let _ = writeln!(out, "{:<iw$}  {:>7}", t.table, t.claims);
            for i in &t.items {
                let item = format!("  {}{}", i.item, if i.rare { " *" } else { "" });
                let _ = writeln!(
                    out,
                    "{item:<iw$}  {:>7}  {:>9}  {:>10.1}  {:>10}",
                    i.claims_with,
                    i.dropped,
                    i.expected,
                    if t.pity.is_some() { format!("{:.1}", i.expected_with_pity) } else { "-".into() }
                );
            }
            if let Some(p) = &t.pity {
                let _ = writeln!(
                    out,
                    "  pity (After {}, Step {}): {} claim(s) boosted, {} of them with a rare item",
                    p.after, p.step, p.boosted_claims, p.boosted_rare
                );
            }
        }
        let _ = writeln!(out, "(* rare: what luck and pity raise; claims: the claims that yielded the item)");

        let _ = writeln!(out, "\nClues:");
        let cw = self.clues.iter().map(|c| c.clue.len()).max().unwrap_or(4).max(4);
        let tw = self.clues.iter().map(|c| c.trigger.len()).max().unwrap_or(7).max(7);
        let _ = writeln!(
            out,
            "{:<cw$}  {:<7}  {:<tw$}  {:>8}  {:>7}  {:>12}",
            "clue", "kind", "trigger", "released", "reached", "claims after"
        );
        for c in &self.clues {
            let _ = writeln!(
                out,
                "{:<cw$}  {:<7}  {:<tw$}  {:>8}  {:>7}  {:>12}",
                c.clue,
                c.kind,
                c.trigger,
                c.released_seconds.map_or_else(|| "-".into(), clock),
                c.reached,
                c.claims_after
            );
        }

        let _ = writeln!(out, "\nLeaderboard ({} player(s) ranked):", self.ranked_players);
        let bw = self.leaderboard.iter().map(|r| r.player.len()).max().unwrap_or(6).max(6);
        let _ = writeln!(out, "{:>4}  {:<bw$}  {:>6}  {:>8}", "rank", "player", "vaults", "score");
        for r in &self.leaderboard {
            let _ = writeln!(out, "{:>4}  {:<bw$}  {:>6}  {:>8}", r.rank, r.player, r.vaults, r.score);
        }

        let by: Vec<String> = self
            .behaviours
            .iter()
            .map(|(k, n)| {
                let none = self.got_nothing.by_behaviour.get(k).copied().unwrap_or(0);
                format!("{} {none} of {n}", k.name())
            })
            .collect();
        let _ = writeln!(
            out,
            "\nPlayers who got nothing: {} of {} ({}): {}.",
            self.got_nothing.players,
            self.players,
            percent(self.got_nothing.players, self.players),
            by.join(", ")
        );
        out
    }
}
