//! The test nats-server (`veltrix_tests::nats`): it serves JetStream, fsyncs every write, and
//! keeps what it acknowledged across a SIGKILL and a restart on the same ports and store.
//! Needs nats-server 2.12 or newer; `.ci/run` installs the pinned one.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    time::Duration,
};

use serde_json::{Value, json};
use veltrix_tests::nats::NatsServer;

/// A bare NATS client speaking the text protocol: enough for a few JetStream API requests.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

const INBOX: &str = "_INBOX.nats-test";

impl Client {
    fn connect(server: &NatsServer) -> Client {
        let writer = TcpStream::connect(("127.0.0.1", server.port())).expect("nats-server accepts");
        writer.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut client = Client { reader: BufReader::new(writer.try_clone().unwrap()), writer };
        let info = client.line();
        assert!(info.starts_with("INFO "), "not a NATS greeting: {info}");
        write!(client.writer, "CONNECT {{\"verbose\":false,\"pedantic\":false}}\r\nSUB {INBOX} 1\r\nPING\r\n").unwrap();
        loop {
            match client.line().as_str() {
                "PONG" => return client,
                line if line.starts_with("-ERR") => panic!("nats-server refused the connection: {line}"),
                _ => {}
            }
        }
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("nats-server answers");
        assert!(!line.is_empty(), "nats-server closed the connection");
        line.trim_end().to_string()
    }

    /// Publishes `payload` to `subject` with a reply subject and returns the JSON answer.
    fn request(&mut self, subject: &str, payload: &Value) -> Value {
        let payload = payload.to_string();
        write!(self.writer, "PUB {subject} {INBOX} {}\r\n{payload}\r\n", payload.len()).unwrap();
        loop {
            let line = self.line();
            if line == "PING" {
                self.writer.write_all(b"PONG\r\n").unwrap();
            } else if let Some(rest) = line.strip_prefix("MSG ") {
                let len: usize = rest.rsplit(' ').next().and_then(|n| n.parse().ok()).expect("a MSG length");
                let mut body = vec![0; len + 2];
                self.reader.read_exact(&mut body).unwrap();
                return serde_json::from_slice(&body[..len]).expect("a JSON answer");
            } else {
                assert!(!line.starts_with("-ERR"), "nats-server: {line}");
            }
        }
    }
}

#[test]
fn nats_server_keeps_acknowledged_writes_across_a_kill_and_restart() {
    let Some(mut nats) = NatsServer::start() else { return };
    assert!(nats.url().starts_with("nats://127.0.0.1:"), "{}", nats.url());
    assert!(nats.healthz(), "healthz after start");
    let jsz = nats.monitor_json("/jsz");
    assert_eq!(jsz["config"]["sync_always"], json!(true), "JetStream fsyncs every write: {jsz}");

    let mut client = Client::connect(&nats);
    let created = client.request(
        "$JS.API.STREAM.CREATE.HUNT",
        &json!({"name": "HUNT", "subjects": ["hunt.>"], "storage": "file", "num_replicas": 1}),
    );
    assert!(created.get("error").is_none(), "stream create: {created}");
    let ack = client.request("hunt.claims", &json!({"vault": 7}));
    assert_eq!(ack["seq"], json!(1), "publish ack: {ack}");
    drop(client);

    let (port, monitor_port, pid) = (nats.port(), nats.monitor_port(), nats.pid());
    nats.kill();
    assert!(!nats.healthz(), "healthz answers after a kill");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "the client port accepts after a kill");

    nats.restart();
    assert!(nats.healthz(), "healthz after the restart");
    assert_eq!((nats.port(), nats.monitor_port()), (port, monitor_port), "the same ports");
    assert_ne!(nats.pid(), pid, "a new process");
    let jsz = nats.monitor_json("/jsz");
    assert_eq!((jsz["streams"].clone(), jsz["messages"].clone()), (json!(1), json!(1)), "the store survived: {jsz}");
}
