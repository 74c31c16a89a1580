//! The transcript: one line per scripted input and per message a player received.

use veltrix_protocol::{ModMessage, PlayerId, ServerMessage};

/// One transcript line; `player` is `None` for the console.
pub(super) struct Line {
    pub(super) player: Option<PlayerId>,
    pub(super) text: String,
}

pub(super) fn render<'a>(lines: impl Iterator<Item = &'a Line>) -> String {
    let mut out = String::new();
    for line in lines {
        out.push_str(&line.text);
        out.push('\n');
    }
    out
}

/// `Group:Name/Kind #7 {"X":10}`.
pub(super) fn describe_mod(m: &ModMessage) -> String {
    let request = m.request.map(|r| format!(" #{r}")).unwrap_or_default();
    format!("{}/{}{request} {}", m.ns, m.kind, body_json(&m.body))
}

/// A MessagePack body as compact JSON (map keys sorted), or its bytes in hex when it is not a
/// value JSON can show (not MessagePack, binary data, keys that are not strings).
fn body_json(body: &[u8]) -> String {
    match rmp_serde::from_slice::<serde_json::Value>(body) {
        Ok(value) => value.to_string(),
        Err(_) => {
            let hex: Vec<String> = body.iter().map(|b| format!("{b:02x}")).collect();
            let unit = if body.len() == 1 { "byte" } else { "bytes" };
            format!("<{} {unit}: {}>", body.len(), hex.join(" "))
        }
    }
}

/// One line per server message.
pub(super) fn describe_server(message: &ServerMessage) -> String {
    let request = |r: Option<u32>| r.map(|r| format!(" #{r}")).unwrap_or_default();
    match message {
        ServerMessage::Mod(m) => describe_mod(m),
        ServerMessage::Error(e) => format!("Error {:?}{}: {}", e.code, request(e.request), one_line(&e.message)),
        ServerMessage::CommandResult(c) => {
            format!("CommandResult {}: {}", if c.ok { "ok" } else { "error" }, one_line(&c.text))
        }
        ServerMessage::PlayerAppeared(p) => format!("PlayerAppeared {} {} at ({:?}, {:?})", p.player, p.name, p.x, p.y),
        ServerMessage::PlayerMoved(p) => format!("PlayerMoved {} to ({:?}, {:?})", p.player, p.x, p.y),
        ServerMessage::PlayerGone(p) => format!("PlayerGone {}", p.player),
        ServerMessage::PositionCorrected(p) => {
            format!("PositionCorrected #{} at ({:?}, {:?}): {:?}", p.seq, p.x, p.y, p.reason)
        }
        ServerMessage::Welcome(w) => one_line(&format!("{w:?}")),
        ServerMessage::Terrain(t) => format!("Terrain {}x{} at ({}, {})", t.width, t.height, t.x, t.y),
    }
}

/// A text on one line: line breaks (and other control characters) escaped.
pub(super) fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}
