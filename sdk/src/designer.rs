//! Designers' commands of the server's command line (`veltrix-server odds`, `preview`): the host parses
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
}

impl DesignerCommand {
    /// The command's name on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            DesignerCommand::Odds { .. } => "odds",
            DesignerCommand::Preview { .. } => "preview",
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
