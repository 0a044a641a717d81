//! Tests of the tempered mixture: its displaced fixed point and its errors.

mod operators_support;

use std::slice::from_ref;

use metadistill::divergence::kl;
use metadistill::recursion::run_exact;
use metadistill::{
    ConvexMixture, Distribution, Error, MetaTeacherOperator, OperatorProperties, Result,
    TemperedMixture,
};
use operators_support::{Lcg, assert_distribution, build, config, distributions};
use proptest::prelude::*;

fn appendix_teacher() -> Result<Distribution> {
    Distribution::from_probs(&[0.6, 0.3, 0.1])
}

/// Iterates the operator 2000 times from `T0` and checks that the last step
/// moved no probability by more than 1e-15, so the result is the fixed point
/// to machine precision.
fn long_iteration(operator: &TemperedMixture) -> Result<Distribution> {
    let teacher = appendix_teacher()?;
    let mut current = teacher.clone();
    let mut change = f64::INFINITY;
    for _ in 0..2000 {
        let next = operator.build(from_ref(&teacher), from_ref(&current))?;
        change = next
            .probs()
            .iter()
            .zip(current.probs())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        current = next;
    }
    assert!(change <= 1e-15, "last change {change}");
    Ok(current)
}

#[test]
fn fixed_point_lies_away_from_teacher() -> Result<()> {
    let teacher = appendix_teacher()?;
    let operator = TemperedMixture::new(0.3, 2.0)?;
    let reference = long_iteration(&operator)?;
    let distance = kl(&teacher, &reference)?;
    // About 0.122 nats from T0 (0.121981 from this iteration).
    assert!((distance - 0.122).abs() < 1e-3, "distance {distance}");

    let fixed = operator.fixed_point(&teacher, 1e-15, 10_000)?;
    for (found, wanted) in fixed.probs().iter().zip(reference.probs()) {
        assert!((found - wanted).abs() < 1e-14);
    }
    let again = operator.build(from_ref(&teacher), from_ref(&fixed))?;
    for (found, wanted) in again.probs().iter().zip(fixed.probs()) {
        assert!((found - wanted).abs() < 1e-14);
    }
    assert!(!operator.fixes_teacher());
    assert_eq!(operator.contraction_factor(), None);
    Ok(())
}

#[test]
fn recursion_stalls_at_offset() -> Result<()> {
    let teacher = appendix_teacher()?;
    let start = Distribution::from_probs(&[0.2, 0.5, 0.3])?;
    let operator = TemperedMixture::new(0.3, 2.0)?;
    let run = run_exact(&operator, from_ref(&teacher), &start, 60)?;
    let fixed = operator.fixed_point(&teacher, 1e-15, 10_000)?;
    let last = run.divergences()[60];
    assert!((last - kl(&teacher, &fixed)?).abs() < 1e-12);
    Ok(())
}

#[test]
fn unit_temperature_is_mixture() -> Result<()> {
    let teacher = appendix_teacher()?;
    let student = Distribution::from_probs(&[0.2, 0.5, 0.3])?;
    let tempered = TemperedMixture::new(0.3, 1.0)?.build(from_ref(&teacher), from_ref(&student))?;
    let mixture = ConvexMixture::new(0.3)?.build(&[teacher], &[student])?;
    for (found, wanted) in tempered.probs().iter().zip(mixture.probs()) {
        assert!((found - wanted).abs() < 1e-15);
    }
    assert_eq!(
        TemperedMixture::new(0.3, 1.0)?.contraction_factor(),
        Some(0.7)
    );
    Ok(())
}

#[test]
fn tempering_matches_power_formula() -> Result<()> {
    let teacher = appendix_teacher()?;
    let student = Distribution::from_probs(&[0.2, 0.5, 0.3])?;
    let q = TemperedMixture::new(0.5, 0.5)?.build(&[teacher], &[student])?;
    let mixed = [0.4f64, 0.4, 0.2];
    let norm: f64 = mixed.iter().map(|m| m * m).sum();
    for (found, m) in q.probs().iter().zip(mixed) {
        assert!((found - m * m / norm).abs() < 1e-15);
    }
    Ok(())
}

#[test]
fn extreme_temperatures_stay_finite() -> Result<()> {
    let teacher = appendix_teacher()?;
    let student = Distribution::from_probs(&[0.2, 0.5, 0.3])?;
    let cold = TemperedMixture::new(0.3, 1e-3)?.build(from_ref(&teacher), from_ref(&student))?;
    // The mixture is (0.32, 0.44, 0.24), so the cold limit puts all mass on token 1.
    assert!((cold.probs()[1] - 1.0).abs() < 1e-12);
    let hot = TemperedMixture::new(0.3, 1e6)?.build(&[teacher], &[student])?;
    assert!((hot.probs()[2] - 1.0 / 3.0).abs() < 1e-5);
    Ok(())
}

#[test]
fn constructor_and_fixed_point_reject_bad_input() -> Result<()> {
    assert!(matches!(
        TemperedMixture::new(0.0, 2.0),
        Err(Error::InvalidAnchorWeight { .. })
    ));
    assert!(matches!(
        TemperedMixture::new(0.3, 0.0),
        Err(Error::InvalidTemperature { .. })
    ));
    assert!(matches!(
        TemperedMixture::new(0.3, f64::INFINITY),
        Err(Error::InvalidTemperature { .. })
    ));
    let operator = TemperedMixture::new(0.3, 2.0)?;
    let teacher = appendix_teacher()?;
    assert!(matches!(
        operator.fixed_point(&teacher, 0.0, 10),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        operator.fixed_point(&teacher, 1e-15, 2),
        Err(Error::NotConverged { iterations: 2, .. })
    ));
    let no_iterations = operator.fixed_point(&teacher, 1e-15, 0);
    assert!(
        matches!(
            no_iterations,
            Err(Error::InvalidParameter { name: "fixed-point iteration limit", value, .. })
                if value == 0.0
        ),
        "{no_iterations:?}"
    );
    let two = [teacher.clone(), teacher.clone()];
    assert!(matches!(
        operator.build(&two, &[teacher]),
        Err(Error::TeacherCount { found: 2, .. })
    ));
    Ok(())
}

#[test]
fn f32_fixed_point_agrees() -> Result<()> {
    let teacher = Distribution::<f32>::from_probs(&[0.6, 0.3, 0.1])?;
    let operator = TemperedMixture::<f32>::new(0.3, 2.0)?;
    let fixed = operator.fixed_point(&teacher, 1e-6, 1000)?;
    assert!((kl(&teacher, &fixed)? - 0.122).abs() < 1e-3);
    Ok(())
}

#[test]
fn large_vocabulary_stays_valid() -> Result<()> {
    let mut rng = Lcg::new(29);
    let t = rng.distribution(100_000)?;
    let s = rng.distribution(100_000)?;
    let q = TemperedMixture::new(0.3, 2.0)?.build(&[t], &[s])?;
    assert_distribution(&q);
    assert!(q.is_strictly_positive());
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn output_is_positive_distribution(weights in distributions(2), anchor in 0.01f64..1.0, temperature in 0.1f64..10.0) {
        let points = build(&weights).expect("positive weights");
        let q = TemperedMixture::new(anchor, temperature).unwrap().build(&points[..1], &points[1..]).unwrap();
        assert_distribution(&q);
        prop_assert!(q.is_strictly_positive());
    }
}
