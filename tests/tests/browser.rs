//! The browser client in a real headless Chromium, served by the real server: a person's whole
//! game, checked on the page's state and on the canvas's pixels. Screenshots go to
//! `target/browser-artifacts/`. Needs Chromium and `web/node_modules` (see
//! `veltrix_tests::browser`); `.ci/run` installs both.

use std::time::Duration;

use serde_json::json;
use veltrix_client::{Client, hello};
use veltrix_tests::{LiveServer, TestServer, browser::Browser, free_port};

const MOD_DIR: &str = "mods/Veltrix_TreasureHunt";
const WAIT: Duration = Duration::from_secs(15);
/// Where players appear.
const SPAWN: (f32, f32) = (20.5, 24.5);
/// The vault, 5.5 tiles east of the spawn: out of reach until the player walks.
const VAULT: (u32, u32) = (26, 24);
/// What the page shows when asked where things stand, for failure messages.
const EXPLAIN: &str = "JSON.stringify({phase: veltrix.state.phase, problem: veltrix.state.problem, \
    me: veltrix.state.me, toasts: veltrix.state.toasts.map(t => t.text), slots: veltrix.state.slots, \
    others: [...veltrix.state.others.values()].map(o => o.name), dig: veltrix.state.dig})";

/// A 64 x 48 world: ground, a wall of rock west of the spawn, a pond to the south-east.
fn map() -> String {
    (0..48)
        .map(|y| {
            (0..64)
                .map(|x| match (x, y) {
                    (10, 10..=38) => '#',
                    (44..=52, 34..=40) => '~',
                    _ => '.',
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A server on `port` with the map, a hunt `Test` of one vault (three digs, five coins) and
/// players seeing each other within 12 tiles.
fn server(port: u16, auth: &str) -> TestServer {
    let server = TestServer::new().with_treasure_hunt("Veltrix_TreasureHunt").with_port(port);
    let data = server.root().join(MOD_DIR).join("assets/Server");
    std::fs::remove_dir_all(&data).expect("the shipped pack's game data is removed");
    let files = [
        ("Item/Items/Coin.json", json!({"MaxStack": 50, "Value": 1})),
        (
            "Drops/Coins.json",
            json!({"Container": {"Type": "Single", "Item": {"ItemId": "Coin", "QuantityMin": 5, "QuantityMax": 5}}}),
        ),
        (
            "TreasureHunt/Hunts/Test.json",
            json!({"Seed": 7, "Vaults": [
                {"Id": "Chest", "At": {"X": VAULT.0, "Y": VAULT.1}, "LootTable": "Coins", "DigEffort": 3},
                {"Id": "Far_Away", "At": {"X": 60, "Y": 4}, "LootTable": "Coins"}
            ]}),
        ),
    ];
    for (path, value) in files {
        server.write(&format!("{MOD_DIR}/assets/Server/{path}"), &value.to_string());
    }
    server.write(&format!("{MOD_DIR}/config.json"), &json!({"Hunt": "Test", "HotReload": false}).to_string());
    server.write("universe/worlds/test/map.txt", &map());
    let config = json!({"Auth": auth, "World": {"Map": "test", "SpawnX": SPAWN.0, "SpawnY": SPAWN.1,
        "SpawnRadius": 0, "MaxSpeed": 20, "InterestRadius": 12}});
    server.write("config.json", &config.to_string());
    server
}

/// Chromium (or None: SKIPPED) and a server on a port of its own, with `auth`.
fn browser_and_server(auth: &str) -> Option<(Browser, u16, TestServer, LiveServer)> {
    let browser = Browser::launch()?;
    let port = free_port();
    let server = server(port, auth);
    let live = start(&server);
    Some((browser, port, server, live))
}

fn start(server: &TestServer) -> LiveServer {
    let live = server.start(&[]);
    live.wait_for_log(0, "hunt Test running with 2 vaults");
    live
}

/// Walks a Rust client to (x, y) along a straight line of ground, in steps its speed allows.
async fn walk(client: &mut Client, to: (f32, f32)) {
    let mut at = SPAWN;
    while (at.0 - to.0).abs() > 0.01 || (at.1 - to.1).abs() > 0.01 {
        let step = |from: f32, to: f32| from + (to - from).clamp(-1.5, 1.5);
        at = (step(at.0, to.0), step(at.1, to.1));
        client.move_to(at.0, at.1).await.expect("a move");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The colour of the canvas at a map position (tiles), as [r, g, b].
fn pixel_at(browser: &mut Browser, x: &str, y: &str) -> Vec<u64> {
    serde_json::from_value(browser.eval(&pixel_js(x, y))).expect("a pixel")
}

/// A JavaScript expression for the [r, g, b] of the canvas at a map position.
fn pixel_js(x: &str, y: &str) -> String {
    format!(
        "(() => {{ const r = veltrix.renderer; const p = r.toScreen({x}, {y}); const d = devicePixelRatio; \
         const px = r.context.getImageData(Math.round(p.x * d), Math.round(p.y * d), 1, 1).data; \
         return [px[0], px[1], px[2]]; }})()"
    )
}

/// Where a map position is on the page, in CSS pixels.
fn on_page(browser: &mut Browser, x: f32, y: f32) -> (f64, f64) {
    let expr = format!(
        "(() => {{ const b = document.getElementById('map').getBoundingClientRect(); \
         const p = veltrix.renderer.toScreen({x}, {y}); return [b.left + p.x, b.top + p.y]; }})()"
    );
    let at: (f64, f64) = serde_json::from_value(browser.eval(&expr)).expect("a point");
    at
}

fn close_to(colour: &[u64], expected: [u64; 3]) -> bool {
    colour.iter().zip(expected).all(|(&c, e)| c.abs_diff(e) <= 12)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_walks_to_a_vault_digs_it_sees_others_near_and_survives_a_restart() {
    let Some((mut browser, port, server, live)) = browser_and_server("Offline") else { return };

    // A player far away (24 tiles east, beyond the 12 of interest) before ana comes.
    let mut far = Client::connect(&live.addr, hello("far")).await.expect("far joins").0;
    walk(&mut far, (44.5, 24.5)).await;

    browser.open(&format!("http://127.0.0.1:{port}/?name=ana&play"));
    browser.wait("veltrix.state.phase === 'online' && veltrix.state.terrain?.chunks.size > 0", WAIT, EXPLAIN);
    let chunks = browser.eval("veltrix.state.terrain.chunks.size");
    // 12 tiles of interest and a chunk (16) more each way from (20.5, 24.5): x up to 48.5, so
    // chunks 0 to 3 across; y from 0 to the world's bottom (48), so chunks 0 to 2 down.
    assert_eq!(chunks, json!(12), "the chunks in view, each once");

    // The canvas shows the world: ground, the wall of rock, the player's sprite where it stands.
    browser.wait("veltrix.renderer.frames > 5", WAIT, EXPLAIN);
    let rock = pixel_at(&mut browser, "10.5", "20.5");
    assert!(close_to(&rock, [88, 84, 92]), "rock at (10, 20): {rock:?}");
    let ground = pixel_at(&mut browser, "15.5", "30.5");
    assert!(close_to(&ground, [122, 158, 96]) || close_to(&ground, [116, 152, 90]), "ground at (15, 30): {ground:?}");
    let me = pixel_at(&mut browser, "veltrix.renderer.drawn.x", "veltrix.renderer.drawn.y");
    assert!(close_to(&me, [255, 159, 28]), "the player's sprite is where the state says: {me:?}");

    // Walking by keyboard: east for a moment.
    let before = browser.eval("veltrix.state.me.x").as_f64().unwrap();
    browser.key("d", Duration::from_millis(150));
    browser.wait(&format!("veltrix.state.me.x > {before} + 0.5"), WAIT, EXPLAIN);

    // Digging bare ground is refused in words.
    browser.key("Space", Duration::from_millis(30));
    browser.wait("veltrix.state.toasts.some(t => t.text.startsWith('nothing here'))", WAIT, EXPLAIN);

    // Walking by clicking the tile beside the vault, then digging the vault by right-click.
    let (x, y) = on_page(&mut browser, VAULT.0 as f32 - 0.5, VAULT.1 as f32 + 0.5);
    browser.mouse(x, y, "left");
    browser.wait(
        &format!(
            "Math.hypot(veltrix.state.me.x - {}, veltrix.state.me.y - {}) < 1.5",
            VAULT.0 as f32 - 0.5,
            VAULT.1 as f32 + 0.5
        ),
        WAIT,
        EXPLAIN,
    );
    for effort in 1..=3 {
        let (x, y) = on_page(&mut browser, VAULT.0 as f32 + 0.5, VAULT.1 as f32 + 0.5);
        browser.mouse(x, y, "right");
        let done = if effort < 3 {
            format!("veltrix.state.dig?.effort === {effort}")
        } else {
            "veltrix.state.slots.some(s => s && s.Item === 'Coin' && s.Quantity === 5)".to_string()
        };
        browser.wait(&done, WAIT, EXPLAIN);
    }
    browser.wait("document.getElementById('inventory').textContent.includes('Coin × 5')", WAIT, EXPLAIN);
    // The claim put ana on the board, and the page asked for her place on it.
    browser.wait(
        "veltrix.state.rank?.Rank === 1 && document.getElementById('rank').textContent.includes('1 of 1')",
        WAIT,
        EXPLAIN,
    );
    browser.wait("veltrix.state.sparkles.length > 0 || veltrix.state.openedTiles.has('Chest')", WAIT, EXPLAIN);

    // bob, a Rust client, comes near: he appears on the canvas where the state says.
    let mut bob = Client::connect(&live.addr, hello("bob")).await.expect("bob joins").0;
    walk(&mut bob, (24.5, 27.5)).await;
    browser.wait(
        "[...veltrix.state.others.values()].some(o => o.name === 'bob' && Math.abs(o.x - 24.5) < 0.01)",
        WAIT,
        EXPLAIN,
    );
    let bob_js = "[...veltrix.state.others.values()].find(o => o.name === 'bob')";
    browser.wait(
        &format!("{}.every(c => c > 220)", pixel_js(&format!("{bob_js}.x"), &format!("{bob_js}.y"))),
        WAIT,
        EXPLAIN,
    );
    // far never: not now, not before.
    assert_eq!(browser.eval("veltrix.state.everSeen.has('far')"), json!(false), "a far player never appears");
    browser.screenshot("play");
    let problems = browser.problems();
    assert!(problems.is_empty(), "the page reported errors: {problems:?}");

    // A restart: the page says it lost the server, comes back by itself, catches up, and
    // still holds the loot.
    drop(bob);
    let (status, log) = live.stop();
    assert!(status.success(), "{log}");
    browser.wait("veltrix.state.phase === 'reconnecting'", WAIT, EXPLAIN);
    let live = start(&server);
    browser.wait(
        "veltrix.state.phase === 'online' && veltrix.state.toasts.some(t => t.text.includes('caught up'))",
        WAIT,
        EXPLAIN,
    );
    browser.wait("veltrix.state.slots.some(s => s && s.Item === 'Coin' && s.Quantity === 5)", WAIT, EXPLAIN);
    assert_eq!(
        browser.eval("veltrix.state.lastSeq").as_u64().map(|s| s >= 1),
        Some(true),
        "the claim's event was seen"
    );

    // A phone-sized screen: the page fits its width.
    browser.viewport(390, 844);
    browser.wait("document.documentElement.scrollWidth <= 390", WAIT, "document.documentElement.scrollWidth");
    browser.screenshot("phone");
    // While the server was down, the browser logged its refused connections; nothing else.
    let problems: Vec<String> =
        browser.problems().into_iter().filter(|p| !p.contains("net::ERR_CONNECTION_REFUSED")).collect();
    assert!(problems.is_empty(), "the page reported errors: {problems:?}");
    drop(far);
    drop(live);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_is_refused_in_words_on_the_login_form() {
    let Some((mut browser, port, _server, _live)) = browser_and_server("Token") else { return };
    browser.open(&format!("http://127.0.0.1:{port}/?name=ana&token=ana.1.bad&play"));
    let problem = "document.getElementById('login-problem').textContent";
    browser.wait(&format!("veltrix.state.phase === 'refused' && {problem}.includes('token')"), WAIT, problem);
    let shown = browser.eval(problem).as_str().unwrap_or_default().to_string();
    assert!(shown.starts_with("The server did not accept this name or token."), "{shown}");
    assert_eq!(browser.eval("document.getElementById('login').hidden"), json!(false), "the form is back");
    browser.screenshot("bad-token");
}

/// The page's MessagePack library is the npm package's browser build, byte for byte.
#[test]
fn the_vendored_messagepack_library_is_the_npm_packages() {
    let web = xtask::workspace_root().join("web");
    let npm = web.join("node_modules/@msgpack/msgpack/dist.umd/msgpack.min.js");
    if !npm.exists() {
        assert!(std::env::var_os("VELTRIX_REQUIRE_BROWSER").is_none(), "web/node_modules is missing");
        eprintln!("SKIPPED: web/node_modules is missing: run `npm ci --prefix web`");
        return;
    }
    let vendored = std::fs::read(web.join("vendor/msgpack.min.js")).expect("the vendored copy");
    assert!(vendored == std::fs::read(&npm).unwrap(), "web/vendor/msgpack.min.js differs from {}", npm.display());
}
