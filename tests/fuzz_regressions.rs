//! Inputs the fuzz targets in `fuzz/` found to break the crate, kept as plain tests.
//!
//! Each test rebuilds, through the public API, the input of one minimized
//! crasher (the raw bytes are in `fuzz/regressions/<target>/`) and checks the
//! fixed behaviour, in f64 and f32.

use metadistill::{ConvexMixture, Error, MetaTeacherOperator, Real};
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
