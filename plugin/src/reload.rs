//! Assets from disk, and hot reload: a watcher thread notices a change under the pack,
//! re-reads and re-checks the whole pack off the tick thread, and hands the result to
//! [`apply_reload`], which puts a valid pack in force between ticks. An invalid one is logged
//! and changes nothing: the assets in force stay, the running hunt goes on untouched.

use std::{
    path::{Path, PathBuf},
    sync::{Mutex, mpsc},
    time::Duration,
};

use notify::{RecursiveMode, Watcher};
use treasure_hunt_ecs::{
    assets::{DROPS, EFFECTS, HUNTS, ITEMS},
    hunt::{AssetsInForce, put_in_force},
    lang::LANGUAGES,
    pack::{self, HuntAssets, PackSources},
};
use veltrix_sdk::{
    assets::{AssetError, AssetSource, read_kind},
    prelude::*,
    tracing,
};

/// Reads the pack's files of every kind the hunt uses.
pub fn read_pack(dir: &Path) -> Result<PackSources, AssetError> {
    Ok(PackSources {
        items: read_kind(dir, ITEMS)?,
        drops: read_kind(dir, DROPS)?,
        hunts: read_kind(dir, HUNTS)?,
        effects: read_kind(dir, EFFECTS)?,
        languages: read_languages(dir)?,
    })
}

/// Reads every `Server/Languages/<locale>/*.lang` file, locales and files in name order.
fn read_languages(dir: &Path) -> Result<Vec<AssetSource>, AssetError> {
    let root = dir.join("Server").join(LANGUAGES);
    let unreadable = |path: &Path, e: std::io::Error| AssetError {
        path: path.to_path_buf(),
        line: 1,
        column: 1,
        json_path: String::new(),
        message: format!("cannot read: {e}"),
    };
    let mut locales: Vec<PathBuf> = match std::fs::read_dir(&root) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(unreadable(&root, e)),
    };
    locales.sort();
    let mut sources = Vec::new();
    for locale_dir in locales {
        let locale = locale_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&locale_dir)
            .map_err(|e| unreadable(&locale_dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "lang") && p.is_file())
            .collect();
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|e| unreadable(&path, e))?;
            let id = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            sources.push(AssetSource::from_text(format!("{LANGUAGES}/{locale}"), id, path.clone(), text));
        }
    }
    Ok(sources)
}

/// Reads and checks the pack: the assets, or every error (one per line).
pub fn load_pack(dir: &Path, tiles: &TileWorld, spawn: Spawn) -> Result<HuntAssets, Vec<AssetError>> {
    let sources = read_pack(dir).map_err(|e| vec![e])?;
    pack::build(&sources, tiles, spawn)
}

/// Checked packs from the loader thread, waiting for the tick thread; and the way to ask it
/// for one (`hunt reload`).
#[derive(Resource)]
pub struct Reloads {
    results: Mutex<mpsc::Receiver<Result<HuntAssets, Vec<AssetError>>>>,
    requests: Mutex<mpsc::Sender<()>>,
}

impl Reloads {
    /// Asks the loader thread to re-read the pack now; false when it is gone.
    pub fn request(&self) -> bool {
        self.requests.lock().expect("the reload lock is never poisoned").send(()).is_ok()
    }
}

/// The watcher: dropping it stops watching.
pub struct PackWatcher {
    _watcher: notify::RecommendedWatcher,
}

/// Quiet time after the last change before the pack is re-read: an editor's save is often
/// several writes.
const SETTLE: Duration = Duration::from_millis(200);

/// Starts the loader thread, which re-reads and re-checks the pack (against a copy of the
/// world) when asked; with `watch`, also on every change under `dir`.
pub fn start_loader(
    dir: PathBuf,
    tiles: TileWorld,
    spawn: Spawn,
    watch: bool,
) -> Result<(Option<PackWatcher>, Reloads), String> {
    let (changes_tx, changes_rx) = mpsc::channel::<()>();
    let watcher = if watch {
        let changes_tx = changes_tx.clone();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok_and(|e| !e.kind.is_access()) {
                let _ = changes_tx.send(());
            }
        })
        .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
        watcher.watch(&dir, RecursiveMode::Recursive).map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
        Some(PackWatcher { _watcher: watcher })
    } else {
        None
    };
    let (result_tx, result_rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("treasure-hunt-assets".into())
        .spawn(move || {
            while changes_rx.recv().is_ok() {
                while changes_rx.recv_timeout(SETTLE).is_ok() {}
                if result_tx.send(load_pack(&dir, &tiles, spawn)).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| format!("cannot start the asset watcher: {e}"))?;
    Ok((watcher, Reloads { results: Mutex::new(result_rx), requests: Mutex::new(changes_tx) }))
}

/// PreTick: puts the latest checked pack in force, or logs why it was refused.
pub fn apply_reload(world: &mut World) {
    let latest = match world.get_resource::<Reloads>() {
        Some(reloads) => reloads.results.lock().expect("the reload lock is never poisoned").try_iter().last(),
        None => return,
    };
    match latest {
        None => {}
        Some(Err(errors)) => {
            for error in &errors {
                tracing::error!("asset reload: {error}");
            }
            tracing::error!("asset reload refused ({} error(s)); the assets in force stay in force", errors.len());
        }
        Some(Ok(assets)) => {
            let changes = assets.changes_since(&world.resource::<AssetsInForce>().0);
            if changes.is_empty() {
                tracing::info!("asset pack re-read: nothing changed");
                return;
            }
            match put_in_force(world, assets) {
                Ok(()) => {
                    tracing::info!("assets reloaded: {}", changes.join(", "));
                    treasure_hunt_ecs::clues::prefetch_paths(world);
                }
                Err(e) => tracing::error!("asset reload refused: {e}; the assets in force stay in force"),
            }
        }
    }
}
