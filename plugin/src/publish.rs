//! The hunt's outcomes to players, after the hunt's systems ran: each message encoded once
//! by the outbox, sent only to those who may know what it says.

use std::collections::BTreeSet;

use treasure_hunt_ecs::{
    effects::{EffectOutcome, TreasurePing},
    hunt::{ClaimOutcome, DigOutcome, DiscardOutcome, InventoryChanged, Refused, TeamOutcome},
    inventory::{Inventory, PendingRewards},
};
use veltrix_sdk::prelude::*;

use crate::{
    persist::{HuntEvent, Logged},
    protocol::{self, Stack},
};

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
    mut effects: MessageReader<EffectOutcome>,
    mut pings: MessageReader<TreasurePing>,
    tick: Res<TickInfo>,
    inventories: Query<(&Inventory, &PendingRewards)>,
    mut outbox: ResMut<Outbox>,
) {
    let refuse = |outbox: &mut Outbox, r: &Refused| outbox.refuse(r.player, r.request, r.reason.clone());
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
