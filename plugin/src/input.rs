//! Players' messages into the hunt's requests, in arrival order.

use treasure_hunt_ecs::{
    assets::TilePos,
    clues::ClueRequest,
    effects::UseItemRequest,
    hunt::{DigRequest, DiscardRequest, TeamRequest},
};
use veltrix_sdk::{
    bevy_ecs::{self, system::SystemParam},
    prelude::*,
};

use crate::protocol::{AskClue, Dig, Discard, JoinTeam, UseItem};

/// This tick's players' messages that ask something of the hunt.
#[derive(SystemParam)]
pub struct ClientRequests<'w, 's> {
    digs: MessageReader<'w, 's, FromClient<Dig>>,
    discards: MessageReader<'w, 's, FromClient<Discard>>,
    teams: MessageReader<'w, 's, FromClient<JoinTeam>>,
    uses: MessageReader<'w, 's, FromClient<UseItem>>,
    asked: MessageReader<'w, 's, FromClient<AskClue>>,
}

/// The hunt's requests, one writer per kind.
#[derive(SystemParam)]
pub struct HuntRequests<'w> {
    digs: MessageWriter<'w, DigRequest>,
    discards: MessageWriter<'w, DiscardRequest>,
    teams: MessageWriter<'w, TeamRequest>,
    clues: MessageWriter<'w, ClueRequest>,
    uses: MessageWriter<'w, UseItemRequest>,
}

/// Turns this tick's `Dig`, `Discard`, `JoinTeam`, `AskClue` and `UseItem` messages into hunt
/// requests.
pub fn receive_requests(from: ClientRequests, to: HuntRequests) {
    let ClientRequests { mut digs, mut discards, mut teams, mut uses, mut asked } = from;
    let HuntRequests {
        digs: mut dig_requests,
        discards: mut discard_requests,
        teams: mut team_requests,
        clues: mut clue_requests,
        uses: mut use_requests,
    } = to;
    dig_requests.write_batch(digs.read().map(|m| DigRequest {
        entity: m.entity,
        player: m.player,
        request: m.request,
        at: TilePos { x: m.message.x, y: m.message.y },
    }));
    discard_requests.write_batch(discards.read().map(|m| DiscardRequest {
        entity: m.entity,
        player: m.player,
        request: m.request,
        item: m.message.item.clone(),
        quantity: m.message.quantity,
    }));
    team_requests.write_batch(teams.read().map(|m| TeamRequest {
        entity: m.entity,
        player: m.player,
        request: m.request,
        team: m.message.team.clone(),
    }));
    clue_requests.write_batch(asked.read().map(|m| ClueRequest {
        entity: m.entity,
        player: m.player,
        request: m.request,
        clue: m.message.clue.clone(),
    }));
    use_requests.write_batch(uses.read().map(|m| UseItemRequest {
        entity: m.entity,
        player: m.player,
        request: m.request,
        item: m.message.item.clone(),
    }));
}

/// Players' requests as one unit, turned into the hunt's before its input.
pub fn plugin(ctx: &mut ModContext) {
    ctx.add_systems(Tick, receive_requests.before(treasure_hunt_ecs::hunt::HuntSet::Input));
}
