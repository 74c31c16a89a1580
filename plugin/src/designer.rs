//! Designers' commands (`veltrix-server odds`, `preview`, `simulate`): answered from a pack loaded
//! and checked as `validate` checks it, with the model's own computations (treasure-hunt-ecs) and,
//! for `simulate`, the mod's own systems ([`crate::simulate`]).

use std::{fmt::Write as _, path::Path};

use serde::Serialize;
use treasure_hunt_ecs::model::{
    odds::{self, TableOdds},
    pack::HuntAssets,
};
use veltrix_sdk::{DesignerCommand, DesignerError, Spawn, TileWorld, did_you_mean, serde_json};

/// Answers `command` from the pack in `pack_dir`, checked against `tiles` and `spawn`.
pub fn run(
    pack_dir: &Path,
    tiles: &TileWorld,
    spawn: Spawn,
    command: &DesignerCommand,
) -> Result<String, DesignerError> {
    let assets = crate::reload::load_pack(pack_dir, tiles, spawn)
        .map_err(|errors| DesignerError::Pack(errors.iter().map(ToString::to_string).collect()))?;
    match command {
        DesignerCommand::Odds { table, luck, pity, json } => table_odds(&assets, table, *luck, *pity, *json),
        DesignerCommand::Preview { hunt, out, distance } => {
            preview(&assets, tiles, spawn, hunt, out, distance.as_deref())
        }
        DesignerCommand::Simulate(sim) => crate::simulate::run(pack_dir, tiles, spawn, &assets, sim),
    }
}

/// Draws a hunt and writes the picture to `out`.
fn preview(
    assets: &HuntAssets,
    tiles: &TileWorld,
    spawn: Spawn,
    id: &str,
    out: &Path,
    distance: Option<&str>,
) -> Result<String, DesignerError> {
    let Some(hunt) = assets.hunts.get(id) else {
        return Err(DesignerError::Usage(unknown("hunt", id, assets.hunts.keys())));
    };
    let distance = match distance {
        Some(vault) => match hunt.vaults.iter().find(|v| v.id == vault) {
            Some(v) => Some(v),
            None => {
                let ids: Vec<String> = hunt.vaults.iter().map(|v| v.id.clone()).collect();
                return Err(DesignerError::Usage(unknown(&format!("vault of hunt {id}"), vault, ids.iter())));
            }
        },
        None => None,
    };
    let preview = crate::preview::Preview { hunt, tiles, spawn, distance };
    let svg = out.extension().is_some_and(|e| e.eq_ignore_ascii_case("svg"));
    let write = || -> Result<(u32, u32), String> {
        let file = std::fs::File::create(out).map_err(|e| e.to_string())?;
        let mut writer = std::io::BufWriter::new(file);
        let size = if svg {
            let (text, size) = crate::preview::draw_svg(&preview)?;
            std::io::Write::write_all(&mut writer, text.as_bytes()).map_err(|e| e.to_string())?;
            size
        } else {
            let canvas = crate::preview::draw(&preview);
            canvas.write_png(&mut writer)?;
            (canvas.width, canvas.height)
        };
        std::io::Write::flush(&mut writer).map_err(|e| e.to_string())?;
        Ok(size)
    };
    let (width, height) =
        write().map_err(|e| DesignerError::Failed(format!("{}: cannot write the preview: {e}", out.display())))?;
    Ok(format!(
        "{}: hunt {id} with {} vault(s) on the {} x {} world, {width} x {height} pixels\n",
        out.display(),
        hunt.vaults.len(),
        tiles.width(),
        tiles.depth(),
    ))
}

/// The odds of one loot table, as a table for the terminal or as JSON.
fn table_odds(assets: &HuntAssets, id: &str, luck: f64, pity: u32, json: bool) -> Result<String, DesignerError> {
    let Some(table) = assets.drops.get(id) else {
        return Err(DesignerError::Usage(unknown("loot table", id, assets.drops.keys())));
    };
    let rare = assets.rare_entries.get(id).cloned().unwrap_or_default();
    let odds = odds::table_odds(table, &rare, |item| assets.is_rare(item), luck, pity);
    if json {
        #[derive(Serialize)]
        struct Out<'a> {
            table: &'a str,
            #[serde(flatten)]
            odds: &'a TableOdds,
        }
        let text = serde_json::to_string_pretty(&Out { table: id, odds: &odds })
            .map_err(|e| DesignerError::Failed(format!("cannot write the odds as JSON: {e}")))?;
        return Ok(text + "\n");
    }
    Ok(odds_text(assets, id, &odds))
}

/// "unknown loot table `X` (did you mean `Y`?): the pack has A, B".
pub fn unknown<'a>(what: &str, id: &str, known: impl Iterator<Item = &'a String>) -> String {
    let known: Vec<&str> = known.map(String::as_str).collect();
    let hint = did_you_mean(id, &known).map(|k| format!(" (did you mean `{k}`?)")).unwrap_or_default();
    if known.is_empty() {
        format!("unknown {what} `{id}`: the pack has none")
    } else {
        format!("unknown {what} `{id}`{hint}: the pack has {}", known.join(", "))
    }
}

/// A percentage with the digits a small chance needs.
fn percent(p: f64) -> String {
    let p = p * 100.0;
    if p == 0.0 || p >= 1.0 {
        format!("{p:.2} %")
    } else if p >= 0.01 {
        format!("{p:.3} %")
    } else {
        format!("{p:.2e} %")
    }
}

fn odds_text(assets: &HuntAssets, id: &str, odds: &TableOdds) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Loot table {id}: one claim with luck {} after {} claim(s) without a rare item (boost {}).",
        odds.luck, odds.dry_claims, odds.boost
    );
    let _ = writeln!(out, "Chance: of at least one in this claim. Mean: how many this claim yields on average.");
    if odds.pity.is_some() {
        let _ = writeln!(out, "Long run: per claim over many claims of one player, pity included.");
    }
    let width = odds.items.iter().map(|i| i.item.len()).max().unwrap_or(0).max("any rare item".len());
    let _ = writeln!(out);
    let mut header = format!("{:<width$}  {:<9}  {:>10}  {:>9}", "item", "rarity", "chance", "mean");
    if odds.pity.is_some() {
        let _ = write!(header, "  {:>10}  {:>9}", "long run", "mean");
    }
    let _ = writeln!(out, "{header}");
    for item in &odds.items {
        let rarity = assets.items.get(&item.item).map_or_else(|| "?".to_string(), |i| format!("{:?}", i.rarity));
        let mut line =
            format!("{:<width$}  {:<9}  {:>10}  {:>9.3}", item.item, rarity, percent(item.chance), item.mean_quantity);
        if odds.pity.is_some() {
            let _ = write!(line, "  {:>10}  {:>9.3}", percent(item.long_run_chance), item.long_run_mean_quantity);
        }
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "{:<width$}  {:<9}  {:>10}", "any rare item", "", percent(odds.rare_chance));
    let _ = writeln!(out, "{:<width$}  {:<9}  {:>10}", "nothing", "", percent(odds.nothing_chance));
    if let Some(pity) = &odds.pity {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Pity (After {}, Step {}): a rare item every {:.2} claims on average ({} of claims); {}.",
            pity.after,
            pity.step,
            pity.claims_per_rare,
            percent(pity.long_run_rare_chance),
            match pity.claims_for_99_percent {
                Some(n) => format!("99 % of players have one within {n} claims"),
                None => "a rare item never drops".into(),
            }
        );
        let _ = writeln!(out, "{:>10}  {:>6}  {:>12}  {:>10}", "dry claims", "pity", "rare chance", "reached");
        for step in &pity.schedule {
            let _ = writeln!(
                out,
                "{:>10}  {:>6.2}  {:>12}  {:>10}",
                step.dry_claims,
                step.boost,
                percent(step.rare_chance),
                percent(step.reached)
            );
        }
        let _ = writeln!(
            out,
            "(pity: the pity boost of that claim, times 1 + luck; reached: the chance a player's run of claims \
             without a rare item gets that long)"
        );
    }
    out
}
