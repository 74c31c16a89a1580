//! `veltrix-server export` and `import`: a whole store to and from JSON Lines (docs/storage.md).

use std::{collections::BTreeMap, io::BufRead, path::Path, sync::Arc};

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use serde::{Deserialize, Serialize, de::IgnoredAny};
use veltrix_sdk::{Storage, Write, rmp_serde};

/// The `Format` of an export's header line.
pub const EXPORT_FORMAT: &str = "veltrix-store";
/// The `Version` of the export format this server writes and reads.
pub const EXPORT_VERSION: u32 = 1;

/// How much an export or import moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub tables: usize,
    pub records: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        write!(f, "{} table{}, {} record{}", self.tables, plural(self.tables), self.records, plural(self.records))
    }
}

/// What [`import`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Imported {
    /// What the file held, now in the store.
    pub imported: Summary,
    /// What the store held before and was cleared (`replace` only).
    pub replaced: Summary,
}

/// The first line of an export.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct Header {
    format: String,
    version: u32,
    tables: usize,
    records: usize,
}

/// A record line as written: `KeyJson`/`ValueJson` only when the bytes are MessagePack that
/// JSON can show.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RecordOut<'a> {
    table: &'a str,
    key: String,
    value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_json: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_json: Option<serde_json::Value>,
}

/// A record line as read: only `Table`, `Key` and `Value` count; the JSON views are for people
/// and are ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordIn {
    #[serde(rename = "Table")]
    table: String,
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Value")]
    value: String,
    #[serde(rename = "KeyJson", default)]
    _key_json: Option<IgnoredAny>,
    #[serde(rename = "ValueJson", default)]
    _value_json: Option<IgnoredAny>,
}

/// `bytes` as JSON, when they are exactly one MessagePack value that JSON can hold (string map
/// keys, no binary).
pub(super) fn msgpack_as_json(bytes: &[u8]) -> Option<serde_json::Value> {
    let mut de = rmp_serde::Deserializer::new(std::io::Cursor::new(bytes));
    let value = serde_json::Value::deserialize(&mut de).ok()?;
    (de.position() == bytes.len() as u64).then_some(value)
}

/// Writes every table of `store` to `out`: a header line, then one line per record, tables and
/// keys in byte order, so the same store always gives the same bytes. The format is in
/// docs/storage.md.
pub fn export(store: &dyn Storage, mut out: impl std::io::Write) -> Result<Summary, String> {
    let mut tables = Vec::new();
    let mut summary = Summary::default();
    for name in store.tables().map_err(|e| e.to_string())? {
        let mut records = store.read_all(&name).map_err(|e| e.to_string())?;
        if records.is_empty() {
            continue;
        }
        records.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        summary.tables += 1;
        summary.records += records.len();
        tables.push((name, records));
    }
    tables.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let write_error = |e: std::io::Error| format!("cannot write the export: {e}");
    let header = Header {
        format: EXPORT_FORMAT.into(),
        version: EXPORT_VERSION,
        tables: summary.tables,
        records: summary.records,
    };
    serde_json::to_writer(&mut out, &header).map_err(|e| format!("cannot write the export: {e}"))?;
    out.write_all(b"\n").map_err(write_error)?;
    for (name, records) in &tables {
        for (key, value) in records {
            let line = RecordOut {
                table: name,
                key: BASE64.encode(key),
                value: BASE64.encode(value),
                key_json: msgpack_as_json(key),
                value_json: msgpack_as_json(value),
            };
            serde_json::to_writer(&mut out, &line).map_err(|e| format!("cannot write the export: {e}"))?;
            out.write_all(b"\n").map_err(write_error)?;
        }
    }
    out.flush().map_err(write_error)?;
    Ok(summary)
}

/// [`export`] into the file `path`, by way of `<path>.partial` renamed when complete and on
/// disk: a failed export leaves an earlier file of that name as it was.
pub fn export_to_file(store: &dyn Storage, path: &Path) -> Result<Summary, String> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    let result = (|| {
        let file = std::fs::File::create(&partial).map_err(|e| format!("{}: cannot create: {e}", partial.display()))?;
        let mut out = std::io::BufWriter::new(file);
        let summary = export(store, &mut out).map_err(|e| format!("{}: {e}", partial.display()))?;
        let file = out.into_inner().map_err(|e| format!("{}: cannot write: {}", partial.display(), e.error()))?;
        file.sync_all().map_err(|e| format!("{}: cannot write: {e}", partial.display()))?;
        std::fs::rename(&partial, path)
            .map_err(|e| format!("{}: cannot rename to {}: {e}", partial.display(), path.display()))?;
        Ok(summary)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// A serde_json error without its "at line 1 column N" (each line is parsed on its own; the
/// caller names the line).
fn json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let location = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&location) {
        Some(message) => format!("column {}: {message}", e.column()),
        None => text,
    }
}

const HEADER_SHAPE: &str = r#"the header {"Format": "veltrix-store", "Version": 1, "Tables": N, "Records": N}"#;
const RECORD_SHAPE: &str = r#"a record {"Table": name, "Key": base64, "Value": base64}"#;

/// An imported table: key, then value and the line it came from.
type ImportedTable = BTreeMap<Vec<u8>, (Vec<u8>, usize)>;

/// Reads an export (see [`export`]) and writes it into `store` in one commit: all or nothing.
///
/// A store that already holds any table is refused unless `replace` is set, in which case its
/// tables are cleared in that same commit. The whole file is read and checked before anything
/// is written: its header (format, version, counts), every line (the error names its line
/// number and what was expected) and that no key appears twice in a table.
pub fn import(store: &dyn Storage, input: impl BufRead, replace: bool) -> Result<Imported, String> {
    let existing = store.tables().map_err(|e| e.to_string())?;
    if !existing.is_empty() && !replace {
        return Err(format!(
            "the store is not empty (it holds {}: {}); nothing was imported: import into an empty store, or give \
             --replace to clear it first",
            if existing.len() == 1 { "1 table".to_string() } else { format!("{} tables", existing.len()) },
            existing.join(", ")
        ));
    }
    let export = read_export(input)?;
    let (mut writes, replaced) = clearing_writes(store, &existing)?;
    let imported = Summary { tables: export.header.tables, records: export.header.records };
    for (name, records) in export.tables {
        let table: Arc<str> = Arc::from(name);
        writes.extend(records.into_iter().map(|(key, (value, _))| Write {
            table: Arc::clone(&table),
            key,
            value: Some(value),
        }));
    }
    store.commit(&writes).map_err(|e| format!("nothing was imported: {e}"))?;
    Ok(Imported { imported, replaced })
}

/// An export read whole and checked, not written anywhere yet.
struct ReadExport {
    header: Header,
    tables: BTreeMap<String, ImportedTable>,
}

/// Reads every line of an export: the header first, then the records, each checked as it
/// comes (see [`read_record`]); then the counts against the header's.
fn read_export(input: impl BufRead) -> Result<ReadExport, String> {
    let mut header: Option<Header> = None;
    let mut tables: BTreeMap<String, ImportedTable> = BTreeMap::new();
    let mut records = 0;
    let mut last_line = 0;
    for (index, line) in input.split(b'\n').enumerate() {
        let number = index + 1;
        last_line = number;
        let line = line.map_err(|e| format!("line {number}: cannot read: {e}"))?;
        let line = std::str::from_utf8(&line).map_err(|e| format!("line {number}: not UTF-8 text: {e}"))?;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let Some(header) = &header else {
            header = Some(parse_header(line).map_err(|e| format!("line {number}: {e}"))?);
            continue;
        };
        let (name, key, value) = read_record(line, number)?;
        records += 1;
        if records > header.records {
            return Err(format!(
                "line {number}: the header announced {} records, this is record {records}",
                header.records
            ));
        }
        let table = tables.entry(name.clone()).or_default();
        if let Some((_, first)) = table.get(&key) {
            return Err(format!("line {number}: table {name}: this Key was already given on line {first}"));
        }
        table.insert(key, (value, number));
    }
    let Some(header) = header else {
        return Err(format!("line 1: expected {HEADER_SHAPE}: the file is empty"));
    };
    let announced = Summary { tables: header.tables, records: header.records };
    let found = Summary { tables: tables.len(), records };
    if found.records < announced.records {
        return Err(format!(
            "line {}: the file ends early: the header announced {announced}, the file holds {found} (a truncated copy?)",
            last_line + 1
        ));
    }
    if found.tables != announced.tables {
        return Err(format!("line 1: the header announced {announced}, the records are {found}"));
    }
    Ok(ReadExport { header, tables })
}

/// One record line, line `number`: its table, key and value.
fn read_record(line: &str, number: usize) -> Result<(String, Vec<u8>, Vec<u8>), String> {
    let record: RecordIn = serde_json::from_str(line)
        .map_err(|e| format!("line {number}: expected {RECORD_SHAPE}: {}", json_error(&e)))?;
    if record.table.is_empty() {
        return Err(format!("line {number}: expected {RECORD_SHAPE}: the Table name is empty"));
    }
    let key = BASE64
        .decode(&record.key)
        .map_err(|e| format!("line {number}: table {}: the Key is not base64: {e}", record.table))?;
    let value = BASE64
        .decode(&record.value)
        .map_err(|e| format!("line {number}: table {}: the Value is not base64: {e}", record.table))?;
    Ok((record.table, key, value))
}

/// The writes that clear the tables `existing` of `store` (an import with `replace`), and what
/// they held.
fn clearing_writes(store: &dyn Storage, existing: &[String]) -> Result<(Vec<Write>, Summary), String> {
    let mut writes = Vec::new();
    let mut replaced = Summary::default();
    for name in existing {
        let table: Arc<str> = Arc::from(name.as_str());
        let old = store.read_all(name).map_err(|e| e.to_string())?;
        replaced.tables += usize::from(!old.is_empty());
        replaced.records += old.len();
        writes.extend(old.into_iter().map(|(key, _)| Write { table: Arc::clone(&table), key, value: None }));
    }
    Ok((writes, replaced))
}

/// The header line: its format and version checked first (a later version may have other
/// fields), then its shape.
fn parse_header(line: &str) -> Result<Header, String> {
    let fields: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(line).map_err(|e| format!("expected {HEADER_SHAPE}: {}", json_error(&e)))?;
    match fields.get("Format") {
        Some(serde_json::Value::String(f)) if f == EXPORT_FORMAT => {}
        Some(other) => {
            return Err(format!("not a Veltrix store export: Format is {other}, expected \"{EXPORT_FORMAT}\""));
        }
        None => return Err(format!("expected {HEADER_SHAPE}: missing field `Format`")),
    }
    match fields.get("Version") {
        Some(v) if v.as_u64() == Some(u64::from(EXPORT_VERSION)) => {}
        Some(other) => {
            return Err(format!(
                "export format version {other} is not supported: this server reads version {EXPORT_VERSION}"
            ));
        }
        None => return Err(format!("expected {HEADER_SHAPE}: missing field `Version`")),
    }
    serde_json::from_value(serde_json::Value::Object(fields))
        .map_err(|e| format!("expected {HEADER_SHAPE}: {}", json_error(&e)))
}
