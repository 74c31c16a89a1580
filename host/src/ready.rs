//! `--ready-file PATH`: where a server started on port 0 listens, told to whoever started it
//! (a test, a supervisor, a load generator) as a fact, not as a log line to scrape.
//!
//! The file appears once the server serves: both listeners bound and the first tick run. It is
//! written beside PATH and renamed over it, so a reader never sees half of it. A file left by
//! an earlier run is removed at start, and this run's is removed when the server stops.

use std::{
    ffi::OsString,
    fs,
    io::ErrorKind,
    net::SocketAddr,
    path::{Path, PathBuf},
};

/// The ready file of this run, removed when dropped (the server stopped).
#[derive(Debug)]
pub struct ReadyFile {
    path: PathBuf,
}

impl ReadyFile {
    /// Checks that PATH can be written and removes what an earlier run left there.
    pub fn claim(path: &Path) -> Result<Self, String> {
        let folder = match path.parent() {
            Some(folder) if !folder.as_os_str().is_empty() => folder,
            _ => Path::new("."),
        };
        if !folder.is_dir() {
            return Err(format!(
                "--ready-file {}: the folder {} does not exist: create it or name a file in another folder",
                path.display(),
                folder.display()
            ));
        }
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                return Err(format!(
                    "--ready-file {}: cannot remove the file an earlier run left: {e}",
                    path.display()
                ));
            }
        }
        Ok(Self { path: path.to_path_buf() })
    }

    /// Writes `{"game": "IP:PORT", "admin": "IP:PORT" or null, "pid": N}`.
    pub fn write(&self, game: SocketAddr, admin: Option<SocketAddr>) -> Result<(), String> {
        let text = serde_json::json!({
            "game": game.to_string(),
            "admin": admin.map(|a| a.to_string()),
            "pid": std::process::id(),
        })
        .to_string();
        let mut partial = OsString::from(self.path.as_os_str());
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        fs::write(&partial, text + "\n")
            .and_then(|()| fs::rename(&partial, &self.path))
            .map_err(|e| format!("--ready-file {}: cannot write it: {e}", self.path.display()))
    }
}

impl Drop for ReadyFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_whole_and_removed_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ready.json");
        fs::write(&path, "left by an earlier run").unwrap();
        let ready = ReadyFile::claim(&path).unwrap();
        assert!(!path.exists(), "a file left by an earlier run would say this run is ready");
        ready.write("127.0.0.1:4000".parse().unwrap(), None).unwrap();
        let written: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(written["game"], "127.0.0.1:4000");
        assert_eq!(written["admin"], serde_json::Value::Null);
        assert_eq!(written["pid"], std::process::id());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "nothing but the file is left beside it");
        drop(ready);
        assert!(!path.exists());
    }

    #[test]
    fn a_missing_folder_is_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let err = ReadyFile::claim(&dir.path().join("nowhere/ready.json")).unwrap_err();
        assert!(err.contains("the folder") && err.contains("does not exist: create it"), "{err}");
    }
}
