//! `veltrix-server export` and `import` with the real binary: a store with a player in it goes
//! to a file, into another root, and back to the same bytes; the player keeps its id there.

use std::{path::Path, process::Output};

use serde_json::Value;
use veltrix_client::{Client, hello};
use veltrix_tests::TestServer;

fn run(server: &TestServer, args: &[&str]) -> Output {
    server.command().args(args).output().expect("the server starts")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn export(server: &TestServer, file: &Path) -> String {
    let output = run(server, &["export", file.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output)
}

/// The records of an export, as JSON, after checking its header.
fn records(file: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(file).unwrap();
    let mut lines = text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap());
    let header = lines.next().unwrap();
    let records: Vec<Value> = lines.collect();
    assert_eq!(header["Format"], "veltrix-store");
    assert_eq!(header["Version"], 1);
    assert_eq!(header["Records"], records.len());
    records
}

async fn join(server: &TestServer, name: &str) -> u64 {
    let live = server.start(&[]);
    let (client, welcome) = Client::connect(&live.addr, hello(name)).await.unwrap_or_else(|e| panic!("{name}: {e:?}"));
    // While it runs, the store is locked: an export is refused, clearly.
    let refused = run(server, &["export", "-"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("is another server running in this folder?"), "{}", stderr(&refused));
    assert!(refused.stdout.is_empty());
    drop(client);
    let (status, log) = live.stop();
    assert!(status.success(), "{log}");
    welcome.player
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_moves_to_another_root_and_back_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let first = TestServer::new().with_treasure_hunt("Veltrix_TreasureHunt");

    // Nothing to export before the server ever ran here.
    let none = run(&first, &["export", "-"]);
    assert_eq!(none.status.code(), Some(1));
    assert!(stderr(&none).contains("universe/veltrix.redb: no store here"), "{}", stderr(&none));

    let alice = join(&first, "alice").await;
    let a = dir.path().join("a.jsonl");
    let summary = export(&first, &a);
    assert!(
        summary.starts_with("exported ") && summary.ends_with(&format!("records to {}\n", a.display())),
        "{summary}"
    );
    let file = std::fs::read(&a).unwrap();
    let all = records(&file);
    let ids: Vec<&Value> = all.iter().filter(|r| r["Table"] == "veltrix/player-ids").collect();
    assert_eq!(ids.len(), 1, "{}", String::from_utf8_lossy(&file));
    assert_eq!(ids[0]["KeyJson"], "alice");
    assert_eq!(ids[0]["ValueJson"], alice);

    // Deterministic: again, and to standard output (the summary then goes to standard error).
    let again = dir.path().join("again.jsonl");
    export(&first, &again);
    assert_eq!(std::fs::read(&again).unwrap(), file);
    let piped = run(&first, &["export", "-"]);
    assert!(piped.status.success(), "{}", stderr(&piped));
    assert_eq!(piped.stdout, file);
    assert!(stderr(&piped).contains("to standard output"), "{}", stderr(&piped));

    // Into a fresh root, and out of it again: the same bytes.
    let second = TestServer::new().with_treasure_hunt("Veltrix_TreasureHunt");
    let imported = run(&second, &["import", a.to_str().unwrap()]);
    assert!(imported.status.success(), "{}", stderr(&imported));
    assert_eq!(stdout(&imported), summary.replace("exported", "imported").replace(" to ", " from "));
    let b = dir.path().join("b.jsonl");
    export(&second, &b);
    assert_eq!(std::fs::read(&b).unwrap(), file);

    // A store that holds anything is refused without --replace, and left as it was.
    let refused = run(&second, &["import", a.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("the store is not empty"), "{}", stderr(&refused));
    let replaced = run(&second, &["import", "--replace", a.to_str().unwrap()]);
    assert!(replaced.status.success(), "{}", stderr(&replaced));
    assert!(stdout(&replaced).contains("(replacing "), "{}", stdout(&replaced));
    export(&second, &b);
    assert_eq!(std::fs::read(&b).unwrap(), file);

    // A malformed file: the line named, exit 1, nothing written.
    let bad = dir.path().join("bad.jsonl");
    let mut text = String::from_utf8(file.clone()).unwrap();
    text.push_str("{\"Table\": 5}\n");
    std::fs::write(&bad, text).unwrap();
    let third = TestServer::new();
    let malformed = run(&third, &["import", bad.to_str().unwrap()]);
    assert_eq!(malformed.status.code(), Some(1));
    let lines = file.iter().filter(|b| **b == b'\n').count();
    assert!(stderr(&malformed).contains(&format!("line {}: expected a record", lines + 1)), "{}", stderr(&malformed));
    let empty = run(&third, &["export", "-"]);
    assert!(empty.status.success(), "{}", stderr(&empty));
    assert_eq!(records(&empty.stdout).len(), 0);

    // The moved store is the player's: alice keeps her id on the other server.
    assert_eq!(join(&second, "alice").await, alice);
}

/// A store file cut to half (a copy interrupted, a disk fault): the server, `export` and
/// `check` each say what is wrong with which file and what to do, and none panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_cut_to_half_is_a_clear_error_never_a_panic() {
    let server = TestServer::new().with_treasure_hunt("Veltrix_TreasureHunt");
    for name in ["ana", "bo", "cy"] {
        join(&server, name).await;
    }
    let path = server.root().join("universe/veltrix.redb");
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(file.metadata().unwrap().len() / 2).unwrap();
    drop(file);

    let started = server.run_ticks(5, &[]);
    assert_eq!(started.code, Some(1), "{}", started.log);
    let error = format!("{}: cannot open the store: ", path.display());
    assert!(started.log.contains(&error) && started.log.contains("veltrix-server import"), "{}", started.log);
    assert!(!started.log.contains("ERROR panic: "), "a panic reached the log: {}", started.log);
    for args in [&["export", "-"][..], &["check"]] {
        let output = run(&server, args);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {}", stderr(&output));
        assert!(
            stderr(&output).contains(&error) && stderr(&output).contains("the store file is damaged"),
            "{}",
            stderr(&output)
        );
    }
}

/// A full disk under the store (a small tmpfs): a commit fails, and fails while there is no
/// room, while reads go on; once there is, commits work again (at once, or once the store file
/// has taken what it can of the log's commits) (redb is opened again: it refuses everything
/// after an I/O error until then) and every commit that said it worked is there.
#[test]
fn a_store_on_a_full_disk_commits_again_once_there_is_room() {
    use veltrix_host::store::RedbStore;
    use veltrix_sdk::{Storage, Write};

    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = veltrix_tests::Tmpfs::mount(&dir.path().join("universe"), "2m") else { return };
    let path = dir.path().join("universe/veltrix.redb");
    let store = RedbStore::open(&path).unwrap();
    let batch = |n: u32| -> Vec<Write> {
        (0..8u32)
            .map(|i| Write { table: "t".into(), key: (n * 8 + i).to_be_bytes().to_vec(), value: Some(vec![1; 2048]) })
            .collect()
    };
    store.commit(&batch(0)).unwrap();
    let filler = disk.fill();
    let mut committed = 1;
    let failed = loop {
        match store.commit(&batch(committed)) {
            Ok(()) => committed += 1,
            Err(e) => break e,
        }
        assert!(committed < 1000, "the disk never filled");
    };
    assert!(failed.0.contains("No space left on device"), "{failed}");
    assert!(store.commit(&batch(committed)).is_err(), "still no room");
    let kept = committed as usize * 8;
    assert_eq!(store.read_all("t").unwrap().len(), kept, "reads go on meanwhile (players join)");
    std::fs::remove_file(filler).unwrap();
    // The store file may take the room first, applying the commits its log holds (it tries
    // again every second); a server commits again every tick. On this 2 MiB disk that can take
    // all of it for a moment: the commit works within the applier's next tries.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while let Err(e) = store.commit(&batch(committed)) {
        assert!(std::time::Instant::now() < deadline, "room again: the commit works: {e}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    drop(store);
    let store = RedbStore::open(&path).unwrap();
    assert_eq!(store.read_all("t").unwrap().len(), kept + 8);
}
