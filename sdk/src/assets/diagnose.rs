//! serde's errors made into designers' errors, at the value they are about.
//!
//! `serde_path_to_error` gives the path of the value being read when serde failed. Inside an
//! internally tagged enum (`#[serde(tag = "Type")]`) or a flattened struct, serde first buffers
//! the whole object and reads it again from the buffer, out of the tracker's sight: the path
//! then stops at the enum's object, whatever the depth of the actual error. So each error is
//! checked against the value at its path, and when it does not fit there, the value's subtree
//! is searched for what fits, each candidate confirmed by changing just it in a copy and
//! reading the copy again (the error must change the way it would if that candidate were the
//! one at fault).

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::locate::Seg;
use crate::did_you_mean;

/// The most copies read again to find where one error is: a bound on the time a broken file
/// can take, reached only by files with hundreds of look-alike candidates.
const MAX_PROBES: usize = 256;

/// What went wrong and where in the merged asset.
#[derive(Debug)]
pub(super) struct Diagnosis {
    /// The value the error is about; with `key`, the object holding that key.
    pub(super) path: Vec<Seg>,
    /// The error is about this key of the object at `path` (point at the key, not the value).
    pub(super) key: Option<String>,
    pub(super) message: String,
}

/// A failed read: serde's path (cut at the first step it could not name) and message.
pub(super) type Failure = (Vec<Seg>, String);

/// Reads a merged asset, with the path of the value serde failed on.
pub(super) fn deserialize<T: DeserializeOwned>(value: &Value) -> Result<T, Failure> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut path = Vec::new();
        for seg in e.path().iter() {
            match seg {
                serde_path_to_error::Segment::Seq { index } => path.push(Seg::Index(*index)),
                serde_path_to_error::Segment::Map { key } => path.push(Seg::Key(key.clone())),
                serde_path_to_error::Segment::Enum { variant } => path.push(Seg::Key(variant.clone())),
                serde_path_to_error::Segment::Unknown => break,
            }
        }
        (path, e.into_inner().to_string())
    })
}

/// Finds the value a failure is about and words its message for a designer.
pub(super) fn diagnose<T: DeserializeOwned>(merged: &Value, failure: Failure) -> Diagnosis {
    let probe = |value: &Value| deserialize::<T>(value).err();
    Diagnoser { merged, probe: &probe, failure }.run()
}

/// serde's message, read back into its parts (its wording is stable).
enum Problem {
    UnknownKey {
        name: String,
        expected: Vec<String>,
        tail: String,
    },
    UnknownValue {
        name: String,
        expected: Vec<String>,
        tail: String,
    },
    MissingKey {
        name: String,
    },
    /// `invalid type: ...` or `invalid value: ...`.
    Invalid {
        prefix: &'static str,
    },
    Other,
}

impl Problem {
    fn parse(message: &str) -> Problem {
        let named = |prefix: &str| {
            let rest = message.strip_prefix(prefix)?;
            let end = rest.find("`, ")?;
            let tail = &rest[end + 1..];
            let expected = tail.split('`').skip(1).step_by(2).map(String::from).collect();
            Some((rest[..end].to_string(), expected, tail.to_string()))
        };
        if let Some((name, expected, tail)) = named("unknown field `") {
            return Problem::UnknownKey { name, expected, tail };
        }
        if let Some((name, expected, tail)) = named("unknown variant `") {
            return Problem::UnknownValue { name, expected, tail };
        }
        if let Some(name) = message.strip_prefix("missing field `").and_then(|rest| rest.strip_suffix('`')) {
            return Problem::MissingKey { name: name.to_string() };
        }
        for prefix in ["invalid type: ", "invalid value: "] {
            if message.starts_with(prefix) {
                return Problem::Invalid { prefix };
            }
        }
        Problem::Other
    }
}

struct Diagnoser<'a> {
    merged: &'a Value,
    probe: &'a dyn Fn(&Value) -> Option<Failure>,
    failure: Failure,
}

impl Diagnoser<'_> {
    fn run(self) -> Diagnosis {
        let (path, message) = &self.failure;
        // The deepest part of serde's path that exists in the merged value.
        let mut at = path.clone();
        while value_at(self.merged, &at).is_none() {
            at.pop();
        }
        match Problem::parse(message) {
            Problem::UnknownKey { name, expected, tail } => self.unknown_key(at, name, &expected, &tail),
            Problem::UnknownValue { name, expected, tail } => self.unknown_value(at, name, &expected, &tail),
            Problem::MissingKey { name } => self.missing_key(at, &name),
            Problem::Invalid { prefix } => self.invalid(at, prefix),
            Problem::Other => Diagnosis { path: at, key: None, message: message.clone() },
        }
    }

    /// An unknown key `name`: the object that holds it (the one whose renamed key gives serde's
    /// error again), under `at`.
    fn unknown_key(&self, at: Vec<Seg>, name: String, expected: &[String], tail: &str) -> Diagnosis {
        let path = &self.failure.0;
        let message = unknown("key", &name, expected, "this object takes no keys");
        // serde names the key itself as the last step of the path.
        if let [object @ .., Seg::Key(last)] = path.as_slice()
            && *last == name
            && value_at(self.merged, object).is_some_and(|v| v.get(&name).is_some())
        {
            return Diagnosis { path: object.to_vec(), key: Some(name), message };
        }
        let marker = format!("{name}\u{0}");
        let candidates = self.find(&at, |_, v| v.get(&name).is_some());
        let found = self.confirm(&candidates, |copy, object| {
            rename_key(copy, object, &name, &marker);
            Some(format!("unknown field `{marker}`{tail}"))
        });
        match found.or_else(|| candidates.first().cloned()) {
            Some(object) => Diagnosis { path: object, key: Some(name), message },
            None => Diagnosis { path: at, key: None, message },
        }
    }

    /// An unknown value `name`: a string value (`"Type": "Singel"`), or a key (an externally
    /// tagged enum), under `at`.
    fn unknown_value(&self, at: Vec<Seg>, name: String, expected: &[String], tail: &str) -> Diagnosis {
        let message = unknown("value", &name, expected, "no value is allowed here");
        let marker = format!("{name}\u{0}");
        let expected_message = format!("unknown variant `{marker}`{tail}");
        let is_value = |v: &Value| v.as_str() == Some(name.as_str());
        let has_key = |v: &Value| v.get(&name).is_some() && v.is_object();
        if value_at(self.merged, &at).is_some_and(is_value) {
            return Diagnosis { path: at, key: None, message };
        }
        if value_at(self.merged, &at).is_some_and(has_key) {
            return Diagnosis { path: at, key: Some(name), message };
        }
        let values = self.find(&at, |_, v| is_value(v));
        let found = self.confirm(&values, |copy, path| {
            *value_at_mut(copy, path)? = Value::String(marker.clone());
            Some(expected_message.clone())
        });
        if let Some(path) = found.or_else(|| values.first().cloned()) {
            return Diagnosis { path, key: None, message };
        }
        let objects = self.find(&at, |_, v| has_key(v));
        let found = self.confirm(&objects, |copy, object| {
            rename_key(copy, object, &name, &marker);
            Some(expected_message.clone())
        });
        match found.or_else(|| objects.first().cloned()) {
            Some(object) => Diagnosis { path: object, key: Some(name), message },
            None => Diagnosis { path: at, key: None, message },
        }
    }

    /// A missing key `name`: the object under `at` that, given the key, fails otherwise.
    fn missing_key(&self, at: Vec<Seg>, name: &str) -> Diagnosis {
        let candidates = self.find(&at, |_, v| v.as_object().is_some_and(|o| !o.contains_key(name)));
        let unknown_key = format!("unknown field `{name}`");
        // Giving the object the key (null) must change the error, and not into "unknown".
        let found = candidates.iter().take(MAX_PROBES).find(|object| {
            let mut copy = self.merged.clone();
            if let Some(Value::Object(o)) = value_at_mut(&mut copy, object) {
                o.insert(name.to_string(), Value::Null);
            }
            match (self.probe)(&copy) {
                None => true,
                Some(failure) => failure != self.failure && !failure.1.starts_with(&unknown_key),
            }
        });
        let message = format!("missing key {name:?}");
        Diagnosis { path: found.cloned().unwrap_or(at), key: None, message }
    }

    /// A value of the wrong type or value (serde's message starts with `prefix`), under `at`.
    fn invalid(&self, at: Vec<Seg>, prefix: &str) -> Diagnosis {
        let message = &self.failure.1;
        // serde's message names the value (`string "x"`, `integer `5``, `map`) and what
        // was expected: a candidate is a value of that description.
        let tail_of = |v: &Value| {
            let head = format!("{prefix}{}, expected ", describe(v));
            message.strip_prefix(&head).map(String::from)
        };
        let direct = value_at(self.merged, &at).is_some_and(|v| !is_container(v) && tail_of(v).is_some());
        let found = if direct {
            Some(at.clone())
        } else {
            let candidates = self.find(&at, |_, v| tail_of(v).is_some());
            candidates.iter().take(MAX_PROBES).find(|path| self.confirm_invalid(path, &tail_of)).cloned()
        };
        Diagnosis { path: found.unwrap_or(at), key: None, message: message.clone() }
    }

    /// The paths of the values under `at` (itself included) that `fits` accepts, in the order
    /// serde reads them.
    fn find(&self, at: &[Seg], fits: impl Fn(&[Seg], &Value) -> bool) -> Vec<Vec<Seg>> {
        fn walk(path: &mut Vec<Seg>, value: &Value, fits: &dyn Fn(&[Seg], &Value) -> bool, out: &mut Vec<Vec<Seg>>) {
            if fits(path, value) {
                out.push(path.clone());
            }
            match value {
                Value::Object(map) => {
                    for (key, child) in map {
                        path.push(Seg::Key(key.clone()));
                        walk(path, child, fits, out);
                        path.pop();
                    }
                }
                Value::Array(items) => {
                    for (index, child) in items.iter().enumerate() {
                        path.push(Seg::Index(index));
                        walk(path, child, fits, out);
                        path.pop();
                    }
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        if let Some(value) = value_at(self.merged, at) {
            walk(&mut at.to_vec(), value, &fits, &mut out);
        }
        out
    }

    /// The first candidate whose change (made by `change` on a copy, which returns the message
    /// the read must then fail with) gives that message at the same path.
    fn confirm(
        &self,
        candidates: &[Vec<Seg>],
        change: impl Fn(&mut Value, &[Seg]) -> Option<String>,
    ) -> Option<Vec<Seg>> {
        candidates
            .iter()
            .take(MAX_PROBES)
            .find(|path| {
                let mut copy = self.merged.clone();
                let Some(expected) = change(&mut copy, path) else { return false };
                (self.probe)(&copy).is_some_and(|(p, m)| p == self.failure.0 && m == expected)
            })
            .cloned()
    }

    /// Whether the invalid value is the one at `path`: put another kind of value there, and
    /// the same type must refuse it the same way.
    fn confirm_invalid(&self, path: &[Seg], tail_of: &dyn Fn(&Value) -> Option<String>) -> bool {
        let Some(value) = value_at(self.merged, path) else { return false };
        let Some(tail) = tail_of(value) else { return false };
        [Value::Bool(true), Value::Array(Vec::new())].into_iter().filter(|r| !same_kind(r, value)).any(|replacement| {
            let mut copy = self.merged.clone();
            let expected = format!("invalid type: {}, expected {tail}", describe(&replacement));
            if let Some(slot) = value_at_mut(&mut copy, path) {
                *slot = replacement;
            }
            (self.probe)(&copy).is_some_and(|(p, m)| p == self.failure.0 && m == expected)
        })
    }
}

/// `unknown key "Wieght" (did you mean "Weight"?)`, else the names that are allowed.
fn unknown(what: &str, name: &str, expected: &[String], none: &str) -> String {
    let known: Vec<&str> = expected.iter().map(String::as_str).collect();
    let names = || known.iter().map(|k| format!("{k:?}")).collect::<Vec<_>>().join(", ");
    match did_you_mean(name, &known) {
        Some(hint) => format!("unknown {what} {name:?} (did you mean {hint:?}?)"),
        None if known.is_empty() => format!("unknown {what} {name:?} ({none})"),
        None if known.len() == 1 => format!("unknown {what} {name:?} (expected {})", names()),
        None => format!("unknown {what} {name:?} (expected one of {})", names()),
    }
}

/// How serde describes a JSON value in "invalid type" errors: `string "x"`, `integer `5``,
/// `floating point `1.5``, `boolean `true``, `null`, `sequence`, `map`.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Array(_) => "sequence".to_string(),
        Value::Object(_) => "map".to_string(),
        // Asking for `()` makes serde_json describe the value in its own words.
        _ => match <()>::deserialize(value) {
            Ok(()) => "null".to_string(),
            Err(e) => {
                let text = e.to_string();
                text.strip_prefix("invalid type: ")
                    .and_then(|t| t.strip_suffix(", expected unit"))
                    .map(String::from)
                    .unwrap_or(text)
            }
        },
    }
}

fn is_container(value: &Value) -> bool {
    value.is_object() || value.is_array()
}

fn same_kind(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

pub(super) fn value_at<'v>(value: &'v Value, path: &[Seg]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, seg| match seg {
        Seg::Key(key) => v.as_object()?.get(key),
        Seg::Index(index) => v.as_array()?.get(*index),
    })
}

fn value_at_mut<'v>(value: &'v mut Value, path: &[Seg]) -> Option<&'v mut Value> {
    path.iter().try_fold(value, |v, seg| match seg {
        Seg::Key(key) => v.as_object_mut()?.get_mut(key),
        Seg::Index(index) => v.as_array_mut()?.get_mut(*index),
    })
}

/// Renames a key (the marker sorts right after the name, so the object is read in the same
/// order).
fn rename_key(value: &mut Value, object: &[Seg], name: &str, marker: &str) {
    if let Some(Value::Object(map)) = value_at_mut(value, object)
        && let Some(v) = map.remove(name)
    {
        map.insert(marker.to_string(), v);
    }
}
