//! Banned names, kept in `bans.json` in the server root: loaded at start, saved by `ban`.

use std::{collections::BTreeSet, path::PathBuf};

use veltrix_sdk::prelude::*;

/// Banned names (lowercase), kept in `bans.json` in the server root.
#[derive(Resource, Debug, Default)]
pub struct Bans {
    pub names: BTreeSet<String>,
    pub path: PathBuf,
}

impl Bans {
    pub fn load(path: PathBuf) -> Result<Self, String> {
        let names = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str::<BTreeSet<String>>(&text)
                .map_err(|e| {
                    format!(
                        "{}: line {}, column {}: expected a list of names ({e})",
                        path.display(),
                        e.line(),
                        e.column()
                    )
                })?
                .into_iter()
                .map(|n| n.to_lowercase())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
            Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
        };
        Ok(Self { names, path })
    }

    pub fn save(&self) -> Result<(), String> {
        let text = serde_json::to_string_pretty(&self.names).expect("names serialise");
        std::fs::write(&self.path, text + "\n").map_err(|e| format!("{}: cannot write: {e}", self.path.display()))
    }
}
