//! The tick's frames, written into one buffer. Delivery first notes, for each player, the
//! messages it gets this tick: pieces linked per player in the order sent, each pointing at
//! bytes the mail or the outbox already holds (nothing is copied yet), their ends in the
//! player's part of a table by entity index (not in a component: a tick's recipients are
//! thousands of players in no order memory follows). Then every player's frame is written, one
//! after the other, into one buffer reserved for all of them, and each frame handed out is a
//! slice of it. Who gets a frame is listed as it is noted, so building and
//! handing out the frames costs the players with news, not every player online. A frame is
//! where it is in that buffer ([`Span`]), which is handed to the writer threads once for all
//! of them.
//!
//! One buffer for the tick rather than one per connection: a connection holds no frame memory
//! between ticks (a buffer of its own kept the size of the largest frame it ever had, about 3.6
//! KB per player under load), and once the writer threads have written the tick's frames and
//! dropped them, the next tick takes the allocation back whole: a steady tick allocates nothing
//! for its frames. Three buffers in turn: a tick whose writers still hold the last tick's
//! frames takes the buffer of an earlier tick whose frames are written, the oldest first. A
//! client that does not read keeps a copy of what waits for it, not the buffer
//! (`net/socket.rs`).

use veltrix_sdk::{bytes::Bytes, prelude::*, protocol::FrameBuilder};

use crate::{
    mail::{Mail, Run},
    net::{ConnId, writers::Span},
};

/// The end of a list of pieces.
const NONE: u32 = u32::MAX;

/// Buffers kept beside the one being filled: at 12,000 players the writers take most of a
/// tick to write its frames, and now and then the last two ticks' frames are both still held
/// (with two buffers in all, 7 to 8 ticks in 900 allocated one anew, and faulted it in).
const SPARE_BUFFERS: usize = 2;

/// A player's messages of this tick: the ends of its list of pieces in [`TickFrames`].
#[derive(Debug, Clone, Copy)]
struct Pieces {
    first: u32,
    last: u32,
}

impl Default for Pieces {
    fn default() -> Self {
        Self { first: NONE, last: NONE }
    }
}

impl Pieces {
    fn is_empty(&self) -> bool {
        self.first == NONE
    }
}

/// A player's part of the tick's frames: its connection's id (from its join to its removal),
/// its messages until its frame is built, then where its frame is until the flush takes it. 32
/// bytes, aligned so that a part is one cache line's load.
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(32))]
struct Part {
    conn: Option<NonMaxConn>,
    pieces: Pieces,
    frame: Option<Span>,
    /// Its frame holds the outbox's messages (answers, the hunt's events), not only where
    /// other players are: such frames are written first.
    news: bool,
}

const _: () = assert!(std::mem::size_of::<Part>() == 32, "a part is one aligned half cache line");

/// A connection id, held complemented (`!id`) so that `Option` takes no room of its own: an id
/// is never `u64::MAX` (its count of connections would be 4 billion).
type NonMaxConn = std::num::NonZeroU64;

/// A recipient's frame of the tick, taken for the flush, and its connection.
#[derive(Debug, Clone, Copy)]
pub struct TakenFrame {
    pub conn: ConnId,
    pub frame: Span,
    pub news: bool,
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
    /// The buffers of the ticks before the last, oldest first, whose frames the writer threads
    /// have most likely written and dropped: taken when the last tick's are still held, so that
    /// a tick whose writers lag does not allocate (and fault in) a new buffer of a few hundred
    /// KB. Each is allocated the first time it is needed.
    spares: [FrameBuilder; SPARE_BUFFERS],
    /// The outbox's messages of this tick, each held once however many players get it.
    messages: Vec<Bytes>,
    pieces: Vec<Piece>,
    /// Bytes of the messages noted: with the players, the room the frames take.
    message_bytes: usize,
    /// Each player's part, by its entity's index: 32 bytes a player, where the same in the
    /// player's `Connection` was a cache miss on each of the thousands of recipients of a tick
    /// as its messages were noted, and again as its frame was built and handed out. Only a
    /// player with a connection is noted. A part's messages and frame are gone once
    /// its frame is taken, which the flush does for every recipient, and its connection once
    /// the player is removed: an index another entity takes finds nothing of the last one's.
    parts: Vec<Part>,
    /// The players with messages this tick, in the order their first was noted; kept past
    /// [`clear`](Self::clear) for the flush, which hands out their frames.
    recipients: Vec<Entity>,
}

impl Default for TickFrames {
    fn default() -> Self {
        Self {
            frames: FrameBuilder::with_capacity(0),
            spares: std::array::from_fn(|_| FrameBuilder::with_capacity(0)),
            messages: Vec::new(),
            pieces: Vec::new(),
            message_bytes: 0,
            parts: Vec::new(),
            recipients: Vec::new(),
        }
    }
}

impl TickFrames {
    /// Player `who`'s frames go to connection `conn`, from its join on.
    pub fn connect(&mut self, who: Entity, conn: ConnId) {
        self.part(who).conn = NonMaxConn::new(!conn);
    }

    /// Player `who` is removed: its frames go nowhere.
    pub fn disconnect(&mut self, who: Entity) {
        self.part(who).conn = None;
    }

    fn part(&mut self, who: Entity) -> &mut Part {
        let index = who.index_u32() as usize;
        if index >= self.parts.len() {
            self.parts.resize(index + 1, Part::default());
        }
        &mut self.parts[index]
    }

    /// Notes a run of the mail's messages for the player `who`.
    pub fn note_mail(&mut self, who: Entity, mail: &Mail, run: Run) {
        self.note(who, Source::Mail(run), mail.letters(run).map(<[u8]>::len).sum());
    }

    /// Notes a message of the outbox for the player `who`. The routing hands a message to all
    /// of its recipients one after the other, so it is held once.
    pub fn note_outbox(&mut self, who: Entity, message: &Bytes) {
        // The same bytes as the last message: held here, so no other message can be at the same
        // address meanwhile.
        let same =
            self.messages.last().is_some_and(|last| last.as_ptr() == message.as_ptr() && last.len() == message.len());
        if !same {
            self.messages.push(message.clone());
        }
        self.note(who, Source::Outbox(self.messages.len() as u32 - 1), message.len());
    }

    /// Notes a message for `who`, if it has a connection (a player of another server, near a
    /// point the outbox sends to, has none here).
    fn note(&mut self, who: Entity, source: Source, len: usize) {
        let Some(part) = self.parts.get_mut(who.index_u32() as usize).filter(|part| part.conn.is_some()) else {
            return;
        };
        let at = u32::try_from(self.pieces.len()).expect("fewer than 4 billion messages a tick");
        self.pieces.push(Piece { next: NONE, source });
        let to = &mut part.pieces;
        if to.is_empty() {
            to.first = at;
            self.recipients.push(who);
        } else {
            self.pieces[to.last as usize].next = at;
        }
        to.last = at;
        part.news |= matches!(source, Source::Outbox(_));
        self.message_bytes += len;
    }

    /// Room for every frame noted: call once, before [`build`](Self::build).
    fn reserve(&mut self) {
        let (frames, bytes) = (self.recipients.len(), self.message_bytes);
        if self.frames.try_reclaim(frames, bytes) {
            return;
        }
        let free = self.spares.iter_mut().position(|spare| spare.try_reclaim(frames, bytes));
        self.spares[free.unwrap_or(0)..].rotate_left(1);
        std::mem::swap(&mut self.frames, &mut self.spares[SPARE_BUFFERS - 1]);
        if free.is_none() {
            self.frames.reserve(frames, bytes);
        }
    }

    /// The players with messages this tick, in the order noted: each gets a frame.
    #[cfg(test)]
    fn recipients(&self) -> &[Entity] {
        &self.recipients
    }

    /// Builds every recipient's frame of tick `tick`, holding its messages in the order noted,
    /// stamped `committed_ns` in the benchmark build (`stamp`), one after the other in one
    /// buffer ([`take`](Self::take)); then forgets the tick's messages (their room kept). The
    /// recipients stay until [`hand_out`](Self::hand_out), their frames until taken.
    pub fn build(&mut self, mail: &Mail, tick: u64, committed_ns: u64) {
        self.reserve();
        let Self { frames, messages, pieces, parts, recipients, .. } = self;
        for &who in recipients.iter() {
            let part = &mut parts[who.index_u32() as usize];
            crate::stamp::begin(frames, tick);
            frames.stamp(committed_ns);
            let mut at = part.pieces.first;
            while at != NONE {
                let piece = pieces[at as usize];
                match piece.source {
                    Source::Mail(run) => mail.letters(run).for_each(|letter| frames.push(letter)),
                    Source::Outbox(i) => frames.push(&messages[i as usize]),
                }
                at = piece.next;
            }
            part.pieces = Pieces::default();
            let frame = frames.end();
            let at = |offset: usize| u32::try_from(offset).expect("less than 4 GiB of frames a tick");
            part.frame = Some(Span { start: at(frame.start), end: at(frame.end) });
        }
        messages.clear();
        pieces.clear();
        self.message_bytes = 0;
    }

    /// `who`'s frame of the tick (where it is in what [`take`](Self::take) hands out), taken:
    /// `None` when it has none (or it was taken).
    pub fn take_frame(&mut self, who: Entity) -> Option<TakenFrame> {
        let part = self.parts.get_mut(who.index_u32() as usize)?;
        let frame = part.frame.take()?;
        let news = std::mem::take(&mut part.news);
        Some(TakenFrame { conn: !part.conn?.get(), frame, news })
    }

    /// The frames built since the last take, one buffer for all of them.
    pub fn take(&mut self) -> Bytes {
        self.frames.take()
    }

    /// Hands out every recipient's frame not taken yet, in the order noted, with its
    /// connection, then forgets the recipients (their room kept): every part's frame is taken,
    /// so nothing is left for an entity that takes the index next.
    pub fn hand_out(&mut self, mut to_writers: impl FnMut(TakenFrame)) {
        for i in 0..self.recipients.len() {
            if let Some(taken) = self.take_frame(self.recipients[i]) {
                to_writers(taken);
            }
        }
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
    /// tick takes back without allocating once they are dropped; a frame with an outbox
    /// message is news; a frame is taken once, with its player's connection while it has one.
    #[test]
    fn each_frame_holds_its_players_messages_in_order_in_one_buffer() {
        let mut world = World::new();
        let [a, b, c, remote] = [(); 4].map(|_| world.spawn_empty().id());
        let mut mail = Mail::default();
        let mut frames = TickFrames::default();
        for (who, conn) in [(a, 40), (b, 41), (c, 42)] {
            frames.connect(who, conn);
        }
        let broadcast = encode_message(&gone(1));
        let seven = mail.write(&gone(7));
        frames.note_outbox(a, &broadcast);
        frames.note_outbox(remote, &broadcast);
        frames.note_outbox(b, &broadcast);
        mail.send(b, seven);
        mail.send(c, seven);
        for (to, run) in mail.runs() {
            frames.note_mail(to, &mail, run);
        }
        frames.note_outbox(a, &encode_message(&gone(2)));
        assert_eq!(frames.messages.len(), 2, "the broadcast is held once");
        assert_eq!(frames.recipients(), [a, b, c], "each once, in the order first noted; none without a connection");

        frames.build(&mail, 5, 0);
        let tick_frames = frames.take();
        let TakenFrame { conn: conn_a, frame: frame_a, news: news_a } = frames.take_frame(a).unwrap();
        let TakenFrame { conn: conn_b, frame: frame_b, news: news_b } = frames.take_frame(b).unwrap();
        let TakenFrame { conn: conn_c, frame: frame_c, news: news_c } = frames.take_frame(c).unwrap();
        assert_eq!((conn_a, conn_b, conn_c), (40, 41, 42), "the connections seated");
        assert!(news_a && news_b && !news_c, "news: outbox messages; the mail alone is not");
        assert!(frames.take_frame(a).is_none(), "taken once");
        assert!(frames.take_frame(remote).is_none(), "nothing for one without a connection");
        let told = |frame: Span| decode_server_frame(frame.of(&tick_frames)).unwrap().frame.messages;
        assert_eq!(told(frame_a), [gone(1), gone(2)]);
        assert_eq!(told(frame_b), [gone(1), gone(7)]);
        assert_eq!(told(frame_c), [gone(7)]);
        assert_eq!(
            (frame_a.start, frame_a.end, frame_b.end, frame_c.end as usize),
            (0, frame_b.start, frame_c.start, tick_frames.len()),
            "one buffer, frame after frame"
        );

        // The next tick, once the frames are written and dropped: the same allocation.
        let start = tick_frames.as_ptr();
        drop(tick_frames);
        assert_eq!(frames.recipients(), [a, b, c], "kept for the flush");
        frames.hand_out(|_| {});
        mail.clear();
        frames.note_outbox(a, &broadcast);
        assert_eq!(frames.recipients(), [a]);
        frames.build(&mail, 6, 0);
        let tick_frames = frames.take();
        assert_eq!(tick_frames.as_ptr(), start, "the buffer is taken back");
        let again = frames.take_frame(a).unwrap();
        assert_eq!(decode_server_frame(again.frame.of(&tick_frames)).unwrap().frame.messages, [gone(1)]);
        frames.hand_out(|_| {});
        frames.disconnect(a);
        frames.note_outbox(a, &broadcast);
        assert!(frames.recipients().is_empty(), "removed: not noted");
    }

    /// A tick whose writers still hold the last tick's frames builds its own in the buffer of
    /// an earlier tick whose frames are dropped, the oldest first: three buffers in turn, none
    /// allocated anew while the writers lag two ticks.
    #[test]
    fn frames_still_held_leave_their_buffer_to_a_later_tick() {
        let mut world = World::new();
        let a = world.spawn_empty().id();
        let mail = Mail::default();
        let mut frames = TickFrames::default();
        let message = encode_message(&gone(1));
        frames.connect(a, 1);
        let tick = |frames: &mut TickFrames, n: u64| {
            frames.note_outbox(a, &message);
            frames.build(&mail, n, 0);
            frames.take_frame(a).unwrap();
            frames.hand_out(|_| {});
            frames.take()
        };
        // After each drop, blocks of every small size are taken and kept: a buffer the drop
        // freed goes to them, so a buffer found again was kept, not handed out anew.
        let plugs = || (1..=64).map(|i| Vec::<u8>::with_capacity(i * 16)).collect::<Vec<_>>();
        let first = tick(&mut frames, 1);
        let second = tick(&mut frames, 2);
        let third = tick(&mut frames, 3);
        let (first_at, second_at, third_at) = (first.as_ptr(), second.as_ptr(), third.as_ptr());
        assert!(first_at != second_at && second_at != third_at && first_at != third_at, "all three still held");
        drop(first);
        let _plugs = plugs();
        let fourth = tick(&mut frames, 4);
        assert_eq!(fourth.as_ptr(), first_at, "the first's buffer, the second's and third's still held");
        drop(second);
        let _more_plugs = plugs();
        let fifth = tick(&mut frames, 5);
        assert_eq!(fifth.as_ptr(), second_at, "the second's buffer, the third's and fourth's still held");
        // The oldest spare (the third's) is still held and a newer one (the fourth's) is not:
        // the newer is taken.
        drop(fourth);
        let _last_plugs = plugs();
        let sixth = tick(&mut frames, 6);
        assert_eq!(sixth.as_ptr(), first_at, "the fourth's buffer, the third's and fifth's still held");
        drop((third, fifth, sixth));
    }
}
