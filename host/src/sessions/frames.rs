//! The tick's frames, written into one buffer. Delivery first notes, for each player, the
//! messages it gets this tick: pieces linked per player in the order sent, each pointing at
//! bytes the mail or the outbox already holds (nothing is copied yet). Then every player's
//! frame is written, one after the other, into one buffer reserved for all of them, and each
//! frame handed out is a slice of it. Who gets a frame is listed as it is noted, so building and
//! handing out the frames costs the players with news, not every player online. A frame is
//! where it is in that buffer ([`Span`]), which is handed to the writer threads once for all
//! of them.
//!
//! One buffer for the tick rather than one per connection: a connection holds no frame memory
//! between ticks (a buffer of its own kept the size of the largest frame it ever had, about 3.6
//! KB per player under load), and once the writer threads have written the tick's frames and
//! dropped them, the next tick takes the allocation back whole: a steady tick allocates nothing
//! for its frames. Two buffers in turn: a tick whose writers still hold the last tick's frames
//! takes the buffer of the tick before. A client that does not read keeps a copy of what waits
//! for it, not the buffer (`net/socket.rs`).

use veltrix_sdk::{bytes::Bytes, prelude::*, protocol::FrameBuilder};

use crate::{
    mail::{Mail, Run},
    net::writers::Span,
};

/// The end of a list of pieces.
const NONE: u32 = u32::MAX;

/// A player's messages of this tick: the ends of its list of pieces in [`TickFrames`].
#[derive(Debug, Clone, Copy)]
pub struct Pieces {
    first: u32,
    last: u32,
}

impl Default for Pieces {
    fn default() -> Self {
        Self { first: NONE, last: NONE }
    }
}

impl Pieces {
    pub fn is_empty(&self) -> bool {
        self.first == NONE
    }
}

/// Where a piece's bytes are.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// Messages of the mail, sent one after the other: one piece, not one each.
    Mail(Run),
    /// An index in [`TickFrames::messages`].
    Outbox(u32),
}

/// One message (or run of the mail's) of one player's frame.
#[derive(Debug, Clone, Copy)]
struct Piece {
    next: u32,
    source: Source,
}

/// The tick's frames: what each player gets, then the frames themselves.
#[derive(Resource, Debug)]
pub struct TickFrames {
    frames: FrameBuilder,
    /// The buffer of the tick before the last, whose frames the writer threads have most likely
    /// written and dropped: taken when the last tick's are still held, so that a tick whose
    /// writers lag does not allocate (and fault in) a new buffer of a few hundred KB.
    spare: FrameBuilder,
    /// The outbox's messages of this tick, each held once however many players get it.
    messages: Vec<Bytes>,
    pieces: Vec<Piece>,
    /// Bytes of the messages noted: with the players, the room the frames take.
    message_bytes: usize,
    /// The players with messages this tick, in the order their first was noted; kept past
    /// [`clear`](Self::clear) for the flush, which hands out their frames.
    recipients: Vec<Entity>,
}

impl Default for TickFrames {
    fn default() -> Self {
        Self {
            frames: FrameBuilder::with_capacity(0),
            spare: FrameBuilder::with_capacity(0),
            messages: Vec::new(),
            pieces: Vec::new(),
            message_bytes: 0,
            recipients: Vec::new(),
        }
    }
}

impl TickFrames {
    /// Notes a run of the mail's messages for the player `who`, whose pieces are `to`.
    pub fn note_mail(&mut self, (who, to): (Entity, &mut Pieces), mail: &Mail, run: Run) {
        self.note((who, to), Source::Mail(run), mail.letters(run).map(<[u8]>::len).sum());
    }

    /// Notes a message of the outbox for the player `who`, whose pieces are `to`. The routing
    /// hands a message to all of its recipients one after the other, so it is held once.
    pub fn note_outbox(&mut self, (who, to): (Entity, &mut Pieces), message: &Bytes) {
        // The same bytes as the last message: held here, so no other message can be at the same
        // address meanwhile.
        let same =
            self.messages.last().is_some_and(|last| last.as_ptr() == message.as_ptr() && last.len() == message.len());
        if !same {
            self.messages.push(message.clone());
        }
        self.note((who, to), Source::Outbox(self.messages.len() as u32 - 1), message.len());
    }

    fn note(&mut self, (who, to): (Entity, &mut Pieces), source: Source, len: usize) {
        let at = u32::try_from(self.pieces.len()).expect("fewer than 4 billion messages a tick");
        self.pieces.push(Piece { next: NONE, source });
        if to.is_empty() {
            to.first = at;
            self.recipients.push(who);
        } else {
            self.pieces[to.last as usize].next = at;
        }
        to.last = at;
        self.message_bytes += len;
    }

    /// Room for every frame noted: call once, before the first [`build`](Self::build).
    pub fn reserve(&mut self) {
        let (frames, bytes) = (self.recipients.len(), self.message_bytes);
        if !self.frames.try_reclaim(frames, bytes) {
            std::mem::swap(&mut self.frames, &mut self.spare);
            self.frames.reserve(frames, bytes);
        }
    }

    /// The players with messages this tick, in the order noted: each gets a frame.
    pub fn recipients(&self) -> &[Entity] {
        &self.recipients
    }

    /// The frame of tick `tick` holding the messages of `pieces`, in the order noted, stamped
    /// `committed_ns` in the benchmark build (`stamp`): where it is in what [`take`](Self::take)
    /// hands out; `None` when it has none. Empties `pieces`.
    pub fn build(&mut self, pieces: &mut Pieces, mail: &Mail, tick: u64, committed_ns: u64) -> Option<Span> {
        if pieces.is_empty() {
            return None;
        }
        crate::stamp::begin(&mut self.frames, tick);
        self.frames.stamp(committed_ns);
        let mut at = pieces.first;
        while at != NONE {
            let piece = self.pieces[at as usize];
            match piece.source {
                Source::Mail(run) => mail.letters(run).for_each(|letter| self.frames.push(letter)),
                Source::Outbox(i) => self.frames.push(&self.messages[i as usize]),
            }
            at = piece.next;
        }
        *pieces = Pieces::default();
        let frame = self.frames.end();
        let at = |offset: usize| u32::try_from(offset).expect("less than 4 GiB of frames a tick");
        Some(Span { start: at(frame.start), end: at(frame.end) })
    }

    /// The frames built since the last take, one buffer for all of them.
    pub fn take(&mut self) -> Bytes {
        self.frames.take()
    }

    /// Forgets the tick's messages (their room kept), once every frame is built. The
    /// recipients stay until [`flushed`](Self::flushed).
    pub fn clear(&mut self) {
        self.messages.clear();
        self.pieces.clear();
        self.message_bytes = 0;
    }

    /// Forgets the tick's recipients (their room kept), once their frames are handed out.
    pub fn flushed(&mut self) {
        self.recipients.clear();
    }
}

#[cfg(test)]
mod tests {
    use veltrix_sdk::protocol::{PlayerGone, ServerMessage, decode_server_frame, encode_message};

    use super::*;

    fn gone(player: u64) -> ServerMessage {
        ServerMessage::PlayerGone(PlayerGone { player })
    }

    /// Each player's frame holds its messages in the order noted, mail and outbox mixed; a
    /// message noted for several is held once; the frames share one buffer, which the next
    /// tick takes back without allocating once they are dropped.
    #[test]
    fn each_frame_holds_its_players_messages_in_order_in_one_buffer() {
        let mut world = World::new();
        let (a, b) = (world.spawn_empty().id(), world.spawn_empty().id());
        let mut mail = Mail::default();
        let mut frames = TickFrames::default();
        let (mut to_a, mut to_b) = (Pieces::default(), Pieces::default());
        let broadcast = encode_message(&gone(1));
        let seven = mail.write(&gone(7));
        frames.note_outbox((a, &mut to_a), &broadcast);
        frames.note_outbox((b, &mut to_b), &broadcast);
        mail.send(b, seven);
        let (_, to_b_mail) = mail.runs().next().unwrap();
        frames.note_mail((b, &mut to_b), &mail, to_b_mail);
        frames.note_outbox((a, &mut to_a), &encode_message(&gone(2)));
        assert_eq!(frames.messages.len(), 2, "the broadcast is held once");
        assert_eq!(frames.recipients(), [a, b], "each once, in the order first noted");

        frames.reserve();
        let frame_a = frames.build(&mut to_a, &mail, 5, 0).unwrap();
        let frame_b = frames.build(&mut to_b, &mail, 5, 0).unwrap();
        assert!(frames.build(&mut Pieces::default(), &mail, 5, 0).is_none());
        assert!(to_a.is_empty() && to_b.is_empty());
        let tick_frames = frames.take();
        let told = |frame: Span| decode_server_frame(frame.of(&tick_frames)).unwrap().frame.messages;
        assert_eq!(told(frame_a), [gone(1), gone(2)]);
        assert_eq!(told(frame_b), [gone(1), gone(7)]);
        assert_eq!(
            (frame_a.start, frame_a.end, frame_b.end as usize),
            (0, frame_b.start, tick_frames.len()),
            "one buffer, frame after frame"
        );

        // The next tick, once the frames are written and dropped: the same allocation.
        let start = tick_frames.as_ptr();
        drop(tick_frames);
        frames.clear();
        assert_eq!(frames.recipients(), [a, b], "kept for the flush");
        frames.flushed();
        mail.clear();
        let mut to_a = Pieces::default();
        frames.note_outbox((a, &mut to_a), &broadcast);
        assert_eq!(frames.recipients(), [a]);
        frames.reserve();
        let again = frames.build(&mut to_a, &mail, 6, 0).unwrap();
        let tick_frames = frames.take();
        assert_eq!(tick_frames.as_ptr(), start, "the buffer is taken back");
        assert_eq!(decode_server_frame(again.of(&tick_frames)).unwrap().frame.messages, [gone(1)]);
    }

    /// A tick whose writers still hold the last tick's frames builds its own in the buffer of
    /// the tick before, and the tick after takes the last one back: two buffers in turn, none
    /// allocated anew while the writers lag a tick.
    #[test]
    fn frames_still_held_leave_their_buffer_to_the_tick_after() {
        let mut world = World::new();
        let a = world.spawn_empty().id();
        let mail = Mail::default();
        let mut frames = TickFrames::default();
        let message = encode_message(&gone(1));
        let tick = |frames: &mut TickFrames, n: u64| {
            let mut to_a = Pieces::default();
            frames.note_outbox((a, &mut to_a), &message);
            frames.reserve();
            frames.build(&mut to_a, &mail, n, 0).unwrap();
            frames.clear();
            frames.flushed();
            frames.take()
        };
        let first = tick(&mut frames, 1);
        let second = tick(&mut frames, 2);
        assert_ne!(second.as_ptr(), first.as_ptr(), "the first still held");
        let (first_at, second_at) = (first.as_ptr(), second.as_ptr());
        // After each drop, blocks of every small size are taken and kept: a buffer the drop
        // freed goes to them, so a buffer found again was kept, not handed out anew.
        let plugs = || (1..=64).map(|i| Vec::<u8>::with_capacity(i * 16)).collect::<Vec<_>>();
        drop(first);
        let _plugs = plugs();
        let third = tick(&mut frames, 3);
        assert_eq!(third.as_ptr(), first_at, "the first's buffer, the second's still held");
        drop(second);
        let _more_plugs = plugs();
        let fourth = tick(&mut frames, 4);
        assert_eq!(fourth.as_ptr(), second_at, "the second's buffer, the third's still held");
    }
}
