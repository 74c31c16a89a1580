//! Setup, start and shutdown of the loaded mods, in dependency order (shutdown in reverse).

use std::collections::BTreeSet;

use veltrix_sdk::{LoadedMod, ModContext, bevy_ecs::world::World};

use super::{ModFailure, ModInstance};
use crate::panics;

/// The mods that set up and started, in load order.
pub struct ActiveMods {
    mods: Vec<ModInstance>,
}

impl ActiveMods {
    /// Runs every mod's setup, then every mod's start. A mod that fails either (an error or a
    /// panic), or whose required dependency failed, is disabled: its systems never reach the
    /// schedules. One [`LoadedMod`] entity is spawned per active mod.
    pub fn setup_and_start(world: &mut World, mods: Vec<ModInstance>, failures: &mut Vec<ModFailure>) -> Self {
        let mut staged = Vec::with_capacity(mods.len());
        let mut ok: BTreeSet<String> = BTreeSet::new();
        for mut m in mods {
            if let Some(reason) = m.manifest.failed_dependency(&ok) {
                failures.push(m.fail(reason));
                continue;
            }
            let mut ctx = ModContext::new(world, &m.manifest.id, &m.dir, &m.data_dir);
            match run(|| m.instance.setup(&mut ctx), "setup") {
                Ok(()) => {
                    let pending = ctx.into_pending();
                    ok.insert(m.manifest.id.to_string());
                    staged.push((m, pending));
                }
                Err(reason) => failures.push(m.fail(reason)),
            }
        }
        let mut started: BTreeSet<String> = BTreeSet::new();
        let mut active = Vec::with_capacity(staged.len());
        for (mut m, mut pending) in staged {
            if let Some(reason) = m.manifest.failed_dependency(&started) {
                failures.push(m.fail(reason));
                continue;
            }
            let mut ctx = ModContext::new(world, &m.manifest.id, &m.dir, &m.data_dir);
            match run(|| m.instance.start(&mut ctx), "start") {
                Ok(()) => {
                    pending.extend(ctx.into_pending());
                    ModContext::commit(world, pending);
                    world.spawn(LoadedMod { id: m.manifest.id.to_string(), version: m.manifest.version.to_string() });
                    tracing::info!("mod {} {} started from {}", m.manifest.id, m.manifest.version, m.dir.display());
                    started.insert(m.manifest.id.to_string());
                    active.push(m);
                }
                Err(reason) => failures.push(m.fail(reason)),
            }
        }
        Self { mods: active }
    }

    /// The active mods' ids, in load order.
    pub fn ids(&self) -> Vec<String> {
        self.mods.iter().map(|m| m.manifest.id.to_string()).collect()
    }

    /// The active mods' ids and versions, in load order.
    pub fn versions(&self) -> Vec<(String, String)> {
        self.mods.iter().map(|m| (m.manifest.id.to_string(), m.manifest.version.to_string())).collect()
    }

    /// Runs every active mod's shutdown, in reverse load order. A panic is logged and the
    /// others still shut down.
    pub fn shutdown(mut self, world: &mut World) {
        while let Some(mut m) = self.mods.pop() {
            let mut ctx = ModContext::new(world, &m.manifest.id, &m.dir, &m.data_dir);
            if let Err(reason) = panics::catch(|| m.instance.shutdown(&mut ctx)) {
                tracing::error!("mod {}: shutdown panicked: {reason}", m.manifest.id);
            }
        }
    }
}

impl ModInstance {
    fn fail(&self, reason: String) -> ModFailure {
        ModFailure { name: self.manifest.id.to_string(), file: self.dir.join(&self.manifest.main), reason }
    }
}

/// Calls one lifecycle step, turning an error or a panic into a reason.
fn run(step: impl FnOnce() -> Result<(), veltrix_sdk::ModError>, name: &str) -> Result<(), String> {
    match panics::catch(step) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("{name} failed: {e}")),
        Err(panic) => Err(format!("{name} panicked: {panic}")),
    }
}
