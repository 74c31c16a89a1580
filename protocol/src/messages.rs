//! Every message of the protocol.

use serde::{Deserialize, Serialize};

/// A player's id: stable for a name on this server.
pub type PlayerId = u64;

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ClientMessage {
    /// The first message of a connection; nothing else is accepted before it.
    Hello(Hello),
    /// Where the player wants to be. The server checks speed and terrain, and answers a move it
    /// refuses with [`ServerMessage::PositionCorrected`] naming `seq`.
    Move(Move),
    /// A message for a mod, in the mod's namespace.
    Mod(ModMessage),
    /// A text command, as typed (`hunt rank`). Answered by [`ServerMessage::CommandResult`].
    Command(Command),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`](crate::PROTOCOL_VERSION) of the client.
    pub protocol: u32,
    /// The player's name: 1 to 16 letters, digits or `_`.
    pub name: String,
    /// A token from the server's `token` command; required when the server's `Auth` is `Token`.
    pub token: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Move {
    /// The client's request id for this move; a correction names it.
    pub seq: u32,
    /// Target position, in tiles.
    pub x: f32,
    pub y: f32,
}

/// A mod's message: the mod's namespace (its id, `Group:Name`), the message kind, and the body,
/// a MessagePack value encoded on its own and carried as binary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModMessage {
    pub ns: String,
    pub kind: String,
    /// The client's request id (on state-changing messages), echoed by the answer.
    pub request: Option<u32>,
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    pub request: u32,
    pub line: String,
}

/// What the server sends: each a message of a [`ServerFrame`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ServerMessage {
    /// The handshake's answer when the player is in.
    Welcome(Welcome),
    /// Something went wrong; `code` says what. Some errors close the connection after them.
    Error(ErrorMessage),
    /// Another player came within the interest radius (or was there when this one joined).
    PlayerAppeared(PlayerAppeared),
    /// A player within the interest radius moved.
    PlayerMoved(PlayerMoved),
    /// A player left the interest radius or the server.
    PlayerGone(PlayerGone),
    /// A move was refused: the player is at this authoritative position instead.
    PositionCorrected(PositionCorrected),
    /// A mod's message.
    Mod(ModMessage),
    /// The answer to a [`Command`].
    CommandResult(CommandResult),
    /// The tiles of one chunk of the world, sent as it comes near the player.
    Terrain(Terrain),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    pub player: PlayerId,
    pub protocol: u32,
    pub server_name: String,
    pub tick_rate: u32,
    /// The tick being run when the player joined.
    pub tick: u64,
    /// Where the player starts, in tiles.
    pub x: f32,
    pub y: f32,
    /// The loaded mods and the message kinds of their namespaces.
    pub mods: Vec<ModInfo>,
    /// The world's size and how its tiles are sent ([`Terrain`]). Added after protocol version
    /// 1 first shipped, without a version bump: older readers ignore the key, and a Welcome
    /// without it (an older server) reads as `None`.
    #[serde(default)]
    pub world: Option<WorldInfo>,
}

/// What a client needs to draw the world and move in it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WorldInfo {
    /// Tiles across (x) and down (y).
    pub width: u32,
    pub height: u32,
    /// Tiles on a side of a [`Terrain`] chunk; chunks start at multiples of it.
    pub chunk: u32,
    /// Tiles per second a player may move at normal speed (`World.MaxSpeed`).
    pub max_speed: f32,
    /// How far the player sees other players (`World.InterestRadius`).
    pub interest_radius: f32,
    /// How many times a second the player is told where the players it sees have moved
    /// (`World.StateUpdateRate`, at most the tick rate). Added after `WorldInfo` first shipped:
    /// missing reads as 0, meaning every tick.
    #[serde(default)]
    pub state_update_rate: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModInfo {
    /// `Group:Name`: also the namespace of its messages.
    pub id: String,
    pub version: String,
    /// Kinds a client may send.
    pub client_messages: Vec<String>,
    /// Kinds the mod sends.
    pub server_messages: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorMessage {
    pub code: ErrorCode,
    /// For people: what happened and what to do.
    pub message: String,
    /// The request this answers, if any.
    pub request: Option<u32>,
}

/// Error codes, as strings on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    /// Hello named another protocol version. Closes.
    ProtocolVersion,
    /// Missing, malformed or wrongly signed token, or a name that is not allowed. Closes.
    BadCredentials,
    /// The token is past its expiry. Closes.
    TokenExpired,
    /// MaxPlayers are online. Closes.
    ServerFull,
    /// The player is banned. Closes.
    Banned,
    /// Offline mode: a player of that name is online. Closes.
    NameTaken,
    /// The same player logged in again elsewhere; this older session ends. Closes.
    Replaced,
    /// An operator kicked the player; the message holds the reason. Closes.
    Kicked,
    /// A message other than Hello came before the handshake, or Hello came twice.
    HandshakeRequired,
    /// The client broke the WebSocket protocol (RFC 6455): an unmasked frame, reserved bits,
    /// an unknown opcode, a control frame over 125 bytes or fragmented, a continuation of
    /// nothing, a bad close frame, text that is not UTF-8. Closes (1002, or 1007 for bad UTF-8).
    ProtocolViolation,
    /// The frame is not MessagePack, or not of the expected shape, or a field has the wrong type.
    Malformed,
    /// A message kind, or a mod namespace or kind, that the server does not know.
    UnknownMessage,
    /// The frame is larger than the server's MaxFrameBytes. Closes.
    FrameTooLarge,
    /// Messages above the rate limit are being dropped (said once per burst).
    RateLimited,
    /// Too many erroneous frames. Closes.
    TooManyErrors,
    /// The client did not read its frames fast enough. Closes.
    SlowConsumer,
    /// Nothing received for too long. Closes.
    IdleTimeout,
    /// Too many connections from this address. Closes.
    TooManyConnections,
    /// The server is stopping. Closes.
    ServerStopping,
    /// A mod or command refused the request; the message says why.
    Refused,
    /// The player's saved state cannot be read (a damaged store): the join is refused and the
    /// state kept as it is until an operator repairs it. Closes.
    SavedStateUnreadable,
    /// Never sent: what a reader gets for a code newer than itself, so that the Error (its
    /// message and request) is still read.
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlayerAppeared {
    pub player: PlayerId,
    pub name: String,
    pub x: f32,
    pub y: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlayerMoved {
    pub player: PlayerId,
    pub x: f32,
    pub y: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlayerGone {
    pub player: PlayerId,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PositionCorrected {
    /// The refused move's `seq`.
    pub seq: u32,
    pub x: f32,
    pub y: f32,
    /// Why the move was refused. Added after protocol version 1 first shipped, without a
    /// version bump: older readers ignore the key, and a frame without it reads as `Unknown`.
    #[serde(default)]
    pub reason: CorrectionReason,
}

/// Why a move was refused, checked in this order: the target, the speed, then the first tile
/// on the straight line from the player to the target that is not walkable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum CorrectionReason {
    /// The target is outside the world or not a finite position.
    Bounds,
    /// Farther than the player's movement budget (its speed over the time since its last
    /// move, at most one second's worth).
    Speed,
    /// The way crosses a tile of rock.
    Wall,
    /// The way crosses a tile of water.
    Water,
    /// What a reader gets for a reason newer than itself, or none (an older server).
    #[default]
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandResult {
    pub request: u32,
    pub ok: bool,
    /// The command's output, or the error and the usage.
    pub text: String,
}

/// A decoded server frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerFrame {
    /// The tick that produced it (the current tick for immediate answers).
    pub tick: u64,
    pub messages: Vec<ServerMessage>,
}

/// The tiles of one chunk of the world: `width` x `height` tiles whose top-left tile is
/// (`x`, `y`). Sent once per connection as the chunk comes within the player's view, and again
/// if its tiles change. It says what the ground is, never what is under it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Terrain {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    /// The tiles row by row from the top, run-length encoded: pairs of bytes, a count (1 to 255)
    /// and a tile ([`terrain::GROUND`], [`terrain::ROCK`], [`terrain::WATER`]).
    #[serde(with = "serde_bytes")]
    pub tiles: Vec<u8>,
}

/// The tile codes of [`Terrain`] and their run-length encoding.
pub mod terrain {
    /// Walkable and diggable.
    pub const GROUND: u8 = 0;
    /// Neither walkable nor diggable.
    pub const ROCK: u8 = 1;
    /// Not walkable.
    pub const WATER: u8 = 2;

    /// Appends `tiles` to `out` as runs of (count, tile), each count 1 to 255.
    pub fn encode_runs(tiles: impl IntoIterator<Item = u8>, out: &mut Vec<u8>) {
        let mut run: Option<(u8, u8)> = None;
        for tile in tiles {
            run = match run {
                Some((count, current)) if current == tile && count < u8::MAX => Some((count + 1, current)),
                Some((count, current)) => {
                    out.extend_from_slice(&[count, current]);
                    Some((1, tile))
                }
                None => Some((1, tile)),
            };
        }
        if let Some((count, current)) = run {
            out.extend_from_slice(&[count, current]);
        }
    }

    /// The tiles of runs, or `None` when they are not whole pairs, hold a count of 0, or do not
    /// add up to `expected` tiles.
    pub fn decode_runs(runs: &[u8], expected: usize) -> Option<Vec<u8>> {
        if !runs.len().is_multiple_of(2) {
            return None;
        }
        let mut tiles = Vec::with_capacity(expected.min(1 << 20));
        for pair in runs.chunks_exact(2) {
            if pair[0] == 0 || tiles.len() + pair[0] as usize > expected {
                return None;
            }
            tiles.extend(std::iter::repeat_n(pair[1], pair[0] as usize));
        }
        (tiles.len() == expected).then_some(tiles)
    }
}

#[cfg(test)]
mod tests {
    use super::terrain::*;

    #[test]
    fn runs_round_trip_and_split_at_255() {
        let tiles: Vec<u8> = [vec![GROUND; 300], vec![ROCK; 2], vec![WATER]].concat();
        let mut runs = Vec::new();
        encode_runs(tiles.iter().copied(), &mut runs);
        assert_eq!(runs, [255, GROUND, 45, GROUND, 2, ROCK, 1, WATER]);
        assert_eq!(decode_runs(&runs, tiles.len()), Some(tiles));
    }

    #[test]
    fn runs_that_do_not_add_up_are_refused() {
        assert_eq!(decode_runs(&[2, GROUND], 3), None);
        assert_eq!(decode_runs(&[4, GROUND], 3), None);
        assert_eq!(decode_runs(&[0, GROUND, 3, GROUND], 3), None);
        assert_eq!(decode_runs(&[3], 3), None);
    }
}
