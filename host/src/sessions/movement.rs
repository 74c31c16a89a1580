//! Server-authoritative movement: each move checked against the world's bounds, the player's
//! speed budget and the tiles on its line; a refused move is answered with the authoritative
//! position and why. The moves a tick receives one after the other are applied together
//! ([`PendingMoves`]), in the order received.

use veltrix_sdk::{
    Audience, Blocked, Outbox, Player, Position, TickInfo, Tile, TileWorld,
    bevy_ecs::system::{SystemParam, SystemState},
    prelude::*,
    protocol::{CorrectionReason, Move, PositionCorrected, ServerMessage},
};

use super::SessionRules;
use crate::cache::{PREFETCH_AHEAD, prefetch};

/// Tiles a player may still move (refilled at MaxSpeed, up to one second's worth), and the
/// tick it was last refilled.
#[derive(Component, Debug, Clone, Copy)]
pub struct MoveBudget {
    tiles: f32,
    tick: u64,
}

impl MoveBudget {
    /// A full budget at MaxSpeed `max_speed`, from tick `tick`.
    pub fn full(max_speed: f32, tick: u64) -> Self {
        Self { tiles: max_speed, tick }
    }
}

/// Moves received and not yet applied, each with its player's entity, in the order received:
/// applied together by [`apply_moves`] before anything else the tick receives is applied, so
/// the order of a client's messages holds. Together, the rules, the tiles and the clock are
/// looked up once for them all, and each player's components through one query (a lookup of
/// the world per component per move was most of a move's cost on the tick thread). The list
/// keeps its room.
#[derive(Resource)]
pub struct PendingMoves {
    moves: Vec<(Entity, Move)>,
    params: SystemState<MoveParams<'static, 'static>>,
}

impl FromWorld for PendingMoves {
    fn from_world(world: &mut World) -> Self {
        Self { moves: Vec::new(), params: SystemState::new(world) }
    }
}

impl PendingMoves {
    /// `mv` of the player `entity`, to be applied with the others.
    pub fn push(&mut self, entity: Entity, mv: Move) {
        self.moves.push((entity, mv));
    }
}

/// What applying a move reads and writes.
#[derive(SystemParam)]
struct MoveParams<'w, 's> {
    movers:
        Query<'w, 's, (&'static Player, &'static mut Position, &'static mut MoveBudget, Option<&'static SpeedFactor>)>,
    tiles: Res<'w, TileWorld>,
    rules: Res<'w, SessionRules>,
    info: Res<'w, TickInfo>,
    outbox: ResMut<'w, Outbox>,
}

/// Applies the moves waiting ([`PendingMoves`]), in the order received.
pub fn apply_moves(world: &mut World) {
    if world.resource::<PendingMoves>().moves.is_empty() {
        return;
    }
    world.resource_scope(|world, mut pending: Mut<PendingMoves>| {
        let PendingMoves { moves, params } = &mut *pending;
        let mut params = params.get_mut(world).expect("the server's world has the tiles, rules, clock and outbox");
        for i in 0..moves.len() {
            // The players' components and the tiles are read in the order moves came, which
            // memory does not follow.
            if let Some(&(ahead, mv)) = moves.get(i + PREFETCH_AHEAD) {
                if let Ok((player, at, budget, _)) = params.movers.get(ahead) {
                    prefetch(player);
                    prefetch(at);
                    prefetch(budget);
                }
                if let Some(tile) = params.tiles.tile_ref(mv.x, mv.y) {
                    prefetch(tile);
                }
            }
            let (entity, mv) = moves[i];
            apply_move(&mut params, entity, mv);
        }
        moves.clear();
    });
}

/// A move whose target is outside the world, farther than the player's budget (MaxSpeed over
/// the time since, up to one second's worth), or whose straight line from where the player is
/// touches a tile that is not walkable (its target's included), is refused with the
/// authoritative position and the first of these reasons. So a move of more than one tile
/// cannot hop over rock or water, nor squeeze between two such tiles touching at a corner.
fn apply_move(params: &mut MoveParams, entity: Entity, mv: Move) {
    let MoveParams { movers, tiles, rules, info, outbox } = params;
    let Ok((player, mut at, mut budget, speed)) = movers.get_mut(entity) else { return };
    // A mod's SpeedFactor (an effect) scales the speed, the refill and the one-second cap alike.
    let max_speed = rules.max_speed * SpeedFactor::effective(speed);
    let current = *at;
    let left = refilled_budget(budget.tiles, info.tick - budget.tick, info.dt, max_speed);
    let distance = current.distance_squared(mv.x, mv.y).sqrt();
    let refused = move_refusal(tiles, current, &mv, distance <= left + 1e-3);
    budget.tick = info.tick;
    budget.tiles = if refused.is_none() { (left - distance).max(0.0) } else { left };
    match refused {
        // Set in place, not inserted: an insert goes through the archetype machinery.
        None if distance > 0.0 => *at = Position { x: mv.x, y: mv.y },
        None => {}
        Some(reason) => {
            let correction = PositionCorrected { seq: mv.seq, x: current.x, y: current.y, reason };
            outbox.send_message(Audience::Player(player.id), &ServerMessage::PositionCorrected(correction));
        }
    }
}

/// Why a move from `from` is refused, if it is; checked in this order (docs/protocol.md,
/// "Movement"): the target, the speed, then the line. The speed comes before the line, so a
/// line longer than a second's worth of movement is never walked.
fn move_refusal(tiles: &TileWorld, from: Position, to: &Move, within_budget: bool) -> Option<CorrectionReason> {
    if tiles.at(to.x, to.y).is_none() {
        return Some(CorrectionReason::Bounds);
    }
    if !within_budget {
        return Some(CorrectionReason::Speed);
    }
    Some(match tiles.segment_blocked(from.x, from.y, to.x, to.y)? {
        Blocked::Outside => CorrectionReason::Bounds,
        Blocked::Tile(Tile::Water) => CorrectionReason::Water,
        Blocked::Tile(Tile::Rock | Tile::Ground) => CorrectionReason::Wall,
    })
}

/// A move budget after `ticks` ticks of `dt` at `max_speed` tiles per second: refilled, up to
/// one second's worth.
fn refilled_budget(budget: f32, ticks: u64, dt: std::time::Duration, max_speed: f32) -> f32 {
    (budget + ticks as f32 * dt.as_secs_f32() * max_speed).min(max_speed)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Each refusal names its reason, the target first, then the speed, then the first tile in
    /// the way.
    #[test]
    fn a_refused_move_says_why() {
        let mut tiles = TileWorld::flat(8, 8);
        tiles.set(3, 1, Tile::Rock);
        tiles.set(5, 1, Tile::Water);
        let from = Position { x: 1.5, y: 1.5 };
        let refusal = |x, y, within_budget| move_refusal(&tiles, from, &Move { seq: 1, x, y }, within_budget);
        assert_eq!(refusal(2.5, 1.5, true), None);
        assert_eq!(refusal(9.5, 1.5, false), Some(CorrectionReason::Bounds), "outside, and too far");
        assert_eq!(refusal(f32::NAN, 1.5, true), Some(CorrectionReason::Bounds));
        assert_eq!(refusal(6.5, 1.5, false), Some(CorrectionReason::Speed), "too far, and over rock");
        assert_eq!(refusal(6.5, 1.5, true), Some(CorrectionReason::Wall), "the rock comes before the water");
        assert_eq!(refusal(5.5, 1.5, true), Some(CorrectionReason::Wall));
        assert_eq!(refusal(1.5, 5.5, true), None);
        let from = Position { x: 6.5, y: 1.5 };
        assert_eq!(move_refusal(&tiles, from, &Move { seq: 1, x: 4.5, y: 1.5 }, true), Some(CorrectionReason::Water));
    }

    /// A SpeedFactor of 2 doubles what a second of ticks refills and what the budget holds;
    /// 0.5 halves both; a factor that is not a number above 0 changes nothing.
    #[test]
    fn speed_factor_scales_the_move_budget() {
        let dt = Duration::from_secs(1) / 20;
        let max = 5.0;
        assert_eq!(refilled_budget(0.0, 10, dt, max), 2.5);
        assert_eq!(refilled_budget(0.0, 100, dt, max), 5.0, "one second's worth at most");
        let fast = max * SpeedFactor::effective(Some(&SpeedFactor(2.0)));
        assert_eq!(refilled_budget(0.0, 10, dt, fast), 5.0);
        assert_eq!(refilled_budget(0.0, 100, dt, fast), 10.0);
        let slow = max * SpeedFactor::effective(Some(&SpeedFactor(0.5)));
        assert_eq!(refilled_budget(0.0, 100, dt, slow), 2.5);
        for bad in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            assert_eq!(SpeedFactor::effective(Some(&SpeedFactor(bad))), 1.0, "{bad}");
        }
        assert_eq!(SpeedFactor::effective(None), 1.0);
    }
}
