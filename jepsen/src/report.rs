//! What a run leaves for people: `results.json` (every check's verdict and counts) and
//! `report.html` (the verdict, the checks with their evidence, throughput and latency over
//! time with the fault windows shaded, and the faults themselves).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::availability::{availability, Availability};
use crate::checks::Check;
use crate::history::{pairs, Kind, Op, F};
use crate::nemesis::Event;

/// How a run was made (`run.json`), so that `check DIR` can judge it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The command line.
    pub command: Vec<String>,
    /// Seed.
    pub seed: u64,
    /// Nodes.
    pub nodes: usize,
    /// Partitions.
    pub partitions: u32,
    /// Workload.
    pub workload: String,
    /// Fault kinds.
    pub nemesis: Vec<String>,
    /// Seconds of workload.
    pub time_limit_s: u64,
    /// Bugs planted in the nodes.
    pub unsafe_bugs: Vec<String>,
}

/// `results.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Results {
    /// All checks passed (`None`: at least one could not decide, none failed).
    pub valid: Option<bool>,
    /// How the run was made.
    pub run: RunInfo,
    /// Operations by completion: invoked, ok, fail, info.
    pub operations: BTreeMap<String, u64>,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Every check.
    pub checks: Vec<Check>,
    /// What each fault cost the clients (figures, not checks).
    #[serde(default)]
    pub availability: Availability,
}

/// The overall verdict of `checks`.
pub fn verdict(checks: &[Check]) -> Option<bool> {
    if checks.iter().any(|c| c.valid == Some(false)) {
        Some(false)
    } else if checks.iter().any(|c| c.valid.is_none()) {
        None
    } else {
        Some(true)
    }
}

/// Builds the results of a run.
pub fn results(run: &RunInfo, ops: &[Op], events: &[Event], checks: Vec<Check>) -> Results {
    let mut operations = BTreeMap::new();
    for op in ops {
        let key = match op.kind {
            Kind::Invoke => "invoked",
            Kind::Ok => "ok",
            Kind::Fail => "fail",
            Kind::Info => "info",
        };
        *operations.entry(key.to_string()).or_insert(0) += 1;
    }
    let mut faults = BTreeMap::new();
    for e in events.iter().filter(|e| e.phase == "start") {
        *faults.entry(e.kind.clone()).or_insert(0) += 1;
    }
    Results {
        valid: verdict(&checks),
        run: run.clone(),
        operations,
        faults,
        checks,
        availability: availability(ops, events),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn verdict_text(valid: Option<bool>) -> &'static str {
    match valid {
        Some(true) => "valid",
        Some(false) => "INVALID",
        None => "undecided",
    }
}

/// Writes `report.html` into `dir`.
pub fn write_html(
    dir: &Path,
    results: &Results,
    ops: &[Op],
    events: &[Event],
) -> Result<(), String> {
    let windows = fault_windows(events);
    let throughput = throughput_svg(ops, &windows).map_err(|e| format!("throughput plot: {e}"))?;
    let latency = latency_svg(ops, &windows).map_err(|e| format!("latency plot: {e}"))?;
    let run = &results.run;
    let mut html = String::new();
    let colour = match results.valid {
        Some(true) => "#1a7f37",
        Some(false) => "#cf222e",
        None => "#9a6700",
    };
    let _ = write!(
        html,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>tally-jepsen: {workload} \
         seed {seed}</title><style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;\
         text-align:left;vertical-align:top}}code{{font-size:90%}}</style></head><body>\
         <h1>tally-jepsen: <span style=\"color:{colour}\">{verdict}</span></h1>\
         <p><code>{command}</code></p><p>{nodes} nodes, {partitions} partition(s), workload \
         <b>{workload}</b>, faults <b>{nemesis}</b>, {time} s, seed {seed}{bugs}.</p>",
        workload = escape(&run.workload),
        seed = run.seed,
        verdict = verdict_text(results.valid),
        command = escape(&run.command.join(" ")),
        nodes = run.nodes,
        partitions = run.partitions,
        nemesis = escape(&if run.nemesis.is_empty() {
            "none".to_string()
        } else {
            run.nemesis.join(", ")
        }),
        time = run.time_limit_s,
        bugs = if run.unsafe_bugs.is_empty() {
            String::new()
        } else {
            format!(
                ", <b>planted bugs: {}</b>",
                escape(&run.unsafe_bugs.join(", "))
            )
        },
    );
    let _ = write!(html, "<p>Operations: ");
    for (k, v) in &results.operations {
        let _ = write!(html, "{k} {v}; ");
    }
    let _ = write!(
        html,
        "</p><h2>Checks</h2><table><tr><th>check</th><th>verdict</th>\
                          <th>counts</th><th>evidence</th></tr>"
    );
    for check in &results.checks {
        let counts: Vec<String> = check
            .counts
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let errors: Vec<String> = check.errors.iter().map(|e| escape(e)).collect();
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&check.name),
            verdict_text(check.valid),
            escape(&counts.join(", ")),
            errors.join("<br>")
        );
    }
    let a = &results.availability;
    let _ = write!(
        html,
        "</table><h2>Throughput</h2>{throughput}<h2>Latency</h2>{latency}\
         <h2>What each fault cost</h2><p>Quiet median: {} successful writes/s. Figures, not \
         checks; the gap and the counts run from a fault's start to 5 s after its heal.</p>\
         <table><tr><th>start (s)</th><th>kind</th><th>what</th><th>lasted (s)</th>\
         <th>writes/s</th><th>% of quiet</th><th>longest gap (s)</th><th>errors</th>\
         <th>indeterminate</th></tr>",
        a.quiet_writes_per_s
    );
    for f in &a.faults {
        let _ = write!(
            html,
            "<tr><td>{:.1}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td>\
             <td>{:.2}</td><td>{}</td><td>{}</td></tr>",
            f.start_ms as f64 / 1e3,
            escape(&f.kind),
            escape(&f.detail),
            f.duration_ms as f64 / 1e3,
            f.writes_per_s,
            f.percent_of_quiet,
            f.longest_gap_ms as f64 / 1e3,
            f.errors,
            f.indeterminate
        );
    }
    let _ = write!(
        html,
        "</table><h2>Faults</h2>\
         <table><tr><th>time (s)</th><th>phase</th><th>kind</th><th>what</th></tr>"
    );
    for e in events {
        let _ = write!(
            html,
            "<tr><td>{:.2}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.time_ns as f64 / 1e9,
            escape(&e.phase),
            escape(&e.kind),
            escape(&e.detail)
        );
    }
    html.push_str("</table></body></html>\n");
    let path = dir.join("report.html");
    std::fs::write(&path, html).map_err(|e| format!("{}: {e}", path.display()))
}

/// A fault's window: kind, start and end in seconds.
type Window = (String, f64, f64);

fn fault_windows(events: &[Event]) -> Vec<Window> {
    let mut open: BTreeMap<String, f64> = BTreeMap::new();
    let mut out = Vec::new();
    let last = events.last().map_or(0.0, |e| e.time_ns as f64 / 1e9);
    for e in events {
        let at = e.time_ns as f64 / 1e9;
        if e.phase == "start" {
            open.insert(e.kind.clone(), at);
        } else if let Some(start) = open.remove(&e.kind) {
            out.push((e.kind.clone(), start, at));
        }
    }
    out.extend(open.into_iter().map(|(kind, start)| (kind, start, last)));
    out
}

fn kind_colour(kind: &str) -> RGBColor {
    let palette = [
        RGBColor(255, 179, 71),
        RGBColor(119, 158, 203),
        RGBColor(255, 105, 97),
        RGBColor(178, 157, 217),
        RGBColor(119, 221, 119),
        RGBColor(253, 253, 150),
        RGBColor(207, 207, 196),
        RGBColor(244, 154, 194),
        RGBColor(150, 111, 214),
        RGBColor(130, 105, 83),
    ];
    let at = crate::nemesis::KINDS
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(0);
    palette[at % palette.len()]
}

/// Completions per second, by type.
fn throughput_svg(ops: &[Op], windows: &[Window]) -> Result<String, Box<dyn std::error::Error>> {
    let seconds = (ops.iter().map(|o| o.time_ns).max().unwrap_or(0) / 1_000_000_000 + 1) as usize;
    let mut series: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for kind in ["ok", "fail", "info"] {
        series.insert(kind, vec![0; seconds]);
    }
    for op in ops.iter().filter(|o| o.process > 0) {
        let key = match op.kind {
            Kind::Ok => "ok",
            Kind::Fail => "fail",
            Kind::Info => "info",
            Kind::Invoke => continue,
        };
        if let Some(bucket) = series
            .get_mut(key)
            .and_then(|s| s.get_mut((op.time_ns / 1_000_000_000) as usize))
        {
            *bucket += 1;
        }
    }
    let top = series.values().flatten().copied().max().unwrap_or(1).max(1) as f64 * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1050, 320)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(0f64..seconds as f64, 0f64..top)?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("operations / s")
            .draw()?;
        shade(&mut chart, windows, top)?;
        for (kind, colour) in [("ok", GREEN), ("fail", RED), ("info", BLUE)] {
            let points: Vec<(f64, f64)> = series[kind]
                .iter()
                .enumerate()
                .map(|(s, &n)| (s as f64 + 0.5, n as f64))
                .collect();
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
                .label(kind)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

/// Every operation's latency against when it completed.
fn latency_svg(ops: &[Op], windows: &[Window]) -> Result<String, Box<dyn std::error::Error>> {
    let mut points: Vec<(f64, f64, Kind, bool)> = Vec::new();
    for (invoke, completion) in pairs(ops) {
        let Some(done) = completion else { continue };
        if invoke.process == 0 {
            continue;
        }
        let ms = (done.time_ns.saturating_sub(invoke.time_ns) as f64 / 1e6).max(0.01);
        points.push((
            done.time_ns as f64 / 1e9,
            ms,
            done.kind,
            invoke.f == F::Read,
        ));
    }
    let end = ops.iter().map(|o| o.time_ns).max().unwrap_or(0) as f64 / 1e9 + 1.0;
    let top = points.iter().map(|p| p.1).fold(1.0, f64::max) * 1.5;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1050, 360)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(0f64..end, (0.01f64..top).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("latency (ms)")
            .draw()?;
        for (kind, start, stop) in windows {
            let colour = kind_colour(kind);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(*start, 0.01), (*stop, top)],
                colour.mix(0.25).filled(),
            )))?;
        }
        for (label, kind, read, colour) in [
            ("write ok", Kind::Ok, false, GREEN),
            ("write fail", Kind::Fail, false, RED),
            ("write info", Kind::Info, false, BLUE),
            ("read ok", Kind::Ok, true, CYAN),
            ("read fail", Kind::Fail, true, MAGENTA),
        ] {
            let selected: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| p.2 == kind && p.3 == read)
                .map(|p| (p.0, p.1))
                .collect();
            chart
                .draw_series(
                    selected
                        .into_iter()
                        .map(|p| Circle::new(p, 1, colour.filled())),
                )?
                .label(label)
                .legend(move |(x, y)| Circle::new((x + 10, y), 3, colour.filled()));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

fn shade<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    windows: &[Window],
    top: f64,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let mut labelled = std::collections::BTreeSet::new();
    for (kind, start, stop) in windows {
        let colour = kind_colour(kind);
        let series = chart.draw_series(std::iter::once(Rectangle::new(
            [(*start, 0.0), (*stop, top)],
            colour.mix(0.3).filled(),
        )))?;
        if labelled.insert(kind.clone()) {
            series.label(kind.clone()).legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 20, y + 5)], colour.mix(0.5).filled())
            });
        }
    }
    Ok(())
}
