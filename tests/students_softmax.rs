//! The trained softmax student: the loss falls, the tolerance is reached, limits are reported.

use metadistill::divergence::expected_kl;
use metadistill::student::{Capacity, FitOutcome, SoftmaxStudent, Student};
use metadistill::{DistributionBatch, Error, Real};
use ndarray::{Array2, array};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Random features in [0, 1] for `n` inputs and `d` features.
fn features<F: Real>(n: usize, d: usize, seed: u64) -> Array2<F> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((n, d), |_| F::from(rng.random::<f64>()).unwrap())
}

/// The softmax of `W x + b` for random `W`, `b`: a target a full student can reproduce.
fn realizable_target<F: Real>(x: &Array2<F>, classes: usize, seed: u64) -> DistributionBatch<F> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let w = Array2::from_shape_fn((classes, x.ncols()), |_| rng.random_range(-2.0..2.0));
    let b: Vec<f64> = (0..classes).map(|_| rng.random_range(-1.0..1.0)).collect();
    let logits = Array2::from_shape_fn((x.nrows(), classes), |(row, c)| {
        let dot: f64 = (0..x.ncols())
            .map(|j| w[[c, j]] * x[[row, j]].to_f64().unwrap())
            .sum();
        F::from(dot + b[c]).unwrap()
    });
    DistributionBatch::from_logits(&logits, F::one()).unwrap()
}

/// Converts an `f64` literal to `F`.
fn c<F: Real>(value: f64) -> F {
    F::from(value).unwrap()
}

/// Tells whether `F` is `f64`, for the few checks whose bounds differ by type.
fn is_double<F: Real>() -> bool {
    std::mem::size_of::<F>() == 8
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

fn loss_decreases_every_iteration<F: Real>() {
    let x = features::<F>(40, 3, 1);
    let target = realizable_target(&x, 4, 2);
    let mut student = SoftmaxStudent::new(x.view(), 4, Capacity::Full).unwrap();
    student.fit(&target).unwrap();
    let report = student.last_report().unwrap();
    assert!(report.losses.len() >= 3);
    for pair in report.losses.windows(2) {
        assert!(
            pair[1] <= pair[0],
            "loss rose from {} to {}",
            pair[0],
            pair[1]
        );
    }
    assert!(report.losses[report.losses.len() - 1] < report.losses[0]);
}

#[test]
fn realizable_target_reaches_tolerance_f64() {
    let x = features::<f64>(60, 3, 3);
    let target = realizable_target(&x, 5, 4);
    let mut student = SoftmaxStudent::new(x.view(), 5, Capacity::Full)
        .unwrap()
        .with_tolerance(1e-9)
        .unwrap();
    let fitted = student.fit(&target).unwrap();
    let report = student.last_report().unwrap();
    assert_eq!(report.outcome, FitOutcome::Converged);
    assert!(report.gradient_norm <= 1e-9);
    assert!(report.loss < 1e-12, "loss {}", report.loss);
    assert!((expected_kl(&target, &fitted).unwrap() - report.loss).abs() < 1e-15);
}

#[test]
fn realizable_target_reaches_tolerance_f32() {
    let x = features::<f32>(60, 3, 5);
    let target = realizable_target(&x, 3, 6);
    let mut student = SoftmaxStudent::new(x.view(), 3, Capacity::Full)
        .unwrap()
        .with_tolerance(1e-4)
        .unwrap();
    student.fit(&target).unwrap();
    let report = student.last_report().unwrap();
    assert_eq!(report.outcome, FitOutcome::Converged);
    assert!(report.loss < 1e-5, "loss {}", report.loss);
}

fn rank_limited_student_fits_rank_one_target<F: Real>() {
    let x = features::<F>(50, 4, 7);
    // W = u vᵀ has rank 1.
    let u = [1.0, -0.5, 0.25];
    let v = [2.0, -1.0, 0.5, 1.5];
    let logits = Array2::from_shape_fn((50, 3), |(row, class)| {
        let dot: f64 = (0..4)
            .map(|j| u[class] * v[j] * x[[row, j]].to_f64().unwrap())
            .sum();
        c::<F>(dot)
    });
    let target = DistributionBatch::from_logits(&logits, F::one()).unwrap();
    // f64 reaches a gradient of 1e-8 and a loss below 1e-10. In f32 the
    // gradient cannot fall much below √ε ≈ 3.5e-4, so the tolerance is 1e-3
    // and the loss, quadratic in the remaining error, falls below 1e-5.
    let (tolerance, max_loss) = if is_double::<F>() {
        (1e-8, 1e-10)
    } else {
        (1e-3, 1e-5)
    };
    let mut student = SoftmaxStudent::new(x.view(), 3, Capacity::Rank(1))
        .unwrap()
        .with_seed(3)
        .with_tolerance(c(tolerance))
        .unwrap()
        .with_max_iterations(2000);
    student.fit(&target).unwrap();
    let report = student.last_report().unwrap();
    assert_eq!(report.outcome, FitOutcome::Converged);
    assert!(report.loss < c(max_loss), "loss {}", report.loss);
    assert_eq!(student.n_parameters(), 3 + 4 + 3);
}

fn feature_subset_limits_capacity<F: Real>() {
    let x = features::<F>(60, 4, 8);
    let target = realizable_target(&x, 3, 9);
    let mut full = SoftmaxStudent::new(x.view(), 3, Capacity::Full).unwrap();
    let mut subset = SoftmaxStudent::new(x.view(), 3, Capacity::Features(vec![0])).unwrap();
    full.fit(&target).unwrap();
    subset.fit(&target).unwrap();
    let full_loss = full.last_report().unwrap().loss;
    let subset_loss = subset.last_report().unwrap().loss;
    assert_eq!(subset.n_parameters(), 3 + 3);
    assert!(subset_loss > c(1e-4), "subset loss {subset_loss}");
    assert!(full_loss < subset_loss);
}

fn iteration_limit_is_reported<F: Real>() {
    let x = features::<F>(60, 4, 10);
    let target = realizable_target(&x, 3, 11);
    let mut student = SoftmaxStudent::new(x.view(), 3, Capacity::Full)
        .unwrap()
        .with_max_iterations(2);
    student.fit(&target).unwrap();
    let report = student.last_report().unwrap();
    assert_eq!(report.outcome, FitOutcome::IterationLimit);
    assert_eq!(report.iterations, 2);
    assert!(report.gradient_norm > report.tolerance);
}

#[test]
fn zero_iteration_limit_is_rejected() {
    for seed in [20, 21] {
        let x = features::<f64>(20, 3, seed);
        let target = realizable_target(&x, 3, seed + 100);
        let mut student = SoftmaxStudent::new(x.view(), 3, Capacity::Full)
            .unwrap()
            .with_max_iterations(0);
        let error = student.fit(&target).unwrap_err();
        assert!(
            matches!(
                error,
                Error::InvalidParameter { name: "softmax student iteration limit", value, .. }
                    if value == 0.0
            ),
            "{error:?}"
        );
        assert!(student.last_report().is_none());
    }
    let x = features::<f32>(20, 3, 22);
    let target = realizable_target(&x, 3, 23);
    let mut student = SoftmaxStudent::new(x.view(), 3, Capacity::Rank(2))
        .unwrap()
        .with_max_iterations(0);
    assert!(matches!(
        student.fit(&target),
        Err(Error::InvalidParameter { value, .. }) if value == 0.0
    ));
}

fn warm_start_continues_from_previous_fit<F: Real>() {
    let x = features::<F>(60, 4, 12);
    let target = realizable_target(&x, 3, 13);
    let mut warm = SoftmaxStudent::new(x.view(), 3, Capacity::Full)
        .unwrap()
        .with_max_iterations(3);
    warm.fit(&target).unwrap();
    let first = warm.last_report().unwrap().loss;
    warm.fit(&target).unwrap();
    assert!(warm.last_report().unwrap().loss < first);

    let mut cold = SoftmaxStudent::new(x.view(), 3, Capacity::Full)
        .unwrap()
        .with_max_iterations(3)
        .with_warm_start(false);
    cold.fit(&target).unwrap();
    let once = cold.last_report().unwrap().loss;
    cold.fit(&target).unwrap();
    // A cold start repeats the same arithmetic, so the loss repeats; 4.5 ε
    // (1e-15 in f64) allows only last-bit differences.
    let again = cold.last_report().unwrap().loss;
    assert!((again - once).abs() < c::<F>(4.5) * F::epsilon());
}

fn fit_keeps_input_weights<F: Real>() {
    let x = features::<F>(3, 2, 14);
    let target = realizable_target(&x, 2, 15)
        .with_input_weights(&array![1.0, 0.0, 3.0].mapv(c::<F>))
        .unwrap();
    let mut student = SoftmaxStudent::new(x.view(), 2, Capacity::Full).unwrap();
    let fitted = student.fit(&target).unwrap();
    assert_eq!(fitted.input_weights(), target.input_weights());
}

for_both_floats!(
    loss_decreases_every_iteration,
    rank_limited_student_fits_rank_one_target,
    feature_subset_limits_capacity,
    iteration_limit_is_reported,
    warm_start_continues_from_previous_fit,
    fit_keeps_input_weights,
);

#[test]
fn empty_features_are_rejected() {
    let x = Array2::<f64>::zeros((0, 3));
    let error = SoftmaxStudent::new(x.view(), 2, Capacity::Full).unwrap_err();
    assert!(matches!(error, Error::Empty { .. }));
}

#[test]
fn zero_classes_are_rejected() {
    let x = features::<f64>(2, 2, 1);
    let error = SoftmaxStudent::new(x.view(), 0, Capacity::Full).unwrap_err();
    assert!(matches!(error, Error::Empty { .. }));
}

#[test]
fn non_finite_feature_is_rejected() {
    let mut x = features::<f64>(3, 2, 1);
    x[[2, 1]] = f64::NAN;
    let error = SoftmaxStudent::new(x.view(), 2, Capacity::Full).unwrap_err();
    assert!(matches!(
        error,
        Error::NonFiniteFeature {
            row: 2,
            column: 1,
            ..
        }
    ));
}

#[test]
fn feature_index_out_of_range_is_rejected() {
    let x = features::<f64>(3, 2, 1);
    let error = SoftmaxStudent::new(x.view(), 2, Capacity::Features(vec![1, 5])).unwrap_err();
    assert!(matches!(
        error,
        Error::FeatureIndexOutOfRange {
            position: 1,
            index: 5,
            n_features: 2
        }
    ));
}

#[test]
fn rank_zero_is_rejected() {
    let x = features::<f64>(3, 2, 1);
    let error = SoftmaxStudent::new(x.view(), 2, Capacity::Rank(0)).unwrap_err();
    assert!(matches!(
        error,
        Error::InvalidParameter { name: "rank", .. }
    ));
}

#[test]
fn bad_gradient_tolerance_is_rejected() {
    let x = features::<f64>(3, 2, 1);
    for bad in [-1.0, f64::NAN, f64::INFINITY] {
        let student = SoftmaxStudent::new(x.view(), 2, Capacity::Full).unwrap();
        let error = student.with_tolerance(bad).unwrap_err();
        assert!(
            matches!(
                error,
                Error::InvalidParameter { name: "gradient tolerance", value, .. }
                    if value.to_bits() == bad.to_bits()
            ),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.starts_with("gradient tolerance"), "{message}");
        assert!(!message.contains("sum tolerance"), "{message}");
    }
}

#[test]
fn wrong_number_of_inputs_is_rejected() {
    let x = features::<f64>(3, 2, 1);
    let target = realizable_target(&features::<f64>(4, 2, 2), 2, 3);
    let mut student = SoftmaxStudent::new(x.view(), 2, Capacity::Full).unwrap();
    let error = student.fit(&target).unwrap_err();
    assert!(matches!(
        error,
        Error::BatchSizeMismatch {
            expected: 3,
            found: 4,
            ..
        }
    ));
}

#[test]
fn wrong_vocabulary_is_rejected() {
    let x = features::<f64>(3, 2, 1);
    let target = realizable_target(&x, 4, 3);
    let mut student = SoftmaxStudent::new(x.view(), 2, Capacity::Full).unwrap();
    let error = student.fit(&target).unwrap_err();
    assert!(matches!(
        error,
        Error::VocabularyMismatch {
            expected: 2,
            found: 4,
            ..
        }
    ));
}
