//! The server process: config file, flags, signals.

use std::{
    io::{Read, Write},
    process::Stdio,
    time::Duration,
};

use veltrix_client::{Client, hello};
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
        "--ready-file",
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
    let live = server.start(&[]);
    live.wait_for_log(0, "running 1 mod(s)");
    // The signal comes in tick 10 or later.
    live.wait_for_tick(10);
    let (exit, log) = live.stop();
    assert!(exit.success(), "exit {exit:?}:\n{log}");
    let run = Run { success: true, code: Some(0), log };
    let (runs, seen) = run.contract_probe().expect("the mod's shutdown hook ran");
    assert!(runs >= 9, "ticks 1 to 9 had run before the signal, the probe saw {runs}");
    assert_eq!(seen, 1);
    // The log file has everything, flushed at exit.
    let logs: Vec<_> = std::fs::read_dir(server.root().join("logs")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let file = std::fs::read_to_string(&logs[0]).unwrap();
    assert!(file.contains("contract probe") && file.trim_end().ends_with("server stopped"), "{file}");
}

/// `--ready-file`: once the server serves, the file says where (port 0: ports it picked), in
/// place of what an earlier run left there; once it has stopped, the file is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ready_file_names_the_addresses_the_server_serves_on() {
    let server = TestServer::new();
    let ready = server.root().join("ready.json");
    std::fs::write(&ready, r#"{"game": "127.0.0.1:1", "admin": null, "pid": 0}"#).unwrap();
    let child = server
        .command()
        .arg("--ready-file")
        .arg(&ready)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let written = veltrix_tests::poll(Duration::from_secs(60), || {
        let text = std::fs::read_to_string(&ready).ok()?;
        let written: serde_json::Value = serde_json::from_str(&text).expect("the file is whole JSON");
        (written["pid"] != 0).then_some(written)
    });
    let stop = || std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    let Some(written) = written else {
        stop();
        panic!("no ready file:\n{}", String::from_utf8_lossy(&child.wait_with_output().unwrap().stderr));
    };
    assert_eq!(written["pid"], pid, "{written}");
    let game: std::net::SocketAddr = written["game"].as_str().and_then(|a| a.parse().ok()).expect("the game address");
    let admin = written["admin"].as_str().expect("the admin address");
    assert!(game.port() != 0 && game.port() != 1, "{written}");

    // Players join there (bound to every interface), and the admin listener says a tick has run.
    let game = format!("127.0.0.1:{}", game.port());
    let (_ana, welcome) = Client::connect(&game, hello("ana")).await.expect("the game address serves players");
    assert!(welcome.tick >= 1, "{welcome:?}");
    let mut http = std::net::TcpStream::connect(admin).expect("the admin address serves");
    write!(http, "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    http.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200") && response.contains("\"status\":\"ok\""), "{response}");

    assert!(stop().success());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(!ready.exists(), "the ready file outlived the server");
}

/// A ready file that cannot be written is refused before anything starts.
#[test]
fn a_ready_file_in_a_missing_folder_is_refused() {
    let server = TestServer::new();
    let ready = server.root().join("nowhere/ready.json");
    let run = server.run_ticks(1, &["--ready-file", ready.to_str().unwrap()]);
    assert_eq!(run.code, Some(1), "{}", run.log);
    assert!(run.log.contains("does not exist: create it or name a file in another folder"), "{}", run.log);
}
