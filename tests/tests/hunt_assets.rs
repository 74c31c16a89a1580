//! The hunt's asset pack as designers meet it: `veltrix-server validate` on the shipped pack
//! and on a broken one, and hot reload on a running server.

use std::{fs, path::Path};

use veltrix_tests::TestServer;

const MOD_DIR: &str = "mods/Veltrix_TreasureHunt";

/// A server root with the shipped mod (and its pack).
fn server() -> TestServer {
    TestServer::new().with_treasure_hunt("Veltrix_TreasureHunt")
}

fn validate(server: &TestServer, args: &[&str]) -> (bool, String) {
    let output = server.command().arg("validate").args(args).output().expect("the server runs");
    (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn the_shipped_pack_is_valid_in_the_default_world() {
    let server = server();
    let (ok, out) = validate(&server, &[]);
    assert!(ok, "{out}");
    assert_eq!(
        out.trim(),
        "Veltrix:TreasureHunt: ok: 14 item(s), 6 loot table(s), 3 effect(s), 1 hunt(s) with 38 vault(s)"
    );
}

/// A copy of the shipped pack with designer mistakes in four files.
fn broken_pack(server: &TestServer) -> std::path::PathBuf {
    let pack = server.root().join("broken-pack");
    xtask::copy_tree(&server.root().join(MOD_DIR).join("assets"), &pack).unwrap();
    let server_dir = pack.join("Server");
    let edit = |file: &str, from: &str, to: &str| {
        let path = server_dir.join(file);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} holds {from:?}");
        fs::write(&path, text.replacen(from, to, 1)).unwrap();
    };
    edit("Item/Items/Pearl.json", "\"MaxStack\"", "\"MaxStak\"");
    edit("Drops/Buried_Cache.json", "\"Gold_Coin\"", "\"Gold_Coins\"");
    edit("Drops/Guild_Hoard.json", "\"QuantityMin\": 60", "\"QuantityMin\": 600");
    edit("Item/Items/Sapphire.json", "\"Parent\": \"Ruby\"", "\"Parent\": \"Emerald\"");
    edit("Item/Items/Emerald.json", "\"Parent\": \"Ruby\"", "\"Parent\": \"Sapphire\"");
    edit("TreasureHunt/Hunts/Sunken_Isles.json", "\"X\": 287", "\"X\": 2870");
    pack
}

/// Every error of every file at once, each with its file, line, column and JSON path; exit 1.
#[test]
fn validate_prints_every_error_with_its_place_and_fails() {
    let server = server();
    let pack = broken_pack(&server);
    let (ok, out) = validate(&server, &[pack.to_str().unwrap()]);
    assert!(!ok, "validate must fail:\n{out}");
    let out = out.replace(&format!("{}/", pack.display()), "<pack>/");
    insta::assert_snapshot!(out);
}

/// Every path under `dir`, sorted.
fn tree(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            paths.extend(tree(&path));
        }
        paths.push(path);
    }
    paths.sort();
    paths
}

/// Run from a designer's folder (no `--root`), validate checks the mods kept beside the server
/// program, fails on a broken pack, and leaves both folders as they were.
#[test]
fn validate_from_any_folder_checks_the_servers_mods_and_writes_nothing() {
    let server = server();
    let pack = broken_pack(&server);
    let elsewhere = tempfile::tempdir().unwrap();
    let server_dir = &veltrix_tests::artifacts().server_dir;
    let before = tree(server_dir);
    let run = |pack: &Path| {
        let output = std::process::Command::new(server_dir.join("veltrix-server"))
            .arg("validate")
            .arg(pack)
            .current_dir(elsewhere.path())
            .env_remove("VELTRIX_ROOT")
            .env_remove("LD_LIBRARY_PATH")
            .env_remove("RUST_LOG")
            .output()
            .expect("the server runs");
        (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned())
    };
    let (ok, out) = run(&pack);
    assert!(!ok, "a broken pack must fail:\n{out}");
    assert!(out.ends_with("Veltrix:TreasureHunt: 6 error(s)\n"), "{out}");
    let (ok, out) = run(&server_dir.join(MOD_DIR).join("assets"));
    assert!(ok, "{out}");
    assert!(out.starts_with("Veltrix:TreasureHunt: ok: "), "{out}");
    assert!(tree(elsewhere.path()).is_empty(), "validate wrote {:?}", tree(elsewhere.path()));
    assert_eq!(tree(server_dir), before, "validate wrote into the server folder");
}

/// A root without mods has nothing to check: that is a failure, not a pass, and nothing is
/// written there.
#[test]
fn validate_with_no_mod_to_check_fails() {
    let server = TestServer::new();
    let (ok, out) = validate(&server, &[]);
    assert!(!ok, "{out}");
    assert_eq!(
        out.trim(),
        format!(
            "error: no mods to validate in {}: run validate in a server root or from the server's own folder, \
             or name the root with --root DIR",
            server.root().join("mods").display()
        )
    );
    assert_eq!(tree(server.root()), [server.root().join("mods")]);
}

/// A valid change applies between ticks with a line naming it; an invalid one is logged and
/// changes nothing: the server keeps running the hunt it had.
#[test]
fn hot_reload_applies_valid_changes_and_keeps_the_pack_in_force_on_errors() {
    let server = server();
    let live = server.start(&[]);
    let drops = server.root().join(MOD_DIR).join("assets/Server/Drops");
    let cache = drops.join("Buried_Cache.json");
    let text = fs::read_to_string(&cache).unwrap();

    let from = live.log().len();
    fs::write(&cache, text.replace("\"QuantityMin\": 5", "\"QuantityMin\": 6")).unwrap();
    let line = live.wait_for_log(from, "assets reloaded");
    assert!(line.ends_with("assets reloaded: Drops/Buried_Cache changed"), "{line}");

    let from = live.log().len();
    fs::write(&cache, "{\"Container\": {\"Type\": \"Singel\"}}").unwrap();
    let error = live.wait_for_log(from, "Buried_Cache.json");
    assert!(error.contains("Buried_Cache.json:1:"), "{error}");
    assert!(error.contains("Singel"), "{error}");
    live.wait_for_log(from, "asset reload refused (1 error(s)); the assets in force stay in force");

    let from = live.log().len();
    fs::write(drops.join("New_Table.json"), r#"{"Container": {"Type": "Single", "Item": {"ItemId": "Pearl"}}}"#)
        .unwrap();
    // The broken file is still broken: the pack as a whole stays refused.
    live.wait_for_log(from, "asset reload refused");
    fs::write(&cache, &text).unwrap();
    let line = live.wait_for_log(from, "assets reloaded");
    assert!(line.ends_with("assets reloaded: Drops/Buried_Cache changed, Drops/New_Table added"), "{line}");
    let (status, log) = live.stop();
    assert!(status.success(), "{log}");
    assert!(!log.contains("DISABLED"), "{log}");
}

#[test]
fn a_broken_pack_at_start_disables_the_mod_naming_each_error() {
    let server = server();
    let hunt = Path::new(MOD_DIR).join("assets/Server/TreasureHunt/Hunts/Sunken_Isles.json");
    let text = fs::read_to_string(server.root().join(&hunt)).unwrap();
    server.write(
        hunt.to_str().unwrap(),
        &text.replacen("\"LootTable\": \"Landmark_Jackpot\"", "\"LootTable\": \"Landmark\"", 1),
    );
    let run = server.run_ticks(3, &[]);
    let reason = run.disabled_reason("Veltrix:TreasureHunt").expect("the mod is disabled");
    assert!(reason.contains("the asset pack has 1 error(s)"), "{reason}");
    assert!(
        run.log.contains("Sunken_Isles.json:12:20: Vaults[0].LootTable: unknown loot table \"Landmark\" (did you mean"),
        "{}",
        run.log
    );
}
