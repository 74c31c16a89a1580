//! Text commands, typed on the server console or sent by a client (`hunt rank`). The host
//! registers its own (`players`, `kick`, ...); mods add theirs with
//! [`ModContext::add_command`](crate::ModContext::add_command). Each command has a permission
//! node; the console holds every permission.
//!
//! [`run_command`] is the one dispatcher: the host runs the console's and the players' lines
//! through it, and so does the test harness ([`crate::testing`]).

use std::{collections::BTreeMap, sync::Arc};

use bevy_ecs::{entity::Entity, resource::Resource, world::World};

use crate::{PlayerId, did_you_mean};

/// Who typed a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandSource {
    /// The server console: every permission.
    Console,
    Player {
        entity: Entity,
        id: PlayerId,
        name: String,
    },
}

/// A command's body: gets the world, who asked and the words after the command's name;
/// returns the text to show, or an error ([`run_command`] appends the usage).
pub type CommandFn = dyn Fn(&mut World, &CommandSource, &[&str]) -> Result<String, String> + Send + Sync;

/// One command.
#[derive(Clone)]
pub struct CommandSpec {
    pub name: String,
    /// `kick <player> [reason]`
    pub usage: String,
    pub description: String,
    /// `{group}.{name}.command.{cmd}`, lowercase.
    pub permission: String,
    /// A command with subcommands (`hunt start <id>`) checks each one's node instead:
    /// `{permission}.{subcommand}`.
    pub subcommands: Vec<Subcommand>,
    pub run: Arc<CommandFn>,
}

/// One subcommand: its word, usage and description, and whether every player holds its
/// permission unless `permissions.json` denies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subcommand {
    pub name: String,
    /// `hunt start <id>`
    pub usage: String,
    pub description: String,
    pub everyone: bool,
}

impl CommandSpec {
    /// The subcommand named by `word`.
    pub fn subcommand(&self, word: &str) -> Option<&Subcommand> {
        self.subcommands.iter().find(|s| s.name == word)
    }

    /// The usage lines: the command's, or one per subcommand.
    pub fn usage_lines(&self) -> Vec<&str> {
        if self.subcommands.is_empty() {
            vec![self.usage.as_str()]
        } else {
            self.subcommands.iter().map(|s| s.usage.as_str()).collect()
        }
    }
}

/// Every command by name.
#[derive(Resource, Default, Clone)]
pub struct CommandRegistry {
    commands: BTreeMap<String, CommandSpec>,
}

impl CommandRegistry {
    /// Adds a command; a name already taken is an error naming it.
    pub fn register(&mut self, spec: CommandSpec) -> Result<(), String> {
        if self.commands.contains_key(&spec.name) {
            return Err(format!("the command `{}` is already registered", spec.name));
        }
        self.commands.insert(spec.name.clone(), spec);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&CommandSpec> {
        self.commands.get(name)
    }

    /// Commands in name order.
    pub fn iter(&self) -> impl Iterator<Item = &CommandSpec> {
        self.commands.values()
    }

    /// The permission nodes every player holds unless denied (subcommands marked `everyone`).
    pub fn everyone_nodes(&self) -> std::collections::BTreeSet<String> {
        self.commands
            .values()
            .flat_map(|c| c.subcommands.iter().filter(|s| s.everyone).map(|s| format!("{}.{}", c.permission, s.name)))
            .collect()
    }
}

/// The permission node of command `cmd` of the mod (or host part) `group:name`.
pub fn permission_node(group: &str, name: &str, cmd: &str) -> String {
    format!("{group}.{name}.command.{cmd}").to_lowercase()
}

/// Parses and runs one command line for `source`: the first word names the command, the
/// others are its arguments.
///
/// `allowed(source, node)` says whether `source` holds the permission `node`; the host's
/// answer is "the console only" (players hold no permissions yet). The errors, shown as they
/// are to whoever typed the line:
///
/// - an empty line: ``empty command: type help for the list``;
/// - an unknown command: ``unknown command `x` (did you mean `y`?); type help for the list``,
///   the hint only for a likely typo;
/// - a missing permission: ``you lack the permission <node> for `x` ``;
/// - for a command with subcommands, a missing or unknown subcommand: the usage of each (the
///   permission checked is the subcommand's node, `<command node>.<subcommand>`);
/// - the command's own error, followed by a line ``usage: <usage>`` (the subcommand's).
pub fn run_command(
    world: &mut World,
    source: &CommandSource,
    line: &str,
    allowed: impl Fn(&CommandSource, &str) -> bool,
) -> Result<String, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((&name, args)) = words.split_first() else {
        return Err("empty command: type help for the list".into());
    };
    let Some(spec) = world.get_resource::<CommandRegistry>().and_then(|r| r.get(name)).cloned() else {
        let known: Vec<String> = world
            .get_resource::<CommandRegistry>()
            .map(|r| r.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default();
        let known: Vec<&str> = known.iter().map(String::as_str).collect();
        return Err(match did_you_mean(name, &known) {
            Some(hint) => format!("unknown command `{name}` (did you mean `{hint}`?); type help for the list"),
            None => format!("unknown command `{name}`; type help for the list"),
        });
    };
    if spec.subcommands.is_empty() {
        if !allowed(source, &spec.permission) {
            return Err(format!("you lack the permission {} for `{name}`", spec.permission));
        }
        return (spec.run)(world, source, args).map_err(|e| format!("{e}\nusage: {}", spec.usage));
    }
    let usage = || spec.usage_lines().iter().map(|u| format!("\n  {u}")).collect::<String>();
    let Some(word) = args.first() else {
        return Err(format!("`{name}` needs a subcommand; usage:{}", usage()));
    };
    let Some(sub) = spec.subcommand(word) else {
        let known: Vec<&str> = spec.subcommands.iter().map(|s| s.name.as_str()).collect();
        return Err(match did_you_mean(word, &known) {
            Some(hint) => {
                format!("unknown subcommand `{name} {word}` (did you mean `{name} {hint}`?); usage:{}", usage())
            }
            None => format!("unknown subcommand `{name} {word}`; usage:{}", usage()),
        });
    };
    let node = format!("{}.{}", spec.permission, sub.name);
    if !allowed(source, &node) {
        return Err(format!("you lack the permission {node} for `{name} {}`", sub.name));
    }
    (spec.run)(world, source, args).map_err(|e| format!("{e}\nusage: {}", sub.usage))
}
