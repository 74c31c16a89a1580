//! Load order from `Dependencies`, `OptionalDependencies` and `LoadBefore`, with missing
//! dependencies and cycles reported by name.

use std::collections::{BTreeMap, BTreeSet};

use super::{Candidate, ModFailure};

/// Drops the mods whose dependencies are missing (transitively) or that sit on a cycle, and
/// returns the rest in load order: dependencies first, ties broken by mod id.
pub(super) fn resolve(mut mods: Vec<Candidate>, failures: &mut Vec<ModFailure>) -> Vec<Candidate> {
    loop {
        drop_unsatisfied(&mut mods, failures);
        match sort(&mods) {
            Ok(order) => {
                let mut by_id: BTreeMap<String, Candidate> =
                    mods.into_iter().map(|c| (c.manifest.id.to_string(), c)).collect();
                return order.iter().map(|id| by_id.remove(id).expect("sorted ids come from the mods")).collect();
            }
            Err(cycle) => {
                let text = format!("{} -> {}", cycle.join(" -> "), cycle[0]);
                mods.retain(|c| {
                    let on_cycle = cycle.contains(&c.manifest.id.to_string());
                    if on_cycle {
                        failures.push(c.fail(&c.manifest_path(), format!("dependency cycle: {text}")));
                    }
                    !on_cycle
                });
            }
        }
    }
}

/// Removes, until none is left, every mod a required dependency of which is absent or of a
/// version outside the range it asks for.
fn drop_unsatisfied(mods: &mut Vec<Candidate>, failures: &mut Vec<ModFailure>) {
    loop {
        let versions: BTreeMap<String, semver::Version> =
            mods.iter().map(|c| (c.manifest.id.to_string(), c.manifest.version.clone())).collect();
        let before = mods.len();
        mods.retain(|c| {
            for (dep, range) in &c.manifest.dependencies {
                let reason = match versions.get(dep) {
                    None => format!("requires {dep} ({range}), which is not loaded"),
                    Some(v) if !range.matches(v) => {
                        format!("requires {dep} {range}, but version {v} is installed")
                    }
                    Some(_) => continue,
                };
                failures.push(c.fail(&c.manifest_path(), reason));
                return false;
            }
            true
        });
        if mods.len() == before {
            return;
        }
    }
}

/// Kahn's algorithm over "must load before" edges; on a cycle, returns one cycle's ids.
fn sort(mods: &[Candidate]) -> Result<Vec<String>, Vec<String>> {
    let ids: BTreeSet<String> = mods.iter().map(|c| c.manifest.id.to_string()).collect();
    // before[a] = the mods that must load after a.
    let mut after: BTreeMap<String, BTreeSet<String>> = ids.iter().map(|id| (id.clone(), BTreeSet::new())).collect();
    for c in mods {
        let id = c.manifest.id.to_string();
        for dep in c.manifest.dependencies.keys().chain(c.manifest.optional_dependencies.keys()) {
            if ids.contains(dep) && *dep != id {
                after.get_mut(dep).expect("present").insert(id.clone());
            }
        }
        for target in c.manifest.load_before.keys() {
            if ids.contains(target) && *target != id {
                after.get_mut(&id).expect("present").insert(target.clone());
            }
        }
        if c.manifest.dependencies.contains_key(&id) {
            return Err(vec![id]);
        }
    }
    let mut incoming: BTreeMap<&String, usize> = ids.iter().map(|id| (id, 0)).collect();
    for targets in after.values() {
        for t in targets {
            *incoming.get_mut(t).expect("present") += 1;
        }
    }
    let mut ready: BTreeSet<&String> = incoming.iter().filter(|(_, n)| **n == 0).map(|(id, _)| *id).collect();
    let mut order = Vec::with_capacity(ids.len());
    while let Some(id) = ready.pop_first() {
        order.push(id.clone());
        for t in &after[id] {
            let n = incoming.get_mut(t).expect("present");
            *n -= 1;
            if *n == 0 {
                ready.insert(t);
            }
        }
    }
    if order.len() == ids.len() {
        return Ok(order);
    }
    // Walk from any mod still waiting along waiting edges until a mod repeats: that is a cycle.
    let waiting: BTreeSet<&String> = incoming.iter().filter(|(_, n)| **n > 0).map(|(id, _)| *id).collect();
    let mut path: Vec<String> = Vec::new();
    let mut at = (*waiting.first().expect("a cycle leaves mods waiting")).clone();
    loop {
        if let Some(start) = path.iter().position(|p| *p == at) {
            return Err(path.split_off(start));
        }
        path.push(at.clone());
        // Step to a waiting mod that must load before `at`.
        at = after
            .iter()
            .find(|(from, to)| waiting.contains(from) && to.contains(&at))
            .map(|(from, _)| from.clone())
            .expect("a waiting mod has a waiting predecessor");
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::mods::manifest;

    fn candidate(json: &str) -> Candidate {
        Candidate { manifest: manifest::parse(json).unwrap().manifest, dir: PathBuf::from("/mods/x") }
    }

    fn ids(mods: &[Candidate]) -> Vec<String> {
        mods.iter().map(|c| c.manifest.id.to_string()).collect()
    }

    #[test]
    fn dependencies_and_load_before_order_mods() {
        let mods = vec![
            candidate(r#"{"Group":"A","Name":"App","Main":"a.so","Dependencies":{"A:Lib":"*"}}"#),
            candidate(r#"{"Group":"A","Name":"Lib","Main":"l.so"}"#),
            candidate(r#"{"Group":"Z","Name":"Early","Main":"e.so","LoadBefore":{"A:Lib":"*"}}"#),
        ];
        let mut failures = vec![];
        assert_eq!(ids(&resolve(mods, &mut failures)), ["Z:Early", "A:Lib", "A:App"]);
        assert!(failures.is_empty());
    }

    #[test]
    fn missing_dependency_disables_dependents_transitively() {
        let mods = vec![
            candidate(r#"{"Group":"A","Name":"Top","Main":"t.so","Dependencies":{"A:Mid":"*"}}"#),
            candidate(r#"{"Group":"A","Name":"Mid","Main":"m.so","Dependencies":{"A:Gone":">=1"}}"#),
            candidate(r#"{"Group":"A","Name":"Ok","Main":"o.so"}"#),
        ];
        let mut failures = vec![];
        assert_eq!(ids(&resolve(mods, &mut failures)), ["A:Ok"]);
        let reasons: Vec<_> = failures.iter().map(|f| format!("{}: {}", f.name, f.reason)).collect();
        assert_eq!(
            reasons,
            ["A:Mid: requires A:Gone (>=1), which is not loaded", "A:Top: requires A:Mid (*), which is not loaded"]
        );
    }

    #[test]
    fn cycle_is_named() {
        let mods = vec![
            candidate(r#"{"Group":"C","Name":"One","Main":"1.so","Dependencies":{"C:Two":"*"}}"#),
            candidate(r#"{"Group":"C","Name":"Two","Main":"2.so","Dependencies":{"C:Three":"*"}}"#),
            candidate(r#"{"Group":"C","Name":"Three","Main":"3.so","Dependencies":{"C:One":"*"}}"#),
            candidate(r#"{"Group":"C","Name":"Free","Main":"f.so"}"#),
        ];
        let mut failures = vec![];
        assert_eq!(ids(&resolve(mods, &mut failures)), ["C:Free"]);
        assert_eq!(failures.len(), 3);
        assert!(
            failures.iter().all(|f| f.reason == "dependency cycle: C:One -> C:Two -> C:Three -> C:One"),
            "{failures:?}"
        );
    }
}
