//! Regression tests for misleading measurements, error messages and accepted
//! bad input found in review.

use metadistill::axioms::{Checker, Property, Verdict};
use metadistill::{GeneralizedMixture, HistoryWeights, Result};

/// Seed of every checker in this file.
const SEED: u64 = 0x5eed_b0b;

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
