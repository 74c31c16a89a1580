//! The mod loader: finds mod folders, checks manifests, orders mods by their dependencies,
//! opens their libraries and drives their lifecycle.
//!
//! Every failure disables the one mod (and the mods that require it) with one log line naming
//! the mod, the file and the reason; the server goes on with the others unless the owner set
//! `FailOnModError`.

mod library;
mod lifecycle;
pub mod manifest;
mod order;

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt, fs,
    path::{Path, PathBuf},
};

use semver::Version;
use veltrix_sdk::Mod;

pub use library::fingerprint_diff;
pub use lifecycle::ActiveMods;
pub use manifest::Manifest;

use crate::config::ServerConfig;

/// A mod that could not be loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModFailure {
    /// `Group:Name`, or the folder name when the manifest could not tell.
    pub name: String,
    /// The file at fault.
    pub file: PathBuf,
    pub reason: String,
}

impl fmt::Display for ModFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mod {} DISABLED: {}: {}", self.name, self.file.display(), self.reason)
    }
}

/// A mod whose library opened and whose header matched.
pub struct ModInstance {
    pub manifest: Manifest,
    /// The folder it was loaded from.
    pub dir: PathBuf,
    /// Its data folder, `mods/<Group>_<Name>/` under the server root; created by the loader.
    pub data_dir: PathBuf,
    pub instance: Box<dyn Mod>,
}

/// What loading produced: the mods in load order, and the failures.
#[derive(Default)]
pub struct LoadReport {
    pub loaded: Vec<ModInstance>,
    pub failures: Vec<ModFailure>,
}

/// A mod folder whose manifest parsed.
struct Candidate {
    manifest: Manifest,
    dir: PathBuf,
}

impl Candidate {
    fn fail(&self, file: &Path, reason: impl Into<String>) -> ModFailure {
        ModFailure { name: self.manifest.id.to_string(), file: file.to_path_buf(), reason: reason.into() }
    }

    fn manifest_path(&self) -> PathBuf {
        self.dir.join("manifest.json")
    }
}

/// Everything the loader needs to know about the server.
pub struct LoaderSettings<'a> {
    /// The folders to scan, in order: the server's `mods/` first, then each `--mods DIR`.
    pub dirs: &'a [PathBuf],
    /// Where data folders go: the server's `mods/`.
    pub data_root: &'a Path,
    /// Create each opened mod's data folder (not when only validating: that writes nothing).
    pub create_data_dirs: bool,
    pub config: &'a ServerConfig,
    pub host_version: &'a Version,
}

/// Finds, checks, orders and opens every mod. Never panics on a bad mod.
pub fn load_all(settings: &LoaderSettings) -> LoadReport {
    let mut report = LoadReport::default();
    let candidates = discover(settings.dirs, &mut report.failures);
    let candidates = drop_duplicates(candidates, &mut report.failures);
    let candidates: Vec<Candidate> = candidates
        .into_iter()
        .filter(|c| enabled(c, settings.config))
        .filter(|c| fits_server(c, settings.host_version, &mut report.failures))
        .collect();
    let ordered = order::resolve(candidates, &mut report.failures);

    let mut opened: BTreeSet<String> = BTreeSet::new();
    let mut libraries: Vec<OpenedLibrary> = Vec::new();
    for c in ordered {
        match open_mod(c, settings, &opened, &libraries) {
            Ok((instance, library)) => {
                opened.insert(library.id.clone());
                libraries.push(library);
                report.loaded.push(instance);
            }
            Err(failure) => report.failures.push(failure),
        }
    }
    report
}

/// Whether the config (its `Mods` map, else the manifest's `DisabledByDefault`) lets the mod
/// load; says so when it does not.
fn enabled(c: &Candidate, config: &ServerConfig) -> bool {
    let id = c.manifest.id.to_string();
    let enabled = config.mod_enabled(&id).unwrap_or(!c.manifest.disabled_by_default);
    if !enabled {
        let why = if config.mod_enabled(&id) == Some(false) { "the config's Mods map" } else { "DisabledByDefault" };
        tracing::info!("mod {id} not loaded: disabled by {why}");
    }
    enabled
}

/// Whether the mod's `ServerVersion` range holds this server's version; a failure when not.
fn fits_server(c: &Candidate, host_version: &Version, failures: &mut Vec<ModFailure>) -> bool {
    let ok = c.manifest.server_version.matches(host_version);
    if !ok {
        failures.push(c.fail(
            &c.manifest_path(),
            format!("needs server version {}, this server is {host_version}", c.manifest.server_version),
        ));
    }
    ok
}

/// Opens one mod, in load order: its dependencies opened (`opened`), its library there, checked
/// and not the same file as one of `libraries`, opened, its data folder made.
fn open_mod(
    c: Candidate,
    settings: &LoaderSettings,
    opened: &BTreeSet<String>,
    libraries: &[OpenedLibrary],
) -> Result<(ModInstance, OpenedLibrary), ModFailure> {
    if let Some(reason) = c.manifest.failed_dependency(opened) {
        return Err(c.fail(&c.manifest_path(), reason));
    }
    let library = c.dir.join(&c.manifest.main);
    if !library.is_file() {
        return Err(c.fail(&c.manifest_path(), format!("`Main` names {}, which does not exist", library.display())));
    }
    let bytes = library::read_checked(&library).map_err(|reason| c.fail(&library, reason))?;
    if let Some(first) = libraries.iter().find(|l| l.holds(&bytes)) {
        return Err(c.fail(
            &library,
            format!(
                "the same library as mod {}, already loaded from {}: a second copy would share its state and \
                 handle every event twice; remove one of the two folders",
                first.id,
                first.dir.display()
            ),
        ));
    }
    let instance = library::open(&library).map_err(|reason| c.fail(&library, reason))?;
    let data_dir = settings.data_root.join(c.manifest.id.folder_name());
    if settings.create_data_dirs
        && let Err(e) = fs::create_dir_all(&data_dir)
    {
        return Err(c.fail(&data_dir, format!("cannot create the mod's data folder: {e}")));
    }
    let id = c.manifest.id.to_string();
    let opened = OpenedLibrary { id, dir: c.dir.clone(), path: library, len: bytes.len() };
    Ok((ModInstance { manifest: c.manifest, dir: c.dir, data_dir, instance }, opened))
}

/// A library opened for a mod: a copy of the same file under another mod name (only `Name`
/// changed in the manifest) would register the same types, share their resources and store
/// tables, and run every system twice.
struct OpenedLibrary {
    id: String,
    dir: PathBuf,
    path: PathBuf,
    len: usize,
}

impl OpenedLibrary {
    /// Whether `bytes` are this library's content. Files are compared only when their lengths
    /// match, so a start reads each library once and a copy twice.
    fn holds(&self, bytes: &[u8]) -> bool {
        self.len == bytes.len() && fs::read(&self.path).is_ok_and(|ours| ours == bytes)
    }
}

/// Reads every folder's manifest. Folders are visited in name order, for a stable result.
fn discover(dirs: &[PathBuf], failures: &mut Vec<ModFailure>) -> Vec<Candidate> {
    let mut candidates = Vec::new();
    let mut without_manifest = Vec::new();
    for dir in dirs {
        let mut entries: Vec<PathBuf> = match fs::read_dir(dir) {
            Ok(entries) => entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect(),
            Err(e) => {
                failures.push(ModFailure {
                    name: "(mods folder)".into(),
                    file: dir.clone(),
                    reason: format!("cannot read the folder: {e}"),
                });
                continue;
            }
        };
        entries.sort();
        for folder in entries {
            let folder_name = folder.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if folder_name.starts_with('.') {
                continue;
            }
            let path = folder.join("manifest.json");
            let text = match fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    without_manifest.push((folder_name, path));
                    continue;
                }
                Err(e) => {
                    failures.push(ModFailure { name: folder_name, file: path, reason: format!("cannot read: {e}") });
                    continue;
                }
            };
            match manifest::parse(&text) {
                Ok(parsed) => {
                    for warning in parsed.warnings {
                        tracing::warn!("mod {}: {}: {warning}", parsed.manifest.id, path.display());
                    }
                    candidates.push(Candidate { manifest: parsed.manifest, dir: folder });
                }
                Err(reason) => failures.push(ModFailure { name: folder_name, file: path, reason }),
            }
        }
    }
    // A folder without a manifest is fine when it is some mod's data folder.
    let data_folders: BTreeSet<String> = candidates.iter().map(|c| c.manifest.id.folder_name()).collect();
    for (folder_name, path) in without_manifest {
        if !data_folders.contains(&folder_name) {
            failures.push(ModFailure {
                name: folder_name,
                file: path,
                reason: "missing manifest.json: every mod folder needs one (a leftover data folder of a removed mod can be deleted)".into(),
            });
        }
    }
    candidates
}

/// Keeps the first folder of each `Group:Name`: two copies of one mod would share `TypeId`s
/// and silently share resources.
fn drop_duplicates(candidates: Vec<Candidate>, failures: &mut Vec<ModFailure>) -> Vec<Candidate> {
    let mut first: BTreeMap<String, PathBuf> = BTreeMap::new();
    candidates
        .into_iter()
        .filter(|c| {
            let id = c.manifest.id.to_string();
            if let Some(kept) = first.get(&id) {
                failures.push(c.fail(
                    &c.manifest_path(),
                    format!("duplicate mod id {id}: already loaded from {}", kept.display()),
                ));
                return false;
            }
            first.insert(id, c.dir.clone());
            true
        })
        .collect()
}
