//! Computes the build fingerprint that every mod embeds in its header and the host compares
//! with its own before calling into the mod. Two Rust dylibs may only call each other when
//! they were built by the same compiler from the same sources with the same settings.

use std::{env, fs, path::Path, process::Command};

fn main() {
    let lock = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap()).join("../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    println!("cargo:rerun-if-changed=build.rs");

    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(&rustc)
        .arg("-vV")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let field = |key: &str| {
        version
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into())
    };
    let var = |key: &str| env::var(key).unwrap_or_default();

    let mut features: Vec<String> =
        env::vars().filter_map(|(k, _)| k.strip_prefix("CARGO_FEATURE_").map(|f| f.to_lowercase())).collect();
    features.sort();
    let lock_hash = fs::read(&lock).map(|b| format!("{:016x}", fnv1a(&b))).unwrap_or_else(|_| "none".into());

    let parts = [
        ("rustc", field("release:")),
        ("rustc-commit", field("commit-hash:")),
        ("target", var("TARGET")),
        ("profile", var("PROFILE")),
        ("opt-level", var("OPT_LEVEL")),
        ("debug-assertions", env::var("CARGO_CFG_DEBUG_ASSERTIONS").map(|_| "on").unwrap_or("off").into()),
        ("target-features", var("CARGO_CFG_TARGET_FEATURE")),
        ("rustflags", var("CARGO_ENCODED_RUSTFLAGS").replace('\u{1f}', " ")),
        ("sdk-features", features.join(",")),
        ("sdk-version", var("CARGO_PKG_VERSION")),
        ("cargo-lock", lock_hash),
    ];
    let fingerprint: Vec<String> = parts.iter().map(|(k, v)| format!("{k}={v}")).collect();
    // One line per part, `;`-separated in the env var (env values cannot hold newlines portably).
    println!("cargo:rustc-env=VELTRIX_BUILD_FINGERPRINT={}", fingerprint.join(";"));
}

/// FNV-1a, 64 bit: a stable hash that does not change between Rust releases.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}
