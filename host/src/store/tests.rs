//! The store's tests: the redb store, export and import, the check, the faults.

use std::{path::Path, sync::Arc};

use serde::Serialize;
use veltrix_sdk::{KeyRange, Record, Storage, Write};

use super::*;

fn put(table: &str, key: &[u8], value: &[u8]) -> Write {
    Write { table: Arc::from(table), key: key.to_vec(), value: Some(value.to_vec()) }
}

#[test]
fn commits_survive_reopening_and_deletes_apply_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE);
    {
        let store = RedbStore::open(&path).unwrap();
        store.commit(&[put("a", b"1", b"one"), put("b", b"2", b"two"), put("a", b"3", b"three")]).unwrap();
        let delete = Write { table: Arc::from("a"), key: b"1".to_vec(), value: None };
        store.commit(&[put("a", b"1", b"uno"), delete]).unwrap();
    }
    let store = RedbStore::open(&path).unwrap();
    assert_eq!(store.read_all("a").unwrap(), vec![(b"3".to_vec(), b"three".to_vec())]);
    assert_eq!(store.get("b", b"2").unwrap(), Some(b"two".to_vec()));
    assert_eq!(store.get("c", b"2").unwrap(), None);
    assert!(store.read_all("missing").unwrap().is_empty());
    assert_eq!(store.tables().unwrap(), ["a", "b"]);
}

#[test]
fn a_table_whose_last_key_is_removed_is_no_longer_listed() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join(FILE)).unwrap();
    store.commit(&[put("a", b"1", b"one"), put("b", b"1", b"one")]).unwrap();
    store.commit(&[Write { table: Arc::from("a"), key: b"1".to_vec(), value: None }]).unwrap();
    // Removing a key that was never there does not make a table either.
    store.commit(&[Write { table: Arc::from("c"), key: b"1".to_vec(), value: None }]).unwrap();
    assert_eq!(store.tables().unwrap(), ["b"]);
}

/// A store with what the server keeps: MessagePack keys and named-map values, and bytes
/// that are not MessagePack at all.
fn sample() -> Vec<Write> {
    let ids: Arc<str> = Arc::from("veltrix/player-ids");
    let hunts: Arc<str> = Arc::from("Veltrix:TreasureHunt/hunts");
    let mut changes = veltrix_sdk::Changes::default();
    changes.put(&ids, "bob", &2u64);
    changes.put(&ids, "alice", &1u64);
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Hunt {
        seed: u64,
        next_seq: u64,
    }
    changes.put(&hunts, "Test", &Hunt { seed: 5, next_seq: 3 });
    let mut writes = changes.writes().to_vec();
    writes.push(put("raw", &[0xc1, 0xff, 0x00], &[0xff, 0xfe]));
    writes.push(put("raw", b"", b""));
    writes
}

fn redb(dir: &tempfile::TempDir, name: &str) -> RedbStore {
    RedbStore::open(&dir.path().join(name)).unwrap()
}

fn export_bytes(store: &dyn Storage) -> (Vec<u8>, Summary) {
    let mut out = Vec::new();
    let summary = export(store, &mut out).unwrap();
    (out, summary)
}

fn contents(store: &dyn Storage) -> Vec<(String, Vec<Record>)> {
    store.tables().unwrap().into_iter().map(|t| (t.clone(), store.read_all(&t).unwrap())).collect()
}

#[test]
fn export_then_import_into_a_fresh_store_gives_the_same_tables() {
    let dir = tempfile::tempdir().unwrap();
    let from = redb(&dir, "from.redb");
    from.commit(&sample()).unwrap();
    let (file, summary) = export_bytes(&from);
    assert_eq!(summary, Summary { tables: 3, records: 5 });
    assert_eq!(summary.to_string(), "3 tables, 5 records");

    let to = redb(&dir, "to.redb");
    let done = import(&to, file.as_slice(), false).unwrap();
    assert_eq!(done, Imported { imported: summary, replaced: Summary::default() });
    assert_eq!(contents(&to), contents(&from));
    assert_eq!(export_bytes(&to).0, file, "an imported store exports to the same bytes");
    // And the reverse: into another engine.
    let memory = veltrix_sdk::MemoryStore::default();
    import(&memory, file.as_slice(), false).unwrap();
    assert_eq!(contents(&memory), contents(&from));
}

#[test]
fn the_export_is_deterministic_and_engine_independent() {
    let dir = tempfile::tempdir().unwrap();
    let store = redb(&dir, "a.redb");
    store.commit(&sample()).unwrap();
    let (first, _) = export_bytes(&store);
    assert_eq!(export_bytes(&store).0, first);
    // The same records written in another order, into another engine.
    let memory = veltrix_sdk::MemoryStore::default();
    let mut writes = sample();
    writes.reverse();
    memory.commit(&writes).unwrap();
    assert_eq!(export_bytes(&memory).0, first);

    let text = String::from_utf8(first).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], r#"{"Format":"veltrix-store","Version":1,"Tables":3,"Records":5}"#);
    assert_eq!(lines.len(), 6);
    assert!(text.ends_with('\n'));
    // Tables in order, keys in byte order; the JSON views where the bytes are MessagePack.
    assert_eq!(
        lines[1],
        r#"{"Table":"Veltrix:TreasureHunt/hunts","Key":"pFRlc3Q=","Value":"gqRTZWVkBadOZXh0U2VxAw==","KeyJson":"Test","ValueJson":{"NextSeq":3,"Seed":5}}"#
    );
    assert_eq!(lines[2], r#"{"Table":"raw","Key":"","Value":""}"#);
    assert_eq!(lines[3], r#"{"Table":"raw","Key":"wf8A","Value":"//4="}"#);
    // Byte order of the encoding: "bob" (0xa3 b o b) before "alice" (0xa5 a l i c e).
    assert_eq!(
        lines[4],
        r#"{"Table":"veltrix/player-ids","Key":"o2JvYg==","Value":"Ag==","KeyJson":"bob","ValueJson":2}"#
    );
    assert_eq!(
        lines[5],
        r#"{"Table":"veltrix/player-ids","Key":"pWFsaWNl","Value":"AQ==","KeyJson":"alice","ValueJson":1}"#
    );
}

#[test]
fn an_empty_store_exports_a_header_only_and_imports_as_nothing() {
    let memory = veltrix_sdk::MemoryStore::default();
    let (file, summary) = export_bytes(&memory);
    assert_eq!(summary, Summary::default());
    assert_eq!(file, b"{\"Format\":\"veltrix-store\",\"Version\":1,\"Tables\":0,\"Records\":0}\n");
    let dir = tempfile::tempdir().unwrap();
    let store = redb(&dir, "a.redb");
    assert_eq!(import(&store, file.as_slice(), false).unwrap().imported, Summary::default());
    assert!(store.tables().unwrap().is_empty());
}

#[test]
fn import_trusts_key_and_value_only() {
    let memory = veltrix_sdk::MemoryStore::default();
    let file = concat!(
        r#"{"Format":"veltrix-store","Version":1,"Tables":1,"Records":1}"#,
        "\r\n\n",
        r#"{"Table":"t","Key":"oWs=","Value":"AQ==","KeyJson":"not k","ValueJson":{"lies":true}}"#,
    );
    import(&memory, file.as_bytes(), false).unwrap();
    assert_eq!(memory.read_all("t").unwrap(), [(vec![0xa1, b'k'], vec![1])]);
}

/// The error for `file`, checking that nothing was written.
fn refused(file: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let store = redb(&dir, "a.redb");
    let err = import(&store, file.as_bytes(), false).expect_err("refused");
    assert!(store.tables().unwrap().is_empty(), "nothing is written: {err}");
    err
}

#[test]
fn a_malformed_file_is_refused_naming_the_line_and_what_was_expected() {
    let header = r#"{"Format":"veltrix-store","Version":1,"Tables":1,"Records":2}"#;
    let good = r#"{"Table":"t","Key":"AQ==","Value":"AQ=="}"#;
    let case = |lines: &[&str]| refused(&lines.join("\n"));
    assert_eq!(
        case(&[header, good, r#"{"Table":"t","Value":"AQ=="}"#]),
        r#"line 3: expected a record {"Table": name, "Key": base64, "Value": base64}: column 28: missing field `Key`"#
    );
    assert_eq!(
        case(&[header, good, "{not json"]),
        r#"line 3: expected a record {"Table": name, "Key": base64, "Value": base64}: column 2: key must be a string"#
    );
    let err = case(&[header, good, r#"{"Table":"t","Key":"A!==","Value":"AQ=="}"#]);
    assert!(err.starts_with("line 3: table t: the Key is not base64: "), "{err}");
    let err = case(&[header, good, r#"{"Table":"t","Key":"Ag==","Value":"AQ==","Extra":1}"#]);
    assert!(err.starts_with("line 3: expected a record") && err.contains("unknown field `Extra`"), "{err}");
    assert_eq!(case(&[header, good, good]), "line 3: table t: this Key was already given on line 2");
    assert_eq!(
        case(&[header, good]),
        "line 3: the file ends early: the header announced 1 table, 2 records, the file holds 1 table, 1 record (a truncated copy?)"
    );
    assert_eq!(
        case(&[
            header,
            good,
            good.replace("AQ==\",\"V", "Ag==\",\"V").as_str(),
            good.replace("\"t\"", "\"u\"").as_str()
        ]),
        "line 4: the header announced 2 records, this is record 3"
    );
    assert_eq!(
        case(&[r#"{"Format":"veltrix-store","Version":1,"Tables":2,"Records":1}"#, good]),
        "line 1: the header announced 2 tables, 1 record, the records are 1 table, 1 record"
    );
}

#[test]
fn the_header_is_checked_first() {
    assert_eq!(
        refused(""),
        r#"line 1: expected the header {"Format": "veltrix-store", "Version": 1, "Tables": N, "Records": N}: the file is empty"#
    );
    assert_eq!(
        refused(r#"{"Format":"sqlite","Version":1}"#),
        r#"line 1: not a Veltrix store export: Format is "sqlite", expected "veltrix-store""#
    );
    assert_eq!(
        refused(r#"{"Format":"veltrix-store","Version":2,"Tables":0,"Records":0,"New":true}"#),
        "line 1: export format version 2 is not supported: this server reads version 1"
    );
    let err = refused(r#"{"Format":"veltrix-store","Version":1,"Tables":0}"#);
    assert!(err.starts_with("line 1: expected the header") && err.ends_with("missing field `Records`"), "{err}");
    let err = refused(r#"{"Table":"t","Key":"AQ==","Value":"AQ=="}"#);
    assert!(err.starts_with("line 1: expected the header") && err.ends_with("missing field `Format`"), "{err}");
    assert!(refused("\u{feff}x\n").starts_with("line 1: expected the header"));
    assert!(refused("\u{ff}").starts_with("line 1: expected the header"));
    let dir = tempfile::tempdir().unwrap();
    let err = import(&redb(&dir, "a.redb"), &[0xff, 0xfe, b'\n'][..], false).unwrap_err();
    assert!(err.starts_with("line 1: not UTF-8 text"), "{err}");
}

#[test]
fn a_store_that_holds_anything_is_refused_without_replace() {
    let dir = tempfile::tempdir().unwrap();
    let source = veltrix_sdk::MemoryStore::default();
    source.commit(&[put("new", b"k", b"v")]).unwrap();
    let (file, _) = export_bytes(&source);
    let store = redb(&dir, "a.redb");
    store.commit(&[put("old", b"1", b"one"), put("veltrix/player-ids", b"2", b"two")]).unwrap();
    let before = contents(&store);
    let err = import(&store, file.as_slice(), false).unwrap_err();
    assert_eq!(
        err,
        "the store is not empty (it holds 2 tables: old, veltrix/player-ids); nothing was imported: import into \
         an empty store, or give --replace to clear it first"
    );
    assert_eq!(contents(&store), before);
}

#[test]
fn replace_clears_every_table_in_the_same_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let source = veltrix_sdk::MemoryStore::default();
    source.commit(&[put("kept", b"1", b"new one"), put("new", b"k", b"v")]).unwrap();
    let (file, _) = export_bytes(&source);
    let store = redb(&dir, "a.redb");
    store.commit(&[put("gone", b"1", b"one"), put("kept", b"1", b"old one"), put("kept", b"2", b"two")]).unwrap();

    // A malformed file changes nothing, replace or not.
    let before = contents(&store);
    let truncated = &file[..file.len() - 5];
    assert!(import(&store, truncated, true).unwrap_err().starts_with("line 3: expected a record"));
    assert_eq!(contents(&store), before);

    let done = import(&store, file.as_slice(), true).unwrap();
    assert_eq!(done.imported, Summary { tables: 2, records: 2 });
    assert_eq!(done.replaced, Summary { tables: 2, records: 3 });
    assert_eq!(contents(&store), contents(&source));
    assert_eq!(export_bytes(&store).0, file);
}

#[test]
fn export_to_file_replaces_the_file_only_when_complete() {
    let dir = tempfile::tempdir().unwrap();
    let store = redb(&dir, "a.redb");
    store.commit(&sample()).unwrap();
    let path = dir.path().join("backup.jsonl");
    std::fs::write(&path, "older backup").unwrap();
    let summary = export_to_file(&store, &path).unwrap();
    assert_eq!(summary, Summary { tables: 3, records: 5 });
    assert_eq!(std::fs::read(&path).unwrap(), export_bytes(&store).0);
    assert!(!dir.path().join("backup.jsonl.partial").exists());
    let err = export_to_file(&store, &dir.path().join("missing/backup.jsonl")).unwrap_err();
    assert!(err.contains("missing/backup.jsonl.partial: cannot create"), "{err}");
}

#[test]
fn ranges_follow_the_key_order_of_encoded_sequence_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let store = veltrix_sdk::Store(Arc::new(RedbStore::open(&dir.path().join(FILE)).unwrap()));
    let mut changes = veltrix_sdk::Changes::default();
    let table: Arc<str> = Arc::from("log");
    // MessagePack's smallest encodings keep unsigned order: 127 (1 byte) < 128 (2) < 70000 (5).
    for seq in [1u64, 127, 128, 255, 256, 70_000, 5_000_000_000] {
        changes.put(&table, &("Hunt", seq), &seq);
    }
    changes.put(&table, &("Other", 2u64), &2u64);
    store.0.commit(changes.writes()).unwrap();
    let got: Vec<((String, u64), u64)> =
        store.load_range("log", &("Hunt".to_string(), 2), &("Hunt".to_string(), u64::MAX)).unwrap();
    let seqs: Vec<u64> = got.iter().map(|(_, v)| *v).collect();
    assert_eq!(seqs, [127, 128, 255, 256, 70_000, 5_000_000_000]);
    let memory = veltrix_sdk::MemoryStore::default();
    memory.commit(changes.writes()).unwrap();
    let from = veltrix_sdk::rmp_serde::to_vec(&("Hunt", 2u64)).unwrap();
    let to = veltrix_sdk::rmp_serde::to_vec(&("Hunt", u64::MAX)).unwrap();
    assert_eq!(memory.read_range("log", &from, &to).unwrap(), store.0.read_range("log", &from, &to).unwrap());
}

#[test]
fn a_file_that_is_not_a_store_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE);
    std::fs::write(&path, b"not a database, just some text that is long enough to be read").unwrap();
    let err = RedbStore::open(&path).err().expect("refused");
    assert!(err.contains("cannot open the store"), "{err}");
}

/// A store with `n` records of 200 bytes in table `t` (several pages), closed.
fn filled(path: &Path, n: u32) {
    let store = RedbStore::open(path).unwrap();
    let writes: Vec<Write> = (0..n)
        .map(|i| {
            let mut changes = veltrix_sdk::Changes::default();
            changes.put(&Arc::from("t"), &i, &vec![7u8; 200]);
            changes.writes()[0].clone()
        })
        .collect();
    store.commit(&writes).unwrap();
}

#[test]
fn a_store_cut_short_is_a_clear_error_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE);
    filled(&path, 2000);
    let len = std::fs::metadata(&path).unwrap().len();
    for cut in [len / 2, len / 3, 4096, 100] {
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(cut).unwrap();
        drop(file);
        match RedbStore::open(&path) {
            Err(e) => {
                assert!(e.starts_with(&format!("{}: cannot open the store: ", path.display())), "{e}");
                assert!(e.contains("damaged") && e.contains("veltrix-server import"), "cut to {cut}: {e}");
            }
            // redb may take a file cut short for one it can repair: then whatever is read is
            // an answer or an error, never a panic.
            Ok(store) => {
                let _ = store.read_all("t");
                let _ = store.tables();
            }
        }
    }
}

#[test]
fn check_names_a_record_that_does_not_decode_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE);
    {
        let store = RedbStore::open(&path).unwrap();
        let mut changes = veltrix_sdk::Changes::default();
        changes.put(&Arc::from("players"), &7u64, &"a good record");
        changes.put(&Arc::from("players"), &8u64, &"damaged");
        changes.put(&Arc::from("ids"), "bob", &8u64);
        let mut writes = changes.writes().to_vec();
        // An array of 2 holding 1 value; a string value followed by a stray byte.
        writes[1].value = Some(vec![0x92, 0x01]);
        writes[2].value = Some(vec![0x08, 0x00]);
        store.commit(&writes).unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let report = check(&path).unwrap();
    assert_eq!(report.summary, Summary { tables: 2, records: 3 });
    assert_eq!(report.problems.len(), 2, "{:#?}", report.problems);
    assert_eq!(
        report.problems[0],
        r#"table ids: key "bob" (base64 o2JvYg==): the value does not decode: 1 byte(s) after its MessagePack value"#
    );
    assert!(
        report.problems[1]
            .starts_with("table players: key 8 (base64 CA==): the value does not decode: not MessagePack ("),
        "{}",
        report.problems[1]
    );
    assert!(std::fs::read(&path).unwrap() == before, "check changes nothing");

    // Bytes overwritten in the file where the record lies: redb's checksums tell.
    let at = before.windows(7).position(|w| w == b"a good ").expect("the record is in the file");
    let mut damaged = before.clone();
    damaged[at..at + 7].copy_from_slice(b"\xff\x13\x37\x00\xc1\xc1\xc1");
    std::fs::write(&path, &damaged).unwrap();
    let report = check(&path).unwrap();
    assert!(report.problems[0].starts_with("redb's integrity check failed"), "{:#?}", report.problems);
    assert!(std::fs::read(&path).unwrap() == damaged, "check changes nothing");
}

/// `check` of a store a crash left with commits in its log: they are counted, applied to the
/// copy; the store file and its log stay as they were.
#[test]
fn check_applies_the_log_on_its_copy_and_leaves_the_store_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE);
    RedbStore::open(&path).unwrap().commit(&[put("a", b"\x01", b"\x01")]).unwrap();
    let store = RedbStore::open(&path).unwrap();
    store.crash_applier();
    store.commit(&[put("b", b"\x02", b"\x02")]).unwrap();
    store.crash();
    let segments = || -> Vec<(std::path::PathBuf, Vec<u8>)> {
        let mut all: Vec<_> = std::fs::read_dir(log::dir_of(&path))
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| {
                let bytes = std::fs::read(&p).unwrap();
                (p, bytes)
            })
            .collect();
        all.sort();
        all
    };
    let (file, log) = (std::fs::read(&path).unwrap(), segments());
    assert_eq!(log.len(), 1);

    let report = check(&path).unwrap();
    assert_eq!(report.summary, Summary { tables: 2, records: 2 });
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    assert!(std::fs::read(&path).unwrap() == file && segments() == log, "check changes nothing");
}

#[test]
fn faults_fail_commits_at_the_chance_given() {
    let faulty = FaultyStore::new(veltrix_sdk::MemoryStore::default(), "0.25,7").unwrap();
    let failed = (0..4000).filter(|_| faulty.commit(&[put("t", b"k", b"v")]).is_err()).count();
    assert!((800..1200).contains(&failed), "{failed} of 4000 failed");
    assert_eq!(faulty.read_all("t").unwrap().len(), 1);
    assert!(FaultyStore::new(veltrix_sdk::MemoryStore::default(), "1.5").is_err());
    assert!(FaultyStore::new(veltrix_sdk::MemoryStore::default(), "lots").is_err());
    let never = FaultyStore::new(veltrix_sdk::MemoryStore::default(), "0").unwrap();
    assert!((0..100).all(|_| never.commit(&[]).is_ok()));
}

#[test]
fn faults_fail_every_commit_that_writes_the_table_named() {
    let faulty = FaultyStore::new(veltrix_sdk::MemoryStore::default(), "table=claims").unwrap();
    assert!(faulty.commit(&[put("players", b"k", b"v")]).is_ok());
    let failed = faulty.commit(&[put("players", b"k", b"w"), put("claims", b"k", b"v")]).unwrap_err();
    assert!(failed.0.contains("table claims"), "{failed}");
    assert_eq!(faulty.get("players", b"k").unwrap().as_deref(), Some(&b"v"[..]), "none of that commit's writes");
    assert!(faulty.read_all("claims").unwrap().is_empty());
}

/// Several ranges read at once give what each read alone gives (a table that does not exist
/// and an empty range give nothing), in redb and in memory alike.
#[test]
fn ranges_read_at_once_are_the_ranges_read_alone() {
    let dir = tempfile::tempdir().unwrap();
    let redb = RedbStore::open(&dir.path().join(FILE)).unwrap();
    let memory = veltrix_sdk::MemoryStore::default();
    let mut changes = veltrix_sdk::Changes::default();
    let (players, clues): (Arc<str>, Arc<str>) = (Arc::from("players"), Arc::from("clues"));
    for id in [7u64, 8, 300] {
        changes.put(&players, &id, &id);
        changes.put(&clues, &(id, "Hunt", 1u32), &id);
        changes.put(&clues, &(id, "Hunt", 2u32), &id);
    }
    redb.commit(changes.writes()).unwrap();
    memory.commit(changes.writes()).unwrap();
    let seven = veltrix_sdk::rmp_serde::to_vec(&7u64).unwrap();
    let seven_next: Vec<u8> = seven.iter().copied().chain([0]).collect();
    let triples: Vec<u8> = std::iter::once(0x93).chain(seven.iter().copied()).collect();
    let triples_end: Vec<u8> = triples.iter().copied().chain([0xff]).collect();
    let ranges = [
        KeyRange { table: "players", from: &seven, to: &seven_next },
        KeyRange { table: "clues", from: &triples, to: &triples_end },
        KeyRange { table: "none", from: &seven, to: &seven_next },
        KeyRange { table: "players", from: &seven_next, to: &seven },
    ];
    for store in [&redb as &dyn Storage, &memory] {
        let at_once = store.read_ranges(&ranges).unwrap();
        let alone: Vec<Vec<Record>> = ranges.iter().map(|r| store.read_range(r.table, r.from, r.to).unwrap()).collect();
        assert_eq!(at_once, alone);
        assert_eq!(at_once.iter().map(Vec::len).collect::<Vec<_>>(), [1, 2, 0, 0]);
    }
}
