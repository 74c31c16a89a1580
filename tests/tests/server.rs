//! The server process: config file, flags, signals.

use std::{
    io::{BufRead, BufReader},
    process::Stdio,
    time::{Duration, Instant},
};

use veltrix_tests::{Run, TestServer};

#[test]
fn first_start_writes_the_default_config() {
    let server = TestServer::new();
    let run = server.run_ticks(1, &[]);
    assert!(run.success, "{}", run.log);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(server.root().join("config.json")).unwrap()).unwrap();
    assert_eq!(config["ServerName"], "Veltrix Server");
    assert_eq!(config["Port"], 5520);
    assert_eq!(config["TickRate"], 30);
    assert_eq!(config["MaxPlayers"], 100);
    for dir in ["mods", "logs", "universe"] {
        assert!(server.root().join(dir).is_dir(), "{dir}/ created");
    }
}

#[test]
fn invalid_config_value_is_refused_with_its_key_path() {
    let server = TestServer::new();
    server.write(
        "config.json",
        "{\n  \"TickRate\": 30,\n  \"Mods\": {\"Veltrix:TreasureHunt\": {\"Enabled\": \"yes\"}}\n}\n",
    );
    let run = server.run_ticks(1, &[]);
    assert_eq!(run.code, Some(1));
    let file = server.root().join("config.json");
    assert!(
        run.log.contains(&format!(
            "invalid config: {}: Mods.Veltrix:TreasureHunt.Enabled: invalid type: string \"yes\", expected a boolean (line 3, column 52)",
            file.display()
        )),
        "{}",
        run.log
    );
    // The owner's file is left as it was.
    assert!(std::fs::read_to_string(file).unwrap().contains("\"yes\""));
}

#[test]
fn out_of_range_value_is_refused() {
    let server = TestServer::new();
    server.write("config.json", r#"{"TickRate": 5000}"#);
    let run = server.run_ticks(1, &[]);
    assert_eq!(run.code, Some(1));
    assert!(
        run.log.contains("TickRate: expected a number of ticks per second from 1 to 1000, found 5000"),
        "{}",
        run.log
    );
}

#[test]
fn invalid_flag_is_refused_by_name() {
    let server = TestServer::new();
    let run = Run::from(server.command().args(["--tick-rate", "fast"]).output().unwrap());
    assert_eq!(run.code, Some(2));
    assert!(run.log.contains("invalid value 'fast' for '--tick-rate <TPS>'"), "{}", run.log);
}

#[test]
fn help_documents_every_flag() {
    let server = TestServer::new();
    let run = Run::from(server.command().arg("--help").output().unwrap());
    assert!(run.success);
    for flag in [
        "--root",
        "--mods",
        "--server-name",
        "--max-players",
        "--port",
        "--tick-rate",
        "--max-catch-up-ticks",
        "--executor",
        "--fail-on-mod-error",
        "--ticks",
        "--log",
    ] {
        assert!(run.log.contains(flag), "--help mentions {flag}:\n{}", run.log);
    }
}

/// SIGTERM: the server finishes its tick, runs the mods' shutdown hooks, flushes its log file
/// and exits 0.
#[test]
fn sigterm_shuts_down_gracefully() {
    let server = TestServer::new().with_treasure_hunt("Veltrix_TreasureHunt");
    let mut child = server.command().stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !log.contains("running 1 mod(s)") {
        assert!(Instant::now() < deadline, "the server did not start:\n{log}");
        if stderr.read_line(&mut log).unwrap() == 0 {
            panic!("the server exited early:\n{log}");
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let status = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    log.push_str(&rest);
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit {exit:?}:\n{log}");
    let run = Run { success: true, code: Some(0), log };
    let (runs, seen) = run.contract_probe().expect("the mod's shutdown hook ran");
    assert!(runs >= 5, "about 9 ticks in 300 ms at 30 TPS, saw {runs}");
    assert_eq!(seen, 1);
    // The log file has everything, flushed at exit.
    let logs: Vec<_> = std::fs::read_dir(server.root().join("logs")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let file = std::fs::read_to_string(&logs[0]).unwrap();
    assert!(file.contains("contract probe") && file.trim_end().ends_with("server stopped"), "{file}");
}
