//! Panics in mod code: caught, and reported as one line with their message and location.
//!
//! While [`catch`] runs, the panic hook records the message for the caller instead of
//! printing it, so a failing mod gives one log line ("... DISABLED: setup panicked at ...")
//! rather than a backtrace dump followed by that line.

use std::{
    cell::{Cell, RefCell},
    panic::{self, AssertUnwindSafe},
};

thread_local! {
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    static CAPTURED: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs the hook: panics outside [`catch`] are logged through tracing, then handled by the
/// previous hook; panics inside are recorded for [`catch`] to return.
pub fn install_hook() {
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let location =
            info.location().map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column())).unwrap_or_default();
        let message = format!("{}{location}", message_of(info.payload()));
        if CAPTURING.get() {
            CAPTURED.replace(Some(message));
        } else {
            tracing::error!("panic: {message}");
            previous(info);
        }
    }));
}

/// Runs `f`, turning a panic into `Err("<message> at <file>:<line>:<column>")`.
pub fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    let was = CAPTURING.replace(true);
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CAPTURING.set(was);
    result.map_err(|payload| CAPTURED.take().unwrap_or_else(|| message_of(&*payload)))
}

/// The message of a panic payload.
pub fn message_of(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn catch_returns_message() {
        let err = super::catch(|| panic!("boom {}", 7)).unwrap_err();
        assert!(err.starts_with("boom 7"), "{err}");
        assert_eq!(super::catch(|| 5), Ok(5));
    }
}
