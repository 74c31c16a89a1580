//! The header every mod library exports, checked by the host before it calls into the library.
//!
//! A bare version number is not enough to know that two Rust libraries can call each other:
//! Rust has no stable ABI, so the host and the mod must come from the same compiler, the same
//! sdk sources and the same build settings. The header carries a magic number, an ABI version
//! and that build fingerprint; the host reads them through plain `#[repr(C)]` fields, and only
//! when all match does it call `create`, the first Rust call across the boundary.

use crate::Mod;

/// `b"VELTRIX\x01"` read as a little-endian u64: tells a Veltrix mod from any other library.
pub const MAGIC: u64 = u64::from_le_bytes(*b"VELTRIX\x01");

/// Bumped whenever [`ModHeader`]'s layout or meaning changes.
pub const ABI_VERSION: u32 = 1;

/// The symbol under which [`export_mod!`](crate::export_mod) exports the header.
pub const HEADER_SYMBOL: &[u8] = b"VELTRIX_MOD_HEADER\0";

/// The build fingerprint of this sdk, `key=value` parts separated by `;` (see `build.rs`).
const FINGERPRINT: &str = env!("VELTRIX_BUILD_FINGERPRINT");

/// The fingerprint of the sdk library loaded in this process.
///
/// Not inlined on purpose: a mod's header holds the fingerprint of the sdk it was compiled
/// against, this function answers for the sdk actually loaded.
#[inline(never)]
pub fn fingerprint() -> &'static str {
    FINGERPRINT
}

/// A string in a `#[repr(C)]` struct.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct StrRef {
    pub ptr: *const u8,
    pub len: usize,
}

impl StrRef {
    pub const fn new(s: &'static str) -> Self {
        Self { ptr: s.as_ptr(), len: s.len() }
    }

    /// # Safety
    /// `ptr` and `len` must describe a `'static` UTF-8 string, as [`StrRef::new`] makes.
    pub unsafe fn as_str(&self) -> &'static str {
        // SAFETY: guaranteed by the caller; the bytes are checked as UTF-8 anyway.
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr, self.len) };
        std::str::from_utf8(bytes).unwrap_or("<not utf-8>")
    }
}

/// What a mod library exports under [`HEADER_SYMBOL`].
///
/// The first three fields keep their place in every ABI version, so any host can tell a
/// foreign or older header from its own.
#[repr(C)]
pub struct ModHeader {
    pub magic: u64,
    pub abi_version: u32,
    /// `size_of::<ModHeader>()` as the mod saw it.
    pub header_size: u32,
    pub sdk_version: StrRef,
    pub fingerprint: StrRef,
    /// Makes the mod. Only called once everything above matched the host's own values.
    pub create: fn() -> Box<dyn Mod>,
}

// SAFETY: the header is immutable and its pointers point at 'static data.
unsafe impl Sync for ModHeader {}

impl ModHeader {
    /// The header for a mod made by `create`, stamped with this sdk's version and fingerprint.
    pub const fn new(create: fn() -> Box<dyn Mod>) -> Self {
        Self {
            magic: MAGIC,
            abi_version: ABI_VERSION,
            header_size: size_of::<ModHeader>() as u32,
            sdk_version: StrRef::new(crate::SDK_VERSION),
            fingerprint: StrRef::new(FINGERPRINT),
            create,
        }
    }
}

/// Exports a mod from a library: `veltrix_sdk::export_mod!(MyMod::default());`.
///
/// The expression is evaluated when the host creates the mod, after its header checked out.
#[macro_export]
macro_rules! export_mod {
    ($make:expr) => {
        fn __veltrix_create_mod() -> ::std::boxed::Box<dyn $crate::Mod> {
            ::std::boxed::Box::new($make)
        }

        #[unsafe(no_mangle)]
        pub static VELTRIX_MOD_HEADER: $crate::ModHeader = $crate::ModHeader::new(__veltrix_create_mod);
    };
}
