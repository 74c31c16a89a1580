//! A hunt's life: Scheduled -> Active -> Ended, run after run (the ended runs are Archived).
//!
//! A hunt starts by command (`hunt start <id>`, or the mod's `Hunt` config at server start),
//! once at a date and time (`Schedule: {"At": ...}`) or daily in a window
//! (`Schedule: {"Daily": {"At": "20:00", "Minutes": 30}}`); a scheduled start waits within its
//! window until `MinPlayers` are online. One hunt runs at a time. A run ends when every
//! FirstFinder vault is claimed, when its time is up (`DurationSeconds`, or the daily window's
//! end), or by `hunt stop`. Players hear of it: at the start, 60 s and 10 s before a timed
//! end, and at the end ([`Announcement`]).
//!
//! Time is the wall clock ([`HuntClock`], set by the mod before each tick): a hunt's end is a
//! moment, so a run whose end passed while the server was down ends at the first tick after
//! the restart. A new run of a hunt starts from nothing: no claims, no dig effort; the loot
//! seed changes from run to run ([`run_seed`]).

use veltrix_sdk::{bevy_ecs::message::Message, prelude::*};

use crate::{
    hunt::{ClaimsMade, Digging, Stash, start_hunt},
    model::assets::ClaimRule,
    state::{ActiveHunt, AssetsInForce, Vault, VaultClaims},
};
pub use crate::{
    model::schedule::Start,
    state::{ArchivedRun, EndReason, HuntClock, HuntRun, HuntRuns, Phase, run_seed},
};

/// What players are told about a hunt's life (to everyone).
#[derive(Message, Debug, Clone, PartialEq)]
pub enum Announcement {
    Started {
        hunt: String,
        name: String,
        run: u32,
        ends_in_seconds: Option<u32>,
    },
    EndsSoon {
        hunt: String,
        name: String,
        seconds: u32,
    },
    Ended {
        hunt: String,
        name: String,
        run: u32,
        reason: EndReason,
    },
    /// A scheduled start is due but too few players are online.
    Waiting {
        hunt: String,
        name: String,
        online: u32,
        needed: u32,
    },
}

/// The lifecycle as one unit: the clock, the runs and the announcements. It has no system of
/// its own: the mod drives it between ticks (its clock and `drive_lifecycle`).
pub fn plugin(ctx: &mut ModContext) {
    register(ctx.world_mut());
}

/// Registers the lifecycle's resources and messages.
pub fn register(world: &mut World) {
    world.init_resource::<HuntClock>();
    world.init_resource::<HuntRuns>();
    veltrix_sdk::bevy_ecs::message::MessageRegistry::register_message::<Announcement>(world);
}

fn display_name(world: &World, id: &str) -> String {
    world.resource::<AssetsInForce>().0.hunts.get(id).and_then(|h| h.def.display_name.clone()).unwrap_or(id.to_string())
}

/// Starts a new run of hunt `id` now (a command, the config, or its schedule). Refused while
/// another hunt runs. The run starts from nothing: earlier claims and dig effort go.
pub fn start_run(world: &mut World, id: &str) -> Result<String, String> {
    if let Some(active) = world.get_resource::<ActiveHunt>() {
        return Err(if active.id == id {
            format!("hunt {id} is already running")
        } else {
            format!("hunt {} is running: stop it first (hunt stop {})", active.id, active.id)
        });
    }
    let assets = world.resource::<AssetsInForce>().0.clone();
    let now = world.resource::<HuntClock>().unix_ms;
    // Checks the id (with a hint) before anything changes.
    if !assets.hunts.contains_key(id) {
        return start_hunt(world, id).map(|_| String::new());
    }
    let hunt = &assets.hunts[id];
    let mut vaults = world.query_filtered::<Entity, With<Vault>>();
    for entity in vaults.iter(world).collect::<Vec<_>>() {
        world.despawn(entity);
    }
    let mut diggers = world.query::<(&mut Digging, &mut ClaimsMade)>();
    for (mut digging, mut made) in diggers.iter_mut(world) {
        if !digging.effort.is_empty() {
            digging.effort.clear();
        }
        if made.0.as_ref().is_some_and(|asks| !asks.is_empty()) {
            made.0 = Some(Vec::new());
        }
    }
    for stashed in world.resource_mut::<Stash>().0.values_mut() {
        stashed.digging.effort.clear();
        if let Some(asks) = &mut stashed.claims_made.0 {
            asks.clear();
        }
    }
    if let Some(mut unmade) = world.get_resource_mut::<crate::hunt::UnmadeClaims>() {
        unmade.clear();
    }
    start_hunt(world, id)?;
    if let Some(mut releases) = world.get_resource_mut::<crate::clues::ClueReleases>() {
        *releases = Default::default();
    }
    crate::clues::prefetch_paths(world);
    let start = Start::parse(&hunt.def.schedule).unwrap_or(Start::Manual);
    let duration_ms = hunt.def.duration_seconds.map(|s| i64::from(s) * 1000);
    let ends_ms = match start.window_at(now, duration_ms) {
        Some((_, closes)) if !matches!(start, Start::Manual) => closes,
        _ => duration_ms.map(|d| now + d),
    };
    let mut runs = world.resource_mut::<HuntRuns>();
    let state = runs.0.entry(id.to_string()).or_default();
    if state.run > 0 {
        state.archived.push(ArchivedRun {
            run: state.run,
            started_ms: state.started_ms,
            ended_ms: state.ended_ms,
            end_reason: state.end_reason,
        });
    }
    state.run += 1;
    state.phase = Phase::Active;
    state.started_ms = Some(now);
    state.ends_ms = ends_ms;
    state.ended_ms = None;
    state.end_reason = None;
    // The start announcement tells the time left: no warning that says more time than that.
    state.warned = match ends_ms.map(|e| e - now) {
        Some(left) if left <= 10_000 => 3,
        Some(left) if left <= 60_000 => 1,
        _ => 0,
    };
    state.waiting_announced = None;
    let run = state.run;
    let mut active = world.resource_mut::<ActiveHunt>();
    active.run = run;
    active.seed = run_seed(hunt.def.seed, run);
    let ends_in_seconds = ends_ms.map(|e| ((e - now).max(0) / 1000) as u32);
    let name = display_name(world, id);
    world.write_message(Announcement::Started { hunt: id.to_string(), name, run, ends_in_seconds });
    Ok(match ends_in_seconds {
        Some(s) => format!("hunt {id} started (run {run}); it ends in {s} s"),
        None => format!("hunt {id} started (run {run}); it ends when every FirstFinder vault is claimed"),
    })
}

/// Ends the running hunt `id`.
pub fn end_run(world: &mut World, id: &str, reason: EndReason) -> Result<String, String> {
    match world.get_resource::<ActiveHunt>() {
        Some(active) if active.id == id => {}
        Some(active) => return Err(format!("hunt {id} is not running (hunt {} is)", active.id)),
        None => return Err(format!("hunt {id} is not running")),
    }
    let now = world.resource::<HuntClock>().unix_ms;
    world.remove_resource::<ActiveHunt>();
    let mut runs = world.resource_mut::<HuntRuns>();
    let state = runs.0.entry(id.to_string()).or_default();
    state.phase = Phase::Ended;
    state.ended_ms = Some(now);
    state.end_reason = Some(reason);
    let run = state.run;
    let name = display_name(world, id);
    world.write_message(Announcement::Ended { hunt: id.to_string(), name, run, reason });
    Ok(format!("hunt {id} ended (run {run}): {reason:?}"))
}

/// Puts back a run that was active when the server stopped: its vaults, with the state the
/// store gives them afterwards. An unknown hunt is left alone.
pub fn resume_run(world: &mut World, id: &str) -> Result<(), String> {
    let run = world.resource::<HuntRuns>().0.get(id).map_or(1, |r| r.run.max(1));
    start_hunt(world, id)?;
    let mut active = world.resource_mut::<ActiveHunt>();
    active.run = run;
    active.seed = run_seed(active.seed, run);
    crate::clues::prefetch_paths(world);
    Ok(())
}

/// Start of `Tick`: ends the running hunt when its vaults are all claimed or its time is up
/// (after warning at 60 s and 10 s), and starts a scheduled hunt whose window is open and
/// whose players are there. Cheap when nothing happens: a look at the clock and the vaults,
/// nothing allocated.
pub fn drive_lifecycle(
    world: &mut World,
    vaults: &mut QueryState<(&'static Vault, &'static VaultClaims)>,
    players: &mut QueryState<&'static Player>,
) {
    let now = world.resource::<HuntClock>().unix_ms;
    if let Some(active) = world.get_resource::<ActiveHunt>() {
        let (ends_ms, warned) =
            world.resource::<HuntRuns>().0.get(&active.id).map_or((None, 0), |s| (s.ends_ms, s.warned));
        let left = ends_ms.map(|ends| ends - now);
        let due = if all_first_finders_claimed(world, vaults) {
            Some(EndReason::AllClaimed)
        } else if left.is_some_and(|left| left <= 0) {
            Some(EndReason::TimeUp)
        } else {
            None
        };
        let warning = left.and_then(|left| {
            [(1u8, 60_000), (2u8, 10_000)]
                .into_iter()
                .find(|(bit, at)| left <= *at && warned & bit == 0)
                .map(|(bit, _)| (bit, left))
        });
        if due.is_none() && warning.is_none() {
            return;
        }
        let id = world.resource::<ActiveHunt>().id.clone();
        if let Some(reason) = due {
            end_run(world, &id, reason).expect("the hunt runs");
        } else if let Some((bit, left)) = warning {
            let mut runs = world.resource_mut::<HuntRuns>();
            let warned = &mut runs.0.get_mut(&id).expect("the running hunt has a state").warned;
            // The 10 s warning also stands for the 60 s one, should a tick skip past both.
            *warned |= bit | if bit == 2 { 1 } else { 0 };
            let name = display_name(world, &id);
            let seconds = ((left + 999) / 1000) as u32;
            world.write_message(Announcement::EndsSoon { hunt: id, name, seconds });
        }
        return;
    }
    let assets = world.resource::<AssetsInForce>().0.clone();
    for (id, hunt) in &assets.hunts {
        let Ok(start) = Start::parse(&hunt.def.schedule) else { continue };
        let duration_ms = hunt.def.duration_seconds.map(|s| i64::from(s) * 1000);
        let Some((opens, _)) = start.window_at(now, duration_ms) else { continue };
        let (started_ms, waiting_announced) =
            world.resource::<HuntRuns>().0.get(id).map_or((None, None), |s| (s.started_ms, s.waiting_announced));
        if started_ms.is_some_and(|started| started >= opens) {
            continue; // this window's run already happened
        }
        // With other servers sharing the hunt, their players count too.
        let elsewhere = world.get_resource::<veltrix_sdk::PlayersOnOtherServers>().map_or(0, |p| p.0);
        let online = players.iter(world).count() as u32 + elsewhere;
        if online < hunt.def.min_players {
            if waiting_announced != Some(online) {
                world.resource_mut::<HuntRuns>().0.entry(id.clone()).or_default().waiting_announced = Some(online);
                let name = display_name(world, id);
                world.write_message(Announcement::Waiting {
                    hunt: id.clone(),
                    name,
                    online,
                    needed: hunt.def.min_players,
                });
            }
            continue;
        }
        if let Err(e) = start_run(world, id) {
            veltrix_sdk::tracing::warn!("hunt {id}: its scheduled start failed: {e}");
        }
        return;
    }
}

/// Whether the running hunt has FirstFinder vaults and all are claimed.
fn all_first_finders_claimed(world: &World, vaults: &mut QueryState<(&'static Vault, &'static VaultClaims)>) -> bool {
    let mut any = false;
    for (vault, claims) in vaults.iter(world) {
        if vault.0.claim == ClaimRule::FirstFinder {
            if claims.first.is_none() {
                return false;
            }
            any = true;
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_seeds_differ_after_the_first() {
        assert_eq!(run_seed(7, 1), 7);
        assert_ne!(run_seed(7, 2), 7);
        assert_ne!(run_seed(7, 2), run_seed(7, 3));
    }
}
