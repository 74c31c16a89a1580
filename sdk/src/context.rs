//! What a mod gets from the host in setup, start and shutdown.

use std::{
    fmt, fs,
    path::{Path, PathBuf},
};

use bevy_ecs::{
    observer::IntoObserver,
    schedule::{InternedSystemSet, IntoScheduleConfigs, ScheduleLabel, Schedules},
    system::ScheduleSystem,
    world::World,
};
use serde::{Serialize, de::DeserializeOwned};

use crate::{ClientMessages, CommandRegistry, CommandSource, CommandSpec, Outbox, permission_node};

/// The error a mod's setup, start or config loading returns: any error, shown to the owner.
pub type ModError = Box<dyn std::error::Error + Send + Sync>;

/// A mod's identity, `Group:Name`, as its manifest declares it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModId {
    pub group: String,
    pub name: String,
}

impl ModId {
    pub fn new(group: impl Into<String>, name: impl Into<String>) -> Self {
        Self { group: group.into(), name: name.into() }
    }

    /// The name of the mod's data folder under `mods/`: `Group_Name`.
    pub fn folder_name(&self) -> String {
        format!("{}_{}", self.group, self.name)
    }
}

impl fmt::Display for ModId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.group, self.name)
    }
}

/// A registration (systems, message kinds) waiting for its mod's setup and start to succeed.
/// Not `Send`: ordered system configs (`.chain()`, `.after()`) are not, and registrations never
/// leave the tick thread.
pub type PendingRegistration = Box<dyn FnOnce(&mut World)>;

/// The host's world and the mod's folders, lent to a mod during setup, start and shutdown.
///
/// Systems, observers, commands and message kinds added here reach the world only when the
/// host calls [`ModContext::commit`], which it does once the mod's setup and start both
/// succeeded: a mod that fails never has a system or an observer running. What a mod puts in
/// the world directly through [`world_mut`](Self::world_mut) (resources, entities, observers)
/// is there at once; the host removes it again if the mod then fails.
pub struct ModContext<'a> {
    world: &'a mut World,
    id: &'a ModId,
    mod_dir: &'a Path,
    data_dir: &'a Path,
    pending: Vec<PendingRegistration>,
}

impl<'a> ModContext<'a> {
    /// Made by the host (or a test harness) for one call into one mod.
    pub fn new(world: &'a mut World, id: &'a ModId, mod_dir: &'a Path, data_dir: &'a Path) -> Self {
        Self { world, id, mod_dir, data_dir, pending: Vec::new() }
    }

    /// The registrations made through this context, to pass to [`ModContext::commit`].
    pub fn into_pending(self) -> Vec<PendingRegistration> {
        self.pending
    }

    /// Applies the staged registrations to the world.
    pub fn commit(world: &mut World, pending: Vec<PendingRegistration>) {
        for register in pending {
            register(world);
        }
    }

    pub fn id(&self) -> &ModId {
        self.id
    }

    pub fn world(&self) -> &World {
        self.world
    }

    pub fn world_mut(&mut self) -> &mut World {
        self.world
    }

    /// Adds systems to one of the host schedules ([`PreTick`](crate::PreTick),
    /// [`Tick`](crate::Tick), [`PostTick`](crate::PostTick)), once the mod has started.
    pub fn add_systems<M>(
        &mut self,
        schedule: impl ScheduleLabel,
        systems: impl IntoScheduleConfigs<ScheduleSystem, M> + 'static,
    ) -> &mut Self {
        self.pending.push(Box::new(move |world: &mut World| {
            world.resource_mut::<Schedules>().add_systems(schedule, systems);
        }));
        self
    }

    /// Configures system sets of one of the host schedules (their order, their conditions),
    /// once the mod has started.
    pub fn configure_sets<M>(
        &mut self,
        schedule: impl ScheduleLabel,
        sets: impl IntoScheduleConfigs<InternedSystemSet, M> + 'static,
    ) -> &mut Self {
        self.pending.push(Box::new(move |world: &mut World| {
            world.resource_mut::<Schedules>().configure_sets(schedule, sets);
        }));
        self
    }

    /// Adds an observer (of an entity event such as `On<Add<Player>>`, or of the mod's own
    /// events), once the mod has started: it does not run while the other mods set up and
    /// start, nor ever for a mod that fails.
    pub fn add_observer<M>(&mut self, observer: impl IntoObserver<M>) -> &mut Self {
        self.pending.push(Box::new(move |world: &mut World| {
            world.add_observer(observer);
        }));
        self
    }

    /// Declares `T` as a message clients may send in this mod's namespace under `kind`. They
    /// arrive in `PreTick` as [`FromClient<T>`](crate::FromClient) messages; read them with a
    /// `MessageReader<FromClient<T>>`.
    pub fn add_client_message<T: DeserializeOwned + Send + Sync + 'static>(&mut self, kind: &str) -> &mut Self {
        let (ns, kind) = (self.id.to_string(), kind.to_string());
        self.pending.push(Box::new(move |world: &mut World| ClientMessages::register::<T>(world, &ns, &kind)));
        self
    }

    /// Adds a check every joining player must pass, once the mod has started: a player whose
    /// saved state the mod cannot read is refused (`ErrorCode::SavedStateUnreadable`) rather
    /// than let in with nothing, which the mod would then save over what could not be read.
    /// `Err` says why, for the server's log.
    pub fn add_join_check(
        &mut self,
        check: impl Fn(&World, &crate::Player) -> Result<(), String> + Send + Sync + 'static,
    ) -> &mut Self {
        let id = self.id.to_string();
        self.pending.push(Box::new(move |world: &mut World| {
            world.get_resource_or_init::<crate::JoinChecks>().0.push((id, Box::new(check)));
        }));
        self
    }

    /// Adds a text command (`cmd` is its first word), usable on the console and by players
    /// holding the permission `{group}.{name}.command.{cmd}`. The handler's error is shown
    /// with the usage.
    pub fn add_command(
        &mut self,
        cmd: &str,
        usage: &str,
        description: &str,
        run: impl Fn(&mut World, &CommandSource, &[&str]) -> Result<String, String> + Send + Sync + 'static,
    ) -> &mut Self {
        self.add_command_spec(CommandSpec {
            name: cmd.to_string(),
            usage: usage.to_string(),
            description: description.to_string(),
            permission: permission_node(&self.id.group, &self.id.name, cmd),
            subcommands: Vec::new(),
            run: std::sync::Arc::new(run),
        })
    }

    /// Adds a command made of subcommands (`hunt start <id>`, `hunt rank`): `run` gets the
    /// subcommand's word first. Each subcommand has its own permission node,
    /// `{group}.{name}.command.{cmd}.{subcommand}`; those marked `everyone` are held by every
    /// player unless `permissions.json` denies them.
    pub fn add_command_with_subcommands(
        &mut self,
        cmd: &str,
        description: &str,
        subcommands: Vec<crate::commands::Subcommand>,
        run: impl Fn(&mut World, &CommandSource, &[&str]) -> Result<String, String> + Send + Sync + 'static,
    ) -> &mut Self {
        self.add_command_spec(CommandSpec {
            name: cmd.to_string(),
            usage: format!("{cmd} <{}>", subcommands.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join("|")),
            description: description.to_string(),
            permission: permission_node(&self.id.group, &self.id.name, cmd),
            subcommands,
            run: std::sync::Arc::new(run),
        })
    }

    fn add_command_spec(&mut self, spec: CommandSpec) -> &mut Self {
        let id = self.id.to_string();
        self.pending.push(Box::new(move |world: &mut World| {
            if let Err(e) = world.get_resource_or_init::<CommandRegistry>().register(spec) {
                tracing::warn!("mod {id}: {e}; its command is not added");
            }
        }));
        self
    }

    /// Declares `T` as a message this mod sends under `kind`, through the
    /// [`Outbox`](crate::Outbox).
    pub fn add_server_message<T: Serialize + 'static>(&mut self, kind: &str) -> &mut Self {
        let (ns, kind) = (self.id.to_string(), kind.to_string());
        self.pending
            .push(Box::new(move |world: &mut World| world.get_resource_or_init::<Outbox>().register::<T>(&ns, &kind)));
        self
    }

    /// The folder the mod was loaded from (manifest, library, `assets/`).
    pub fn mod_dir(&self) -> &Path {
        self.mod_dir
    }

    /// The mod's data folder, `mods/<Group>_<Name>/`; it exists.
    pub fn data_dir(&self) -> &Path {
        self.data_dir
    }

    /// The mod's `config.json` in its data folder; written with `T::default()` when absent.
    ///
    /// A malformed file is an error naming the file, line and column, and is left untouched.
    pub fn load_config<T: Serialize + DeserializeOwned + Default>(&self) -> Result<T, ModError> {
        let path: PathBuf = self.data_dir.join("config.json");
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| format!("{}: line {}, column {}: {e}", path.display(), e.line(), e.column()).into()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let config = T::default();
                let mut text = serde_json::to_string_pretty(&config)?;
                text.push('\n');
                fs::write(&path, text).map_err(|e| format!("{}: cannot write default config: {e}", path.display()))?;
                Ok(config)
            }
            Err(e) => Err(format!("{}: cannot read: {e}", path.display()).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use bevy_ecs::prelude::*;

    use super::*;
    use crate::Tick;

    #[derive(Resource, Default)]
    struct Order(Vec<&'static str>);

    fn first(mut order: ResMut<Order>) {
        order.0.push("first");
    }

    fn second(mut order: ResMut<Order>) {
        order.0.push("second");
    }

    /// Ordered systems can be added, and reach the schedule only on commit.
    #[test]
    fn chained_systems_are_staged_then_committed_in_order() {
        let mut world = World::new();
        world.init_resource::<Schedules>();
        world.init_resource::<Order>();
        world.resource_mut::<Schedules>().insert(Schedule::new(Tick));
        let id = ModId::new("Test", "Order");
        let mut ctx = ModContext::new(&mut world, &id, Path::new("."), Path::new("."));
        ctx.add_systems(Tick, (second.after(first), first));
        let pending = ctx.into_pending();
        world.run_schedule(Tick);
        assert!(world.resource::<Order>().0.is_empty(), "nothing runs before commit");
        ModContext::commit(&mut world, pending);
        world.run_schedule(Tick);
        assert_eq!(world.resource::<Order>().0, ["first", "second"]);
    }

    #[derive(Component)]
    struct Marker;

    fn count_markers(_: On<Add<Marker>>, mut order: ResMut<Order>) {
        order.0.push("observed");
    }

    /// An observer added through the context sees nothing before commit.
    #[test]
    fn observers_are_staged_then_committed() {
        let mut world = World::new();
        world.init_resource::<Order>();
        let id = ModId::new("Test", "Observer");
        let mut ctx = ModContext::new(&mut world, &id, Path::new("."), Path::new("."));
        ctx.add_observer(count_markers);
        let pending = ctx.into_pending();
        world.spawn(Marker);
        assert!(world.resource::<Order>().0.is_empty(), "no observer before commit");
        ModContext::commit(&mut world, pending);
        world.spawn(Marker);
        assert_eq!(world.resource::<Order>().0, ["observed"]);
    }
}
