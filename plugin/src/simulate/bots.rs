//! Simulated players: small, seeded state machines that play as a person at the browser client
//! could, by the server's movement rules, and learn only what a player is told.
//!
//! Every player walks at most the world's `MaxSpeed` (times its `SpeedFactor`) per tick, by the
//! host's rule (a move budget refilled each tick, up to a second's worth; a straight line that
//! touches only walkable tiles), and digs at most 10 times a second, as the browser client does
//! when its dig key is held. What a player does next depends on its behaviour:
//!
//! - **wander**: walks straight to a random spot 10 to 50 tiles away (another spot when rock or
//!   water is in the way) and digs the ground tiles around it (3 x 3), again and again;
//! - **hints**: asks for the HotCold and Compass clues it holds and walks the way they point:
//!   a Compass answer one tile at a time, a HotCold answer by legs that shorten as it gets
//!   warmer, keeping a heading that warms and turning from one that cools; in the hottest band
//!   it digs around;
//! - **clues**: when an Area clue is released, walks to its circle (along a shortest path) and
//!   digs around random spots inside it as it shrinks; a Reveal clue's tile it walks to and digs.
//!
//! Everyone also digs a vault it sees opened nearby (within its sparkle radius, as the server
//! tells players) when it may still claim it, uses each item with an effect as it gets it (one
//! a second), and wanders when it has nothing better to do. A player gives up a clue after 20
//! minutes, or when its vault can no longer be claimed by it. Text riddles are not read.

use treasure_hunt_ecs::{
    clues::area_radius_told,
    hints::HintOutcome,
    hunt::{DigOutcome, Reason},
    model::{
        assets::{ClaimRule, ClueKind, ClueTrigger, TilePos},
        pack::PlacedHunt,
    },
    paths::Direction,
};
use veltrix_sdk::{FromClient, PlayerId, Position, Tile, TileWorld, prelude::Entity};

use super::{
    driver::SimInput,
    shared::{Rng, World, clamp, nearest_ground},
};
use crate::protocol::{AskClue, Dig, UseItem};

/// Digs a second at most, as the browser client sends them while its dig key is held.
pub const DIGS_PER_SECOND: u32 = 10;
/// How long a player keeps at a clue before giving it up, in seconds.
const CLUE_PATIENCE_SECONDS: u64 = 20 * 60;

/// How one simulated player plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Wander,
    Hints,
    Clues,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Wander => "wander",
            Kind::Hints => "hints",
            Kind::Clues => "clues",
        }
    }

    /// Whether a player of this kind follows clues of this kind.
    fn follows(self, kind: &ClueKind) -> bool {
        match self {
            Kind::Wander => false,
            Kind::Hints => matches!(kind, ClueKind::HotCold | ClueKind::Compass),
            Kind::Clues => matches!(kind, ClueKind::Area(_) | ClueKind::Reveal),
        }
    }
}

/// What a player is after.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Goal {
    Wander,
    /// A vault whose tile it knows (seen opened nearby, or revealed).
    Vault {
        at: TilePos,
        clue: Option<usize>,
        until: u64,
    },
    /// A released Area clue's circle.
    Area {
        clue: usize,
        until: u64,
    },
    /// A HotCold or Compass clue; the hottest band heard last (its index) and the heading
    /// (0 to 7, clockwise from North).
    Hint {
        clue: usize,
        until: u64,
        band: Option<usize>,
        heading: u8,
    },
}

/// What a player does this tick toward its goal.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    /// Choose the next step.
    Think,
    /// Walk straight to a point.
    Walk { x: f32, y: f32 },
    /// Walk a shortest path to a tile's centre.
    Path { to: TilePos },
    /// Dig these tiles in turn; a tile that shows progress is dug until it opens.
    Dig { tiles: [TilePos; 9], len: u8, next: u8 },
    /// Asked for a hint at this tick; waiting for the answer.
    Ask { since: Option<u64> },
}

/// One simulated player.
pub struct Bot {
    pub id: PlayerId,
    pub name: String,
    pub kind: Kind,
    pub team: Option<u32>,
    pub entity: Option<Entity>,
    pub pos: Position,
    /// Its `SpeedFactor` (an effect), as the world has it.
    pub speed_factor: f32,
    rng: Rng,
    budget: f32,
    budget_tick: u64,
    goal: Goal,
    step: Step,
    next_dig: u64,
    next_use: u64,
    to_use: Vec<String>,
    /// Clues it is done with, by index.
    done: Vec<bool>,
    /// Clues released to it alone (it came near), by index.
    mine: Vec<bool>,
    /// Vaults it claimed, by index.
    claimed: Vec<bool>,
    /// A clue given on request to ask for before following it (its index).
    ask_for: Option<usize>,
    pub claims: u32,
    pub items: u64,
}

impl Bot {
    pub fn new(id: PlayerId, kind: Kind, team: Option<u32>, pos: Position, seed: u64, hunt: &PlacedHunt) -> Self {
        Bot {
            id,
            name: format!("Bot_{id:04}"),
            kind,
            team,
            entity: None,
            pos,
            speed_factor: 1.0,
            rng: Rng::new(seed, id),
            budget: 0.0,
            budget_tick: 0,
            goal: Goal::Wander,
            step: Step::Think,
            next_dig: 0,
            next_use: 0,
            to_use: Vec::new(),
            done: vec![false; hunt.clues.len()],
            mine: vec![false; hunt.clues.len()],
            claimed: vec![false; hunt.vaults.len()],
            ask_for: None,
            claims: 0,
            items: 0,
        }
    }

    /// This tick's move and request, if any, into `out`.
    pub fn act(&mut self, w: &mut World, out: &mut SimInput) {
        let Some(entity) = self.entity else { return };
        let until = match self.goal {
            Goal::Wander => None,
            Goal::Vault { until, .. } | Goal::Area { until, .. } | Goal::Hint { until, .. } => Some(until),
        };
        if until.is_some_and(|until| w.tick >= until) {
            let clue = self.goal_clue();
            self.give_up(clue);
        }
        if !self.to_use.is_empty() && w.tick >= self.next_use {
            let item = self.to_use.remove(0);
            out.uses.push(FromClient { entity, player: self.id, request: None, message: UseItem { item } });
            self.next_use = w.tick + u64::from(w.rate);
        }
        if let Some(clue) = self.ask_for.take() {
            let clue = w.hunt.clues[clue].id.clone();
            out.asks.push(FromClient { entity, player: self.id, request: None, message: AskClue { clue } });
        }
        // Thinking takes no time: a player that chose a step takes it in the same tick.
        for _ in 0..3 {
            match self.step {
                Step::Think => self.think(w),
                Step::Walk { x, y } => {
                    match self.walk_toward(x, y, w, entity, out) {
                        Walked::Moving => {}
                        Walked::Arrived => self.arrived(w),
                        Walked::Blocked => self.blocked(w),
                    }
                    return;
                }
                Step::Path { to } => {
                    self.follow_path(to, w, entity, out);
                    return;
                }
                Step::Dig { tiles, len, next } => {
                    if next >= len {
                        self.step = match self.goal {
                            // Near a hint's target: a short hop elsewhere, then ask again.
                            Goal::Hint { .. } => self.hop(w),
                            _ => Step::Think,
                        };
                        continue;
                    }
                    if w.tick >= self.next_dig {
                        let at = tiles[next as usize];
                        out.digs.push(FromClient {
                            entity,
                            player: self.id,
                            request: None,
                            message: Dig { x: at.x, y: at.y },
                        });
                        self.next_dig = w.tick + u64::from(w.rate.div_ceil(DIGS_PER_SECOND));
                    }
                    return;
                }
                Step::Ask { since } => {
                    let Goal::Hint { clue, .. } = self.goal else {
                        self.step = Step::Think;
                        continue;
                    };
                    // Asked again when no answer came within two seconds (its path was not ready).
                    if since.is_none_or(|t| w.tick >= t + 2 * u64::from(w.rate)) {
                        let clue = w.hunt.clues[clue].id.clone();
                        out.asks.push(FromClient { entity, player: self.id, request: None, message: AskClue { clue } });
                        self.step = Step::Ask { since: Some(w.tick) };
                    }
                    return;
                }
            }
        }
    }

    /// Chooses the next step toward the goal (and the goal, when it wanders).
    fn think(&mut self, w: &mut World) {
        if self.goal == Goal::Wander
            && let Some(goal) = self.clue_goal(w)
        {
            self.goal = goal;
        }
        self.step = match self.goal {
            Goal::Wander => {
                let angle = self.rng.unit() * std::f32::consts::TAU;
                let distance = self.rng.range(10, 50) as f32;
                let (x, y) = clamp(w.tiles, self.pos.x + distance * angle.cos(), self.pos.y + distance * angle.sin());
                Step::Walk { x, y }
            }
            Goal::Vault { at, .. } => {
                if at.distance_to(self.pos.x, self.pos.y) <= w.reach - 0.25 {
                    dig_tiles(&[at])
                } else {
                    Step::Path { to: at }
                }
            }
            Goal::Area { clue, .. } => {
                let (cx, cy, radius) = area_now(clue, w);
                let (dx, dy) = (self.pos.x - cx, self.pos.y - cy);
                if dx * dx + dy * dy > radius * radius {
                    match nearest_ground(w.tiles, cx, cy) {
                        Some(to) => Step::Path { to },
                        None => {
                            self.give_up(Some(clue));
                            Step::Think
                        }
                    }
                } else {
                    let angle = self.rng.unit() * std::f32::consts::TAU;
                    let r = self.rng.unit().sqrt() * radius;
                    let (x, y) = clamp(w.tiles, cx + r * angle.cos(), cy + r * angle.sin());
                    Step::Walk { x, y }
                }
            }
            Goal::Hint { .. } => Step::Ask { since: None },
        };
    }

    /// A walk to a random point 2 to 4 tiles away.
    fn hop(&mut self, w: &World) -> Step {
        let angle = self.rng.unit() * std::f32::consts::TAU;
        let distance = 2.0 + 2.0 * self.rng.unit();
        let (x, y) = clamp(w.tiles, self.pos.x + distance * angle.cos(), self.pos.y + distance * angle.sin());
        Step::Walk { x, y }
    }

    /// A clue this player follows, released to it and not done with, when there is one.
    fn clue_goal(&mut self, w: &World) -> Option<Goal> {
        let until = w.tick + CLUE_PATIENCE_SECONDS * u64::from(w.rate);
        let candidates: Vec<usize> = (0..w.hunt.clues.len())
            .filter(|&i| {
                let clue = &w.hunt.clues[i];
                !self.done[i]
                    && self.kind.follows(&clue.kind)
                    && (matches!(clue.trigger, ClueTrigger::OnRequest) || w.released[i].is_some() || self.mine[i])
                    && w.vault_index(&clue.vault).is_some_and(|v| self.may_claim(v, w))
            })
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let clue = candidates[(self.rng.next() % candidates.len() as u64) as usize];
        // An Area or Reveal clue given on request is asked for (a hint is asked for anyway).
        if matches!(w.hunt.clues[clue].trigger, ClueTrigger::OnRequest)
            && matches!(w.hunt.clues[clue].kind, ClueKind::Area(_) | ClueKind::Reveal)
        {
            self.ask_for = Some(clue);
        }
        Some(match w.hunt.clues[clue].kind {
            ClueKind::Reveal => Goal::Vault { at: w.hunt.clues[clue].at, clue: Some(clue), until },
            ClueKind::Area(_) => Goal::Area { clue, until },
            _ => Goal::Hint { clue, until, band: None, heading: self.rng.range(0, 7) as u8 },
        })
    }

    /// Whether this player may still claim vault `v`, as far as it knows.
    fn may_claim(&self, v: usize, w: &World) -> bool {
        match w.hunt.vaults[v].claim {
            ClaimRule::FirstFinder => !w.closed[v],
            ClaimRule::PerPlayer | ClaimRule::FirstFinderThenPerPlayer => !self.claimed[v],
            ClaimRule::Team => !self.claimed[v] && self.team.is_none_or(|t| !w.team_claims.contains(&(t, v))),
        }
    }

    /// Gives the goal up (and its clue for good); wanders next.
    fn give_up(&mut self, clue: Option<usize>) {
        if let Some(clue) = clue {
            self.done[clue] = true;
        }
        self.goal = Goal::Wander;
        self.step = Step::Think;
    }

    fn goal_clue(&self) -> Option<usize> {
        match self.goal {
            Goal::Wander => None,
            Goal::Vault { clue, .. } => clue,
            Goal::Area { clue, .. } | Goal::Hint { clue, .. } => Some(clue),
        }
    }

    /// At the end of a straight walk.
    fn arrived(&mut self, w: &mut World) {
        self.step = match self.goal {
            Goal::Hint { .. } => Step::Ask { since: None },
            _ => spot(w.tiles, self.pos),
        };
    }

    /// Rock or water ahead on a straight walk.
    fn blocked(&mut self, _w: &mut World) {
        self.step = match self.goal {
            Goal::Hint { .. } => Step::Ask { since: None },
            Goal::Wander | Goal::Area { .. } | Goal::Vault { .. } => Step::Think,
        };
    }

    /// One tick along the shortest walk to `to`.
    fn follow_path(&mut self, to: TilePos, w: &mut World, entity: Entity, out: &mut SimInput) {
        let here = TilePos { x: self.pos.x.floor() as u32, y: self.pos.y.floor() as u32 };
        let (tx, ty) = if here == to {
            (to.x as f32 + 0.5, to.y as f32 + 0.5)
        } else {
            match w.paths.field(to).first_step(here) {
                Some(d) => {
                    let (dx, dy) = d.offset();
                    (here.x as f32 + dx as f32 + 0.5, here.y as f32 + dy as f32 + 0.5)
                }
                None => {
                    // No walk leads there: the goal cannot be reached.
                    let clue = self.goal_clue();
                    self.give_up(clue);
                    return;
                }
            }
        };
        match self.walk_toward(tx, ty, w, entity, out) {
            Walked::Arrived if here == to => self.step = Step::Think,
            Walked::Blocked => {
                let clue = self.goal_clue();
                self.give_up(clue);
            }
            _ => {}
        }
    }

    /// Moves toward (x, y) by what the movement rules allow this tick.
    fn walk_toward(&mut self, x: f32, y: f32, w: &World, entity: Entity, out: &mut SimInput) -> Walked {
        let (dx, dy) = (x - self.pos.x, y - self.pos.y);
        let distance = (dx * dx + dy * dy).sqrt();
        if distance < 1e-3 {
            return Walked::Arrived;
        }
        // The host's move budget: refilled at MaxSpeed (times the speed factor), up to a second's worth.
        let max = w.max_speed * self.speed_factor;
        let dt = 1.0 / w.rate as f32;
        let budget = (self.budget + (w.tick - self.budget_tick) as f32 * dt * max).min(max);
        let step = distance.min(max * dt).min(budget);
        let to = if step >= distance {
            Position { x, y }
        } else {
            Position { x: self.pos.x + dx / distance * step, y: self.pos.y + dy / distance * step }
        };
        self.budget_tick = w.tick;
        if !w.tiles.segment_walkable(self.pos.x, self.pos.y, to.x, to.y) {
            self.budget = budget;
            return Walked::Blocked;
        }
        self.budget = (budget - step).max(0.0);
        self.pos = to;
        out.moves.push((entity, to));
        if step >= distance { Walked::Arrived } else { Walked::Moving }
    }

    /// What its last dig did.
    pub fn on_dig(&mut self, outcome: &DigOutcome) {
        let Step::Dig { tiles, len, next } = &mut self.step else { return };
        match outcome {
            // A vault under it: dug again until it opens.
            DigOutcome::Progress { at, .. } => {
                tiles[*next as usize] = *at;
            }
            DigOutcome::Finished { .. } => *next += 1,
            DigOutcome::Refused(refused) => {
                *next += 1;
                let closed = matches!(&refused.reason, Reason::Text(text) if text.starts_with("already claimed"));
                if closed && *len == 1 && matches!(self.goal, Goal::Vault { .. }) {
                    let clue = self.goal_clue();
                    self.give_up(clue);
                }
            }
        }
    }

    /// It claimed vault `v`.
    pub fn on_claimed(&mut self, v: usize, w: &World) {
        self.claimed[v] = true;
        self.claims += 1;
        let vault = &w.hunt.vaults[v];
        let ours = match self.goal {
            Goal::Vault { at, .. } => at == vault.at,
            _ => self.goal_clue().is_some_and(|c| w.hunt.clues[c].vault == vault.id),
        };
        if ours {
            let clue = self.goal_clue();
            self.give_up(clue);
        }
    }

    /// Vault `v` was opened within its sparkle radius of this player: it goes to dig it when it
    /// may claim it too, unless it already is on a vault's tile.
    pub fn on_sparkle(&mut self, v: usize, w: &World) {
        if matches!(self.goal, Goal::Vault { .. }) || !self.may_claim(v, w) {
            return;
        }
        let until = w.tick + CLUE_PATIENCE_SECONDS * u64::from(w.rate);
        self.goal = Goal::Vault { at: w.hunt.vaults[v].at, clue: None, until };
        self.step = Step::Think;
    }

    /// Vault `v` can no longer be claimed by this player (a FirstFinder vault claimed, or its
    /// team's claim): a goal about it is given up.
    pub fn on_closed(&mut self, v: usize, w: &World) {
        let vault = &w.hunt.vaults[v];
        let about = match self.goal {
            Goal::Wander => false,
            Goal::Vault { at, .. } => at == vault.at,
            _ => self.goal_clue().is_some_and(|c| w.hunt.clues[c].vault == vault.id),
        };
        if about {
            let clue = self.goal_clue();
            self.give_up(clue);
        }
        for (i, clue) in w.hunt.clues.iter().enumerate() {
            if clue.vault == vault.id && !self.may_claim(v, w) {
                self.done[i] = true;
            }
        }
    }

    /// Clue `clue` was released to this player alone (it came near).
    pub fn on_released_to_me(&mut self, clue: usize) {
        self.mine[clue] = true;
    }

    /// A wandering player looks again at what it may follow (a clue was released).
    pub fn on_release(&mut self) {
        if self.goal == Goal::Wander && self.kind != Kind::Wander {
            self.step = Step::Think;
        }
    }

    /// The answer to its hint.
    pub fn on_hint(&mut self, outcome: &HintOutcome, w: &World) {
        let Goal::Hint { clue, until, band, heading } = self.goal else { return };
        let here = TilePos { x: self.pos.x.floor() as u32, y: self.pos.y.floor() as u32 };
        match outcome {
            HintOutcome::Compass { direction: None, .. } => self.step = dig_tiles(&[here]),
            HintOutcome::Compass { direction: Some(d), .. } => {
                let (dx, dy) = d.offset();
                let (x, y) = (here.x as f32 + dx as f32 + 0.5, here.y as f32 + dy as f32 + 0.5);
                self.step = Step::Walk { x, y };
            }
            HintOutcome::HotCold { band: label, .. } => {
                let bands = &w.hunt.clues[clue].bands;
                let now = bands.iter().position(|b| b.label == *label).unwrap_or(bands.len());
                if now == 0 {
                    // The hottest band: dig around, then a short hop ([`Bot::act`]), and ask again.
                    self.goal = Goal::Hint { clue, until, band: Some(now), heading: self.rng.range(0, 7) as u8 };
                    self.step = spot(w.tiles, self.pos);
                    return;
                }
                let heading = match band {
                    Some(before) if now < before => heading,
                    Some(before) if now > before => (heading + 3 + self.rng.range(0, 2) as u8) % 8,
                    Some(_) => (heading + if self.rng.unit() < 0.5 { 1 } else { 7 }) % 8,
                    None => heading,
                };
                // Legs shorten as it warms: half the band's reach, 3 to 20 tiles.
                let leg = bands.get(now).and_then(|b| b.within).map_or(20.0, |within| (within / 2.0).clamp(3.0, 20.0));
                let (dx, dy) = Direction::ALL[heading as usize].offset();
                let norm = ((dx * dx + dy * dy) as f32).sqrt();
                let (x, y) = clamp(w.tiles, self.pos.x + dx as f32 / norm * leg, self.pos.y + dy as f32 / norm * leg);
                self.goal = Goal::Hint { clue, until, band: Some(now), heading };
                self.step = Step::Walk { x, y };
            }
            HintOutcome::Refused(_) => self.give_up(Some(clue)),
        }
    }

    /// It got these items: those with an effect it uses, one a second (at most 3 waiting).
    pub fn on_loot(&mut self, item: &str, quantity: u32, has_effect: bool) {
        self.items += u64::from(quantity);
        if has_effect {
            for _ in 0..quantity.min(3) {
                if self.to_use.len() < 3 {
                    self.to_use.push(item.to_string());
                }
            }
        }
    }
}

enum Walked {
    Moving,
    Arrived,
    Blocked,
}

/// An Area clue's circle as players are told it now: centre and radius.
fn area_now(index: usize, w: &World) -> (f32, f32, f32) {
    let clue = &w.hunt.clues[index];
    let (cx, cy) = clue.centre.unwrap_or((clue.at.x as f32 + 0.5, clue.at.y as f32 + 0.5));
    let radius = match (&clue.kind, w.released.get(index).copied().flatten()) {
        (ClueKind::Area(area), Some(at)) => area_radius_told(area, w.now_ms - at),
        (ClueKind::Area(area), None) => area.radius,
        _ => 8.0,
    };
    (cx, cy, radius)
}

/// Digging the ground tiles around a position: its own tile and the eight beside it.
fn spot(tiles: &TileWorld, at: Position) -> Step {
    let (x, y) = (at.x.floor() as i64, at.y.floor() as i64);
    let mut around = [TilePos { x: 0, y: 0 }; 9];
    let mut len = 0;
    for (dx, dy) in [(0, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0)] {
        if tiles.get(x + dx, y + dy) == Some(Tile::Ground) {
            around[len] = TilePos { x: (x + dx) as u32, y: (y + dy) as u32 };
            len += 1;
        }
    }
    Step::Dig { tiles: around, len: len as u8, next: 0 }
}

fn dig_tiles(at: &[TilePos]) -> Step {
    let mut tiles = [TilePos { x: 0, y: 0 }; 9];
    tiles[..at.len()].copy_from_slice(at);
    Step::Dig { tiles, len: at.len() as u8, next: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spot is the ground among the nine tiles around a position.
    #[test]
    fn a_spot_digs_the_ground_around() {
        let mut tiles = TileWorld::flat(8, 8);
        tiles.set(3, 3, Tile::Rock);
        let Step::Dig { tiles: at, len, next: 0 } = spot(&tiles, Position { x: 2.5, y: 2.5 }) else { panic!() };
        assert_eq!(len, 8, "the rock is left out");
        assert_eq!(at[0], TilePos { x: 2, y: 2 }, "its own tile first");
        let Step::Dig { len, .. } = spot(&tiles, Position { x: 0.5, y: 0.5 }) else { panic!() };
        assert_eq!(len, 4, "the world's corner");
    }
}
