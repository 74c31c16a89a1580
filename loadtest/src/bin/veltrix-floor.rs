//! This machine's floor for delivery: loopback TCP's CPU cost per message written and read, and
//! the most bots the machine could serve at a frame rate if those system calls were all the
//! work (`veltrix_loadtest::floor`).
//!
//! `cargo run --release -p veltrix-loadtest --bin veltrix-floor -- --frames-per-bot 12`

use clap::Parser;
use veltrix_loadtest::floor;

#[derive(Parser)]
#[command(about = "Measures loopback TCP's CPU cost per message and the bot capacity it allows")]
struct Args {
    /// Loopback connections written to in turn.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Messages to each connection (one per write; half as many writes of two).
    #[arg(long, default_value_t = 100)]
    rounds: usize,
    /// Bytes per message (frames here are 120 to 400 bytes).
    #[arg(long, default_value_t = 200)]
    bytes: usize,
    /// Frames each bot reads per second, for the capacity (the swarm's report gives it).
    #[arg(long, default_value_t = 12.0)]
    frames_per_bot: f64,
    /// Cores of the machine given to delivery.
    #[arg(long, default_value_t = 2.0)]
    cores: f64,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let floor = floor::measure(args.connections, args.rounds, args.bytes)?;
    let capacity = floor.capacity(args.cores, args.frames_per_bot);
    let paired = floor.capacity_paired(args.cores, args.frames_per_bot);
    if args.json {
        let json = serde_json::json!({"floor": floor, "frames_per_bot": args.frames_per_bot, "cores": args.cores,
            "capacity": capacity, "capacity_two_per_write": paired});
        println!("{json}");
        return Ok(());
    }
    println!(
        "| loopback TCP, {} connections, {} B messages | CPU per message |",
        floor.connections, floor.message_bytes
    );
    println!("|---|---|");
    println!("| one message a write: write, read | {:.2} us, {:.2} us |", floor.write_us, floor.read_us);
    println!("| two messages a write: write, read | {:.2} us, {:.2} us |", floor.write_us_paired, floor.read_us_paired);
    println!(
        "| bots at {} frames per bot per second on {} cores | {:.0} (one frame a write), {:.0} (two) |",
        args.frames_per_bot, args.cores, capacity, paired
    );
    Ok(())
}
