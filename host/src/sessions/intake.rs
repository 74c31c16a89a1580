//! Intake: what the network received, applied on the tick thread in `PreTick`: joins (and
//! their refusals), mod messages, commands, moves (checked by [`super::movement`]); and the
//! departures, in `PostTick`, once their last input was applied.

use std::sync::atomic::Ordering;

use veltrix_sdk::{
    Audience, Changes, JoinChecks, Outbox, Player, PlayerId, Position, Sender, Store, TickInfo, TileWorld,
    prelude::*,
    protocol::{ClientMessage, ErrorCode, PROTOCOL_VERSION, ServerMessage, Welcome},
    runtime::requests,
};

use super::{
    ModCatalog, NetLink, POSITIONS, SessionRules, Sessions,
    bans::Bans,
    delivery::{self, Connection},
    frames::TickFrames,
    movement::{self, MoveBudget, PendingMoves},
};
use crate::{
    answers::{Answers, Seen},
    cluster::handoff::HandoffLink,
    interest::{self, Interest},
    net::{JoinRequest, NetEvent, writers::Writers},
    reasons::Disconnect,
};

/// PreTick: takes what the network received and applies it: joins, leaves, moves, mod
/// messages, commands.
pub fn receive_network(world: &mut World) {
    let tick = world.resource::<TickInfo>().tick;
    // Those that came as their name's last connection ended: that player is gone now.
    let rejoining = std::mem::take(&mut world.resource_mut::<Sessions>().rejoining);
    for (request, held) in rejoining {
        let conn = request.conn;
        join(world, request);
        apply_messages(world, conn, held);
    }
    world.resource_scope(|world, link: Mut<NetLink>| {
        link.current_tick.store(tick, Ordering::Relaxed);
        link.metrics.inbound_queue_depth.set(link.events.len() as i64);
        while let Ok(event) = link.events.try_recv() {
            match event {
                NetEvent::Join(request) => match world.get_resource_mut::<HandoffLink>() {
                    // A shard: the join waits for the player's records from the shard it was on.
                    Some(mut handoff) => handoff.park(request, tick),
                    None => join(world, request),
                },
                NetEvent::Messages { conn, messages } => {
                    // A join waiting for the next tick keeps them until it is in.
                    if let Some(i) = world.resource::<Sessions>().rejoining.iter().position(|(r, _)| r.conn == conn) {
                        world.resource_mut::<Sessions>().rejoining[i].1.extend(messages);
                        continue;
                    }
                    // A shard's join waiting for the player's records keeps them until it is in.
                    let messages = match world.get_resource_mut::<HandoffLink>() {
                        Some(mut handoff) => match handoff.hold(conn, messages) {
                            Some(messages) => messages,
                            None => continue,
                        },
                        None => messages,
                    };
                    apply_messages(world, conn, messages);
                }
                NetEvent::Left { conn, reason } => {
                    if let Some(mut handoff) = world.get_resource_mut::<HandoffLink>() {
                        handoff.drop_parked(conn);
                    }
                    let mut sessions = world.resource_mut::<Sessions>();
                    sessions.rejoining.retain(|(r, _)| r.conn != conn);
                    if let Some(entity) = sessions.by_conn(conn) {
                        sessions.departed.push((entity, reason));
                        sessions.ending.insert(entity);
                    }
                }
            }
        }
    });
    movement::apply_moves(world);
}

/// Applies what a joined client sent, in order (nothing if it is not in). Its moves wait in
/// [`PendingMoves`] with those of the clients after it, until something else is applied: the
/// caller applies them ([`movement::apply_moves`]) before anything reads where players are.
pub(crate) fn apply_messages(
    world: &mut World,
    conn: crate::net::ConnId,
    messages: impl IntoIterator<Item = ClientMessage>,
) {
    let Some(entity) = world.resource::<Sessions>().by_conn(conn) else { return };
    for message in messages {
        apply(world, entity, message);
    }
}

/// A join, decided: refused (banned, name taken, full, saved state unreadable) or let in.
pub(crate) fn join(world: &mut World, request: JoinRequest) {
    // The moves received before it are applied before it (it may replace a player, saving
    // where it is).
    movement::apply_moves(world);
    let JoinRequest { conn, name, authenticated, addr, handle } = request;
    let key = name.to_lowercase();
    if world.resource::<Bans>().names.contains(&key) {
        handle.close(ErrorCode::Banned, "you are banned from this server");
        return;
    }
    // A shard: one session per name across every shard of the hunt is settled before the join
    // gets here (`cluster::handoff`, the player's entry in NATS names its shard).
    if let Some(existing) = world.resource::<Sessions>().by_name(&name) {
        // Its connection ended this tick (a client reconnecting at once): this join is let in
        // at the next tick, once that player is removed, not refused.
        if world.resource::<Sessions>().ending.contains(&existing) {
            let request = JoinRequest { conn, name, authenticated, addr, handle };
            world.resource_mut::<Sessions>().rejoining.push((request, Vec::new()));
            return;
        }
        if !authenticated {
            handle.close(ErrorCode::NameTaken, format!("a player named {name} is online"));
            return;
        }
        replace_session(world, existing, "you logged in from somewhere else");
    }
    let rules = world.resource::<SessionRules>().clone();
    if world.resource::<Sessions>().online() >= rules.max_players as usize {
        handle.close(ErrorCode::ServerFull, format!("the server is full ({} players)", rules.max_players));
        return;
    }
    let tick = world.resource::<TickInfo>();
    let (tick, rate) = (tick.tick, tick.rate);
    let id = world.resource_scope(|world, mut changes: Mut<Changes>| {
        world.resource_mut::<Sessions>().id_for(&name, &mut changes)
    });
    // A player whose saved state a mod cannot read stays out: let in, it would start with
    // nothing, saved over what could not be read. A store read on the tick thread (each check
    // reads its mod's record of this player), bounded: only an admitted join gets here (the
    // bans, the name and MaxPlayers are checked above), once per connection.
    let player = Player { id, name: name.clone() };
    let failed = crate::panics::catch(|| JoinChecks::first_failed(world, &player))
        .unwrap_or_else(|panic| Some(("a mod".into(), format!("its join check panicked: {panic}"))));
    if let Some((by, why)) = failed {
        tracing::error!(
            "player {name} (id {id}) refused: {by} cannot read its saved state: {why}. It is kept as it is: run \
             `veltrix-server check` with the server stopped, and see \"When something goes wrong\" in docs/storage.md"
        );
        handle.close(
            ErrorCode::SavedStateUnreadable,
            "your saved state cannot be read; it is kept as it is and the server's operator is told: try again once \
             it is repaired",
        );
        return;
    }
    // Where the player left off, if that is still walkable ground; else its spawn point. One
    // point read of the store on the tick thread, bounded as the join checks above.
    let spawn = last_position(world, id)
        .filter(|p| world.resource::<TileWorld>().walkable(p.x, p.y))
        .unwrap_or_else(|| rules.spawn_point(id, world.resource::<TileWorld>()));
    world.resource_scope(|world, mut answers: Mut<Answers>| answers.joined(world.get_resource::<Store>(), id));
    let welcome = ServerMessage::Welcome(Welcome {
        player: id,
        protocol: PROTOCOL_VERSION,
        server_name: rules.server_name.clone(),
        tick_rate: rate,
        tick,
        x: spawn.x,
        y: spawn.y,
        mods: world.resource::<ModCatalog>().0.clone(),
        world: Some(world.resource::<crate::terrain::TerrainChunks>().info),
    });
    // Sent after the tick's commit, like everything else: a new name's id is saved first.
    let welcome = delivery::welcome_frame(tick, &welcome);
    if let Some(mut writers) = world.get_resource_mut::<Writers>() {
        writers.register(conn, &handle);
    }
    let entity = world
        .spawn((
            player,
            spawn,
            Connection::new(conn, handle, welcome),
            MoveBudget::full(rules.max_speed, tick),
            Interest::default(),
            crate::terrain::SentChunks::default(),
        ))
        .id();
    world.resource_mut::<delivery::Welcoming>().0.push(entity);
    world.resource_mut::<TickFrames>().connect(entity, conn);
    let mut sessions = world.resource_mut::<Sessions>();
    sessions.seat_player(conn, entity);
    sessions.by_id.insert(id, entity);
    tracing::info!("player {name} (id {id}) joined from {addr}");
}

/// PostTick, first: removes the players whose connection ended this tick, after the systems
/// that applied what they sent (a dig that came just before the end is applied and its answer
/// recorded for a repeat on the next connection). Until then the name stays online: a join
/// under it in the same tick waits for the next (`rejoining`). Then the `players_online`
/// gauge, after the tick's joins and departures.
///
/// A shard keeps a player whose claim the ledger has not answered yet until it has (at most a
/// JetStream round trip while NATS is up; while it is down, until it is back): the answer is
/// applied to the player here, and the records it leaves with, put in NATS for the next shard
/// it joins, hold what the claim granted.
pub fn remove_departed(world: &mut World) {
    let mut departed = std::mem::take(&mut world.resource_mut::<Sessions>().departed);
    let mut sessions = world.resource_mut::<Sessions>();
    // Not on every tick: clearing writes the whole table, as large as the last storm left it.
    if !sessions.ending.is_empty() {
        sessions.ending.clear();
    }
    departed.retain(|&(entity, reason)| {
        if awaits_ledger(world, entity) {
            world.resource_mut::<Sessions>().ending.insert(entity);
            return true;
        }
        remove_player(world, entity, reason);
        false
    });
    // The list goes back, with the players kept: its room is kept for the next tick's departures.
    world.resource_mut::<Sessions>().departed = departed;
    if let Some(link) = world.get_resource::<NetLink>() {
        link.metrics.players_online.set(world.resource::<Sessions>().online() as i64);
    }
}

/// Whether the ledger has yet to answer a claim of this player's (a shard only).
fn awaits_ledger(world: &World, entity: Entity) -> bool {
    let Some(ledger) = world.get_resource::<veltrix_sdk::Ledger>() else { return false };
    world.get::<Player>(entity).is_some_and(|player| ledger.awaits_answer_for(player.id))
}

/// Ends a player's session because it logged in elsewhere: its client is told `Replaced`
/// (`why`), and the player is removed now.
pub(crate) fn replace_session(world: &mut World, entity: Entity, why: &str) {
    if let Some(old) = world.get::<Connection>(entity) {
        old.handle.close(ErrorCode::Replaced, why);
    }
    remove_player(world, entity, Disconnect::Replaced);
}

/// Removes a player from the world: others stop seeing it, where it stands is saved (with the
/// tick) for its next join, its entity goes.
pub fn remove_player(world: &mut World, entity: Entity, reason: Disconnect) {
    let Some(player) = world.get::<Player>(entity).cloned() else { return };
    interest::forget(world, entity, player.id);
    let conn = world.get::<Connection>(entity).map(|c| c.conn);
    if let Some(at) = world.get::<Position>(entity).copied() {
        world.resource_mut::<Changes>().put(&POSITIONS.into(), &player.id, &(at.x, at.y));
        if let Some(mut handoff) = world.get_resource_mut::<HandoffLink>() {
            handoff.departed(player.id, &player.name, (at.x, at.y));
        }
    }
    if let Some(conn) = conn
        && let Some(mut writers) = world.get_resource_mut::<Writers>()
    {
        writers.forget(conn);
    }
    if let Some(mut frames) = world.get_resource_mut::<TickFrames>() {
        frames.disconnect(entity);
    }
    let mut sessions = world.resource_mut::<Sessions>();
    if let Some(conn) = conn {
        sessions.unseat_player(conn);
    }
    sessions.by_id.remove(&player.id);
    world.resource_mut::<Answers>().forget(player.id);
    world.despawn(entity);
    tracing::info!("player {} left ({reason})", player.name);
}

fn apply(world: &mut World, entity: Entity, message: ClientMessage) {
    if let ClientMessage::Move(mv) = message {
        world.resource_mut::<PendingMoves>().push(entity, mv);
        return;
    }
    // Anything else sees the moves received before it applied.
    movement::apply_moves(world);
    let Some(player) = world.get::<Player>(entity).map(|p| p.id) else { return };
    match message {
        ClientMessage::Hello(_) => requests::refuse(
            world,
            player,
            ErrorCode::HandshakeRequired,
            "already joined: Hello comes once".into(),
            None,
        ),
        // Queued in PendingMoves above.
        ClientMessage::Move(_) => {}
        ClientMessage::Mod(m) => {
            if let Some(request) = m.request
                && !first_time(world, player, request)
            {
                return;
            }
            requests::deliver_mod_message(world, Sender { entity, player, request: m.request }, &m);
        }
        ClientMessage::Command(c) => {
            if first_time(world, player, c.request) {
                requests::answer_command(world, entity, player, &c);
            }
        }
    }
}

/// Whether a request is new; a repeat is answered again from what it got the first time (or
/// waits for its answer, when it came in this very tick) and is not applied.
///
/// Reads the store on the tick thread, bounded: one point read per repeat of an answered request
/// (repeats count against the connection's rate limit, `Network.MaxMessagesPerSecond`).
fn first_time(world: &mut World, player: PlayerId, request: u32) -> bool {
    let store = world.get_resource::<Store>().cloned();
    match world.resource_mut::<Answers>().check(store.as_ref(), player, request) {
        Seen::New => true,
        Seen::InFlight => false,
        Seen::Answered(answers) => {
            let mut outbox = world.resource_mut::<Outbox>();
            for answer in answers {
                outbox.send_saved(Audience::Player(player), answer);
            }
            false
        }
    }
}

/// Where a player was when it last left, from the store.
fn last_position(world: &World, id: PlayerId) -> Option<Position> {
    let store = world.get_resource::<Store>()?;
    let key = veltrix_sdk::rmp_serde::to_vec(&id).expect("ids serialise");
    let bytes = store.0.get(POSITIONS, &key).ok()??;
    match veltrix_sdk::rmp_serde::from_slice::<(f32, f32)>(&bytes) {
        Ok((x, y)) => Some(Position { x, y }),
        Err(e) => {
            tracing::warn!("player {id}: where it left does not decode ({e}): it starts at the spawn");
            None
        }
    }
}

/// At shutdown: tells every client and closes its connection; their positions go with the
/// last commit.
pub fn close_all(world: &mut World) {
    let mut players = world.query::<(&Player, &Position, &Connection)>();
    let mut positions = Vec::new();
    for (player, at, conn) in players.iter(world) {
        conn.handle.close(ErrorCode::ServerStopping, "the server is stopping");
        positions.push((player.id, (at.x, at.y)));
    }
    let table = POSITIONS.into();
    let mut changes = world.resource_mut::<Changes>();
    for (id, at) in positions {
        changes.put(&table, &id, &at);
    }
}
