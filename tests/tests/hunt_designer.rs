//! What designers run before players see a hunt: `veltrix-server odds` on a small pack, on a
//! broken one and with bad arguments.

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
