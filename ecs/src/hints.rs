//! Hints toward a clue's target tile, measured along walkable paths ([`crate::paths`]):
//!
//! - HotCold: how far the target is, as a band (`Burning`, `Hot`, ...) of the walking distance,
//!   not the straight line: a treasure behind a wall is colder than it looks;
//! - Compass: the direction of the first step of a shortest walk to the target.
//!
//! A request waits in [`PendingHints`] until the target's distance field is ready (computed off
//! the tick thread by the [`PathCache`]); it is answered in the tick the field is ready, from
//! where the player stands in that tick. The tick never waits for a field.

use std::collections::BTreeMap;

use veltrix_sdk::{
    PlayerId,
    bevy_ecs::{message::Message, schedule::SystemSet},
    prelude::*,
};

pub use crate::model::assets::HeatBand;
use crate::{
    model::assets::TilePos,
    paths::{Direction, PathCache, PathCacheConfig},
    vocab::{HuntSet, Reason, Refused},
};

/// The set [`answer_hints`] runs in: after [`HuntSet::Input`], before [`HuntSet::Deliver`]
/// (and so before the mod's publisher).
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HintSet;

/// What kind of hint is asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum HintKind {
    /// The walking distance to the target, as one of these bands.
    HotCold { bands: Vec<HeatBand> },
    /// The direction of the first step toward the target.
    Compass,
}

/// A player asks for a hint toward `target` (written by the mod when a clue is used).
#[derive(Message, Debug, Clone, PartialEq)]
pub struct HintRequest {
    pub entity: Entity,
    pub player: PlayerId,
    pub request: Option<u32>,
    /// The clue's id: one pending hint per player per clue.
    pub clue: String,
    pub target: TilePos,
    pub kind: HintKind,
}

/// A hint's answer.
#[derive(Message, Debug, Clone, PartialEq)]
pub enum HintOutcome {
    /// The walking distance's band.
    HotCold {
        player: PlayerId,
        request: Option<u32>,
        clue: String,
        band: String,
    },
    /// The first step toward the target; `None` when the player stands on it.
    Compass {
        player: PlayerId,
        request: Option<u32>,
        clue: String,
        direction: Option<Direction>,
    },
    Refused(Refused),
}

/// Hints waiting for their distance field: one per player and clue (a new request replaces the
/// one waiting), answered in order of (player, clue).
#[derive(Resource, Debug, Clone, Default)]
pub struct PendingHints(pub BTreeMap<(PlayerId, String), HintRequest>);

/// Hints as one unit: the path cache, pending hints and messages now, the system once the mod
/// has started.
pub fn plugin(ctx: &mut ModContext, config: PathCacheConfig) {
    register(ctx.world_mut(), config);
    add_systems(ctx);
}

/// Registers the path cache, the pending hints and the hint messages.
pub fn register(world: &mut World, config: PathCacheConfig) {
    world.insert_resource(PathCache::new(config));
    world.init_resource::<PendingHints>();
    veltrix_sdk::bevy_ecs::message::MessageRegistry::register_message::<HintRequest>(world);
    veltrix_sdk::bevy_ecs::message::MessageRegistry::register_message::<HintOutcome>(world);
}

/// Adds [`answer_hints`] to `Tick`, in [`HintSet`].
pub fn add_systems(ctx: &mut ModContext) {
    ctx.configure_sets(Tick, HintSet.after(HuntSet::Input).before(HuntSet::Deliver));
    ctx.add_systems(Tick, answer_hints.in_set(HintSet));
}

/// Takes this tick's hint requests, then answers every waiting hint whose target's field is
/// ready, from the player's tile now. A player who left is forgotten.
pub fn answer_hints(
    mut requests: MessageReader<HintRequest>,
    mut pending: ResMut<PendingHints>,
    mut cache: ResMut<PathCache>,
    tiles: Res<TileWorld>,
    positions: Query<&Position>,
    mut out: MessageWriter<HintOutcome>,
) {
    for r in requests.read() {
        pending.0.insert((r.player, r.clue.clone()), r.clone());
    }
    // Every tick, so that fields computed ahead (prefetched) are taken in as they finish.
    cache.sync(&tiles);
    if pending.0.is_empty() {
        return;
    }
    pending.0.retain(|_, r| {
        let Ok(position) = positions.get(r.entity) else { return false };
        let refuse = |reason: Reason| HintOutcome::Refused(Refused { player: r.player, request: r.request, reason });
        let Some(field) = cache.lookup(&tiles, r.target) else { return true };
        // Walkable means inside the world: the floored coordinates are tile indices.
        let here = tiles
            .walkable(position.x, position.y)
            .then_some(TilePos { x: position.x.floor() as u32, y: position.y.floor() as u32 });
        let Some(here) = here else {
            out.write(refuse("you are not standing on walkable ground: the hint cannot be read here".into()));
            return false;
        };
        let Some(distance) = field.distance(here) else {
            out.write(refuse(format!("{}: no path on foot leads from here to what it points at", r.clue).into()));
            return false;
        };
        match &r.kind {
            HintKind::HotCold { bands } => {
                let Some(band) = HeatBand::label_for(bands, distance) else {
                    out.write(refuse(format!("{}: this clue has no heat bands", r.clue).into()));
                    return false;
                };
                out.write(HintOutcome::HotCold {
                    player: r.player,
                    request: r.request,
                    clue: r.clue.clone(),
                    band: band.to_string(),
                });
            }
            HintKind::Compass => {
                out.write(HintOutcome::Compass {
                    player: r.player,
                    request: r.request,
                    clue: r.clue.clone(),
                    direction: field.first_step(here),
                });
            }
        }
        false
    });
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use veltrix_sdk::{Player, Tile};

    use super::*;

    fn at(x: u32, y: u32) -> TilePos {
        TilePos { x, y }
    }

    /// 60 x 30 tiles, a rock wall along x = 30 from y = 0 to y = 27 (the gap at y = 28, 29).
    fn walled() -> TileWorld {
        let mut tiles = TileWorld::flat(60, 30);
        for y in 0..28 {
            tiles.set(30, y, Tile::Rock);
        }
        tiles
    }

    struct Test {
        world: World,
        schedule: Schedule,
    }

    impl Test {
        fn new(tiles: TileWorld, workers: usize) -> Self {
            let mut world = World::new();
            world.insert_resource(tiles);
            register(&mut world, PathCacheConfig { memory_cap_bytes: 1 << 20, workers });
            let mut schedule = Schedule::default();
            schedule.add_systems(answer_hints);
            Test { world, schedule }
        }

        fn player(&mut self, id: PlayerId, x: f32, y: f32) -> Entity {
            self.world.spawn((Player { id, name: format!("p{id}") }, Position { x, y })).id()
        }

        fn ask(&mut self, entity: Entity, request: u32, clue: &str, target: TilePos, kind: HintKind) {
            let player = self.world.get::<Player>(entity).unwrap().id;
            self.world.write_message(HintRequest {
                entity,
                player,
                request: Some(request),
                clue: clue.into(),
                target,
                kind,
            });
        }

        /// Runs one tick: the answers it gave.
        fn tick(&mut self) -> Vec<HintOutcome> {
            self.schedule.run(&mut self.world);
            let answers = self.world.resource_mut::<Messages<HintOutcome>>().drain().collect();
            self.world.resource_mut::<Messages<HintRequest>>().update();
            answers
        }
    }

    fn hot_cold() -> HintKind {
        HintKind::HotCold { bands: HeatBand::defaults() }
    }

    #[test]
    fn hot_cold_bands_follow_the_walking_distance_around_a_wall() {
        let mut t = Test::new(walled(), 0);
        let target = at(33, 3);
        // 5 tiles from the target in a straight line, but on the other side of the wall.
        let behind = t.player(1, 28.5, 3.5);
        // 11 tiles away on the target's side of the wall.
        let open = t.player(2, 44.5, 3.5);
        // 31 tiles away in a straight line, Warm as the crow flies.
        let far = t.player(3, 2.5, 2.5);
        t.ask(behind, 1, "Clue_A", target, hot_cold());
        t.ask(open, 2, "Clue_A", target, hot_cold());
        t.ask(far, 3, "Clue_A", target, hot_cold());
        t.ask(behind, 4, "Clue_B", target, HintKind::Compass);
        let answers = t.tick();
        let field = t.world.resource_mut::<PathCache>().lookup(&walled(), target).unwrap();
        assert_eq!(field.distance(at(28, 3)), Some(53.2), "around the wall, not 5");
        assert_eq!(field.distance(at(44, 3)), Some(11.0));
        assert_eq!(field.distance(at(2, 2)), Some(65.2));
        let band = |player: PlayerId| {
            answers.iter().find_map(|a| match a {
                HintOutcome::HotCold { player: p, band, request, clue } if *p == player => {
                    assert_eq!(clue, "Clue_A");
                    assert_eq!(*request, Some(player as u32));
                    Some(band.clone())
                }
                _ => None,
            })
        };
        assert_eq!(band(1).as_deref(), Some("Cool"), "5 tiles as the crow flies, 53.2 on foot: not Burning");
        assert_eq!(band(2).as_deref(), Some("Hot"));
        assert_eq!(band(3).as_deref(), Some("Cool"), "31 tiles as the crow flies, 65.2 on foot: {answers:?}");
        assert!(answers.contains(&HintOutcome::Compass {
            player: 1,
            request: Some(4),
            clue: "Clue_B".into(),
            direction: Some(Direction::SouthEast),
        }));
        assert_eq!(answers.len(), 4);
        assert!(t.world.resource::<PendingHints>().0.is_empty());
    }

    #[test]
    fn bands_are_taken_in_order_and_the_last_is_open_ended() {
        let bands = HeatBand::defaults();
        for (distance, want) in [(0.0, "Burning"), (5.0, "Burning"), (5.1, "Hot"), (100.0, "Cool"), (1e6, "Cold")] {
            assert_eq!(HeatBand::label_for(&bands, distance), Some(want), "{distance}");
        }
        let closed = &bands[..2];
        assert_eq!(HeatBand::label_for(closed, 99.0), Some("Hot"), "beyond every band: the last");
        assert_eq!(HeatBand::label_for(&[], 1.0), None);
        let json: Vec<HeatBand> =
            serde_json::from_str(r#"[{"Within": 3, "Label": "Near"}, {"Label": "Far"}]"#).unwrap();
        assert_eq!(json[1], HeatBand { within: None, label: "Far".into() });
    }

    #[test]
    fn unreachable_targets_and_unwalkable_players_are_refused() {
        let mut tiles = walled();
        for y in 0..30 {
            tiles.set(30, y, Tile::Rock);
        }
        let mut t = Test::new(tiles, 0);
        let west = t.player(1, 10.5, 10.5);
        let in_rock = t.player(2, 30.5, 10.5);
        let on_target = t.player(3, 40.2, 10.9);
        t.ask(west, 1, "Clue", at(40, 10), hot_cold());
        t.ask(in_rock, 2, "Clue", at(40, 10), HintKind::Compass);
        t.ask(on_target, 3, "Clue", at(40, 10), HintKind::Compass);
        let answers = t.tick();
        let refused = |player: PlayerId, request: u32, reason: &'static str| {
            HintOutcome::Refused(Refused { player, request: Some(request), reason: reason.into() })
        };
        assert_eq!(
            answers,
            [
                refused(1, 1, "Clue: no path on foot leads from here to what it points at"),
                refused(2, 2, "you are not standing on walkable ground: the hint cannot be read here"),
                HintOutcome::Compass { player: 3, request: Some(3), clue: "Clue".into(), direction: None },
            ]
        );
    }

    #[test]
    fn a_hint_waits_for_its_field_and_a_new_request_replaces_the_waiting_one() {
        let mut t = Test::new(walled(), 1);
        let p = t.player(1, 5.5, 5.5);
        t.ask(p, 1, "Clue", at(40, 10), hot_cold());
        t.ask(p, 2, "Clue", at(40, 10), HintKind::Compass);
        let start = Instant::now();
        let mut answers = t.tick();
        while answers.is_empty() {
            assert!(start.elapsed() < Duration::from_secs(10), "no answer after 10 s");
            assert_eq!(t.world.resource::<PendingHints>().0.len(), 1, "one per player and clue");
            std::thread::sleep(Duration::from_millis(1));
            answers = t.tick();
        }
        assert_eq!(
            answers,
            // East and SouthEast start equally short walks; East is nearer the straight line.
            [HintOutcome::Compass {
                player: 1,
                request: Some(2),
                clue: "Clue".into(),
                direction: Some(Direction::East)
            }]
        );
        assert_eq!(t.world.resource::<PathCache>().stats().computations, 1);
    }

    #[test]
    fn the_answer_uses_where_the_player_is_when_the_field_is_ready() {
        let mut t = Test::new(walled(), 1);
        let p = t.player(1, 5.5, 5.5);
        t.ask(p, 1, "Clue", at(40, 10), HintKind::Compass);
        // The field cannot be ready in this tick: the worker has not even been asked yet.
        assert!(t.tick().is_empty());
        t.world.get_mut::<Position>(p).unwrap().x = 50.5;
        let start = Instant::now();
        let answers = loop {
            let answers = t.tick();
            if !answers.is_empty() {
                break answers;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "no answer after 10 s");
            std::thread::sleep(Duration::from_millis(1));
        };
        assert_eq!(
            answers,
            [HintOutcome::Compass {
                player: 1,
                request: Some(1),
                clue: "Clue".into(),
                direction: Some(Direction::SouthWest)
            }]
        );
    }
}
