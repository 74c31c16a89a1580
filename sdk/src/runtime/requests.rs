//! A player's requests applied: a mod message delivered to its mod or refused, a command run
//! with the permissions in force and answered. The refusal texts and the permission rule live
//! here, for the server and the harness alike.

use std::sync::Arc;

use bevy_ecs::{entity::Entity, resource::Resource, world::World};
use veltrix_protocol::{Command, CommandResult, ErrorCode, ErrorMessage, ModMessage, PlayerId, ServerMessage};

use crate::{ClientMessages, CommandRegistry, CommandSource, DeliverError, Outbox, Player, Sender, run_command};

/// Who holds which permission node: the server's `permissions.json`, or a test's rule.
pub trait PermissionRules: Send + Sync + 'static {
    /// Whether `source` holds `node`. `everyone` is set when the node is one a mod made for
    /// every player (a player subcommand such as `hunt rank`): held unless denied.
    fn allows(&self, source: &CommandSource, node: &str, everyone: bool) -> bool;
}

/// The permissions in force. Without this resource the console alone holds every permission.
#[derive(Resource, Clone)]
pub struct CommandPermissions(pub Arc<dyn PermissionRules>);

impl CommandPermissions {
    pub fn new(rules: impl PermissionRules) -> Self {
        Self(Arc::new(rules))
    }
}

/// Runs one command line for `source` with the permissions in force ([`CommandPermissions`]).
pub fn run_command_line(world: &mut World, source: &CommandSource, line: &str) -> Result<String, String> {
    let Some(CommandPermissions(rules)) = world.get_resource::<CommandPermissions>().cloned() else {
        return run_command(world, source, line, |source, _| matches!(source, CommandSource::Console));
    };
    let everyone = world.get_resource::<CommandRegistry>().map(CommandRegistry::everyone_nodes).unwrap_or_default();
    run_command(world, source, line, |source, node| rules.allows(source, node, everyone.contains(node)))
}

/// A player's command: run with the player's permissions and answered with a `CommandResult`.
pub fn answer_command(world: &mut World, entity: Entity, player: PlayerId, command: &Command) {
    let name = world.get::<Player>(entity).map(|p| p.name.clone()).unwrap_or_default();
    let result = run_command_line(world, &CommandSource::Player { entity, id: player, name }, &command.line);
    let (ok, text) = match result {
        Ok(text) => (true, text),
        Err(text) => (false, text),
    };
    let answer = ServerMessage::CommandResult(CommandResult { request: command.request, ok, text });
    world.resource_mut::<Outbox>().answer_message(player, Some(command.request), &answer);
}

/// A player's mod message: delivered to the mod that registered its kind, or refused with an
/// `Error` naming why (an unknown kind, a body that does not decode).
pub fn deliver_mod_message(world: &mut World, sender: Sender, message: &ModMessage) {
    let ModMessage { ns, kind, request, body } = message;
    let (code, text) = match ClientMessages::deliver(world, ns, kind, sender, body) {
        Ok(()) => return,
        Err(DeliverError::Unknown) => {
            (ErrorCode::UnknownMessage, format!("no mod message {ns} {kind} on this server (see Welcome.mods)"))
        }
        Err(DeliverError::Malformed(e)) => (ErrorCode::Malformed, format!("{ns} {kind}: {e}")),
    };
    refuse(world, sender.player, code, text, *request);
}

/// Answers a player's request (or message, without a request id) with an `Error`.
pub fn refuse(world: &mut World, player: PlayerId, code: ErrorCode, message: String, request: Option<u32>) {
    let error = ServerMessage::Error(ErrorMessage { code, message, request });
    world.resource_mut::<Outbox>().answer_message(player, request, &error);
}
