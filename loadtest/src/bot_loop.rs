//! The bots' threads: each drives its share of the bots on one mio poll, every bot a state
//! machine over its own non-blocking WebSocket (tungstenite on a mio socket), no task, waker or
//! timer per bot. The swarm shares the machine with the server it measures, so what it spends
//! per frame read is what the server cannot have (docs/benchmarks.md, "A lean swarm").
//!
//! A bot connects from its own loopback address (`source_address`), upgrades, sends its
//! `Hello` and waits for the `Welcome`, all without blocking; then it reads every frame as it
//! comes (edge-triggered: a readable socket is read until it would block, or until a read
//! shorter than its buffer emptied it, [`ReadEdge`]) and acts when its next action is due, the
//! thread sleeping in `poll` until the earliest due time of its bots.
//!
//! tungstenite upgrades the connection and writes the bot's frames; the bot reads the server's
//! frames itself ([`Inbox`], with tungstenite's header parser), into a buffer it keeps: through
//! `WebSocket::read`, every read zero-filled the free part of the buffer first and every frame's
//! bytes were split off and shared, 8 % of the swarm's samples.

use std::{
    cmp::Reverse,
    collections::BinaryHeap,
    io::{self, ErrorKind},
    net::{IpAddr, SocketAddr},
    sync::{Arc, atomic::Ordering, mpsc},
    time::Duration,
};

use mio::{Events, Interest, Poll, Token, Waker, event::Event, net::TcpStream};
use tungstenite::{
    ClientHandshake, HandshakeError, Message, WebSocket,
    handshake::MidHandshake,
    protocol::{
        WebSocketConfig,
        frame::{
            FrameHeader,
            coding::{Control, Data, OpCode},
        },
    },
};
use veltrix_host::net::socket::ReadEdge;
use veltrix_protocol::{
    ClientMessage, Move, ServerMessage, decode_server_frame, decode_server_frame_into, encode_client_frame,
};

use crate::{
    bots::{Bot, CONNECT_ATTEMPTS, FanoutSamples, Shared, Tally, hello_of, source_address},
    clock::monotonic_ns,
    plan::BotPlan,
};

/// The poll token of a thread's waker (new bots to take in); a bot's token is its slot.
const WAKER: Token = Token(usize::MAX);

/// The longest a thread sleeps without looking at the swarm's flags.
const LOOK_EVERY: Duration = Duration::from_millis(20);

/// The swarm's bot threads.
pub struct BotThreads {
    threads: Vec<BotThread>,
}

/// One bot thread: where new bots go, its waker, and its end (every bot's tally).
type BotThread = (mpsc::Sender<(u32, BotPlan)>, Arc<Waker>, std::thread::JoinHandle<Vec<Tally>>);

impl BotThreads {
    /// Starts `count` threads driving the bots of `shared`; each runs until the swarm's
    /// `stop_reading` is set.
    pub fn start(count: usize, shared: &Arc<Shared>) -> Self {
        let threads = (0..count)
            .map(|i| {
                let poll = Poll::new().expect("a poll for the bots");
                let waker = Arc::new(Waker::new(poll.registry(), WAKER).expect("the bots' waker"));
                let (tx, rx) = mpsc::channel();
                let shared = Arc::clone(shared);
                let thread = std::thread::Builder::new()
                    .name(format!("bots-{i}"))
                    .spawn(move || BotLoop::new(poll, rx, shared).run())
                    .expect("a bot thread starts");
                (tx, waker, thread)
            })
            .collect();
        BotThreads { threads }
    }

    /// Bot `index` joins, on thread `index` mod their count.
    pub fn spawn(&self, index: u32, plan: BotPlan) {
        let (tx, waker, _) = &self.threads[index as usize % self.threads.len()];
        tx.send((index, plan)).expect("the bot thread runs");
        waker.wake().expect("the bot thread wakes");
    }

    /// Waits for the threads to end (`stop_reading` set): every bot's tally.
    pub fn finish(self) -> Vec<Tally> {
        let mut tallies = Vec::new();
        for (tx, waker, thread) in self.threads {
            drop(tx);
            let _ = waker.wake();
            tallies.extend(thread.join().expect("a bot thread ends"));
        }
        tallies
    }
}

/// One thread's bots and their poll.
struct BotLoop {
    poll: Poll,
    joining: mpsc::Receiver<(u32, BotPlan)>,
    shared: Arc<Shared>,
    bots: Vec<Driven>,
    /// Each bot's next due time (monotonic ns) and slot; a bot's entry that no longer matches
    /// its `armed` time is stale and skipped.
    due: BinaryHeap<Reverse<(u64, usize)>>,
    /// The WebSocket client's configuration: no write buffering (and the read buffer is not
    /// read through, [`Inbox`]).
    config: WebSocketConfig,
    /// The messages of the frame being read that its bot looks at, the room kept.
    messages: Vec<ServerMessage>,
    /// The fan-out samples of this thread's bots.
    fanout: FanoutSamples,
}

impl BotLoop {
    fn new(poll: Poll, joining: mpsc::Receiver<(u32, BotPlan)>, shared: Arc<Shared>) -> Self {
        let config = WebSocketConfig::default().read_buffer_size(0).write_buffer_size(0);
        BotLoop {
            poll,
            joining,
            shared,
            bots: Vec::new(),
            due: BinaryHeap::new(),
            config,
            messages: Vec::new(),
            fanout: FanoutSamples::default(),
        }
    }

    fn run(mut self) -> Vec<Tally> {
        let mut events = Events::with_capacity(1024);
        while !self.shared.stop_reading.load(Ordering::Relaxed) {
            let now = monotonic_ns();
            let wait = self
                .due
                .peek()
                .map_or(LOOK_EVERY, |Reverse((due, _))| Duration::from_nanos(due.saturating_sub(now)).min(LOOK_EVERY));
            if let Err(e) = self.poll.poll(&mut events, Some(wait))
                && e.kind() != ErrorKind::Interrupted
            {
                panic!("polling the bots' sockets: {e}");
            }
            for event in &events {
                match event.token() {
                    WAKER => self.take_in(),
                    Token(slot) => self.ready(slot, event),
                }
            }
            self.act_when_due();
        }
        self.fanout.flush(&self.shared);
        self.bots.into_iter().map(|d| d.finish(&self.shared)).collect()
    }

    /// The bots handed to this thread since it last looked: each starts connecting.
    fn take_in(&mut self) {
        while let Ok((index, plan)) = self.joining.try_recv() {
            let slot = self.bots.len();
            self.bots.push(Driven::new(index, plan));
            self.connect(slot);
        }
    }

    /// Starts a connection of the bot in `slot` (or, after too many failures, gives up).
    fn connect(&mut self, slot: usize) {
        let shared = Arc::clone(&self.shared);
        let bot = &mut self.bots[slot];
        let addr = &shared.addrs[shared.topology.shard_of(bot.index)];
        match open_socket(addr, source_address(bot.index)) {
            Ok(mut tcp) => {
                self.poll
                    .registry()
                    .register(&mut tcp, Token(slot), Interest::READABLE | Interest::WRITABLE)
                    .expect("a bot's socket registers");
                bot.conn = Conn::Connecting(tcp);
            }
            Err(e) => self.failed(slot, e.to_string()),
        }
    }

    /// A connection attempt failed: tried again after a back-off, until the bot gives up.
    fn failed(&mut self, slot: usize, why: String) {
        let bot = &mut self.bots[slot];
        bot.conn = Conn::None;
        bot.tally.connect_failures += 1;
        bot.attempt += 1;
        if bot.attempt >= CONNECT_ATTEMPTS {
            eprintln!("bot{}: gave up connecting: {why}", bot.index);
            bot.conn = Conn::GaveUp;
            return;
        }
        let at = monotonic_ns() + (200_000_000u64 << (bot.attempt - 1));
        bot.retry_at = Some(at);
        self.arm(slot, at);
    }

    /// The socket of the bot in `slot` is ready (`event`): what it can do now.
    fn ready(&mut self, slot: usize, event: &Event) {
        let Some(bot) = self.bots.get_mut(slot) else { return };
        let closed = event.is_read_closed() || event.is_error();
        if event.is_readable() || closed {
            let stream = match &mut bot.conn {
                Conn::Upgrading(mid) => Some(mid.get_mut().get_mut()),
                Conn::Welcoming(ws) | Conn::Open(ws) => Some(ws.get_mut()),
                _ => None,
            };
            if let Some(stream) = stream {
                stream.edge.ready(closed);
            }
        }
        self.progress(slot);
    }

    /// Whatever the bot in `slot` can do now on its socket: connect, upgrade, read, write.
    fn progress(&mut self, slot: usize) {
        let Some(bot) = self.bots.get_mut(slot) else { return };
        match std::mem::replace(&mut bot.conn, Conn::None) {
            Conn::Connecting(tcp) => match tcp.take_error() {
                Ok(None) if tcp.peer_addr().is_ok() => {
                    let url = format!("ws://{}/", self.shared.addrs[self.shared.topology.shard_of(bot.index)]);
                    let stream = Stream::new(tcp);
                    let upgrade = tungstenite::client::client_with_config(url.as_str(), stream, Some(self.config));
                    self.upgraded(slot, upgrade);
                }
                Ok(None) => bot.conn = Conn::Connecting(tcp),
                Ok(Some(e)) | Err(e) => self.failed(slot, e.to_string()),
            },
            Conn::Upgrading(mid) => {
                let upgrade = mid.handshake();
                self.upgraded(slot, upgrade);
            }
            Conn::Welcoming(ws) => self.welcome(slot, ws),
            Conn::Open(ws) => self.read(slot, ws),
            other => bot.conn = other,
        }
    }

    /// Where the WebSocket upgrade went: on to the `Hello`, on waiting, or failed.
    fn upgraded(
        &mut self,
        slot: usize,
        upgrade: Result<
            (WebSocket<Stream>, tungstenite::handshake::client::Response),
            HandshakeError<ClientHandshake<Stream>>,
        >,
    ) {
        match upgrade {
            Ok((mut ws, _)) => {
                let bot = &self.bots[slot];
                let hello = encode_client_frame(&[ClientMessage::Hello(hello_of(bot.index))]);
                match send(&mut ws, Message::Binary(hello.into())) {
                    Ok(()) => self.welcome(slot, ws),
                    Err(e) => self.failed(slot, e.to_string()),
                }
            }
            Err(HandshakeError::Interrupted(mid)) => self.bots[slot].conn = Conn::Upgrading(mid),
            Err(HandshakeError::Failure(e)) => self.failed(slot, e.to_string()),
        }
    }

    /// Waits for the `Welcome`: then the bot plays (first connection) or plays on (after the
    /// storm dropped its first).
    fn welcome(&mut self, slot: usize, mut ws: WebSocket<Stream>) {
        let shared = Arc::clone(&self.shared);
        let frame = loop {
            match ws.get_mut().next_frame() {
                Ok(Incoming::Binary(frame)) => break frame,
                Ok(Incoming::Other) => continue,
                Ok(Incoming::Ping(payload)) => {
                    if let Err(e) = send(&mut ws, Message::Pong(payload.into())) {
                        return self.failed(slot, e.to_string());
                    }
                }
                Ok(Incoming::Nothing) => {
                    self.bots[slot].conn = Conn::Welcoming(ws);
                    return;
                }
                Ok(Incoming::Closed) => return self.failed(slot, "closed by the server".into()),
                Err(e) => return self.failed(slot, e.to_string()),
            }
        };
        let d = &mut self.bots[slot];
        d.tally.frames += 1;
        let decoded = match decode_server_frame(ws.get_ref().inbox.frame(frame)) {
            Ok(decoded) => decoded,
            Err(e) => return self.failed(slot, e.to_string()),
        };
        let mut messages = decoded.frame.messages;
        let Some(at) = messages.iter().position(|m| matches!(m, ServerMessage::Welcome(_))) else {
            let why = format!("no Welcome: {messages:?}");
            return self.failed(slot, why);
        };
        let ServerMessage::Welcome(welcome) = messages.remove(at) else { unreachable!() };
        shared.moves.welcomed(welcome.player, d.index);
        shared.online.fetch_add(1, Ordering::Relaxed);
        d.attempt = 0;
        let mut out = Out { ws: &mut ws, moves: &mut d.moves, requests: &mut d.requests };
        let sent = match &mut d.bot {
            None => {
                d.tally.connected = true;
                let mut bot = Bot::new(d.index, d.plan, &shared);
                // Home first: the server placed the player around the spawn.
                let home = out.move_to(d.plan.home.0, d.plan.home.1).map(|()| d.tally.moves += 1);
                bot.read(&shared, (&messages, messages.len()), decoded.committed_ns, (&mut d.tally, &mut self.fanout));
                d.bot = Some(bot);
                home
            }
            Some(bot) => {
                let storm = shared.storm_at.load(Ordering::Relaxed);
                shared.recorder.record_reconnect(monotonic_ns().saturating_sub(storm));
                d.tally.reconnected = true;
                bot.read(&shared, (&messages, messages.len()), decoded.committed_ns, (&mut d.tally, &mut self.fanout));
                bot.resume(&mut out)
            }
        };
        if let Err(e) = sent {
            return self.closed(slot, ws, e.to_string());
        }
        self.bots[slot].conn = Conn::Open(ws);
        let due = self.next_due(slot);
        self.arm(slot, due);
        // What came behind the Welcome: edge-triggered, it brings no new event.
        self.progress(slot);
    }

    /// Reads every frame there is, then flushes what waits to be written.
    fn read(&mut self, slot: usize, mut ws: WebSocket<Stream>) {
        let shared = Arc::clone(&self.shared);
        let d = &mut self.bots[slot];
        let bot = d.bot.as_mut().expect("a bot plays once welcomed");
        loop {
            match ws.get_mut().next_frame() {
                Ok(Incoming::Binary(frame)) => {
                    d.tally.frames += 1;
                    let messages = &mut self.messages;
                    let data = ws.get_ref().inbox.frame(frame);
                    match decode_server_frame_into(data, |kind| bot.reads(kind), messages) {
                        Ok(head) => bot.read(
                            &shared,
                            (messages, head.count),
                            head.committed_ns,
                            (&mut d.tally, &mut self.fanout),
                        ),
                        Err(e) => return self.closed(slot, ws, format!("a frame that does not decode: {e}")),
                    }
                }
                Ok(Incoming::Ping(payload)) => {
                    if let Err(e) = send(&mut ws, Message::Pong(payload.into())) {
                        return self.closed(slot, ws, e.to_string());
                    }
                }
                Ok(Incoming::Other) => {}
                Ok(Incoming::Nothing) => break,
                Ok(Incoming::Closed) => return self.closed(slot, ws, "closed by the server".into()),
                Err(e) => return self.closed(slot, ws, e.to_string()),
            }
        }
        match ws.flush() {
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return self.closed(slot, ws, e.to_string()),
            Ok(()) => {}
        }
        self.bots[slot].conn = Conn::Open(ws);
        // What a frame told may bring the bot's next action forward (a clue's spike of digs):
        // it is sent when due, not at the time armed before.
        let due = self.next_due(slot);
        self.arm(slot, due);
    }

    /// The bot's connection ended: the bot is done (the server dropped it).
    fn closed(&mut self, slot: usize, ws: WebSocket<Stream>, _why: String) {
        drop(ws);
        self.shared.online.fetch_sub(1, Ordering::Relaxed);
        self.bots[slot].conn = Conn::Ended;
    }

    /// When the bot in `slot` next has something to do: its next action (or a look every
    /// 50 ms once acting stopped), the storm if it has yet to meet it.
    fn next_due(&self, slot: usize) -> u64 {
        let d = &self.bots[slot];
        let Some(bot) = &d.bot else { return u64::MAX };
        let mut due =
            if self.shared.stop_acting.load(Ordering::Relaxed) { monotonic_ns() + 50_000_000 } else { bot.next_due() };
        let storm = self.shared.storm_at.load(Ordering::Relaxed);
        if storm != 0 && !d.tally.reconnected {
            due = due.min(storm);
        }
        due
    }

    fn arm(&mut self, slot: usize, due: u64) {
        let d = &mut self.bots[slot];
        if d.armed != due {
            d.armed = due;
            if due != u64::MAX {
                self.due.push(Reverse((due, slot)));
            }
        }
    }

    /// Runs the actions that are due: retries, the storm's drops, moves and digs.
    fn act_when_due(&mut self) {
        let now = monotonic_ns();
        while let Some(&Reverse((due, slot))) = self.due.peek() {
            if due > now {
                break;
            }
            self.due.pop();
            if self.bots[slot].armed != due {
                continue;
            }
            self.bots[slot].armed = 0;
            self.act(slot, now);
        }
    }

    fn act(&mut self, slot: usize, now: u64) {
        let shared = Arc::clone(&self.shared);
        let d = &mut self.bots[slot];
        if d.retry_at.is_some_and(|at| at <= now) {
            d.retry_at = None;
            return self.connect(slot);
        }
        let Conn::Open(ws) = &mut d.conn else { return };
        let Some(bot) = &mut d.bot else { return };
        if !shared.stop_acting.load(Ordering::Relaxed) {
            let storm = shared.storm_at.load(Ordering::Relaxed);
            if storm != 0 && !d.tally.reconnected && now >= storm {
                // Dropped, not closed: the connection goes as a network failure would take it.
                d.conn = Conn::None;
                shared.online.fetch_sub(1, Ordering::Relaxed);
                return self.connect(slot);
            }
            let mut out = Out { ws, moves: &mut d.moves, requests: &mut d.requests };
            if let Err(e) = bot.act(&mut out, &shared, &mut d.tally) {
                let Conn::Open(ws) = std::mem::replace(&mut d.conn, Conn::None) else { unreachable!() };
                return self.closed(slot, ws, e.to_string());
            }
        }
        let due = self.next_due(slot);
        self.arm(slot, due);
    }
}

/// One bot on its thread: its connection, its play (once first welcomed), its counts.
struct Driven {
    index: u32,
    plan: BotPlan,
    bot: Option<Bot>,
    conn: Conn,
    tally: Tally,
    /// Connection attempts failed in a row, and when to try again.
    attempt: u32,
    retry_at: Option<u64>,
    /// The due time it is armed for in the thread's heap (0: none).
    armed: u64,
    /// The last move `seq` and request id sent: request ids go on across connections (the
    /// server answers a repeated id, for the same player, with its first answer).
    moves: u32,
    requests: u32,
}

impl Driven {
    fn new(index: u32, plan: BotPlan) -> Self {
        Driven {
            index,
            plan,
            bot: None,
            conn: Conn::None,
            tally: Tally::default(),
            attempt: 0,
            retry_at: None,
            armed: 0,
            moves: 0,
            // Spread over the id space: a bot's ids never meet an earlier run's of its name.
            requests: (u64::from(index).wrapping_mul(0x9e37_79b9) as u32 ^ monotonic_ns() as u32) & 0x3fff_ffff,
        }
    }

    /// The bot's tally as it stops, its samples handed to the recorders.
    fn finish(mut self, shared: &Shared) -> Tally {
        if let Some(bot) = &mut self.bot {
            bot.flush(shared);
        }
        if let Conn::Open(mut ws) = std::mem::replace(&mut self.conn, Conn::None) {
            shared.online.fetch_sub(1, Ordering::Relaxed);
            let _ = ws.close(None);
            let _ = ws.flush();
        }
        self.tally
    }
}

/// Where a bot's connection is.
enum Conn {
    /// None now (between attempts).
    None,
    Connecting(TcpStream),
    Upgrading(MidHandshake<ClientHandshake<Stream>>),
    Welcoming(WebSocket<Stream>),
    Open(WebSocket<Stream>),
    /// The server ended it.
    Ended,
    GaveUp,
}

/// A bot's way out: its open connection, and the counters of its moves and requests.
pub struct Out<'a> {
    ws: &'a mut WebSocket<Stream>,
    moves: &'a mut u32,
    requests: &'a mut u32,
}

impl Out<'_> {
    /// Asks to move to (x, y).
    pub fn move_to(&mut self, x: f32, y: f32) -> tungstenite::Result<()> {
        *self.moves = self.moves.wrapping_add(1);
        let frame = encode_client_frame(&[ClientMessage::Move(Move { seq: *self.moves, x, y })]);
        send(self.ws, Message::Binary(frame.into()))
    }

    /// Sends a mod message with a new request id; the id.
    pub fn request(&mut self, ns: &str, kind: &str, body: &impl serde::Serialize) -> tungstenite::Result<u32> {
        *self.requests = self.requests.checked_add(1).unwrap_or(1);
        let request = *self.requests;
        self.send_mod(ns, kind, Some(request), body)?;
        Ok(request)
    }

    /// Sends a mod message (a request id of an earlier one: asked again).
    pub fn send_mod(
        &mut self,
        ns: &str,
        kind: &str,
        request: Option<u32>,
        body: &impl serde::Serialize,
    ) -> tungstenite::Result<()> {
        let mut encoded = Vec::with_capacity(32);
        veltrix_protocol::encode_value(body, &mut encoded);
        let message = veltrix_protocol::ModMessage { ns: ns.into(), kind: kind.into(), request, body: encoded };
        send(self.ws, Message::Binary(encode_client_frame(&[ClientMessage::Mod(message)]).into()))
    }
}

/// Sends one frame (a binary frame, or a ping's pong): written now, or as much as the socket
/// takes and the rest when it is writable again.
fn send(ws: &mut WebSocket<Stream>, message: Message) -> tungstenite::Result<()> {
    match ws.send(message) {
        Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => Ok(()),
        other => other,
    }
}

/// A bot's connected socket, read without the `recv` that would only say it is empty, and
/// what it has read of the server's frames.
struct Stream {
    tcp: TcpStream,
    edge: ReadEdge,
    /// How much of the `\r\n\r\n` that ends the upgrade's response the reads so far end
    /// with (4: all of it, the upgrade read).
    head_end: u8,
    inbox: Inbox,
}

/// The longest a frame's header is (RFC 6455: 2 bytes, 8 of length, 4 of mask).
const LONGEST_HEADER: usize = 14;

/// The largest frame a bot takes (the server's are far smaller: a terrain chunk is the
/// largest).
const MAX_FRAME: u64 = 16 << 20;

/// What a bot read of the server's frames and has yet to take, in `buf[start..end]`; the rest
/// of `buf`, zeroed once, is where the next read goes. Frames are taken in place.
#[derive(Debug)]
struct Inbox {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Default for Inbox {
    /// Room for a few frames (a frame is a few hundred bytes); more when one is larger.
    fn default() -> Self {
        Inbox { buf: vec![0; 1024], start: 0, end: 0 }
    }
}

impl Inbox {
    /// The bytes of a frame [`Stream::next_frame`] gave, until the next read.
    fn frame(&self, at: std::ops::Range<usize>) -> &[u8] {
        &self.buf[at]
    }
}

/// What the server sent next.
enum Incoming {
    /// A binary frame, where it is in the [`Inbox`].
    Binary(std::ops::Range<usize>),
    Ping(Vec<u8>),
    /// A pong or text frame: nothing for a bot.
    Other,
    /// No whole frame until the socket is ready again.
    Nothing,
    /// The server closed the connection (a close frame, or the stream's end).
    Closed,
}

impl Stream {
    /// A connected socket, its upgrade yet to be read.
    fn new(tcp: TcpStream) -> Self {
        Stream { tcp, edge: ReadEdge::default(), head_end: 0, inbox: Inbox::default() }
    }

    /// The next frame from the server: taken from what was read, reading the socket when no
    /// whole frame is left.
    fn next_frame(&mut self) -> io::Result<Incoming> {
        loop {
            let inbox = &mut self.inbox;
            let mut cursor = io::Cursor::new(&inbox.buf[inbox.start..inbox.end]);
            let parsed = FrameHeader::parse(&mut cursor).map_err(|e| io::Error::new(ErrorKind::InvalidData, e))?;
            let mut wanted = LONGEST_HEADER;
            if let Some((header, len)) = parsed {
                if len > MAX_FRAME {
                    return Err(io::Error::new(ErrorKind::InvalidData, format!("a frame of {len} bytes")));
                }
                let at = inbox.start + cursor.position() as usize;
                wanted = at - inbox.start + len as usize;
                if at + len as usize <= inbox.end {
                    let payload = at..at + len as usize;
                    inbox.start = payload.end;
                    if !header.is_final || header.mask.is_some() {
                        let why = "a fragmented or masked frame from the server";
                        return Err(io::Error::new(ErrorKind::InvalidData, why));
                    }
                    return Ok(match header.opcode {
                        OpCode::Data(Data::Binary) => Incoming::Binary(payload),
                        OpCode::Control(Control::Ping) => Incoming::Ping(inbox.buf[payload].to_vec()),
                        OpCode::Control(Control::Close) => Incoming::Closed,
                        _ => Incoming::Other,
                    });
                }
            }
            match self.fill(wanted)? {
                None => return Ok(Incoming::Nothing),
                Some(0) => return Ok(Incoming::Closed),
                Some(_) => {}
            }
        }
    }

    /// Reads what the socket holds after what is kept, with room for the frame being read,
    /// `wanted` bytes (its header's and payload's; more than is kept, or it would be whole):
    /// how many bytes (0: the stream ended), none when it would block. Taken frames' bytes make
    /// room first.
    fn fill(&mut self, wanted: usize) -> io::Result<Option<usize>> {
        let inbox = &mut self.inbox;
        if inbox.start > 0 {
            inbox.buf.copy_within(inbox.start..inbox.end, 0);
            inbox.end -= inbox.start;
            inbox.start = 0;
        }
        if wanted > inbox.buf.len() {
            inbox.buf.resize(wanted.max(inbox.buf.len() * 2), 0);
        }
        loop {
            match self.edge.read(&mut self.tcp, &mut inbox.buf[inbox.end..]) {
                Ok(n) => {
                    inbox.end += n;
                    return Ok(Some(n));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// What tungstenite reads: only the upgrade's response, and not a byte past its end, so that
/// every frame after it is the [`Inbox`]'s to read.
impl io::Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let peeked = self.tcp.peek(buf)?;
        let mut take = peeked;
        for (i, &b) in buf[..peeked].iter().enumerate() {
            self.head_end = match (self.head_end, b) {
                (0 | 2, b'\r') | (1 | 3, b'\n') => self.head_end + 1,
                (_, b'\r') => 1,
                _ => 0,
            };
            if self.head_end == 4 {
                take = i + 1;
                break;
            }
        }
        io::Read::read(&mut self.tcp, &mut buf[..take])
    }
}

impl io::Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

/// A non-blocking TCP connection to `addr` from `from`, under way.
fn open_socket(addr: &str, from: IpAddr) -> io::Result<TcpStream> {
    let to = std::net::ToSocketAddrs::to_socket_addrs(addr)?
        .next()
        .ok_or_else(|| io::Error::new(ErrorKind::NotFound, format!("{addr} names no address")))?;
    let socket = socket2::Socket::new(socket2::Domain::for_address(to), socket2::Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    // Moves are small and latency matters more than packet count.
    socket.set_tcp_nodelay(true)?;
    socket.bind(&SocketAddr::new(from, 0).into())?;
    match socket.connect(&to.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

#[cfg(test)]
mod tests {
    use std::{io::Write as _, time::Instant};

    use super::*;

    /// A bot's end of a loopback connection, and the server's (blocking).
    fn connected() -> (Stream, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client.set_nonblocking(true).unwrap();
        let (server, _) = listener.accept().unwrap();
        let tcp = TcpStream::from_std(client);
        (Stream::new(tcp), server)
    }

    /// An unmasked frame of `opcode` (0x2 binary, 0x9 ping, 0x8 close) from the server.
    fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![0x80 | opcode];
        match payload.len() {
            n @ 0..=125 => frame.push(n as u8),
            n => {
                frame.push(126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        frame.extend_from_slice(payload);
        frame
    }

    /// The next frame, waiting (up to 10 s) while the bytes are on their way.
    fn next(stream: &mut Stream) -> Incoming {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match stream.next_frame().unwrap() {
                Incoming::Nothing if Instant::now() < deadline => stream.edge.ready(false),
                incoming => return incoming,
            }
        }
    }

    fn binary(stream: &mut Stream) -> Vec<u8> {
        match next(stream) {
            Incoming::Binary(at) => stream.inbox.frame(at).to_vec(),
            _ => panic!("not a binary frame"),
        }
    }

    /// The upgrade reads the response's head and not a byte more, though the first frame came
    /// in the same segment; then frames are whole whatever pieces they arrive in, one larger
    /// than the buffer included; a ping gives its payload, a close ends it.
    #[test]
    fn the_upgrade_reads_its_head_and_the_inbox_every_frame() {
        let (mut stream, mut server) = connected();
        let head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
        let mut sent = head.to_vec();
        sent.extend(frame(0x2, b"welcome"));
        server.write_all(&sent).unwrap();
        let mut read = Vec::new();
        let mut buf = [0u8; 512];
        let deadline = Instant::now() + Duration::from_secs(10);
        while stream.head_end < 4 && Instant::now() < deadline {
            match io::Read::read(&mut stream, &mut buf) {
                Ok(n) => read.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(read, head, "the head, all of it, and nothing after it");
        assert_eq!(binary(&mut stream), b"welcome");

        let large = vec![7u8; 3000];
        let mut frames = frame(0x2, &large);
        frames.extend(frame(0x9, b"ping"));
        frames.extend(frame(0x2, b"last"));
        let (first, rest) = frames.split_at(1500);
        server.write_all(first).unwrap();
        // Until the bot holds all that came first, and waits for the rest.
        let deadline = Instant::now() + Duration::from_secs(10);
        while stream.inbox.end - stream.inbox.start < first.len() && Instant::now() < deadline {
            assert!(matches!(stream.next_frame().unwrap(), Incoming::Nothing), "a frame from part of one");
            stream.edge.ready(false);
        }
        assert_eq!(stream.inbox.end - stream.inbox.start, first.len());
        server.write_all(rest).unwrap();
        assert_eq!(binary(&mut stream), large);
        assert!(matches!(next(&mut stream), Incoming::Ping(p) if p == b"ping"));
        assert_eq!(binary(&mut stream), b"last");
        server.write_all(&frame(0x8, &[])).unwrap();
        assert!(matches!(next(&mut stream), Incoming::Closed));
    }

    /// What reading the next frame fails with, waiting (up to 10 s) for the bytes.
    fn error_of(stream: &mut Stream) -> io::Error {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match stream.next_frame() {
                Ok(Incoming::Nothing) if Instant::now() < deadline => stream.edge.ready(false),
                Ok(_) => panic!("taken as a frame"),
                Err(e) => return e,
            }
        }
    }

    /// A fragmented frame, or one larger than a bot takes, is an error, not a frame.
    #[test]
    fn a_frame_the_swarm_does_not_take_is_an_error() {
        let (mut stream, mut server) = connected();
        server.write_all(&[0x02, 0x01, b'x']).unwrap();
        assert_eq!(error_of(&mut stream).kind(), ErrorKind::InvalidData);

        let (mut stream, mut server) = connected();
        server.write_all(&[0x82, 127]).unwrap();
        server.write_all(&(MAX_FRAME + 1).to_be_bytes()).unwrap();
        assert_eq!(error_of(&mut stream).kind(), ErrorKind::InvalidData);
    }
}
