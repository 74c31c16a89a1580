//! A hunt's life on servers that share it (docs/scale-out.md): each run's start and end is
//! decided once in the ledger and followed by every server.
//!
//! A server that starts run N of a hunt (its schedule, its config, `hunt start`) asks the ledger
//! for `runs.<hunt>.<N>.start` with its start and end times; the first server's times hold, and
//! every other adopts them (so timed clues and the end by time fall alike everywhere). A server
//! that learns of a start it has not made starts that run too. An end is the same with
//! `runs.<hunt>.<N>.end` and the reason: a run ended on one server (by time, by claims, by
//! `hunt stop`) ends on all. Without a `Ledger` none of this runs.

use serde::{Deserialize, Serialize};
use treasure_hunt_ecs::{
    hunt::ActiveHunt,
    lifecycle::{self, EndReason, HuntRuns},
};
use veltrix_sdk::{Decision, Ledger, LedgerNews, key_level, prelude::*, rmp_serde, tracing};

/// Where runs are in the ledger.
const RUNS: &str = "runs.";

/// What the ledger holds for a run's start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RunStart {
    hunt: String,
    run: u32,
    started_ms: i64,
    ends_ms: Option<i64>,
}

/// What the ledger holds for a run's end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RunEnd {
    hunt: String,
    run: u32,
    reason: EndReason,
}

/// The runs this server has told the ledger of: the last start and end asked.
#[derive(Resource, Debug, Default)]
pub struct ToldRuns {
    started: Option<(String, u32)>,
    ended: Option<(String, u32)>,
}

fn key(hunt: &str, run: u32, what: &str) -> String {
    format!("{RUNS}{}.{run}.{what}", key_level(hunt))
}

/// PreTick, after the hunt's life was driven: tells the ledger of a run started or ended here,
/// adopts the times of a start decided elsewhere, and follows starts and ends made elsewhere.
pub fn share_runs(world: &mut World) {
    if !world.contains_resource::<Ledger>() {
        return;
    }
    tell(world);
    let answers = world.resource_mut::<Ledger>().take_answers_under(RUNS);
    for (_, decision) in answers {
        if let Decision::Held(value) = decision
            && let Ok(start) = rmp_serde::from_slice::<RunStart>(&value)
        {
            adopt(world, &start);
        }
    }
    let news = world.resource_mut::<Ledger>().take_news_under(RUNS);
    for LedgerNews { value, .. } in news {
        if let Ok(start) = rmp_serde::from_slice::<RunStart>(&value) {
            follow_start(world, &start);
        } else if let Ok(end) = rmp_serde::from_slice::<RunEnd>(&value) {
            follow_end(world, &end);
        }
    }
    // What following did is told too (a start followed here is already the ledger's).
    tell(world);
}

/// Asks the ledger for the start of the running hunt's run and for the end of the last run
/// ended, each once.
fn tell(world: &mut World) {
    let active = world.get_resource::<ActiveHunt>().map(|a| (a.id.clone(), a.run));
    let mut told = world.remove_resource::<ToldRuns>().unwrap_or_default();
    let runs = world.resource::<HuntRuns>();
    let mut asks = Vec::new();
    if let Some((hunt, run)) = active
        && told.started.as_ref() != Some(&(hunt.clone(), run))
        && let Some(state) = runs.0.get(&hunt)
        && let Some(started_ms) = state.started_ms
    {
        let value = RunStart { hunt: hunt.clone(), run, started_ms, ends_ms: state.ends_ms };
        asks.push((key(&hunt, run, "start"), rmp_serde::to_vec_named(&value).expect("runs serialise")));
        told.started = Some((hunt, run));
    }
    if let Some((hunt, run)) = told.started.clone()
        && told.ended.as_ref() != Some(&(hunt.clone(), run))
        && let Some(state) = runs.0.get(&hunt)
        && state.run == run
        && let Some(reason) = state.end_reason
        && state.phase == lifecycle::Phase::Ended
    {
        let value = RunEnd { hunt: hunt.clone(), run, reason };
        asks.push((key(&hunt, run, "end"), rmp_serde::to_vec_named(&value).expect("runs serialise")));
        told.ended = Some((hunt, run));
    }
    world.insert_resource(told);
    let mut ledger = world.resource_mut::<Ledger>();
    for (key, value) in asks {
        ledger.ask(key, value);
    }
}

/// The running run's times become those the ledger holds for it.
fn adopt(world: &mut World, start: &RunStart) {
    let mut runs = world.resource_mut::<HuntRuns>();
    let Some(state) = runs.0.get_mut(&start.hunt) else { return };
    if state.run == start.run
        && state.phase == lifecycle::Phase::Active
        && (state.started_ms, state.ends_ms) != (Some(start.started_ms), start.ends_ms)
    {
        state.started_ms = Some(start.started_ms);
        state.ends_ms = start.ends_ms;
    }
}

/// A run started elsewhere: started here too if it is newer than this server's, then its times
/// adopted.
fn follow_start(world: &mut World, start: &RunStart) {
    let current = world.resource::<HuntRuns>().0.get(&start.hunt).map_or(0, |s| s.run);
    if start.run > current {
        if start.run > current + 1 {
            // Runs this server never saw: it joins the latest.
            world.resource_mut::<HuntRuns>().0.entry(start.hunt.clone()).or_default().run = start.run - 1;
        }
        if let Some(active) = world.get_resource::<ActiveHunt>().map(|a| a.id.clone()) {
            let _ = lifecycle::end_run(world, &active, EndReason::Stopped);
        }
        match lifecycle::start_run(world, &start.hunt) {
            Ok(text) => tracing::info!("{text}, as another server started it"),
            Err(e) => tracing::warn!("hunt {}: cannot follow run {} started elsewhere: {e}", start.hunt, start.run),
        }
        // Started as the ledger has it: nothing to tell.
        world.get_resource_or_init::<ToldRuns>().started = Some((start.hunt.clone(), start.run));
    }
    adopt(world, start);
}

/// A run ended elsewhere: ended here too if it is the one running.
fn follow_end(world: &mut World, end: &RunEnd) {
    let running = world.get_resource::<ActiveHunt>().is_some_and(|a| a.id == end.hunt && a.run == end.run);
    if running {
        world.get_resource_or_init::<ToldRuns>().ended = Some((end.hunt.clone(), end.run));
        match crate::runs::end(world, &end.hunt, end.reason) {
            Ok(text) => tracing::info!("{text}, as another server ended it"),
            Err(e) => tracing::warn!("hunt {}: cannot follow the end of run {}: {e}", end.hunt, end.run),
        }
    }
}
