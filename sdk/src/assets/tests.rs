//! The asset loader's tests. Above 600 lines on purpose: one short test per rule of the loader,
//! over the sample asset types at the top.

use serde::Deserialize;

use super::*;

/// A hunt, shaped like the real asset types: PascalCase, unknown keys refused, nested objects,
/// arrays, and an internally tagged enum like the drop tables' `Container`.
#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct Hunt {
    name: String,
    #[serde(default)]
    settings: Settings,
    #[serde(default)]
    vaults: Vec<Vault>,
    #[serde(default)]
    items: Vec<Stack>,
    #[serde(default)]
    container: Option<Container>,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    duration: u32,
    #[serde(default)]
    radius: u32,
    #[serde(default)]
    reveal: Reveal,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct Reveal {
    #[serde(default)]
    delay: u32,
    #[serde(default)]
    mode: String,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct Vault {
    id: String,
    loot_table: String,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct Stack {
    item_id: String,
    #[serde(default = "one")]
    count: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(tag = "Type", deny_unknown_fields)]
enum Container {
    #[serde(rename_all = "PascalCase")]
    Single {
        #[serde(default)]
        weight: f64,
        item: Stack,
    },
    #[serde(rename_all = "PascalCase")]
    Multiple { containers: Vec<Container> },
}

const KIND: &str = "TreasureHunt/Hunts";

/// A file's text from its lines, so that line numbers read off the test.
fn text(lines: &[&str]) -> String {
    lines.join("\n") + "\n"
}

fn load(files: &[(&str, String)]) -> LoadedKind<Hunt> {
    let sources: Vec<AssetSource> = files
        .iter()
        .map(|(id, text)| AssetSource::from_text(KIND, *id, format!("Hunts/{id}.json"), text.clone()))
        .collect();
    load_kind(&sources)
}

fn errors(loaded: &LoadedKind<Hunt>) -> Vec<String> {
    loaded.errors.iter().map(ToString::to_string).collect()
}

/// The errors of one file loaded alone.
fn errors_of(lines: &[&str]) -> Vec<String> {
    errors(&load(&[("A", text(lines))]))
}

fn stack(item_id: &str, count: u32) -> Stack {
    Stack { item_id: item_id.to_string(), count }
}

#[test]
fn a_valid_file_loads() {
    let loaded = load(&[(
        "A",
        text(&[
            "{",
            r#"  "$schema": "../../../Schemas/Hunt.json","#,
            r#"  "Name": "Sunken \u0052uins \/ \"\t\"","#,
            r#"  "Items": [{"ItemId": "Gold", "Count": 3}],"#,
            r#"  "Container": {"Type": "Multiple", "Containers": [{"Type": "Single", "Item": {"ItemId": "Gem"}}]}"#,
            "}",
        ]),
    )]);
    assert_eq!(errors(&loaded), Vec::<String>::new());
    let hunt = loaded.get("A").unwrap();
    assert_eq!(hunt.name, "Sunken Ruins / \"\t\"");
    assert_eq!(hunt.items, vec![stack("Gold", 3)]);
    assert_eq!(
        hunt.container,
        Some(Container::Multiple { containers: vec![Container::Single { weight: 0.0, item: stack("Gem", 1) }] })
    );
    assert_eq!(loaded.ids(), vec!["A"]);
    assert_eq!(loaded.path_of("A"), Some(Path::new("Hunts/A.json")));
    assert_eq!(loaded.kind(), KIND);
}

#[test]
fn syntax_errors_have_line_and_column() {
    assert_eq!(
        errors_of(&["{", r#"  "Name": "Trésor","#, r#"  "Items": [],"#, "}"]),
        ["Hunts/A.json:4:1: invalid JSON: trailing comma"]
    );
    // Columns count characters: "é" is two bytes, one column.
    assert_eq!(
        errors_of(&[r#"{"Name": "Trésor" "Items": []}"#]),
        ["Hunts/A.json:1:19: invalid JSON: expected `,` or `}`"]
    );
    assert_eq!(
        errors_of(&["{", "  // a comment", r#"  "Name": "x""#, "}"]),
        ["Hunts/A.json:2:3: invalid JSON: key must be a string"]
    );
    assert_eq!(errors_of(&[r#"{"Name": "x""#]), ["Hunts/A.json:2:1: invalid JSON: EOF while parsing an object"]);
}

#[test]
fn the_top_level_must_be_an_object() {
    assert_eq!(
        errors_of(&["", r#"  ["Name"]"#]),
        ["Hunts/A.json:2:3: expected an object at the top level, found an array"]
    );
}

#[test]
fn a_key_written_twice_is_an_error() {
    assert_eq!(
        errors_of(&["{", r#"  "Name": "x","#, r#"  "Settings": {"Radius": 1, "Radius": 2},"#, r#"  "Name": "y""#, "}"]),
        [r#"Hunts/A.json:3:29: Settings: duplicate key "Radius""#, r#"Hunts/A.json:4:3: duplicate key "Name""#,]
    );
}

#[test]
fn unknown_key_points_at_the_key_with_a_suggestion() {
    assert_eq!(
        errors_of(&[
            "{",
            r#"  "Name": "Hunt","#,
            r#"  "Items": ["#,
            r#"    {"ItemId": "Gold", "Count": 2},"#,
            r#"    {"ItemId": "Gem", "Cuont": 1}"#,
            "  ]",
            "}",
        ]),
        [r#"Hunts/A.json:5:23: Items[1]: unknown key "Cuont" (did you mean "Count"?)"#]
    );
    // No close match: the keys that are allowed.
    assert_eq!(
        errors_of(&["{", r#"  "Name": "Hunt","#, r#"  "Difficulty": 3"#, "}"]),
        [
            r#"Hunts/A.json:3:3: unknown key "Difficulty" (expected one of "Name", "Settings", "Vaults", "Items", "Container")"#
        ]
    );
}

/// serde reads an internally tagged enum from a buffer, and its path stops at the enum; the
/// error must still point at the key or value at fault, at any depth.
#[test]
fn errors_inside_a_tagged_enum_point_at_the_culprit() {
    fn hunt(containers: [&str; 2]) -> [&str; 10] {
        [
            "{",
            r#"  "Name": "Hunt","#,
            r#"  "Container": {"#,
            r#"    "Type": "Multiple","#,
            r#"    "Containers": ["#,
            containers[0],
            containers[1],
            "    ]",
            "  }",
            "}",
        ]
    }
    let single = r#"      {"Type": "Single", "Item": {"ItemId": "Gold"}},"#;
    assert_eq!(
        errors_of(&hunt([single, r#"      {"Type": "Single", "Wieght": 5, "Item": {"ItemId": "Gem"}}"#])),
        [r#"Hunts/A.json:7:26: Container.Containers[1]: unknown key "Wieght" (did you mean "Weight"?)"#]
    );
    // The same key is fine one level down: the culprit is the object that does not take it.
    assert_eq!(
        errors_of(&hunt([single, r#"      {"Type": "Single", "Item": {"ItemId": "Gem"}, "ItemId": "Gem"}"#])),
        [r#"Hunts/A.json:7:53: Container.Containers[1]: unknown key "ItemId" (did you mean "Item"?)"#]
    );
    // Two faults alike: the first one, as serde reads them.
    assert_eq!(
        errors_of(&hunt([
            r#"      {"Type": "Single", "Wieght": 5, "Item": {"ItemId": "Gold"}},"#,
            r#"      {"Type": "Single", "Wieght": 5, "Item": {"ItemId": "Gem"}}"#
        ])),
        [r#"Hunts/A.json:6:26: Container.Containers[0]: unknown key "Wieght" (did you mean "Weight"?)"#]
    );
    assert_eq!(
        errors_of(&hunt([single, r#"      {"Type": "Single", "Item": {"ItemId": "Gem", "Cont": 5}}"#])),
        [r#"Hunts/A.json:7:52: Container.Containers[1].Item: unknown key "Cont" (did you mean "Count"?)"#]
    );
    assert_eq!(
        errors_of(&hunt([r#"      {"Type": "Singel", "Item": {"ItemId": "Gold"}},"#, r#"      {"Type": "Single"}"#])),
        [r#"Hunts/A.json:6:16: Container.Containers[0].Type: unknown value "Singel" (did you mean "Single"?)"#]
    );
    assert_eq!(
        errors_of(&hunt([single, r#"      {"Type": "Single"}"#])),
        [r#"Hunts/A.json:7:7: Container.Containers[1]: missing key "Item""#]
    );
    assert_eq!(
        errors_of(&hunt([single, r#"      {"Item": {"ItemId": "Gem"}}"#])),
        [r#"Hunts/A.json:7:7: Container.Containers[1]: missing key "Type""#]
    );
    assert_eq!(
        errors_of(&hunt([single, r#"      {"Type": "Single", "Item": {"ItemId": "Gem", "Count": -1}}"#])),
        ["Hunts/A.json:7:61: Container.Containers[1].Item.Count: invalid value: integer `-1`, expected u32"]
    );
    // The enum's own object is a map too: the culprit is the map at Count, not the enum.
    assert_eq!(
        errors_of(&hunt([single, r#"      {"Type": "Single", "Item": {"ItemId": "Gem", "Count": {}}}"#])),
        ["Hunts/A.json:7:61: Container.Containers[1].Item.Count: invalid type: map, expected u32"]
    );
    assert_eq!(
        errors_of(&hunt([single, r#"      {"Type": "Single", "Item": {"Count": 2}}"#])),
        [r#"Hunts/A.json:7:34: Container.Containers[1].Item: missing key "ItemId""#]
    );
}

#[test]
fn unknown_value_of_a_tag() {
    assert_eq!(
        errors_of(&["{", r#"  "Name": "Hunt","#, r#"  "Container": {"Type": "Multipel", "Containers": []}"#, "}"]),
        [r#"Hunts/A.json:3:25: Container.Type: unknown value "Multipel" (did you mean "Multiple"?)"#]
    );
    assert_eq!(
        errors_of(&["{", r#"  "Name": "Hunt","#, r#"  "Container": {"Type": "Chest"}"#, "}"]),
        [r#"Hunts/A.json:3:25: Container.Type: unknown value "Chest" (expected one of "Single", "Multiple")"#]
    );
}

#[test]
fn missing_key_points_at_the_object() {
    assert_eq!(
        errors_of(&[
            "{",
            r#"  "Name": "Hunt","#,
            r#"  "Vaults": ["#,
            r#"    {"Id": "North", "LootTable": "Common"},"#,
            r#"    {"Id": "South"}"#,
            "  ]",
            "}",
        ]),
        [r#"Hunts/A.json:5:5: Vaults[1]: missing key "LootTable""#]
    );
    assert_eq!(errors_of(&["{", r#"  "Items": []"#, "}"]), [r#"Hunts/A.json:1:1: missing key "Name""#]);
}

#[test]
fn type_error_points_at_the_value() {
    assert_eq!(
        errors_of(&[
            "{",
            r#"  "Name": "Hunt","#,
            r#"  "Items": ["#,
            r#"    {"ItemId": "Gold", "Count": 2},"#,
            r#"    {"ItemId": "Gem", "Count": "x"}"#,
            "  ]",
            "}",
        ]),
        [r#"Hunts/A.json:5:32: Items[1].Count: invalid type: string "x", expected u32"#]
    );
    assert_eq!(
        errors_of(&["{", r#"  "Name": "Hunt","#, r#"  "Settings": {"Reveal": 5}"#, "}"]),
        ["Hunts/A.json:3:26: Settings.Reveal: invalid type: integer `5`, expected struct Reveal"]
    );
}

#[test]
fn parent_keys_are_inherited_objects_merged_arrays_replaced() {
    let loaded = load(&[
        (
            "Base",
            text(&[
                "{",
                r#"  "Name": "Base hunt","#,
                r#"  "Settings": {"Duration": 60, "Reveal": {"Delay": 5, "Mode": "Ping"}},"#,
                r#"  "Items": [{"ItemId": "Gold"}, {"ItemId": "Gem"}]"#,
                "}",
            ]),
        ),
        ("Mid", text(&[r#"{"Parent": "Base", "Settings": {"Radius": 8}}"#])),
        (
            "Child",
            text(&[
                "{",
                r#"  "Parent": "Mid","#,
                r#"  "Name": "Child hunt","#,
                r#"  "Settings": {"Reveal": {"Mode": "Glow"}},"#,
                r#"  "Items": [{"ItemId": "Crown"}]"#,
                "}",
            ]),
        ),
    ]);
    assert_eq!(errors(&loaded), Vec::<String>::new());
    assert_eq!(
        loaded.get("Child"),
        Some(&Hunt {
            name: "Child hunt".into(),
            settings: Settings { duration: 60, radius: 8, reveal: Reveal { delay: 5, mode: "Glow".into() } },
            vaults: vec![],
            items: vec![stack("Crown", 1)],
            container: None,
        })
    );
    assert_eq!(
        loaded.get("Mid"),
        Some(&Hunt {
            name: "Base hunt".into(),
            settings: Settings { duration: 60, radius: 8, reveal: Reveal { delay: 5, mode: "Ping".into() } },
            vaults: vec![],
            items: vec![stack("Gold", 1), stack("Gem", 1)],
            container: None,
        })
    );
    assert_eq!(loaded.assets.keys().collect::<Vec<_>>(), ["Base", "Child", "Mid"]);
}

#[test]
fn an_error_in_an_inherited_value_points_into_the_parents_file() {
    // The child turns the inherited Single into a Multiple; the Single's "Item", written in the
    // parent, is now an unknown key of the child's asset.
    let loaded = load(&[
        (
            "Base",
            text(&[
                "{",
                r#"  "Name": "Base","#,
                r#"  "Container": {"Type": "Single", "Weight": 5, "Item": {"ItemId": "Gold"}}"#,
                "}",
            ]),
        ),
        (
            "Child",
            text(&["{", r#"  "Parent": "Base","#, r#"  "Container": {"Type": "Multiple", "Containers": []}"#, "}"]),
        ),
    ]);
    assert_eq!(errors(&loaded), [r#"Hunts/Base.json:3:48: Container: unknown key "Item" (expected "Containers")"#]);
    assert!(loaded.get("Base").is_some() && loaded.get("Child").is_none());

    // A fault both assets inherit is one error, in the file that holds it.
    let loaded = load(&[
        ("Base", text(&["{", r#"  "Name": "Base","#, r#"  "Settings": {"Duration": "long"}"#, "}"])),
        ("Child", text(&["{", r#"  "Parent": "Base","#, r#"  "Name": "Child""#, "}"])),
    ]);
    assert_eq!(
        errors(&loaded),
        [r#"Hunts/Base.json:3:28: Settings.Duration: invalid type: string "long", expected u32"#]
    );

    // A missing key of an object the child inherited whole points at the parent's object.
    let loaded = load(&[
        ("Base", text(&["{", r#"  "Name": "Base","#, r#"  "Vaults": [{"Id": "North"}]"#, "}"])),
        ("Child", text(&["{", r#"  "Parent": "Base""#, "}"])),
    ]);
    assert_eq!(errors(&loaded), [r#"Hunts/Base.json:3:14: Vaults[0]: missing key "LootTable""#]);
}

#[test]
fn unknown_parent() {
    let loaded = load(&[
        ("Base", text(&[r#"{"Name": "Base"}"#])),
        ("Child", text(&["{", r#"  "Parent": "Bsae","#, r#"  "Name": "x""#, "}"])),
        ("Other", text(&["{", r#"  "Parent": "Nothing","#, r#"  "Name": "x""#, "}"])),
    ]);
    assert_eq!(
        errors(&loaded),
        [
            r#"Hunts/Child.json:2:13: Parent: unknown parent "Bsae" (did you mean "Base"?)"#,
            r#"Hunts/Other.json:2:13: Parent: unknown parent "Nothing" (no TreasureHunt/Hunts asset has this id)"#,
        ]
    );
    assert_eq!(loaded.assets.keys().collect::<Vec<_>>(), ["Base"]);
    assert_eq!(
        errors_of(&[r#"{"Parent": 5, "Name": "x"}"#]),
        ["Hunts/A.json:1:12: Parent: expected a string, the id of another TreasureHunt/Hunts asset, found a number"]
    );
}

#[test]
fn parent_cycles_are_named() {
    let loaded = load(&[
        ("A", text(&[r#"{"Parent": "B", "Name": "a"}"#])),
        ("B", text(&[r#"{"Parent": "A", "Name": "b"}"#])),
        ("C", text(&[r#"{"Parent": "D", "Name": "c"}"#])),
        ("D", text(&[r#"{"Parent": "E", "Name": "d"}"#])),
        ("E", text(&[r#"{"Parent": "C", "Name": "e"}"#])),
        ("F", text(&[r#"{"Parent": "C", "Name": "f"}"#])),
        ("G", text(&[r#"{"Parent": "G", "Name": "g"}"#])),
        ("H", text(&[r#"{"Name": "h"}"#])),
    ]);
    assert_eq!(
        errors(&loaded),
        [
            "Hunts/A.json:1:12: Parent: inheritance cycle: A -> B -> A",
            "Hunts/B.json:1:12: Parent: inheritance cycle: B -> A -> B",
            "Hunts/C.json:1:12: Parent: inheritance cycle: C -> D -> E -> C",
            "Hunts/D.json:1:12: Parent: inheritance cycle: D -> E -> C -> D",
            "Hunts/E.json:1:12: Parent: inheritance cycle: E -> C -> D -> E",
            r#"Hunts/F.json:1:12: Parent: parent "C" has errors, so nothing can be inherited from it"#,
            "Hunts/G.json:1:12: Parent: inheritance cycle: G -> G",
        ]
    );
    assert_eq!(loaded.assets.keys().collect::<Vec<_>>(), ["H"]);
    assert_eq!(loaded.ids(), ["A", "B", "C", "D", "E", "F", "G", "H"]);
}

#[test]
fn a_parent_that_does_not_load_is_named_by_its_children() {
    let loaded = load(&[
        ("Base", text(&["{", r#"  "Name": "Base",,"#, "}"])),
        ("Child", text(&[r#"{"Parent": "Base", "Name": "c"}"#])),
        ("Grandchild", text(&[r#"{"Parent": "Child"}"#])),
    ]);
    assert_eq!(
        errors(&loaded),
        [
            "Hunts/Base.json:2:18: invalid JSON: key must be a string",
            r#"Hunts/Child.json:1:12: Parent: parent "Base" has errors, so nothing can be inherited from it"#,
            r#"Hunts/Grandchild.json:1:12: Parent: parent "Child" has errors, so nothing can be inherited from it"#,
        ]
    );
}

#[test]
fn error_locates_semantic_errors_through_the_parent_chain() {
    let loaded = load(&[
        (
            "Base",
            text(&[
                "{",
                r#"  "Name": "Base","#,
                r#"  "Vaults": ["#,
                r#"    {"Id": "A", "LootTable": "T1"},"#,
                r#"    {"Id": "B", "LootTable": "T2"},"#,
                r#"    {"Id": "C", "LootTable": "T3"}"#,
                "  ]",
                "}",
            ]),
        ),
        ("Child", text(&["{", r#"  "Parent": "Base","#, r#"  "Settings": {"Duration": 5}"#, "}"])),
        ("Own", text(&["{", r#"  "Parent": "Base","#, r#"  "Vaults": [{"Id": "Z", "LootTable": "T9"}]"#, "}"])),
    ]);
    assert_eq!(errors(&loaded), Vec::<String>::new());
    let at = |id: &str, path: &str| loaded.error(id, path, r#"unknown drop table "T3""#).to_string();
    assert_eq!(
        at("Base", "Vaults[2].LootTable"),
        r#"Hunts/Base.json:6:30: Vaults[2].LootTable: unknown drop table "T3""#
    );
    // Inherited: where the parent wrote it.
    assert_eq!(
        at("Child", "Vaults[2].LootTable"),
        r#"Hunts/Base.json:6:30: Vaults[2].LootTable: unknown drop table "T3""#
    );
    // Not written anywhere (a default): the nearest written ancestor.
    assert_eq!(at("Child", "Settings.Radius"), r#"Hunts/Child.json:3:15: Settings.Radius: unknown drop table "T3""#);
    assert_eq!(
        at("Base", "Settings.Reveal.Delay"),
        r#"Hunts/Base.json:1:1: Settings.Reveal.Delay: unknown drop table "T3""#
    );
    // The child's own array replaces the parent's: its missing index points at the child's array.
    assert_eq!(
        at("Own", "Vaults[2].LootTable"),
        r#"Hunts/Own.json:3:13: Vaults[2].LootTable: unknown drop table "T3""#
    );
    assert_eq!(
        at("Own", "Vaults[0].LootTable"),
        r#"Hunts/Own.json:3:39: Vaults[0].LootTable: unknown drop table "T3""#
    );
    assert_eq!(at("Child", ""), r#"Hunts/Child.json:1:1: unknown drop table "T3""#);
    assert_eq!(at("Nope", "Name"), r#"TreasureHunt/Hunts/Nope.json:1:1: Name: unknown drop table "T3""#);
}

#[test]
fn every_files_errors_are_reported_sorted() {
    let loaded = load(&[
        ("C", text(&["{", r#"  "Parent": "Nope","#, r#"  "Name": "c""#, "}"])),
        ("A", text(&["{", r#"  "Name": "a","#, r#"  "Name": "b","#, r#"  "Items": 5,"#, r#"  "Items": 6"#, "}"])),
        ("B", text(&["{", r#"  "Name": 1"#, "}"])),
        ("D", text(&[r#"{"Name": "d"}"#])),
    ]);
    assert_eq!(
        errors(&loaded),
        [
            r#"Hunts/A.json:3:3: duplicate key "Name""#,
            r#"Hunts/A.json:5:3: duplicate key "Items""#,
            "Hunts/B.json:2:11: Name: invalid type: integer `1`, expected a string",
            r#"Hunts/C.json:2:13: Parent: unknown parent "Nope" (no TreasureHunt/Hunts asset has this id)"#,
        ]
    );
    assert_eq!(loaded.assets.keys().collect::<Vec<_>>(), ["D"]);
    assert_eq!(
        AssetErrors(loaded.errors[2..].to_vec()).to_string(),
        [
            "Hunts/B.json:2:11: Name: invalid type: integer `1`, expected a string",
            r#"Hunts/C.json:2:13: Parent: unknown parent "Nope" (no TreasureHunt/Hunts asset has this id)"#,
        ]
        .join("\n")
    );
}

#[test]
fn read_kind_reads_one_folder_in_name_order() {
    let pack = std::env::temp_dir().join(format!("veltrix-assets-{}", std::process::id()));
    let dir = pack.join("Server/TreasureHunt/Hunts");
    fs::create_dir_all(dir.join("Nested")).unwrap();
    fs::write(dir.join("Zeta.json"), r#"{"Name": "z"}"#).unwrap();
    fs::write(dir.join("Alpha.json"), "\u{feff}{\"Name\": \"a\"}").unwrap();
    fs::write(dir.join("notes.txt"), "not an asset").unwrap();
    fs::write(dir.join("Nested/Deep.json"), r#"{"Name": "d"}"#).unwrap();

    let sources = read_kind(&pack, KIND).unwrap();
    let names: Vec<(&str, &str, &Path)> =
        sources.iter().map(|s| (s.kind.as_str(), s.id.as_str(), s.path.as_path())).collect();
    assert_eq!(
        names,
        [(KIND, "Alpha", dir.join("Alpha.json").as_path()), (KIND, "Zeta", dir.join("Zeta.json").as_path())]
    );
    assert_eq!(sources[0].text, r#"{"Name": "a"}"#, "the byte order mark is dropped");
    let loaded = load_kind::<Hunt>(&sources);
    assert_eq!(loaded.errors, []);
    assert_eq!(loaded.ids(), ["Alpha", "Zeta"]);

    assert_eq!(read_kind(&pack, "Drops").unwrap(), [], "no folder, no assets");
    fs::remove_dir_all(&pack).unwrap();
}

#[test]
fn display_omits_an_empty_json_path() {
    let error = AssetError {
        path: "Hunts/A.json".into(),
        line: 3,
        column: 7,
        json_path: String::new(),
        message: "invalid JSON: trailing comma".into(),
    };
    assert_eq!(error.to_string(), "Hunts/A.json:3:7: invalid JSON: trailing comma");
    let error = AssetError { json_path: "Vaults[2].LootTable".into(), message: "x".into(), ..error };
    assert_eq!(error.to_string(), "Hunts/A.json:3:7: Vaults[2].LootTable: x");
}

#[test]
fn json_paths_round_trip() {
    let path = locate::parse_path("Vaults[2].LootTable");
    assert_eq!(path, [Seg::Key("Vaults".into()), Seg::Index(2), Seg::Key("LootTable".into())]);
    assert_eq!(path_string(&path), "Vaults[2].LootTable");
    assert_eq!(locate::parse_path(""), []);
    assert_eq!(path_string(&locate::parse_path("Grid[1][0]")), "Grid[1][0]");
}

/// Text made of pieces of asset files and JSON punctuation, so that most of it gets past the
/// parser to the merge and the typed read.
fn jsonish() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    const PIECES: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        " ",
        "\n",
        "\"Parent\"",
        "\"A\"",
        "\"B\"",
        "\"C\"",
        "\"Name\"",
        "\"Vaults\"",
        "\"Settings\"",
        "\"Radius\"",
        "\"Container\"",
        "\"Type\"",
        "\"Single\"",
        "\"$schema\"",
        "1",
        "-2.5e3",
        "null",
        "true",
        "\"x\"",
        "//",
        "é",
    ];
    let piece = prop_oneof![4 => proptest::sample::select(PIECES).prop_map(str::to_string), 1 => ".{0,3}"];
    proptest::collection::vec(piece, 0..48).prop_map(|parts| parts.concat())
}

proptest::proptest! {
    /// Any files of a kind load, or give errors placed in one of those files at a line it has;
    /// never a panic, however the parents chain.
    #[test]
    fn any_files_load_or_give_located_errors(texts in proptest::collection::vec(jsonish(), 1..4)) {
        let path = |id: &str| PathBuf::from(format!("Server/Hunts/{id}.json"));
        let sources: Vec<AssetSource> =
            texts.iter().zip(["A", "B", "C"]).map(|(text, id)| AssetSource::from_text("Hunts", id, path(id), text.as_str())).collect();
        let loaded = load_kind::<Hunt>(&sources);
        for error in &loaded.errors {
            let source = sources.iter().find(|s| s.path == error.path);
            proptest::prop_assert!(source.is_some(), "{error}");
            let lines = source.unwrap().text.split('\n').count();
            proptest::prop_assert!((1..=lines).contains(&error.line) && error.column >= 1, "{error}");
        }
        let _ = load_kind::<serde_json::Value>(&sources);
    }
}
