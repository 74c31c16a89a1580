//! The floor: what this machine's loopback TCP costs per message before any of our code runs.
//! N connections on loopback, one writer thread writing small messages to each in turn (one
//! message per `write`, then two), one reader thread draining them all through epoll (mio).
//! Each thread's own CPU time (`CLOCK_THREAD_CPUTIME_ID`) divided by the messages it moved is
//! the cost per message of a write and of a read. On loopback the receiver's TCP work runs in
//! the sender's system call, so both figures are needed: a server writing frames and bots
//! reading them on one machine pay both.
//!
//! From it, the most bots this machine could serve at a given frame rate if the system calls
//! were all the work: `cores / (frames per bot per second x (write + read))`.

use std::{
    io::{self, ErrorKind, Read, Write},
    net::{TcpListener, TcpStream},
    thread,
    time::Duration,
};

use mio::{Events, Interest, Poll, Token};

/// What one calibration measured, in microseconds of CPU per message.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Floor {
    pub connections: usize,
    pub message_bytes: usize,
    /// Messages moved in each of the two runs.
    pub messages: usize,
    /// One message per `write`: the writer's and the reader's CPU per message.
    pub write_us: f64,
    pub read_us: f64,
    /// Two messages per `write` (and so per segment the reader takes).
    pub write_us_paired: f64,
    pub read_us_paired: f64,
}

impl Floor {
    /// The most bots `cores` could serve at `frames_per_bot_per_second`, one write and one read
    /// a frame, if the system calls were all the work.
    pub fn capacity(&self, cores: f64, frames_per_bot_per_second: f64) -> f64 {
        cores * 1e6 / (frames_per_bot_per_second * (self.write_us + self.read_us))
    }

    /// The same with two frames a write.
    pub fn capacity_paired(&self, cores: f64, frames_per_bot_per_second: f64) -> f64 {
        cores * 1e6 / (frames_per_bot_per_second * (self.write_us_paired + self.read_us_paired))
    }
}

/// Measures the floor over `connections` loopback connections, `rounds` messages of
/// `message_bytes` to each, once with a message per write and once with two. Each connection
/// takes two open files (both ends are in this process).
pub fn measure(connections: usize, rounds: usize, message_bytes: usize) -> io::Result<Floor> {
    let open_files = crate::clock::raise_open_files();
    if (open_files as usize) < 2 * connections + 16 {
        return Err(io::Error::other(format!(
            "{connections} connections need {} open files (both ends are here); this process may open \
             {open_files}: raise the hard limit (`ulimit -Hn`) or use fewer connections",
            2 * connections + 16
        )));
    }
    let (single_write, single_read) = run(connections, rounds, message_bytes, 1)?;
    let (paired_write, paired_read) = run(connections, rounds / 2, message_bytes, 2)?;
    let messages = connections * rounds;
    let paired = connections * (rounds / 2) * 2;
    Ok(Floor {
        connections,
        message_bytes,
        messages,
        write_us: single_write / messages as f64,
        read_us: single_read / messages as f64,
        write_us_paired: paired_write / paired as f64,
        read_us_paired: paired_read / paired as f64,
    })
}

/// One run: the writer's and the reader's CPU time, in microseconds.
fn run(connections: usize, rounds: usize, message_bytes: usize, per_write: usize) -> io::Result<(f64, f64)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let mut readers = Vec::with_capacity(connections);
    let mut writers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let client = TcpStream::connect(addr)?;
        let (server, _) = listener.accept()?;
        server.set_nodelay(true)?;
        client.set_nonblocking(true)?;
        readers.push(mio::net::TcpStream::from_std(client));
        writers.push(server);
    }
    let total = connections * rounds * per_write * message_bytes;
    let reader = thread::Builder::new().name("floor-reader".into()).spawn(move || read_all(readers, total))?;
    let payload = vec![0x5a_u8; message_bytes * per_write];
    let started = thread_cpu_us();
    for _ in 0..rounds {
        for stream in &mut writers {
            stream.write_all(&payload)?;
        }
    }
    let written = thread_cpu_us() - started;
    let read = reader.join().map_err(|_| io::Error::other("the reader panicked"))??;
    Ok((written, read))
}

/// Reads every connection until `total` bytes came; returns the thread's CPU time spent.
fn read_all(mut streams: Vec<mio::net::TcpStream>, total: usize) -> io::Result<f64> {
    let mut poll = Poll::new()?;
    for (i, stream) in streams.iter_mut().enumerate() {
        poll.registry().register(stream, Token(i), Interest::READABLE)?;
    }
    let mut events = Events::with_capacity(1024);
    let mut buffer = vec![0u8; 64 * 1024];
    let mut received = 0;
    let started = thread_cpu_us();
    while received < total {
        poll.poll(&mut events, Some(Duration::from_secs(10)))?;
        if events.is_empty() {
            return Err(io::Error::new(ErrorKind::TimedOut, format!("{received} of {total} bytes came")));
        }
        for event in &events {
            let stream = &mut streams[event.token().0];
            loop {
                match stream.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(n) => received += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(thread_cpu_us() - started)
}

/// This thread's CPU time so far, in microseconds.
fn thread_cpu_us() -> f64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid clock id and a pointer to a timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    now.tv_sec as f64 * 1e6 + now.tv_nsec as f64 / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_calibration_moves_every_byte_and_costs_something() {
        let floor = measure(8, 20, 200).unwrap();
        assert_eq!(floor.messages, 160);
        assert!(floor.write_us > 0.0 && floor.read_us > 0.0, "{floor:?}");
        // Capacity falls as frames per bot rise.
        assert!(floor.capacity(2.0, 12.0) > floor.capacity(2.0, 24.0));
    }
}
