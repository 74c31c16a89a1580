//! The asset loader (sdk/src/assets, compiled in by path): the input is cut at each `0` byte
//! into up to three files of one kind, `A`, `B` and `C`, which may inherit from each other by
//! `Parent`. Loading gives assets, or errors placed in one of the files at a line it has; never
//! a panic.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

#[path = "../../sdk/src/assets/mod.rs"]
#[allow(dead_code)]
mod assets;

/// The sdk's crate root gives the loader its "did you mean" hints; they only word messages.
fn did_you_mean<'a>(_word: &str, _known: &[&'a str]) -> Option<&'a str> {
    None
}

/// An asset shaped like the real ones: PascalCase, unknown keys refused, nested objects,
/// arrays, an internally tagged enum.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
#[allow(dead_code)]
struct Hunt {
    name: String,
    #[serde(default)]
    radius: Option<f32>,
    #[serde(default)]
    vaults: Vec<Vault>,
    #[serde(default)]
    container: Option<Container>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
#[allow(dead_code)]
struct Vault {
    id: String,
    x: u32,
    y: u32,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "Type")]
#[allow(dead_code)]
enum Container {
    Single {
        #[serde(rename = "Item")]
        item: String,
    },
    Choice {
        #[serde(rename = "Containers")]
        containers: Vec<Container>,
    },
}

fuzz_target!(|input: &[u8]| {
    let sources: Vec<assets::AssetSource> = input
        .split(|b| *b == 0)
        .zip(["A", "B", "C"])
        .map(|(text, id)| {
            let path = PathBuf::from(format!("Server/Hunts/{id}.json"));
            assets::AssetSource::from_text("Hunts", id, path, String::from_utf8_lossy(text))
        })
        .collect();
    let loaded = assets::load_kind::<Hunt>(&sources);
    for error in &loaded.errors {
        let source = sources.iter().find(|s| s.path == error.path).expect("an error names one of the files");
        let lines = source.text.split('\n').count();
        assert!((1..=lines).contains(&error.line) && error.column >= 1, "{error}");
    }
    let _ = assets::load_kind::<serde_json::Value>(&sources);
});
