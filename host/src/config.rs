//! The server's `config.json` at the server root: written with defaults on first start,
//! refused with the key path and what was expected when a value is wrong.

use std::{collections::BTreeMap, fmt, fs, io, path::Path};

use serde::{Deserialize, Serialize};

/// Which bevy_ecs executor runs the schedules. Both give identical results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum Executor {
    /// Systems run one after the other on the tick thread.
    SingleThreaded,
    /// Systems without conflicting data access run in parallel on the compute task pool.
    MultiThreaded,
}

/// One entry of the `Mods` map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ModSettings {
    /// Load the mod (true) or not (false), whatever its `DisabledByDefault` says.
    pub enabled: bool,
}

/// The server's `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Shown to players when they connect.
    pub server_name: String,
    /// Players allowed online at once.
    pub max_players: u32,
    /// TCP port of the player endpoint. 0 picks a free port.
    pub port: u16,
    /// Ticks per second (1 to 1000).
    pub tick_rate: u32,
    /// When the tick falls further behind than this many ticks, skip ahead instead of
    /// running the missed ticks back to back.
    pub max_catch_up_ticks: u32,
    /// The executor for the tick schedules.
    pub executor: Executor,
    /// Stop the server when any mod fails to load, instead of going on without it.
    pub fail_on_mod_error: bool,
    /// Per-mod switches by `Group:Name`.
    pub mods: BTreeMap<String, ModSettings>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            server_name: "Veltrix Server".into(),
            max_players: 100,
            port: 5520,
            tick_rate: 30,
            max_catch_up_ticks: 5,
            executor: Executor::MultiThreaded,
            fail_on_mod_error: false,
            mods: BTreeMap::new(),
        }
    }
}

/// Why a config file could not be used. The message names the file and the key path.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl ServerConfig {
    /// Reads `path`, or writes the defaults there when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, ConfigError> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let config = Self::default();
                config.write(path)?;
                tracing::info!("wrote a default server config to {}", path.display());
                return Ok(config);
            }
            Err(e) => return Err(ConfigError(format!("{}: cannot read: {e}", path.display()))),
        };
        let config = Self::parse(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        Ok(config)
    }

    /// Parses and checks a config text; the error names the key path and what was expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let config: Self = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let at = format!("line {}, column {}", inner.line(), inner.column());
            // serde_json appends " at line L column C" to its message; we say where ourselves.
            let message = inner.to_string();
            let message = message.split(" at line ").next().unwrap_or(&message).to_string();
            if path == "." { format!("{at}: {message}") } else { format!("{path}: {message} ({at})") }
        })?;
        config.check()?;
        Ok(config)
    }

    /// Range checks serde cannot express. The error names the key path.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=1000).contains(&self.tick_rate) {
            return Err(format!(
                "TickRate: expected a number of ticks per second from 1 to 1000, found {}",
                self.tick_rate
            ));
        }
        if self.max_players == 0 {
            return Err("MaxPlayers: expected at least 1, found 0".into());
        }
        if self.server_name.trim().is_empty() {
            return Err("ServerName: expected a name, found an empty string".into());
        }
        for id in self.mods.keys() {
            if !id.split_once(':').is_some_and(|(g, n)| !g.is_empty() && !n.is_empty()) {
                return Err(format!("Mods.{id}: expected a mod id of the form Group:Name"));
            }
        }
        Ok(())
    }

    /// Writes the config as pretty JSON.
    pub fn write(&self, path: &Path) -> Result<(), ConfigError> {
        let mut text = serde_json::to_string_pretty(self).expect("the config always serialises");
        text.push('\n');
        fs::write(path, text).map_err(|e| ConfigError(format!("{}: cannot write: {e}", path.display())))
    }

    /// Whether the owner switched the mod on or off, if they said.
    pub fn mod_enabled(&self, id: &str) -> Option<bool> {
        self.mods.get(id).map(|m| m.enabled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip() {
        let text = serde_json::to_string(&ServerConfig::default()).unwrap();
        assert_eq!(ServerConfig::parse(&text).unwrap(), ServerConfig::default());
    }

    #[test]
    fn wrong_type_names_key_path_and_place() {
        let err = ServerConfig::parse("{\n  \"Port\": \"high\"\n}").unwrap_err();
        assert_eq!(err, "Port: invalid type: string \"high\", expected u16 (line 2, column 16)");
    }

    #[test]
    fn nested_wrong_type_names_full_path() {
        let err = ServerConfig::parse(r#"{"Mods": {"Veltrix:TreasureHunt": {"Enabled": "yes"}}}"#).unwrap_err();
        assert!(
            err.starts_with("Mods.Veltrix:TreasureHunt.Enabled: invalid type: string \"yes\", expected a boolean"),
            "{err}"
        );
    }

    #[test]
    fn unknown_key_is_refused() {
        let err = ServerConfig::parse(r#"{"Prot": 1}"#).unwrap_err();
        assert!(err.contains("unknown field `Prot`"), "{err}");
    }

    #[test]
    fn out_of_range_values_are_refused() {
        assert!(ServerConfig::parse(r#"{"TickRate": 0}"#).unwrap_err().starts_with("TickRate: expected"));
        assert!(ServerConfig::parse(r#"{"MaxPlayers": 0}"#).unwrap_err().starts_with("MaxPlayers: expected"));
        assert!(
            ServerConfig::parse(r#"{"Mods": {"NoColon": {"Enabled": true}}}"#)
                .unwrap_err()
                .starts_with("Mods.NoColon: expected")
        );
    }
}
