//! Asset packs: JSON game data in the Hytale layout, loaded with precise errors.
//!
//! A pack folder holds `Server/` (game data) and `Common/` (client files). Under `Server/`, an
//! asset's folder is its kind (`Drops`, `Item/Items`, `TreasureHunt/Hunts`) and its file name
//! without `.json` is its id (`Server/Drops/Ancient_Vault.json` is the `Drops` asset
//! `Ancient_Vault`). Keys are PascalCase.
//!
//! Loading a kind takes two calls: [`read_kind`] reads the files of one kind folder (only that
//! folder, not its subfolders, in file name order; no folder means no assets), and
//! [`load_kind`] turns them into typed values and collects every error of every file. Each
//! file:
//!
//! 1. is parsed as strict JSON: no comments, no trailing commas, no key written twice;
//! 2. must hold an object. Its `$schema` key (which editors use to find the JSON Schema) is
//!    dropped, and so is its `Parent` key, the id of another asset of the same kind whose keys
//!    it inherits (any depth of parents; a parent that does not exist, or a cycle, is an error);
//! 3. is merged with its parents (the rule below) and read into the asset type with serde.
//!
//! **Inheritance.** The asset starts as its farthest ancestor; each file down the chain is laid
//! over it, ending with the asset's own: a key the file writes replaces the inherited value,
//! except that where both the file and what it inherits hold an object at the same key, the two
//! objects are merged by this same rule, key by key, at any depth. Arrays, strings, numbers,
//! booleans and null are replaced whole: a child that writes `"Items": [...]` gets exactly its
//! own list. `$schema` and `Parent` are never inherited.
//!
//! **Errors.** Every error is an [`AssetError`]: the file, the line and column (1-based, in
//! characters) of the key or value it is about, its JSON path and a message that says what was
//! expected:
//!
//! ```text
//! Server/Drops/Ancient_Vault.json:4:7: Container.Containers[1]: unknown key "Wieght" (did you mean "Weight"?)
//! Server/Drops/Ancient_Vault.json:3:16: Container.Containers[0].Type: unknown value "Singel" (did you mean "Single"?)
//! Server/Drops/Ancient_Vault.json:2:16: Container: missing key "Type"
//! Server/Drops/Ancient_Vault.json:9:17: Items[1].Count: invalid type: string "x", expected u32
//! Server/Drops/Ancient_Vault.json:1:13: Parent: unknown parent "Base_Vualt" (did you mean "Base_Vault"?)
//! Server/Drops/Loop_A.json:1:13: Parent: inheritance cycle: Loop_A -> Loop_B -> Loop_A
//! Server/Drops/Broken.json:3:1: invalid JSON: trailing comma
//! ```
//!
//! An error points where the designer wrote the thing: in the asset's own file if it wrote it,
//! else in the file of the ancestor it was inherited from; a missing key points at the object
//! that lacks it; an unknown key at the key. Errors inside internally tagged enums
//! (`#[serde(tag = "Type")]`) point at the exact key or value too, not at the enum's object.
//!
//! Checks serde cannot make (a reference to an asset of another kind, a range) are made on the
//! typed values afterwards; [`LoadedKind::error`] places their errors the same way:
//!
//! ```ignore
//! use veltrix_sdk::assets::{load_kind, read_kind, AssetErrors};
//!
//! let drops = load_kind::<DropTable>(&read_kind(pack, "Drops")?);
//! let mut hunts = load_kind::<Hunt>(&read_kind(pack, "TreasureHunt/Hunts")?);
//! let tables = drops.ids();
//! let mut errors = Vec::new();
//! for (id, hunt) in &hunts.assets {
//!     for (i, vault) in hunt.vaults.iter().enumerate() {
//!         if !tables.contains(&vault.loot_table.as_str()) {
//!             let hint = veltrix_sdk::did_you_mean(&vault.loot_table, &tables)
//!                 .map(|h| format!(" (did you mean {h:?}?)"))
//!                 .unwrap_or_default();
//!             let message = format!("unknown drop table {:?}{hint}", vault.loot_table);
//!             errors.push(hunts.error(id, &format!("Vaults[{i}].LootTable"), message));
//!         }
//!     }
//! }
//! errors.extend(drops.errors);
//! errors.append(&mut hunts.errors);
//! errors.sort();
//! if !errors.is_empty() {
//!     return Err(AssetErrors(errors)); // one error per line
//! }
//! ```

mod diagnose;
mod locate;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use jsonc_parser::{CollectOptions, ParseOptions};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::did_you_mean;
use locate::{LineIndex, Node, Seg, locate, parse_path, path_string};

/// The key naming the asset whose keys this one inherits.
const PARENT: &str = "Parent";
/// The key naming the JSON Schema, for editors; ignored.
const SCHEMA: &str = "$schema";

/// One asset file's text, before parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetSource {
    /// The asset's folder under `Server/`: `Drops`, `Item/Items`.
    pub kind: String,
    /// The file name without `.json`: `Ancient_Vault`.
    pub id: String,
    /// The file, as errors name it.
    pub path: PathBuf,
    pub text: String,
}

impl AssetSource {
    /// An asset from text in memory (a leading byte order mark is dropped, as [`read_kind`]
    /// does).
    pub fn from_text(
        kind: impl Into<String>,
        id: impl Into<String>,
        path: impl Into<PathBuf>,
        text: impl Into<String>,
    ) -> Self {
        let mut text = text.into();
        if text.starts_with('\u{feff}') {
            text.remove(0);
        }
        AssetSource { kind: kind.into(), id: id.into(), path: path.into(), text }
    }
}

/// Reads every `*.json` file of `pack_dir/Server/<kind>/`, in file name order. Subfolders are
/// not read; a missing folder means the kind has no assets. The error is about a file or folder
/// that cannot be read.
pub fn read_kind(pack_dir: &Path, kind: &str) -> Result<Vec<AssetSource>, AssetError> {
    let dir = pack_dir.join("Server").join(kind);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(AssetError::whole_file(&dir, format!("cannot read the folder: {e}"))),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| AssetError::whole_file(&dir, format!("cannot read the folder: {e}")))?.path();
        if path.extension().is_some_and(|ext| ext == "json") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    let mut sources = Vec::with_capacity(files.len());
    for path in files {
        let Some(id) = path.file_stem().and_then(|stem| stem.to_str()) else {
            return Err(AssetError::whole_file(&path, "the file name is not valid UTF-8"));
        };
        let text = fs::read_to_string(&path).map_err(|e| {
            let message = match e.kind() {
                io::ErrorKind::InvalidData => "cannot read: the file is not UTF-8 text".to_string(),
                _ => format!("cannot read: {e}"),
            };
            AssetError::whole_file(&path, message)
        })?;
        sources.push(AssetSource::from_text(kind, id, path.clone(), text));
    }
    Ok(sources)
}

/// An error in an asset file, at the line and column of what it is about.
///
/// Displayed as `{path}:{line}:{column}: {json_path}: {message}`, without `{json_path}: ` when
/// the error is about the whole file. Ordered by path, line and column, so a sorted list reads
/// file by file, top to bottom.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AssetError {
    pub path: PathBuf,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// `Vaults[2].LootTable`; empty for the whole file.
    pub json_path: String,
    pub message: String,
}

impl AssetError {
    fn whole_file(path: &Path, message: impl Into<String>) -> Self {
        AssetError { path: path.to_path_buf(), line: 1, column: 1, json_path: String::new(), message: message.into() }
    }
}

impl fmt::Display for AssetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.path.display(), self.line, self.column)?;
        if !self.json_path.is_empty() {
            write!(f, "{}: ", self.json_path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for AssetError {}

/// Several asset errors, displayed one per line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssetErrors(pub Vec<AssetError>);

impl fmt::Display for AssetErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for AssetErrors {}

impl From<Vec<AssetError>> for AssetErrors {
    fn from(errors: Vec<AssetError>) -> Self {
        AssetErrors(errors)
    }
}

/// The assets of one kind: those that loaded, every error found, and what it takes to place
/// later errors in the files.
#[derive(Debug)]
pub struct LoadedKind<T> {
    /// The assets that loaded, by id.
    pub assets: BTreeMap<String, T>,
    /// Every error of every file, sorted by path, line and column. Every asset that did not
    /// load has one, in its own file or in the ancestor's it inherited the fault from.
    pub errors: Vec<AssetError>,
    kind: String,
    files: BTreeMap<String, AssetFile>,
    /// Each asset's inheritance chain, itself first, when it resolved.
    chains: BTreeMap<String, Vec<String>>,
}

impl<T> LoadedKind<T> {
    /// The kind, as in the sources (`Drops`).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The id of every asset of the kind, in order, including those that did not load (a
    /// reference to a broken asset is not a reference to an unknown one).
    pub fn ids(&self) -> Vec<&str> {
        self.files.keys().map(String::as_str).collect()
    }

    /// An asset that loaded.
    pub fn get(&self, id: &str) -> Option<&T> {
        self.assets.get(id)
    }

    /// The file of an asset.
    pub fn path_of(&self, id: &str) -> Option<&Path> {
        self.files.get(id).map(|f| f.path.as_path())
    }

    /// An error about the value at `json_path` (`Vaults[2].LootTable`, empty for the whole
    /// asset) of asset `id`, placed where that value is written: in the asset's file, or in the
    /// file of the ancestor it inherited the value from. A path that is not written anywhere
    /// (a default) points at its nearest written ancestor, at worst the asset's object.
    pub fn error(&self, id: &str, json_path: &str, message: impl Into<String>) -> AssetError {
        let message = message.into();
        let Some(file) = self.files.get(id) else {
            let path = PathBuf::from(&self.kind).join(format!("{id}.json"));
            return AssetError { path, line: 1, column: 1, json_path: json_path.to_string(), message };
        };
        let own = [id.to_string()];
        let chain = self.chains.get(id).map(Vec::as_slice).unwrap_or(&own);
        let files: Vec<&AssetFile> = chain.iter().filter_map(|id| self.files.get(id)).collect();
        if files.iter().any(|f| f.tree.is_none()) {
            return file.error_at(0, json_path, message);
        }
        let trees: Vec<&Node> = files.iter().filter_map(|f| f.tree.as_ref()).collect();
        let spot = locate(&trees, &parse_path(json_path), false);
        files[spot.file].error_at(spot.offset, json_path, message)
    }
}

/// One file after parsing.
#[derive(Debug)]
struct AssetFile {
    path: PathBuf,
    lines: LineIndex,
    /// Where every key and value is written; none when the text is not JSON.
    tree: Option<Node>,
    /// The object without `$schema` and `Parent`; none when the file has an error of its own
    /// that stops it from loading (and its children from inheriting from it).
    body: Option<Map<String, Value>>,
    /// `Parent`'s value and where it is written.
    parent: Option<(String, usize)>,
}

impl AssetFile {
    fn error_at(&self, offset: usize, json_path: &str, message: impl Into<String>) -> AssetError {
        let (line, column) = self.lines.position(offset);
        AssetError { path: self.path.clone(), line, column, json_path: json_path.to_string(), message: message.into() }
    }

    /// Where `Parent`'s value is written.
    fn parent_offset(&self) -> usize {
        self.parent.as_ref().map_or(0, |(_, offset)| *offset)
    }

    /// Parses a source; the errors are those of the file alone.
    fn parse(source: &AssetSource, errors: &mut Vec<AssetError>) -> AssetFile {
        let lines = LineIndex::new(&source.text);
        let mut file = AssetFile { path: source.path.clone(), lines, tree: None, body: None, parent: None };
        // serde_json says what is wrong with the text; jsonc-parser where each value is.
        let value: Value = match serde_json::from_str(&source.text) {
            Ok(value) => value,
            Err(e) => {
                let offset = file.lines.offset_of_byte_column(e.line(), e.column());
                let message = e.to_string();
                let message = message.split(" at line ").next().unwrap_or(&message);
                errors.push(file.error_at(offset, "", format!("invalid JSON: {message}")));
                return file;
            }
        };
        let strict = ParseOptions {
            allow_comments: false,
            allow_loose_object_property_names: false,
            allow_trailing_commas: false,
            allow_missing_commas: false,
            allow_single_quoted_strings: false,
            allow_hexadecimal_numbers: false,
            allow_unary_plus_numbers: false,
            allow_bare_decimal_point_numbers: false,
            allow_non_finite_numbers: false,
            allow_extended_string_escapes: false,
        };
        let ast = match jsonc_parser::parse_to_ast(&source.text, &CollectOptions::default(), &strict) {
            Ok(result) => result.value,
            Err(e) => {
                errors.push(file.error_at(e.range().start, "", format!("invalid JSON: {}", e.kind())));
                return file;
            }
        };
        let Some(ast) = ast else {
            errors.push(file.error_at(0, "", "invalid JSON: the file holds no value"));
            return file;
        };
        let mut duplicates = Vec::new();
        let tree = Node::from_ast(&ast, &mut Vec::new(), &mut duplicates);
        let start = tree.start();
        let parent_prop = tree.get(PARENT).map(|p| p.value.start());
        file.tree = Some(tree);
        for (object, key, offset) in &duplicates {
            errors.push(file.error_at(*offset, &path_string(object), format!("duplicate key {key:?}")));
        }
        let Value::Object(mut body) = value else {
            let message = format!("expected an object at the top level, found {}", a_kind(&value));
            errors.push(file.error_at(start, "", message));
            return file;
        };
        body.remove(SCHEMA);
        match body.remove(PARENT) {
            None => {}
            Some(Value::String(parent)) => file.parent = Some((parent, parent_prop.unwrap_or(start))),
            Some(other) => {
                let message =
                    format!("expected a string, the id of another {} asset, found {}", source.kind, a_kind(&other));
                errors.push(file.error_at(parent_prop.unwrap_or(start), PARENT, message));
                return file;
            }
        }
        if duplicates.is_empty() {
            file.body = Some(body);
        }
        file
    }
}

/// "an object", "a string"...: what a value is, for messages.
fn a_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Lays `over` on `base`: objects merge key by key, anything else replaces.
fn merge(base: &mut Map<String, Value>, over: &Map<String, Value>) {
    for (key, value) in over {
        match (base.get_mut(key), value) {
            (Some(Value::Object(inner)), Value::Object(value)) => merge(inner, value),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Loads the assets of one kind (the sources' ids are unique): parses every source, resolves
/// `Parent`s, merges, reads each merged asset into `T`. Never stops at the first error: [`LoadedKind::errors`] has them all, sorted.
pub fn load_kind<T: DeserializeOwned>(sources: &[AssetSource]) -> LoadedKind<T> {
    let kind = sources.first().map(|s| s.kind.clone()).unwrap_or_default();
    let mut errors = Vec::new();
    let mut files = BTreeMap::new();
    for source in sources {
        let file = AssetFile::parse(source, &mut errors);
        files.entry(source.id.clone()).or_insert(file);
    }
    let chains = resolve_parents(&kind, &files, &mut errors);

    let mut assets = BTreeMap::new();
    for (id, chain) in &chains {
        let chain_files: Vec<&AssetFile> = chain.iter().map(|id| &files[id]).collect();
        let mut merged = Map::new();
        for file in chain_files.iter().rev() {
            merge(&mut merged, file.body.as_ref().expect("a resolved chain has only loaded files"));
        }
        let merged = Value::Object(merged);
        match diagnose::deserialize::<T>(&merged) {
            Ok(asset) => {
                assets.insert(id.clone(), asset);
            }
            Err(failure) => {
                let diagnosis = diagnose::diagnose::<T>(&merged, failure);
                let trees: Vec<&Node> = chain_files.iter().filter_map(|f| f.tree.as_ref()).collect();
                let json_path = path_string(&diagnosis.path);
                let spot = match &diagnosis.key {
                    Some(key) => {
                        let mut path = diagnosis.path.clone();
                        path.push(Seg::Key(key.clone()));
                        locate(&trees, &path, true)
                    }
                    None => locate(&trees, &diagnosis.path, false),
                };
                errors.push(chain_files[spot.file].error_at(spot.offset, &json_path, diagnosis.message));
            }
        }
    }
    // An error inherited by several assets is found once per asset, at the same place.
    errors.sort();
    errors.dedup();
    LoadedKind { assets, errors, kind, files, chains }
}

/// Each loadable asset's chain of parents, itself first. Errors: an unknown parent, a cycle
/// (at every file in it, each naming the cycle from itself), a parent that does not load.
fn resolve_parents(
    kind: &str,
    files: &BTreeMap<String, AssetFile>,
    errors: &mut Vec<AssetError>,
) -> BTreeMap<String, Vec<String>> {
    let ids: Vec<&str> = files.keys().map(String::as_str).collect();
    // Every id walked so far: its chain, or None when it does not load.
    let mut resolved: BTreeMap<&str, Option<Vec<String>>> = BTreeMap::new();
    for &start in &ids {
        // Follow the parents up from `start` until a root, a known id, a break or a cycle.
        let mut walk: Vec<&str> = Vec::new();
        let mut id = start;
        // The chain of the parent of `walk`'s last id (None: that parent does not load).
        let mut above: Option<Vec<String>> = loop {
            if let Some(known) = resolved.get(id) {
                break known.clone();
            }
            if let Some(first) = walk.iter().position(|w| *w == id) {
                let cycle = walk.split_off(first);
                for (i, member) in cycle.iter().enumerate() {
                    let names: Vec<&str> = cycle[i..].iter().chain(&cycle[..=i]).copied().collect();
                    let file = &files[*member];
                    errors.push(file.error_at(
                        file.parent_offset(),
                        PARENT,
                        format!("inheritance cycle: {}", names.join(" -> ")),
                    ));
                    resolved.insert(member, None);
                }
                break None;
            }
            walk.push(id);
            let file = &files[id];
            if file.body.is_none() {
                // The file's own errors are reported already.
                walk.pop();
                resolved.insert(id, None);
                break None;
            }
            match &file.parent {
                None => break Some(Vec::new()),
                Some((parent, offset)) if !files.contains_key(parent) => {
                    let others: Vec<&str> = ids.iter().copied().filter(|other| *other != id).collect();
                    let message = match did_you_mean(parent, &others) {
                        Some(hint) => format!("unknown parent {parent:?} (did you mean {hint:?}?)"),
                        None => format!("unknown parent {parent:?} (no {kind} asset has this id)"),
                    };
                    errors.push(file.error_at(*offset, PARENT, message));
                    walk.pop();
                    resolved.insert(id, None);
                    break None;
                }
                Some((parent, _)) => id = parent,
            }
        };
        // Back down the walk: each id is its parent's chain with itself in front.
        while let Some(id) = walk.pop() {
            let file = &files[id];
            above = match above {
                Some(mut chain) => {
                    chain.insert(0, id.to_string());
                    Some(chain)
                }
                None => {
                    let parent = file.parent.as_ref().map_or("", |(parent, _)| parent.as_str());
                    let message = format!("parent {parent:?} has errors, so nothing can be inherited from it");
                    errors.push(file.error_at(file.parent_offset(), PARENT, message));
                    None
                }
            };
            resolved.insert(id, above.clone());
        }
    }
    resolved.into_iter().filter_map(|(id, chain)| Some((id.to_string(), chain?))).collect()
}
