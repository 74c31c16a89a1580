//! Mail: messages for one player each, handed to delivery by those who decide them outside the
//! outbox (the area of interest: `PlayerAppeared`, `PlayerMoved`, `PlayerGone`). Each message is
//! encoded once into one buffer and sent to any number of players as a slice of it; delivery
//! ([`crate::sessions::delivery`]) puts them into the players' frames before the tick's outbox,
//! in the order they were sent, then empties the mail. The buffer and the list keep their room from tick to tick: in
//! steady state, sending allocates nothing.

use veltrix_sdk::{
    prelude::*,
    protocol::{ServerMessage, encode_value},
};

/// A message written into the [`Mail`]: where its bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Letter {
    start: usize,
    end: usize,
}

/// The tick's messages to one player each, until delivery.
#[derive(Resource, Debug, Default)]
pub struct Mail {
    /// The encoded messages, one after the other.
    bytes: Vec<u8>,
    /// Who gets which, in the order sent.
    sent: Vec<(Entity, Letter)>,
}

impl Mail {
    /// Encodes `message` once, to be sent to any number of players.
    pub fn write(&mut self, message: &ServerMessage) -> Letter {
        let start = self.bytes.len();
        encode_value(message, &mut self.bytes);
        Letter { start, end: self.bytes.len() }
    }

    /// Sends a written message to the player `to` (dropped at delivery when it has no
    /// connection any more).
    pub fn send(&mut self, to: Entity, letter: Letter) {
        self.sent.push((to, letter));
    }

    /// Every message sent, with whom to, in the order sent.
    pub fn sent(&self) -> impl Iterator<Item = (Entity, Letter)> + '_ {
        self.sent.iter().copied()
    }

    /// The messages sent, in the order sent, in runs to one player each (a player's messages
    /// are mostly sent one after the other).
    pub fn runs(&self) -> impl Iterator<Item = (Entity, impl Iterator<Item = Letter> + '_)> + '_ {
        self.sent.chunk_by(|a, b| a.0 == b.0).map(|run| (run[0].0, run.iter().map(|&(_, letter)| letter)))
    }

    /// A written message's bytes.
    pub fn bytes(&self, letter: Letter) -> &[u8] {
        &self.bytes[letter.start..letter.end]
    }

    /// Empties the mail once delivered, its room kept.
    pub fn clear(&mut self) {
        self.sent.clear();
        self.bytes.clear();
    }

    /// Messages sent and not delivered yet.
    pub fn len(&self) -> usize {
        self.sent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use veltrix_sdk::protocol::{PlayerGone, encode_message};

    use super::*;

    /// A message written once goes to each of its players, in the order sent, as the bytes
    /// `encode_message` gives; emptied, the mail keeps its room.
    #[test]
    fn a_letter_is_encoded_once_and_delivered_in_order() {
        let mut world = World::new();
        let (a, b) = (world.spawn_empty().id(), world.spawn_empty().id());
        let mut mail = Mail::default();
        let gone = ServerMessage::PlayerGone(PlayerGone { player: 7 });
        let letter = mail.write(&gone);
        let other = mail.write(&ServerMessage::PlayerGone(PlayerGone { player: 8 }));
        mail.send(a, letter);
        mail.send(b, other);
        mail.send(b, letter);
        let got: Vec<(Entity, Vec<u8>)> = mail.sent().map(|(to, letter)| (to, mail.bytes(letter).to_vec())).collect();
        let runs: Vec<(Entity, Vec<Letter>)> = mail.runs().map(|(to, letters)| (to, letters.collect())).collect();
        assert_eq!(runs, [(a, vec![letter]), (b, vec![other, letter])], "one run to each player in turn");
        mail.clear();
        let (seven, eight) = (
            encode_message(&gone).to_vec(),
            encode_message(&ServerMessage::PlayerGone(PlayerGone { player: 8 })).to_vec(),
        );
        assert_eq!(got, [(a, seven.clone()), (b, eight), (b, seven)]);
        assert!(mail.is_empty());
        assert!(mail.bytes.is_empty() && mail.bytes.capacity() > 0, "its room is kept");
    }
}
