//! The mod loader, end to end: the server as shipped, real mod libraries dlopened from a
//! temporary `mods/`. Each failure disables one mod with one clear line and the good mod still
//! loads and runs.

use veltrix_tests::{Run, TestServer, artifacts};

const TICKS: u64 = 12;

const PROBE_MANIFEST: &str = r#"{"Group": "Fixtures", "Name": "Probe", "Version": "1.0.0", "Main": "libprobe_mod.so"}"#;

/// The treasure-hunt mod loaded, ran its Tick system once per tick, and saw `mods` host
/// `LoadedMod` entities through `par_iter`.
fn assert_treasure_hunt_ran(run: &Run, mods: u64) {
    assert!(run.success, "the server failed:\n{}", run.log);
    assert_eq!(run.contract_probe(), Some((TICKS, mods)), "log:\n{}", run.log);
}

/// A server with the good mod and one broken mod folder `broken`.
fn with_broken(manifest: &str, library: Option<(&std::path::Path, &str)>) -> (TestServer, std::path::PathBuf) {
    let server = TestServer::new().with_treasure_hunt("Veltrix_TreasureHunt");
    let dir = server.add_mod("broken", manifest, library);
    (server, dir)
}

#[test]
fn shipped_mod_runs_its_system_every_tick_and_sees_host_components() {
    let server = TestServer::new().with_treasure_hunt("Veltrix_TreasureHunt");
    let run = server.run_ticks(TICKS, &[]);
    assert_treasure_hunt_ran(&run, 1);
    assert!(run.log.contains("mod Veltrix:TreasureHunt 0.1.0 started"), "{}", run.log);
    // The data folder holds the mod's config.json with its defaults.
    let config = std::fs::read_to_string(server.root().join("mods/Veltrix_TreasureHunt/config.json")).unwrap();
    let defaults = serde_json::to_string_pretty(&treasure_hunt::TreasureHuntConfig::default()).unwrap();
    assert_eq!(config.trim(), defaults);
    assert!(config.starts_with("{\n  \"Hunt\": \"Sunken_Isles\",\n  \"Language\": \"en-US\",\n"), "{config}");
    // The demo hunt runs in the default (generated) world.
    assert!(run.log.contains("hunt Sunken_Isles running with 38 vaults"), "{}", run.log);
}

#[test]
fn both_executors_run_the_mod() {
    for executor in ["single-threaded", "multi-threaded"] {
        let server = TestServer::new().with_treasure_hunt("th");
        let run = server.run_ticks(TICKS, &["--executor", executor]);
        assert_treasure_hunt_ran(&run, 1);
        // The data folder is named after the mod id, not the folder it came from.
        assert!(server.root().join("mods/Veltrix_TreasureHunt/config.json").is_file());
    }
}

#[test]
fn two_good_mods_see_each_other() {
    let server = TestServer::new().with_treasure_hunt("Veltrix_TreasureHunt");
    server.add_mod("probe", PROBE_MANIFEST, Some((&artifacts().probe_lib, "libprobe_mod.so")));
    let run = server.run_ticks(TICKS, &[]);
    assert_treasure_hunt_ran(&run, 2);
    assert!(run.log.contains(&format!("probe: its Tick system ran {TICKS} times")), "{}", run.log);
}

#[test]
fn missing_manifest() {
    let server = TestServer::new().with_treasure_hunt("Veltrix_TreasureHunt");
    std::fs::create_dir_all(server.root().join("mods/stray")).unwrap();
    std::fs::copy(&artifacts().probe_lib, server.root().join("mods/stray/libprobe_mod.so")).unwrap();
    let run = server.run_ticks(TICKS, &[]);
    let path = server.root().join("mods/stray/manifest.json");
    assert_eq!(
        run.disabled_reason("stray").unwrap(),
        format!(
            "{}: missing manifest.json: every mod folder needs one (a leftover data folder of a removed mod can be deleted)",
            path.display()
        )
    );
    assert_treasure_hunt_ran(&run, 1);
}

#[test]
fn malformed_manifest_names_line_and_column() {
    let (server, dir) =
        with_broken("{\n  \"Group\": \"Fixtures\",\n  \"Name\": \"Probe\"\n  \"Main\": \"libprobe_mod.so\"\n}", None);
    let run = server.run_ticks(TICKS, &[]);
    assert_eq!(
        run.disabled_reason("broken").unwrap(),
        format!("{}: line 4, column 3: expected `,` or `}}`", dir.join("manifest.json").display())
    );
    assert_treasure_hunt_ran(&run, 1);
}

#[test]
fn missing_name_and_missing_main() {
    for (manifest, key) in [
        (r#"{"Group": "Fixtures", "Main": "libprobe_mod.so"}"#, "Name"),
        (r#"{"Group": "Fixtures", "Name": "Probe"}"#, "Main"),
    ] {
        let (server, dir) = with_broken(manifest, None);
        let run = server.run_ticks(TICKS, &[]);
        assert_eq!(
            run.disabled_reason("broken").unwrap(),
            format!("{}: missing required key `{key}`", dir.join("manifest.json").display())
        );
        assert_treasure_hunt_ran(&run, 1);
    }
}

#[test]
fn unknown_keys_warn_with_a_suggestion_and_the_mod_still_loads() {
    let manifest = r#"{"Group": "Fixtures", "Name": "Probe", "Main": "libprobe_mod.so", "Dependancies": {}}"#;
    let (server, dir) = with_broken(manifest, Some((&artifacts().probe_lib, "libprobe_mod.so")));
    let run = server.run_ticks(TICKS, &[]);
    let warning = run.lines_with("WARN");
    assert_eq!(warning.len(), 1, "{}", run.log);
    assert!(
        warning[0].contains(&format!(
            "mod Fixtures:Probe: {}: unknown key `Dependancies` ignored (did you mean `Dependencies`?)",
            dir.join("manifest.json").display()
        )),
        "{}",
        warning[0]
    );
    assert_treasure_hunt_ran(&run, 2);
}

#[test]
fn main_file_missing() {
    let (server, dir) = with_broken(PROBE_MANIFEST, None);
    let run = server.run_ticks(TICKS, &[]);
    assert_eq!(
        run.disabled_reason("Fixtures:Probe").unwrap(),
        format!(
            "{}: `Main` names {}, which does not exist",
            dir.join("manifest.json").display(),
            dir.join("libprobe_mod.so").display()
        )
    );
    assert_treasure_hunt_ran(&run, 1);
}

#[test]
fn a_file_that_is_not_a_library() {
    let (server, dir) = with_broken(PROBE_MANIFEST, None);
    std::fs::write(dir.join("libprobe_mod.so"), "this is a text file\n").unwrap();
    let run = server.run_ticks(TICKS, &[]);
    let lib = dir.join("libprobe_mod.so");
    let reason = run.disabled_reason("Fixtures:Probe").unwrap();
    assert!(reason.starts_with(&format!("{}: not a loadable library (", lib.display())), "{reason}");
    assert_treasure_hunt_ran(&run, 1);
}

/// A library cut inside its loaded segments, as an interrupted upload leaves it, used to kill
/// the server with SIGBUS at dlopen and no log line.
#[test]
fn a_library_cut_short_is_refused_before_dlopen() {
    let (server, dir) = with_broken(PROBE_MANIFEST, None);
    let whole = std::fs::read(&artifacts().probe_lib).unwrap();
    std::fs::write(dir.join("libprobe_mod.so"), &whole[..whole.len() / 8]).unwrap();
    let run = server.run_ticks(TICKS, &[]);
    let reason = run.disabled_reason("Fixtures:Probe").unwrap();
    let expected = format!(
        "{}: the library's file is cut short: its ELF headers describe {} bytes, the file has {} \
         (an interrupted upload or copy?); copy the mod's library again",
        dir.join("libprobe_mod.so").display(),
        whole.len(),
        whole.len() / 8
    );
    assert_eq!(reason, expected);
    assert_treasure_hunt_ran(&run, 1);
}

/// A copy of a mod folder with only `Name` changed in its manifest is the same library: loaded
/// twice it would share its state and store tables and handle every event twice.
#[test]
fn a_copy_of_a_mod_under_another_name_is_refused() {
    let server = TestServer::new().with_treasure_hunt("a_first").with_treasure_hunt("b_copy");
    let copy = server.root().join("mods/b_copy");
    let manifest = std::fs::read_to_string(copy.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"Name\": \"TreasureHunt\""), "{manifest}");
    std::fs::write(
        copy.join("manifest.json"),
        manifest.replace("\"Name\": \"TreasureHunt\"", "\"Name\": \"TreasureHunt2\""),
    )
    .unwrap();
    let run = server.run_ticks(TICKS, &[]);
    assert_eq!(
        run.disabled_reason("Veltrix:TreasureHunt2").unwrap(),
        format!(
            "{}: the same library as mod Veltrix:TreasureHunt, already loaded from {}: a second copy would share \
             its state and handle every event twice; remove one of the two folders",
            copy.join("libtreasure_hunt.so").display(),
            server.root().join("mods/a_first").display()
        )
    );
    assert_eq!(run.lines_with("DISABLED").len(), 1, "{}", run.log);
    // The first copy runs alone: one mod loaded, its system once per tick.
    assert_treasure_hunt_ran(&run, 1);
}

#[test]
fn abi_version_mismatch() {
    let manifest = r#"{"Group": "Fixtures", "Name": "FutureAbi", "Main": "libabi_mismatch.so"}"#;
    let (server, dir) = with_broken(manifest, Some((&artifacts().abi_mismatch_lib, "libabi_mismatch.so")));
    let run = server.run_ticks(TICKS, &[]);
    assert_eq!(
        run.disabled_reason("Fixtures:FutureAbi").unwrap(),
        format!(
            "{}: mod ABI version 99 (header of 80 bytes), this server speaks ABI version 1 (56 bytes): rebuild the mod against veltrix-sdk 0.1.0",
            dir.join("libabi_mismatch.so").display()
        )
    );
    assert_treasure_hunt_ran(&run, 1);
}

#[test]
fn fingerprint_mismatch_names_the_parts_that_differ() {
    let (server, dir) = with_broken(PROBE_MANIFEST, Some((&artifacts().probe_lib_other_flags, "libprobe_mod.so")));
    let run = server.run_ticks(TICKS, &[]);
    assert_eq!(
        run.disabled_reason("Fixtures:Probe").unwrap(),
        format!(
            "{}: built against a different sdk build, so it cannot safely share this server's std and bevy_ecs \
             (rustflags: mod `-C prefer-dynamic --cfg veltrix_fingerprint_probe`, server `-C prefer-dynamic`); \
             rebuild the mod with this server's toolchain, sdk and settings",
            dir.join("libprobe_mod.so").display()
        )
    );
    assert_treasure_hunt_ran(&run, 1);
}

#[test]
fn another_sdk_build_is_reported_by_the_missing_symbol() {
    let (server, dir) = with_broken(PROBE_MANIFEST, Some((&artifacts().probe_lib_other_sdk_build, "libprobe_mod.so")));
    let run = server.run_ticks(TICKS, &[]);
    let reason = run.disabled_reason("Fixtures:Probe").unwrap();
    let prefix = format!(
        "{}: built against another veltrix-sdk version or build: the server's libraries lack the symbol `",
        dir.join("libprobe_mod.so").display()
    );
    assert!(reason.starts_with(&prefix), "{reason}");
    assert!(reason.ends_with("`; rebuild the mod against veltrix-sdk 0.1.0 with this server's toolchain"), "{reason}");
    assert_treasure_hunt_ran(&run, 1);
}

#[test]
fn missing_dependency() {
    let manifest = r#"{"Group": "Fixtures", "Name": "Probe", "Main": "libprobe_mod.so", "Dependencies": {"Fixtures:Core": ">=2.0"}}"#;
    let (server, dir) = with_broken(manifest, Some((&artifacts().probe_lib, "libprobe_mod.so")));
    let run = server.run_ticks(TICKS, &[]);
    assert_eq!(
        run.disabled_reason("Fixtures:Probe").unwrap(),
        format!("{}: requires Fixtures:Core (>=2.0), which is not loaded", dir.join("manifest.json").display())
    );
    assert_treasure_hunt_ran(&run, 1);
}

#[test]
fn dependency_cycle_is_named() {
    let server = TestServer::new().with_treasure_hunt("Veltrix_TreasureHunt");
    let a = server.add_mod(
        "a",
        r#"{"Group": "Cycle", "Name": "A", "Main": "a.so", "Dependencies": {"Cycle:B": "*"}}"#,
        None,
    );
    let b = server.add_mod(
        "b",
        r#"{"Group": "Cycle", "Name": "B", "Main": "b.so", "Dependencies": {"Cycle:A": "*"}}"#,
        None,
    );
    let run = server.run_ticks(TICKS, &[]);
    for (name, dir) in [("Cycle:A", a), ("Cycle:B", b)] {
        assert_eq!(
            run.disabled_reason(name).unwrap(),
            format!("{}: dependency cycle: Cycle:A -> Cycle:B -> Cycle:A", dir.join("manifest.json").display())
        );
    }
    assert_treasure_hunt_ran(&run, 1);
}

#[test]
fn duplicate_mod_id_keeps_the_first_folder() {
    let server = TestServer::new().with_treasure_hunt("a_first").with_treasure_hunt("b_second");
    let run = server.run_ticks(TICKS, &[]);
    let first = server.root().join("mods/a_first");
    let second = server.root().join("mods/b_second");
    assert_eq!(
        run.disabled_reason("Veltrix:TreasureHunt").unwrap(),
        format!(
            "{}: duplicate mod id Veltrix:TreasureHunt: already loaded from {}",
            second.join("manifest.json").display(),
            first.display()
        )
    );
    assert_treasure_hunt_ran(&run, 1);
}

/// The probe loading before the treasure hunt, so its observers would see the hunt start.
const PROBE_FIRST: &str = r#"{"Group": "Fixtures", "Name": "Probe", "Version": "1.0.0", "Main": "libprobe_mod.so",
    "LoadBefore": {"Veltrix:TreasureHunt": "*"}}"#;

#[test]
fn setup_or_start_failing_disables_the_mod_and_its_systems() {
    for (failure, reason) in [
        ("PanicInSetup", "setup panicked: probe told to panic in setup at tests/fixtures/probe-mod/src/lib.rs"),
        ("ErrorInSetup", "setup failed: probe told to fail in setup"),
        ("PanicInStart", "start panicked: probe told to panic in start at tests/fixtures/probe-mod/src/lib.rs"),
    ] {
        let (server, dir) = with_broken(PROBE_FIRST, Some((&artifacts().probe_lib, "libprobe_mod.so")));
        server.write("mods/Fixtures_Probe/config.json", &format!(r#"{{"Failure": "{failure}"}}"#));
        let run = server.run_ticks(TICKS, &[]);
        let got = run.disabled_reason("Fixtures:Probe").unwrap();
        let expected = format!("{}: {reason}", dir.join("libprobe_mod.so").display());
        assert!(got.starts_with(&expected), "{failure}: {got}");
        // Its system never ran and its shutdown was not called; the good mod saw only itself.
        assert!(!run.log.contains("probe: its Tick system ran"), "{}", run.log);
        assert_eq!(run.lines_with("DISABLED").len(), 1, "one line per failure:\n{}", run.log);
        // Neither its staged observer nor the one it put on the world itself saw the hunt start.
        assert_eq!(run.lines_with("observer saw mod"), Vec::<&str>::new(), "{failure}");
        assert_treasure_hunt_ran(&run, 1);
    }
}

/// The same probe without a failure: both its observers see both mods start, so the test above
/// would see them too if they outlived the failure.
#[test]
fn a_started_mods_observers_run() {
    let (server, _) = with_broken(PROBE_FIRST, Some((&artifacts().probe_lib, "libprobe_mod.so")));
    let run = server.run_ticks(TICKS, &[]);
    for how in ["staged", "direct"] {
        for id in ["Fixtures:Probe", "Veltrix:TreasureHunt"] {
            let line = format!("probe: its {how} observer saw mod {id} start");
            assert_eq!(run.lines_with(&line).len(), 1, "{line}:\n{}", run.log);
        }
    }
    assert_treasure_hunt_ran(&run, 2);
}

#[test]
fn server_version_out_of_range() {
    let manifest = r#"{"Group": "Fixtures", "Name": "Probe", "Main": "libprobe_mod.so", "ServerVersion": ">=9.0"}"#;
    let (server, dir) = with_broken(manifest, Some((&artifacts().probe_lib, "libprobe_mod.so")));
    let run = server.run_ticks(TICKS, &[]);
    assert_eq!(
        run.disabled_reason("Fixtures:Probe").unwrap(),
        format!("{}: needs server version >=9.0, this server is 0.1.0", dir.join("manifest.json").display())
    );
    assert_treasure_hunt_ran(&run, 1);
}

#[test]
fn disabled_by_default_unless_the_config_enables_it() {
    let manifest = r#"{"Group": "Fixtures", "Name": "Probe", "Main": "libprobe_mod.so", "DisabledByDefault": true}"#;
    let server = TestServer::new().with_treasure_hunt("Veltrix_TreasureHunt");
    server.add_mod("probe", manifest, Some((&artifacts().probe_lib, "libprobe_mod.so")));
    let run = server.run_ticks(TICKS, &[]);
    assert!(run.log.contains("mod Fixtures:Probe not loaded: disabled by DisabledByDefault"), "{}", run.log);
    assert_treasure_hunt_ran(&run, 1);

    server.write(
        "config.json",
        r#"{"Mods": {"Fixtures:Probe": {"Enabled": true}, "Veltrix:TreasureHunt": {"Enabled": true}}}"#,
    );
    let run = server.run_ticks(TICKS, &[]);
    assert_treasure_hunt_ran(&run, 2);

    server.write(
        "config.json",
        r#"{"Mods": {"Fixtures:Probe": {"Enabled": true}, "Veltrix:TreasureHunt": {"Enabled": false}}}"#,
    );
    let run = server.run_ticks(TICKS, &[]);
    assert!(run.log.contains("mod Veltrix:TreasureHunt not loaded: disabled by the config's Mods map"), "{}", run.log);
    assert!(run.log.contains(&format!("probe: its Tick system ran {TICKS} times")), "{}", run.log);
}

#[test]
fn fail_on_mod_error_stops_the_server() {
    let (server, _) = with_broken(PROBE_MANIFEST, None);
    let run = server.run_ticks(TICKS, &["--fail-on-mod-error"]);
    assert!(!run.success);
    assert_eq!(run.code, Some(1));
    assert!(run.log.contains("1 mod(s) failed to load and FailOnModError is set; stopping"), "{}", run.log);
    // No tick ran; the mod that had started was shut down.
    assert_eq!(run.contract_probe(), Some((0, 0)), "{}", run.log);
}

#[test]
fn extra_mods_folder_is_loaded_with_data_under_the_root() {
    let server = TestServer::new();
    let extra = tempfile::tempdir().unwrap();
    let dir = extra.path().join("probe");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("manifest.json"), PROBE_MANIFEST).unwrap();
    std::fs::copy(&artifacts().probe_lib, dir.join("libprobe_mod.so")).unwrap();
    let run = server.run_ticks(TICKS, &["--mods", extra.path().to_str().unwrap()]);
    assert!(run.success, "{}", run.log);
    assert!(run.log.contains(&format!("probe: its Tick system ran {TICKS} times")), "{}", run.log);
    assert!(server.root().join("mods/Fixtures_Probe/config.json").is_file());
}
