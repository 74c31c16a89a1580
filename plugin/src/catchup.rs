//! A client back after a disconnect (or a server restart) asks for the hunt's events it missed:
//! `CatchUp {After}` with the last `Seq` it saw. It gets every event numbered after that which
//! it should hear of (vaults opened, its own loot), each as it would have come live and with
//! its `Seq`, then `CaughtUp`; when `After` is older than the events kept (`RetainedEvents`),
//! a `Snapshot` instead, naming only the opened vaults those events would have named to it.
//! Clients drop what they already saw by `Seq`.

use treasure_hunt_ecs::{
    assets::ClaimRule,
    hunt::{Claimant, Vault, VaultClaims},
};
use veltrix_sdk::{Store, prelude::*, tracing};

use crate::{
    persist::{CatchUp, HuntLog, events_since},
    protocol,
    publish::send_event,
};

/// Tick, before this tick's events are logged: answers `CatchUp` from the store (committed
/// events only; this tick's come live after).
pub fn catch_up(
    mut requests: MessageReader<FromClient<protocol::CatchUp>>,
    store: Option<Res<Store>>,
    log: Option<Res<HuntLog>>,
    vaults: Query<(&Vault, &VaultClaims)>,
    mut outbox: ResMut<Outbox>,
) {
    for r in requests.read() {
        let (Some(log), Some(store)) = (log.as_deref(), store.as_deref()) else {
            outbox.refuse(r.player, r.request, "no hunt is running: there is nothing to catch up on");
            continue;
        };
        let last = log.next_seq - 1;
        match events_since(store, log, r.player, r.message.after) {
            Ok(CatchUp::Events(events)) => {
                for (seq, event) in &events {
                    send_event(&mut outbox, *seq, event, None, Some(r.player));
                }
                outbox.reply(r.player, r.request, &protocol::CaughtUp { seq: last });
            }
            Ok(CatchUp::TooOld) => {
                let mut opened: Vec<String> =
                    vaults.iter().filter(|(v, c)| known_opened(v, c, r.player)).map(|(v, _)| v.0.id.clone()).collect();
                opened.sort();
                outbox.reply(r.player, r.request, &protocol::Snapshot { seq: last, opened });
            }
            Err(e) => {
                tracing::error!("player {}: cannot read the event log to catch up: {e}", r.player);
                outbox.refuse(r.player, r.request, "the server cannot read its event log right now; try again");
            }
        }
    }
}

/// Whether a `Snapshot` names this vault to `player`: the vaults the events it replaces would
/// have named to it, a FirstFinder vault closed to everyone (`VaultClaimed`) and a vault it
/// claimed itself (its `LootGranted`). Who stood within a sparkle radius at a claim is not
/// kept, so `VaultDiscovered` is not replayed: a far player learns of no other opening.
fn known_opened(vault: &Vault, claims: &VaultClaims, player: PlayerId) -> bool {
    (vault.0.claim == ClaimRule::FirstFinder && claims.first.is_some())
        || claims.claimed_by.contains(&Claimant::Player(player))
}

/// Catch-ups as one unit, answered before this tick's events join the log.
pub fn plugin(ctx: &mut ModContext) {
    ctx.add_systems(Tick, catch_up.in_set(crate::sets::AfterHunt::CatchUp));
}
