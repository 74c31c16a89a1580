//! What designers run before players see a hunt: `veltrix-server odds`, `preview` and
//! `simulate` on a small pack, on a broken one and with bad arguments.

use std::{fs, path::PathBuf, process::Output};

use veltrix_tests::TestServer;

/// A server root with the shipped mod.
fn server() -> TestServer {
    TestServer::new().with_treasure_hunt("Veltrix_TreasureHunt")
}

/// A pack with one loot table whose odds are known by hand: weights 3 and 1, coins 2 to 4, a
/// rare gem with pity from the 3rd dry claim.
fn small_pack(server: &TestServer) -> PathBuf {
    let pack = server.root().join("small-pack");
    let write = |file: &str, text: &str| {
        let path = pack.join("Server").join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    };
    write("Item/Items/Coin.json", r#"{"Rarity": "Common"}"#);
    write("Item/Items/Gem.json", r#"{"Rarity": "Rare"}"#);
    write(
        "Drops/Quarter.json",
        r#"{"Container": {"Type": "Choice", "Containers": [
            {"Type": "Single", "Weight": 3, "Item": {"ItemId": "Coin", "QuantityMin": 2, "QuantityMax": 4}},
            {"Type": "Single", "Weight": 1, "Item": {"ItemId": "Gem"}}]},
         "Pity": {"After": 2, "Step": 1}}"#,
    );
    pack
}

fn run(server: &TestServer, args: &[&str]) -> Output {
    server.command().args(args).output().expect("the server runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn odds_prints_each_items_chance_and_pity() {
    let server = server();
    let pack = small_pack(&server);
    let out = run(&server, &["odds", pack.to_str().unwrap(), "Quarter"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    let line = |start: &str| text.lines().find(|l| l.starts_with(start)).unwrap_or_else(|| panic!("{start}:\n{text}"));
    let words = |start: &str| line(start).split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    // Item, rarity, chance, mean; then the long run with pity.
    assert_eq!(words("Coin")[..6], ["Coin", "Common", "75.00", "%", "2.250", "65.88"]);
    assert_eq!(words("Gem")[..6], ["Gem", "Rare", "25.00", "%", "0.250", "34.12"]);
    // Two dry claims: pity 2 doubles the gem's weight, 2 against 3.
    assert!(words("         2").starts_with(&["2".into(), "2.00".into(), "40.00".into()]), "{text}");
    assert!(text.contains("a rare item every 2.93 claims on average (34.12 % of claims)"), "{text}");

    // The shipped pack by default, as JSON; --luck and --pity are the claim's inputs.
    let out = run(&server, &["odds", "Buried_Cache", "--json", "--luck", "0.5", "--pity", "8"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON alone on standard output");
    assert_eq!(json["table"], "Buried_Cache");
    // Luck 0.5 and pity 1.5 (After 8, Step 0.5, 8 dry claims): boost 2.25.
    assert_eq!(json["boost"], 2.25);
    let ruby = json["items"].as_array().unwrap().iter().find(|i| i["item"] == "Ruby").unwrap();
    // The Choice holding the ruby: 60 % x 2.25, capped at 100 %; the ruby: 5 x 2.25 against 95.
    let expected = 5.0 * 2.25 / (95.0 + 5.0 * 2.25);
    assert!((ruby["chance"].as_f64().unwrap() - expected).abs() < 1e-12, "{ruby}");
    assert_eq!(ruby["rare"], true);
}

#[test]
fn odds_of_an_unknown_table_names_the_tables_there_are() {
    let server = server();
    let pack = small_pack(&server);
    let out = run(&server, &["odds", pack.to_str().unwrap(), "Quartr"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("error: unknown loot table `Quartr` (did you mean `Quarter`?): the pack has Quarter"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "");
}

#[test]
fn odds_with_bad_arguments_exits_2() {
    let server = server();
    for args in [
        &["odds"][..],
        &["odds", "a", "b", "c"],
        &["odds", "Buried_Cache", "--pity", "-1"],
        &["odds", "T", "--luck", "x"],
    ] {
        let out = run(&server, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

/// A broken pack is reported line for line as validate reports it, with exit 1.
#[test]
fn odds_on_a_broken_pack_reports_it_as_validate_does() {
    let server = server();
    let pack = small_pack(&server);
    fs::write(
        pack.join("Server/Drops/Quarter.json"),
        r#"{"Container": {"Type": "Single", "Item": {"ItemId": "Coins"}}}"#,
    )
    .unwrap();
    let odds = run(&server, &["odds", pack.to_str().unwrap(), "Quarter"]);
    let validate = run(&server, &["validate", pack.to_str().unwrap()]);
    assert_eq!(odds.status.code(), Some(1));
    assert_eq!(validate.status.code(), Some(1));
    assert!(stdout(&odds).contains("Quarter.json:1:"), "{}", stdout(&odds));
    assert!(stdout(&odds).ends_with("Veltrix:TreasureHunt: 1 error(s)\n"), "{}", stdout(&odds));
    assert_eq!(stdout(&odds), stdout(&validate));
}

/// A 48 x 32 world with a pond and a wall, and a pack with a hunt on it: two fixed vaults, a
/// group of three, an Area clue and an Enter circle.
fn preview_server() -> (TestServer, PathBuf) {
    let server = server();
    let mut map = String::new();
    for y in 0..32 {
        for x in 0..48 {
            map.push(match (x, y) {
                (30..=37, 20..=26) => '~',
                (12, 4..=24) => '#',
                _ => '.',
            });
        }
        map.push('\n');
    }
    server.write("universe/worlds/Tiny/map.txt", &map);
    server.write("config.json", r#"{"World": {"Map": "Tiny", "SpawnX": 24.5, "SpawnY": 16.5}}"#);
    let pack = small_pack(&server);
    let hunt = r#"{"Seed": 5, "Vaults": [
        {"Id": "North_Cairn", "At": {"X": 5, "Y": 5}, "LootTable": "Quarter", "Claim": "FirstFinder", "SparkleRadius": 4},
        {"Id": "Pond_Chest", "At": {"X": 40, "Y": 18}, "LootTable": "Quarter", "Claim": "PerPlayer", "SparkleRadius": 3},
        {"Id": "Dune", "Count": 3, "Region": {"MinX": 16, "MinY": 2, "MaxX": 28, "MaxY": 12}, "MinSpacing": 4,
         "LootTable": "Quarter", "Claim": "Team", "SparkleRadius": 2}],
      "Clues": [
        {"Id": "Cairn_Area", "Vault": "North_Cairn", "Kind": {"Area": {"Radius": 6, "ShrinkTo": 3, "ShrinkSeconds": 60}}},
        {"Id": "Pond_Hint", "Vault": "Pond_Chest", "Trigger": {"Enter": {"X": 40, "Y": 10, "Radius": 5}}, "Kind": "HotCold"}]}"#;
    let path = pack.join("Server/TreasureHunt/Hunts/Mini.json");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, hunt).unwrap();
    (server, pack)
}

/// The pixels of a PNG: width, height and RGB bytes.
fn decode(path: &std::path::Path) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((frame.color_type, frame.bit_depth), (png::ColorType::Rgb, png::BitDepth::Eight));
    pixels.truncate(frame.buffer_size());
    (frame.width, frame.height, pixels)
}

/// The preview of the small hunt, pixel for pixel as `tests/tests/previews/mini.png`
/// (`VELTRIX_UPDATE_PREVIEW=1` writes it anew: look at it before committing it).
#[test]
fn preview_draws_the_hunt_as_the_reference_picture() {
    let (server, pack) = preview_server();
    let out = server.root().join("mini.png");
    let run = run(&server, &["preview", pack.to_str().unwrap(), "--hunt", "Mini", "--out", out.to_str().unwrap()]);
    assert!(run.status.success(), "{}{}", stdout(&run), stderr(&run));
    assert!(
        stdout(&run).ends_with("mini.png: hunt Mini with 5 vault(s) on the 48 x 32 world, 1456 x 736 pixels\n"),
        "{}",
        stdout(&run)
    );
    let reference = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/previews/mini.png");
    if std::env::var_os("VELTRIX_UPDATE_PREVIEW").is_some() {
        fs::copy(&out, &reference).unwrap();
    }
    let (width, height, pixels) = decode(&out);
    let (ref_width, ref_height, ref_pixels) = decode(&reference);
    assert_eq!((width, height), (ref_width, ref_height), "the size differs from {}", reference.display());
    let differ = pixels.chunks(3).zip(ref_pixels.chunks(3)).position(|(a, b)| a != b);
    assert_eq!(differ.map(|i| (i as u32 % width, i as u32 / width)), None, "the first pixel that differs (x, y)");

    // Each fixed vault's marker is centred on its tile's pixel, in its claim rule's colour,
    // at 1024 / 48 = 21 pixels a tile: the tile (5, 5) is centred at 16 + 5.5 x 21.
    let layout = treasure_hunt::preview::Layout::of(&veltrix_sdk::TileWorld::flat(48, 32));
    let at = |x: u32, y: u32| {
        let i = (y * width + x) as usize * 3;
        [pixels[i], pixels[i + 1], pixels[i + 2]]
    };
    let cairn = layout.tile_pixel(treasure_hunt_ecs::assets::TilePos { x: 5, y: 5 });
    assert_eq!(cairn, (16 + 115, 16 + 115));
    assert_eq!(at(cairn.0, cairn.1), [220, 40, 40], "FirstFinder red");
    let chest = layout.tile_pixel(treasure_hunt_ecs::assets::TilePos { x: 40, y: 18 });
    assert_eq!(at(chest.0, chest.1), [40, 90, 230], "PerPlayer blue");
}

#[test]
fn preview_with_a_distance_field_and_its_errors() {
    let (server, pack) = preview_server();
    let pack = pack.to_str().unwrap();
    let out = server.root().join("far.png");
    let out = out.to_str().unwrap();
    let ok = run(&server, &["preview", pack, "--hunt", "Mini", "--out", out, "--distance", "Pond_Chest"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let (width, _, pixels) = decode(std::path::Path::new(out));
    // Beside the chest the ground is the ramp's near end, not plain ground.
    let layout = treasure_hunt::preview::Layout::of(&veltrix_sdk::TileWorld::flat(48, 32));
    let (x, y) = layout.tile_pixel(treasure_hunt_ecs::assets::TilePos { x: 42, y: 18 });
    let i = (y * width + x) as usize * 3;
    assert_ne!(pixels[i..i + 3], [196, 214, 160], "the distance ramp colours the ground");

    // As SVG: the same picture, its text as text and the vaults as shapes on their tiles.
    let svg = server.root().join("mini.svg");
    let ok = run(&server, &["preview", pack, "--hunt", "Mini", "--out", svg.to_str().unwrap()]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(stdout(&ok).ends_with("mini.svg: hunt Mini with 5 vault(s) on the 48 x 32 world, 1456 x 736 pixels\n"));
    let svg = fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg height=\"736\" viewBox=\"0 0 1456 736\" width=\"1456\""), "{}", &svg[..200]);
    assert!(svg.contains("href=\"data:image/png;base64,"), "the tiles");
    assert!(svg.contains(">\n1 North_Cairn (5, 5) FirstFinder\n</text>"), "the legend");
    // North_Cairn's 9 x 9 square, centred on the tile (5, 5)'s pixel (131, 131).
    assert!(svg.contains(r##"<rect fill="#dc2828" height="9" width="9" x="127" y="127"/>"##), "the marker");

    let unknown_hunt = run(&server, &["preview", pack, "--hunt", "Mnii", "--out", out]);
    assert_eq!(unknown_hunt.status.code(), Some(2));
    assert!(stderr(&unknown_hunt).contains("error: unknown hunt `Mnii`"), "{}", stderr(&unknown_hunt));
    assert!(stderr(&unknown_hunt).contains("the pack has Mini"), "{}", stderr(&unknown_hunt));
    let unknown_vault = run(&server, &["preview", pack, "--hunt", "Mini", "--out", out, "--distance", "Pond"]);
    assert_eq!(unknown_vault.status.code(), Some(2));
    assert!(
        stderr(&unknown_vault).contains("the pack has North_Cairn, Pond_Chest, Dune_1, Dune_2, Dune_3"),
        "{}",
        stderr(&unknown_vault)
    );
    for args in [
        &["preview", "--hunt", "Mini", "--out", "a.jpg"][..],
        &["preview", "--out", "a.png"],
        &["preview", "--hunt", "Mini"],
    ] {
        assert_eq!(run(&server, args).status.code(), Some(2), "{args:?}");
    }
    let unwritable = run(&server, &["preview", pack, "--hunt", "Mini", "--out", "/nonexistent/folder/a.png"]);
    assert_eq!(unwritable.status.code(), Some(1));
    assert!(
        stderr(&unwritable).contains("/nonexistent/folder/a.png: cannot write the preview"),
        "{}",
        stderr(&unwritable)
    );
}

#[test]
fn preview_of_a_broken_pack_reports_it_as_validate_does() {
    let (server, pack) = preview_server();
    let hunt = pack.join("Server/TreasureHunt/Hunts/Mini.json");
    fs::write(&hunt, fs::read_to_string(&hunt).unwrap().replace("\"X\": 40", "\"X\": 400")).unwrap();
    let pack = pack.to_str().unwrap();
    let out = server.root().join("broken.png");
    let preview = run(&server, &["preview", pack, "--hunt", "Mini", "--out", out.to_str().unwrap()]);
    let validate = run(&server, &["validate", pack]);
    assert_eq!(preview.status.code(), Some(1));
    assert!(stdout(&preview).contains("outside the world"), "{}", stdout(&preview));
    assert_eq!(stdout(&preview), stdout(&validate));
    assert!(!out.exists(), "nothing is written for a broken pack");
}

/// The preview's world and pack with a hunt to play for five minutes: a FirstFinder cairn with
/// an Area clue, a far one whose Compass clue comes when the first is claimed, the PerPlayer
/// chest with its HotCold circle and the three Team dunes.
fn simulate_server() -> (TestServer, PathBuf) {
    let (server, pack) = preview_server();
    let hunt = r#"{"Seed": 5, "DurationSeconds": 300, "Vaults": [
        {"Id": "North_Cairn", "At": {"X": 5, "Y": 5}, "LootTable": "Quarter", "DigEffort": 20, "SparkleRadius": 4},
        {"Id": "Far_Cairn", "At": {"X": 46, "Y": 30}, "LootTable": "Quarter", "DigEffort": 20, "SparkleRadius": 4},
        {"Id": "Pond_Chest", "At": {"X": 40, "Y": 18}, "LootTable": "Quarter", "Claim": "PerPlayer", "SparkleRadius": 6},
        {"Id": "Dune", "Count": 3, "Region": {"MinX": 16, "MinY": 2, "MaxX": 28, "MaxY": 12}, "MinSpacing": 4,
         "LootTable": "Quarter", "Claim": "Team", "DigEffort": 5, "SparkleRadius": 6}],
      "Clues": [
        {"Id": "Cairn_Area", "Vault": "North_Cairn", "Trigger": {"AfterSeconds": 60},
         "Kind": {"Area": {"Radius": 6, "ShrinkTo": 3, "ShrinkSeconds": 60}}},
        {"Id": "Far_Compass", "Vault": "Far_Cairn", "Trigger": {"VaultClaimed": "North_Cairn"}, "Kind": "Compass"},
        {"Id": "Pond_Hint", "Vault": "Pond_Chest", "Trigger": {"Enter": {"X": 40, "Y": 10, "Radius": 5}}, "Kind": "HotCold"}]}"#;
    fs::write(pack.join("Server/TreasureHunt/Hunts/Trek.json"), hunt).unwrap();
    (server, pack)
}

/// `simulate` on the small hunt: six players of every behaviour in two teams.
fn simulate(server: &TestServer, pack: &std::path::Path, extra: &[&str]) -> Output {
    let pack = pack.to_str().unwrap();
    let mut args = vec!["simulate", pack, "--hunt", "Trek", "--players", "6", "--seed", "3", "--teams", "2"];
    args.extend_from_slice(extra);
    run(server, &args)
}

/// The report of a simulation is exact: the same pack, seed and options give the same report,
/// byte for byte, pinned as a snapshot; `--json` says the same for tools; `--chart` draws it.
#[test]
fn simulate_reports_the_small_hunt_exactly() {
    let (server, pack) = simulate_server();
    let out = simulate(&server, &pack, &[]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    insta::assert_snapshot!(text);
    // Nothing on standard output but the report; the progress bar only on a terminal.
    assert!(!stderr(&out).contains('\r'), "{}", stderr(&out));
    assert_eq!(stdout(&simulate(&server, &pack, &[])), text, "the same options give the same report");
    let other = stdout(&simulate(&server, &pack, &["--seed", "4"]));
    assert_ne!(other, text, "another seed plays another game");

    let chart = server.root().join("mini.svg");
    let out = simulate(&server, &pack, &["--json", "--chart", chart.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON alone on standard output");
    assert_eq!(json["hunt"], "Trek");
    assert_eq!(json["players"], 6);
    assert_eq!(json["behaviours"], serde_json::json!({"wander": 3, "hints": 2, "clues": 1}));
    let vaults = json["vaults"].as_array().unwrap();
    assert_eq!(vaults.len(), 6);
    // The table and the JSON tell the same claims.
    for vault in vaults {
        let id = vault["vault"].as_str().unwrap();
        let row = text.lines().find(|l| l.starts_with(id)).unwrap_or_else(|| panic!("{id}:\n{text}"));
        assert_eq!(row.split_whitespace().last().unwrap(), vault["claims"].to_string(), "{row}");
    }
    let discoveries = json["discoveries"].as_array().unwrap();
    let claims: u64 = vaults.iter().map(|v| v["claims"].as_u64().unwrap()).sum();
    assert_eq!(discoveries.len() as u64, claims);
    let svg = fs::read_to_string(&chart).unwrap();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""), "{}", &svg[..100]);
    assert!(svg.contains("vaults found") && svg.contains("<polyline"), "{svg}");
}

#[test]
fn simulate_with_bad_arguments_exits_2() {
    let (server, pack) = simulate_server();
    let pack = pack.to_str().unwrap();
    let unknown = run(&server, &["simulate", pack, "--hunt", "Trk"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("error: unknown hunt `Trk` (did you mean `Trek`?): the pack has Mini, Trek"),
        "{}",
        stderr(&unknown)
    );
    assert_eq!(stdout(&unknown), "");
    for args in [
        &["simulate", pack][..],
        &["simulate", pack, "--hunt", "Trek", "--players", "0"],
        &["simulate", pack, "--hunt", "Trek", "--duration", "10"],
        &["simulate", pack, "--hunt", "Trek", "--duration", "0s"],
        &["simulate", pack, "--hunt", "Trek", "--behaviour", "lazy"],
        &["simulate", pack, "--hunt", "Trek", "--teams", "0"],
        &["simulate", pack, "--hunt", "Trek", "--chart", "c.png"],
        &["simulate", pack, "--hunt", "Trek", "--seed", "-1"],
    ] {
        let out = run(&server, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    let duration = run(&server, &["simulate", pack, "--hunt", "Trek", "--duration", "2x"]);
    assert!(stderr(&duration).contains("expected a duration like 90s, 30m, 2h or 1h30m"), "{}", stderr(&duration));
    let unwritable = simulate(&server, std::path::Path::new(pack), &["--chart", "/nonexistent/folder/c.svg"]);
    assert_eq!(unwritable.status.code(), Some(1));
    assert!(
        stderr(&unwritable).contains("/nonexistent/folder/c.svg: cannot write the chart"),
        "{}",
        stderr(&unwritable)
    );
}

#[test]
fn simulate_on_a_broken_pack_reports_it_as_validate_does() {
    let (server, pack) = simulate_server();
    let hunt = pack.join("Server/TreasureHunt/Hunts/Mini.json");
    fs::write(
        &hunt,
        fs::read_to_string(&hunt)
            .unwrap()
            .replace("\"Quarter\", \"Claim\": \"PerPlayer\"", "\"Quartr\", \"Claim\": \"PerPlayer\""),
    )
    .unwrap();
    let pack = pack.to_str().unwrap();
    let simulated = run(&server, &["simulate", pack, "--hunt", "Trek"]);
    let validate = run(&server, &["validate", pack]);
    assert_eq!(simulated.status.code(), Some(1));
    assert!(stdout(&simulated).contains("unknown loot table \"Quartr\""), "{}", stdout(&simulated));
    assert_eq!(stdout(&simulated), stdout(&validate));
}
