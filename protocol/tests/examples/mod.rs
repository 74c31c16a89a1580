//! One example of every message kind, each encoded as a complete frame, and the hex dump format.
//! The snapshot tests and the check of docs/protocol.md both use these, so the reference shows
//! exactly the bytes the code produces.

use serde::{
    Deserialize, Serialize,
    de::{self, DeserializeOwned, Deserializer, Visitor},
};
use veltrix_protocol::*;

/// The tick of every example server frame.
pub const TICK: u64 = 42;

#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Client(ClientMessage),
    Server(ServerMessage),
}

#[derive(Debug, Clone)]
pub struct Example {
    /// `client_hello`, `server_player_moved`: the snapshot's name.
    pub name: String,
    /// The variant's name, as on the wire.
    pub kind: &'static str,
    pub message: Message,
}

impl Example {
    fn new(message: Message) -> Self {
        let (side, kind) = match &message {
            Message::Client(m) => ("client", client_kind(m)),
            Message::Server(m) => ("server", server_kind(m)),
        };
        Example { name: format!("{side}_{}", snake_case(kind)), kind, message }
    }

    /// The complete frame: a one-message array from a client, a `FrameBuilder` frame of
    /// [`TICK`] from the server.
    pub fn frame(&self) -> Vec<u8> {
        match &self.message {
            Message::Client(m) => encode_client_frame(std::slice::from_ref(m)),
            Message::Server(m) => FrameBuilder::single(TICK, m).to_vec(),
        }
    }

    /// Decodes [`frame`](Self::frame) back and checks it is the example.
    pub fn assert_round_trips(&self) {
        let frame = self.frame();
        match &self.message {
            Message::Client(m) => assert_eq!(decode_client_frame(&frame).unwrap(), vec![m.clone()], "{}", self.name),
            Message::Server(m) => assert_eq!(
                decode_server_frame(&frame).unwrap().frame,
                ServerFrame { tick: TICK, messages: vec![m.clone()] },
                "{}",
                self.name
            ),
        }
    }

    pub fn hex_dump(&self) -> String {
        hex_dump(&self.frame())
    }
}

/// The body of the example mod messages.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Dig {
    pub x: i32,
    pub y: i32,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Dug {
    pub gold: u32,
}

fn body<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    encode_value(value, &mut out);
    out
}

/// Every example, client messages first, each side in declaration order.
pub fn examples() -> Vec<Example> {
    let client = [
        ClientMessage::Hello(Hello { protocol: PROTOCOL_VERSION, name: "ana".into(), token: None }),
        ClientMessage::Move(Move { seq: 7, x: 257.5, y: 256.25 }),
        ClientMessage::Mod(ModMessage {
            ns: "Veltrix:TreasureHunt".into(),
            kind: "Dig".into(),
            request: Some(3),
            body: body(&Dig { x: 257, y: 256 }),
        }),
        ClientMessage::Command(Command { request: 4, line: "hunt rank".into() }),
    ];
    let server = [
        ServerMessage::Welcome(Welcome {
            player: 1,
            protocol: PROTOCOL_VERSION,
            server_name: "Veltrix Server".into(),
            tick_rate: 30,
            tick: TICK,
            x: 256.5,
            y: 256.5,
            mods: vec![ModInfo {
                id: "Veltrix:TreasureHunt".into(),
                version: "0.1.0".into(),
                client_messages: vec!["Dig".into()],
                server_messages: vec!["Dug".into()],
            }],
            world: Some(WorldInfo {
                width: 512,
                height: 512,
                chunk: 16,
                max_speed: 8.0,
                interest_radius: 32.0,
                state_update_rate: 10,
            }),
        }),
        ServerMessage::Error(ErrorMessage {
            code: ErrorCode::Refused,
            message: "nothing to dig here".into(),
            request: Some(3),
        }),
        ServerMessage::PlayerAppeared(PlayerAppeared { player: 2, name: "bob".into(), x: 260.0, y: 250.5 }),
        ServerMessage::PlayerMoved(PlayerMoved { player: 2, x: 260.5, y: 250.5 }),
        ServerMessage::PlayerGone(PlayerGone { player: 2 }),
        ServerMessage::PositionCorrected(PositionCorrected {
            seq: 7,
            x: 256.5,
            y: 256.5,
            reason: CorrectionReason::Wall,
        }),
        ServerMessage::Mod(ModMessage {
            ns: "Veltrix:TreasureHunt".into(),
            kind: "Dug".into(),
            request: Some(3),
            body: body(&Dug { gold: 5 }),
        }),
        ServerMessage::CommandResult(CommandResult { request: 4, ok: true, text: "1. ana 5".into() }),
        ServerMessage::Terrain(Terrain { x: 256, y: 240, width: 16, height: 16, tiles: vec![200, 0, 40, 1, 16, 2] }),
    ];
    client.into_iter().map(Message::Client).chain(server.into_iter().map(Message::Server)).map(Example::new).collect()
}

/// Lowercase hex, 16 bytes a line, each line led by its offset: `0000: 91 81 a5 ...`.
pub fn hex_dump(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .enumerate()
        .map(|(line, chunk)| {
            let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
            format!("{:04x}: {}", line * 16, hex.join(" "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn client_kind(message: &ClientMessage) -> &'static str {
    match message {
        ClientMessage::Hello(_) => "Hello",
        ClientMessage::Move(_) => "Move",
        ClientMessage::Mod(_) => "Mod",
        ClientMessage::Command(_) => "Command",
    }
}

pub fn server_kind(message: &ServerMessage) -> &'static str {
    match message {
        ServerMessage::Welcome(_) => "Welcome",
        ServerMessage::Error(_) => "Error",
        ServerMessage::PlayerAppeared(_) => "PlayerAppeared",
        ServerMessage::PlayerMoved(_) => "PlayerMoved",
        ServerMessage::PlayerGone(_) => "PlayerGone",
        ServerMessage::PositionCorrected(_) => "PositionCorrected",
        ServerMessage::Mod(_) => "Mod",
        ServerMessage::CommandResult(_) => "CommandResult",
        ServerMessage::Terrain(_) => "Terrain",
    }
}

fn snake_case(kind: &str) -> String {
    let mut out = String::new();
    for (i, c) in kind.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The variant names of enum `T`, as its derived `Deserialize` knows them: the complete list,
/// so a test comparing against it notices a new message kind or error code.
pub fn variants<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut found = None;
    let _ = T::deserialize(VariantProbe(&mut found));
    found.unwrap_or_else(|| panic!("{} is not an enum", std::any::type_name::<T>()))
}

struct VariantProbe<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> Deserializer<'de> for VariantProbe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not an enum"))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(variants);
        Err(de::Error::custom("probed"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}
