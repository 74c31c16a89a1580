//! Players and messages: what the host puts in the world for each connected player, how a mod
//! receives its clients' messages and how it sends its own.
//!
//! A mod declares its message kinds in setup ([`ModContext::add_client_message`],
//! [`ModContext::add_server_message`](crate::ModContext::add_server_message)); they live in
//! the mod's namespace, its id `Group:Name`. Inbound messages arrive in `PreTick` as bevy
//! messages [`FromClient<T>`]; outbound ones go through the [`Outbox`], which encodes each
//! message once and lets the host share the bytes among its recipients.
//!
//! [`ModContext::add_client_message`]: crate::ModContext::add_client_message

use std::{any::TypeId, collections::HashMap, sync::Arc};

use bevy_ecs::{
    component::Component,
    entity::Entity,
    message::{Message, MessageRegistry},
    resource::Resource,
    world::World,
};
use bytes::Bytes;
use serde::{Serialize, de::DeserializeOwned};
use veltrix_protocol::{ErrorCode, ErrorMessage, ModMessage, PlayerId, ServerMessage, encode_message, encode_value};

/// A connected player. Spawned by the host when the handshake succeeds, despawned when the
/// connection ends.
#[derive(Component, Debug, Clone, PartialEq, Eq)]
pub struct Player {
    pub id: PlayerId,
    pub name: String,
}

/// Where a player is, in tiles. Changed only by the host's movement system.
#[derive(Component, Debug, Clone, Copy, PartialEq)]
pub struct Position {
    pub x: f32,
    pub y: f32,
}

impl Position {
    pub fn distance_squared(&self, x: f32, y: f32) -> f32 {
        (self.x - x) * (self.x - x) + (self.y - y) * (self.y - y)
    }
}

/// Multiplies a player's movement speed (the host's `MaxSpeed`) while present: 2 lets it move
/// twice as far per second, 0.5 half as far. Mods set it (the treasure hunt's effects do); the
/// host's movement check reads it. A value that is not a finite number above 0 counts as 1.
#[derive(Component, Debug, Clone, Copy, PartialEq)]
pub struct SpeedFactor(pub f32);

impl SpeedFactor {
    /// The factor to apply: the value when it is a finite number above 0, else 1.
    pub fn effective(factor: Option<&SpeedFactor>) -> f32 {
        factor.map(|f| f.0).filter(|f| f.is_finite() && *f > 0.0).unwrap_or(1.0)
    }
}

/// A client's message of a kind a mod registered, delivered in `PreTick`.
#[derive(Message, Debug, Clone, PartialEq)]
pub struct FromClient<T: Send + Sync + 'static> {
    /// The player's entity.
    pub entity: Entity,
    pub player: PlayerId,
    /// The client's request id, to name in the answer.
    pub request: Option<u32>,
    pub message: T,
}

/// Who receives an outgoing message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Audience {
    /// One player.
    Player(PlayerId),
    /// Every player within `radius` tiles of (x, y).
    Near { x: f32, y: f32, radius: f32 },
    /// Every player online.
    All,
}

/// Outgoing messages of the tick. The host sends them after the tick is committed, each
/// player's in one frame.
#[derive(Resource, Default)]
pub struct Outbox {
    pending: Vec<(Audience, Bytes)>,
    /// The tick's answers to requests: player, request id, the encoded answer (also in
    /// `pending`). The host keeps them to answer a repeated request the same way.
    answers: Vec<(PlayerId, u32, Bytes)>,
    kinds: HashMap<TypeId, (Arc<str>, Arc<str>)>,
}

impl Outbox {
    /// Sends a mod message of a registered kind.
    ///
    /// # Panics
    /// When `T` was not registered with `add_server_message`: a bug in the mod, caught by its
    /// first test.
    pub fn send<T: Serialize + 'static>(&mut self, to: Audience, message: &T) {
        self.send_mod(to, None, message);
    }

    /// Sends a mod message answering the player's request `request`.
    pub fn reply<T: Serialize + 'static>(&mut self, to: PlayerId, request: Option<u32>, message: &T) {
        self.send_mod(Audience::Player(to), request, message);
    }

    /// Refuses a player's request with an error the client shows (`ErrorCode::Refused`).
    pub fn refuse(&mut self, to: PlayerId, request: Option<u32>, message: impl Into<String>) {
        let error = ServerMessage::Error(ErrorMessage { code: ErrorCode::Refused, message: message.into(), request });
        self.answer_encoded(to, request, encode_message(&error));
    }

    /// Sends an already encoded message to a player, answering its request `request` when
    /// there is one (the host's command results and errors).
    pub fn answer_encoded(&mut self, to: PlayerId, request: Option<u32>, message: Bytes) {
        if let Some(request) = request {
            self.answers.push((to, request, message.clone()));
        }
        self.pending.push((Audience::Player(to), message));
    }

    /// Takes the tick's answers to requests (the host, before the commit).
    pub fn drain_answers(&mut self) -> std::vec::Drain<'_, (PlayerId, u32, Bytes)> {
        self.answers.drain(..)
    }

    /// Sends an already encoded protocol message (the host's own messages).
    pub fn send_encoded(&mut self, to: Audience, message: Bytes) {
        self.pending.push((to, message));
    }

    /// Takes the tick's messages, in the order they were sent (the host, after the commit).
    /// Answers not taken by then are forgotten.
    pub fn drain(&mut self) -> std::vec::Drain<'_, (Audience, Bytes)> {
        self.answers.clear();
        self.pending.drain(..)
    }

    /// Registers `T` as the server message `kind` of namespace `ns`.
    pub fn register<T: 'static>(&mut self, ns: &str, kind: &str) {
        self.kinds.insert(TypeId::of::<T>(), (ns.into(), kind.into()));
    }

    /// The registered kinds of a namespace, sorted.
    pub fn kinds(&self, ns: &str) -> Vec<String> {
        let mut kinds: Vec<String> =
            self.kinds.values().filter(|(n, _)| &**n == ns).map(|(_, k)| k.to_string()).collect();
        kinds.sort();
        kinds
    }

    fn send_mod<T: Serialize + 'static>(&mut self, to: Audience, request: Option<u32>, message: &T) {
        let Some((ns, kind)) = self.kinds.get(&TypeId::of::<T>()) else {
            panic!("{} is not a registered server message: add_server_message it in setup", std::any::type_name::<T>());
        };
        let mut body = Vec::with_capacity(32);
        encode_value(message, &mut body);
        let message = ServerMessage::Mod(ModMessage { ns: ns.to_string(), kind: kind.to_string(), request, body });
        match to {
            Audience::Player(player) => self.answer_encoded(player, request, encode_message(&message)),
            _ => self.pending.push((to, encode_message(&message))),
        }
    }
}

/// Who sent a client message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sender {
    pub entity: Entity,
    pub player: PlayerId,
    pub request: Option<u32>,
}

/// Why a mod message could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliverError {
    /// No mod registered this namespace and kind.
    Unknown,
    /// The body does not decode as the registered type.
    Malformed(String),
}

type Decoder = Box<dyn Fn(&mut World, Sender, &[u8]) -> Result<(), String> + Send + Sync>;

/// The client message kinds the mods registered, by namespace and kind.
#[derive(Resource, Default)]
pub struct ClientMessages {
    /// Namespace, then kind.
    decoders: HashMap<String, HashMap<String, Decoder>>,
}

impl ClientMessages {
    /// Registers `T` as the client message `kind` of namespace `ns`, and its bevy message
    /// [`FromClient<T>`] in the world.
    pub fn register<T: DeserializeOwned + Send + Sync + 'static>(world: &mut World, ns: &str, kind: &str) {
        MessageRegistry::register_message::<FromClient<T>>(world);
        let decoder: Decoder = Box::new(|world, sender, body| {
            let message: T = rmp_serde::from_slice(body).map_err(|e| e.to_string())?;
            world.write_message(FromClient {
                entity: sender.entity,
                player: sender.player,
                request: sender.request,
                message,
            });
            Ok(())
        });
        let mut registry = world.get_resource_or_init::<ClientMessages>();
        registry.decoders.entry(ns.to_string()).or_default().insert(kind.to_string(), decoder);
    }

    /// Decodes `body` as the registered type and writes it as a [`FromClient`] message.
    pub fn deliver(world: &mut World, ns: &str, kind: &str, sender: Sender, body: &[u8]) -> Result<(), DeliverError> {
        world.resource_scope(|world, registry: bevy_ecs::change_detection::Mut<ClientMessages>| {
            match registry.decoders.get(ns).and_then(|kinds| kinds.get(kind)) {
                None => Err(DeliverError::Unknown),
                Some(decode) => decode(world, sender, body).map_err(DeliverError::Malformed),
            }
        })
    }

    /// The registered kinds of a namespace, sorted.
    pub fn kinds(&self, ns: &str) -> Vec<String> {
        let mut kinds: Vec<String> = self.decoders.get(ns).map(|k| k.keys().cloned().collect()).unwrap_or_default();
        kinds.sort();
        kinds
    }
}
