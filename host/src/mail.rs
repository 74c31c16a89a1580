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

/// A message written into the [`Mail`]: where its bytes are. Offsets of 4 bytes: a tick's mail
/// is written into one list read again at delivery, so its size is memory traffic on the tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Letter {
    start: u32,
    end: u32,
}

/// Messages sent one after the other to one player: where they are in the order sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    from: u32,
    to: u32,
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
        let at = |offset: usize| u32::try_from(offset).expect("less than 4 GiB of mail a tick");
        Letter { start: at(start), end: at(self.bytes.len()) }
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
    pub fn runs(&self) -> impl Iterator<Item = (Entity, Run)> + '_ {
        let mut from = 0;
        self.sent.chunk_by(|a, b| a.0 == b.0).map(move |run| {
            let to = from + u32::try_from(run.len()).expect("fewer than 4 billion letters a tick");
            let run_of = (run[0].0, Run { from, to });
            from = to;
            run_of
        })
    }

    /// The bytes of a run's messages, in the order sent.
    pub fn letters(&self, run: Run) -> impl Iterator<Item = &[u8]> + '_ {
        self.sent[run.from as usize..run.to as usize].iter().map(|&(_, letter)| self.bytes(letter))
    }

    /// A written message's bytes.
    pub fn bytes(&self, letter: Letter) -> &[u8] {
        &self.bytes[letter.start as usize..letter.end as usize]
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
        let runs: Vec<(Entity, Vec<Vec<u8>>)> =
            mail.runs().map(|(to, run)| (to, mail.letters(run).map(<[u8]>::to_vec).collect())).collect();
        let bytes = |letter| mail.bytes(letter).to_vec();
        assert_eq!(
            runs,
            [(a, vec![bytes(letter)]), (b, vec![bytes(other), bytes(letter)])],
            "one run to each player in turn"
        );
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
