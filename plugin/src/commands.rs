//! The `hunt` command, typed on the console or sent by a player. Each subcommand has its own
//! permission node, `veltrix.treasurehunt.command.hunt.<subcommand>`; `clues` and `rank` are
//! held by every player unless `permissions.json` denies them, the rest by operators.

use treasure_hunt_ecs::{
    assets::ClaimRule,
    clues::{ClueReleases, describe_clues},
    hunt::{ActiveHunt, AssetsInForce, InventoryChanged, Vault, VaultClaims},
    inventory::{Inventory, ItemCatalog, PendingRewards, grant},
    leaderboard::{Leaderboard, rank_of},
    lifecycle::{self, HuntClock, HuntRuns, Phase},
    loot::ItemStack,
};
use veltrix_sdk::{CommandSource, Subcommand, did_you_mean, prelude::*};

use crate::reload::Reloads;

/// Registers `hunt` and its subcommands.
pub fn register(ctx: &mut ModContext) {
    let sub = |name: &str, usage: &str, description: &str, everyone: bool| Subcommand {
        name: name.into(),
        usage: usage.into(),
        description: description.into(),
        everyone,
    };
    let subcommands = vec![
        sub("list", "hunt list", "the hunts of the pack and where each is in its life", false),
        sub("start", "hunt start <id>", "start a run of a hunt now", false),
        sub("stop", "hunt stop <id>", "end the running hunt now", false),
        sub("status", "hunt status [id]", "a hunt's state: phase, time left, vaults claimed", false),
        sub("reload", "hunt reload", "re-read and re-check the asset pack (the result is logged)", false),
        sub("give", "hunt give <player> <item> [n]", "give a player items (n = 1 by default)", false),
        sub("effect", "hunt effect <player> <effect> [seconds]", "give a player an active effect", false),
        sub("clues", "hunt clues", "the clues you have", true),
        sub("rank", "hunt rank", "your place on the leaderboard", true),
    ];
    ctx.add_command_with_subcommands("hunt", "the treasure hunt", subcommands, run);
}

fn run(world: &mut World, source: &CommandSource, args: &[&str]) -> Result<String, String> {
    let (word, rest) = args.split_first().expect("the dispatcher passes the subcommand");
    match *word {
        "list" => no_more(rest).map(|()| list(world)),
        "start" => {
            let id = one_hunt_id(world, rest)?;
            lifecycle::start_run(world, &id)
        }
        "stop" => {
            let id = match rest {
                [] => world.get_resource::<ActiveHunt>().map(|a| a.id.clone()).ok_or("no hunt is running")?,
                _ => one_hunt_id(world, rest)?,
            };
            crate::runs::stop(world, &id)
        }
        "status" => {
            let id = match rest {
                [] => world
                    .get_resource::<ActiveHunt>()
                    .map(|a| a.id.clone())
                    .ok_or("no hunt is running: name one (hunt list shows them)")?,
                _ => one_hunt_id(world, rest)?,
            };
            Ok(status(world, &id))
        }
        "reload" => {
            no_more(rest)?;
            request_reload(world)
        }
        "give" => give(world, rest),
        "effect" => give_effect(world, rest),
        "clues" => {
            no_more(rest)?;
            Ok(clues_of(world, source))
        }
        "rank" => {
            no_more(rest)?;
            rank(world, source)
        }
        other => unreachable!("the dispatcher checked the subcommand {other}"),
    }
}

/// `hunt reload`: asks the asset loader to read the pack again.
fn request_reload(world: &World) -> Result<String, String> {
    match world.get_resource::<Reloads>() {
        Some(reloads) if reloads.request() => {
            Ok("re-reading the asset pack; the result (applied, or every error) is logged".into())
        }
        _ => Err("the asset loader is not running".into()),
    }
}

/// `hunt effect <player> <effect> [seconds]`: grants an online player an effect.
fn give_effect(world: &mut World, rest: &[&str]) -> Result<String, String> {
    let (name, effect, seconds) = match rest {
        [name, effect] => (*name, *effect, None),
        [name, effect, s] => (
            *name,
            *effect,
            Some(
                s.parse::<f32>()
                    .ok()
                    .filter(|s| *s > 0.0 && s.is_finite())
                    .ok_or(format!("{s:?} is not a number of seconds above 0"))?,
            ),
        ),
        _ => return Err("expected a player, an effect and maybe seconds".into()),
    };
    let (entity, _) = online(world, name)?;
    treasure_hunt_ecs::effects::grant_now(world, entity, effect, seconds)
}

/// `hunt clues`: the clues the player holds (every clue released, for the console).
fn clues_of(world: &World, source: &CommandSource) -> String {
    let player = match source {
        CommandSource::Player { id, .. } => Some(*id),
        CommandSource::Console => None,
    };
    if world.get_resource::<ActiveHunt>().is_none() {
        return "no hunt is running".into();
    }
    let lines = describe_clues(world, player);
    if lines.is_empty() { "no clues yet".into() } else { lines.join("\n") }
}

/// `hunt rank`: the player's place on the leaderboard.
fn rank(world: &World, source: &CommandSource) -> Result<String, String> {
    let CommandSource::Player { id, .. } = source else {
        return Err("the console has no rank: use hunt status for the board".into());
    };
    let board = world.resource::<Leaderboard>();
    Ok(match rank_of(board, *id) {
        Some(r) => {
            format!("you are #{} of {} with {} vault(s) and a score of {}", r.rank, r.of, r.entry.vaults, r.entry.score)
        }
        None if board.is_empty() => "no one is ranked yet".into(),
        None => format!("you are not ranked yet ({} player(s) are): claim a vault", board.len()),
    })
}

fn no_more(rest: &[&str]) -> Result<(), String> {
    match rest {
        [] => Ok(()),
        extra => Err(format!("unexpected {:?}", extra.join(" "))),
    }
}

/// The one argument, a hunt id of the pack.
fn one_hunt_id(world: &World, rest: &[&str]) -> Result<String, String> {
    let [id] = rest else {
        return Err(if rest.is_empty() { "which hunt? name it".into() } else { format!("one hunt id, not {rest:?}") });
    };
    let assets = world.resource::<AssetsInForce>();
    if assets.0.hunts.contains_key(*id) {
        return Ok(id.to_string());
    }
    let known: Vec<&str> = assets.0.hunts.keys().map(String::as_str).collect();
    Err(match did_you_mean(id, &known) {
        Some(hint) => format!("no hunt \"{id}\" (did you mean \"{hint}\"?)"),
        None => format!("no hunt \"{id}\"; the pack has: {}", known.join(", ")),
    })
}

fn list(world: &World) -> String {
    let assets = world.resource::<AssetsInForce>();
    let runs = world.resource::<HuntRuns>();
    if assets.0.hunts.is_empty() {
        return "the pack has no hunts".into();
    }
    let lines: Vec<String> = assets
        .0
        .hunts
        .values()
        .map(|h| {
            let state = runs.0.get(&h.id);
            let phase = state.map_or(Phase::Scheduled, |s| s.phase);
            let runs_so_far = state.map_or(0, |s| s.run);
            format!(
                "{} ({}): {phase:?}, {} vaults, {} clues, schedule {:?}, {runs_so_far} run(s)",
                h.id,
                h.def.display_name.as_deref().unwrap_or(&h.id),
                h.vaults.len(),
                h.clues.len(),
                h.def.schedule
            )
        })
        .collect();
    lines.join("\n")
}

fn status(world: &mut World, id: &str) -> String {
    let now = world.resource::<HuntClock>().unix_ms;
    let state = world.resource::<HuntRuns>().0.get(id).cloned().unwrap_or_default();
    let mut lines = vec![format!("hunt {id}: {:?}, run {}", state.phase, state.run)];
    if let Some(started) = state.started_ms {
        lines.push(format!("started {} s ago", (now - started).max(0) / 1000));
    }
    match (state.phase, state.ends_ms, state.end_reason) {
        (Phase::Active, Some(ends), _) => lines.push(format!("ends in {} s", (ends - now).max(0) / 1000)),
        (Phase::Active, None, _) => lines.push("ends when every FirstFinder vault is claimed".into()),
        (Phase::Ended, _, Some(reason)) => lines.push(format!("ended: {reason:?}")),
        _ => {}
    }
    if state.phase == Phase::Ended {
        match crate::leaderboard::final_board_of(world, id) {
            Ok(Some(board)) if !board.top.is_empty() => {
                lines.push(format!("final board ({} ranked):", board.players));
                lines.extend(
                    board
                        .top
                        .iter()
                        .map(|e| format!("  #{} {}: {} vault(s), score {}", e.rank, e.name, e.vaults, e.score)),
                );
            }
            Ok(_) => lines.push("final board: no one was ranked".into()),
            Err(e) => lines.push(format!("final board: cannot be read ({e})")),
        }
    }
    if world.get_resource::<ActiveHunt>().is_some_and(|a| a.id == id) {
        let mut vaults = world.query::<(&Vault, &VaultClaims)>();
        let (mut first_finders, mut claimed, mut total) = (0, 0, 0);
        for (vault, claims) in vaults.iter(world) {
            total += 1;
            if vault.0.claim == ClaimRule::FirstFinder {
                first_finders += 1;
                claimed += usize::from(claims.first.is_some());
            }
        }
        let released = world.resource::<ClueReleases>().to_all.len();
        let mut players = world.query::<&Player>();
        let online = players.iter(world).count();
        lines.push(format!(
            "{total} vaults: {claimed} of {first_finders} FirstFinder vaults claimed; {released} clue(s) released to \
             all; {online} player(s) online"
        ));
    }
    lines.join("\n")
}

/// `give <player> <item> [n]`: into the inventory as far as it fits, the rest pending.
fn give(world: &mut World, rest: &[&str]) -> Result<String, String> {
    let (name, item, n) = match rest {
        [name, item] => (*name, *item, 1),
        [name, item, n] => {
            (*name, *item, n.parse::<u32>().ok().filter(|n| *n > 0).ok_or(format!("{n:?} is not a count above 0"))?)
        }
        _ => return Err("expected a player, an item and maybe a count".into()),
    };
    if !world.resource::<AssetsInForce>().0.items.contains_key(item) {
        let known: Vec<String> = world.resource::<AssetsInForce>().0.items.keys().cloned().collect();
        let known: Vec<&str> = known.iter().map(String::as_str).collect();
        return Err(match did_you_mean(item, &known) {
            Some(hint) => format!("no item \"{item}\" (did you mean \"{hint}\"?)"),
            None => format!("no item \"{item}\""),
        });
    }
    let (entity, player) = online(world, name)?;
    let catalog = world.resource::<ItemCatalog>().clone();
    let stack = ItemStack { item: item.to_string(), quantity: n };
    let mut entity_mut = world.entity_mut(entity);
    let mut inventory = entity_mut.take::<Inventory>().ok_or(format!("{name} has no inventory yet"))?;
    let mut pending = entity_mut.take::<PendingRewards>().unwrap_or_default();
    let now = grant(&mut inventory, &mut pending, std::slice::from_ref(&stack), &catalog);
    entity_mut.insert((inventory, pending));
    world.write_message(InventoryChanged { entity, player: player.id });
    let placed: u32 = now.iter().map(|s| s.quantity).sum();
    Ok(format!("gave {} {n} {item} ({placed} in the inventory, {} pending)", player.name, n - placed))
}

/// The online player named `name` (any case).
fn online(world: &mut World, name: &str) -> Result<(Entity, Player), String> {
    let mut players = world.query::<(Entity, &Player)>();
    players
        .iter(world)
        .find(|(_, p)| p.name.eq_ignore_ascii_case(name))
        .map(|(e, p)| (e, p.clone()))
        .ok_or(format!("no player {name} online"))
}
