//! The plot in docs/benchmarks.md: latency and tick time against player count, drawn as SVG
//! from the swarm's JSON reports.

use std::{collections::BTreeMap, path::Path};

use plotters::prelude::*;

use crate::report::Report;

/// One line: a name and (players, milliseconds) points.
type Series = (String, Vec<(f64, f64)>);

/// Draws two charts, one above the other: p99 latencies (fan-out, dig round trip) and tick
/// durations (p50, p99 of the steady phase), each against the number of bots, a line per
/// scenario and measure.
pub fn draw(reports: &[Report], path: &Path) -> Result<(), String> {
    let mut by_scenario: BTreeMap<String, Vec<&Report>> = BTreeMap::new();
    for r in reports {
        let name =
            if r.executor == "MultiThreaded" { r.scenario.clone() } else { format!("{} ({})", r.scenario, r.executor) };
        let name = match r.state_update_rate {
            Some(rate) => format!("{name} {rate}/s"),
            None => name,
        };
        by_scenario.entry(name).or_default().push(r);
    }
    let mut latency: Vec<Series> = Vec::new();
    let mut ticks: Vec<Series> = Vec::new();
    for (scenario, runs) in &mut by_scenario {
        runs.sort_by_key(|r| r.bots);
        let points = |f: &dyn Fn(&Report) -> f64| runs.iter().map(|r| (r.bots as f64, f(r))).collect::<Vec<_>>();
        latency.push((format!("{scenario}: fan-out p99"), points(&|r| r.fanout.p99_ms)));
        latency.push((format!("{scenario}: dig round trip p99"), points(&|r| r.dig_round_trip.p99_ms)));
        let steady = |r: &Report, f: fn(&crate::report::TickPhase) -> f64| r.ticks.first().map_or(0.0, f);
        ticks.push((format!("{scenario}: tick p99"), points(&|r| steady(r, |t| t.p99_ms))));
        ticks.push((format!("{scenario}: tick p50"), points(&|r| steady(r, |t| t.p50_ms))));
    }
    let root = SVGBackend::new(path, (900, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (top, bottom) = root.split_vertically(450);
    chart(&top, "p99 latency against players", "ms", &latency)?;
    chart(&bottom, "Tick duration (steady phase) against players", "ms", &ticks)?;
    root.present().map_err(|e| format!("{}: {e}", path.display()))
}

fn chart(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    title: &str,
    unit: &str,
    series: &[Series],
) -> Result<(), String> {
    let points = series.iter().flat_map(|s| s.1.iter());
    let x_max = points.clone().map(|p| p.0).fold(1.0, f64::max) * 1.05;
    let y_max = points.map(|p| p.1).fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(|e| e.to_string())?;
    chart.configure_mesh().x_desc("players (bots)").y_desc(unit).draw().map_err(|e| e.to_string())?;
    for (i, (name, points)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Latency, TickPhase};

    fn report(scenario: &str, bots: usize, fanout_p99: f64, tick_p99: f64) -> Report {
        let latency = |p99_ms| Latency { count: 10, p50_ms: 1.0, p99_ms, p999_ms: p99_ms, max_ms: p99_ms };
        let text = serde_json::json!({
            "scenario": scenario, "executor": "MultiThreaded", "bots": bots, "connected": bots, "connect_seconds": 1.0, "connect_failures": 0,
            "tick_rate": 30, "measured_seconds": 10.0,
            "ticks": [TickPhase { phase: "steady".into(), p99_ms: tick_p99, p50_ms: tick_p99 / 2.0, ..Default::default() }],
            "fanout": latency(fanout_p99), "dig_round_trip": latency(fanout_p99 + 30.0),
            "dig_seen_nearby": latency(40.0), "clue_drops": [], "reconnect": null,
            "digs_sent": 1, "digs_answered": 1, "window_digs": 1, "window_digs_answered": 1, "moves_sent": 1,
            "position_corrections": 0, "frames_sent": 1, "bytes_sent": 1, "frames_received": 1, "messages_received": 1,
            "server_rss_empty_kib": 1, "server_rss_kib": 2, "rss_per_player_bytes": 1.0, "server_cpu_cores": 1.0,
            "swarm_cpu_cores": 1.0, "tick_overruns": 0, "lost": 0
        });
        serde_json::from_value(text).unwrap()
    }

    #[test]
    fn the_plot_has_a_line_per_scenario_and_measure() {
        let reports =
            [report("steady", 1000, 2.0, 1.0), report("steady", 12000, 9.0, 6.0), report("clustered", 1000, 3.0, 2.0)];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plot.svg");
        draw(&reports, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        for label in ["steady: fan-out p99", "steady: tick p99", "clustered: dig round trip p99", "players (bots)"] {
            assert!(svg.contains(label), "{label} missing");
        }
    }
}
