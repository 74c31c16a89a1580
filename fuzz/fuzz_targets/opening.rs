//! The WebSocket opening request as the server reads it (host/src/net/http.rs, compiled in by
//! path): any bytes wait for more, switch to a WebSocket, or get a whole HTTP answer; never a
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../host/src/net/http.rs"]
#[allow(dead_code)]
mod http;

fuzz_target!(|received: &[u8]| {
    match http::opening(received) {
        None => assert!(received.len() < http::MAX_HEAD_BYTES, "a head that long is answered"),
        Some(http::Opening::WebSocket { response, head_len }) => {
            assert!(head_len <= received.len());
            assert!(response.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
        }
        Some(http::Opening::Http(answer)) => {
            assert!(answer.starts_with(b"HTTP/1.1 4") || answer.starts_with(b"HTTP/1.1 200") || answer.starts_with(b"HTTP/1.1 304"))
        }
    }
});
