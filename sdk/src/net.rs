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
use bytes::{BufMut, Bytes, BytesMut};
use serde::{Serialize, de::DeserializeOwned};
use veltrix_protocol::{ErrorCode, ErrorMessage, ModMessage, PlayerId, ServerMessage, encode_value, encode_value_to};

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

/// A check a joining player must pass before it is let in: `Err` says why it may not join (its
/// saved state does not read), and the host refuses the join with
/// `ErrorCode::SavedStateUnreadable`, before anything of the player is in the world (so nothing
/// of it is written over).
pub type JoinCheck = Box<dyn Fn(&World, &Player) -> Result<(), String> + Send + Sync>;

/// The mods' join checks ([`ModContext::add_join_check`](crate::ModContext::add_join_check)),
/// with the id of the mod each came from.
#[derive(Resource, Default)]
pub struct JoinChecks(pub Vec<(String, JoinCheck)>);

impl JoinChecks {
    /// The first check `player` fails: the mod's id and why.
    pub fn first_failed(world: &World, player: &Player) -> Option<(String, String)> {
        let checks = world.get_resource::<JoinChecks>()?;
        checks.0.iter().find_map(|(id, check)| check(world, player).err().map(|why| (id.clone(), why)))
    }
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
///
/// Messages are encoded into one buffer that is taken back at the start of the next tick,
/// once the host has put the last tick's messages into frames and let go of their bytes; a mod
/// message's envelope and a refusal are built in fields kept from message to message. In
/// steady state, sending allocates nothing.
#[derive(Resource, Default)]
pub struct Outbox {
    pending: Vec<(Audience, Bytes)>,
    /// The tick's answers to requests: player, request id, the encoded answer (also in
    /// `pending`). The host keeps them to answer a repeated request the same way.
    answers: Vec<(PlayerId, u32, Bytes)>,
    /// Where in `pending` the messages are that tell nothing unsaved (refusals, stored answers
    /// sent again): they go out even when the tick's commit fails.
    saved: Vec<usize>,
    /// Messages of ticks whose commit failed, sent once a commit saves what they tell of.
    held: Vec<(Audience, Bytes)>,
    kinds: HashMap<TypeId, (Arc<str>, Arc<str>)>,
    /// The tick's encoded messages: each message's bytes are a slice of it.
    arena: BytesMut,
    /// The room the arena takes back at the start of a tick: the most a tick encoded so far,
    /// within [`ARENA_ROOM`].
    room: usize,
    /// Bytes encoded since the last [`drain`](Self::drain); `None` until the first message
    /// after it, which takes the arena's room back.
    encoded: Option<usize>,
    /// A mod message's envelope and body, and a refusal, kept with their room.
    envelope: Option<ModMessage>,
    refusal: Option<ErrorMessage>,
}

/// The most messages held while the store cannot be written ([`Outbox::hold_unsaved`]): an
/// outage refuses whatever would announce much, so this is reached only by a very long one.
const HELD_MAX: usize = 1 << 16;
/// The most room the arena takes back for a tick: a tick that encodes more (a burst) gets
/// buffers of its own, which go when its messages are sent; this much stays for the next ticks.
const ARENA_ROOM: usize = 1 << 20;
/// The arena's room at first.
const ARENA_START: usize = 4 << 10;

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
    pub fn refuse(&mut self, to: PlayerId, request: Option<u32>, message: impl std::fmt::Display) {
        use std::fmt::Write as _;
        let mut error =
            self.refusal.take().unwrap_or(ErrorMessage { code: ErrorCode::Refused, message: String::new(), request });
        error.message.clear();
        write!(error.message, "{message}").expect("writing to a String cannot fail");
        error.request = request;
        let error = ServerMessage::Error(error);
        let bytes = self.encode(&error);
        if let ServerMessage::Error(error) = error {
            self.refusal = Some(error);
        }
        // A refusal changes nothing: the player hears it even when the tick cannot be saved.
        self.saved.push(self.pending.len());
        self.answer_encoded(to, request, bytes);
    }

    /// Sends a protocol message (the host's own), encoded as [`encode_message`](veltrix_protocol::encode_message) does.
    pub fn send_message(&mut self, to: Audience, message: &ServerMessage) {
        let bytes = self.encode(message);
        self.send_encoded(to, bytes);
    }

    /// Sends a protocol message to a player, answering its request `request` when there is one
    /// (the host's command results and errors).
    pub fn answer_message(&mut self, to: PlayerId, request: Option<u32>, message: &ServerMessage) {
        let bytes = self.encode(message);
        self.answer_encoded(to, request, bytes);
    }

    /// Sends an already encoded message that tells only what the store already holds (a
    /// stored answer sent again): it goes out even when the tick's commit fails.
    pub fn send_saved(&mut self, to: Audience, message: Bytes) {
        self.saved.push(self.pending.len());
        self.pending.push((to, message));
    }

    /// Holds back the tick's messages that tell of something its failed commit did not save,
    /// keeping refusals and [`send_saved`](Self::send_saved) ones to send now (the host, when
    /// the commit failed): nothing is announced that is not saved, a refused player is still
    /// told, and what is held goes out with the tick whose commit saves it
    /// ([`release_held`](Self::release_held)).
    pub fn hold_unsaved(&mut self) {
        let mut index = 0;
        let mut saved = self.saved.iter().peekable();
        let held = &mut self.held;
        self.pending.retain(|message| {
            let keep = saved.next_if_eq(&&index).is_some();
            index += 1;
            if !keep {
                held.push(message.clone());
            }
            keep
        });
        self.saved.clear();
        if self.held.len() > HELD_MAX {
            tracing::error!(
                "{} messages held while the store cannot be written: the {} newest are dropped (their players \
                 catch up when they join again)",
                self.held.len(),
                self.held.len() - HELD_MAX
            );
            self.held.truncate(HELD_MAX);
        }
    }

    /// Puts the messages held by [`hold_unsaved`](Self::hold_unsaved) before the tick's (the
    /// host, once a commit saved what they tell of).
    pub fn release_held(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let earlier = self.held.len();
        self.held.append(&mut self.pending);
        std::mem::swap(&mut self.held, &mut self.pending);
        for index in &mut self.saved {
            *index += earlier;
        }
    }

    /// Sends an already encoded message to a player, answering its request `request` when
    /// there is one (the host's command results and errors).
    pub fn answer_encoded(&mut self, to: PlayerId, request: Option<u32>, message: Bytes) {
        if let Some(request) = request {
            self.answers.push((to, request, message.clone()));
        }
        self.pending.push((Audience::Player(to), message));
    }

    /// Whether any answer to a request was sent this tick.
    pub fn has_answers(&self) -> bool {
        !self.answers.is_empty()
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
    /// Answers not taken by then are forgotten. The next message encoded takes the arena back,
    /// with its room: the bytes of these are to be dropped by then (kept ones stay valid, the
    /// arena then gets new room).
    pub fn drain(&mut self) -> std::vec::Drain<'_, (Audience, Bytes)> {
        self.answers.clear();
        self.saved.clear();
        if let Some(encoded) = self.encoded.take() {
            self.room = self.room.max(encoded).min(ARENA_ROOM);
        }
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
        let mut envelope = self.envelope.take().unwrap_or_else(|| ModMessage {
            ns: String::new(),
            kind: String::new(),
            request,
            body: Vec::with_capacity(32),
        });
        envelope.ns.clear();
        envelope.ns.push_str(ns);
        envelope.kind.clear();
        envelope.kind.push_str(kind);
        envelope.request = request;
        envelope.body.clear();
        encode_value(message, &mut envelope.body);
        let message = ServerMessage::Mod(envelope);
        let bytes = self.encode(&message);
        if let ServerMessage::Mod(envelope) = message {
            self.envelope = Some(envelope);
        }
        match to {
            Audience::Player(player) => self.answer_encoded(player, request, bytes),
            _ => self.pending.push((to, bytes)),
        }
    }

    /// `message` encoded as [`encode_message`](veltrix_protocol::encode_message) does, into the arena.
    fn encode(&mut self, message: &ServerMessage) -> Bytes {
        let encoded = match self.encoded {
            Some(encoded) => encoded,
            None => {
                // The first message since the last tick's were drained: their bytes are gone,
                // so this takes the arena back (or, if some are still held, gets new room).
                self.arena.clear();
                // Half as much again as the most a tick took: a tick that takes a little more
                // does not outgrow it (room reserved is all a tick gets without a new buffer).
                self.arena.reserve(self.room.max(ARENA_START) * 3 / 2);
                0
            }
        };
        encode_value_to(message, (&mut self.arena).writer()).expect("writing to a buffer cannot fail");
        let bytes = self.arena.split().freeze();
        self.encoded = Some(encoded + bytes.len());
        bytes
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
            // The whole body, nothing after it, as for a frame.
            let message: T = veltrix_protocol::decode_value(body).map_err(|e| match e {
                veltrix_protocol::DecodeError::Malformed(m) | veltrix_protocol::DecodeError::UnknownMessage(m) => m,
            })?;
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

#[cfg(test)]
mod tests {
    use serde::Serialize;
    use veltrix_protocol::encode_message;

    use super::*;

    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Found {
        vault: String,
        x: u32,
    }

    /// One tick's messages, sent through the outbox: a reply, a broadcast, refusals.
    fn tick(outbox: &mut Outbox, i: u32) -> Vec<(Audience, Bytes)> {
        outbox.reply(3, Some(i), &Found { vault: "Well".into(), x: i });
        outbox.send(Audience::All, &Found { vault: "Tower".into(), x: 2 });
        outbox.refuse(4, Some(i), format_args!("nothing here: you dig at ({i}, 5) and find only earth"));
        outbox.refuse(5, None, "no hunt is running");
        outbox
            .send_message(Audience::Player(6), &ServerMessage::PlayerGone(veltrix_protocol::PlayerGone { player: 7 }));
        outbox.drain().collect()
    }

    /// The bytes of each message are those of `encode_message`.
    fn expected(i: u32) -> Vec<(Audience, Bytes)> {
        let modded = |found: Found, request| {
            let mut body = Vec::new();
            encode_value(&found, &mut body);
            encode_message(&ServerMessage::Mod(ModMessage {
                ns: "Test:Ns".into(),
                kind: "Found".into(),
                request,
                body,
            }))
        };
        let refused = |message: String, request| {
            encode_message(&ServerMessage::Error(ErrorMessage { code: ErrorCode::Refused, message, request }))
        };
        vec![
            (Audience::Player(3), modded(Found { vault: "Well".into(), x: i }, Some(i))),
            (Audience::All, modded(Found { vault: "Tower".into(), x: 2 }, None)),
            (Audience::Player(4), refused(format!("nothing here: you dig at ({i}, 5) and find only earth"), Some(i))),
            (Audience::Player(5), refused("no hunt is running".into(), None)),
            (
                Audience::Player(6),
                encode_message(&ServerMessage::PlayerGone(veltrix_protocol::PlayerGone { player: 7 })),
            ),
        ]
    }

    /// Messages are encoded as `encode_message` encodes them, into one buffer that each tick
    /// takes back once the last tick's bytes are dropped; bytes still held stay as they were.
    #[test]
    fn messages_are_encoded_into_a_buffer_reused_from_tick_to_tick() {
        let mut outbox = Outbox::default();
        outbox.register::<Found>("Test:Ns", "Found");
        let first = tick(&mut outbox, 1);
        assert_eq!(first, expected(1));
        let (start, end) = (first[0].1.as_ptr(), first[4].1.as_ptr().wrapping_add(first[4].1.len()));
        assert_eq!(
            first.windows(2).map(|w| w[0].1.as_ptr().wrapping_add(w[0].1.len()) == w[1].1.as_ptr()).collect::<Vec<_>>(),
            [true; 4],
            "one after another in one buffer"
        );
        drop(first);
        for i in 2..6 {
            let next = tick(&mut outbox, i);
            assert_eq!(next, expected(i));
            // Taken back: from its start, or on from where the last tick's bytes ended.
            let at = next[0].1.as_ptr();
            assert!(at == start || at == end, "tick {i}: a new buffer");
        }
        // A message held past its tick keeps its bytes.
        let held = tick(&mut outbox, 9);
        let next = tick(&mut outbox, 10);
        assert_eq!(held, expected(9));
        assert_eq!(next, expected(10));
    }
}
