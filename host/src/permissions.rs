//! Who may run which command: `permissions.json` in the server root, as Hytale writes it.
//!
//! ```json
//! {"users": {"alice": {"permissions": ["veltrix.treasurehunt.command.hunt"], "groups": ["OP"]}},
//!  "groups": {"OP": ["*"], "Default": ["veltrix.server.command.help", "-veltrix.server.command.stop"]}}
//! ```
//!
//! Users are player names (any case). Every player is in the `Default` group, and in the groups
//! its entry lists. A node grants itself; `*` grants everything; `prefix.*` grants every node
//! under `prefix.`; `-node` (with the same wildcards) denies, and a denial wins over any grant.
//! The console holds every permission.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use veltrix_sdk::{CommandSource, prelude::*};

/// The group every player is in.
pub const DEFAULT_GROUP: &str = "Default";

/// `permissions.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionsFile {
    #[serde(default)]
    pub users: BTreeMap<String, UserEntry>,
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
}

/// One user's entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

impl Default for PermissionsFile {
    fn default() -> Self {
        let groups = BTreeMap::from([
            ("OP".to_string(), vec!["*".to_string()]),
            (DEFAULT_GROUP.to_string(), vec!["veltrix.server.command.help".to_string()]),
        ]);
        Self { users: BTreeMap::new(), groups }
    }
}

/// The permissions in force.
#[derive(Resource, Debug, Clone, PartialEq)]
pub struct Permissions {
    file: PermissionsFile,
    /// Lowercased user name to its entry.
    users: BTreeMap<String, UserEntry>,
    pub path: PathBuf,
}

impl Permissions {
    pub fn new(file: PermissionsFile, path: PathBuf) -> Self {
        let users = file.users.iter().map(|(name, entry)| (name.to_lowercase(), entry.clone())).collect();
        Self { file, users, path }
    }

    /// Reads `permissions.json`; writes the default file when it is missing. A malformed file
    /// is an error naming the line and column (the server does not start with permissions it
    /// cannot read).
    pub fn load(path: &Path) -> Result<Self, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let file: PermissionsFile = serde_json::from_str(&text)
                    .map_err(|e| format!("{}: line {}, column {}: {e}", path.display(), e.line(), e.column()))?;
                for (name, entry) in &file.users {
                    if let Some(group) = entry.groups.iter().find(|g| !file.groups.contains_key(*g)) {
                        return Err(format!(
                            "{}: users.{name}.groups: no group {group:?} in \"groups\" (it has: {})",
                            path.display(),
                            file.groups.keys().cloned().collect::<Vec<_>>().join(", ")
                        ));
                    }
                }
                Ok(Self::new(file, path.to_path_buf()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let file = PermissionsFile::default();
                let text = serde_json::to_string_pretty(&file).expect("permissions serialise") + "\n";
                std::fs::write(path, text).map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
                Ok(Self::new(file, path.to_path_buf()))
            }
            Err(e) => Err(format!("{}: cannot read: {e}", path.display())),
        }
    }

    /// Whether `source` holds `node`; an `everyone` node (a mod's player subcommand) is held
    /// by every player unless denied.
    pub fn allows(&self, source: &CommandSource, node: &str, everyone: bool) -> bool {
        let CommandSource::Player { name, .. } = source else { return true };
        let user = self.users.get(&name.to_lowercase());
        let groups =
            std::iter::once(DEFAULT_GROUP).chain(user.iter().flat_map(|u| u.groups.iter().map(String::as_str)));
        let patterns: Vec<&str> = user
            .iter()
            .flat_map(|u| u.permissions.iter().map(String::as_str))
            .chain(groups.flat_map(|g| self.file.groups.get(g).into_iter().flatten().map(String::as_str)))
            .collect();
        let node = node.to_lowercase();
        if patterns.iter().filter_map(|p| p.strip_prefix('-')).any(|p| matches(p, &node)) {
            return false;
        }
        everyone || patterns.iter().filter(|p| !p.starts_with('-')).any(|p| matches(p, &node))
    }
}

impl veltrix_sdk::runtime::requests::PermissionRules for Permissions {
    fn allows(&self, source: &CommandSource, node: &str, everyone: bool) -> bool {
        Permissions::allows(self, source, node, everyone)
    }
}

/// Whether a granted (or denied) pattern covers `node` (lowercase).
fn matches(pattern: &str, node: &str) -> bool {
    let pattern = pattern.to_lowercase();
    pattern == "*"
        || pattern == node
        || pattern
            .strip_suffix(".*")
            .is_some_and(|prefix| node.strip_prefix(prefix).is_some_and(|r| r.starts_with('.')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn player(name: &str) -> CommandSource {
        CommandSource::Player { entity: Entity::PLACEHOLDER, id: 1, name: name.into() }
    }

    fn permissions(json: &str) -> Permissions {
        Permissions::new(serde_json::from_str(json).unwrap(), PathBuf::from("permissions.json"))
    }

    #[test]
    fn grants_wildcards_groups_and_denials() {
        let p = permissions(
            r#"{"users": {"Alice": {"groups": ["OP"]},
                          "bob": {"permissions": ["veltrix.treasurehunt.command.*", "-veltrix.treasurehunt.command.hunt"]},
                          "carol": {"groups": ["Mods"], "permissions": ["-veltrix.server.*"]}},
                "groups": {"OP": ["*"], "Default": ["veltrix.server.command.help"], "Mods": ["veltrix.server.command.kick"]}}"#,
        );
        assert!(p.allows(&CommandSource::Console, "veltrix.server.command.stop", false), "the console holds all");
        assert!(p.allows(&player("ALICE"), "veltrix.server.command.stop", false), "names in any case; * grants all");
        assert!(p.allows(&player("dave"), "veltrix.server.command.help", false), "everyone is in Default");
        assert!(!p.allows(&player("dave"), "veltrix.server.command.kick", false));
        assert!(p.allows(&player("bob"), "veltrix.treasurehunt.command.rank", false), "prefix.* grants below it");
        assert!(!p.allows(&player("bob"), "veltrix.treasurehunt.command.hunt", false), "a denial wins");
        assert!(!p.allows(&player("bob"), "veltrix.treasurehunt.commandx", false), "prefix.* needs the dot");
        assert!(
            !p.allows(&player("carol"), "veltrix.server.command.kick", false),
            "a wildcard denial wins over a group"
        );
        assert!(!p.allows(&player("carol"), "veltrix.server.command.help", false));
        assert!(p.allows(&player("dave"), "veltrix.treasurehunt.command.hunt.rank", true), "held by everyone");
        assert!(!p.allows(&player("carol"), "veltrix.server.command.x", true), "unless denied");
    }

    #[test]
    fn a_missing_file_is_written_and_a_bad_one_is_refused_with_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("permissions.json");
        let p = Permissions::load(&path).unwrap();
        assert!(p.allows(&player("anyone"), "veltrix.server.command.help", false));
        assert!(!p.allows(&player("anyone"), "veltrix.server.command.stop", false));
        assert!(std::fs::read_to_string(&path).unwrap().contains("\"OP\""));
        std::fs::write(&path, "{\"users\": {\"a\": {\"groups\": [\"Admins\"]}}, \"groups\": {\"OP\": [\"*\"]}}")
            .unwrap();
        let err = Permissions::load(&path).unwrap_err();
        assert!(err.ends_with("users.a.groups: no group \"Admins\" in \"groups\" (it has: OP)"), "{err}");
        std::fs::write(&path, "{\"users\": {\"a\": {\"perms\": []}}}").unwrap();
        let err = Permissions::load(&path).unwrap_err();
        assert!(err.contains("line 1, column") && err.contains("unknown field `perms`"), "{err}");
    }
}
