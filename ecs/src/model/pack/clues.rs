//! A hunt's clues: each checked (its vault, trigger, kind and bands) and Area circles placed.

use std::collections::BTreeSet;

use veltrix_sdk::{
    assets::{AssetError, LoadedKind},
    did_you_mean,
};

use super::{
    kinds::unknown,
    placed::{PlacedClue, PlacedVault},
    vaults::names_vault,
};
use crate::model::{
    assets::{AreaClue, ClueKind, ClueTrigger, HeatBand, Hunt, TilePos, VaultSpec},
    lang::{DEFAULT_LOCALE, Languages},
    loot::stable_hash,
};

/// The vaults a hunt's clues may name: those placed, and those of entries that could not be
/// placed (reported there), whose clues are checked all the same.
struct KnownVaults<'a> {
    vaults: &'a [PlacedVault],
    unplaced: &'a [&'a VaultSpec],
    /// The ids suggested for an unknown one.
    ids: Vec<&'a str>,
}

impl<'a> KnownVaults<'a> {
    fn new(vaults: &'a [PlacedVault], unplaced: &'a [&'a VaultSpec]) -> Self {
        let ids = vaults
            .iter()
            .map(|v| v.id.as_str())
            .chain(unplaced.iter().filter(|s| s.at.is_some()).map(|s| s.id.as_str()))
            .collect();
        KnownVaults { vaults, unplaced, ids }
    }

    fn knows(&self, vault: &str) -> bool {
        self.vaults.iter().any(|v| v.id == vault) || self.unplaced.iter().any(|s| names_vault(s, vault))
    }
}

/// Checks each clue (its vault, its trigger, its kind) and places Area circles. A clue about a
/// vault of an entry that could not be placed (`unplaced`, reported there) is checked all the
/// same, but not placed.
pub(super) fn place_clues(
    hunts: &LoadedKind<Hunt>,
    id: &str,
    hunt: &Hunt,
    vaults: &[PlacedVault],
    unplaced: &[&VaultSpec],
    languages: &Languages,
    errors: &mut Vec<AssetError>,
) -> Vec<PlacedClue> {
    let known = KnownVaults::new(vaults, unplaced);
    let text_keys = languages.default_keys();
    let mut seen = BTreeSet::new();
    let mut placed = Vec::new();
    for (i, clue) in hunt.clues.iter().enumerate() {
        let mut error =
            |key: &str, message: String| errors.push(hunts.error(id, &format!("Clues[{i}].{key}"), message));
        if !seen.insert(clue.id.as_str()) {
            error("Id", format!("another clue of this hunt is already named \"{}\": ids are unique", clue.id));
        }
        let vault = vaults.iter().find(|v| v.id == clue.vault);
        if !known.knows(&clue.vault) {
            error("Vault", unknown("vault", &clue.vault, &known.ids));
        }
        check_trigger(&clue.trigger, &known, &mut error);
        let centre = match &clue.kind {
            ClueKind::Text(key) => {
                check_text(key, &text_keys, &mut error);
                None
            }
            ClueKind::Area(area) => check_area(area, &mut error)
                .zip(vault)
                .map(|(final_radius, vault)| area_centre(hunt.seed, &clue.id, vault.at, final_radius)),
            _ => None,
        };
        let bands = clue_bands(&clue.kind, clue.bands.as_deref(), &mut error);
        let Some(vault) = vault else { continue };
        placed.push(PlacedClue {
            id: clue.id.clone(),
            vault: vault.id.clone(),
            at: vault.at,
            trigger: clue.trigger.clone(),
            kind: clue.kind.clone(),
            centre,
            bands,
        });
    }
    placed
}

/// A `VaultClaimed` trigger names a known vault; an `Enter` circle has a radius.
fn check_trigger(trigger: &ClueTrigger, known: &KnownVaults, error: &mut impl FnMut(&str, String)) {
    match trigger {
        ClueTrigger::VaultClaimed(other) if !known.knows(other) => {
            error("Trigger.VaultClaimed", unknown("vault", other, &known.ids))
        }
        ClueTrigger::Enter(circle) if !(circle.radius > 0.0 && circle.radius.is_finite()) => {
            error("Trigger.Enter.Radius", format!("expected a radius above 0 tiles, not {}", circle.radius))
        }
        _ => {}
    }
}

/// A Text clue's key is in the default language's files.
fn check_text(key: &str, text_keys: &[&str], error: &mut impl FnMut(&str, String)) {
    if text_keys.contains(&key) {
        return;
    }
    error(
        "Kind.Text",
        match did_you_mean(key, text_keys) {
            Some(hint) => {
                format!("no text \"{key}\" in the {DEFAULT_LOCALE} language files (did you mean \"{hint}\"?)")
            }
            None => format!(
                "no text \"{key}\" in the {DEFAULT_LOCALE} language files: add `{key} = ...` to a file of \
                 Server/Languages/{DEFAULT_LOCALE}/"
            ),
        },
    );
}

/// An Area clue's radii and shrinking; its final radius when they make sense.
fn check_area(area: &AreaClue, error: &mut impl FnMut(&str, String)) -> Option<f32> {
    let final_radius = area.shrink_to.unwrap_or(area.radius);
    if !(area.radius > 0.0 && area.radius.is_finite()) {
        error("Kind.Area.Radius", format!("expected a radius above 0 tiles, not {}", area.radius));
    } else if !(final_radius > 0.0 && final_radius <= area.radius) {
        error(
            "Kind.Area.ShrinkTo",
            format!("expected a radius above 0 and at most Radius ({}), not {final_radius}", area.radius),
        );
    } else if area.shrink_to.is_some_and(|to| to < area.radius) && area.shrink_seconds == 0 {
        error("Kind.Area.ShrinkSeconds", "a shrinking area needs ShrinkSeconds above 0".into());
    } else {
        return Some(final_radius);
    }
    None
}

/// A clue's HotCold bands: its own (checked) or the defaults; none for other kinds, which may
/// not have Bands.
fn clue_bands(kind: &ClueKind, bands: Option<&[HeatBand]>, error: &mut impl FnMut(&str, String)) -> Vec<HeatBand> {
    match (kind, bands) {
        (ClueKind::HotCold, Some(bands)) => {
            check_bands(bands, error);
            bands.to_vec()
        }
        (ClueKind::HotCold, None) => HeatBand::defaults(),
        (kind, Some(_)) => {
            error("Bands", format!("only HotCold clues have Bands; this one is {}", kind.name()));
            Vec::new()
        }
        (_, None) => Vec::new(),
    }
}

/// A HotCold clue's bands: at least one, each given for some distance (`Within` rising, the
/// band without `Within` last), each with a label.
fn check_bands(bands: &[HeatBand], error: &mut impl FnMut(&str, String)) {
    if bands.is_empty() {
        error("Bands", "expected at least one band, or no Bands for the default ones".into());
    }
    let mut before: Option<f32> = None;
    for (i, band) in bands.iter().enumerate() {
        let path = format!("Bands[{i}]");
        if band.label.trim().is_empty() {
            error(&format!("{path}.Label"), "expected the words players read, not an empty label".into());
        }
        match band.within {
            None if i + 1 < bands.len() => error(
                &path,
                "a band without Within holds any distance, so no band after it is ever told: put it last".into(),
            ),
            None => {}
            Some(within) if !(within >= 0.0 && within.is_finite()) => error(
                &format!("{path}.Within"),
                format!("expected a walking distance of 0 or more tiles, not {within}"),
            ),
            Some(within) => {
                if let Some(previous) = before.filter(|previous| within <= *previous) {
                    error(
                        &format!("{path}.Within"),
                        format!(
                            "expected more than the band before ({previous}): bands are taken in order, so this \
                             one is never told"
                        ),
                    );
                }
                before = Some(within);
            }
        }
    }
}

/// An Area clue's centre: within `final_radius` of the vault's centre (at 20% to 80% of it),
/// in a direction drawn from the seed and the clue's id; to a tenth of a tile.
fn area_centre(seed: u64, clue: &str, at: TilePos, final_radius: f32) -> (f32, f32) {
    let unit = |n| (stable_hash(seed, clue, n) >> 11) as f64 / (1u64 << 53) as f64;
    let distance = f64::from(final_radius) * (0.2 + 0.6 * unit(1));
    let angle = std::f64::consts::TAU * unit(2);
    let (x, y) = (f64::from(at.x) + 0.5 + distance * angle.cos(), f64::from(at.y) + 0.5 + distance * angle.sin());
    ((x * 10.0).round() as f32 / 10.0, (y * 10.0).round() as f32 / 10.0)
}
