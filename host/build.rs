//! Links the binary to find its libraries beside it, and embeds the browser client (`web/`):
//! each file the page needs, as it is and gzipped (compressed once here, not per request), with
//! its content type and an ETag.

use std::{
    env,
    fmt::Write as _,
    fs,
    io::Write as _,
    path::{Path, PathBuf},
};

/// The folders and files of `web/` that make the page; its tests, type check and npm files
/// stay out.
const SERVED: &[&str] = &["index.html", "style.css", "src", "lang", "vendor"];

fn main() {
    // The shipped server folder holds the binary with the sdk library and the toolchain's libstd
    // beside it: look for them there first.
    println!("cargo:rustc-link-arg-bins=-Wl,-rpath,$ORIGIN");
    // Resolve every symbol at start: a binary run against another build of the sdk library
    // fails at once with the missing symbol, not at its first call in the middle of a run.
    println!("cargo:rustc-link-arg-bins=-Wl,-z,now");
    embed_web_client();
}

fn embed_web_client() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut files = Vec::new();
    for entry in SERVED {
        collect(&web.join(entry), &mut files);
    }
    files.sort();
    let mut table = String::from("&[\n");
    for (i, path) in files.iter().enumerate() {
        println!("cargo:rerun-if-changed={}", path.display());
        let raw = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&raw).expect("gzip into memory");
        let gz_path = out.join(format!("web-{i}.gz"));
        fs::write(&gz_path, gz.finish().expect("gzip into memory")).expect("write OUT_DIR");
        let url = format!("/{}", path.strip_prefix(&web).expect("under web/").display());
        let etag = format!("\"{:016x}\"", fnv1a(&raw));
        writeln!(
            table,
            "    WebFile {{ path: {url:?}, content_type: {:?}, etag: {etag:?}, raw: include_bytes!({:?}), gzip: include_bytes!({:?}) }},",
            content_type(path),
            path.canonicalize().expect("exists"),
            gz_path,
        )
        .expect("write to a String");
    }
    table.push(']');
    fs::write(out.join("web_files.rs"), table).expect("write OUT_DIR");
    for entry in SERVED {
        println!("cargo:rerun-if-changed={}", web.join(entry).display());
    }
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in fs::read_dir(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
            collect(&entry.expect("a directory entry").path(), files);
        }
    } else if path.is_file() && content_type(path) != "application/octet-stream" {
        files.push(path.to_path_buf());
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("lang" | "txt" | "LICENSE") => "text/plain; charset=utf-8",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// FNV-1a, 64 bits: an ETag only has to change when the file does.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}
