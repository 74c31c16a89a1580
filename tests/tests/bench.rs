//! The benchmark build (`xtask::BENCH_FEATURES`, docs/benchmarks.md): frames carry the time
//! their tick was committed on the clock the clients read, `/bench` reports ticks and the
//! allocations made on the tick thread, and the mod built with it loads (the sdk feature is in
//! the build fingerprint on both sides). The normal build stays without any of it.

use std::time::Duration;

use veltrix_client::{Client, hello};
use veltrix_protocol::ServerMessage;
use veltrix_tests::TestServer;
use xtask::BENCH_FEATURES;

const WAIT: Duration = Duration::from_secs(5);

/// Nanoseconds of CLOCK_MONOTONIC, as a load generator reads them.
fn monotonic_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec to write.
    assert_eq!(unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) }, 0);
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("/bench is not JSON ({e}):\n{body}"))
}

fn u64_at(value: &serde_json::Value, pointer: &str) -> u64 {
    value.pointer(pointer).and_then(serde_json::Value::as_u64).unwrap_or_else(|| panic!("no {pointer} in {value:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_build_stamps_frames_and_reports_ticks_and_allocations() {
    let server = TestServer::new().with_features(BENCH_FEATURES).with_treasure_hunt("Veltrix_TreasureHunt");
    let live = server.start(&[]);

    let asked = monotonic_ns();
    let (mut client, welcome) = Client::connect(&live.addr, hello("ana")).await.unwrap();
    let welcomed = monotonic_ns();
    assert_eq!(
        welcome.mods.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["Veltrix:TreasureHunt"],
        "the mod built with the server loads:\n{}",
        live.log()
    );
    let committed = client.committed_ns().expect("the Welcome's frame carries committed_ns");
    assert!(asked < committed && committed <= welcomed, "{asked} < {committed} <= {welcomed}");

    // A move far out of reach is refused in the next tick's frame, committed after it was sent.
    let sent = monotonic_ns();
    let seq = client.move_to(welcome.x + 500.0, welcome.y).await.unwrap();
    let (frame, committed) = loop {
        let read = tokio::time::timeout(WAIT, client.next_stamped_frame()).await.expect("a frame in time");
        let (frame, committed) = read.unwrap().expect("open");
        if frame.messages.iter().any(|m| matches!(m, ServerMessage::PositionCorrected(c) if c.seq == seq)) {
            break (frame, committed);
        }
    };
    let received = monotonic_ns();
    let committed = committed.expect("a tick's frame carries committed_ns");
    assert!(sent < committed && committed <= received, "{sent} < {committed} <= {received}");
    assert!(frame.tick > welcome.tick);

    // A tick is recorded once it has run, after its frames went out: wait for the frame's.
    let deadline = std::time::Instant::now() + WAIT;
    let bench = loop {
        let (status, body) = live.admin_get("/bench");
        assert!(status.contains("200"), "{status}\n{body}");
        let bench = json(&body);
        if u64_at(&bench, "/ticks/last") >= frame.tick {
            break bench;
        }
        assert!(std::time::Instant::now() < deadline, "tick {} not recorded:\n{bench:#}", frame.tick);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let ticks = u64_at(&bench, "/ticks/count");
    assert!(ticks > 0, "{bench:#}");
    let (p50, max) = (u64_at(&bench, "/ticks/duration_us/p50"), u64_at(&bench, "/ticks/duration_us/max"));
    assert!(0 < p50 && p50 <= max && u64_at(&bench, "/ticks/duration_us/p999") <= max, "{bench:#}");
    assert_eq!(bench.pointer("/allocations/counted"), Some(&true.into()), "{bench:#}");
    // A join allocates on the tick thread (its entity, its Welcome): at least that tick did.
    let allocating = u64_at(&bench, "/allocations/ticks_with_any");
    assert!(allocating > 0 && u64_at(&bench, "/allocations/total") >= allocating, "{bench:#}");
    assert!(u64_at(&bench, "/allocations/total_bytes") > 0 && u64_at(&bench, "/allocations/max_in_one_tick") > 0);
    let last = bench.pointer("/allocations/last_ticks").and_then(|v| v.as_array()).expect("last_ticks");
    assert!(!last.is_empty() && last.iter().all(|t| u64_at(t, "/tick") <= u64_at(&bench, "/ticks/last")));
    assert!(u64_at(&bench, "/process/rss_bytes") > 0, "{bench:#}");
    let cpu = bench.pointer("/process/cpu_user_seconds").and_then(|v| v.as_f64()).expect("cpu_user_seconds");
    assert!(cpu > 0.0, "{bench:#}");

    // A reset answers with the window it ends; the next window starts after it.
    let (status, body) = live.admin_post("/bench/reset");
    assert!(status.contains("200"), "{status}\n{body}");
    let ended = json(&body);
    assert_eq!(ended.pointer("/window/reset_now"), Some(&true.into()));
    assert!(u64_at(&ended, "/ticks/count") >= ticks);
    // The next window once a tick is recorded in it.
    let after = veltrix_tests::poll(WAIT, || {
        let after = json(&live.admin_get("/bench").1);
        (u64_at(&after, "/ticks/count") > 0).then_some(after)
    })
    .expect("no tick recorded after the reset");
    assert_eq!(u64_at(&after, "/window/resets"), 1);
    assert!(u64_at(&after, "/ticks/count") > 0, "{after:#}");
    assert!(u64_at(&after, "/ticks/first") > u64_at(&ended, "/ticks/last"), "{ended:#}\n{after:#}");

    client.close().await.unwrap();
    let (status, log) = live.stop();
    assert!(status.success(), "{log}");
    assert!(log.contains("allocated on the tick thread"), "the exit summary counts allocations:\n{log}");
}

/// The normal build: no stamp in frames, no `/bench`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_build_has_no_stamps_and_no_bench() {
    let server = TestServer::new().with_treasure_hunt("Veltrix_TreasureHunt");
    let live = server.start(&[]);
    let (client, _) = Client::connect(&live.addr, hello("ana")).await.unwrap();
    assert_eq!(client.committed_ns(), None);
    let (status, _) = live.admin_get("/bench");
    assert!(status.contains("404"), "{status}");
    client.close().await.unwrap();
}

/// The counting allocator is the sdk's `#[global_allocator]`, and only works if the dynamic
/// linker binds every library's `__rust_alloc` to the sdk (sdk/src/alloc_count.rs): the
/// server binary's, std's and the dlopened mod's. glibc's loader shows its bindings.
#[test]
fn every_library_allocates_through_the_sdk() {
    let server = TestServer::new().with_features(BENCH_FEATURES).with_treasure_hunt("Veltrix_TreasureHunt");
    let trace = server.root().join("ld-bindings");
    let output = server
        .command()
        .args(["--ticks", "3"])
        .env("LD_DEBUG", "bindings")
        .env("LD_DEBUG_OUTPUT", &trace)
        .output()
        .expect("the server starts");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // One file per process: `ld-bindings.<pid>`.
    let mut bindings = String::new();
    for entry in std::fs::read_dir(server.root()).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("ld-bindings")) {
            bindings.push_str(&std::fs::read_to_string(path).unwrap());
        }
    }
    let alloc: Vec<&str> = bindings.lines().filter(|l| l.contains("___rust_alloc'")).collect();
    for library in ["/veltrix-server ", "/libstd-", "/libtreasure_hunt.so "] {
        let line = alloc
            .iter()
            .find(|l| l.split(" to ").next().is_some_and(|from| from.contains(library)))
            .unwrap_or_else(|| panic!("no binding of __rust_alloc for {library}:\n{}", alloc.join("\n")));
        assert!(line.contains(" to ") && line.split(" to ").nth(1).unwrap().contains("/libveltrix_sdk.so "), "{line}");
    }
}
