//! Regression tests for a misleading checker measurement and for curves cut
//! short in the drawn Figure 1.

use metadistill::axioms::{Checker, Property, Verdict};
use metadistill::{GeneralizedMixture, HistoryWeights, Result};

/// Seed of every checker in this file.
const SEED: u64 = 0x05ee_db0b;

#[test]
fn failing_contraction_reports_observed_ratio() -> Result<()> {
    let checker = Checker::<f64>::new()
        .with_cases(8)?
        .with_seed(SEED)
        .with_shrink_iterations(8)
        .with_properties(&[Property::Contraction]);
    let operator = GeneralizedMixture::single_teacher(0.3, HistoryWeights::Window { length: 3 })?;
    let report = checker.check(&operator);
    let row = report.row(Property::Contraction).unwrap();
    assert_eq!(row.verdict, Verdict::Violated, "{report}");

    // The window mixture's runs settle at a ratio a little above 1 - a = 0.7.
    let asymptotic = row.measurement("asymptotic ratio");
    assert!(asymptotic.is_some(), "{report}");
    let asymptotic = asymptotic.unwrap_or(0.0);
    assert!(asymptotic > 0.5, "asymptotic ratio {asymptotic}\n{report}");
    assert!(asymptotic < 1.0, "asymptotic ratio {asymptotic}\n{report}");
    Ok(())
}

/// Left edge of the legend in docs/figure1.svg; the plot lies to its left.
const FIGURE1_LEGEND_X: f64 = 820.0;

/// Returns, per stroke colour of the curves (stroke width 2) in the plot area of
/// docs/figure1.svg, the largest x coordinate the colour reaches.
fn figure1_curve_ends() -> Vec<(String, f64)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/figure1.svg");
    let svg = std::fs::read_to_string(path).unwrap_or_default();
    let mut ends: Vec<(String, f64)> = Vec::new();
    for element in svg.split("<polyline").skip(1) {
        if !element.contains("stroke-width=\"2\"") {
            continue;
        }
        let attribute = |name: &str| {
            let start = element.find(&format!("{name}=\""))? + name.len() + 2;
            let length = element[start..].find('"')?;
            Some(element[start..start + length].to_string())
        };
        let (Some(color), Some(points)) = (attribute("stroke"), attribute("points")) else {
            continue;
        };
        let right = points
            .split_whitespace()
            .filter_map(|point| point.split(',').next()?.parse::<f64>().ok())
            .filter(|&x| x < FIGURE1_LEGEND_X)
            .fold(f64::NEG_INFINITY, f64::max);
        match ends.iter_mut().find(|(known, _)| *known == color) {
            Some((_, end)) => *end = end.max(right),
            None => ends.push((color, right)),
        }
    }
    ends
}

#[test]
fn figure1_curves_reach_last_generation() {
    let ends = figure1_curve_ends();
    assert!(ends.len() >= 6, "curve colours found: {ends:?}");
    let last = ends
        .iter()
        .map(|&(_, x)| x)
        .fold(f64::NEG_INFINITY, f64::max);
    for (color, end) in &ends {
        assert!(
            last - end <= 2.0,
            "curves drawn in {color} stop at x = {end}, before the last generation at x = {last}"
        );
    }
}
