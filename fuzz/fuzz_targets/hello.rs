//! The handshake's first frame as the server reads it: a `Hello` and the messages after it, or
//! a refusal with its code; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veltrix_protocol::{PROTOCOL_VERSION, read_hello, valid_player_name};

fuzz_target!(|frame: &[u8]| {
    if let Ok((hello, _rest)) = read_hello(frame) {
        assert_eq!(hello.protocol, PROTOCOL_VERSION);
        assert!(valid_player_name(&hello.name));
    }
});
