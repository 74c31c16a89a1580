//! The chart of a simulation (`simulate --chart FILE.svg`): discoveries over game time, as SVG.
//! Above, the vaults found (a vault counts at its first claim), below every claim, each as a
//! running total per claim rule in the preview's colours; dashed lines mark the clues released
//! to everyone.

use std::fmt::Write as _;

use treasure_hunt_ecs::model::{assets::ClaimRule, pack::PlacedHunt};

use super::report::{Report, clock};

const WIDTH: f64 = 960.0;
const PANEL: f64 = 220.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 240.0;
const TOP: f64 = 60.0;
const GAP: f64 = 60.0;
const RULES: [ClaimRule; 4] =
    [ClaimRule::FirstFinder, ClaimRule::FirstFinderThenPerPlayer, ClaimRule::PerPlayer, ClaimRule::Team];

/// The chart as SVG text.
pub fn draw(report: &Report, hunt: &PlacedHunt) -> String {
    let height = TOP + 2.0 * PANEL + GAP + 50.0;
    let plot_w = WIDTH - LEFT - RIGHT;
    let span = report.played_seconds.max(1.0);
    let x_of = |s: f64| LEFT + s / span * plot_w;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="{WIDTH}" height="{height}" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="24" font-size="16">{}: discoveries over time ({} players, seed {})</text>"#,
        escape(&report.name),
        report.players,
        report.seed
    );

    let rule_of = |vault: &str| hunt.vaults.iter().find(|v| v.id == vault).map_or(ClaimRule::FirstFinder, |v| v.claim);
    // Each panel: a running total per rule, as steps.
    let panels: [(&str, bool); 2] = [("vaults found", true), ("claims", false)];
    for (p, (title, first_only)) in panels.into_iter().enumerate() {
        let top = TOP + p as f64 * (PANEL + GAP);
        let bottom = top + PANEL;
        let events: Vec<(f64, ClaimRule)> = report
            .discoveries
            .iter()
            .filter(|d| d.first || !first_only)
            .map(|d| (d.seconds, rule_of(&d.vault)))
            .collect();
        // The scale: the most vaults of one rule, or the most claims of one rule.
        let max = if first_only {
            RULES.iter().map(|r| hunt.vaults.iter().filter(|v| v.claim == *r).count()).max().unwrap_or(0).max(1)
        } else {
            RULES.iter().map(|r| events.iter().filter(|(_, e)| e == r).count()).max().unwrap_or(0).max(1)
        };
        let y_of = |n: usize| bottom - n as f64 / max as f64 * PANEL;
        let _ = writeln!(svg, r##"<text x="{LEFT}" y="{}" font-size="14">{title}</text>"##, top - 8.0);
        let _ = writeln!(
            svg,
            r##"<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{PANEL}" fill="none" stroke="#888"/>"##
        );
        // The y axis: 0, half, the most.
        for n in [0, max / 2, max] {
            let y = y_of(n);
            let _ = writeln!(svg, r##"<line x1="{}" y1="{y}" x2="{LEFT}" y2="{y}" stroke="#888"/>"##, LEFT - 4.0);
            let _ = writeln!(svg, r#"<text x="{}" y="{}" text-anchor="end">{n}</text>"#, LEFT - 8.0, y + 4.0);
        }
        // The x axis: a mark every round number of minutes, at most 8 of them.
        let every = [60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0, 86400.0]
            .into_iter()
            .find(|step| span / step <= 8.0)
            .unwrap_or(span);
        for k in 0..=(span / every).floor() as u32 {
            let s = every * f64::from(k);
            let x = x_of(s);
            let _ = writeln!(svg, r##"<line x1="{x}" y1="{bottom}" x2="{x}" y2="{}" stroke="#888"/>"##, bottom + 4.0);
            let _ = writeln!(svg, r#"<text x="{x}" y="{}" text-anchor="middle">{}</text>"#, bottom + 18.0, clock(s));
        }
        // Clues released to everyone.
        for clue in report.clues.iter() {
            let Some(at) = clue.released_seconds else { continue };
            let x = x_of(at);
            let _ = writeln!(
                svg,
                r##"<line x1="{x}" y1="{top}" x2="{x}" y2="{bottom}" stroke="#c800a0" stroke-dasharray="4 3"/>"##
            );
            if p == 0 {
                let (tx, ty) = (x - 3.0, top + 4.0);
                let _ = writeln!(
                    svg,
                    r##"<text x="{tx}" y="{ty}" fill="#c800a0" font-size="10" text-anchor="end" transform="rotate(-90 {tx} {ty})">{}</text>"##,
                    escape(&clue.clue)
                );
            }
        }
        for (r, rule) in RULES.iter().enumerate() {
            if !hunt.vaults.iter().any(|v| v.claim == *rule) {
                continue;
            }
            let mut points = format!("{LEFT},{bottom}");
            let mut n = 0;
            for (s, _) in events.iter().filter(|(_, e)| e == rule) {
                let x = x_of(*s);
                let _ = write!(points, " {x:.1},{:.1}", y_of(n));
                n += 1;
                let _ = write!(points, " {x:.1},{:.1}", y_of(n));
            }
            let _ = write!(points, " {:.1},{:.1}", x_of(span), y_of(n));
            let [red, green, blue] = crate::preview::rule_colour(*rule);
            let colour = format!("rgb({red},{green},{blue})");
            let _ = writeln!(svg, r#"<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>"#);
            if p == 0 {
                let of = hunt.vaults.iter().filter(|v| v.claim == *rule).count();
                let y = TOP + 10.0 + r as f64 * 18.0;
                let x = WIDTH - RIGHT + 12.0;
                let _ = writeln!(
                    svg,
                    r#"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{colour}" stroke-width="3"/>"#,
                    x + 18.0
                );
                let _ = writeln!(svg, r#"<text x="{}" y="{}">{rule:?} ({n} of {of})</text>"#, x + 24.0, y + 4.0);
            } else {
                let y = top + 10.0 + r as f64 * 18.0;
                let x = WIDTH - RIGHT + 12.0;
                let _ = writeln!(svg, r#"<text x="{x}" y="{}" fill="{colour}">{n} claims</text>"#, y + 4.0);
            }
        }
    }
    let _ = writeln!(
        svg,
        r##"<text x="{LEFT}" y="{}" fill="#555">game time (h:mm:ss); dashed: clues released to everyone</text>"##,
        height - 12.0
    );
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
