//! Designers' commands of the server's command line (`veltrix-server odds`, `preview`,
//! `simulate`): the host parses
//! them, loads the mods without running them, and asks each in turn through
//! [`Mod::designer_command`](crate::Mod::designer_command) until one answers.

/// A designer's command, as the host parsed it.
#[derive(Debug, Clone, PartialEq)]
pub enum DesignerCommand {
    /// `odds TABLE`: each item's exact chance per claim from the loot table `table`, for a
    /// claimant with `luck` (0.5 is +50 %) after `pity` claims of it without a rare item.
    Odds { table: String, luck: f64, pity: u32, json: bool },
    /// `preview --hunt ID --out FILE`: the hunt drawn on the server's world, written to `out`
    /// (PNG, or SVG when its name ends in `.svg`); with `distance`, the walking-distance field
    /// to that vault.
    Preview { hunt: String, out: std::path::PathBuf, distance: Option<String> },
    /// `simulate --hunt ID --players N --duration D --seed S`: the hunt played headless by
    /// simulated players, reported.
    Simulate(Simulation),
}

/// What `veltrix-server simulate` asks: the hunt, its simulated players and how long to play,
/// and the world's rules the host takes from its config.
#[derive(Debug, Clone, PartialEq)]
pub struct Simulation {
    /// The hunt: `Server/TreasureHunt/Hunts/<ID>.json`.
    pub hunt: String,
    /// How many simulated players join at the start.
    pub players: u32,
    /// Game time to play (the run may end sooner); none: the hunt's `DurationSeconds`, or an
    /// hour for a hunt without one.
    pub duration: Option<std::time::Duration>,
    /// Seeds the simulated players' choices: the same seed and options give the same report.
    pub seed: u64,
    /// How the simulated players play.
    pub behaviour: Behaviour,
    /// Players split into this many teams (none: every player alone).
    pub teams: Option<u32>,
    /// Keep playing the whole duration after the run ends, as a server keeps running (the
    /// report is of the run; this measures a long stretch of ticks).
    pub play_on: bool,
    /// JSON for tools instead of a table.
    pub json: bool,
    /// Where to write an SVG chart of discoveries over time.
    pub chart: Option<std::path::PathBuf>,
    /// The server's ticks per second (`TickRate`).
    pub tick_rate: u32,
    /// The world's `MaxSpeed`, in tiles per second.
    pub max_speed: f32,
    /// The world's `SpawnRadius`, in tiles.
    pub spawn_radius: f32,
    /// Draw a progress bar on standard error (the host sets it when that is a terminal).
    pub progress: bool,
}

/// How simulated players play (`simulate --behaviour`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Walk to random spots and dig around them.
    Wander,
    /// Ask for HotCold and Compass hints and walk the way they point.
    Hints,
    /// Race to a clue's area (or revealed tile) when it is released.
    Clues,
    /// A mix: half wander, a quarter follow hints, a quarter race to clues.
    Mixed,
}

impl DesignerCommand {
    /// The command's name on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            DesignerCommand::Odds { .. } => "odds",
            DesignerCommand::Preview { .. } => "preview",
            DesignerCommand::Simulate(_) => "simulate",
        }
    }
}

/// Why a designer's command gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DesignerError {
    /// The pack has errors: each one as `validate` prints it (the host exits 1).
    Pack(Vec<String>),
    /// An argument names nothing the pack holds: the message names what it does hold (the host
    /// exits 2, as for any bad argument).
    Usage(String),
    /// The command could not finish, for instance its output could not be written (exit 1).
    Failed(String),
}
