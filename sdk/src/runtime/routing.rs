//! Who receives what: the tick's outbox routed to its recipients, the same way for every
//! driver. A driver says who is online and where to look for players near a point; the
//! distance check and the order are here.

use bevy_ecs::entity::Entity;
use bytes::Bytes;
use veltrix_protocol::PlayerId;

use crate::{Audience, Outbox, Position};

/// The players a driver delivers to.
pub trait Recipients {
    /// The entity of player `id`, while it is online.
    fn player(&self, id: PlayerId) -> Option<Entity>;
    /// Every player that may be within `radius` of (x, y): a superset (the distance is checked
    /// by [`route`]).
    fn near(&self, x: f32, y: f32, radius: f32, f: &mut dyn FnMut(Entity));
    /// Every player online.
    fn all(&self, f: &mut dyn FnMut(Entity));
    /// Where a player is.
    fn position(&self, entity: Entity) -> Option<Position>;
}

/// Takes the tick's messages out of the outbox and hands each, in the order sent, to every
/// recipient (`push(entity, bytes)`): a player, the players within a radius of a point (the
/// exact distance, its edge included), or everyone. A message for many was encoded once; each
/// recipient gets the same bytes (the same `Bytes`, one after the other).
pub fn route(outbox: &mut Outbox, recipients: &impl Recipients, mut push: impl FnMut(Entity, &Bytes)) {
    for (audience, bytes) in outbox.drain() {
        match audience {
            Audience::Player(id) => {
                if let Some(entity) = recipients.player(id) {
                    push(entity, &bytes);
                }
            }
            Audience::Near { x, y, radius } => recipients.near(x, y, radius, &mut |entity| {
                let within = recipients.position(entity).is_some_and(|p| p.distance_squared(x, y) <= radius * radius);
                if within {
                    push(entity, &bytes);
                }
            }),
            Audience::All => recipients.all(&mut |entity| push(entity, &bytes)),
        }
    }
}
