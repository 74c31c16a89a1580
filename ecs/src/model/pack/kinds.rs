//! The checks of each asset kind on its own: effects, items, loot tables and a hunt's
//! schedule; and how an unknown id is named.

use std::collections::BTreeSet;

use veltrix_sdk::{
    assets::{AssetError, LoadedKind},
    did_you_mean,
};

use super::placed::PackSources;
use crate::model::{
    assets::{Container, DropTable, Effect, Hunt, Item, Stacking},
    schedule::Start,
};

pub(super) fn check_effect(effects: &LoadedKind<Effect>, id: &str, effect: &Effect, errors: &mut Vec<AssetError>) {
    if !(effect.duration_seconds > 0.0 && effect.duration_seconds.is_finite()) {
        errors.push(effects.error(
            id,
            "DurationSeconds",
            format!("expected a duration of more than 0 seconds, not {}", effect.duration_seconds),
        ));
    }
    match (effect.stacking, effect.max_stacks) {
        (Stacking::Stack, None) => {
            errors.push(effects.error(id, "Stacking", "Stack needs MaxStacks (how many stacks at most)"))
        }
        (Stacking::Stack, Some(0)) => errors.push(effects.error(id, "MaxStacks", "expected at least 1")),
        (Stacking::Stack, Some(_)) | (_, None) => {}
        (rule, Some(_)) => {
            errors.push(effects.error(id, "MaxStacks", format!("only Stack effects have stacks; this one is {rule:?}")))
        }
    }
    for (key, factor) in [("MoveSpeed", effect.move_speed), ("DigSpeed", effect.dig_speed)] {
        if !(factor > 0.0 && factor <= 100.0) {
            errors.push(effects.error(
                id,
                key,
                format!("expected a factor above 0 and at most 100 (1 changes nothing), not {factor}"),
            ));
        }
    }
    if !(effect.treasure_sense >= 0.0 && effect.treasure_sense.is_finite()) {
        errors.push(effects.error(
            id,
            "TreasureSense",
            format!("expected a radius of 0 or more tiles, not {}", effect.treasure_sense),
        ));
    }
    if !(effect.luck >= 0.0 && effect.luck.is_finite()) {
        errors.push(effects.error(
            id,
            "Luck",
            format!("expected 0 or more (0.5 raises rare weights by 50%), not {}", effect.luck),
        ));
    }
}

/// A loot table: its containers, and its pity's numbers.
pub(super) fn check_drop_table(
    drops: &LoadedKind<DropTable>,
    id: &str,
    table: &DropTable,
    item_ids: &[&str],
    errors: &mut Vec<AssetError>,
) {
    check_container(drops, id, &table.container, "Container", item_ids, errors);
    if let Some(pity) = &table.pity {
        if pity.after == 0 {
            errors.push(drops.error(id, "Pity.After", "expected at least 1 (claims without a rare item)"));
        }
        if !(pity.step > 0.0 && pity.step.is_finite()) {
            errors.push(drops.error(
                id,
                "Pity.Step",
                format!("expected a rise of more than 0 per claim (0.5 is +50%), not {}", pity.step),
            ));
        }
    }
}

/// Every item file's id, loaded or not: a reference to a broken item is that item's error,
/// not an unknown id.
pub(super) fn item_file_ids(sources: &PackSources) -> Vec<&str> {
    sources.items.iter().map(|s| s.id.as_str()).collect()
}

pub(super) fn unknown(kind: &str, id: &str, known: &[&str]) -> String {
    match did_you_mean(id, known) {
        Some(hint) => format!("unknown {kind} \"{id}\" (did you mean \"{hint}\"?)"),
        None if known.is_empty() => format!("unknown {kind} \"{id}\": the pack has none"),
        None => format!("unknown {kind} \"{id}\""),
    }
}

pub(super) fn check_item(
    items: &LoadedKind<Item>,
    id: &str,
    item: &Item,
    effects: &BTreeSet<&str>,
    errors: &mut Vec<AssetError>,
) {
    if item.max_stack == 0 {
        errors.push(items.error(id, "MaxStack", "expected at least 1 (how many fit in one slot)"));
    }
    if let Some(effect) = &item.effect
        && !effects.contains(effect.as_str())
    {
        let known: Vec<&str> = effects.iter().copied().collect();
        errors.push(items.error(id, "Effect", unknown("effect", effect, &known)));
    }
}

fn check_container(
    drops: &LoadedKind<DropTable>,
    id: &str,
    container: &Container,
    path: &str,
    item_ids: &[&str],
    errors: &mut Vec<AssetError>,
) {
    let weight = container.weight();
    if !(weight >= 0.0 && weight.is_finite()) {
        errors.push(drops.error(
            id,
            &format!("{path}.Weight"),
            format!("expected a weight of 0 or more, not {weight}"),
        ));
    }
    match container {
        Container::Empty { .. } => {}
        Container::Single { item, .. } => {
            if !item_ids.contains(&item.item_id.as_str()) {
                errors.push(drops.error(id, &format!("{path}.Item.ItemId"), unknown("item", &item.item_id, item_ids)));
            }
            if item.quantity_min > item.quantity_max {
                errors.push(drops.error(
                    id,
                    &format!("{path}.Item.QuantityMin"),
                    format!(
                        "QuantityMin ({}) is more than QuantityMax ({}): expected QuantityMin <= QuantityMax",
                        item.quantity_min, item.quantity_max
                    ),
                ));
            }
        }
        Container::Multiple { containers, .. } => {
            for (i, child) in containers.iter().enumerate() {
                let child_path = format!("{path}.Containers[{i}]");
                if child.weight() > 100.0 {
                    errors.push(drops.error(
                        id,
                        &format!("{child_path}.Weight"),
                        format!("in a Multiple, Weight is a percent chance: expected 0 to 100, not {}", child.weight()),
                    ));
                }
                check_container(drops, id, child, &child_path, item_ids, errors);
            }
        }
        Container::Choice { rolls_min, rolls_max, containers, .. } => {
            if rolls_min > rolls_max {
                errors.push(drops.error(
                    id,
                    &format!("{path}.RollsMin"),
                    format!(
                        "RollsMin ({rolls_min}) is more than RollsMax ({rolls_max}): expected RollsMin <= RollsMax"
                    ),
                ));
            }
            if containers.iter().all(|c| c.weight() <= 0.0) {
                errors.push(drops.error(
                    id,
                    &format!("{path}.Containers"),
                    "every Weight in this Choice is 0 (or it has no Containers): expected at least one above 0",
                ));
            }
            for (i, child) in containers.iter().enumerate() {
                check_container(drops, id, child, &format!("{path}.Containers[{i}]"), item_ids, errors);
            }
        }
    }
}

/// The schedule parses; durations and player counts make sense.
pub(super) fn check_lifecycle(hunts: &LoadedKind<Hunt>, id: &str, hunt: &Hunt, errors: &mut Vec<AssetError>) {
    if let Err(e) = Start::parse(&hunt.schedule) {
        errors.push(hunts.error(id, "Schedule", e));
    }
    if hunt.duration_seconds == Some(0) {
        errors.push(hunts.error(id, "DurationSeconds", "expected at least 1 second (leave it out for no time limit)"));
    }
}
