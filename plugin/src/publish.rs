//! The hunt's outcomes to players, after the hunt's systems ran: each message encoded once
//! by the outbox, sent only to those who may know what it says.

use std::collections::BTreeSet;

use treasure_hunt_ecs::{
    assets::ClueKind,
    clues::{ClueOutcome, ClueReleases, area_radius_told},
    effects::{EffectOutcome, TreasurePing},
    hints::HintOutcome,
    hunt::{
        ActiveHunt, AssetsInForce, ClaimOutcome, DigOutcome, DiscardOutcome, InventoryChanged, Refused, TeamOutcome,
    },
    inventory::{Inventory, PendingRewards},
    lang::Languages,
    lifecycle::{Announcement, EndReason, HuntClock},
    pack::PlacedClue,
};
use veltrix_sdk::{
    bevy_ecs::{self, system::SystemParam},
    prelude::*,
};

use crate::{
    leaderboard::FinalBoards,
    persist::{HuntEvent, Logged},
    protocol::{self, Stack},
};

/// This tick's outcomes of the hunt, in the order they are published.
#[derive(SystemParam)]
pub struct HuntOutcomes<'w, 's> {
    digs: MessageReader<'w, 's, DigOutcome>,
    claims: MessageReader<'w, 's, ClaimOutcome>,
    logged: MessageReader<'w, 's, Logged>,
    discards: MessageReader<'w, 's, DiscardOutcome>,
    teams: MessageReader<'w, 's, TeamOutcome>,
    hints: MessageReader<'w, 's, HintOutcome>,
    effects: MessageReader<'w, 's, EffectOutcome>,
    pings: MessageReader<'w, 's, TreasurePing>,
    changed: MessageReader<'w, 's, InventoryChanged>,
}

/// Sends this tick's outcomes: refusals and progress to the player who asked, a vault's
/// opening to the players within its sparkle radius, loot, effects, treasure sense and the
/// inventory to its holder (one `InventoryChanged` per player per tick, with the final state).
pub fn publish_outcomes(
    outcomes: HuntOutcomes,
    tick: Res<TickInfo>,
    inventories: Query<(&Inventory, &PendingRewards)>,
    mut outbox: ResMut<Outbox>,
) {
    let HuntOutcomes {
        mut digs,
        mut claims,
        mut logged,
        mut discards,
        mut teams,
        mut hints,
        mut effects,
        mut pings,
        mut changed,
    } = outcomes;
    let outbox = &mut *outbox;
    publish_digs(outbox, digs.read());
    publish_claims(outbox, claims.read());
    for logged in logged.read() {
        send_event(outbox, logged.seq, &logged.event, logged.request, None);
    }
    publish_discards(outbox, discards.read());
    publish_teams(outbox, teams.read());
    publish_hints(outbox, hints.read());
    publish_effects(outbox, effects.read(), tick.tick);
    for ping in pings.read() {
        outbox.send(Audience::Player(ping.player), &protocol::TreasureSense { vaults: ping.vaults });
    }
    publish_inventories(outbox, changed.read(), &inventories);
}

fn refuse(outbox: &mut Outbox, r: &Refused) {
    outbox.refuse(r.player, r.request, &r.reason);
}

/// Digs' progress and refusals, to the digger.
fn publish_digs<'a>(outbox: &mut Outbox, digs: impl Iterator<Item = &'a DigOutcome>) {
    for outcome in digs {
        match outcome {
            DigOutcome::Progress { player, request, at, effort, required } => outbox.reply(
                *player,
                *request,
                &protocol::DigProgress { x: at.x, y: at.y, effort: *effort, required: *required },
            ),
            DigOutcome::Refused(r) => refuse(outbox, r),
            DigOutcome::Finished { .. } => {}
        }
    }
}

/// A vault's opening to the players within its sparkle radius; refusals to the claimant.
fn publish_claims<'a>(outbox: &mut Outbox, claims: impl Iterator<Item = &'a ClaimOutcome>) {
    for outcome in claims {
        match outcome {
            ClaimOutcome::Claimed(claim) if claim.opening_told => {}
            ClaimOutcome::Claimed(claim) => {
                let vault = &claim.vault;
                let (x, y) = (vault.at.x as f32 + 0.5, vault.at.y as f32 + 0.5);
                outbox.send(
                    Audience::Near { x, y, radius: vault.sparkle_radius },
                    &protocol::VaultDiscovered {
                        vault: vault.id.clone(),
                        x: vault.at.x,
                        y: vault.at.y,
                        by: claim.player_name.clone(),
                        claim: vault.claim,
                        first: claim.first,
                    },
                );
            }
            ClaimOutcome::Refused(r) => refuse(outbox, r),
        }
    }
}

/// Discards and their refusals, to the player who asked.
fn publish_discards<'a>(outbox: &mut Outbox, discards: impl Iterator<Item = &'a DiscardOutcome>) {
    for outcome in discards {
        match outcome {
            DiscardOutcome::Discarded { player, request, item, quantity } => {
                outbox.reply(*player, *request, &protocol::Discarded { item: item.clone(), quantity: *quantity })
            }
            DiscardOutcome::Refused(r) => refuse(outbox, r),
        }
    }
}

/// Team changes and their refusals, to the player who asked.
fn publish_teams<'a>(outbox: &mut Outbox, teams: impl Iterator<Item = &'a TeamOutcome>) {
    for outcome in teams {
        match outcome {
            TeamOutcome::Joined { player, request, team } => {
                outbox.reply(*player, *request, &protocol::TeamChanged { team: team.clone() })
            }
            TeamOutcome::Refused(r) => refuse(outbox, r),
        }
    }
}

/// HotCold and Compass hints and their refusals, to the player who asked.
fn publish_hints<'a>(outbox: &mut Outbox, hints: impl Iterator<Item = &'a HintOutcome>) {
    for outcome in hints {
        match outcome {
            HintOutcome::HotCold { player, request, clue, band } => outbox.reply(
                *player,
                *request,
                &protocol::Hint {
                    clue: clue.clone(),
                    kind: protocol::HintKind::HotCold,
                    band: Some(band.clone()),
                    direction: None,
                },
            ),
            HintOutcome::Compass { player, request, clue, direction } => outbox.reply(
                *player,
                *request,
                &protocol::Hint {
                    clue: clue.clone(),
                    kind: protocol::HintKind::Compass,
                    band: None,
                    direction: *direction,
                },
            ),
            HintOutcome::Refused(r) => refuse(outbox, r),
        }
    }
}

/// Effects started, stacked or ended, to their holder (ticks left counted from `now`).
fn publish_effects<'a>(outbox: &mut Outbox, effects: impl Iterator<Item = &'a EffectOutcome>, now: u64) {
    for outcome in effects {
        match outcome {
            EffectOutcome::Started { player, request, effect, stacks, expires_at }
            | EffectOutcome::Refreshed { player, request, effect, stacks, expires_at }
            | EffectOutcome::Stacked { player, request, effect, stacks, expires_at } => outbox.reply(
                *player,
                *request,
                &protocol::EffectStarted {
                    effect: effect.clone(),
                    stacks: *stacks,
                    ticks: expires_at.saturating_sub(now),
                },
            ),
            // Nothing changed (a hunt event or a command granted it again): nothing to say.
            EffectOutcome::Ignored { .. } => {}
            EffectOutcome::Ended { player, effect } => {
                outbox.send(Audience::Player(*player), &protocol::EffectEnded { effect: effect.clone() })
            }
            EffectOutcome::Refused(r) => refuse(outbox, r),
        }
    }
}

/// Each changed inventory to its holder, once per player, with its final state.
fn publish_inventories<'a>(
    outbox: &mut Outbox,
    changed: impl Iterator<Item = &'a InventoryChanged>,
    inventories: &Query<(&Inventory, &PendingRewards)>,
) {
    let mut sent = BTreeSet::new();
    for change in changed {
        if !sent.insert(change.player) {
            continue;
        }
        let Ok((inventory, pending)) = inventories.get(change.entity) else { continue };
        outbox.send(
            Audience::Player(change.player),
            &protocol::InventoryChanged {
                slots: inventory.slots().map(|s| s.map(Stack::from)).collect(),
                pending: pending.0.iter().map(Stack::from).collect(),
            },
        );
    }
}

/// Sends a logged event to those who hear of it: a vault opened to everyone, loot to its
/// claimant (answering `request`); or, to a player catching up (`only`), just to that player.
pub fn send_event(outbox: &mut Outbox, seq: u64, event: &HuntEvent, request: Option<u32>, only: Option<PlayerId>) {
    match event {
        HuntEvent::VaultOpened { vault, name, .. } => outbox.send(
            only.map_or(Audience::All, Audience::Player),
            &protocol::VaultClaimed { seq, vault: vault.clone(), by: name.clone() },
        ),
        HuntEvent::LootGranted { player, vault, items, pending } => outbox.reply(
            *player,
            request,
            &protocol::LootGranted {
                seq,
                vault: vault.clone(),
                items: items.iter().map(Stack::from).collect(),
                pending: pending.iter().map(Stack::from).collect(),
            },
        ),
    }
}

/// The language players read clue texts in (the mod's `Language` config).
#[derive(Resource, Debug, Clone, PartialEq, Eq)]
pub struct ServerLanguage(pub String);

/// What players' clue messages are made from: the running hunt's clues (in the assets in
/// force), when each was released, the clock (an area shrinks) and the server's language.
#[derive(SystemParam)]
pub struct ClueTexts<'w> {
    hunt: Option<Res<'w, ActiveHunt>>,
    assets: Res<'w, AssetsInForce>,
    releases: Res<'w, ClueReleases>,
    clock: Res<'w, HuntClock>,
    language: Res<'w, ServerLanguage>,
}

/// Sends this tick's clues and announcements: a clue released to everyone and every
/// announcement as one broadcast (encoded once); the rest to the player concerned.
pub fn publish_clues_and_announcements(
    mut clues: MessageReader<ClueOutcome>,
    mut announcements: MessageReader<Announcement>,
    texts: ClueTexts,
    final_boards: Option<Res<FinalBoards>>,
    mut outbox: ResMut<Outbox>,
) {
    let ClueTexts { hunt, assets, releases, clock, language } = texts;
    for announcement in announcements.read() {
        let mut message = announced(announcement);
        if let Announcement::Ended { hunt, .. } = announcement {
            message.final_board = final_boards
                .as_ref()
                .and_then(|f| f.0.get(hunt))
                .map(|board| crate::leaderboard::message(&board.top, board.players));
        }
        outbox.send(Audience::All, &message);
    }
    let Some(placed) = hunt.as_ref().and_then(|h| assets.0.hunts.get(&h.id)) else {
        for outcome in clues.read() {
            if let ClueOutcome::Refused(r) = outcome {
                outbox.refuse(r.player, r.request, &r.reason);
            }
        }
        return;
    };
    let message = |index: usize| {
        let clue = &placed.clues[index];
        let elapsed = releases.to_all.get(&clue.id).map_or(0, |r| clock.unix_ms - r.at_ms);
        clue_message(clue, &assets.0.languages, &language.0, elapsed)
    };
    for outcome in clues.read() {
        match outcome {
            ClueOutcome::ReleasedToAll { clue } | ClueOutcome::Shrunk { clue } => {
                outbox.send(Audience::All, &message(*clue))
            }
            ClueOutcome::ReleasedTo { player, clue } => outbox.send(Audience::Player(*player), &message(*clue)),
            ClueOutcome::Joined { player } => {
                for (index, clue) in placed.clues.iter().enumerate() {
                    let released = releases.to_all.contains_key(&clue.id)
                        || releases.to_player.get(player).is_some_and(|ids| ids.contains(&clue.id));
                    if released {
                        outbox.send(Audience::Player(*player), &message(index));
                    }
                }
            }
            ClueOutcome::Answer { player, request, clue } => outbox.reply(*player, *request, &message(*clue)),
            ClueOutcome::Refused(r) => outbox.refuse(r.player, r.request, &r.reason),
        }
    }
}

/// A clue as players receive it, `elapsed_ms` after its release (an area shrinks).
pub fn clue_message(clue: &PlacedClue, languages: &Languages, locale: &str, elapsed_ms: i64) -> protocol::Clue {
    let mut message = protocol::Clue {
        clue: clue.id.clone(),
        kind: String::new(),
        key: None,
        text: None,
        x: None,
        y: None,
        radius: None,
        vault: None,
    };
    message.kind = match &clue.kind {
        ClueKind::Text(key) => {
            message.text = languages.text(locale, key).map(str::to_string);
            message.key = Some(key.clone());
            "Text"
        }
        ClueKind::Area(area) => {
            let (x, y) = clue.centre.expect("an area clue is placed with its centre");
            (message.x, message.y, message.radius) = (Some(x), Some(y), Some(area_radius_told(area, elapsed_ms)));
            "Area"
        }
        ClueKind::HotCold => "HotCold",
        ClueKind::Compass => "Compass",
        ClueKind::Reveal => {
            (message.x, message.y, message.vault) =
                (Some(clue.at.x as f32), Some(clue.at.y as f32), Some(clue.vault.clone()));
            "Reveal"
        }
    }
    .to_string();
    message
}

/// An announcement in words.
fn announced(announcement: &Announcement) -> protocol::HuntAnnounced {
    let (hunt, event, text, seconds_left) = match announcement {
        Announcement::Started { hunt, name, ends_in_seconds, .. } => (
            hunt,
            "Started",
            match ends_in_seconds {
                Some(s) => format!("The hunt {name} has begun! It ends in {}.", duration_words(*s)),
                None => format!("The hunt {name} has begun! It ends when every vault is found."),
            },
            *ends_in_seconds,
        ),
        Announcement::EndsSoon { hunt, name, seconds } => {
            (hunt, "EndsSoon", format!("The hunt {name} ends in {}.", duration_words(*seconds)), Some(*seconds))
        }
        Announcement::Ended { hunt, name, reason, .. } => (
            hunt,
            "Ended",
            match reason {
                EndReason::AllClaimed => format!("The hunt {name} is over: every vault has been found."),
                EndReason::TimeUp => format!("The hunt {name} is over: time is up."),
                EndReason::Stopped => format!("The hunt {name} was stopped."),
            },
            None,
        ),
        Announcement::Waiting { hunt, name, online, needed } => {
            (hunt, "Waiting", format!("The hunt {name} starts when {needed} players are online ({online} now)."), None)
        }
    };
    protocol::HuntAnnounced { hunt: hunt.clone(), event: event.into(), text, seconds_left, final_board: None }
}

fn duration_words(seconds: u32) -> String {
    match seconds {
        s if s >= 120 && s % 60 == 0 => format!("{} minutes", s / 60),
        1 => "1 second".into(),
        s => format!("{s} seconds"),
    }
}

/// Publishing as one unit: the server's language now; the tick's outcomes, clues and
/// announcements sent after they are saved, once the mod has started.
pub fn plugin(ctx: &mut ModContext, language: String) {
    ctx.world_mut().insert_resource(ServerLanguage(language));
    ctx.add_systems(
        Tick,
        (publish_outcomes, publish_clues_and_announcements).chain().in_set(crate::sets::AfterHunt::Publish),
    );
}
