//! The ledger: keys decided once among every server that shares a hunt (shards). A mod asks to
//! create a key with a value; the first server to ask gets it, every later one is told the value
//! that holds it. That is how a FirstFinder vault is claimed exactly once across servers.
//!
//! The [`Ledger`] resource exists only on a server configured to share its hunt
//! (docs/scale-out.md); a server alone decides everything in its own tick, and a mod that finds
//! no `Ledger` does exactly that. Asks are taken by the host after `Tick` and answered in the
//! `PreTick` of a later tick, once the ledger's engine has durably decided: a mod announces
//! nothing of a claim before its answer. Keys other servers created are passed on as news, so
//! every server learns of every decision. Answers and news are taken by key prefix: each
//! concern of a mod (claims, the hunt's runs) takes those of its own keys.
//!
//! A mod need not keep every key it is told of: those it let pass (a joining player's claims) it
//! reads again when it needs them ([`Ledger::read`]); what a read finds comes as news.

use bevy_ecs::resource::Resource;

/// On a server that shares its hunt: how many players are online on the other servers, as far
/// as this one has heard (their moves and rosters, several times a second). Absent on a server
/// alone. A mod that counts the players online (a hunt's `MinPlayers`) adds these.
#[derive(Resource, Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PlayersOnOtherServers(pub u32);

/// A key to create, with its value: asked by a mod during a tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerAsk {
    /// The mod's number for the ask; its answer carries it back.
    pub ticket: u64,
    /// Letters, digits, `-`, `_`, `=` and `.` (dots separate levels, as NATS subjects do).
    pub key: String,
    pub value: Vec<u8>,
}

/// What the ledger decided about an ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The key is this server's: created with the ask's value, durably.
    Created,
    /// Another ask created the key first: its value.
    Held(Vec<u8>),
    /// The ask cannot be decided: its key is not one a ledger takes. (An ask the ledger could
    /// not be reached for is asked again until it is decided: it may have been stored.)
    Unavailable(String),
}

/// Keys created by other servers, as they learn of them, and keys a read found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerNews {
    pub key: String,
    pub value: Vec<u8>,
}

/// The asks of this tick, the answers and news for the mods: see the module's doc.
#[derive(Resource, Debug)]
pub struct Ledger {
    asks: Vec<LedgerAsk>,
    /// Key patterns to read ([`Ledger::read`]).
    reads: Vec<String>,
    /// Ticket, key and decision of each answer.
    answers: Vec<(u64, String, Decision)>,
    news: Vec<LedgerNews>,
    next_ticket: u64,
    /// This server's number among those sharing the ledger, drawn at random as it starts: with
    /// a ticket, it tells an ask's own value from another's when the ask is answered twice.
    server: u64,
    /// Whether the ledger's engine can be reached now.
    available: bool,
    /// Tickets of the asks made for a player ([`Ledger::ask_for`]) not answered yet.
    awaited: Vec<(u64, crate::PlayerId)>,
}

impl Ledger {
    /// A ledger for server number `server` (unique among those sharing it), not yet reachable.
    pub fn new(server: u64) -> Self {
        Self {
            asks: Vec::new(),
            reads: Vec::new(),
            answers: Vec::new(),
            news: Vec::new(),
            next_ticket: 0,
            server,
            available: false,
            awaited: Vec::new(),
        }
    }

    /// This server's number: see [`Ledger::new`].
    pub fn server(&self) -> u64 {
        self.server
    }

    /// Whether the ledger's engine can be reached: while it cannot, a mod refuses what needs it
    /// ([`Ledger::REFUSAL`]) instead of asking. Asks already made wait for their answer.
    pub fn available(&self) -> bool {
        self.available
    }

    /// Says whether the ledger's engine can be reached (the host).
    pub fn set_available(&mut self, available: bool) {
        self.available = available;
    }

    /// What a player is told when the ledger cannot decide (its engine is down or cut off).
    pub const REFUSAL: &'static str = "the hunt cannot save right now; try again in a moment";

    /// The ticket the next [`ask`](Self::ask) returns.
    pub fn next_ticket(&self) -> u64 {
        self.next_ticket + 1
    }

    /// Asks to create `key` with `value`; the answer comes with the returned ticket.
    pub fn ask(&mut self, key: String, value: Vec<u8>) -> u64 {
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        self.asks.push(LedgerAsk { ticket, key, value });
        ticket
    }

    /// [`ask`](Self::ask), for `player`: until it is answered, the player's departure waits (the
    /// host keeps a player who leaves meanwhile until it is, so what the answer grants is in the
    /// records it leaves with, wherever it plays next).
    pub fn ask_for(&mut self, player: crate::PlayerId, key: String, value: Vec<u8>) -> u64 {
        let ticket = self.ask(key, value);
        self.awaited.push((ticket, player));
        ticket
    }

    /// Whether an ask made for `player` waits for its answer (the host, as the player leaves).
    pub fn awaits_answer_for(&self, player: crate::PlayerId) -> bool {
        self.awaited.iter().any(|(_, p)| *p == player)
    }

    /// The answers to asks whose keys start with `prefix`, that came since the last call (a
    /// mod, each tick: each concern takes those of its own keys).
    pub fn take_answers_under(&mut self, prefix: &str) -> Vec<(u64, Decision)> {
        if !self.answers.iter().any(|(_, key, _)| key.starts_with(prefix)) {
            return Vec::new();
        }
        let (mine, others): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.answers).into_iter().partition(|(_, key, _)| key.starts_with(prefix));
        self.answers = others;
        mine.into_iter().map(|(ticket, _, decision)| (ticket, decision)).collect()
    }

    /// The keys other servers created under `prefix`, since the last call (a mod, each tick).
    pub fn take_news_under(&mut self, prefix: &str) -> Vec<LedgerNews> {
        if !self.news.iter().any(|n| n.key.starts_with(prefix)) {
            return Vec::new();
        }
        let (mine, others): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.news).into_iter().partition(|n| n.key.starts_with(prefix));
        self.news = others;
        mine
    }

    /// Reads every key that matches `pattern` (levels as in keys; `*` stands for any one
    /// level, `>` for all the levels after it): each comes as news ([`take_news_under`]),
    /// whether or not it came before, in a later tick. A read the ledger's engine cannot be
    /// reached for is tried again until it is done.
    ///
    /// [`take_news_under`]: Self::take_news_under
    pub fn read(&mut self, pattern: String) {
        self.reads.push(pattern);
    }

    /// The asks of the tick (the host, after `Tick`).
    pub fn take_asks(&mut self) -> std::vec::Drain<'_, LedgerAsk> {
        self.asks.drain(..)
    }

    /// The reads of the tick (the host, after `Tick`).
    pub fn take_reads(&mut self) -> std::vec::Drain<'_, String> {
        self.reads.drain(..)
    }

    /// An answer to the ask `ticket` for `key` (the host, before `Tick`).
    pub fn answer(&mut self, ticket: u64, key: String, decision: Decision) {
        if let Some(i) = self.awaited.iter().position(|(t, _)| *t == ticket) {
            self.awaited.swap_remove(i);
        }
        self.answers.push((ticket, key, decision));
    }

    /// A key another server created, or one a read found (the host, before `Tick`).
    pub fn tell(&mut self, news: LedgerNews) {
        self.news.push(news);
    }
}

/// The id a player has on every server sharing a hunt (docs/scale-out.md), made from its name
/// (any case): above every id a server alone gives (2^52 and up, below 2^53: exact in a
/// JavaScript number). Two names share one with odds of about n^2 / 2^53 for n names.
pub fn shared_player_id(name: &str) -> crate::PlayerId {
    const FLOOR: u64 = 1 << 52;
    // FNV-1a: the same on every run and every server.
    let hash = name
        .bytes()
        .map(|b| b.to_ascii_lowercase())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    FLOOR | (hash & (FLOOR - 1))
}

/// A ledger key's level from any text: kept as is where it is a letter, digit, `-` or `_`,
/// every other byte as `=` and two hex digits (so distinct texts give distinct levels).
pub fn key_level(text: &str) -> String {
    let mut level = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            level.push(b as char);
        } else {
            level.push_str(&format!("={b:02X}"));
        }
    }
    if level.is_empty() {
        level.push('=');
    }
    level
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A player's departure waits while an ask made for it is not answered, and only then.
    #[test]
    fn an_ask_for_a_player_is_awaited_until_answered() {
        let mut ledger = Ledger::new(1);
        let first = ledger.ask_for(7, "claims.a".into(), Vec::new());
        let second = ledger.ask_for(7, "claims.b".into(), Vec::new());
        ledger.ask("runs.x".into(), Vec::new());
        assert!(ledger.awaits_answer_for(7));
        assert!(!ledger.awaits_answer_for(8));
        ledger.answer(first, "claims.a".into(), Decision::Created);
        assert!(ledger.awaits_answer_for(7), "one ask still waits");
        ledger.answer(second, "claims.b".into(), Decision::Held(Vec::new()));
        assert!(!ledger.awaits_answer_for(7));
    }

    #[test]
    fn key_levels_keep_plain_names_and_escape_the_rest() {
        assert_eq!(key_level("Tidewatch_Reveal-2"), "Tidewatch_Reveal-2");
        assert_eq!(key_level("a.b c"), "a=2Eb=20c");
        assert_eq!(key_level("="), "=3D");
        assert_eq!(key_level(""), "=");
        assert_ne!(key_level("a.b"), key_level("a=2Eb"));
    }
}
