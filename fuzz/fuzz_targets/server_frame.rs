//! The client library's decoder of server frames (message by message, skipping unknown kinds):
//! any bytes decode or fail with an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veltrix_protocol::decode_server_frame;

fuzz_target!(|frame: &[u8]| {
    if let Ok(decoded) = decode_server_frame(frame) {
        assert!(decoded.skipped + decoded.frame.messages.len() <= frame.len(), "every message takes a byte at least");
    }
});
