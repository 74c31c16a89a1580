//! Clues of the running hunt: released by time, by a vault's first claim (chains), by a player
//! entering a circle, or given on request.
//!
//! A clue released to everyone is one outcome the mod sends as one broadcast (encoded once); a
//! proximity clue goes to the player who came near. A player who joins (or comes back) gets
//! every clue already released to it. Text, Area and Reveal clues say the same to everyone;
//! HotCold and Compass depend on where the asking player stands, so releasing one makes it
//! available and each player asks for it (`AskClue`), answered from the path cache
//! ([`crate::hints`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use veltrix_sdk::{
    PlayerId,
    bevy_ecs::{self, message::Message, schedule::SystemSet, system::SystemParam},
    prelude::*,
};

use crate::{
    hints::{HintKind, HintRequest},
    model::assets::{AreaClue, ClueKind, ClueTrigger, TilePos},
    model::pack::PlacedClue,
    state::{ActiveHunt, AssetsInForce, HuntClock, HuntRuns},
    vocab::{ClaimOutcome, HuntSet, Reason, Refused},
};

/// What the running hunt's players have been given.
#[derive(Resource, Debug, Clone, Default, PartialEq)]
pub struct ClueReleases {
    /// Clues released to everyone: when (ms), and the radius last sent for a shrinking area.
    pub to_all: BTreeMap<String, Released>,
    /// Clues released to single players (proximity).
    pub to_player: HashMap<PlayerId, BTreeSet<String>>,
}

/// When a clue went out to everyone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Released {
    pub at_ms: i64,
    /// An Area clue's radius as last sent (whole tiles), to send it again when it shrinks.
    pub radius_sent: Option<u32>,
}

impl ClueReleases {
    /// Whether `player` may see clue `clue` now.
    pub fn available(&self, clue: &PlacedClue, player: PlayerId) -> bool {
        matches!(clue.trigger, ClueTrigger::OnRequest)
            || self.to_all.contains_key(&clue.id)
            || self.to_player.get(&player).is_some_and(|ids| ids.contains(&clue.id))
    }
}

/// A player asks for a clue by id.
#[derive(Message, Debug, Clone, PartialEq)]
pub struct ClueRequest {
    pub entity: Entity,
    pub player: PlayerId,
    pub request: Option<u32>,
    pub clue: String,
}

/// What the mod sends about clues; clues by their index in the running hunt's `clues`.
#[derive(Message, Debug, Clone, PartialEq)]
pub enum ClueOutcome {
    /// To everyone (one broadcast).
    ReleasedToAll {
        clue: usize,
    },
    /// To one player (it came near).
    ReleasedTo {
        player: PlayerId,
        clue: usize,
    },
    /// An Area clue's circle shrank: to everyone.
    Shrunk {
        clue: usize,
    },
    /// A joining player: every clue released to it so far.
    Joined {
        player: PlayerId,
    },
    /// A clue asked for (Text, Area, Reveal).
    Answer {
        player: PlayerId,
        request: Option<u32>,
        clue: usize,
    },
    Refused(Refused),
}

/// The radius of an Area clue `elapsed_ms` after its release.
pub fn area_radius(area: &AreaClue, elapsed_ms: i64) -> f64 {
    let (from, to) = (f64::from(area.radius), f64::from(area.shrink_to.unwrap_or(area.radius)));
    if area.shrink_seconds == 0 {
        return to;
    }
    let done = (elapsed_ms.max(0) as f64 / (f64::from(area.shrink_seconds) * 1000.0)).min(1.0);
    from + (to - from) * done
}

/// The radius players are told `elapsed_ms` after an Area clue's release: as it was at the
/// last whole second since the release (the clue's own clock, so updates come a second
/// apart), rounded up to whole tiles (the circle still holds the vault, and reaches `ShrinkTo`
/// at `ShrinkSeconds`, not early).
pub fn area_radius_told(area: &AreaClue, elapsed_ms: i64) -> f32 {
    let seconds_ms = elapsed_ms.max(0) / 1000 * 1000;
    // A radius a hair above a whole tile from rounding is that tile, not the next one up.
    (area_radius(area, seconds_ms) - 1e-6).ceil() as f32
}

/// Clue systems: after the claims (chains), before hints are answered (a HotCold or Compass
/// clue asked for this tick is answered this tick when its path is cached).
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClueSet;

/// Adds the clue systems to `Tick`, in [`ClueSet`].
pub fn add_systems(ctx: &mut ModContext) {
    ctx.configure_sets(Tick, ClueSet.after(HuntSet::Claim).before(crate::hints::HintSet));
    ctx.add_systems(Tick, (release_clues, answer_clue_requests).chain().in_set(ClueSet));
}

/// Fields for the target of every HotCold and Compass clue of every hunt in force, computed
/// ahead of the first question, off the tick thread: called when the pack comes in force (server
/// start, reload) and when a run starts, so that a hint is answered in the tick it is asked
/// rather than after a field's computation (a quarter of a second on 2048 x 2048 tiles).
/// The running hunt's targets are queued last, so they are the last evicted; other hunts' stop
/// once their fields would fill half the cache (a pack with many hunts does not churn it).
pub fn prefetch_paths(world: &mut World) {
    let Some(cache) = world.get_resource::<crate::paths::PathCache>() else { return };
    let field_bytes = crate::paths::DistanceField::bytes_for(world.resource::<TileWorld>());
    let budget = (cache.config().memory_cap_bytes / 2) / field_bytes.max(1);
    let active = world.get_resource::<ActiveHunt>().map(|a| a.id.clone());
    let assets = world.resource::<AssetsInForce>().0.clone();
    let targets_of = |id: &str| -> Vec<TilePos> {
        let Some(placed) = assets.hunts.get(id) else { return Vec::new() };
        placed.clues.iter().filter(|c| matches!(c.kind, ClueKind::HotCold | ClueKind::Compass)).map(|c| c.at).collect()
    };
    let mut targets: Vec<TilePos> = assets
        .hunts
        .keys()
        .filter(|id| Some(*id) != active.as_ref())
        .flat_map(|id| targets_of(id))
        .take(budget)
        .collect();
    if let Some(id) = &active {
        targets.extend(targets_of(id));
    }
    world.resource_scope(|world, mut cache: Mut<crate::paths::PathCache>| {
        let tiles = world.resource::<TileWorld>();
        for target in targets {
            cache.prefetch(tiles, target);
        }
    });
}

/// Clues as one unit: their resource and messages now, their systems once the mod has started.
pub fn plugin(ctx: &mut ModContext) {
    register(ctx.world_mut());
    add_systems(ctx);
}

/// Registers the clues' resource and messages.
pub fn register(world: &mut World) {
    world.init_resource::<ClueReleases>();
    veltrix_sdk::bevy_ecs::message::MessageRegistry::register_message::<ClueRequest>(world);
    veltrix_sdk::bevy_ecs::message::MessageRegistry::register_message::<ClueOutcome>(world);
}

/// The running hunt as the release of its clues reads it: which hunt, its clues (in the assets
/// in force), when its run started, and the time now.
#[derive(SystemParam)]
pub struct ReleaseClock<'w> {
    hunt: Option<Res<'w, ActiveHunt>>,
    assets: Res<'w, AssetsInForce>,
    runs: Res<'w, HuntRuns>,
    clock: Res<'w, HuntClock>,
}

/// The players who joined this tick, and those who moved.
#[derive(SystemParam)]
pub struct Arrivals<'w, 's> {
    joined: Query<'w, 's, &'static Player, Added<Player>>,
    moved: Query<'w, 's, (&'static Player, &'static Position), Changed<Position>>,
}

/// After the claims: releases the clues whose time came or whose vault was just claimed, the
/// proximity clues of players who moved into their circle, and sends a shrinking area again
/// when the radius told lost a whole tile (looked at once a second from its release). Joining
/// players get what was released before.
pub fn release_clues(
    time: ReleaseClock,
    mut claims: MessageReader<ClaimOutcome>,
    mut releases: ResMut<ClueReleases>,
    arrivals: Arrivals,
    mut out: MessageWriter<ClueOutcome>,
) {
    let Some(hunt) = &time.hunt else {
        claims.clear();
        return;
    };
    let Some(placed) = time.assets.0.hunts.get(&hunt.id) else { return };
    let started = time.runs.0.get(&hunt.id).and_then(|r| r.started_ms).unwrap_or(time.clock.unix_ms);
    let now = time.clock.unix_ms;
    let release_to_all = |releases: &mut ClueReleases, index: usize, out: &mut MessageWriter<ClueOutcome>| {
        let clue = &placed.clues[index];
        if releases.to_all.contains_key(&clue.id) {
            return;
        }
        let radius_sent = match &clue.kind {
            ClueKind::Area(area) => Some(area_radius_told(area, 0) as u32),
            _ => None,
        };
        releases.to_all.insert(clue.id.clone(), Released { at_ms: now, radius_sent });
        out.write(ClueOutcome::ReleasedToAll { clue: index });
    };
    for (index, clue) in placed.clues.iter().enumerate() {
        // Reads first: the resource counts as changed (and is saved) only when written.
        if let ClueTrigger::AfterSeconds(s) = clue.trigger
            && now >= started + i64::from(s) * 1000
            && !releases.to_all.contains_key(&clue.id)
        {
            release_to_all(&mut releases, index, &mut out);
        }
    }
    for claim in claims.read() {
        let ClaimOutcome::Claimed(claim) = claim else { continue };
        if !claim.first {
            continue;
        }
        for (index, clue) in placed.clues.iter().enumerate() {
            if matches!(&clue.trigger, ClueTrigger::VaultClaimed(v) if *v == claim.vault.id) {
                release_to_all(&mut releases, index, &mut out);
            }
        }
    }
    for player in &arrivals.joined {
        out.write(ClueOutcome::Joined { player: player.id });
    }
    release_near(&placed.clues, &arrivals, &mut releases, &mut out);
    resend_shrunk_areas(&placed.clues, now, &mut releases, &mut out);
}

/// Releases the proximity clues of the players who moved into their circle (each once).
fn release_near(
    clues: &[PlacedClue],
    arrivals: &Arrivals,
    releases: &mut ResMut<ClueReleases>,
    out: &mut MessageWriter<ClueOutcome>,
) {
    for (player, position) in &arrivals.moved {
        for (index, clue) in clues.iter().enumerate() {
            let ClueTrigger::Enter(circle) = &clue.trigger else { continue };
            let (dx, dy) = (position.x - circle.x, position.y - circle.y);
            if dx * dx + dy * dy > circle.radius * circle.radius
                || releases.to_all.contains_key(&clue.id)
                || releases.to_player.get(&player.id).is_some_and(|ids| ids.contains(&clue.id))
            {
                continue;
            }
            if releases.to_player.entry(player.id).or_default().insert(clue.id.clone()) {
                out.write(ClueOutcome::ReleasedTo { player: player.id, clue: index });
            }
        }
    }
}

/// Sends a released shrinking area again when the radius told lost a whole tile.
fn resend_shrunk_areas(
    clues: &[PlacedClue],
    now: i64,
    releases: &mut ResMut<ClueReleases>,
    out: &mut MessageWriter<ClueOutcome>,
) {
    for (index, clue) in clues.iter().enumerate() {
        let ClueKind::Area(area) = &clue.kind else { continue };
        let Some(released) = releases.to_all.get(&clue.id).copied() else { continue };
        // Changes at most once a second, counted from the clue's release.
        let radius = area_radius_told(area, now - released.at_ms) as u32;
        if released.radius_sent.is_some_and(|sent| radius < sent) {
            releases.to_all.get_mut(&clue.id).expect("released").radius_sent = Some(radius);
            out.write(ClueOutcome::Shrunk { clue: index });
        }
    }
}

/// Answers players asking for a clue: refused when the player does not hold it; a HotCold or
/// Compass clue becomes a [`HintRequest`], answered when its path is ready.
///
/// A clue that exists but is not released to the player gets the very refusal an unknown id
/// gets (built from the clues the player holds, never from the hunt's others), so asking
/// cannot tell which ids the hunt has.
pub fn answer_clue_requests(
    hunt: Option<Res<ActiveHunt>>,
    assets: Res<AssetsInForce>,
    releases: Res<ClueReleases>,
    mut requests: MessageReader<ClueRequest>,
    mut out: MessageWriter<ClueOutcome>,
    mut hints: MessageWriter<HintRequest>,
) {
    for r in requests.read() {
        let refuse = |reason: Reason| ClueOutcome::Refused(Refused { player: r.player, request: r.request, reason });
        let Some(placed) = hunt.as_ref().and_then(|h| assets.0.hunts.get(&h.id)) else {
            out.write(refuse("no hunt is running: there are no clues".into()));
            continue;
        };
        let held = |c: &&PlacedClue| releases.available(c, r.player);
        let Some(index) = placed.clues.iter().position(|c| c.id == r.clue && held(&c)) else {
            let yours: Vec<&str> = placed.clues.iter().filter(held).map(|c| c.id.as_str()).collect();
            out.write(refuse(
                match veltrix_sdk::did_you_mean(&r.clue, &yours) {
                    Some(hint) => format!("you hold no clue {:?} (did you mean {hint:?}?)", r.clue),
                    None if yours.is_empty() => format!("you hold no clue {:?}: none is released to you yet", r.clue),
                    None => format!("you hold no clue {:?}; yours: {}", r.clue, yours.join(", ")),
                }
                .into(),
            ));
            continue;
        };
        let clue = &placed.clues[index];
        let kind = match clue.kind {
            ClueKind::HotCold => HintKind::HotCold { bands: clue.bands.clone() },
            ClueKind::Compass => HintKind::Compass,
            _ => {
                out.write(ClueOutcome::Answer { player: r.player, request: r.request, clue: index });
                continue;
            }
        };
        // Measured from where the player stands when the path is ready ([`crate::hints`]).
        hints.write(HintRequest {
            entity: r.entity,
            player: r.player,
            request: r.request,
            clue: clue.id.clone(),
            target: clue.at,
            kind,
        });
    }
}

/// The clues `player` holds (or every clue, for the console), one line each, for `hunt clues`.
pub fn describe_clues(world: &World, player: Option<PlayerId>) -> Vec<String> {
    let Some(hunt) = world.get_resource::<ActiveHunt>() else { return Vec::new() };
    let assets = world.resource::<AssetsInForce>();
    let releases = world.resource::<ClueReleases>();
    let Some(placed) = assets.0.hunts.get(&hunt.id) else { return Vec::new() };
    placed
        .clues
        .iter()
        .filter_map(|c| {
            let state = match player {
                Some(p) if !releases.available(c, p) => return None,
                Some(_) => String::new(),
                None if releases.to_all.contains_key(&c.id) => " (released to all)".into(),
                None => format!(" ({:?})", c.trigger),
            };
            Some(format!("{} [{}]{state}", c.id, c.kind.name()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The radius told changes on whole seconds after the release and is rounded up: it loses a
    /// tile only once the circle really has, and reaches ShrinkTo at ShrinkSeconds.
    #[test]
    fn the_radius_told_follows_the_clues_own_seconds_rounded_up() {
        let slow = AreaClue { radius: 10.0, shrink_to: Some(9.0), shrink_seconds: 10 };
        let told = |area: &AreaClue, ms: i64| area_radius_told(area, ms);
        assert_eq!([0, 450, 999, 5000, 9999].map(|ms| told(&slow, ms)), [10.0; 5]);
        assert_eq!([10_000, 60_000].map(|ms| told(&slow, ms)), [9.0; 2]);
        let fast = AreaClue { radius: 12.0, shrink_to: Some(4.0), shrink_seconds: 4 };
        assert_eq!([0, 999, 1000, 2500, 3000, 4000].map(|ms| told(&fast, ms)), [12.0, 12.0, 10.0, 8.0, 6.0, 4.0]);
        // Whole radii reached on whole seconds are not rounded one tile up.
        let long = AreaClue { radius: 48.0, shrink_to: Some(12.0), shrink_seconds: 600 };
        assert_eq!([100_000, 200_000, 600_000].map(|ms| told(&long, ms)), [42.0, 36.0, 12.0]);
        let fixed = AreaClue { radius: 7.5, shrink_to: None, shrink_seconds: 0 };
        assert_eq!(told(&fixed, 3000), 8.0, "a fractional radius is told rounded up");
    }
}
