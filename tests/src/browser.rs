//! A real headless Chromium for the browser client's tests, driven through playwright-core by
//! `web/tests/driver.mjs`: the test sends one command a line, the driver answers one a line.
//!
//! It needs Node, `web/node_modules` (`npm ci --prefix web`) and Chromium (`/usr/bin/chromium`,
//! or `VELTRIX_CHROMIUM`). Without them a test says SKIPPED and passes, unless
//! `VELTRIX_REQUIRE_BROWSER` is set, as `.ci/run` sets it after installing them: then their
//! absence fails the test.

use std::{
    io::{BufRead, BufReader, Write},
    path::PathBuf,
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    time::Duration,
};

use serde_json::{Value, json};
use xtask::workspace_root;

/// A headless Chromium with one page.
pub struct Browser {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// Where screenshots go: `target/browser-artifacts/`, kept after the run.
pub fn artifacts_dir() -> PathBuf {
    let dir = workspace_root().join("target/browser-artifacts");
    std::fs::create_dir_all(&dir).expect("the artifacts folder");
    dir
}

impl Browser {
    /// Starts Chromium, or says why it cannot (and panics when the browser is required).
    pub fn launch() -> Option<Browser> {
        let web = workspace_root().join("web");
        let chromium = std::env::var("VELTRIX_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let missing = if !web.join("node_modules/playwright-core").is_dir() {
            Some("web/node_modules is missing: run `npm ci --prefix web`".to_string())
        } else if !std::path::Path::new(&chromium).exists() {
            Some(format!("no Chromium at {chromium}: install Debian's `chromium` or set VELTRIX_CHROMIUM"))
        } else {
            None
        };
        if let Some(why) = missing {
            assert!(std::env::var_os("VELTRIX_REQUIRE_BROWSER").is_none(), "the browser tests cannot run: {why}");
            eprintln!("SKIPPED: {why}");
            return None;
        }
        let mut child = Command::new("node")
            .arg(web.join("tests/driver.mjs"))
            .current_dir(&web)
            .env("VELTRIX_CHROMIUM", chromium)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node starts (is Node installed?)");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut browser = Browser { child, stdin, stdout };
        let ready = browser.answer().expect("the driver starts Chromium");
        assert_eq!(ready, json!("ready"));
        Some(browser)
    }

    fn answer(&mut self) -> Result<Value, String> {
        let mut line = String::new();
        self.stdout.read_line(&mut line).map_err(|e| e.to_string())?;
        if line.is_empty() {
            return Err("the browser driver ended".into());
        }
        let answer: Value = serde_json::from_str(&line).map_err(|e| format!("{e}: {line}"))?;
        if answer["ok"] == json!(true) { Ok(answer["value"].clone()) } else { Err(answer["error"].to_string()) }
    }

    /// Sends one command and returns its value, or the driver's error.
    pub fn call(&mut self, command: Value) -> Result<Value, String> {
        writeln!(self.stdin, "{command}").map_err(|e| e.to_string())?;
        self.answer()
    }

    pub fn open(&mut self, url: &str) {
        self.call(json!({"op": "open", "url": url})).unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    /// The value of a JavaScript expression in the page.
    pub fn eval(&mut self, expr: &str) -> Value {
        self.call(json!({"op": "eval", "expr": expr})).unwrap_or_else(|e| panic!("{expr}: {e}"))
    }

    /// Waits until a JavaScript expression is truthy in the page, and returns its value; on a
    /// timeout, panics with `explain` evaluated for the message.
    pub fn wait(&mut self, expr: &str, timeout: Duration, explain: &str) -> Value {
        let command = json!({"op": "wait", "expr": expr, "timeoutMs": timeout.as_millis() as u64});
        match self.call(command) {
            Ok(value) => value,
            Err(e) => {
                let state = self.call(json!({"op": "eval", "expr": explain})).unwrap_or_else(|e| json!(e));
                let problems = self.call(json!({"op": "problems"})).unwrap_or_default();
                panic!("waiting for {expr}: {e}\nthe page: {state}\nits errors: {problems}")
            }
        }
    }

    /// Holds a key down for a while (a player walking), then lets it go.
    pub fn key(&mut self, key: &str, hold: Duration) {
        self.call(json!({"op": "key", "key": key, "holdMs": hold.as_millis() as u64})).expect("a key press");
    }

    /// Clicks a point of the page (CSS pixels).
    pub fn mouse(&mut self, x: f64, y: f64, button: &str) {
        self.call(json!({"op": "mouse", "x": x, "y": y, "button": button})).expect("a click");
    }

    pub fn viewport(&mut self, width: u32, height: u32) {
        self.call(json!({"op": "viewport", "width": width, "height": height})).expect("a viewport");
    }

    /// Saves a screenshot as `target/browser-artifacts/<name>.png`.
    pub fn screenshot(&mut self, name: &str) -> PathBuf {
        let path = artifacts_dir().join(format!("{name}.png"));
        self.call(json!({"op": "screenshot", "path": path})).expect("a screenshot");
        path
    }

    /// Errors the page reported (exceptions, console errors) since the last call.
    pub fn problems(&mut self) -> Vec<String> {
        serde_json::from_value(self.call(json!({"op": "problems"})).unwrap_or_default()).unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"op": "close"}));
        let _ = self.child.wait();
    }
}
