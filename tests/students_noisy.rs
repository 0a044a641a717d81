//! The noisy student: its error has the requested size, in the requested measure and direction.

use metadistill::divergence::{kl, max_log_ratio};
use metadistill::student::{ErrorMeasure, NoisyStudent, Student};
use metadistill::{Distribution, DistributionBatch, Error, Real};
use ndarray::array;

/// A meta-teacher batch of three inputs over four tokens, one with a zero.
fn meta_teacher<F: Real>() -> DistributionBatch<F> {
    let probs = array![
        [0.4, 0.3, 0.2, 0.1],
        [0.25, 0.25, 0.25, 0.25],
        [0.7, 0.0, 0.2, 0.1]
    ]
    .mapv(|v: f64| F::from(v).unwrap());
    DistributionBatch::from_probs(&probs)
        .unwrap()
        .with_input_weights(&array![1.0, 2.0, 1.0].mapv(|v: f64| F::from(v).unwrap()))
        .unwrap()
}

/// Teachers of the same shape as `meta_teacher`.
fn teacher<F: Real>() -> DistributionBatch<F> {
    let probs = array![
        [0.6, 0.3, 0.05, 0.05],
        [0.1, 0.2, 0.3, 0.4],
        [0.5, 0.0, 0.25, 0.25]
    ]
    .mapv(|v: f64| F::from(v).unwrap());
    DistributionBatch::from_probs(&probs)
        .unwrap()
        .with_input_weights(&array![1.0, 2.0, 1.0].mapv(|v: f64| F::from(v).unwrap()))
        .unwrap()
}

/// Measures the error of every row of `student` from `meta`.
fn row_errors<F: Real>(
    meta: &DistributionBatch<F>,
    student: &DistributionBatch<F>,
    measure: ErrorMeasure,
) -> Vec<F> {
    (0..meta.n_inputs())
        .map(|row| {
            let q = meta.distribution(row).unwrap();
            let s = student.distribution(row).unwrap();
            match measure {
                ErrorMeasure::KullbackLeibler => kl(&q, &s).unwrap(),
                ErrorMeasure::MaxLogRatio => max_log_ratio(&q, &s).unwrap(),
            }
        })
        .collect()
}

/// Checks that every row's error equals `size` within a relative tolerance.
fn check_sizes<F: Real>(student: &mut NoisyStudent<F>, size: f64, tolerance: f64) {
    let meta = meta_teacher::<F>();
    let fitted = student.fit(&meta).unwrap();
    for (row, error) in row_errors(&meta, &fitted, student.measure())
        .into_iter()
        .enumerate()
    {
        let error = error.to_f64().unwrap();
        assert!(
            (error - size).abs() <= tolerance * size,
            "row {row}: error {error} but {size} requested"
        );
    }
}

/// Converts an `f64` literal to `F`.
fn c<F: Real>(value: f64) -> F {
    F::from(value).unwrap()
}

/// Returns the relative tolerance on a fitted error size.
///
/// The student promises `|error - size| <= √ε · max(1, size)`. Bisection in
/// f64 lands far closer, within 1e-9 relative, so f64 keeps that tighter
/// check; f32 is held to 1e-3 relative, which covers its √ε = 3.5e-4 at the
/// sizes used here (0.02 to 0.05).
fn size_tolerance<F: Real>() -> f64 {
    if std::mem::size_of::<F>() == 8 {
        1e-9
    } else {
        1e-3
    }
}

/// Runs each generic check for `f32` and for `f64`.
macro_rules! for_both_floats {
    ($($name:ident),* $(,)?) => {
        mod f32_cases {
            $(#[test] fn $name() { super::$name::<f32>(); })*
        }
        mod f64_cases {
            $(#[test] fn $name() { super::$name::<f64>(); })*
        }
    };
}

fn random_kl_error_has_requested_size<F: Real>() {
    let mut student = NoisyStudent::<F>::random(c(0.02), ErrorMeasure::KullbackLeibler, 1).unwrap();
    check_sizes(&mut student, 0.02, size_tolerance::<F>());
}

fn random_max_log_ratio_has_requested_size<F: Real>() {
    let mut student = NoisyStudent::<F>::random(c(0.05), ErrorMeasure::MaxLogRatio, 2).unwrap();
    check_sizes(&mut student, 0.05, size_tolerance::<F>());
}

fn against_teacher_error_has_requested_size<F: Real>() {
    for measure in [ErrorMeasure::KullbackLeibler, ErrorMeasure::MaxLogRatio] {
        let mut student = NoisyStudent::against_teacher(c(0.03), measure, teacher::<F>()).unwrap();
        check_sizes(&mut student, 0.03, size_tolerance::<F>());
    }
}

#[test]
fn error_sizes_hold_in_f32() {
    let mut random = NoisyStudent::<f32>::random(0.05, ErrorMeasure::KullbackLeibler, 3).unwrap();
    check_sizes(&mut random, 0.05, 1e-3);
    let mut against =
        NoisyStudent::against_teacher(0.05, ErrorMeasure::MaxLogRatio, teacher::<f32>()).unwrap();
    check_sizes(&mut against, 0.05, 1e-3);
}

fn zero_entries_stay_zero<F: Real>() {
    let meta = meta_teacher::<F>();
    let mut student = NoisyStudent::random(c(0.1), ErrorMeasure::KullbackLeibler, 4).unwrap();
    let fitted = student.fit(&meta).unwrap();
    assert_eq!(fitted.probs()[[2, 1]], F::zero());
}

fn same_seed_gives_same_student<F: Real>() {
    let meta = meta_teacher::<F>();
    let mut first = NoisyStudent::random(c(0.02), ErrorMeasure::KullbackLeibler, 9).unwrap();
    let mut second = NoisyStudent::random(c(0.02), ErrorMeasure::KullbackLeibler, 9).unwrap();
    assert_eq!(first.fit(&meta).unwrap(), second.fit(&meta).unwrap());
}

fn different_seeds_give_different_students<F: Real>() {
    let meta = meta_teacher::<F>();
    let mut first = NoisyStudent::random(c(0.02), ErrorMeasure::KullbackLeibler, 9).unwrap();
    let mut second = NoisyStudent::random(c(0.02), ErrorMeasure::KullbackLeibler, 10).unwrap();
    assert_ne!(first.fit(&meta).unwrap(), second.fit(&meta).unwrap());
}

fn successive_fits_draw_new_directions<F: Real>() {
    let meta = meta_teacher::<F>();
    let mut student = NoisyStudent::random(c(0.02), ErrorMeasure::KullbackLeibler, 9).unwrap();
    let first = student.fit(&meta).unwrap();
    let second = student.fit(&meta).unwrap();
    assert_ne!(first, second);
}

fn against_teacher_raises_distance_to_teacher<F: Real>() {
    let meta = meta_teacher::<F>();
    let teacher = teacher::<F>();
    let mut student =
        NoisyStudent::against_teacher(c(0.01), ErrorMeasure::KullbackLeibler, teacher.clone())
            .unwrap();
    let fitted = student.fit(&meta).unwrap();
    for row in 0..meta.n_inputs() {
        let t = teacher.distribution(row).unwrap();
        let before = kl(&t, &meta.distribution(row).unwrap()).unwrap();
        let after = kl(&t, &fitted.distribution(row).unwrap()).unwrap();
        assert!(after > before, "row {row}: {after} <= {before}");
    }
}

fn zero_size_copies_meta_teacher<F: Real>() {
    let meta = meta_teacher::<F>();
    let mut student = NoisyStudent::random(F::zero(), ErrorMeasure::MaxLogRatio, 1).unwrap();
    assert_eq!(student.fit(&meta).unwrap(), meta);
}

fn student_keeps_input_weights<F: Real>() {
    let meta = meta_teacher::<F>();
    let mut student = NoisyStudent::random(c(0.01), ErrorMeasure::MaxLogRatio, 1).unwrap();
    let fitted = student.fit(&meta).unwrap();
    // The weights are renormalized once more: within 4.5 ε (1e-15 in f64).
    for (&a, &b) in fitted
        .input_weights()
        .iter()
        .zip(meta.input_weights().iter())
    {
        assert!((a - b).abs() < c::<F>(4.5) * F::epsilon());
    }
}

fn negative_size_is_rejected<F: Real>() {
    let size = c::<F>(-0.1);
    let error = NoisyStudent::<F>::random(size, ErrorMeasure::KullbackLeibler, 1).unwrap_err();
    let expected = size.to_f64().unwrap();
    assert!(matches!(error, Error::InvalidParameter { value, .. } if value == expected));
}

fn nan_size_is_rejected<F: Real>() {
    let error = NoisyStudent::against_teacher(F::nan(), ErrorMeasure::MaxLogRatio, teacher::<F>())
        .unwrap_err();
    assert!(matches!(error, Error::InvalidParameter { .. }));
}

fn point_mass_meta_teacher_is_unreachable<F: Real>() {
    let q = Distribution::<F>::from_probs(&[F::zero(), F::one(), F::zero()]).unwrap();
    let size = c::<F>(0.1);
    let mut student = NoisyStudent::random(size, ErrorMeasure::KullbackLeibler, 1).unwrap();
    let error = student.fit_one(&q).unwrap_err();
    let expected = size.to_f64().unwrap();
    assert!(matches!(error, Error::UnreachableStudentError { row: 0, size } if size == expected));
}

fn teacher_of_other_shape_is_rejected<F: Real>() {
    let small =
        DistributionBatch::<F>::from_probs(&array![[0.5, 0.5, 0.0, 0.0]].mapv(c::<F>)).unwrap();
    let mut student =
        NoisyStudent::against_teacher(c(0.1), ErrorMeasure::KullbackLeibler, small).unwrap();
    let error = student.fit(&meta_teacher::<F>()).unwrap_err();
    assert!(matches!(
        error,
        Error::BatchSizeMismatch {
            expected: 1,
            found: 3,
            ..
        }
    ));
}

fn large_reachable_size_is_met<F: Real>() {
    let q = Distribution::<F>::from_probs(&[c(0.5), c(0.3), c(0.2)]).unwrap();
    let mut student = NoisyStudent::random(c(20.0), ErrorMeasure::MaxLogRatio, 3).unwrap();
    let s = student.fit_one(&q).unwrap();
    let error = max_log_ratio(&q, &s).unwrap().to_f64().unwrap();
    // Relative to the size as above: 2e-8 in f64, and 0.02 in f32, which covers
    // the student's contract of 20 √ε = 6.9e-3 there.
    let allowed = 20.0 * size_tolerance::<F>();
    assert!((error - 20.0).abs() <= allowed, "error {error}");
}

for_both_floats!(
    random_kl_error_has_requested_size,
    random_max_log_ratio_has_requested_size,
    against_teacher_error_has_requested_size,
    zero_entries_stay_zero,
    same_seed_gives_same_student,
    different_seeds_give_different_students,
    successive_fits_draw_new_directions,
    against_teacher_raises_distance_to_teacher,
    zero_size_copies_meta_teacher,
    student_keeps_input_weights,
    negative_size_is_rejected,
    nan_size_is_rejected,
    point_mass_meta_teacher_is_unreachable,
    teacher_of_other_shape_is_rejected,
    large_reachable_size_is_met,
);

#[test]
fn size_beyond_float_range_is_unreachable() {
    let q = Distribution::<f64>::from_probs(&[0.5, 0.3, 0.2]).unwrap();
    for measure in [ErrorMeasure::MaxLogRatio, ErrorMeasure::KullbackLeibler] {
        let mut student = NoisyStudent::random(800.0, measure, 3).unwrap();
        let result = student.fit_one(&q);
        assert!(
            matches!(result, Err(Error::UnreachableStudentError { row: 0, size }) if size == 800.0),
            "{measure:?}: {result:?}"
        );
    }

    let q = Distribution::<f32>::from_probs(&[0.5, 0.3, 0.2]).unwrap();
    let mut student = NoisyStudent::random(200.0_f32, ErrorMeasure::MaxLogRatio, 3).unwrap();
    let result = student.fit_one(&q);
    assert!(
        matches!(result, Err(Error::UnreachableStudentError { row: 0, size }) if size == 200.0),
        "{result:?}"
    );
}
