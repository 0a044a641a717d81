//! Tests of the tempered mixture: its displaced fixed point and its errors.

mod operators_support;

use std::slice::from_ref;

use metadistill::divergence::kl;
use metadistill::recursion::run_exact;
use metadistill::{
    ConvexMixture, Distribution, Error, MetaTeacherOperator, OperatorProperties, Real, Result,
    TemperedMixture,
};
use operators_support::{Lcg, assert_distribution, build, config, distributions};
use proptest::prelude::*;

/// Converts an `f64` literal to `F`.
fn c<F: Real>(value: f64) -> F {
    F::from(value).unwrap()
}

/// Builds a distribution from literals that are known to be valid.
fn dist<F: Real>(entries: &[f64]) -> Result<Distribution<F>> {
    let values: Vec<F> = entries.iter().map(|&x| c(x)).collect();
    Distribution::from_probs(&values)
}

fn appendix_teacher<F: Real>() -> Result<Distribution<F>> {
    dist(&[0.6, 0.3, 0.1])
}

/// Returns a tolerance of `ulps` machine epsilons of `F`.
fn ulps<F: Real>(ulps: f64) -> F {
    c::<F>(ulps) * F::epsilon()
}

/// Runs each generic check for `f32` and for `f64`.
macro_rules! for_both_floats {
    ($($name:ident),* $(,)?) => {
        mod f32_cases {
            $(#[test] fn $name() -> metadistill::Result<()> { super::$name::<f32>() })*
        }
        mod f64_cases {
            $(#[test] fn $name() -> metadistill::Result<()> { super::$name::<f64>() })*
        }
    };
}

/// Iterates the operator 2000 times from `T0` and checks that the last step
/// moved no probability by more than 4.5 ε (1e-15 in f64), so the result is
/// the fixed point to machine precision.
fn long_iteration<F: Real>(operator: &TemperedMixture<F>) -> Result<Distribution<F>> {
    let teacher = appendix_teacher()?;
    let mut current = teacher.clone();
    let mut change = F::infinity();
    for _ in 0..2000 {
        let next = operator.build(from_ref(&teacher), from_ref(&current))?;
        change = next
            .probs()
            .iter()
            .zip(current.probs())
            .map(|(&a, &b)| (a - b).abs())
            .fold(F::zero(), F::max);
        current = next;
    }
    assert!(change <= ulps(4.5), "last change {change}");
    Ok(current)
}

fn fixed_point_lies_away_from_teacher<F: Real>() -> Result<()> {
    let teacher = appendix_teacher::<F>()?;
    let operator = TemperedMixture::new(c(0.3), c(2.0))?;
    let reference = long_iteration(&operator)?;
    let distance = kl(&teacher, &reference)?;
    // About 0.122 nats from T0 (0.121981 from this iteration).
    assert!((distance - c(0.122)).abs() < c(1e-3), "distance {distance}");

    // Two runs that each stop within 4.5 ε of the fixed point agree within
    // 45 ε (1e-14 in f64).
    let fixed = operator.fixed_point(&teacher, ulps(4.5), 10_000)?;
    for (&found, &wanted) in fixed.probs().iter().zip(reference.probs()) {
        assert!((found - wanted).abs() < ulps(45.0));
    }
    let again = operator.build(from_ref(&teacher), from_ref(&fixed))?;
    for (&found, &wanted) in again.probs().iter().zip(fixed.probs()) {
        assert!((found - wanted).abs() < ulps(45.0));
    }
    assert!(!operator.fixes_teacher());
    assert_eq!(operator.contraction_factor(), None);
    Ok(())
}

fn recursion_stalls_at_offset<F: Real>() -> Result<()> {
    let teacher = appendix_teacher::<F>()?;
    let start = dist(&[0.2, 0.5, 0.3])?;
    let operator = TemperedMixture::new(c(0.3), c(2.0))?;
    let run = run_exact(&operator, from_ref(&teacher), &start, 60)?;
    let fixed = operator.fixed_point(&teacher, ulps(4.5), 10_000)?;
    let last = run.divergences()[60];
    // After 60 steps the iterate is within a few thousand ulps of the fixed
    // point (the contraction per step is about 0.7); 4500 ε is 1e-12 in f64.
    assert!((last - kl(&teacher, &fixed)?).abs() < ulps(4500.0));
    Ok(())
}

fn unit_temperature_is_mixture<F: Real>() -> Result<()> {
    let teacher = appendix_teacher::<F>()?;
    let student = dist(&[0.2, 0.5, 0.3])?;
    let anchor = c::<F>(0.3);
    let tempered =
        TemperedMixture::new(anchor, F::one())?.build(from_ref(&teacher), from_ref(&student))?;
    let mixture = ConvexMixture::new(anchor)?.build(&[teacher], &[student])?;
    // Tempering at 1 adds a logarithm, an exponential and a division: 4.5 ε.
    for (&found, &wanted) in tempered.probs().iter().zip(mixture.probs()) {
        assert!((found - wanted).abs() < ulps(4.5));
    }
    assert_eq!(
        TemperedMixture::new(anchor, F::one())?.contraction_factor(),
        Some(F::one() - anchor)
    );
    Ok(())
}

fn tempering_matches_power_formula<F: Real>() -> Result<()> {
    let teacher = appendix_teacher::<F>()?;
    let student = dist(&[0.2, 0.5, 0.3])?;
    let q = TemperedMixture::new(c(0.5), c(0.5))?.build(&[teacher], &[student])?;
    let mixed = [c::<F>(0.4), c(0.4), c(0.2)];
    let norm: F = mixed.iter().map(|&m| m * m).sum();
    // The log-space tempering and the direct power differ by a few roundings: 4.5 ε.
    for (&found, m) in q.probs().iter().zip(mixed) {
        assert!((found - m * m / norm).abs() < ulps(4.5));
    }
    Ok(())
}

fn extreme_temperatures_stay_finite<F: Real>() -> Result<()> {
    let teacher = appendix_teacher::<F>()?;
    let student = dist(&[0.2, 0.5, 0.3])?;
    let cold =
        TemperedMixture::new(c(0.3), c(1e-3))?.build(from_ref(&teacher), from_ref(&student))?;
    // The mixture is (0.32, 0.44, 0.24), so the cold limit puts all mass on
    // token 1; the others get exp(-318) or less, below both float ranges.
    assert!((cold.probs()[1] - F::one()).abs() < c(1e-12));
    let hot = TemperedMixture::new(c(0.3), c(1e6))?.build(&[teacher], &[student])?;
    assert!((hot.probs()[2] - c(1.0 / 3.0)).abs() < c(1e-5));
    Ok(())
}

fn constructor_and_fixed_point_reject_bad_input<F: Real>() -> Result<()> {
    assert!(matches!(
        TemperedMixture::<F>::new(F::zero(), c(2.0)),
        Err(Error::InvalidAnchorWeight { .. })
    ));
    assert!(matches!(
        TemperedMixture::<F>::new(c(0.3), F::zero()),
        Err(Error::InvalidTemperature { .. })
    ));
    assert!(matches!(
        TemperedMixture::<F>::new(c(0.3), F::infinity()),
        Err(Error::InvalidTemperature { .. })
    ));
    let operator = TemperedMixture::new(c(0.3), c(2.0))?;
    let teacher = appendix_teacher::<F>()?;
    assert!(matches!(
        operator.fixed_point(&teacher, F::zero(), 10),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        operator.fixed_point(&teacher, ulps(4.5), 2),
        Err(Error::NotConverged { iterations: 2, .. })
    ));
    let no_iterations = operator.fixed_point(&teacher, ulps(4.5), 0);
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

for_both_floats!(
    fixed_point_lies_away_from_teacher,
    recursion_stalls_at_offset,
    unit_temperature_is_mixture,
    tempering_matches_power_formula,
    extreme_temperatures_stay_finite,
    constructor_and_fixed_point_reject_bad_input,
);

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
    let narrow = |p: &Distribution| Distribution::from_weights(&p.probs().mapv(|x| x as f32));
    let (t32, s32) = (narrow(&t)?, narrow(&s)?);
    let q = TemperedMixture::new(0.3, 2.0)?.build(&[t], &[s])?;
    assert_distribution(&q);
    assert!(q.is_strictly_positive());

    // In f32, `build` checks the sum against the f32 tolerance for V = 100 000.
    let q32 = TemperedMixture::new(0.3_f32, 2.0)?.build(&[t32], &[s32])?;
    assert!(q32.is_strictly_positive());
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

        // The same case in f32; `build` checks that the output sums to 1 within the f32 tolerance.
        let narrow: Vec<Distribution<f32>> = weights
            .iter()
            .map(|w| Distribution::from_weights(&w.iter().map(|&x| x as f32).collect::<Vec<_>>()).unwrap())
            .collect();
        let operator = TemperedMixture::new(anchor as f32, temperature as f32).unwrap();
        let q32 = operator.build(&narrow[..1], &narrow[1..]).unwrap();
        prop_assert!(q32.is_strictly_positive());
    }
}
