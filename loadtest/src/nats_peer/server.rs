//! The nats-server of a run: found, started on free loopback ports with a config of our own,
//! asked for its /varz, and stopped when dropped.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
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

/// A free loopback port (free when asked; the server binds it right after).
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A nats-server of our own, killed when dropped.
pub(super) struct NatsServer {
    child: Child,
    port: u16,
    monitor_port: u16,
    dir: PathBuf,
}

impl NatsServer {
    pub(super) fn start(binary: &Path) -> anyhow::Result<Self> {
        let port = free_port()?;
        let monitor_port = free_port()?;
        let dir = std::env::temp_dir().join(format!("veltrix-nats-peer-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        // Plain core NATS: no JetStream (off unless configured), no persistence. Room for more
        // than 12,000 connections, and generous per-connection pending bytes and write deadline
        // so that a burst does not make slow consumers of bots that are only late.
        let config = format!(
            "listen: \"127.0.0.1:{port}\"\n\
             http: \"127.0.0.1:{monitor_port}\"\n\
             max_connections: 65536\n\
             max_pending: 67108864\n\
             max_payload: 1048576\n\
             write_deadline: \"30s\"\n\
             debug: false\n\
             trace: false\n"
        );
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
        Ok(server)
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("nats.log")).unwrap_or_default();
        log.lines().rev().take(10).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    pub(super) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's /varz.
    pub(super) async fn varz(&self) -> anyhow::Result<serde_json::Value> {
        let port = self.monitor_port;
        tokio::task::spawn_blocking(move || {
            let mut stream = TcpStream::connect(("127.0.0.1", port))?;
            stream.set_read_timeout(Some(Duration::from_secs(10)))?;
            stream.write_all(b"GET /varz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
            let mut response = String::new();
            stream.read_to_string(&mut response)?;
            let body = response.split_once("\r\n\r\n").context("malformed /varz response")?.1;
            Ok(serde_json::from_str(body)?)
        })
        .await?
    }
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
