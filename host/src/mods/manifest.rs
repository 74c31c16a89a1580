//! `manifest.json`: read and checked before the mod's library is ever opened (opening a
//! library runs its initialisers).

use std::collections::BTreeMap;

use semver::{Version, VersionReq};
use serde::Deserialize;
use veltrix_sdk::{ModId, did_you_mean};

/// The keys the Hytale server reads from a manifest; others draw a warning.
const KNOWN_KEYS: &[&str] = &[
    "Group",
    "Name",
    "Version",
    "Description",
    "Authors",
    "Website",
    "Main",
    "ServerVersion",
    "Dependencies",
    "OptionalDependencies",
    "LoadBefore",
    "DisabledByDefault",
    "IncludesAssetPack",
];

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Author {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
}

/// The manifest as written, before the checks that need more than types.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawManifest {
    group: Option<String>,
    name: Option<String>,
    version: Option<String>,
    description: Option<String>,
    #[serde(default)]
    authors: Vec<Author>,
    website: Option<String>,
    main: Option<String>,
    server_version: Option<String>,
    #[serde(default)]
    dependencies: BTreeMap<String, String>,
    #[serde(default)]
    optional_dependencies: BTreeMap<String, String>,
    #[serde(default)]
    load_before: BTreeMap<String, String>,
    #[serde(default)]
    disabled_by_default: bool,
    #[serde(default)]
    includes_asset_pack: bool,
}

/// A checked manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub id: ModId,
    pub version: Version,
    pub description: Option<String>,
    pub authors: Vec<Author>,
    pub website: Option<String>,
    /// The library's file name, inside the mod folder.
    pub main: String,
    pub server_version: VersionReq,
    pub dependencies: BTreeMap<String, VersionReq>,
    pub optional_dependencies: BTreeMap<String, VersionReq>,
    pub load_before: BTreeMap<String, VersionReq>,
    pub disabled_by_default: bool,
    pub includes_asset_pack: bool,
}

impl Manifest {
    /// The first required dependency not in `ok` (the ids of the mods that got this far), as
    /// the reason this mod cannot go on.
    pub fn failed_dependency(&self, ok: &std::collections::BTreeSet<String>) -> Option<String> {
        self.dependencies.keys().find(|d| !ok.contains(*d)).map(|d| format!("requires {d}, which failed to load"))
    }
}

/// A parsed manifest and the warnings it drew (unknown keys).
#[derive(Debug)]
pub struct Parsed {
    pub manifest: Manifest,
    pub warnings: Vec<String>,
}

/// Parses a manifest's text. Errors and warnings are phrased for the owner, without the file
/// name (the caller adds it).
pub fn parse(text: &str) -> Result<Parsed, String> {
    let mut warnings = Vec::new();
    let de = &mut serde_json::Deserializer::from_str(text);
    let raw: RawManifest = serde_ignored::deserialize(de, |path| {
        let key = path.to_string();
        let last = key.rsplit('.').next().unwrap_or(&key).to_string();
        let hint = if key.contains('.') { None } else { did_you_mean(&last, KNOWN_KEYS) };
        warnings.push(match hint {
            Some(h) => format!("unknown key `{key}` ignored (did you mean `{h}`?)"),
            None => format!("unknown key `{key}` ignored"),
        });
    })
    .map_err(|e| {
        let message = e.to_string();
        let message = message.split(" at line ").next().unwrap_or(&message).to_string();
        format!("line {}, column {}: {message}", e.line(), e.column())
    })?;

    let group = required(raw.group, "Group")?;
    let name = required(raw.name, "Name")?;
    let main = required(raw.main, "Main")?;
    for (key, value) in [("Group", &group), ("Name", &name)] {
        if !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(format!("`{key}` must hold only letters, digits, `_` and `-`, found {value:?}"));
        }
    }
    if main.contains('/') || main.contains('\\') || main == ".." || main == "." {
        return Err(format!("`Main` must be a file name inside the mod folder, found {main:?}"));
    }
    let version = match raw.version {
        None => Version::new(0, 0, 0),
        Some(v) => Version::parse(&v)
            .map_err(|e| format!("`Version`: expected a semantic version like 1.2.0, found {v:?} ({e})"))?,
    };
    let server_version = range("ServerVersion", raw.server_version.as_deref().unwrap_or("*"))?;
    let ranges = |key: &str, map: BTreeMap<String, String>| -> Result<BTreeMap<String, VersionReq>, String> {
        map.into_iter()
            .map(|(id, r)| {
                if !id.split_once(':').is_some_and(|(g, n)| !g.is_empty() && !n.is_empty()) {
                    return Err(format!("`{key}`: expected mod ids of the form Group:Name, found {id:?}"));
                }
                Ok((id.clone(), range(&format!("{key}.{id}"), &r)?))
            })
            .collect()
    };
    Ok(Parsed {
        manifest: Manifest {
            id: ModId::new(group, name),
            version,
            description: raw.description,
            authors: raw.authors,
            website: raw.website,
            main,
            server_version,
            dependencies: ranges("Dependencies", raw.dependencies)?,
            optional_dependencies: ranges("OptionalDependencies", raw.optional_dependencies)?,
            load_before: ranges("LoadBefore", raw.load_before)?,
            disabled_by_default: raw.disabled_by_default,
            includes_asset_pack: raw.includes_asset_pack,
        },
        warnings,
    })
}

fn required(value: Option<String>, key: &str) -> Result<String, String> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        Some(_) => Err(format!("`{key}` is empty")),
        None => Err(format!("missing required key `{key}`")),
    }
}

/// A version range: `*`, `1.2.0` (meaning `^1.2.0`), `>=1.0, <2`...
fn range(key: &str, text: &str) -> Result<VersionReq, String> {
    VersionReq::parse(text)
        .map_err(|e| format!("`{key}`: expected a version range like \">=1.0.0, <2.0.0\", found {text:?} ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"Group": "Veltrix", "Name": "TreasureHunt", "Version": "1.2.0", "Main": "libth.so",
        "Dependencies": {"Veltrix:Core": ">=1.0"}, "ServerVersion": ">=0.1"}"#;

    #[test]
    fn good_manifest_parses() {
        let p = parse(GOOD).unwrap();
        assert_eq!(p.manifest.id.to_string(), "Veltrix:TreasureHunt");
        assert_eq!(p.manifest.version, Version::new(1, 2, 0));
        assert!(p.manifest.dependencies["Veltrix:Core"].matches(&Version::new(1, 5, 0)));
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let err = parse("{\n  \"Group\": \"A\",\n  \"Name\" \"B\"\n}").unwrap_err();
        assert_eq!(err, "line 3, column 10: expected `:`");
    }

    #[test]
    fn missing_keys_are_named() {
        assert_eq!(parse(r#"{"Group": "A", "Main": "x.so"}"#).unwrap_err(), "missing required key `Name`");
        assert_eq!(parse(r#"{"Group": "A", "Name": "B"}"#).unwrap_err(), "missing required key `Main`");
    }

    #[test]
    fn unknown_keys_warn_with_suggestion() {
        let p = parse(r#"{"Group": "A", "Name": "B", "Main": "x.so", "Dependancies": {}, "Colour": 1}"#).unwrap();
        assert_eq!(
            p.warnings,
            vec![
                "unknown key `Dependancies` ignored (did you mean `Dependencies`?)".to_string(),
                "unknown key `Colour` ignored".to_string()
            ]
        );
    }

    #[test]
    fn bad_ranges_and_main_paths_are_refused() {
        let err = parse(r#"{"Group": "A", "Name": "B", "Main": "x.so", "ServerVersion": "soon"}"#).unwrap_err();
        assert!(err.starts_with("`ServerVersion`: expected a version range"), "{err}");
        let err = parse(r#"{"Group": "A", "Name": "B", "Main": "../x.so"}"#).unwrap_err();
        assert!(err.starts_with("`Main` must be a file name"), "{err}");
    }
}
