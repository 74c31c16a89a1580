//! The store's write-ahead log: each commit is one record appended to a segment file and made
//! durable (`fdatasync`) before the commit returns. redb takes the writes later, on the
//! applier thread ([`super::redb_store`]); a segment goes once redb holds all of it durably.
//!
//! Files: the folder beside the store file (`universe/veltrix.log/`), segments named by the
//! sequence number of their first record (`00000000000000000001.log`), a new one past
//! [`SEGMENT_BYTES`]. A record is `len: u32`, `crc32(payload): u32`, then the payload: `seq:
//! u64`, `count: u32` and each write: `table length: u16`, table, `key length: u32`, key, `0`
//! (removed) or `1` and `value length: u32`, value. Integers little-endian.
//!
//! Invariant: the segments present are always the newest ones (deleted oldest first, the
//! folder synced after each), so replaying all of them over the store file, which holds at
//! least every record before them, gives every acknowledged commit in order.

use std::{
    collections::VecDeque,
    fs::File,
    io::Write as _,
    path::{Path, PathBuf},
    sync::Arc,
};

use veltrix_sdk::Write;

/// A segment past this size is closed and the next record starts a new one.
const SEGMENT_BYTES: u64 = 4 << 20;

/// A record's head: payload length and checksum.
const HEAD: usize = 8;

/// The log folder of the store file at `store`: `veltrix.redb` -> `veltrix.log`.
pub fn dir_of(store: &Path) -> PathBuf {
    store.with_extension("log")
}

/// The log's append side: one commit at a time (the caller holds it behind a lock).
pub(super) struct Log {
    dir: PathBuf,
    /// The segments, oldest first: the sequence number of each one's first record, and its path.
    segments: VecDeque<(u64, PathBuf)>,
    /// The newest segment, open for appending; `None`: the next record starts a new one.
    file: Option<File>,
    /// How long the open segment is (what it held before a failed append is cut back to this).
    len: u64,
    next_seq: u64,
    /// The record being written; its room is kept.
    buf: Vec<u8>,
}

/// The records found in the log at start, to be applied to the store file.
pub(super) struct Recovered {
    pub records: Vec<(u64, Vec<Write>)>,
    /// Records cut short at a segment's end (a write that never returned): dropped.
    pub torn: usize,
}

impl Log {
    /// Opens the log folder (made if missing) and reads every record in it, oldest first. A
    /// record cut short at the end of a segment was never acknowledged and is dropped; one
    /// that is damaged with more after it is an error.
    pub fn open(dir: &Path) -> Result<(Self, Recovered), String> {
        let shown = dir.display();
        if !dir.is_dir() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{shown}: cannot make the store's log folder: {e}"))?;
            sync_dir(dir.parent().unwrap_or(Path::new(".")))
                .map_err(|e| format!("{shown}: cannot make the store's log folder: {e}"))?;
        }
        let mut segments = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| format!("{shown}: cannot read the store's log: {e}"))? {
            let path = entry.map_err(|e| format!("{shown}: cannot read the store's log: {e}"))?.path();
            let first = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".log"))
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| {
                    format!(
                        "{}: not a segment of the store's log (only the server writes in {shown}): move it away",
                        path.display()
                    )
                })?;
            segments.push((first, path));
        }
        segments.sort();
        let mut recovered = Recovered { records: Vec::new(), torn: 0 };
        for (_, path) in &segments {
            let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
            read_segment(&bytes, &mut recovered).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        let next_seq = recovered
            .records
            .last()
            .map(|(seq, _)| *seq)
            .into_iter()
            .chain(segments.last().map(|(first, _)| *first))
            .max()
            .map_or(1, |seq| seq + 1);
        let log =
            Self { dir: dir.to_path_buf(), segments: segments.into(), file: None, len: 0, next_seq, buf: Vec::new() };
        Ok((log, recovered))
    }

    /// Appends `writes` as one record and makes it durable; returns its sequence number. On an
    /// error the segment is cut back to what it held, so nothing of a failed commit stays.
    pub fn append(&mut self, writes: &[Write]) -> std::io::Result<u64> {
        let seq = self.next_seq;
        // Taken whether or not it works: a record cut back may not be gone from the disk.
        self.next_seq += 1;
        encode(&mut self.buf, seq, writes);
        if self.file.is_none() {
            self.start_segment(seq)?;
        }
        let file = self.file.as_mut().expect("just opened");
        let written = file.write_all(&self.buf).and_then(|()| file.sync_data());
        if let Err(e) = written {
            if file.set_len(self.len).and_then(|()| file.sync_data()).is_err() {
                // Whatever is there stays at the end of this segment; the next record starts
                // another. Replay drops a record cut short, and a whole one is writes the
                // caller still holds and commits again.
                self.file = None;
            }
            return Err(e);
        }
        self.len += self.buf.len() as u64;
        if self.len >= SEGMENT_BYTES {
            self.file = None;
        }
        Ok(seq)
    }

    fn start_segment(&mut self, seq: u64) -> std::io::Result<()> {
        let path = self.dir.join(format!("{seq:020}.log"));
        let file = File::options().append(true).create_new(true).open(&path)?;
        // The file's name must be on disk before a record in it is acknowledged.
        sync_dir(&self.dir)?;
        self.segments.push_back((seq, path));
        self.file = Some(file);
        self.len = 0;
        Ok(())
    }

    /// The store file holds every record up to `seq` durably: the segments wholly at or
    /// before it go, oldest first, the folder synced after each (see the module's invariant).
    pub fn applied(&mut self, seq: u64) -> std::io::Result<()> {
        let done = self.take_applied(seq);
        delete_segments(&self.dir, done).map_err(|(e, left)| {
            self.give_back(left);
            e
        })
    }

    /// The segments wholly at or before `seq`, taken off the log, oldest first: for
    /// [`delete_segments`], which may run without the log (the applier deletes them while
    /// commits append, not holding up a commit for the deletions' folder syncs). Only those
    /// deletions take segments away, so they go oldest first still.
    pub fn take_applied(&mut self, seq: u64) -> Vec<(u64, PathBuf)> {
        let mut done = Vec::new();
        while self.segments.len() > 1 || (self.file.is_none() && !self.segments.is_empty()) {
            // A segment ends where the next begins; the last closed one ends before next_seq.
            let end = self.segments.get(1).map_or(self.next_seq, |(first, _)| *first);
            if end > seq + 1 {
                break;
            }
            done.push(self.segments.pop_front().expect("checked"));
        }
        done
    }

    /// Segments [`delete_segments`] could not delete: the log's oldest again, so that none
    /// newer goes before them.
    pub fn give_back(&mut self, left: Vec<(u64, PathBuf)>) {
        for segment in left.into_iter().rev() {
            self.segments.push_front(segment);
        }
    }

    /// Every record is in the store file: the log goes, folder and all.
    pub fn remove(mut self) -> std::io::Result<()> {
        self.file = None;
        for (_, path) in self.segments.drain(..) {
            std::fs::remove_file(&path)?;
        }
        std::fs::remove_dir(&self.dir)?;
        sync_dir(self.dir.parent().unwrap_or(Path::new(".")))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Deletes the log's segments `done` ([`Log::take_applied`]) from its folder `dir`, oldest
/// first, the folder synced after each. On an error, those not deleted, for [`Log::give_back`].
pub(super) fn delete_segments(
    dir: &Path,
    done: Vec<(u64, PathBuf)>,
) -> Result<(), (std::io::Error, Vec<(u64, PathBuf)>)> {
    let mut done = done.into_iter();
    while let Some((first, path)) = done.next() {
        let removed = match std::fs::remove_file(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            removed => removed,
        };
        if let Err(e) = removed.and_then(|()| sync_dir(dir)) {
            // Removed but not synced: given back all the same (a removal is tried again, and
            // one that finds the file gone is done).
            let left = std::iter::once((first, path)).chain(done).collect();
            return Err((e, left));
        }
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `writes` as one record, into `buf` (cleared first).
fn encode(buf: &mut Vec<u8>, seq: u64, writes: &[Write]) {
    buf.clear();
    buf.extend_from_slice(&[0; HEAD]);
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(&(writes.len() as u32).to_le_bytes());
    for w in writes {
        buf.extend_from_slice(&(w.table.len() as u16).to_le_bytes());
        buf.extend_from_slice(w.table.as_bytes());
        buf.extend_from_slice(&(w.key.len() as u32).to_le_bytes());
        buf.extend_from_slice(&w.key);
        match &w.value {
            None => buf.push(0),
            Some(v) => {
                buf.push(1);
                buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
                buf.extend_from_slice(v);
            }
        }
    }
    let payload = (buf.len() - HEAD) as u32;
    let crc = crc32fast::hash(&buf[HEAD..]);
    buf[..4].copy_from_slice(&payload.to_le_bytes());
    buf[4..HEAD].copy_from_slice(&crc.to_le_bytes());
}

/// The records of one segment, added to `out`.
fn read_segment(bytes: &[u8], out: &mut Recovered) -> Result<(), String> {
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let whole = rest.len() >= HEAD && {
            let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
            rest.len() - HEAD >= len
        };
        if !whole {
            out.torn += 1;
            return Ok(());
        }
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(rest[4..HEAD].try_into().expect("4 bytes"));
        let payload = &rest[HEAD..HEAD + len];
        let end = at + HEAD + len;
        if crc32fast::hash(payload) != crc {
            if end == bytes.len() {
                // The last record, written in part when the server stopped.
                out.torn += 1;
                return Ok(());
            }
            return Err(damaged(at, "its checksum does not match"));
        }
        let record = decode(payload).ok_or_else(|| damaged(at, "it does not decode"))?;
        out.records.push(record);
        at = end;
    }
    Ok(())
}

fn damaged(at: usize, why: &str) -> String {
    format!(
        "the store's log is damaged at byte {at} ({why}) with more records after it: stop the server and \
         keep the folder as it is; to start from the store file alone, move the log folder away (the commits \
         in it are then lost), or restore the last backup (see \"When something goes wrong\" in docs/storage.md)"
    )
}

/// One record's payload; `None` when it is not one the server wrote.
fn decode(mut p: &[u8]) -> Option<(u64, Vec<Write>)> {
    fn take<'a>(p: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = p.split_at_checked(n)?;
        *p = rest;
        Some(head)
    }
    fn int<const N: usize>(p: &mut &[u8]) -> Option<[u8; N]> {
        take(p, N)?.try_into().ok()
    }
    let seq = u64::from_le_bytes(int(&mut p)?);
    let count = u32::from_le_bytes(int(&mut p)?) as usize;
    let mut writes = Vec::with_capacity(count.min(p.len()));
    let mut tables: Vec<Arc<str>> = Vec::new();
    for _ in 0..count {
        let len = u16::from_le_bytes(int(&mut p)?) as usize;
        let name = std::str::from_utf8(take(&mut p, len)?).ok()?;
        // A record's writes name a few tables many times: one Arc each.
        let table = match tables.iter().find(|t| &***t == name) {
            Some(t) => Arc::clone(t),
            None => {
                tables.push(Arc::from(name));
                Arc::clone(tables.last().expect("pushed"))
            }
        };
        let len = u32::from_le_bytes(int(&mut p)?) as usize;
        let key = take(&mut p, len)?.to_vec();
        let value = match take(&mut p, 1)?[0] {
            0 => None,
            1 => {
                let len = u32::from_le_bytes(int(&mut p)?) as usize;
                Some(take(&mut p, len)?.to_vec())
            }
            _ => return None,
        };
        writes.push(Write { table, key, value });
    }
    p.is_empty().then_some((seq, writes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &[u8], value: &[u8]) -> Write {
        Write { table: Arc::from("t"), key: key.to_vec(), value: Some(value.to_vec()) }
    }

    #[test]
    fn records_read_back_as_written_and_a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let log_dir = dir.path().join("x.log");
        let writes = vec![put(b"a", b"1"), Write { table: Arc::from("u"), key: b"b".to_vec(), value: None }];
        {
            let (mut log, found) = Log::open(&log_dir).unwrap();
            assert!(found.records.is_empty());
            assert_eq!(log.append(&writes).unwrap(), 1);
            assert_eq!(log.append(&[put(b"c", b"3")]).unwrap(), 2);
        }
        let segment = log_dir.join(format!("{:020}.log", 1));
        let whole = std::fs::read(&segment).unwrap();
        // A third record, cut short as by a crash in its write.
        let mut buf = Vec::new();
        encode(&mut buf, 3, &[put(b"d", b"4")]);
        std::fs::write(&segment, [&whole[..], &buf[..buf.len() - 3]].concat()).unwrap();
        let (mut log, found) = Log::open(&log_dir).unwrap();
        assert_eq!(found.records, vec![(1, writes.clone()), (2, vec![put(b"c", b"3")])]);
        assert_eq!(found.torn, 1);
        assert_eq!(log.append(&[put(b"e", b"5")]).unwrap(), 3, "numbering goes on");

        // Damage before the end, with records after it: refused, saying what to do.
        let mut damaged = whole.clone();
        damaged[HEAD + 2] ^= 0xff;
        std::fs::write(&segment, damaged).unwrap();
        let err = Log::open(&log_dir).err().expect("refused");
        assert!(err.contains("damaged at byte 0") && err.contains("move the log folder away"), "{err}");
    }

    #[test]
    fn segments_go_oldest_first_once_applied() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = Log::open(&dir.path().join("x.log")).unwrap();
        let big = put(b"k", &vec![7; SEGMENT_BYTES as usize]);
        log.append(std::slice::from_ref(&big)).unwrap(); // 1: fills its segment
        log.append(&[put(b"a", b"1")]).unwrap(); // 2: a new segment
        log.append(&[put(b"b", b"2")]).unwrap(); // 3
        assert_eq!(log.segments.len(), 2);
        log.applied(1).unwrap();
        assert_eq!(log.segments.len(), 1, "the first segment held record 1 alone");
        log.applied(2).unwrap();
        assert_eq!(log.segments.len(), 1, "the open segment stays while it holds record 3");
        log.remove().unwrap();
        assert!(!dir.path().join("x.log").exists());
    }

    /// Segments taken for deletion and not deleted (a failed removal) are the oldest again,
    /// and go before any newer one; a segment already gone counts as deleted.
    #[test]
    fn segments_not_deleted_go_first_again() {
        let dir = tempfile::tempdir().unwrap();
        let log_dir = dir.path().join("x.log");
        let (mut log, _) = Log::open(&log_dir).unwrap();
        let big = put(b"k", &vec![7; SEGMENT_BYTES as usize]);
        for _ in 0..3 {
            log.append(std::slice::from_ref(&big)).unwrap(); // each fills its segment
        }
        let done = log.take_applied(3);
        assert_eq!(done.iter().map(|(first, _)| *first).collect::<Vec<_>>(), [1, 2, 3]);
        // The first is gone already; the second cannot go (a folder in its place).
        std::fs::remove_file(&done[0].1).unwrap();
        std::fs::remove_file(&done[1].1).unwrap();
        std::fs::create_dir(&done[1].1).unwrap();
        std::fs::write(done[1].1.join("x"), b"x").unwrap();
        let (_, left) = delete_segments(&log_dir, done).expect_err("the second cannot go");
        assert_eq!(left.iter().map(|(first, _)| *first).collect::<Vec<_>>(), [2, 3]);
        assert!(left[1].1.exists(), "none after the one that failed goes");
        log.give_back(left);
        assert_eq!(log.segments.iter().map(|(first, _)| *first).collect::<Vec<_>>(), [2, 3]);
        std::fs::remove_dir_all(log_dir.join(format!("{:020}.log", 2))).unwrap();
        log.applied(3).unwrap();
        assert!(log.segments.is_empty());
        assert!(!log_dir.join(format!("{:020}.log", 3)).exists());
    }
}
