//! The harness's own parts of the tick pipeline: the script applied as input, the commit into
//! the store in memory, and delivery into one frame per scripted player. Everything else is
//! the server's ([`runtime`](crate::runtime)).

use std::{collections::BTreeMap, mem};

use bevy_ecs::{entity::Entity, world::World};
use veltrix_protocol::{FrameBuilder, PlayerId};

use super::{Input, Script};
use crate::{
    Outbox, Player, Position, Sender, TickInfo, commit_tick,
    runtime::{
        requests,
        routing::{self, Recipients},
    },
};

/// PostTick, the commit stage: the tick's changes into the store in memory.
pub(super) fn commit(world: &mut World) {
    commit_tick(world);
}

/// PostTick, the delivery stage: routes the tick's outbox as the host does and builds one
/// frame per player.
pub(super) fn deliver(world: &mut World) {
    let tick = world.resource::<TickInfo>().tick;
    let mut frames: BTreeMap<PlayerId, FrameBuilder> = BTreeMap::new();
    world.resource_scope(|world, mut outbox: bevy_ecs::world::Mut<Outbox>| {
        let world = &*world;
        routing::route(&mut outbox, &ScriptPlayers(world), |entity, message| {
            let Some(player) = world.get::<Player>(entity) else { return };
            frames
                .entry(player.id)
                .or_insert_with(|| {
                    let mut frame = FrameBuilder::with_capacity(256);
                    frame.begin(tick);
                    frame
                })
                .push(message);
        });
    });
    world.resource_mut::<Script>().delivered = frames.into_iter().map(|(id, mut frame)| (id, frame.finish())).collect();
}

/// The scripted players online, for [`routing::route`]: without an interest grid, everyone is
/// a candidate for a message to the players near a point.
struct ScriptPlayers<'w>(&'w World);

impl ScriptPlayers<'_> {
    fn online(&self) -> &BTreeMap<PlayerId, Entity> {
        &self.0.resource::<Script>().online
    }
}

impl Recipients for ScriptPlayers<'_> {
    fn player(&self, id: PlayerId) -> Option<Entity> {
        self.online().get(&id).copied()
    }

    fn near(&self, _: f32, _: f32, _: f32, f: &mut dyn FnMut(Entity)) {
        self.all(f);
    }

    fn all(&self, f: &mut dyn FnMut(Entity)) {
        self.online().values().for_each(|&entity| f(entity));
    }

    fn position(&self, entity: Entity) -> Option<Position> {
        self.0.get::<Position>(entity).copied()
    }
}

/// PreTick, right after the message update: applies the script's inputs of this tick, in order,
/// as the host applies what the network received.
pub(super) fn apply_script(world: &mut World) {
    let inputs = mem::take(&mut world.resource_mut::<Script>().inputs);
    for input in inputs {
        if let Input::Join { id, name, at } = input {
            let entity = world.spawn((Player { id, name }, at)).id();
            world.resource_mut::<Script>().online.insert(id, entity);
            continue;
        }
        let id = input.player();
        let Some(entity) = world.resource::<Script>().online.get(&id).copied() else { continue };
        match input {
            Input::Join { .. } => unreachable!("applied above"),
            Input::Leave { .. } => {
                world.resource_mut::<Script>().online.remove(&id);
                if let Ok(player) = world.get_entity_mut(entity) {
                    player.despawn();
                }
            }
            Input::Move { to, .. } => {
                // As the host: the component changes only when the player does move.
                if world.get::<Position>(entity) != Some(&to)
                    && let Ok(mut player) = world.get_entity_mut(entity)
                {
                    player.insert(to);
                }
            }
            Input::Mod { message, .. } => {
                requests::deliver_mod_message(world, Sender { entity, player: id, request: message.request }, &message);
            }
            Input::Command { command, .. } => requests::answer_command(world, entity, id, &command),
        }
    }
}
