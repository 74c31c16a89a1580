//! A network namespace of a test's own, for real partitions (iproute2; root only): a process run
//! in it reaches the rest of the machine through two links, one for NATS and one for players,
//! so the NATS link can be cut while players still play.
//!
//! ```text
//!   machine 10.<n>.1.1 ── nats link ── 10.<n>.1.2  namespace
//!   machine 10.<n>.2.1 ── players link ── 10.<n>.2.2
//! ```

use std::{process::Command, sync::atomic::AtomicU32};

/// A namespace with its two links; deleted (links and all) when dropped.
pub struct Netns {
    name: String,
    /// The machine's end of the NATS link.
    nats_link: String,
    /// The second octet of its addresses.
    net: u32,
}

/// Namespaces made by this process so far (for unique names and addresses).
static MADE: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

impl Netns {
    /// A new namespace with its links up, or why there cannot be one (not root, no iproute2):
    /// the caller says SKIPPED.
    pub fn create() -> Result<Netns, String> {
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{}{n}", std::process::id() % 100_000);
        // 10.100-199.x.x: one /16 per namespace of this process.
        let net = 100 + (std::process::id() + n) % 100;
        let ns = Netns { name: format!("vx{id}"), nats_link: format!("vxn{id}"), net };
        ip(&["netns", "add", &ns.name])?;
        ip(&["-n", &ns.name, "link", "set", "lo", "up"])?;
        for (link, subnet) in [("n", 1), ("p", 2)] {
            let (outside, inside) = (format!("vx{link}{id}"), format!("vx{link}{id}i"));
            ip(&["link", "add", &outside, "type", "veth", "peer", "name", &inside, "netns", &ns.name])?;
            ip(&["addr", "add", &format!("10.{net}.{subnet}.1/24"), "dev", &outside])?;
            ip(&["link", "set", &outside, "up"])?;
            ip(&["-n", &ns.name, "addr", "add", &format!("10.{net}.{subnet}.2/24"), "dev", &inside])?;
            ip(&["-n", &ns.name, "link", "set", &inside, "up"])?;
        }
        Ok(ns)
    }

    /// The command prefix that runs a program in the namespace.
    pub fn exec(&self) -> Vec<String> {
        ["ip", "netns", "exec", &self.name].map(String::from).to_vec()
    }

    /// The machine's address on the NATS link (where a process in the namespace finds NATS).
    pub fn nats_ip(&self) -> String {
        format!("10.{}.1.1", self.net)
    }

    /// The namespace's address on the players' link (where players find a server in it).
    pub fn players_ip(&self) -> String {
        format!("10.{}.2.2", self.net)
    }

    /// Cuts the NATS link: nothing passes either way until [`heal`](Self::heal).
    pub fn cut(&self) {
        ip(&["link", "set", &self.nats_link, "down"]).expect("the NATS link goes down");
    }

    /// Puts the NATS link back.
    pub fn heal(&self) {
        ip(&["link", "set", &self.nats_link, "up"]).expect("the NATS link comes up");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Its links go with it.
        let _ = ip(&["netns", "del", &self.name]);
    }
}
