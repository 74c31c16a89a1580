//! Running text commands, the host's own commands, and the console on standard input.

use std::{
    io::{BufRead, Write},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
};

use parking_lot::Mutex;
use veltrix_sdk::{
    CommandRegistry, CommandSource, CommandSpec, Player, Position, permission_node,
    prelude::*,
    protocol::{ErrorCode, valid_player_name},
};

use crate::{
    auth::{TokenKey, unix_now},
    sessions::{Sessions, bans::Bans, delivery::Connection},
};

/// Set by `stop`: the tick loop ends after this tick.
#[derive(Resource, Clone)]
pub struct StopFlag(pub Arc<AtomicBool>);

/// What `token` needs.
#[derive(Resource, Clone)]
pub struct TokenIssuer {
    pub key: Arc<TokenKey>,
    pub ttl_seconds: u64,
}

/// Lines typed on the console, waiting for the tick thread.
#[derive(Resource)]
pub struct ConsoleInput(Mutex<mpsc::Receiver<String>>);

/// Parses and runs one command line for `source`, with the permissions in force
/// (`permissions.json`; without it, in a world built for checks only, the console alone holds
/// every permission).
pub fn run(world: &mut World, source: &CommandSource, line: &str) -> Result<String, String> {
    veltrix_sdk::runtime::requests::run_command_line(world, source, line)
}

/// Registers the host's commands.
pub fn register_host_commands(registry: &mut CommandRegistry) {
    let mut add = |name: &str,
                   usage: &str,
                   description: &str,
                   run: fn(&mut World, &CommandSource, &[&str]) -> Result<String, String>| {
        registry
            .register(CommandSpec {
                name: name.into(),
                usage: usage.into(),
                description: description.into(),
                permission: permission_node("veltrix", "server", name),
                subcommands: Vec::new(),
                run: Arc::new(run),
            })
            .expect("host command names are distinct");
    };
    add("help", "help", "list the commands", help);
    add("players", "players", "list the players online", players);
    add("kick", "kick <player> [reason]", "disconnect a player", kick);
    add("ban", "ban <player>", "ban a player by name (kept in bans.json) and disconnect them", ban);
    add("token", "token <player>", "print a login token for a player (Auth: Token)", token);
    add("stop", "stop", "stop the server after this tick", stop);
}

fn help(world: &mut World, _: &CommandSource, _: &[&str]) -> Result<String, String> {
    let registry = world.resource::<CommandRegistry>();
    let mut lines = Vec::new();
    for command in registry.iter() {
        lines.push(format!("{:<28} {}", command.usage, command.description));
        lines.extend(command.subcommands.iter().map(|s| format!("  {:<26} {}", s.usage, s.description)));
    }
    Ok(lines.join("\n"))
}

fn players(world: &mut World, _: &CommandSource, args: &[&str]) -> Result<String, String> {
    no_args(args)?;
    let mut list: Vec<(u64, String)> = world
        .query::<(&Player, &Position)>()
        .iter(world)
        .map(|(p, pos)| (p.id, format!("  {} (id {}) at ({:.1}, {:.1})", p.name, p.id, pos.x, pos.y)))
        .collect();
    list.sort();
    let mut out = format!("{} player(s) online", list.len());
    for (_, line) in list {
        out.push('\n');
        out.push_str(&line);
    }
    Ok(out)
}

fn kick(world: &mut World, _: &CommandSource, args: &[&str]) -> Result<String, String> {
    let (&name, reason) = args.split_first().ok_or("name the player to kick")?;
    let reason = if reason.is_empty() { "kicked by an operator".to_string() } else { reason.join(" ") };
    let entity =
        world.resource::<Sessions>().by_name(name).ok_or_else(|| format!("no player named {name} is online"))?;
    let conn = world.get::<Connection>(entity).ok_or("that player has no connection")?;
    conn.handle.close(ErrorCode::Kicked, reason.clone());
    Ok(format!("kicked {name}: {reason}"))
}

fn ban(world: &mut World, _: &CommandSource, args: &[&str]) -> Result<String, String> {
    let [name] = args else { return Err("name one player to ban".into()) };
    let mut bans = world.resource_mut::<Bans>();
    bans.names.insert(name.to_lowercase());
    bans.save()?;
    if let Some(conn) = world.resource::<Sessions>().by_name(name).and_then(|e| world.get::<Connection>(e)) {
        conn.handle.close(ErrorCode::Banned, "you are banned from this server");
    }
    Ok(format!("banned {name}"))
}

fn token(world: &mut World, _: &CommandSource, args: &[&str]) -> Result<String, String> {
    let [name] = args else { return Err("name one player".into()) };
    if !valid_player_name(name) {
        return Err(format!("{name:?} is not a valid player name (1 to 16 letters, digits or _)"));
    }
    let issuer = world.resource::<TokenIssuer>();
    Ok(issuer.key.issue(name, unix_now() + issuer.ttl_seconds))
}

fn stop(world: &mut World, _: &CommandSource, args: &[&str]) -> Result<String, String> {
    no_args(args)?;
    world.resource::<StopFlag>().0.store(true, Ordering::Relaxed);
    Ok("stopping".into())
}

fn no_args(args: &[&str]) -> Result<(), String> {
    if args.is_empty() { Ok(()) } else { Err(format!("unexpected argument `{}`", args[0])) }
}

/// Reads standard input on a thread of its own; lines wait for the tick thread.
pub fn start_console() -> ConsoleInput {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("veltrix-console".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if !line.trim().is_empty() && tx.send(line).is_err() {
                    break;
                }
            }
        })
        .expect("a thread for the console");
    ConsoleInput(Mutex::new(rx))
}

/// PreTick: runs the lines typed on the console, printing each answer on standard output.
pub fn run_console(world: &mut World) {
    let lines: Vec<String> = match world.get_resource::<ConsoleInput>() {
        Some(input) => input.0.lock().try_iter().collect(),
        None => return,
    };
    for line in lines {
        let answer = match run(world, &CommandSource::Console, &line) {
            Ok(text) => format!("{text}\n"),
            Err(text) => format!("error: {text}\n"),
        };
        // In one write, so that whoever reads the pipe gets the whole answer at once.
        let _ = std::io::stdout().lock().write_all(answer.as_bytes());
        tracing::info!("console: {line}");
    }
}
