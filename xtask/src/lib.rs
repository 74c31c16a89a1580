//! Builds the server and its mods and lays them out as a server owner gets them:
//!
//! ```text
//! veltrix-server              the binary (rpath $ORIGIN)
//! libveltrix_sdk.so           the sdk every mod links
//! libstd-<hash>.so            the toolchain's std, shared by the binary and the mods
//! mods/Veltrix_TreasureHunt/  manifest.json, libtreasure_hunt.so, assets/
//! ```
//!
//! The integration tests use the same functions, so they run the server exactly as shipped.

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::Command,
};

pub use anyhow;
use anyhow::{Context, Result, bail, ensure};

/// The packages that make up a server build. They are always built in one cargo invocation:
/// cargo unifies dependency features per invocation, and the server and its mods must link
/// one and the same build of the sdk.
pub const SERVER_PACKAGES: &[&str] = &["veltrix-host", "treasure-hunt"];

/// The features of the benchmark build (docs/benchmarks.md, "The benchmark build"): commit
/// stamps in frames, allocations counted per tick, `/bench` on the admin listener. The host's
/// feature turns on the sdk's `count-allocations`, which is part of the build fingerprint: the
/// mod built in the same invocation gets the same sdk, and loads.
pub const BENCH_FEATURES: &[&str] = &["veltrix-host/bench"];

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").to_path_buf()
}

/// How to build.
#[derive(Debug, Clone)]
pub struct Build {
    pub release: bool,
    /// Where cargo puts its output (`--target-dir`).
    pub target_dir: PathBuf,
    /// Packages besides [`SERVER_PACKAGES`] (test fixtures).
    pub extra_packages: Vec<String>,
    /// Appended to the workspace's rustflags.
    pub extra_rustflags: Vec<String>,
    /// Cargo features, as `package/feature` (several packages are built), e.g.
    /// [`BENCH_FEATURES`]. A build with features needs a `target_dir` of its own: cargo names
    /// the sdk and mod libraries without a hash, so two feature sets in one folder overwrite
    /// each other's.
    pub features: Vec<String>,
}

impl Build {
    pub fn new(release: bool) -> Self {
        Self {
            release,
            target_dir: workspace_root().join("target"),
            extra_packages: Vec::new(),
            extra_rustflags: Vec::new(),
            features: Vec::new(),
        }
    }

    /// The folder holding the built artifacts.
    pub fn out_dir(&self) -> PathBuf {
        self.target_dir.join(if self.release { "release" } else { "debug" })
    }

    /// Runs cargo; returns the artifacts folder.
    pub fn run(&self) -> Result<PathBuf> {
        let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(workspace_root()).arg("build").arg("--target-dir").arg(&self.target_dir);
        if self.release {
            cmd.arg("--release");
        }
        for package in SERVER_PACKAGES.iter().copied().chain(self.extra_packages.iter().map(String::as_str)) {
            cmd.args(["-p", package]);
        }
        if !self.features.is_empty() {
            cmd.arg("--features").arg(self.features.join(","));
        }
        if !self.extra_rustflags.is_empty() {
            // CARGO_ENCODED_RUSTFLAGS replaces the config's rustflags, so restate them.
            let mut flags = vec!["-C".to_string(), "prefer-dynamic".to_string()];
            flags.extend(self.extra_rustflags.iter().cloned());
            cmd.env("CARGO_ENCODED_RUSTFLAGS", flags.join("\u{1f}"));
        }
        cmd.env_remove("RUSTFLAGS");
        let status = cmd.status().context("running cargo build")?;
        ensure!(status.success(), "cargo build failed ({status})");
        Ok(self.out_dir())
    }
}

/// The toolchain's folder of shared libraries (`libstd-<hash>.so`).
pub fn rustc_libdir() -> Result<PathBuf> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(&rustc)
        .current_dir(workspace_root())
        .args(["--print", "target-libdir"])
        .output()
        .context("running rustc --print target-libdir")?;
    ensure!(out.status.success(), "rustc --print target-libdir failed");
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}

/// Lays out a server folder at `dest` from the artifacts in `out_dir`. Replaces the binary,
/// the libraries and the mod's files; leaves `config.json`, `universe/`, `logs/` and each
/// mod's `config.json` alone.
pub fn assemble(out_dir: &Path, dest: &Path) -> Result<()> {
    let root = workspace_root();
    fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    copy(&out_dir.join("veltrix-server"), &dest.join("veltrix-server"))?;
    copy(&out_dir.join("libveltrix_sdk.so"), &dest.join("libveltrix_sdk.so"))?;
    let libdir = rustc_libdir()?;
    let mut found_std = false;
    for entry in fs::read_dir(&libdir).with_context(|| format!("reading {}", libdir.display()))? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        if name.starts_with("libstd-") && name.ends_with(".so") {
            copy(&path, &dest.join(&name))?;
            found_std = true;
        }
    }
    ensure!(found_std, "no libstd-*.so in {}", libdir.display());

    let mod_dir = dest.join("mods").join("Veltrix_TreasureHunt");
    fs::create_dir_all(&mod_dir)?;
    copy(&root.join("manifest.json"), &mod_dir.join("manifest.json"))?;
    copy(&out_dir.join("libtreasure_hunt.so"), &mod_dir.join("libtreasure_hunt.so"))?;
    let assets = mod_dir.join("assets");
    if assets.exists() {
        fs::remove_dir_all(&assets)?;
    }
    copy_tree(&root.join("assets"), &assets)?;
    Ok(())
}

/// Packs a server folder into `<dest_dir>/<name>.tar.gz`, everything under `<name>/`.
pub fn package(server_dir: &Path, dest_dir: &Path, name: &str) -> Result<PathBuf> {
    let archive = dest_dir.join(format!("{name}.tar.gz"));
    let file = fs::File::create(&archive).with_context(|| format!("creating {}", archive.display()))?;
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(file, flate2::Compression::default()));
    tar.follow_symlinks(true);
    tar.append_dir_all(name, server_dir)?;
    tar.into_inner()?.finish()?;
    Ok(archive)
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    if !from.is_file() {
        bail!("{} is missing: was it built?", from.display());
    }
    // Remove first: overwriting a library that a running server has mapped would corrupt it.
    let _ = fs::remove_file(to);
    fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// Copies a folder tree.
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            copy(&entry.path(), &target)?;
        }
    }
    Ok(())
}
