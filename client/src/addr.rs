//! Where to connect. Parsed by hand rather than with a URL crate: the accepted forms are few
//! and a bot swarm should not pull in IDNA tables to read `127.0.0.1:5520`.

/// The server's default player port (`Port` in config.json).
pub const DEFAULT_PORT: u16 = 5520;

/// Why an address was refused; its text is the `why` of [`crate::ClientError::Address`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("wss:// is not supported: the server speaks plain ws://")]
    Wss,
    #[error("unsupported scheme {0:?}: use ws:// or host:port")]
    Scheme(String),
    #[error("a path needs a ws:// URL")]
    PathWithoutUrl,
    #[error("user info is not supported")]
    UserInfo,
    #[error("unclosed [ in an IPv6 address")]
    UnclosedBracket,
    #[error("expected :port after ]")]
    NoPortAfterBracket,
    #[error("an IPv6 address needs brackets: [::1]:5520")]
    Ipv6WithoutBrackets,
    #[error("no host")]
    NoHost,
    #[error("bad port {0:?}")]
    BadPort(String),
}

/// A parsed server address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// The host to resolve, without the brackets of an IPv6 literal.
    pub host: String,
    pub port: u16,
    /// The request path, `/` at least.
    pub path: String,
}

impl Endpoint {
    /// Accepts `host`, `host:port`, `[v6]:port` and `ws://` URLs of those with an optional path.
    /// A bare host gets the Veltrix port; a URL without a port gets 80, as any `ws://` URL.
    pub fn parse(addr: &str) -> Result<Endpoint, AddressError> {
        let addr = addr.trim();
        let (rest, url) = match addr.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("ws") => (rest, true),
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("wss") => {
                return Err(AddressError::Wss);
            }
            Some((scheme, _)) => return Err(AddressError::Scheme(scheme.to_string())),
            None => (addr, false),
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        if !url && path != "/" {
            return Err(AddressError::PathWithoutUrl);
        }
        if authority.contains('@') {
            return Err(AddressError::UserInfo);
        }
        let default_port = if url { 80 } else { DEFAULT_PORT };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or(AddressError::UnclosedBracket)?;
            match after {
                "" => (host, None),
                _ => (host, Some(after.strip_prefix(':').ok_or(AddressError::NoPortAfterBracket)?)),
            }
        } else {
            match authority.split_once(':') {
                Some((_, port)) if port.contains(':') => {
                    return Err(AddressError::Ipv6WithoutBrackets);
                }
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(AddressError::NoHost);
        }
        let port = match port {
            None => default_port,
            Some(port) => match port.parse::<u16>() {
                Ok(0) | Err(_) => return Err(AddressError::BadPort(port.to_string())),
                Ok(port) => port,
            },
        };
        Ok(Endpoint { host: host.to_string(), port, path })
    }

    /// The URL of the upgrade request.
    pub fn url(&self) -> String {
        if self.host.contains(':') {
            format!("ws://[{}]:{}{}", self.host, self.port, self.path)
        } else {
            format!("ws://{}:{}{}", self.host, self.port, self.path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(addr: &str) -> (String, u16, String) {
        let e = Endpoint::parse(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
        (e.host, e.port, e.path)
    }

    fn err(addr: &str) -> String {
        Endpoint::parse(addr).expect_err(addr).to_string()
    }

    #[test]
    fn host_and_port() {
        assert_eq!(ok("127.0.0.1:5521"), ("127.0.0.1".into(), 5521, "/".into()));
        assert_eq!(ok(" localhost:9 "), ("localhost".into(), 9, "/".into()));
        assert_eq!(ok("example.com"), ("example.com".into(), DEFAULT_PORT, "/".into()));
        assert_eq!(ok("[::1]:7000"), ("::1".into(), 7000, "/".into()));
        assert_eq!(ok("[::1]"), ("::1".into(), DEFAULT_PORT, "/".into()));
    }

    #[test]
    fn urls() {
        assert_eq!(ok("ws://127.0.0.1:5520/"), ("127.0.0.1".into(), 5520, "/".into()));
        assert_eq!(ok("ws://127.0.0.1:5520"), ("127.0.0.1".into(), 5520, "/".into()));
        assert_eq!(ok("WS://h:1/play/x?y=1"), ("h".into(), 1, "/play/x?y=1".into()));
        assert_eq!(ok("ws://h:1?y=1"), ("h".into(), 1, "/?y=1".into()));
        assert_eq!(ok("ws://h/"), ("h".into(), 80, "/".into()));
        assert_eq!(ok("ws://[fe80::1]:5520/a"), ("fe80::1".into(), 5520, "/a".into()));
    }

    #[test]
    fn refused_forms() {
        assert!(err("wss://h:1/").contains("wss"));
        assert!(err("http://h:1/").contains("scheme"));
        assert!(err("::1").contains("brackets"));
        assert!(err("h:0").contains("port"));
        assert!(err("h:70000").contains("port"));
        assert!(err("h:").contains("port"));
        assert!(err(":5520").contains("host"));
        assert!(err("ws:///x").contains("host"));
        assert!(err("[::1").contains("unclosed"));
        assert!(err("[::1]5520").contains(":port"));
        assert!(err("h:1/path").contains("ws://"));
        assert!(err("ws://u@h:1/").contains("user"));
    }

    #[test]
    fn refusals_by_kind() {
        assert_eq!(Endpoint::parse("wss://h:1/"), Err(AddressError::Wss));
        assert_eq!(Endpoint::parse("http://h:1/"), Err(AddressError::Scheme("http".into())));
        assert_eq!(Endpoint::parse("h:70000"), Err(AddressError::BadPort("70000".into())));
        assert_eq!(Endpoint::parse("[::1]5520"), Err(AddressError::NoPortAfterBracket));
    }

    #[test]
    fn url_round_trips() {
        for addr in ["127.0.0.1:5520", "ws://h:1/a?b", "[::1]:9", "example.com"] {
            let e = Endpoint::parse(addr).unwrap();
            assert_eq!(Endpoint::parse(&e.url()).unwrap(), e, "{addr}");
        }
        assert_eq!(Endpoint::parse("[::1]:9").unwrap().url(), "ws://[::1]:9/");
    }
}
