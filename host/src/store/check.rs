//! `veltrix-server check`: redb's integrity check and every record read, on a copy of the
//! store file and its log.

use std::path::Path;

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use serde::{Deserialize, de::IgnoredAny};
use veltrix_sdk::{Storage, rmp_serde};

use super::{
    log,
    redb_store::{DAMAGED_ADVICE, DEFAULT_CACHE_BYTES, RedbStore},
    transfer::{Summary, msgpack_as_json},
};

/// What [`check`] found in a store.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// What was read.
    pub summary: Summary,
    /// Each problem on a line of its own: what is wrong, and where.
    pub problems: Vec<String>,
}

/// Checks the store file at `path` without changing it, on a copy in the temporary folder
/// (redb repairs what it opens and checks): redb's own integrity check (page checksums and
/// structure), then that every record of every table reads, its key and value each exactly one
/// MessagePack value (what the server writes). A record can still be wrong for its owner (a
/// field missing): the owner says so when it reads it.
pub fn check(path: &Path) -> Result<CheckReport, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: cannot open: {e}", path.display()))?;
    // The server holds the file locked (redb's lock): refused while it runs, and the file stays
    // as it is while it is copied.
    file.try_lock_shared().map_err(|_| {
        format!("{}: cannot check the store: it is in use (is another server running in this folder?)", path.display())
    })?;
    // One name per check: two checks in one process (tests) must not share a copy.
    static CHECKS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = CHECKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let copy = std::env::temp_dir().join(format!("veltrix-check-{}-{n}.redb", std::process::id()));
    let copied = copy_with_log(path, &copy);
    drop(file);
    let report = copied.and_then(|()| check_copy(&copy, path));
    let _ = std::fs::remove_file(&copy);
    let _ = std::fs::remove_dir_all(log::dir_of(&copy));
    report
}

/// The store file and its log (commits a server stopped before the file took them, applied
/// when the copy opens) copied to `copy`.
fn copy_with_log(path: &Path, copy: &Path) -> Result<(), String> {
    std::fs::copy(path, copy).map_err(|e| format!("{}: cannot copy it to {}: {e}", path.display(), copy.display()))?;
    let (from, to) = (log::dir_of(path), log::dir_of(copy));
    let _ = std::fs::remove_dir_all(&to);
    let Ok(segments) = std::fs::read_dir(&from) else { return Ok(()) };
    std::fs::create_dir_all(&to).map_err(|e| format!("{}: cannot make it: {e}", to.display()))?;
    for segment in segments {
        let segment = segment.map_err(|e| format!("{}: cannot read it: {e}", from.display()))?.path();
        let target = to.join(segment.file_name().expect("a file in the folder"));
        std::fs::copy(&segment, &target)
            .map_err(|e| format!("{}: cannot copy it to {}: {e}", segment.display(), target.display()))?;
    }
    Ok(())
}

/// [`check`] of `copy`, a copy of `original`.
fn check_copy(copy: &Path, original: &Path) -> Result<CheckReport, String> {
    let store = RedbStore::open_as(copy, original, DEFAULT_CACHE_BYTES)?;
    let mut report = CheckReport::default();
    let integrity = {
        let mut db = store.database().write();
        let db = db.as_mut().expect("just opened");
        crate::panics::catch(|| db.check_integrity())
    };
    match integrity {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => report
            .problems
            .push("redb's integrity check failed: the file's structure or checksums are damaged".to_string()),
        Ok(Err(e)) => report.problems.push(format!("redb's integrity check failed: {e}")),
        Err(panic) => report.problems.push(format!("redb's integrity check failed: redb panicked: {panic}")),
    }
    let tables = store.tables().map_err(|e| format!("cannot list the tables: {e}: {DAMAGED_ADVICE}"))?;
    for name in tables {
        let records = match store.read_all(&name) {
            Ok(records) => records,
            Err(e) => {
                report.problems.push(format!("table {name}: cannot be read: {e}"));
                continue;
            }
        };
        report.summary.tables += 1;
        report.summary.records += records.len();
        for (key, value) in &records {
            let shown = || match msgpack_as_json(key) {
                Some(json) => format!("key {json} (base64 {})", BASE64.encode(key)),
                None => format!("key (base64) {}", BASE64.encode(key)),
            };
            for (what, bytes) in [("key", key), ("value", value)] {
                if let Err(e) = one_msgpack_value(bytes) {
                    report.problems.push(format!("table {name}: {}: the {what} does not decode: {e}", shown()));
                }
            }
        }
    }
    Ok(report)
}

/// Whether `bytes` are exactly one MessagePack value.
fn one_msgpack_value(bytes: &[u8]) -> Result<(), String> {
    let mut de = rmp_serde::Deserializer::new(std::io::Cursor::new(bytes));
    IgnoredAny::deserialize(&mut de).map_err(|e| format!("not MessagePack ({e})"))?;
    match bytes.len() as u64 - de.position() {
        0 => Ok(()),
        more => Err(format!("{more} byte(s) after its MessagePack value")),
    }
}
