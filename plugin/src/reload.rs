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
    pack::{self, HuntAssets, PackSources},
};
use veltrix_sdk::{
    assets::{AssetError, read_kind},
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
    })
}

/// Reads and checks the pack: the assets, or every error (one per line).
pub fn load_pack(dir: &Path, tiles: &TileWorld, spawn: Spawn) -> Result<HuntAssets, Vec<AssetError>> {
    let sources = read_pack(dir).map_err(|e| vec![e])?;
    pack::build(&sources, tiles, spawn)
}

/// Checked packs from the watcher thread, waiting for the tick thread.
#[derive(Resource)]
pub struct Reloads(Mutex<mpsc::Receiver<Result<HuntAssets, Vec<AssetError>>>>);

/// The watcher: dropping it stops watching.
pub struct PackWatcher {
    _watcher: notify::RecommendedWatcher,
}

/// Quiet time after the last change before the pack is re-read: an editor's save is often
/// several writes.
const SETTLE: Duration = Duration::from_millis(200);

/// Watches `dir` and re-checks the pack (against a copy of the world) on every change.
pub fn watch(dir: PathBuf, tiles: TileWorld, spawn: Spawn) -> Result<(PackWatcher, Reloads), String> {
    let (changes_tx, changes_rx) = mpsc::channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = changes_tx.send(());
        }
    })
    .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
    watcher.watch(&dir, RecursiveMode::Recursive).map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
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
    Ok((PackWatcher { _watcher: watcher }, Reloads(Mutex::new(result_rx))))
}

/// PreTick: puts the latest checked pack in force, or logs why it was refused.
pub fn apply_reload(world: &mut World) {
    let latest = match world.get_resource::<Reloads>() {
        Some(reloads) => reloads.0.lock().expect("the reload lock is never poisoned").try_iter().last(),
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
                return;
            }
            match put_in_force(world, assets) {
                Ok(()) => tracing::info!("assets reloaded: {}", changes.join(", ")),
                Err(e) => tracing::error!("asset reload refused: {e}; the assets in force stay in force"),
            }
        }
    }
}
