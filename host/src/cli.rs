//! The command line. Flags override the server root's `config.json` for this run only.

use std::{path::PathBuf, time::Duration};

use clap::{Parser, Subcommand};

use crate::config::{Executor, ServerConfig};

/// The Veltrix dedicated server: loads the mods in `mods/`, runs the tick and serves players.
///
/// The server root holds `config.json` (written with defaults on first start), `mods/` (one
/// folder per mod, with its `manifest.json`), `universe/` (saves) and `logs/`. Flags given
/// here override the config file for this run.
#[derive(Debug, Parser)]
#[command(name = "veltrix-server", version, about, long_about)]
pub struct Cli {
    /// Server root folder [default: the current folder; for `validate`, `odds`, `preview` and
    /// `simulate`,
    /// the current folder when it holds `mods/`, else this program's own folder].
    #[arg(long, value_name = "DIR", env = "VELTRIX_ROOT")]
    pub root: Option<PathBuf>,

    /// Also load mods from DIR, after ROOT/mods (repeatable). Data folders stay in ROOT/mods.
    #[arg(long = "mods", value_name = "DIR")]
    pub mods: Vec<PathBuf>,

    /// Name shown to players [config: ServerName].
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,

    /// Players allowed online at once, 1 to 1000000 [config: MaxPlayers].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_players: Option<u32>,

    /// TCP port of the player endpoint, 0 for any free port [config: Port].
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,

    /// Ticks per second, 1 to 1000 [config: TickRate].
    #[arg(long, value_name = "TPS", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub tick_rate: Option<u32>,

    /// How many times a second a player is told where the players it sees have moved, 1 to
    /// 1000; TickRate or more means every tick [config: World.StateUpdateRate].
    #[arg(long, value_name = "HZ", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub state_update_rate: Option<u32>,

    /// How many ticks behind the loop may fall before it skips ahead, 0 to 1000 [config:
    /// MaxCatchUpTicks].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub max_catch_up_ticks: Option<u32>,

    /// Executor of the tick schedules [config: Executor].
    #[arg(long, value_enum)]
    pub executor: Option<Executor>,

    /// How the operating system schedules the tick thread: real-time where allowed, or
    /// normal [config: TickPriority].
    #[arg(long, value_enum)]
    pub tick_priority: Option<crate::config::TickPriority>,

    /// How players authenticate [config: Auth].
    #[arg(long, value_enum)]
    pub auth: Option<crate::config::Auth>,

    /// Address of the admin HTTP listener, "" to disable [config: Admin.Address].
    #[arg(long, value_name = "ADDR")]
    pub admin_address: Option<String>,

    /// Stop when any mod fails to load [config: FailOnModError].
    #[arg(long)]
    pub fail_on_mod_error: bool,

    /// Stop after N ticks (tests, benchmarks); by default run until SIGINT or SIGTERM.
    #[arg(long, value_name = "N")]
    pub ticks: Option<u64>,

    /// Once both listeners are bound and the first tick has run, write where the server
    /// listens to PATH as JSON: {"game": "IP:PORT", "admin": "IP:PORT" or null, "pid": N}
    /// (written beside it and renamed: never seen half-written). A file left there is removed
    /// at start, and this one at stop. For tools that start the server on port 0.
    #[arg(long, value_name = "PATH")]
    pub ready_file: Option<PathBuf>,

    /// Log filter: error, warn, info, debug, trace, or per-module directives. RUST_LOG, when
    /// set to a filter that parses, wins.
    #[arg(long, value_name = "FILTER", default_value = "info", env = "VELTRIX_LOG", value_parser = log_filter)]
    pub log: String,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do instead of running the server.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the mods' asset packs against this server's world and exit: prints every error
    /// (file:line:column: JSON path: what was expected) and exits 1 when there is any, or when
    /// there was no mod to check. Writes nothing.
    Validate {
        /// An asset pack folder (holding `Server/`) to check with every mod; by default each
        /// mod checks its own `assets/`.
        dir: Option<PathBuf>,
    },

    /// Print each item's exact chance from a loot table of the mods' packs, worked out from the
    /// table (not sampled): per claim for a claimant with --luck and --pity, and over many
    /// claims with the table's pity. A broken pack is reported as `validate` reports it (exit
    /// 1); an unknown TABLE is named with the tables there are (exit 2).
    #[command(override_usage = "veltrix-server odds [OPTIONS] [PACK] TABLE")]
    Odds {
        /// [PACK] TABLE: an asset pack folder (holding `Server/`), by default each mod's own
        /// `assets/`; then the loot table, `Server/Drops/<TABLE>.json`.
        #[arg(value_name = "[PACK] TABLE", num_args = 1..=2, required = true)]
        words: Vec<String>,
        /// The claimant's luck from its effects: 0.5 is +50 % on the rare entries' weights.
        #[arg(long, value_name = "X", default_value_t = 0.0, allow_negative_numbers = true)]
        luck: f64,
        /// The claimant's claims of this table in a row without a Rare-or-better item: the
        /// count the table's `Pity` counts.
        #[arg(long, value_name = "N", default_value_t = 0)]
        pity: u32,
        /// Print JSON for tools instead of a table.
        #[arg(long)]
        json: bool,
    },

    /// Draw a hunt of the mods' packs on this server's world, as PNG or SVG: ground, rock and water,
    /// the spawn, every vault where the server places it (fixed vaults numbered, with their
    /// claim rule; each random group's region and vaults), sparkle radii, clue circles, a
    /// legend and a scale. A broken pack is reported as `validate` reports it (exit 1); an
    /// unknown hunt or vault is named with those there are (exit 2).
    Preview {
        /// An asset pack folder (holding `Server/`); by default each mod's own `assets/`.
        #[arg(value_name = "PACK")]
        pack: Option<PathBuf>,
        /// The hunt: `Server/TreasureHunt/Hunts/<ID>.json`.
        #[arg(long, value_name = "ID")]
        hunt: String,
        /// Where to write the picture: a `.png` or `.svg` file (replaced if it exists).
        #[arg(long, value_name = "FILE", value_parser = picture_file)]
        out: PathBuf,
        /// Colour the ground by the walking distance to this vault, the distance HotCold and
        /// Compass hints measure.
        #[arg(long, value_name = "VAULT")]
        distance: Option<String>,
    },

    /// Play a hunt of the mods' packs headless on this server's world, as fast as the CPU
    /// allows: the mod's own systems, with simulated players who wander, follow hints or race
    /// to clues. Reports when each vault was first found and by how many, claims per rule, each
    /// item's drops against the tables' odds, clue releases, the final leaderboard and who got
    /// nothing. The same pack, seed and options give the same report. A broken pack is reported
    /// as `validate` reports it (exit 1); an unknown hunt is named with those there are (exit 2).
    Simulate {
        /// An asset pack folder (holding `Server/`); by default each mod's own `assets/`.
        #[arg(value_name = "PACK")]
        pack: Option<PathBuf>,
        /// The hunt: `Server/TreasureHunt/Hunts/<ID>.json`.
        #[arg(long, value_name = "ID")]
        hunt: String,
        /// Simulated players, all online from the start.
        #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        players: u32,
        /// Game time to play, like 90s, 30m, 2h or 1h30m [default: the hunt's DurationSeconds,
        /// or 1h]. The simulation stops sooner when the run ends.
        #[arg(long, value_name = "TIME", value_parser = parse_duration)]
        duration: Option<Duration>,
        /// Seeds the players' choices: the same seed gives the same report.
        #[arg(long, value_name = "S", default_value_t = 1)]
        seed: u64,
        /// How the players play: wander (walk and dig around), hints (follow HotCold and
        /// Compass hints), clues (race to a clue's area when it is released), or mixed (half
        /// wander, a quarter each follow hints and race to clues).
        #[arg(long, value_enum, default_value_t = Behaviour::Mixed)]
        behaviour: Behaviour,
        /// Split the players into K teams (Team_1 to Team_K, in turn); by default each plays alone.
        #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..=10_000))]
        teams: Option<u32>,
        /// Play the whole duration even when the run ends sooner (players go on as on a server
        /// that keeps running; the report is of the run).
        #[arg(long)]
        play_on: bool,
        /// Print JSON for tools instead of a table.
        #[arg(long)]
        json: bool,
        /// Also write a chart of discoveries over time to FILE (SVG).
        #[arg(long, value_name = "FILE.svg", value_parser = svg_file)]
        chart: Option<PathBuf>,
    },

    /// Write the whole store (`universe/veltrix.redb`) to FILE, `-` for standard output: JSON
    /// Lines, tables and keys in order (docs/storage.md). The server must not be running in
    /// this root.
    Export {
        /// Where to write; an existing file is replaced only once the export is complete.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },

    /// Check the store (`universe/veltrix.redb`) without changing it: redb's integrity check,
    /// and that every record of every table reads and decodes. Prints each problem and exits 1
    /// when there is any. The server must not be running in this root.
    Check,

    /// Read an export from FILE, `-` for standard input, into this root's store, all or
    /// nothing. A store that holds anything is refused unless --replace is given. The server
    /// must not be running in this root.
    Import {
        /// An export written by `veltrix-server export`.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Clear every table of the store first (in the same transaction as the import).
        #[arg(long)]
        replace: bool,
    },
}

/// How simulated players play (`simulate --behaviour`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Behaviour {
    Wander,
    Hints,
    Clues,
    Mixed,
}

impl From<Behaviour> for veltrix_sdk::Behaviour {
    fn from(b: Behaviour) -> Self {
        match b {
            Behaviour::Wander => veltrix_sdk::Behaviour::Wander,
            Behaviour::Hints => veltrix_sdk::Behaviour::Hints,
            Behaviour::Clues => veltrix_sdk::Behaviour::Clues,
            Behaviour::Mixed => veltrix_sdk::Behaviour::Mixed,
        }
    }
}

/// A game time: whole numbers of hours, minutes and seconds in that order, each with its unit
/// (`90s`, `30m`, `2h`, `1h30m`), more than 0 and at most 30 days.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const EXPECTED: &str = "expected a duration like 90s, 30m, 2h or 1h30m";
    let mut seconds: u64 = 0;
    let mut number = String::new();
    let mut units = ['h', 'm', 's'].into_iter();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        // Units in order, each at most once, each after a number.
        let scale = loop {
            match units.next() {
                Some(u) if u == c => {
                    break Some(match u {
                        'h' => 3600,
                        'm' => 60,
                        _ => 1,
                    });
                }
                Some(_) => continue,
                None => break None,
            }
        };
        let (Some(scale), Ok(n)) = (scale, number.parse::<u64>()) else { return Err(EXPECTED.into()) };
        seconds = n.checked_mul(scale).and_then(|s| s.checked_add(seconds)).ok_or(EXPECTED)?;
        number.clear();
    }
    if !number.is_empty() || text.is_empty() {
        return Err(EXPECTED.into());
    }
    if seconds == 0 || seconds > 30 * 86_400 {
        return Err(format!("{EXPECTED}, more than 0 and at most 30 days (720h)"));
    }
    Ok(Duration::from_secs(seconds))
}

/// A log filter that parses (`info`, `veltrix_host=debug,info`): a bad one is a bad command
/// line, refused before anything starts.
fn log_filter(text: &str) -> Result<String, String> {
    crate::logging::parse_filter(text).map(|_| text.to_owned())
}

/// A file name ending in `.svg`.
fn svg_file(name: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(name);
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) if ext.eq_ignore_ascii_case("svg") => Ok(path),
        _ => Err("expected a file ending in .svg".into()),
    }
}

/// A file name ending in `.png` or `.svg`.
fn picture_file(name: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(name);
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) if ext.eq_ignore_ascii_case("png") || ext.eq_ignore_ascii_case("svg") => Ok(path),
        _ => Err("expected a file ending in .png or .svg".into()),
    }
}

/// `[PACK] TABLE`: the optional pack folder, then the name.
pub fn pack_and_name(words: &[String]) -> (Option<PathBuf>, String) {
    match words {
        [pack, name] => (Some(PathBuf::from(pack)), name.clone()),
        [name] => (None, name.clone()),
        _ => (None, String::new()),
    }
}

impl Cli {
    /// The server root of a run, an export or an import: `--root`, else the current folder.
    pub fn root_or_current(&self) -> PathBuf {
        self.root.clone().unwrap_or_else(|| PathBuf::from("."))
    }

    /// The config with this command line's overrides applied, checked again.
    pub fn apply(&self, mut config: ServerConfig) -> Result<ServerConfig, String> {
        if let Some(v) = &self.server_name {
            config.server_name = v.clone();
        }
        if let Some(v) = self.max_players {
            config.max_players = v;
        }
        if let Some(v) = self.port {
            config.port = v;
        }
        if let Some(v) = self.tick_rate {
            config.tick_rate = v;
        }
        if let Some(v) = self.state_update_rate {
            config.world.state_update_rate = v;
        }
        if let Some(v) = self.max_catch_up_ticks {
            config.max_catch_up_ticks = v;
        }
        if let Some(v) = self.executor {
            config.executor = v;
        }
        if let Some(v) = self.tick_priority {
            config.tick_priority = v;
        }
        if let Some(v) = self.auth {
            config.auth = v;
        }
        if let Some(v) = &self.admin_address {
            config.admin.address = v.clone();
        }
        config.fail_on_mod_error |= self.fail_on_mod_error;
        config.check()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_override_config() {
        let cli = Cli::parse_from([
            "veltrix-server",
            "--tick-rate",
            "20",
            "--executor",
            "single-threaded",
            "--tick-priority",
            "real-time",
        ]);
        let config = cli.apply(ServerConfig::default()).unwrap();
        assert_eq!(config.tick_rate, 20);
        assert_eq!(config.executor, Executor::SingleThreaded);
        assert_eq!(config.tick_priority, crate::config::TickPriority::RealTime);
        assert_eq!(config.port, 5520);
    }

    #[test]
    fn validate_takes_an_optional_folder() {
        let cli = Cli::parse_from(["veltrix-server", "--root", "r", "validate", "pack"]);
        assert!(matches!(cli.command, Some(Command::Validate { dir: Some(d) }) if d == std::path::Path::new("pack")));
        assert!(matches!(
            Cli::parse_from(["veltrix-server", "validate"]).command,
            Some(Command::Validate { dir: None })
        ));
    }

    #[test]
    fn odds_takes_an_optional_pack_before_the_table() {
        let cli = Cli::parse_from(["veltrix-server", "odds", "Buried_Cache"]);
        let Some(Command::Odds { words, luck: 0.0, pity: 0, json: false }) = cli.command else { panic!("{cli:?}") };
        assert_eq!(pack_and_name(&words), (None, "Buried_Cache".into()));
        let cli = Cli::parse_from(["veltrix-server", "odds", "pack", "T", "--luck", "0.5", "--pity", "9", "--json"]);
        let Some(Command::Odds { words, luck: 0.5, pity: 9, json: true }) = cli.command else { panic!("{cli:?}") };
        assert_eq!(pack_and_name(&words), (Some(PathBuf::from("pack")), "T".into()));
        assert!(Cli::try_parse_from(["veltrix-server", "odds"]).is_err(), "TABLE is required");
        assert!(Cli::try_parse_from(["veltrix-server", "odds", "a", "b", "c"]).is_err(), "at most PACK and TABLE");
        assert!(Cli::try_parse_from(["veltrix-server", "odds", "T", "--pity", "-1"]).is_err());
    }

    #[test]
    fn preview_takes_a_hunt_and_a_png_file() {
        let cli =
            Cli::parse_from(["veltrix-server", "preview", "pack", "--hunt", "H", "--out", "a.png", "--distance", "V"]);
        let Some(Command::Preview { pack: Some(pack), hunt, out, distance: Some(vault) }) = cli.command else {
            panic!("{cli:?}")
        };
        assert_eq!((pack, hunt, out, vault), (PathBuf::from("pack"), "H".into(), PathBuf::from("a.png"), "V".into()));
        let err = Cli::try_parse_from(["veltrix-server", "preview", "--hunt", "H", "--out", "a.jpg"]).unwrap_err();
        assert!(err.to_string().contains("expected a file ending in .png or .svg"), "{err}");
        assert!(Cli::try_parse_from(["veltrix-server", "preview", "--hunt", "H", "--out", "a.svg"]).is_ok());
        assert!(Cli::try_parse_from(["veltrix-server", "preview", "--out", "a.png"]).is_err(), "--hunt is required");
        assert!(Cli::try_parse_from(["veltrix-server", "preview", "--hunt", "H"]).is_err(), "--out is required");
    }

    #[test]
    fn durations_are_hours_minutes_and_seconds() {
        for (text, seconds) in [("90s", 90), ("30m", 1800), ("2h", 7200), ("1h30m", 5400), ("1h0m5s", 3605)] {
            assert_eq!(parse_duration(text), Ok(Duration::from_secs(seconds)), "{text}");
        }
        for bad in ["", "90", "h", "2x", "30m1h", "1h1h", "0s", "-5m", "1.5h", "721h", "99999999999999999999h"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.starts_with("expected a duration like 90s, 30m, 2h or 1h30m"), "{bad}: {err}");
        }
    }

    #[test]
    fn simulate_takes_a_hunt_and_players_options() {
        let cli = Cli::parse_from([
            "veltrix-server",
            "simulate",
            "pack",
            "--hunt",
            "H",
            "--players",
            "500",
            "--duration",
            "2h",
            "--seed",
            "7",
            "--behaviour",
            "clues",
            "--teams",
            "4",
            "--json",
            "--chart",
            "c.svg",
        ]);
        let Some(Command::Simulate { pack, hunt, players, duration, seed, behaviour, teams, json, chart, .. }) =
            cli.command
        else {
            panic!("{cli:?}")
        };
        assert_eq!(
            (pack, hunt.as_str(), players, duration),
            (Some("pack".into()), "H", 500, Some(Duration::from_secs(7200)))
        );
        assert_eq!((seed, behaviour, teams, json, chart), (7, Behaviour::Clues, Some(4), true, Some("c.svg".into())));
        let Some(Command::Simulate {
            players: 100,
            duration: None,
            seed: 1,
            behaviour: Behaviour::Mixed,
            teams: None,
            ..
        }) = Cli::parse_from(["veltrix-server", "simulate", "--hunt", "H"]).command
        else {
            panic!("defaults")
        };
        for bad in [
            &["simulate"][..],
            &["simulate", "--hunt", "H", "--players", "0"],
            &["simulate", "--hunt", "H", "--duration", "2"],
            &["simulate", "--hunt", "H", "--behaviour", "lazy"],
            &["simulate", "--hunt", "H", "--teams", "0"],
            &["simulate", "--hunt", "H", "--chart", "c.png"],
        ] {
            let args = std::iter::once("veltrix-server").chain(bad.iter().copied());
            assert!(Cli::try_parse_from(args).is_err(), "{bad:?}");
        }
    }

    /// Flags out of their keys' ranges, and a log filter that does not parse, are a bad
    /// command line (exit 2), refused before anything starts.
    #[test]
    fn bad_values_are_a_bad_command_line() {
        for bad in [
            &["--log", "a=b=c"][..],
            &["--max-players", "0"],
            &["--max-players", "1000001"],
            &["--max-catch-up-ticks", "1001"],
        ] {
            let args = std::iter::once("veltrix-server").chain(bad.iter().copied());
            let err = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
        let cli = Cli::parse_from(["veltrix-server", "--log", "veltrix_host=debug,info", "--max-catch-up-ticks", "0"]);
        assert_eq!(cli.log, "veltrix_host=debug,info");
    }

    #[test]
    fn export_and_import_take_a_file() {
        let cli = Cli::parse_from(["veltrix-server", "--root", "r", "export", "-"]);
        assert!(matches!(cli.command, Some(Command::Export { file }) if file == std::path::Path::new("-")));
        let cli = Cli::parse_from(["veltrix-server", "import", "backup.jsonl"]);
        assert!(matches!(cli.command, Some(Command::Import { replace: false, .. })));
        let cli = Cli::parse_from(["veltrix-server", "import", "--replace", "backup.jsonl"]);
        assert!(
            matches!(cli.command, Some(Command::Import { file, replace: true }) if file == std::path::Path::new("backup.jsonl"))
        );
        assert!(Cli::try_parse_from(["veltrix-server", "export"]).is_err(), "FILE is required");
        assert!(matches!(Cli::parse_from(["veltrix-server", "check"]).command, Some(Command::Check)));
    }

    #[test]
    fn out_of_range_flag_is_refused() {
        let err = Cli::try_parse_from(["veltrix-server", "--tick-rate", "0"]).unwrap_err().to_string();
        assert!(err.contains("invalid value '0' for '--tick-rate <TPS>'"), "{err}");
    }
}
