//! Draws the convergence figure of "Recursive Meta-Distillation: An Axiomatic
//! Framework for Iterative Knowledge Refinement" (Flouro and Chadwick, Figure 1)
//! from computed trajectories, as an SVG.
//!
//! The setting is the paper's appendix: T0 = (0.6, 0.3, 0.1), S_0 = (0.2, 0.5, 0.3),
//! the convex mixture q_g = a T0 + (1 - a) S_g. The paper's Fig. 1 is a
//! schematic, with errors growing linearly for a = 0 and decaying geometrically
//! for a > 0. Here every line is a computed D(S_g) = KL(T0 ‖ S_g), drawn on a
//! log axis next to its bound:
//!
//! - a = 0 with an exact student stays at D(S_0): nothing drifts;
//! - a = 0 with a noisy student (max log-ratio error ε∞ = 0.05 per step)
//!   drifts up when the error works against the teacher, and wanders when its
//!   direction is random, where it can also fall below D(S_0);
//! - a = 0.1, 0.3, 0.5 with exact students, against the bound (1 - a)^g D(S_0);
//! - a = 0.3 with the worst-case noisy student, against the chained bound
//!   B_g = (1 - a) B_{g-1} + ε∞ and its limit ε∞ / a.
//!
//! Run with `cargo run --example figure1 [OUTPUT.svg]`; the default output is
//! `docs/figure1.svg`.

use std::path::PathBuf;

use metadistill::recursion::{AnchorSchedule, Recursion, RecursionTrajectory, convex_mixture};
use metadistill::student::{ErrorMeasure, ExactStudent, NoisyStudent, Student};
use metadistill::{Distribution, DistributionBatch, Result};
use plotters::prelude::*;

/// Generations drawn.
const GENERATIONS: usize = 30;

/// The student error per step, as a max log-ratio.
const EPSILON: f64 = 0.05;

/// The seed of the random-direction student.
const SEED: u64 = 2026;

/// The lower end of the log axis. A curve that falls below it runs along the
/// bottom edge, so that every curve reaches the last generation. The exact
/// curves with a = 0.3 and 0.5 fall to about 2e-10 and 1e-16 by g = 30.
const Y_MIN: f64 = 1e-8;

/// The upper end of the log axis.
const Y_MAX: f64 = 3.0;

/// One line of the figure.
struct Curve {
    label: String,
    points: Vec<(usize, f64)>,
    color: RGBColor,
    dashed: bool,
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let output = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/figure1.svg"));

    let teacher = DistributionBatch::repeat(&Distribution::from_probs(&[0.6, 0.3, 0.1])?, 1)?;
    let start = DistributionBatch::repeat(&Distribution::from_probs(&[0.2, 0.5, 0.3])?, 1)?;
    let teachers = [teacher.clone()];
    let d0 = run(&teachers, &start, 0.0, &mut ExactStudent)?.records()[0].divergence;

    let mut curves = Vec::new();
    let flat = run(&teachers, &start, 0.0, &mut ExactStudent)?;
    curves.push(divergence_curve(
        &flat,
        "a = 0, exact student",
        BLACK,
        false,
    ));

    let mut against =
        NoisyStudent::against_teacher(EPSILON, ErrorMeasure::MaxLogRatio, teacher.clone())?;
    let drift = run(&teachers, &start, 0.0, &mut against)?;
    curves.push(divergence_curve(
        &drift,
        "a = 0, ε∞ = 0.05 against T0",
        RED,
        false,
    ));

    let mut random = NoisyStudent::random(EPSILON, ErrorMeasure::MaxLogRatio, SEED)?;
    let walk = run(&teachers, &start, 0.0, &mut random)?;
    curves.push(divergence_curve(
        &walk,
        "a = 0, ε∞ = 0.05 random direction",
        MAGENTA,
        false,
    ));

    let colors = [
        RGBColor(0, 114, 178),
        RGBColor(0, 158, 115),
        RGBColor(230, 159, 0),
    ];
    for (&anchor, color) in [0.1, 0.3, 0.5].iter().zip(colors) {
        let exact = run(&teachers, &start, anchor, &mut ExactStudent)?;
        curves.push(divergence_curve(
            &exact,
            &format!("a = {anchor}, exact"),
            color,
            false,
        ));
        let bound = (0..=GENERATIONS)
            .map(|g| (g, (1.0 - anchor).powi(g as i32) * d0))
            .collect();
        curves.push(Curve {
            label: format!("bound (1 - {anchor})^g D(S0)"),
            points: bound,
            color,
            dashed: true,
        });
    }

    let anchor = 0.3;
    let mut worst = NoisyStudent::against_teacher(EPSILON, ErrorMeasure::MaxLogRatio, teacher)?;
    let noisy = run(&teachers, &start, anchor, &mut worst)?;
    let purple = RGBColor(120, 60, 160);
    curves.push(divergence_curve(
        &noisy,
        "a = 0.3, ε∞ = 0.05 against T0",
        purple,
        false,
    ));
    curves.push(Curve {
        label: "bound (1 - a) B + ε∞ and limit ε∞ / a".to_string(),
        points: noisy
            .records()
            .iter()
            .map(|r| (r.generation, r.bound))
            .collect(),
        color: purple,
        dashed: true,
    });
    curves.push(Curve {
        label: String::new(),
        points: vec![(0, EPSILON / anchor), (GENERATIONS, EPSILON / anchor)],
        color: purple,
        dashed: true,
    });

    draw(&output, &curves)?;
    println!("wrote {}", output.display());
    print_summary(&drift, &walk, &noisy, anchor);
    Ok(())
}

/// Runs the appendix recursion with a constant anchor weight.
fn run(
    teachers: &[DistributionBatch<f64>],
    start: &DistributionBatch<f64>,
    anchor: f64,
    student: &mut dyn Student<f64>,
) -> Result<RecursionTrajectory<f64>> {
    Recursion::new(teachers, start, convex_mixture, student)
        .schedule(AnchorSchedule::Constant(anchor))
        .max_generations(GENERATIONS)
        .run()
}

/// Turns a trajectory's `D(S_g)` into a curve.
fn divergence_curve(
    run: &RecursionTrajectory<f64>,
    label: &str,
    color: RGBColor,
    dashed: bool,
) -> Curve {
    Curve {
        label: label.to_string(),
        points: run
            .records()
            .iter()
            .map(|r| (r.generation, r.divergence))
            .collect(),
        color,
        dashed,
    }
}

/// Draws the curves on a log axis and writes the SVG.
fn draw(output: &PathBuf, curves: &[Curve]) -> std::result::Result<(), String> {
    if let Some(parent) = output.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    let root = SVGBackend::new(output, (1150, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (plot_area, legend_area) = root.split_horizontally(820);

    let mut chart = ChartBuilder::on(&plot_area)
        .caption(
            "D(S_g) = KL(T0 || S_g), appendix setting, computed",
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..GENERATIONS as f64, (Y_MIN..Y_MAX).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("generation g")
        .x_label_formatter(&|g| format!("{g:.0}"))
        .y_desc("D(S_g), nats (log scale)")
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .draw()
        .map_err(|e| e.to_string())?;

    for curve in curves {
        let points = clip_to_axis(&curve.points);
        let style = curve.color.stroke_width(2);
        if curve.dashed {
            chart.draw_series(DashedLineSeries::new(points, 6, 4, style))
        } else {
            chart.draw_series(LineSeries::new(points, style))
        }
        .map_err(|e| e.to_string())?;
    }

    draw_legend(&legend_area, curves).map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// Clips a curve to the y range on the log axis.
///
/// A value outside `[Y_MIN, Y_MAX]` is drawn on the nearest edge, and where a
/// segment crosses an edge the crossing is interpolated in `ln D`, so the line
/// leaves the range at the right generation and then runs along the edge.
fn clip_to_axis(points: &[(usize, f64)]) -> Vec<(f64, f64)> {
    let log = |d: f64| d.max(f64::MIN_POSITIVE).ln();
    let mut clipped = Vec::with_capacity(points.len() + 2);
    for (index, &(g, d)) in points.iter().enumerate() {
        if let Some(&(g_before, d_before)) = index.checked_sub(1).and_then(|i| points.get(i)) {
            for edge in [Y_MIN, Y_MAX] {
                let crosses = (d_before - edge) * (d - edge) < 0.0;
                if crosses {
                    let fraction = (log(edge) - log(d_before)) / (log(d) - log(d_before));
                    let x = g_before as f64 + fraction * (g as f64 - g_before as f64);
                    clipped.push((x, edge));
                }
            }
        }
        clipped.push((g as f64, d.clamp(Y_MIN, Y_MAX)));
    }
    clipped
}

/// Draws one legend entry per labelled curve, a dashed sample for the bounds.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    curves: &[Curve],
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let font = ("sans-serif", 15).into_font();
    let mut y = 70;
    for curve in curves.iter().filter(|c| !c.label.is_empty()) {
        let style = curve.color.stroke_width(2);
        let sample = vec![(10, y), (45, y)];
        if curve.dashed {
            area.draw(&PathElement::new(vec![(10, y), (22, y)], style))?;
            area.draw(&PathElement::new(vec![(30, y), (45, y)], style))?;
        } else {
            area.draw(&PathElement::new(sample, style))?;
        }
        area.draw(&Text::new(curve.label.clone(), (55, y - 8), font.clone()))?;
        y += 30;
    }
    let note = format!("Values below {Y_MIN:.0e} run along the bottom edge.");
    area.draw(&Text::new(note, (10, y), font))?;
    Ok(())
}

/// Prints the numbers behind the figure.
fn print_summary(
    drift: &RecursionTrajectory<f64>,
    walk: &RecursionTrajectory<f64>,
    noisy: &RecursionTrajectory<f64>,
    anchor: f64,
) {
    let last =
        |run: &RecursionTrajectory<f64>| run.records().last().map_or(f64::NAN, |r| r.divergence);
    println!(
        "D(S_{GENERATIONS}) with a = 0, error against T0: {:.4}",
        last(drift)
    );
    println!(
        "D(S_{GENERATIONS}) with a = 0, random error:     {:.4}",
        last(walk)
    );
    println!(
        "D(S_{GENERATIONS}) with a = {anchor}, error against T0: {:.4} (limit ε∞ / a = {:.4})",
        last(noisy),
        EPSILON / anchor
    );
}
