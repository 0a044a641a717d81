//! Inputs the fuzz targets in `fuzz/` found to break the crate, kept as plain tests.
//!
//! Each test rebuilds, through the public API, the input of one minimized
//! crasher (the raw bytes are in `fuzz/regressions/<target>/`) and checks the
//! fixed behaviour, in f64 and f32.

use metadistill::recursion::run_exact;
use metadistill::{ConvexMixture, Distribution, Error, MetaTeacherOperator, Real};
use ndarray::{Array1, ArrayView1};

/// `ConvexMixture::combine_into` with a teacher view longer than `out`:
/// ndarray's `Zip` panicked with "Producer dimension mismatch".
fn combine_into_rejects_length_mismatch<F: Real>() {
    let mixture = ConvexMixture::<F>::new(F::one()).unwrap();
    let long = Array1::from_elem(7, F::one() / F::from(7).unwrap());
    let short = Array1::from_elem(5, F::one() / F::from(5).unwrap());

    let mut out = Array1::zeros(5);
    let result = mixture.combine_into(&[long.view()], &[short.view()], out.view_mut());
    assert_eq!(
        result,
        Err(Error::LengthMismatch {
            what: "base teacher",
            expected: 5,
            found: 7,
        })
    );

    let mut out = Array1::zeros(5);
    let students: [ArrayView1<F>; 2] = [short.view(), long.view()];
    let result = mixture.combine_into(&[short.view()], &students, out.view_mut());
    assert_eq!(
        result,
        Err(Error::LengthMismatch {
            what: "student",
            expected: 5,
            found: 7,
        })
    );
}

#[test]
fn combine_into_length_mismatch_f64() {
    combine_into_rejects_length_mismatch::<f64>();
}

#[test]
fn combine_into_length_mismatch_f32() {
    combine_into_rejects_length_mismatch::<f32>();
}

/// Checks a start that puts no mass on a token the teacher needs, so `D(S_0) = +inf`.
/// The unanchored operator keeps `D = +inf`, and the ratio `inf / inf` was NaN;
/// with `a = 1` the bound `0 · inf` was NaN.
fn infinite_start_gives_no_nan<F: Real>() {
    let teacher = Distribution::<F>::uniform(2).unwrap();
    let start = Distribution::from_probs(&[F::one(), F::zero()]).unwrap();

    let unanchored = run_exact(
        &ConvexMixture::unanchored(),
        std::slice::from_ref(&teacher),
        &start,
        3,
    )
    .unwrap();
    for record in unanchored.records() {
        assert_eq!(record.divergence, F::infinity());
        assert_eq!(record.bound, F::infinity());
        assert_eq!(record.ratio, None, "generation {}", record.generation);
    }

    let full = ConvexMixture::new(F::one()).unwrap();
    let anchored = run_exact(&full, &[teacher], &start, 2).unwrap();
    let records = anchored.records();
    assert_eq!(records[0].divergence, F::infinity());
    assert_eq!(records[0].bound, F::infinity());
    for record in &records[1..] {
        assert_eq!(record.divergence, F::zero());
        assert_eq!(record.bound, F::zero(), "generation {}", record.generation);
    }
    // D(S_0) is +inf, so the first ratio is undefined; D(S_1) is 0, so the second is too.
    assert_eq!(records[1].ratio, None);
    assert_eq!(records[2].ratio, None);
}

#[test]
fn infinite_start_no_nan_f64() {
    infinite_start_gives_no_nan::<f64>();
}

#[test]
fn infinite_start_no_nan_f32() {
    infinite_start_gives_no_nan::<f32>();
}
