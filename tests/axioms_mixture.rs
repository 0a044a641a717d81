//! The axiom checker on the built-in convex mixture, in f64 and f32.

use metadistill::axioms::{Checker, Property, Report, Verdict, summary_table};
use metadistill::{ConvexMixture, Real, Result};

/// Builds the mixture for any `a`, the unanchored one for `a = 0`.
fn mixture<F: Real>(anchor: F) -> Result<ConvexMixture<F>> {
    if anchor.is_zero() {
        Ok(ConvexMixture::unanchored())
    } else {
        ConvexMixture::new(anchor)
    }
}

fn measured<F: Real>(report: &Report<F>, property: Property, name: &str) -> f64 {
    report
        .row(property)
        .and_then(|row| row.measurement(name))
        .unwrap_or_else(|| panic!("no measurement {name} for {property:?}"))
}

fn assert_verdict<F: Real>(report: &Report<F>, property: Property, expected: Verdict) {
    assert_eq!(
        report.verdict(property),
        expected,
        "{property:?} of {}\n{report}",
        report.operator
    );
}

/// Asserts the verdicts the convexity arguments predict for the mixture with `a > 0`.
fn assert_mixture_verdicts<F: Real>(report: &Report<F>) {
    for property in [
        Property::ValidOutput,
        Property::Positivity,
        Property::Anchoring,
        Property::Continuity,
        Property::Monotonicity,
        Property::Contraction,
        Property::FixedPoint,
        Property::NoisyContractionCorrected,
        Property::NoAnchoring,
        Property::RateDependence,
        Property::Stability,
    ] {
        assert_verdict(report, property, Verdict::Holds);
    }
    assert_verdict(report, Property::NoisyContractionPaper, Verdict::Violated);
}

#[test]
fn mixture_f64_passes_axioms_and_contracts() -> Result<()> {
    let checker = Checker::<f64>::new().with_cases(32)?;
    let report = checker.check_family(0.3, mixture)?;
    assert_mixture_verdicts(&report);

    let smallest_anchor = measured(&report, Property::Anchoring, "smallest a*");
    assert!(smallest_anchor >= 0.3 - 1e-12, "{smallest_anchor}");
    assert!(smallest_anchor < 0.32, "{smallest_anchor}");

    let worst = measured(&report, Property::Contraction, "worst ratio");
    assert!(worst <= 0.7 + 1e-9, "{worst}");
    let asymptotic = measured(&report, Property::Contraction, "asymptotic ratio");
    assert!((asymptotic - 0.49).abs() < 0.02, "{asymptotic}");

    let offset = measured(&report, Property::FixedPoint, "largest limit offset");
    assert!(offset < 1e-10, "{offset}");
    Ok(())
}

#[test]
fn mixture_f32_passes_axioms_and_contracts() -> Result<()> {
    let checker = Checker::<f32>::new().with_cases(24)?;
    let report = checker.check_family(0.3_f32, mixture)?;
    assert_mixture_verdicts(&report);

    // In f32 the runs stop at the noise floor D ≈ 5e-3, before the ratio has
    // settled at (1 - a)² = 0.49, so only its range is checked.
    let asymptotic = measured(&report, Property::Contraction, "asymptotic ratio");
    assert!(asymptotic > 0.45, "{asymptotic}");
    assert!(asymptotic <= 0.7, "{asymptotic}");
    Ok(())
}

#[test]
fn mixture_asymptotic_ratio_tracks_anchor() -> Result<()> {
    let checker = Checker::<f64>::new()
        .with_cases(16)?
        .with_properties(&[Property::Contraction]);
    for anchor in [0.1, 0.5] {
        let report = checker.check(&ConvexMixture::new(anchor)?);
        assert_verdict(&report, Property::Contraction, Verdict::Holds);
        let asymptotic = measured(&report, Property::Contraction, "asymptotic ratio");
        let expected = (1.0 - anchor) * (1.0 - anchor);
        assert!(
            (asymptotic - expected).abs() < 0.02,
            "a = {anchor}: {asymptotic}"
        );
    }
    Ok(())
}

#[test]
fn paper_noisy_bound_counterexample_is_shrunk() -> Result<()> {
    let checker = Checker::<f64>::new().with_properties(&[Property::NoisyContractionPaper]);
    let report = checker.check(&ConvexMixture::new(0.3)?);
    let row = report.row(Property::NoisyContractionPaper).unwrap();
    assert_eq!(row.verdict, Verdict::Violated);
    assert!(row.worst_margin.unwrap() < 0.0);
    let counterexample = row.counterexample.as_ref().unwrap();
    assert_eq!(counterexample.history.teachers.len(), 1);
    assert_eq!(counterexample.history.students.len(), 1);
    assert!(counterexample.history.vocab_size() <= 4);
    assert!(counterexample.description.contains("eta"));
    Ok(())
}

#[test]
fn unanchored_mixture_has_no_fixed_point() -> Result<()> {
    let checker = Checker::<f64>::new().with_cases(24)?;
    let report = checker.check(&ConvexMixture::unanchored());
    assert_verdict(&report, Property::NoAnchoring, Verdict::Holds);
    assert_verdict(&report, Property::FixedPoint, Verdict::Violated);
    assert_verdict(&report, Property::Stability, Verdict::Violated);
    assert_verdict(&report, Property::Monotonicity, Verdict::NotApplicable);

    let exact = measured(&report, Property::NoAnchoring, "exact drift");
    assert!(exact < 1e-12, "{exact}");
    let noisy = measured(&report, Property::NoAnchoring, "noisy |D_G - D_0|");
    assert!(noisy > 1e-3, "{noisy}");
    let falls = measured(&report, Property::NoAnchoring, "noisy runs where D fell");
    assert!(falls >= 1.0, "errors never lowered D: {falls}");
    Ok(())
}

#[test]
fn anchored_operator_without_family_skips_no_anchoring() -> Result<()> {
    let checker = Checker::<f64>::new()
        .with_cases(4)?
        .with_properties(&[Property::NoAnchoring, Property::RateDependence]);
    let report = checker.check(&ConvexMixture::new(0.3)?);
    assert_verdict(&report, Property::NoAnchoring, Verdict::NotApplicable);
    assert_verdict(&report, Property::RateDependence, Verdict::NotApplicable);
    assert!(report.rows.iter().all(|row| !row.note.is_empty()));
    Ok(())
}

#[test]
fn same_seed_gives_same_report() -> Result<()> {
    let checker = Checker::<f64>::new().with_cases(16)?.with_seed(42);
    let first = checker.check_family(0.4, mixture)?;
    let second = checker.check_family(0.4, mixture)?;
    assert_eq!(first, second);

    let other = checker.clone().with_seed(43).check_family(0.4, mixture)?;
    assert_eq!(other.seed, 43);
    for property in Property::ALL {
        assert_eq!(
            first.verdict(property),
            other.verdict(property),
            "{property:?}"
        );
    }
    Ok(())
}

#[test]
fn report_prints_table_and_counterexamples() -> Result<()> {
    let checker = Checker::<f64>::new().with_cases(8)?;
    let report = checker.check_family(0.3, mixture)?;
    let text = report.to_string();
    for property in Property::ALL {
        assert!(
            text.contains(property.label()),
            "{property:?} missing:\n{text}"
        );
    }
    assert!(text.contains("VIOLATED"));
    assert!(text.contains("counterexample to \"noisy bound, eps = KL (paper)\""));
    assert!(text.contains("T0 = ("));

    let table = summary_table(&[report]);
    assert!(table.starts_with("operator"));
    assert!(table.contains("ConvexMixture(a = 0.3)"));
    assert!(table.contains("FAIL"));
    Ok(())
}

#[test]
fn restricted_properties_keep_order() -> Result<()> {
    let chosen = [Property::FixedPoint, Property::ValidOutput];
    let checker = Checker::<f64>::new()
        .with_cases(4)?
        .with_properties(&chosen);
    let report = checker.check(&ConvexMixture::new(0.5)?);
    let order: Vec<Property> = report.rows.iter().map(|row| row.property).collect();
    assert_eq!(order, chosen.to_vec());
    assert!(report.rows.iter().all(|row| row.cases == 4));
    Ok(())
}

#[test]
fn two_teachers_make_mixture_fail_axiom_one() -> Result<()> {
    let checker = Checker::<f64>::new()
        .with_cases(4)?
        .with_teachers(2)?
        .with_properties(&[Property::ValidOutput]);
    let report = checker.check(&ConvexMixture::new(0.5)?);
    let row = report.row(Property::ValidOutput).unwrap();
    assert_eq!(row.verdict, Verdict::Violated);
    let counterexample = row.counterexample.as_ref().unwrap();
    assert!(
        counterexample.description.contains("exactly 1"),
        "{}",
        counterexample.description
    );
    assert_eq!(counterexample.history.teachers.len(), 2);
    Ok(())
}
