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
use veltrix_sdk::prelude::*;

use crate::{
    leaderboard::FinalBoards,
    persist::{HuntEvent, Logged},
    protocol::{self, Stack},
};

/// Sends this tick's outcomes: refusals, progress and hints to the player who asked, a vault's
/// opening to the players within its sparkle radius, loot and the inventory to its holder
/// (one `InventoryChanged` per player per tick, with the final state).
/// Sends this tick's outcomes: refusals and progress to the player who asked, a vault's
/// opening to the players within its sparkle radius, loot, effects, treasure sense and the
/// inventory to its holder (one `InventoryChanged` per player per tick, with the final state).
#[allow(clippy::too_many_arguments)]
pub fn publish_outcomes(
    mut digs: MessageReader<DigOutcome>,
    mut claims: MessageReader<ClaimOutcome>,
    mut logged: MessageReader<Logged>,
    mut changed: MessageReader<InventoryChanged>,
    mut discards: MessageReader<DiscardOutcome>,
    mut teams: MessageReader<TeamOutcome>,
    mut hints: MessageReader<HintOutcome>,
    mut effects: MessageReader<EffectOutcome>,
    mut pings: MessageReader<TreasurePing>,
    tick: Res<TickInfo>,
    inventories: Query<(&Inventory, &PendingRewards)>,
    mut outbox: ResMut<Outbox>,
) {
    let refuse = |outbox: &mut Outbox, r: &Refused| outbox.refuse(r.player, r.request, &r.reason);
    for outcome in digs.read() {
        match outcome {
            DigOutcome::Progress { player, request, at, effort, required } => outbox.reply(
                *player,
                *request,
                &protocol::DigProgress { x: at.x, y: at.y, effort: *effort, required: *required },
            ),
            DigOutcome::Refused(r) => refuse(&mut outbox, r),
            DigOutcome::Finished { .. } => {}
        }
    }
    for outcome in claims.read() {
        match outcome {
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
            ClaimOutcome::Refused(r) => refuse(&mut outbox, r),
        }
    }
    for logged in logged.read() {
        send_event(&mut outbox, logged.seq, &logged.event, logged.request, None);
    }
    for outcome in discards.read() {
        match outcome {
            DiscardOutcome::Discarded { player, request, item, quantity } => {
                outbox.reply(*player, *request, &protocol::Discarded { item: item.clone(), quantity: *quantity })
            }
            DiscardOutcome::Refused(r) => refuse(&mut outbox, r),
        }
    }
    for outcome in teams.read() {
        match outcome {
            TeamOutcome::Joined { player, request, team } => {
                outbox.reply(*player, *request, &protocol::TeamChanged { team: team.clone() })
            }
            TeamOutcome::Refused(r) => refuse(&mut outbox, r),
        }
    }
    for outcome in hints.read() {
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
            HintOutcome::Refused(r) => refuse(&mut outbox, r),
        }
    }
    for outcome in effects.read() {
        match outcome {
            EffectOutcome::Started { player, request, effect, stacks, expires_at }
            | EffectOutcome::Refreshed { player, request, effect, stacks, expires_at }
            | EffectOutcome::Stacked { player, request, effect, stacks, expires_at } => outbox.reply(
                *player,
                *request,
                &protocol::EffectStarted {
                    effect: effect.clone(),
                    stacks: *stacks,
                    ticks: expires_at.saturating_sub(tick.tick),
                },
            ),
            // Nothing changed (a hunt event or a command granted it again): nothing to say.
            EffectOutcome::Ignored { .. } => {}
            EffectOutcome::Ended { player, effect } => {
                outbox.send(Audience::Player(*player), &protocol::EffectEnded { effect: effect.clone() })
            }
            EffectOutcome::Refused(r) => refuse(&mut outbox, r),
        }
    }
    for ping in pings.read() {
        outbox.send(Audience::Player(ping.player), &protocol::TreasureSense { vaults: ping.vaults });
    }
    let mut sent = BTreeSet::new();
    for change in changed.read() {
        if !sent.insert(change.player) {
            continue;
        }
        let Ok((inventory, pending)) = inventories.get(change.entity) else { continue };
        outbox.send(
            Audience::Player(change.player),
            &protocol::InventoryChanged {
                slots: inventory.slots().iter().map(|s| s.as_ref().map(Stack::from)).collect(),
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

/// Sends this tick's clues and announcements: a clue released to everyone and every
/// announcement as one broadcast (encoded once); the rest to the player concerned.
#[allow(clippy::too_many_arguments)]
pub fn publish_clues_and_announcements(
    mut clues: MessageReader<ClueOutcome>,
    mut announcements: MessageReader<Announcement>,
    hunt: Option<Res<ActiveHunt>>,
    assets: Res<AssetsInForce>,
    releases: Res<ClueReleases>,
    clock: Res<HuntClock>,
    language: Res<ServerLanguage>,
    final_boards: Option<Res<FinalBoards>>,
    mut outbox: ResMut<Outbox>,
) {
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
