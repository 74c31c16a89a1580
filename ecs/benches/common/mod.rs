//! What the hunt's benchmarks share: the shipped asset pack (`assets/` at the repository root),
//! read kind by kind and checked by `pack::build`, as the mod loads it at start.

use std::path::{Path, PathBuf};

use treasure_hunt_ecs::{
    assets::{DROPS, EFFECTS, HUNTS, ITEMS},
    lang::{DEFAULT_LOCALE, LANGUAGES},
    pack::{self, HuntAssets, PackSources},
};
use veltrix_sdk::{
    Spawn, TileWorld,
    assets::{AssetSource, read_kind},
};

/// The shipped pack's folder.
pub fn pack_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets")
}

/// The shipped pack, built against `tiles` with players appearing at `spawn`.
pub fn shipped_pack(tiles: &TileWorld, spawn: Spawn) -> HuntAssets {
    let dir = pack_dir();
    let read = |kind: &str| read_kind(&dir, kind).unwrap_or_else(|e| panic!("{e}"));
    // The pack's clue texts: `Server/Languages/en-US/*.lang`, the one locale it ships.
    let kind = format!("{LANGUAGES}/{DEFAULT_LOCALE}");
    let mut lang_files: Vec<PathBuf> = std::fs::read_dir(dir.join("Server").join(&kind))
        .expect("the pack has its language folder")
        .map(|e| e.expect("a readable folder").path())
        .filter(|p| p.extension().is_some_and(|x| x == "lang"))
        .collect();
    lang_files.sort();
    let languages = lang_files
        .into_iter()
        .map(|path| {
            let id = path.file_stem().expect("a file name").to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).expect("a readable language file");
            AssetSource::from_text(kind.clone(), id, path, text)
        })
        .collect();
    let sources =
        PackSources { items: read(ITEMS), drops: read(DROPS), hunts: read(HUNTS), effects: read(EFFECTS), languages };
    pack::build(&sources, tiles, spawn).unwrap_or_else(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        panic!("the shipped pack does not build:\n{}", lines.join("\n"))
    })
}
