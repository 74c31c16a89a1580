//! Text commands, typed on the server console or sent by a client (`hunt rank`). The host
//! registers its own (`players`, `kick`, ...); mods add theirs with
//! [`ModContext::add_command`](crate::ModContext::add_command). Each command has a permission
//! node; the console holds every permission.

use std::{collections::BTreeMap, sync::Arc};

use bevy_ecs::{entity::Entity, resource::Resource, world::World};

use crate::PlayerId;

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
/// returns the text to show, or an error (the host appends the usage).
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
    pub run: Arc<CommandFn>,
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
}

/// The permission node of command `cmd` of the mod (or host part) `group:name`.
pub fn permission_node(group: &str, name: &str, cmd: &str) -> String {
    format!("{group}.{name}.command.{cmd}").to_lowercase()
}
