//! Tokens for `Auth: Token`: `<name>.<expiry>.<signature>`, where expiry is in unix seconds
//! and the signature is HMAC-SHA256 over `<name>.<expiry>` with the server's secret, in
//! unpadded base64url. The secret lives in `auth.secret` in the server root, made on first
//! start; whoever holds it can make tokens.

use std::{fs, io, path::Path};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Malformed, for another name, or not signed with this server's secret.
    Bad,
    /// Signed, but past its expiry.
    Expired,
}

/// The server's token secret.
pub struct TokenKey {
    secret: Vec<u8>,
}

impl TokenKey {
    pub fn new(secret: Vec<u8>) -> Self {
        assert!(!secret.is_empty(), "an empty secret signs nothing");
        Self { secret }
    }

    /// Reads the secret from `path`, or makes a random one there (readable by the owner only).
    pub fn load_or_create(path: &Path) -> Result<Self, String> {
        match fs::read_to_string(path) {
            Ok(text) => {
                let secret = decode_hex(text.trim())
                    .ok_or_else(|| format!("{}: expected hexadecimal digits", path.display()))?;
                if secret.len() < 16 {
                    return Err(format!("{}: expected a secret of at least 16 bytes", path.display()));
                }
                Ok(Self::new(secret))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut secret = vec![0u8; 32];
                getrandom::fill(&mut secret).map_err(|e| format!("cannot make a token secret: {e}"))?;
                let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
                write_private(path, &format!("{hex}\n"))
                    .map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
                Ok(Self::new(secret))
            }
            Err(e) => Err(format!("{}: cannot read: {e}", path.display())),
        }
    }

    /// A token for `name`, valid until `expiry` (unix seconds).
    pub fn issue(&self, name: &str, expiry: u64) -> String {
        let payload = format!("{name}.{expiry}");
        let signature = URL_SAFE_NO_PAD.encode(self.mac(&payload).finalize().into_bytes());
        format!("{payload}.{signature}")
    }

    /// Checks that `token` was issued by this server for `name` and has not expired at `now`.
    pub fn verify(&self, name: &str, token: &str, now: u64) -> Result<(), TokenError> {
        let (payload, signature) = token.rsplit_once('.').ok_or(TokenError::Bad)?;
        let (token_name, expiry) = payload.rsplit_once('.').ok_or(TokenError::Bad)?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| TokenError::Bad)?;
        self.mac(payload).verify_slice(&signature).map_err(|_| TokenError::Bad)?;
        if token_name != name {
            return Err(TokenError::Bad);
        }
        let expiry: u64 = expiry.parse().map_err(|_| TokenError::Bad)?;
        if now >= expiry { Err(TokenError::Expired) } else { Ok(()) }
    }

    fn mac(&self, payload: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret).expect("HMAC takes keys of any length");
        mac.update(payload.as_bytes());
        mac
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

fn write_private(path: &Path, text: &str) -> io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(text.as_bytes())
}

/// Seconds since the unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_token_verifies_until_expiry() {
        let key = TokenKey::new(b"0123456789abcdef".to_vec());
        let token = key.issue("ana", 1000);
        assert_eq!(key.verify("ana", &token, 999), Ok(()));
        assert_eq!(key.verify("ana", &token, 1000), Err(TokenError::Expired));
        assert_eq!(key.verify("bob", &token, 999), Err(TokenError::Bad));
    }

    #[test]
    fn forged_tokens_are_bad() {
        let key = TokenKey::new(b"0123456789abcdef".to_vec());
        let other = TokenKey::new(b"fedcba9876543210".to_vec());
        assert_eq!(key.verify("ana", &other.issue("ana", 1000), 0), Err(TokenError::Bad));
        let token = key.issue("ana", 1000);
        let extended = token.replace(".1000.", ".9999.");
        assert_eq!(key.verify("ana", &extended, 0), Err(TokenError::Bad));
        for junk in ["", "ana", "ana.1000", "ana.x.y", "...."] {
            assert_eq!(key.verify("ana", junk, 0), Err(TokenError::Bad), "{junk:?}");
        }
    }

    #[test]
    fn secret_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.secret");
        let token = TokenKey::load_or_create(&path).unwrap().issue("ana", 50);
        assert_eq!(TokenKey::load_or_create(&path).unwrap().verify("ana", &token, 10), Ok(()));
    }
}
