//! What the integration tests share: the server built and laid out as an owner gets it, and
//! a temporary server root to run it in.
//!
//! The server and its mods are built with `cargo build` into `target/it/` (a target folder of
//! their own, so the build never waits on the `cargo test` that runs us), with the same
//! layout code as `cargo xtask serve`. Two more builds make honest misfits: the probe mod
//! built with other rustflags (same symbols, different fingerprint), and built alone (cargo
//! unifies features per invocation, so that is another build of the sdk: missing symbols).
//! A server with cargo features (the benchmark build) is built on demand, each feature set in
//! a target folder of its own ([`server_with_features`]).

use std::{
    collections::BTreeMap,
    fs,
    io::{Read, Write},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::{Arc, Condvar, Mutex, OnceLock},
    time::{Duration, Instant},
};

use xtask::{Build, assemble, workspace_root};

pub mod browser;
pub mod nats;
pub mod netns;

/// A port no one listens on now, for a server that must keep its port across restarts.
pub fn free_port() -> u16 {
    let [port] = free_ports();
    port
}

/// `N` different free loopback ports: all are held until all are picked, so that the system
/// cannot give the same one twice (it did: a nats-server's client and monitoring ports).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let held: [std::net::TcpListener; N] =
        std::array::from_fn(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"));
    held.map(|l| l.local_addr().expect("a bound port").port())
}

/// Fixture packages built beside the server.
const FIXTURES: &[&str] = &["veltrix-fixture-probe-mod", "veltrix-fixture-abi-mismatch"];

/// The built server and fixture libraries.
pub struct Artifacts {
    /// The server folder: binary, libraries, `mods/Veltrix_TreasureHunt/`.
    pub server_dir: PathBuf,
    /// The probe mod's library, from the same build as the server.
    pub probe_lib: PathBuf,
    /// A library exporting a header of another ABI version.
    pub abi_mismatch_lib: PathBuf,
    /// The probe mod built with other rustflags: another fingerprint.
    pub probe_lib_other_flags: PathBuf,
    /// The probe mod built alone: another build of the sdk.
    pub probe_lib_other_sdk_build: PathBuf,
}

/// Builds everything once per test process.
pub fn artifacts() -> &'static Artifacts {
    static ARTIFACTS: OnceLock<Artifacts> = OnceLock::new();
    ARTIFACTS
        .get_or_init(|| build_artifacts().unwrap_or_else(|e| panic!("building the server for the tests failed: {e:#}")))
}

fn build_artifacts() -> xtask::anyhow::Result<Artifacts> {
    let target = workspace_root().join("target");
    let stash = target.join("it-fixtures");
    fs::create_dir_all(&stash)?;

    let mut build = Build::new(false);
    build.target_dir = target.join("it");
    build.extra_packages = FIXTURES.iter().map(|s| s.to_string()).collect();
    let out = build.run()?;
    let server_dir = target.join("it-server");
    assemble(&out, &server_dir)?;

    let mut other_flags = build.clone();
    other_flags.target_dir = target.join("it-other-flags");
    other_flags.extra_rustflags = vec!["--cfg".into(), "veltrix_fingerprint_probe".into()];
    let other_out = other_flags.run()?;
    let probe_lib_other_flags = stash.join("other-flags-libprobe_mod.so");
    copy_fresh(&other_out.join("libprobe_mod.so"), &probe_lib_other_flags)?;

    // Alone, in its own target folder: a build of the sdk with other dependency features.
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(workspace_root())
        .args(["build", "-p", "veltrix-fixture-probe-mod", "--target-dir"])
        .arg(target.join("it-alone"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()?;
    xtask::anyhow::ensure!(status.success(), "building the probe mod alone failed");
    let probe_lib_other_sdk_build = stash.join("alone-libprobe_mod.so");
    copy_fresh(&target.join("it-alone/debug/libprobe_mod.so"), &probe_lib_other_sdk_build)?;

    Ok(Artifacts {
        server_dir,
        probe_lib: out.join("libprobe_mod.so"),
        abi_mismatch_lib: out.join("libabi_mismatch.so"),
        probe_lib_other_flags,
        probe_lib_other_sdk_build,
    })
}

/// The server folder of a debug build with `features` (as `package/feature`, e.g.
/// `xtask::BENCH_FEATURES`): the server and its mods built together into `target/it-<features>/`
/// (cargo names the sdk and mod libraries without a hash, so each feature set needs a target
/// folder of its own, never the other tests'), laid out in `target/it-<features>-server/`
/// (`<features>`: the feature names without their packages, `bench` for the benchmark build).
/// Built once per test process and feature set.
pub fn server_with_features(features: &[&str]) -> PathBuf {
    static BUILT: Mutex<BTreeMap<Vec<String>, PathBuf>> = Mutex::new(BTreeMap::new());
    let features: Vec<String> = features.iter().map(|f| f.to_string()).collect();
    let mut built = BUILT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(dir) = built.get(&features) {
        return dir.clone();
    }
    // `veltrix-host/bench` -> `bench`.
    let slug: Vec<&str> = features.iter().map(|f| f.rsplit('/').next().unwrap_or(f)).collect();
    let slug: String =
        slug.join("-").chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
    let target = workspace_root().join("target");
    let mut build = Build::new(false);
    build.target_dir = target.join(format!("it-{slug}"));
    build.features = features.clone();
    let dir = target.join(format!("it-{slug}-server"));
    build
        .run()
        .and_then(|out| assemble(&out, &dir))
        .unwrap_or_else(|e| panic!("building the server with features {features:?} failed: {e:#}"));
    built.insert(features, dir.clone());
    dir
}

fn copy_fresh(from: &Path, to: &Path) -> std::io::Result<()> {
    let _ = fs::remove_file(to);
    fs::copy(from, to).map(|_| ())
}

/// A fresh server root in a temporary folder.
pub struct TestServer {
    root: tempfile::TempDir,
    /// The shipped server folder to run from; the tests' debug build unless set.
    server_dir: Option<PathBuf>,
    /// Environment variables the server runs with.
    env: Vec<(String, String)>,
    /// The player port; a free one when unset.
    port: u16,
    /// A command the server runs under (`ip netns exec NAME`), when set.
    wrapper: Vec<String>,
}

impl Default for TestServer {
    fn default() -> Self {
        Self::new()
    }
}

impl TestServer {
    /// An empty root: no config yet, an empty `mods/`.
    pub fn new() -> Self {
        let root = tempfile::Builder::new().prefix("veltrix-it-").tempdir().expect("a temporary folder");
        fs::create_dir_all(root.path().join("mods")).expect("mods/");
        Self { root, server_dir: None, env: Vec::new(), port: 0, wrapper: Vec::new() }
    }

    /// Runs the server from another shipped folder (a release build, for benchmarks).
    pub fn with_server_dir(mut self, dir: PathBuf) -> Self {
        self.server_dir = Some(dir);
        self
    }

    /// Runs a debug build of the server made with these cargo features
    /// ([`server_with_features`]), e.g. `xtask::BENCH_FEATURES`. Call before
    /// [`with_treasure_hunt`](Self::with_treasure_hunt), which copies the mod of that build.
    pub fn with_features(self, features: &[&str]) -> Self {
        self.with_server_dir(server_with_features(features))
    }

    /// Runs the server on this player port, the same one each start (a client reconnecting
    /// across a restart). Pick it with [`free_port`].
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Runs the server under `wrapper` (its program and arguments come first), e.g. in a network
    /// namespace ([`netns::Netns::exec`]).
    pub fn with_wrapper(mut self, wrapper: Vec<String>) -> Self {
        self.wrapper = wrapper;
        self
    }

    /// Runs the server with this environment variable set.
    pub fn with_env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Runs the server without this environment variable from the next start on.
    pub fn remove_env(&mut self, name: &str) {
        self.env.retain(|(n, _)| n != name);
    }

    fn server_dir(&self) -> &Path {
        self.server_dir.as_deref().unwrap_or_else(|| &artifacts().server_dir)
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Copies the shipped treasure-hunt mod folder (manifest, library, asset pack) into
    /// `mods/<folder>`.
    pub fn with_treasure_hunt(self, folder: &str) -> Self {
        let from = self.server_dir().join("mods/Veltrix_TreasureHunt");
        let to = self.root().join("mods").join(folder);
        fs::create_dir_all(&to).unwrap();
        for file in ["manifest.json", "libtreasure_hunt.so"] {
            fs::copy(from.join(file), to.join(file)).unwrap();
        }
        xtask::copy_tree(&from.join("assets"), &to.join("assets")).expect("the asset pack copies");
        self
    }

    /// Writes a mod folder `mods/<folder>` with this manifest and, when given, this library
    /// copied under the name `library_name`.
    pub fn add_mod(&self, folder: &str, manifest: &str, library: Option<(&Path, &str)>) -> PathBuf {
        let dir = self.root().join("mods").join(folder);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("manifest.json"), manifest).unwrap();
        if let Some((from, name)) = library {
            fs::copy(from, dir.join(name)).unwrap();
        }
        dir
    }

    /// Writes a file under the root.
    pub fn write(&self, relative: &str, text: &str) {
        let path = self.root().join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// The server command, rooted here, on free ports (tests run side by side), with a clean
    /// environment for its libraries.
    pub fn command(&self) -> Command {
        let server = self.server_dir().join("veltrix-server");
        let mut cmd = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(server);
                cmd
            }
            None => Command::new(server),
        };
        cmd.arg("--root")
            .arg(self.root())
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--admin-address", "127.0.0.1:0"])
            .env_remove("LD_LIBRARY_PATH")
            .env_remove("RUST_LOG")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs the server for `ticks` ticks with extra arguments; returns what it printed.
    pub fn run_ticks(&self, ticks: u64, args: &[&str]) -> Run {
        let output =
            self.command().arg("--ticks").arg(ticks.to_string()).args(args).output().expect("the server starts");
        Run::from(output)
    }
}

/// What a server run printed and how it ended.
pub struct Run {
    pub success: bool,
    pub code: Option<i32>,
    /// Standard error (the log), timestamps left in place.
    pub log: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        let mut log = String::from_utf8_lossy(&output.stderr).into_owned();
        log.push_str(&String::from_utf8_lossy(&output.stdout));
        Self { success: output.status.success(), code: output.status.code(), log }
    }
}

impl Run {
    /// The log lines containing `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<&str> {
        self.log.lines().filter(|l| l.contains(needle)).collect()
    }

    /// The reason given for disabling `mod_name`: the text after `DISABLED: <file>: `.
    pub fn disabled_reason(&self, mod_name: &str) -> Option<String> {
        let prefix = format!("mod {mod_name} DISABLED: ");
        self.log.lines().find_map(|l| l.split_once(&prefix).map(|(_, rest)| rest.to_string()))
    }

    /// How many times the treasure-hunt mod's contract system ran, and how many loaded mods
    /// it saw, from its shutdown log line.
    pub fn contract_probe(&self) -> Option<(u64, u64)> {
        let line = self.log.lines().find(|l| l.contains("contract probe: the Tick system ran"))?;
        let after = line.split("ran ").nth(1)?;
        let runs = after.split(' ').next()?.parse().ok()?;
        let seen = after.split("saw ").nth(1)?.split(' ').next()?.parse().ok()?;
        Some((runs, seen))
    }
}

/// A server running in the background until dropped (SIGTERM, then wait), its log collected
/// as it goes, its standard input open for console commands.
pub struct LiveServer {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    log: Arc<Captured>,
    stdout: Arc<Captured>,
    /// The threads reading the two pipes: done once the process and its pipes are gone.
    readers: Vec<std::thread::JoinHandle<()>>,
    /// Holds the ready file (`--ready-file`).
    _ready_dir: tempfile::TempDir,
    /// `127.0.0.1:<port>` of the player endpoint.
    pub addr: String,
    /// `127.0.0.1:<port>` of the admin listener.
    pub admin: String,
}

/// What a process wrote on one pipe so far, whole lines at a time, with a signal when more
/// comes or the pipe ends.
#[derive(Default)]
struct Captured {
    state: Mutex<CapturedText>,
    grew: Condvar,
}

#[derive(Default)]
struct CapturedText {
    text: String,
    ended: bool,
}

impl Captured {
    /// Reads `pipe` on a thread of its own until it ends. What one read returns is added at
    /// once, up to its last newline: a console answer written in one write arrives whole.
    fn read_from(self: &Arc<Self>, mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<()> {
        let captured = Arc::clone(self);
        std::thread::spawn(move || {
            let mut pending = Vec::new();
            let mut chunk = [0u8; 8192];
            loop {
                let n = match pipe.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                pending.extend_from_slice(&chunk[..n]);
                if let Some(end) = pending.iter().rposition(|&b| b == b'\n') {
                    let lines: Vec<u8> = pending.drain(..=end).collect();
                    captured.state.lock().unwrap().text.push_str(&String::from_utf8_lossy(&lines));
                    captured.grew.notify_all();
                }
            }
            let mut state = captured.state.lock().unwrap();
            if !pending.is_empty() {
                state.text.push_str(&String::from_utf8_lossy(&pending));
                state.text.push('\n');
            }
            state.ended = true;
            drop(state);
            captured.grew.notify_all();
        })
    }

    fn text(&self) -> String {
        self.state.lock().unwrap().text.clone()
    }

    /// Waits until `found` finds something in the text, for at most `timeout`; the text so far
    /// when it did not (the timeout passed, or the pipe ended first).
    fn wait_for<T>(&self, timeout: Duration, mut found: impl FnMut(&str) -> Option<T>) -> Result<T, String> {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock().unwrap();
        loop {
            if let Some(value) = found(&state.text) {
                return Ok(value);
            }
            let now = Instant::now();
            if state.ended || now >= deadline {
                return Err(state.text.clone());
            }
            state = self.grew.wait_timeout(state, deadline - now).unwrap().0;
        }
    }
}

/// The ready file's JSON (`--ready-file`, docs/configuration.md), read when it is there.
/// The filled slots of a treasure-hunt `InventoryChanged` body, read as JSON: (item, quantity).
pub fn inventory_slots(inventory: &serde_json::Value) -> Vec<(String, u64)> {
    inventory["Slots"]
        .as_array()
        .expect("an inventory has slots")
        .iter()
        .filter(|s| !s.is_null())
        .map(|s| (s["Item"].as_str().unwrap().to_string(), s["Quantity"].as_u64().unwrap()))
        .collect()
}

fn read_ready_file(path: &Path) -> Option<serde_json::Value> {
    // The server renames it into place whole: there or not, never half-written.
    let text = fs::read_to_string(path).ok()?;
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}: {text}", path.display())))
}

/// Checks `found` every 10 milliseconds until it finds something, for at most `timeout`:
/// waiting on a fact that tells no one when it comes (a file, an HTTP answer).
pub fn poll<T>(timeout: Duration, mut found: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = found() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl TestServer {
    /// Starts the server with extra arguments and waits until it serves: until its ready file
    /// (`--ready-file`) names the addresses it listens on, which it writes after its first
    /// tick. Panics with the log if it exits first.
    pub fn start(&self, args: &[&str]) -> LiveServer {
        let ready_dir = tempfile::Builder::new().prefix("veltrix-ready-").tempdir().expect("a temporary folder");
        let ready_file = ready_dir.path().join("ready.json");
        let mut child = self
            .command()
            .args(args)
            .arg("--ready-file")
            .arg(&ready_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server starts");
        let (log, stdout) = (Arc::new(Captured::default()), Arc::new(Captured::default()));
        let readers = vec![log.read_from(child.stderr.take().unwrap()), stdout.read_from(child.stdout.take().unwrap())];
        let stdin = child.stdin.take().unwrap();
        let mut exited = None;
        let ready = poll(Duration::from_secs(60), || {
            if let Some(status) = child.try_wait().expect("the server's status") {
                exited = Some(status);
                return Some(None);
            }
            read_ready_file(&ready_file).map(Some)
        });
        let ready = match (ready, exited) {
            (Some(Some(ready)), _) => ready,
            (_, Some(status)) => {
                for reader in readers {
                    let _ = reader.join();
                }
                panic!("the server failed to start ({status}):\n{}", log.text())
            }
            _ => panic!("the server did not start within 60 s:\n{}", log.text()),
        };
        let game = ready["game"].as_str().and_then(|a| a.parse::<std::net::SocketAddr>().ok());
        let game = game.unwrap_or_else(|| panic!("no game address in the ready file: {ready}"));
        // Bound to every interface (`Network.Bind` "0.0.0.0"): reached on loopback.
        let addr = format!("127.0.0.1:{}", game.port());
        // Null with `--admin-address ""`.
        let admin = ready["admin"].as_str().unwrap_or_default().to_string();
        LiveServer { child, stdin, log, stdout, readers, _ready_dir: ready_dir, addr, admin }
    }
}

impl LiveServer {
    /// The log so far.
    pub fn log(&self) -> String {
        self.log.text()
    }

    /// Waits until a log line written after byte `from` of the log contains `needle`; returns
    /// that line. Panics with the log after 10 seconds.
    pub fn wait_for_log(&self, from: usize, needle: &str) -> String {
        self.log
            .wait_for(Duration::from_secs(10), |log| {
                log.get(from..).and_then(|new| new.lines().find(|l| l.contains(needle))).map(str::to_string)
            })
            .unwrap_or_else(|log| panic!("no log line with {needle:?} came:\n{log}"))
    }

    /// Types a command on the console and returns what it printed (waits for the output).
    pub fn console(&mut self, line: &str) -> String {
        let before = self.stdout.text().len();
        writeln!(self.stdin, "{line}").expect("the console reads");
        self.stdout
            .wait_for(Duration::from_secs(10), |out| {
                (out.len() > before && out.ends_with('\n')).then(|| out[before..].to_string())
            })
            .unwrap_or_else(|_| panic!("no console output for {line:?}"))
    }

    /// Resident memory of the server process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's `/health`: `{"status": "ok" (or "starting", "stalled"), "tick": N, "players": N}`.
    pub fn health(&self) -> serde_json::Value {
        let (status, body) = self.admin_get("/health");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("/health: {e}: {status}\n{body}"))
    }

    /// The tick the server is at, from its `/health`: every tick before it has finished, its
    /// commit included.
    pub fn current_tick(&self) -> u64 {
        let health = self.health();
        health["tick"].as_u64().unwrap_or_else(|| panic!("/health has no tick: {health}"))
    }

    /// Waits until the server has begun tick `n`, so that every tick before it has finished.
    /// Panics after 10 seconds.
    pub fn wait_for_tick(&self, n: u64) {
        poll(Duration::from_secs(10), || (self.current_tick() >= n).then_some(()))
            .unwrap_or_else(|| panic!("tick {n} did not come: the server is at tick {}", self.current_tick()));
    }

    /// An HTTP GET on the admin listener: (status line, body).
    /// The value of the Prometheus series `name` (without labels) on `/metrics`.
    pub fn metric(&self, name: &str) -> String {
        let (_, body) = self.admin_get("/metrics");
        let line =
            body.lines().find(|l| l.split(' ').next() == Some(name)).unwrap_or_else(|| panic!("no {name}:\n{body}"));
        line.rsplit(' ').next().unwrap().to_string()
    }

    pub fn admin_get(&self, path: &str) -> (String, String) {
        self.admin_request("GET", path)
    }

    /// An HTTP POST without a body on the admin listener: (status line, body).
    pub fn admin_post(&self, path: &str) -> (String, String) {
        self.admin_request("POST", path)
    }

    fn admin_request(&self, method: &str, path: &str) -> (String, String) {
        let mut stream = std::net::TcpStream::connect(&self.admin).expect("the admin listener accepts");
        write!(stream, "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        (head.lines().next().unwrap_or_default().to_string(), body.to_string())
    }

    /// Stops the server with SIGTERM and returns its exit status and log.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let status = self.child.wait().unwrap();
        (status, self.log_to_the_end())
    }

    /// Kills the server with SIGKILL (no shutdown of any kind) and returns its log.
    pub fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log_to_the_end()
    }

    /// The whole log of a server that has exited: once its pipes are read to their end.
    fn log_to_the_end(&mut self) -> String {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        self.log()
    }
}

impl Drop for LiveServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tmpfs mounted on a folder until dropped: a small file system that fills up, for the
/// store's full-disk tests (CI runs them as root).
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount -o size=`, e.g. `4m`) on `dir`, made if missing. `None`
    /// when mounting is not permitted here (not root): the caller skips its test, saying so.
    pub fn mount(dir: &Path, size: &str) -> Option<Self> {
        fs::create_dir_all(dir).expect("the mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("mount runs");
        if !out.status.success() {
            eprintln!(
                "SKIPPED: cannot mount a tmpfs on {} (run as root for the full-disk tests): {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(Self { dir: dir.to_path_buf() })
    }

    /// Fills the file system with the file `filler` until a write fails; returns its path.
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.dir.join("filler");
        let mut file = fs::OpenOptions::new().create(true).append(true).open(&path).expect("the filler");
        let block = vec![0x5au8; 4096];
        while file.write_all(&block).and_then(|()| file.sync_all()).is_ok() {}
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a server killed a moment ago may still hold the store open.
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}
