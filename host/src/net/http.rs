//! The player port's HTTP side: the request that opens a WebSocket, the browser client's files
//! (embedded in the binary at build time, see build.rs), and the answer to every other request.

use tungstenite::{
    Error,
    handshake::server::{create_response, write_response},
    http::{self, StatusCode},
};

/// The longest request head read; a longer one is answered `431`.
pub(super) const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Headers read from a request; more are answered `431`.
const MAX_HEADERS: usize = 32;

/// What a complete request head came to.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Opening {
    /// A WebSocket opening: the `101 Switching Protocols` response to write, and the length of
    /// the head (bytes after it are the client's first frames).
    WebSocket { response: Vec<u8>, head_len: usize },
    /// Any other request: the whole HTTP response to write before closing.
    Http(Vec<u8>),
}

/// The opening for the bytes of a request head received so far; `None` while it is not
/// complete. Never panics, whatever the bytes (fuzzed: docs/fuzzing.md).
pub(super) fn opening(received: &[u8]) -> Option<Opening> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_len = match parsed.parse(received) {
        // A head that came whole in one read is held to the same limit as one still coming.
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD_BYTES => len,
        Ok(httparse::Status::Partial) if received.len() < MAX_HEAD_BYTES => return None,
        Ok(httparse::Status::Complete(_) | httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
            let why = format!("the request head is over {MAX_HEAD_BYTES} bytes or {MAX_HEADERS} headers");
            return Some(Opening::Http(plain(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, &why)));
        }
        Err(e) => return Some(Opening::Http(plain(StatusCode::BAD_REQUEST, &format!("not an HTTP request: {e}")))),
    };
    let mut request = http::Request::builder()
        .method(parsed.method.unwrap_or_default())
        .uri(parsed.path.unwrap_or_default())
        .version(if parsed.version == Some(0) { http::Version::HTTP_10 } else { http::Version::HTTP_11 });
    for header in parsed.headers.iter() {
        request = request.header(header.name, header.value);
    }
    let request = match request.body(()) {
        Ok(request) => request,
        Err(e) => return Some(Opening::Http(plain(StatusCode::BAD_REQUEST, &format!("a bad request: {e}")))),
    };
    Some(match create_response(&request) {
        Ok(response) => Opening::WebSocket { response: head_bytes(&response), head_len },
        Err(why) => {
            // The protocol error alone, without tungstenite's "WebSocket protocol error: ".
            let why = match why {
                Error::Protocol(why) => why.to_string(),
                why => why.to_string(),
            };
            Opening::Http(web_file(&request).unwrap_or_else(|| not_a_websocket(&request, &why)))
        }
    })
}

/// A file of the browser client.
struct WebFile {
    /// Its path in the URL: `/index.html`, `/src/main.js`.
    path: &'static str,
    content_type: &'static str,
    etag: &'static str,
    raw: &'static [u8],
    gzip: &'static [u8],
}

/// The browser client, from `web/` (build.rs).
#[cfg(not(fuzzing))]
const WEB_FILES: &[WebFile] = include!(concat!(env!("OUT_DIR"), "/web_files.rs"));
/// The fuzz target compiles this file alone, without build.rs: one small page stands in.
#[cfg(fuzzing)]
const WEB_FILES: &[WebFile] = &[WebFile {
    path: "/index.html",
    content_type: "text/html; charset=utf-8",
    etag: "\"0\"",
    raw: b"<!doctype html>",
    gzip: b"",
}];

/// The answer to a `GET` or `HEAD` of one of the browser client's files (`/` is its page):
/// gzipped when the browser takes it, `304 Not Modified` when it holds this version. Browsers
/// check again on each load (`no-cache`), so a new server's client is never stale. `None` for
/// any other request, and for a WebSocket opening that failed.
fn web_file(request: &http::Request<()>) -> Option<Vec<u8>> {
    let head_only = match *request.method() {
        http::Method::GET => false,
        http::Method::HEAD => true,
        _ => return None,
    };
    // A WebSocket opening that failed (another version, a missing key) is told why, not sent
    // the page.
    if request.headers().get("Upgrade").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket")) {
        return None;
    }
    let path = match request.uri().path() {
        "/" => "/index.html",
        path => path,
    };
    let file = WEB_FILES.iter().find(|f| f.path == path)?;
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let common = http::Response::builder()
        .header("Content-Type", file.content_type)
        .header("Cache-Control", "no-cache")
        .header("ETag", file.etag)
        .header("Vary", "Accept-Encoding")
        .header("X-Content-Type-Options", "nosniff")
        .header("Connection", "close");
    if header("If-None-Match").split(',').any(|tag| tag.trim() == file.etag) {
        return Some(head_bytes(&common.status(StatusCode::NOT_MODIFIED).body(()).expect("the headers are valid")));
    }
    let gzip =
        header("Accept-Encoding").split(',').any(|coding| coding.split(';').next().unwrap_or("").trim() == "gzip");
    let (body, common) = if gzip { (file.gzip, common.header("Content-Encoding", "gzip")) } else { (file.raw, common) };
    let response =
        common.status(StatusCode::OK).header("Content-Length", body.len()).body(()).expect("the headers are valid");
    let mut bytes = head_bytes(&response);
    if !head_only {
        bytes.extend_from_slice(body);
    }
    Some(bytes)
}

/// The answer to a request that does not open a WebSocket: `426 Upgrade Required` (RFC 9110
/// 15.5.22) with what to do instead; `why` is what the request lacks for a WebSocket.
fn not_a_websocket(_request: &http::Request<()>, why: &str) -> Vec<u8> {
    let body = format!(
        "This is the player port of a Veltrix game server. Open http://<this address>/ in a browser to \
         play, or connect with a WebSocket client (ws://<this address>/); docs/protocol.md describes the \
         protocol.\nThis request is neither a file of the page nor a WebSocket opening: {why}.\n"
    );
    response(StatusCode::UPGRADE_REQUIRED, &body, &[("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")])
}

/// A plain-text answer to a request that is not HTTP, or too large.
fn plain(status: StatusCode, why: &str) -> Vec<u8> {
    response(status, &format!("{why}\n"), &[])
}

fn response(status: StatusCode, body: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut response = http::Response::builder()
        .status(status)
        .header("Content-Type", "text/plain; charset=utf-8")
        .header("Content-Length", body.len())
        .header("Connection", "close");
    for (name, value) in extra {
        response = response.header(*name, *value);
    }
    let mut bytes = head_bytes(&response.body(()).expect("the headers are valid"));
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

fn head_bytes<T>(response: &http::Response<T>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_response(&mut out, response).expect("writing to a Vec cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const UPGRADE: &[u8] = b"GET /any HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

    fn text(opening: Option<Opening>) -> String {
        match opening {
            Some(Opening::Http(bytes)) => String::from_utf8(bytes).unwrap(),
            other => panic!("expected an HTTP answer, got {other:?}"),
        }
    }

    #[test]
    fn a_websocket_opening_is_switched_with_the_rfc_accept_key() {
        let mut received = UPGRADE.to_vec();
        received.extend_from_slice(&[0x82, 0x80]);
        let Some(Opening::WebSocket { response, head_len }) = opening(&received) else { panic!("not an upgrade") };
        assert_eq!(head_len, UPGRADE.len(), "the bytes after the head are the client's");
        let response = String::from_utf8(response).unwrap();
        assert!(response.starts_with("HTTP/1.1 101 Switching Protocols\r\n"), "{response}");
        // The example of RFC 6455 section 1.3.
        assert!(response.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), "{response}");
    }

    #[test]
    fn a_plain_get_of_no_file_is_told_to_upgrade() {
        let answer = text(opening(b"GET /chat HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(answer.starts_with("HTTP/1.1 426 Upgrade Required\r\n"), "{answer}");
        assert!(answer.contains("upgrade: websocket\r\n"), "{answer}");
        assert!(answer.ends_with("docs/protocol.md describes the protocol.\nThis request is neither a file of the page nor a WebSocket opening: No \"Connection: upgrade\" header.\n"), "{answer}");
    }

    /// The head of an answer, and its body.
    fn split(answer: &[u8]) -> (String, &[u8]) {
        let end = answer.windows(4).position(|w| w == b"\r\n\r\n").expect("a whole head") + 4;
        (String::from_utf8(answer[..end].to_vec()).unwrap(), &answer[end..])
    }

    fn answer(request: &str) -> Vec<u8> {
        match opening(request.as_bytes()) {
            Some(Opening::Http(bytes)) => bytes,
            other => panic!("expected an HTTP answer, got {other:?}"),
        }
    }

    #[test]
    fn the_page_is_served_at_the_root_gzipped_when_the_browser_takes_it() {
        let plain = answer("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        let (head, body) = split(&plain);
        let page = WEB_FILES.iter().find(|f| f.path == "/index.html").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("content-type: text/html; charset=utf-8\r\n"), "{head}");
        assert_eq!(body, page.raw);
        let gzipped = answer("GET /index.html HTTP/1.1\r\nAccept-Encoding: br, gzip;q=0.9\r\n\r\n");
        let (head, body) = split(&gzipped);
        assert!(head.contains("content-encoding: gzip\r\n"), "{head}");
        let mut unzipped = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body), &mut unzipped).unwrap();
        assert_eq!(unzipped, page.raw);
    }

    #[test]
    fn a_file_the_browser_holds_is_not_sent_again_and_head_sends_no_body() {
        let script = WEB_FILES.iter().find(|f| f.path == "/src/main.js").expect("the client's entry point");
        let held = answer(&format!("GET /src/main.js HTTP/1.1\r\nIf-None-Match: {}\r\n\r\n", script.etag));
        let (head, body) = split(&held);
        assert!(head.starts_with("HTTP/1.1 304 Not Modified\r\n"), "{head}");
        assert!(body.is_empty());
        let head_only = answer("HEAD /src/main.js HTTP/1.1\r\n\r\n");
        let (head, body) = split(&head_only);
        assert!(head.contains("content-type: text/javascript; charset=utf-8\r\n"), "{head}");
        assert!(head.contains(&format!("content-length: {}\r\n", script.raw.len())), "{head}");
        assert!(body.is_empty());
    }

    #[test]
    fn the_whole_client_is_under_250_kb_gzipped_and_fetches_nothing_from_outside() {
        let total: usize = WEB_FILES.iter().map(|f| f.gzip.len()).sum();
        assert!(total < 250 * 1024, "the client is {total} bytes gzipped");
        for file in WEB_FILES.iter().filter(|f| f.content_type.starts_with("text/html") || f.path.ends_with(".js")) {
            let text = String::from_utf8_lossy(file.raw);
            assert!(!text.contains("http://") && !text.contains("https://"), "{} names an outside address", file.path);
        }
    }

    #[test]
    fn a_partial_head_waits_and_garbage_or_a_huge_head_is_answered() {
        assert_eq!(opening(&UPGRADE[..UPGRADE.len() - 2]), None);
        assert!(text(opening(b"\x16\x03\x01 hello\r\n\r\n")).starts_with("HTTP/1.1 400 Bad Request\r\n"));
        let huge = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; MAX_HEAD_BYTES]].concat();
        assert!(text(opening(&huge)).starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        let whole = [huge.as_slice(), b"\r\n\r\n"].concat();
        assert!(text(opening(&whole)).starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: a\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert!(text(opening(many.as_bytes())).starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    }

    proptest! {
        /// Whatever the bytes: no panic, and a complete answer is a whole HTTP response.
        #[test]
        fn any_bytes_get_an_opening_or_wait(received in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Some(Opening::Http(answer)) = opening(&received) {
                prop_assert!(answer.starts_with(b"HTTP/1.1 4"));
            }
        }

        /// A valid opening cut anywhere waits for the rest; with junk in its headers it is still
        /// answered without a panic.
        #[test]
        fn an_opening_cut_or_spoilt_never_panics(cut in 0..UPGRADE.len(), at in 0..UPGRADE.len(), byte in any::<u8>()) {
            prop_assert_eq!(opening(&UPGRADE[..cut]), None);
            let mut spoilt = UPGRADE.to_vec();
            spoilt[at] = byte;
            let _ = opening(&spoilt);
        }
    }
}
