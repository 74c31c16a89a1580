//! Server start time with N players in the store: from spawning the process to its log line
//! `server "..." running`, then to the end of the first tick and to the exit.
//!
//! `cargo run --release -p veltrix-bench-start -- 0 100000`
//!
//! For each N (default 100000): a fresh server root with the shipped treasure-hunt mod, its
//! `universe/veltrix.redb` filled as the server would have left it after N players came once:
//! a `veltrix/player-ids` entry per player (`player{i}` -> i + 1), where it left
//! (`veltrix/positions`) and a treasure-hunt player record (a few stacks, pending rewards for
//! some, a team for some, dig effort on two vaults). Only the ids are read at start; positions
//! and records are read when a player joins.
//! Then the release server (`target/bench-server/`, built by `release_server`) runs with
//! `--ticks 1` several times (`--runs R`, default 5) and the times are printed as a table.
//! The store file stays in the page cache between runs (it was just written): warm starts.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    path::Path,
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant},
};

use treasure_hunt::persist::{PLAYERS, PlayerRecord};
use treasure_hunt_wire::ItemStack;
use veltrix_host::{
    sessions::{PLAYER_IDS, POSITIONS, Sessions},
    store::RedbStore,
};
use veltrix_sdk::{Storage, Store, Write, rmp_serde};
use veltrix_tests::TestServer;

/// Players per write transaction while filling the store.
const BATCH: usize = 10_000;

const ITEMS: &[&str] = &["Gold_Coin", "Pearl", "Ruby", "Sapphire", "Emerald", "Silver_Ring", "Compass_Shard"];
const VAULTS: &[&str] = &["Lighthouse_Rock", "Drowned_Chapel", "Smugglers_Cove", "Buried_Cache_3", "Ruin_5"];
const TEAMS: &[&str] = &["Gulls", "Otters", "Crabs"];

/// What the hunt would have stored for player `i` (24 slots, as the default rules).
fn record(i: usize) -> PlayerRecord {
    let stack =
        |k: usize, quantity: usize| ItemStack { item: ITEMS[k % ITEMS.len()].to_string(), quantity: quantity as u32 };
    let mut slots: Vec<Option<ItemStack>> = vec![None; 24];
    for (n, slot) in slots.iter_mut().take(2 + i % 4).enumerate() {
        *slot = Some(stack(i + n, 1 + (i * 7 + n) % 99));
    }
    let pending = if i.is_multiple_of(3) { vec![stack(i + 5, 3), stack(i + 6, 1)] } else { Vec::new() };
    let team = i.is_multiple_of(4).then(|| TEAMS[i % TEAMS.len()].to_string());
    // Effort in hundredths of a dig, as the hunt writes it now.
    let effort_hundredths: BTreeMap<String, u32> = [VAULTS[i % VAULTS.len()], VAULTS[(i + 2) % VAULTS.len()]]
        .iter()
        .map(|v| (v.to_string(), 100 * (5 + (i % 40) as u32)))
        .collect();
    PlayerRecord {
        slots,
        pending,
        team,
        effort: BTreeMap::new(),
        effort_run: Some(("Sunken_Isles".into(), 1)),
        effort_hundredths,
        effects: Vec::new(),
        pity: BTreeMap::new(),
        // A server alone.
        ledger_claims: None,
    }
}

/// Fills the store with `players` players, encoded as `Changes::put` does; returns how long it took.
fn fill(path: &Path, players: usize) -> Duration {
    let started = Instant::now();
    let store = RedbStore::open(path).unwrap_or_else(|e| panic!("{e}"));
    let (ids, positions, records): (Arc<str>, Arc<str>, Arc<str>) =
        (PLAYER_IDS.into(), POSITIONS.into(), PLAYERS.into());
    let put =
        |table: &Arc<str>, key: Vec<u8>, value: Vec<u8>| Write { table: Arc::clone(table), key, value: Some(value) };
    for start in (0..players).step_by(BATCH) {
        let mut writes = Vec::with_capacity(3 * BATCH);
        for i in start..(start + BATCH).min(players) {
            let id = (i + 1) as u64;
            let name = format!("player{i}");
            writes.push(put(&ids, rmp_serde::to_vec(&name).unwrap(), rmp_serde::to_vec_named(&id).unwrap()));
            let at = (100.0 + (i % 300) as f32, 80.0 + (i / 300 % 300) as f32);
            writes.push(put(&positions, rmp_serde::to_vec(&id).unwrap(), rmp_serde::to_vec_named(&at).unwrap()));
            writes.push(put(&records, rmp_serde::to_vec(&id).unwrap(), rmp_serde::to_vec_named(&record(i)).unwrap()));
        }
        store.commit(&writes).unwrap_or_else(|e| panic!("filling the store: {e}"));
    }
    // Read back as the server does: every id at start, a record by key on join.
    let store = Store(Arc::new(store));
    let ids: Vec<(String, u64)> = store.load(PLAYER_IDS).expect("the ids decode as the server reads them");
    assert_eq!(ids.len(), players);
    if players > 0 {
        let last = players - 1;
        assert!(ids.contains(&(format!("player{last}"), players as u64)));
        let bytes = store.0.get(PLAYERS, &rmp_serde::to_vec(&(players as u64)).unwrap()).unwrap().expect("a record");
        assert_eq!(rmp_serde::from_slice::<PlayerRecord>(&bytes).expect("the record decodes"), record(last));
    }
    started.elapsed()
}

/// One run's times from spawning the server.
struct Run {
    running: Duration,
    first_tick: Duration,
    exit: Duration,
}

/// Runs the server for one tick; the times at which its log said it was running, that the tick
/// was done, and at which it exited.
fn run_once(server: &TestServer) -> Run {
    let started = Instant::now();
    let mut child = server
        .command()
        .args(["--ticks", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let (mut running, mut first_tick) = (None, None);
    let mut log = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines().map_while(Result::ok) {
        if running.is_none() && line.contains("server \"") && line.contains(" running ") {
            running = Some(started.elapsed());
        }
        if first_tick.is_none() && line.contains("stopped after 1 ticks") {
            first_tick = Some(started.elapsed());
        }
        log.push_str(&line);
        log.push('\n');
    }
    let status = child.wait().expect("the server exits");
    let exit = started.elapsed();
    assert!(status.success(), "the server failed ({status}):\n{log}");
    let missing = |what: &str| -> Duration { panic!("no log line saying {what}:\n{log}") };
    Run {
        running: running.unwrap_or_else(|| missing("it runs")),
        first_tick: first_tick.unwrap_or_else(|| missing("it stopped after 1 tick")),
        exit,
    }
}

/// How long each step of the start's store work took.
struct Steps {
    open: Duration,
    read: Duration,
    decode: Duration,
    sessions: Duration,
}

/// The start's store work alone, in this process: opening the store, reading the ids table,
/// reading and decoding it (`Store::load`), and `Sessions::load` (all that, and the name map),
/// as `server::run` does them at start.
fn store_steps(path: &Path) -> Steps {
    let timed = |f: &mut dyn FnMut()| {
        let started = Instant::now();
        f();
        started.elapsed()
    };
    let mut store = None;
    let open = timed(&mut || store = Some(Store(Arc::new(RedbStore::open(path).unwrap_or_else(|e| panic!("{e}"))))));
    let store = store.expect("opened");
    let read = timed(&mut || drop(store.0.read_all(PLAYER_IDS).expect("the ids read")));
    let decode = timed(&mut || drop(store.load::<String, u64>(PLAYER_IDS).expect("the ids decode")));
    let mut sessions = Sessions::default();
    let loaded = timed(&mut || sessions.load(&store).expect("the ids load"));
    Steps { open, read, decode, sessions: loaded }
}

/// Minimum, median and maximum, in milliseconds.
fn spread(mut times: Vec<Duration>) -> (f64, f64, f64) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(times[0]), ms(times[times.len() / 2]), ms(times[times.len() - 1]))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut counts, mut runs) = (Vec::new(), 5);
    while let Some(arg) = args.next() {
        if arg == "--runs" {
            runs = args.next().and_then(|r| r.parse().ok()).filter(|r| *r > 0).expect("--runs N, N > 0");
        } else {
            counts.push(arg.parse::<usize>().expect("player counts, e.g. 0 100000"));
        }
    }
    if counts.is_empty() {
        counts.push(100_000);
    }
    let server_dir = veltrix_loadtest::release_server();
    let mut rows = Vec::new();
    for n in counts {
        let server = TestServer::new().with_server_dir(server_dir.clone()).with_treasure_hunt("Veltrix_TreasureHunt");
        let universe = server.root().join("universe");
        std::fs::create_dir_all(&universe).expect("universe/");
        let path = universe.join(veltrix_host::store::FILE);
        let filled = fill(&path, n);
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        eprintln!("{n} players stored in {:.1} s ({:.1} MiB)", filled.as_secs_f64(), size as f64 / 1048576.0);
        let results: Vec<Run> = (0..runs).map(|_| run_once(&server)).collect();
        for (k, r) in results.iter().enumerate() {
            eprintln!(
                "  run {}: running {:.0} ms, first tick done {:.0} ms, exited {:.0} ms",
                k + 1,
                r.running.as_secs_f64() * 1000.0,
                r.first_tick.as_secs_f64() * 1000.0,
                r.exit.as_secs_f64() * 1000.0
            );
        }
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(size);
        let steps: Vec<Steps> = (0..runs).map(|_| store_steps(&path)).collect();
        let median = |f: fn(&Steps) -> Duration| spread(steps.iter().map(f).collect()).1;
        let (open, load) = (median(|s| s.open), median(|s| s.sessions));
        eprintln!(
            "  in this process (medians): store opened {open:.1} ms; ids read {:.1} ms, read and decoded {:.1} ms; \
             Sessions::load {load:.1} ms",
            median(|s| s.read),
            median(|s| s.decode)
        );
        rows.push((
            n,
            size,
            spread(results.iter().map(|r| r.running).collect()),
            spread(results.iter().map(|r| r.first_tick).collect()),
            spread(results.iter().map(|r| r.exit).collect()),
            (open, load),
        ));
    }
    println!(
        "| players | store file (MiB) | to \"running\" min / median / max (ms) | to first tick done, median (ms) \
         | to exit, median (ms) | open store, median (ms) | Sessions::load, median (ms) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for (n, size, running, first_tick, exit, (open, load)) in rows {
        println!(
            "| {n} | {:.1} | {:.0} / {:.0} / {:.0} | {:.0} | {:.0} | {open:.1} | {load:.1} |",
            size as f64 / 1048576.0,
            running.0,
            running.1,
            running.2,
            first_tick.1,
            exit.1
        );
    }
}
