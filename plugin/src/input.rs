//! Players' messages into the hunt's requests, in arrival order.

use treasure_hunt_ecs::{
    assets::TilePos,
    clues::ClueRequest,
    effects::UseItemRequest,
    hunt::{DigRequest, DiscardRequest, TeamRequest},
};
use veltrix_sdk::prelude::*;

use crate::protocol::{AskClue, Dig, Discard, JoinTeam, UseItem};

/// Turns this tick's `Dig`, `Discard`, `JoinTeam`, `AskClue` and `UseItem` messages into hunt
/// requests.
#[allow(clippy::too_many_arguments)]
pub fn receive_requests(
    mut digs: MessageReader<FromClient<Dig>>,
    mut discards: MessageReader<FromClient<Discard>>,
    mut teams: MessageReader<FromClient<JoinTeam>>,
    mut uses: MessageReader<FromClient<UseItem>>,
    mut dig_requests: MessageWriter<DigRequest>,
    mut discard_requests: MessageWriter<DiscardRequest>,
    mut team_requests: MessageWriter<TeamRequest>,
    mut asked: MessageReader<FromClient<AskClue>>,
    mut clue_requests: MessageWriter<ClueRequest>,
    mut use_requests: MessageWriter<UseItemRequest>,
) {
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
