//! `cargo xtask serve | package | test`: see `cargo xtask --help`.

use std::{os::unix::process::CommandExt, process::Command};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use xtask::{BENCH_FEATURES, Build, assemble, package, rustc_libdir, workspace_root};

/// Build, package, serve and test Veltrix.
#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build in release, lay out the server folder in target/server and run the server there.
    /// Arguments after `--` go to veltrix-server.
    Serve {
        /// Build in debug instead (faster to build, slower to run).
        #[arg(long)]
        debug: bool,
        /// Build the benchmark build instead (docs/benchmarks.md): in its own target folder
        /// (target/bench-instrumented), laid out in target/bench-server-instrumented.
        #[arg(long)]
        bench: bool,
        #[arg(last = true)]
        server_args: Vec<String>,
    },
    /// Build in release and pack the server folder as target/veltrix-server-<version>-<target>.tar.gz.
    Package,
    /// Run every test of the workspace (what CI runs).
    Test {
        /// Arguments passed on to `cargo test`.
        #[arg(last = true)]
        cargo_args: Vec<String>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Task::Serve { debug, bench, server_args } => {
            let mut build = Build::new(!debug);
            let mut dest = workspace_root().join("target").join("server");
            if bench {
                build.target_dir = workspace_root().join("target").join("bench-instrumented");
                build.features = BENCH_FEATURES.iter().map(|f| f.to_string()).collect();
                dest = workspace_root().join("target").join("bench-server-instrumented");
            }
            let out = build.run()?;
            assemble(&out, &dest)?;
            eprintln!("server folder: {}", dest.display());
            // Run it as shipped: its libraries come from its own folder, not from cargo's path.
            let err = Command::new(dest.join("veltrix-server"))
                .arg("--root")
                .arg(&dest)
                .args(server_args)
                .env_remove("LD_LIBRARY_PATH")
                .exec();
            bail!("cannot start {}: {err}", dest.join("veltrix-server").display())
        }
        Task::Package => {
            let out = Build::new(true).run()?;
            let name = format!("veltrix-server-{}-{}", env!("CARGO_PKG_VERSION"), target_triple()?);
            let target = workspace_root().join("target");
            let dest = target.join("package").join(&name);
            if dest.exists() {
                std::fs::remove_dir_all(&dest)?;
            }
            assemble(&out, &dest)?;
            let archive = package(&dest, &target, &name)?;
            println!("{}", archive.display());
            Ok(())
        }
        Task::Test { cargo_args } => {
            // Doc tests link std dynamically too, and cargo does not put the toolchain's
            // library folder on their loader path: add it.
            let libdir = rustc_libdir()?;
            let path = std::env::var("LD_LIBRARY_PATH").map(|p| format!("{}:{p}", libdir.display()));
            let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .current_dir(workspace_root())
                .args(["test", "--workspace"])
                .args(cargo_args)
                .env("LD_LIBRARY_PATH", path.unwrap_or_else(|_| libdir.display().to_string()))
                .status()
                .context("running cargo test")?;
            if !status.success() {
                bail!("tests failed ({status})");
            }
            Ok(())
        }
    }
}

fn target_triple() -> Result<String> {
    let out = Command::new("rustc").arg("-vV").output().context("running rustc -vV")?;
    let text = String::from_utf8(out.stdout)?;
    text.lines().find_map(|l| l.strip_prefix("host: ")).map(str::to_string).context("rustc -vV names no host")
}
