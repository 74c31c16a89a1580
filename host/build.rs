// The shipped server folder holds the binary with the sdk library and the toolchain's libstd
// beside it: look for them there first.
fn main() {
    println!("cargo:rustc-link-arg-bins=-Wl,-rpath,$ORIGIN");
}
