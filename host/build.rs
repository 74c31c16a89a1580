// The shipped server folder holds the binary with the sdk library and the toolchain's libstd
// beside it: look for them there first.
fn main() {
    println!("cargo:rustc-link-arg-bins=-Wl,-rpath,$ORIGIN");
    // Resolve every symbol at start: a binary run against another build of the sdk library
    // fails at once with the missing symbol, not at its first call in the middle of a run.
    println!("cargo:rustc-link-arg-bins=-Wl,-z,now");
}
