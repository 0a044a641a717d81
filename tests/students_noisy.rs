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

#[test]
fn random_kl_error_has_requested_size() {
    let mut student = NoisyStudent::<f64>::random(0.02, ErrorMeasure::KullbackLeibler, 1).unwrap();
    check_sizes(&mut student, 0.02, 1e-9);
}

#[test]
fn random_max_log_ratio_has_requested_size() {
    let mut student = NoisyStudent::<f64>::random(0.05, ErrorMeasure::MaxLogRatio, 2).unwrap();
    check_sizes(&mut student, 0.05, 1e-9);
}

#[test]
fn against_teacher_error_has_requested_size() {
    for measure in [ErrorMeasure::KullbackLeibler, ErrorMeasure::MaxLogRatio] {
        let mut student = NoisyStudent::against_teacher(0.03, measure, teacher::<f64>()).unwrap();
        check_sizes(&mut student, 0.03, 1e-9);
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

#[test]
fn zero_entries_stay_zero() {
    let meta = meta_teacher::<f64>();
    let mut student = NoisyStudent::random(0.1, ErrorMeasure::KullbackLeibler, 4).unwrap();
    let fitted = student.fit(&meta).unwrap();
    assert_eq!(fitted.probs()[[2, 1]], 0.0);
}

#[test]
fn same_seed_gives_same_student() {
    let meta = meta_teacher::<f64>();
    let mut first = NoisyStudent::random(0.02, ErrorMeasure::KullbackLeibler, 9).unwrap();
    let mut second = NoisyStudent::random(0.02, ErrorMeasure::KullbackLeibler, 9).unwrap();
    assert_eq!(first.fit(&meta).unwrap(), second.fit(&meta).unwrap());
}

#[test]
fn different_seeds_give_different_students() {
    let meta = meta_teacher::<f64>();
    let mut first = NoisyStudent::random(0.02, ErrorMeasure::KullbackLeibler, 9).unwrap();
    let mut second = NoisyStudent::random(0.02, ErrorMeasure::KullbackLeibler, 10).unwrap();
    assert_ne!(first.fit(&meta).unwrap(), second.fit(&meta).unwrap());
}

#[test]
fn successive_fits_draw_new_directions() {
    let meta = meta_teacher::<f64>();
    let mut student = NoisyStudent::random(0.02, ErrorMeasure::KullbackLeibler, 9).unwrap();
    let first = student.fit(&meta).unwrap();
    let second = student.fit(&meta).unwrap();
    assert_ne!(first, second);
}

#[test]
fn against_teacher_raises_distance_to_teacher() {
    let meta = meta_teacher::<f64>();
    let teacher = teacher::<f64>();
    let mut student =
        NoisyStudent::against_teacher(0.01, ErrorMeasure::KullbackLeibler, teacher.clone())
            .unwrap();
    let fitted = student.fit(&meta).unwrap();
    for row in 0..meta.n_inputs() {
        let t = teacher.distribution(row).unwrap();
        let before = kl(&t, &meta.distribution(row).unwrap()).unwrap();
        let after = kl(&t, &fitted.distribution(row).unwrap()).unwrap();
        assert!(after > before, "row {row}: {after} <= {before}");
    }
}

#[test]
fn zero_size_copies_meta_teacher() {
    let meta = meta_teacher::<f64>();
    let mut student = NoisyStudent::random(0.0, ErrorMeasure::MaxLogRatio, 1).unwrap();
    assert_eq!(student.fit(&meta).unwrap(), meta);
}

#[test]
fn student_keeps_input_weights() {
    let meta = meta_teacher::<f64>();
    let mut student = NoisyStudent::random(0.01, ErrorMeasure::MaxLogRatio, 1).unwrap();
    let fitted = student.fit(&meta).unwrap();
    for (a, b) in fitted
        .input_weights()
        .iter()
        .zip(meta.input_weights().iter())
    {
        assert!((a - b).abs() < 1e-15);
    }
}

#[test]
fn negative_size_is_rejected() {
    let error = NoisyStudent::<f64>::random(-0.1, ErrorMeasure::KullbackLeibler, 1).unwrap_err();
    assert!(matches!(error, Error::InvalidParameter { value, .. } if value == -0.1));
}

#[test]
fn nan_size_is_rejected() {
    let error =
        NoisyStudent::against_teacher(f64::NAN, ErrorMeasure::MaxLogRatio, teacher::<f64>())
            .unwrap_err();
    assert!(matches!(error, Error::InvalidParameter { .. }));
}

#[test]
fn point_mass_meta_teacher_is_unreachable() {
    let q = Distribution::<f64>::from_probs(&[0.0, 1.0, 0.0]).unwrap();
    let mut student = NoisyStudent::random(0.1, ErrorMeasure::KullbackLeibler, 1).unwrap();
    let error = student.fit_one(&q).unwrap_err();
    assert!(matches!(error, Error::UnreachableStudentError { row: 0, size } if size == 0.1));
}

#[test]
fn teacher_of_other_shape_is_rejected() {
    let small = DistributionBatch::<f64>::from_probs(&array![[0.5, 0.5, 0.0, 0.0]]).unwrap();
    let mut student =
        NoisyStudent::against_teacher(0.1, ErrorMeasure::KullbackLeibler, small).unwrap();
    let error = student.fit(&meta_teacher::<f64>()).unwrap_err();
    assert!(matches!(
        error,
        Error::BatchSizeMismatch {
            expected: 1,
            found: 3,
            ..
        }
    ));
}

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

#[test]
fn large_reachable_size_is_met() {
    let q = Distribution::<f64>::from_probs(&[0.5, 0.3, 0.2]).unwrap();
    let mut student = NoisyStudent::random(20.0, ErrorMeasure::MaxLogRatio, 3).unwrap();
    let s = student.fit_one(&q).unwrap();
    let error = max_log_ratio(&q, &s).unwrap();
    assert!((error - 20.0).abs() <= 20.0 * 1e-9, "error {error}");
}
