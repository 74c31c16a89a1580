//! Opening a mod's library and checking its header before the first call into it.

use std::path::Path;

use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
use object::{
    FileKind,
    elf::{FileHeader32, FileHeader64},
    read::elf::{FileHeader, ProgramHeader},
};
use veltrix_sdk::{ABI_VERSION, HEADER_SYMBOL, MAGIC, Mod, ModHeader, SDK_VERSION};

use crate::panics;

/// Opens the library at `path` (never to be closed: unloading Rust code is unreliable), checks
/// its header against this process's sdk and creates the mod.
pub fn open(path: &Path) -> Result<Box<dyn Mod>, String> {
    // SAFETY: opening a library runs its initialisers. The manifest was checked first, and a
    // Veltrix mod has none of its own; this is the one trust step the owner took by
    // installing the mod.
    let library = unsafe { Library::open(Some(path), RTLD_NOW | RTLD_LOCAL) }.map_err(|e| {
        let detail = std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string());
        explain_dlopen_error(&detail)
    })?;
    // SAFETY: only the address of the symbol is taken here; it is read below as far as the
    // fixed prefix of every header version, and further only once that prefix matched.
    let header: *const ModHeader = match unsafe { library.get::<*const ModHeader>(HEADER_SYMBOL) } {
        Ok(symbol) => *symbol,
        Err(_) => {
            std::mem::forget(library);
            return Err("not a Veltrix mod: the library exports no VELTRIX_MOD_HEADER (export one with veltrix_sdk::export_mod!)".into());
        }
    };
    // Never unloaded: code or statics of the library may be referenced for the whole run.
    std::mem::forget(library);
    // SAFETY: the symbol is at least as large as the fixed prefix (magic, abi_version,
    // header_size) of every header version, which is all that is read before the checks.
    let (magic, abi, size) = unsafe {
        let prefix = header.cast::<u64>();
        (
            prefix.read_unaligned(),
            prefix.add(1).cast::<u32>().read_unaligned(),
            prefix.add(1).cast::<u32>().add(1).read_unaligned(),
        )
    };
    if magic != MAGIC {
        return Err("not a Veltrix mod: VELTRIX_MOD_HEADER does not start with the Veltrix magic number".into());
    }
    if abi != ABI_VERSION || size as usize != size_of::<ModHeader>() {
        return Err(format!(
            "mod ABI version {abi} (header of {size} bytes), this server speaks ABI version {ABI_VERSION} ({} bytes): \
             rebuild the mod against veltrix-sdk {SDK_VERSION}",
            size_of::<ModHeader>()
        ));
    }
    // SAFETY: magic, ABI version and size match, so the layout is this sdk's.
    let header: &'static ModHeader = unsafe { &*header };
    // SAFETY: a header of this ABI version holds 'static strings made by StrRef::new.
    let (mod_sdk, mod_fingerprint) = unsafe { (header.sdk_version.as_str(), header.fingerprint.as_str()) };
    let ours = veltrix_sdk::fingerprint();
    if mod_sdk != SDK_VERSION || mod_fingerprint != ours {
        return Err(format!(
            "built against a different sdk build, so it cannot safely share this server's std and bevy_ecs \
             ({}); rebuild the mod with this server's toolchain, sdk and settings",
            fingerprint_diff(mod_fingerprint, ours)
        ));
    }
    panics::catch(header.create).map_err(|p| format!("creating the mod panicked: {p}"))
}

/// Reads the library's whole file and checks it holds everything its own ELF headers say it
/// does. dlopen maps the loaded segments straight from the file, so a file cut inside them (an
/// interrupted upload) would kill the process with SIGBUS on first touch, with no log line.
pub fn read_checked(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read the library: {e}"))?;
    let needed = match FileKind::parse(&*bytes) {
        Ok(FileKind::Elf64) => elf_extent::<FileHeader64<object::Endianness>>(&bytes),
        Ok(FileKind::Elf32) => elf_extent::<FileHeader32<object::Endianness>>(&bytes),
        _ => return Err("not a loadable library (not an ELF file)".into()),
    };
    let needed =
        needed.map_err(|e| format!("not a loadable library (its ELF headers are cut short or damaged: {e})"))?;
    if needed > bytes.len() as u64 {
        return Err(format!(
            "the library's file is cut short: its ELF headers describe {needed} bytes, the file has {} \
             (an interrupted upload or copy?); copy the mod's library again",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// How many bytes an ELF file must have: the end of its furthest loaded segment or of its
/// section header table.
fn elf_extent<Elf: FileHeader<Endian = object::Endianness>>(bytes: &[u8]) -> object::read::Result<u64> {
    let header = Elf::parse(bytes)?;
    let endian = header.endian()?;
    let segments = header.program_headers(endian, bytes)?;
    let segments_end = segments.iter().map(|s| {
        let (offset, size) = s.file_range(endian);
        offset.saturating_add(size)
    });
    let shoff: u64 = header.e_shoff(endian).into();
    // A count of 0 with a table present means the real count is in section 0: one entry at least.
    let sections = u64::from(header.e_shnum(endian).max(u16::from(shoff != 0)));
    let sections_end = shoff.saturating_add(sections.saturating_mul(header.e_shentsize(endian).into()));
    Ok(segments_end.fold(sections_end, u64::max))
}

/// The parts of two fingerprints that differ, as `part: mod X, server Y; ...`.
pub fn fingerprint_diff(mod_fp: &str, server_fp: &str) -> String {
    let parse = |fp: &str| -> Vec<(String, String)> {
        fp.split(';').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    let (m, s) = (parse(mod_fp), parse(server_fp));
    let mut keys: Vec<&String> = m.iter().chain(s.iter()).map(|(k, _)| k).collect();
    keys.sort();
    keys.dedup();
    let get = |list: &[(String, String)], k: &str| {
        list.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap_or_else(|| "<absent>".into())
    };
    let diffs: Vec<String> = keys
        .into_iter()
        .filter_map(|k| {
            let (mv, sv) = (get(&m, k), get(&s, k));
            (mv != sv).then(|| format!("{k}: mod `{mv}`, server `{sv}`"))
        })
        .collect();
    if diffs.is_empty() { "no part differs".into() } else { diffs.join("; ") }
}

/// Turns the loader's message into one the owner can act on.
fn explain_dlopen_error(message: &str) -> String {
    if let Some(symbol) = message.split("undefined symbol: ").nth(1) {
        let symbol = symbol.trim();
        return format!(
            "built against another veltrix-sdk version or build: the server's libraries lack the symbol `{:#}`; \
             rebuild the mod against veltrix-sdk {SDK_VERSION} with this server's toolchain",
            rustc_demangle::demangle(symbol)
        );
    }
    for not_a_library in
        ["invalid ELF header", "file too short", "not a dynamic executable", "wrong ELF class", "ELF load command"]
    {
        if message.contains(not_a_library) {
            return format!("not a loadable library ({message})");
        }
    }
    format!("cannot open the library: {message}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_each_differing_part() {
        let d = fingerprint_diff("rustc=1.95.0;profile=release;x=1", "rustc=1.95.0;profile=debug;x=1");
        assert_eq!(d, "profile: mod `release`, server `debug`");
    }

    /// This test binary, whole and cut inside its loaded segments as an interrupted upload
    /// leaves a file.
    #[test]
    fn a_library_cut_short_is_refused_before_dlopen() {
        let whole = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lib.so");
        std::fs::write(&path, &whole).unwrap();
        assert_eq!(read_checked(&path).unwrap().len(), whole.len());

        std::fs::write(&path, &whole[..whole.len() / 8]).unwrap();
        let err = read_checked(&path).unwrap_err();
        assert!(err.starts_with("the library's file is cut short: its ELF headers describe "), "{err}");
        assert!(err.contains(&format!(" bytes, the file has {} (", whole.len() / 8)), "{err}");
        std::fs::write(&path, &whole[..40]).unwrap();
        assert!(read_checked(&path).unwrap_err().starts_with("not a loadable library (its ELF headers"));
        std::fs::write(&path, "this is a text file\n").unwrap();
        assert_eq!(read_checked(&path).unwrap_err(), "not a loadable library (not an ELF file)");
    }

    #[test]
    fn dlopen_messages_are_explained() {
        assert!(explain_dlopen_error("/m/lib.so: invalid ELF header").starts_with("not a loadable library"));
        let e = explain_dlopen_error("/m/lib.so: undefined symbol: _ZN11veltrix_sdk3foo17h0123456789abcdefE");
        assert!(e.contains("`veltrix_sdk::foo`"), "{e}");
    }
}
