//! What the treasure hunt's harness tests share: an asset pack in a temporary folder, the mod
//! added to a harness from it, and a player's dig.

// Each test file uses the part it needs.
#![allow(dead_code)]

use std::{fs, path::Path};

use serde_json::json;
use tempfile::TempDir;
use treasure_hunt::{TreasureHunt, TreasureHuntConfig};
use veltrix_sdk::{ModId, testing::Harness};

/// A mod folder in a temporary directory: `assets/Server/...` written by the test, `data/` for
/// the mod's data.
pub struct HuntPack {
    dir: TempDir,
}

impl HuntPack {
    pub fn new() -> Self {
        HuntPack { dir: tempfile::tempdir().unwrap() }
    }

    /// Writes `text` to `assets/Server/<file>`.
    pub fn write(&self, file: &str, text: &str) {
        let path = self.dir.path().join("assets/Server").join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// The mod folder (error messages name files under it).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Adds the treasure-hunt mod with `config` (hot reload off: the tests change no files while
    /// it runs) to `harness`; the error is the one the host would log.
    pub fn add_to(&self, harness: &mut Harness, config: TreasureHuntConfig) -> Result<(), String> {
        let config = TreasureHuntConfig { hot_reload: false, ..config };
        harness
            .add_mod(
                ModId::new("Veltrix", "TreasureHunt"),
                TreasureHunt::with_config(config),
                self.path(),
                &self.path().join("data"),
            )
            .map_err(|e| e.to_string())
    }
}

/// `name` digs at (x, y) in the next tick.
pub fn dig(h: &mut Harness, name: &str, request: u32, x: u32, y: u32) {
    h.send(name, "Dig", Some(request), &json!({"X": x, "Y": y}));
}
