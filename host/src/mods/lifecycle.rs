//! Setup, start and shutdown of the loaded mods, in dependency order (shutdown in reverse).

use std::collections::{BTreeSet, HashSet};

use veltrix_sdk::{
    LoadedMod, ModContext,
    bevy_ecs::{entity::Entity, observer::Observer, resource::IsResource, world::World},
};

use super::{ModFailure, ModInstance};
use crate::panics;

/// The mods that set up and started, in load order.
pub struct ActiveMods {
    mods: Vec<ModInstance>,
}

impl ActiveMods {
    /// Runs every mod's setup, then every mod's start. A mod that fails either (an error or a
    /// panic), or whose required dependency failed, is disabled: its staged systems and
    /// observers never reach the world, and what it added directly during its setup and start
    /// is removed. One [`LoadedMod`] entity is spawned per active mod.
    pub fn setup_and_start(world: &mut World, mods: Vec<ModInstance>, failures: &mut Vec<ModFailure>) -> Self {
        let mut staged = Vec::with_capacity(mods.len());
        let mut ok: BTreeSet<String> = BTreeSet::new();
        for mut m in mods {
            if let Some(reason) = m.manifest.failed_dependency(&ok) {
                failures.push(m.fail(reason));
                continue;
            }
            let before = entities(world);
            let mut ctx = ModContext::new(world, &m.manifest.id, &m.dir, &m.data_dir);
            let result = run(|| m.instance.setup(&mut ctx), "setup");
            let pending = ctx.into_pending();
            let added = added_since(world, &before);
            match result {
                Ok(()) => {
                    ok.insert(m.manifest.id.to_string());
                    staged.push((m, pending, added));
                }
                Err(reason) => {
                    remove(world, added);
                    failures.push(m.fail(reason));
                }
            }
        }
        let mut started: BTreeSet<String> = BTreeSet::new();
        let mut active = Vec::with_capacity(staged.len());
        for (mut m, mut pending, mut added) in staged {
            if let Some(reason) = m.manifest.failed_dependency(&started) {
                remove(world, added);
                failures.push(m.fail(reason));
                continue;
            }
            let before = entities(world);
            let mut ctx = ModContext::new(world, &m.manifest.id, &m.dir, &m.data_dir);
            let result = run(|| m.instance.start(&mut ctx), "start");
            pending.extend(ctx.into_pending());
            added.extend(added_since(world, &before));
            match result {
                Ok(()) => {
                    ModContext::commit(world, pending);
                    world.spawn(LoadedMod { id: m.manifest.id.to_string(), version: m.manifest.version.to_string() });
                    tracing::info!("mod {} {} started from {}", m.manifest.id, m.manifest.version, m.dir.display());
                    started.insert(m.manifest.id.to_string());
                    active.push(m);
                }
                Err(reason) => {
                    remove(world, added);
                    failures.push(m.fail(reason));
                }
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

/// Every entity of the world: in bevy_ecs resources and observers are entities too.
fn entities(world: &World) -> HashSet<Entity> {
    world.iter_entities().map(|e| e.id()).collect()
}

/// The entities that appeared since `before`: what a mod's call added to the world directly.
fn added_since(world: &World, before: &HashSet<Entity>) -> Vec<Entity> {
    world.iter_entities().map(|e| e.id()).filter(|e| !before.contains(e)).collect()
}

/// Takes back what a failed mod added: its observers first (so none of them sees the rest go),
/// then its resources (removed the way bevy_ecs removes a resource) and its other entities.
fn remove(world: &mut World, added: Vec<Entity>) {
    let (observers, rest): (Vec<Entity>, Vec<Entity>) =
        added.into_iter().partition(|&e| world.get::<Observer>(e).is_some());
    for entity in observers.into_iter().chain(rest) {
        if let Some(resource) = world.get::<IsResource>(entity).map(IsResource::resource_component_id) {
            world.remove_resource_by_id(resource);
        } else if let Ok(entity) = world.get_entity_mut(entity) {
            entity.despawn();
        }
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use veltrix_sdk::{Mod, ModError, prelude::*};

    use super::*;
    use crate::mods::manifest;

    #[derive(Component)]
    struct Watched;

    #[derive(Resource, Default)]
    struct Seen(u32);

    #[derive(Resource)]
    struct LeftBehind;

    /// Adds an observer, a resource and an entity straight to the world, then fails in setup
    /// or in start.
    struct Failing {
        in_start: bool,
    }

    impl Mod for Failing {
        fn setup(&mut self, ctx: &mut ModContext) -> Result<(), ModError> {
            let world = ctx.world_mut();
            world.add_observer(|_: On<Add<Watched>>, mut seen: ResMut<Seen>| seen.0 += 1);
            world.insert_resource(LeftBehind);
            world.spawn(Watched);
            if self.in_start { Ok(()) } else { Err("told to fail".into()) }
        }

        fn start(&mut self, _ctx: &mut ModContext) -> Result<(), ModError> {
            Err("told to fail".into())
        }
    }

    /// A failed mod leaves no observer, resource or entity behind.
    #[test]
    fn what_a_failed_mod_added_is_taken_back() {
        for in_start in [false, true] {
            let mut world = World::new();
            world.init_resource::<Seen>();
            let text = r#"{"Group": "Test", "Name": "Failing", "Main": "lib.so"}"#;
            let m = ModInstance {
                manifest: manifest::parse(text).unwrap().manifest,
                dir: PathBuf::from("."),
                data_dir: PathBuf::from("."),
                instance: Box::new(Failing { in_start }),
            };
            let mut failures = Vec::new();
            let active = ActiveMods::setup_and_start(&mut world, vec![m], &mut failures);
            assert!(active.ids().is_empty());
            assert_eq!(failures.len(), 1, "in start: {in_start}");
            assert!(!world.contains_resource::<LeftBehind>(), "in start: {in_start}");
            assert_eq!(world.query::<&Watched>().iter(&world).count(), 0, "in start: {in_start}");
            assert_eq!(world.query::<&Observer>().iter(&world).count(), 0, "in start: {in_start}");
            world.spawn(Watched);
            assert_eq!(world.resource::<Seen>().0, 1, "only the setup's own spawn was seen (in start: {in_start})");
        }
    }
}
