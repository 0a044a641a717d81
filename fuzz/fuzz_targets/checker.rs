//! Fuzzes `axioms::Checker` on a fuzz-chosen operator with very few cases.
//!
//! The checker runs every property on proptest inputs of its own, so one
//! execution is slow; the settings keep it to at most 3 cases per property,
//! 20 generations and 8 shrinking steps. Beyond no panic, the report must be
//! free of NaN, carry a counterexample exactly where a property is violated,
//! and print.

#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use metadistill::Error;
use metadistill::axioms::{Checker, Property, Verdict};
use metadistill_fuzz::operators::operator;
use metadistill_fuzz::{FuzzFloat, value};

/// Decodes checker settings: few cases and generations, any seed, sometimes an invalid value.
fn checker<F: FuzzFloat>(u: &mut Unstructured) -> Result<Option<Checker<F>>> {
    let settings = Checker::<F>::new()
        .with_cases(u.int_in_range(0..=3)?)
        .and_then(|c| c.with_generations(u.int_in_range(0..=20).unwrap_or(1)))
        .and_then(|c| c.with_history_len(u.int_in_range(0..=3).unwrap_or(1)))
        .and_then(|c| c.with_teachers(u.int_in_range(0..=2).unwrap_or(1)));
    let settings = match settings {
        Ok(checker) => checker,
        Err(error) => {
            assert!(matches!(error, Error::InvalidParameter { .. }), "{error:?}");
            return Ok(None);
        }
    };
    let settings = settings
        .with_seed(u.arbitrary()?)
        .with_shrink_iterations(u.int_in_range(0..=8)?);
    if u.ratio(1, 4)? {
        let tolerance = value::<f64>(u)?;
        return match settings.with_tolerance(tolerance) {
            Ok(checker) => Ok(Some(checker)),
            Err(error) => {
                assert!(matches!(error, Error::InvalidParameter { .. }), "{error:?}");
                Ok(None)
            }
        };
    }
    Ok(Some(settings))
}

fn run<F: FuzzFloat>(u: &mut Unstructured) -> Result<()> {
    let Some(checker) = checker::<F>(u)? else {
        return Ok(());
    };
    let Some(operator) = operator::<F>(u, 1)? else {
        return Ok(());
    };
    let report = checker.check(&operator);
    for property in Property::ALL {
        let verdict = report.verdict(property);
        let Some(row) = report.row(property) else {
            panic!("the report has no row for {property:?}");
        };
        assert_eq!(row.verdict, verdict);
        assert!(row.cases <= 3, "{property:?} ran {} cases", row.cases);
        if let Some(margin) = row.worst_margin {
            assert!(!margin.is_nan(), "{property:?} has a NaN margin");
        }
        for measurement in &row.measurements {
            assert!(
                !measurement.value.is_nan(),
                "{property:?}: {} is NaN",
                measurement.name
            );
        }
        assert_eq!(
            row.counterexample.is_some(),
            verdict == Verdict::Violated,
            "{property:?}: {verdict:?} with counterexample {:?}",
            row.counterexample
        );
    }
    assert!(!report.to_string().is_empty());
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let _ = if u.arbitrary::<bool>().unwrap_or(false) {
        run::<f32>(&mut u)
    } else {
        run::<f64>(&mut u)
    };
});
