//! The server's decoder of client frames: any bytes decode or fail with an error, never a
//! panic; what decodes encodes to bytes that decode to the same encoding again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veltrix_protocol::{decode_client_frame, encode_client_frame};

fuzz_target!(|frame: &[u8]| {
    if let Ok(messages) = decode_client_frame(frame) {
        let encoded = encode_client_frame(&messages);
        let again = decode_client_frame(&encoded).expect("an encoded frame decodes");
        assert_eq!(encode_client_frame(&again), encoded, "encoding is stable");
    }
});
