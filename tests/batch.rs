//! Batches of distributions: row validation, input weights and batched divergences.
//!
//! Each check is a generic function run for f32 and f64; tolerances are
//! multiples of the type's machine epsilon `ε`, with the reason next to each.

use approx::assert_relative_eq;
use metadistill::divergence::{expected_kl, kl};
use metadistill::{Distribution, DistributionBatch, Divergence, Error, Real};
use ndarray::{Array2, array};

/// Converts an `f64` literal to `F`.
fn c<F: Real>(value: f64) -> F {
    F::from(value).unwrap()
}

/// Converts `f64` literals to a vector of `F`.
fn values<F: Real>(entries: &[f64]) -> Vec<F> {
    entries.iter().map(|&x| c(x)).collect()
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

fn batch_keeps_rows_and_uniform_weights<F: Real>() {
    let probs = array![[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]].mapv(c::<F>);
    let batch = DistributionBatch::from_probs(&probs).unwrap();
    assert_eq!(batch.n_inputs(), 2);
    assert_eq!(batch.vocab_size(), 3);
    assert_eq!(batch.input_weights().to_vec(), values::<F>(&[0.5, 0.5]));
    assert_eq!(
        batch.row(1).unwrap().to_vec(),
        values::<F>(&[0.2, 0.5, 0.3])
    );
    assert!(batch.row(2).is_none());
    assert_eq!(batch.token(0).unwrap().to_vec(), values::<F>(&[0.6, 0.2]));
    assert!(batch.token(3).is_none());
    assert_eq!(batch.rows().len(), 2);
    let second = batch.distribution(1).unwrap();
    assert_eq!(second.as_slice(), values::<F>(&[0.2, 0.5, 0.3]).as_slice());
}

fn batch_accepts_non_contiguous_views<F: Real>() {
    let wide = array![[0.6, 9.0, 0.4], [0.1, 9.0, 0.9]].mapv(c::<F>);
    let columns = wide.slice(ndarray::s![.., ..;2]);
    let batch = DistributionBatch::from_probs(columns).unwrap();
    assert_eq!(batch.row(1).unwrap().to_vec(), values::<F>(&[0.1, 0.9]));
    let transposed = array![[0.6, 0.1], [0.4, 0.9]].mapv(c::<F>);
    let batch = DistributionBatch::from_probs(transposed.t()).unwrap();
    assert_eq!(batch.row(0).unwrap().to_vec(), values::<F>(&[0.6, 0.4]));
}

fn batch_errors_name_row_and_token<F: Real>() {
    let probs = array![[0.5, 0.5], [0.5, f64::NAN]].mapv(c::<F>);
    let error = DistributionBatch::from_probs(&probs).unwrap_err();
    let Error::InRow { row, source } = &error else {
        panic!("expected InRow, got {error:?}");
    };
    assert_eq!(*row, 1);
    assert!(matches!(
        **source,
        Error::NonFiniteProbability { index: 1, .. }
    ));
    assert!(
        error
            .to_string()
            .starts_with("row 1: probability at index 1 is NaN")
    );

    let unnormalized = DistributionBatch::from_probs(&array![[0.9, 0.2]].mapv(c::<F>)).unwrap_err();
    assert!(matches!(unnormalized, Error::InRow { row: 0, .. }));
}

fn batch_rejects_empty_shapes<F: Real>() {
    let no_rows = Array2::<F>::zeros((0, 3));
    assert!(matches!(
        DistributionBatch::from_probs(&no_rows),
        Err(Error::Empty { .. })
    ));
    let no_columns = Array2::<F>::zeros((2, 0));
    assert!(matches!(
        DistributionBatch::from_probs(&no_columns),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        DistributionBatch::<F>::from_rows(&[]),
        Err(Error::Empty { .. })
    ));
    let p = Distribution::from_probs(&[F::one()]).unwrap();
    assert!(matches!(
        DistributionBatch::repeat(&p, 0),
        Err(Error::Empty { .. })
    ));
}

fn batch_tolerance_is_checked<F: Real>() {
    let rounded = array![[0.333, 0.333, 0.333]].mapv(c::<F>);
    assert!(DistributionBatch::from_probs(&rounded).is_err());
    assert!(DistributionBatch::from_probs_with_tolerance(&rounded, c(1e-2)).is_ok());
    assert!(matches!(
        DistributionBatch::from_probs_with_tolerance(&rounded, c(-1.0)),
        Err(Error::InvalidTolerance { .. })
    ));
}

fn batch_from_logits_reports_row<F: Real>() {
    let logits = array![[0.0, 1.0], [f64::NEG_INFINITY, f64::NEG_INFINITY]].mapv(c::<F>);
    let error = DistributionBatch::from_logits(&logits, F::one()).unwrap_err();
    assert_eq!(error, in_row(Error::AllMasked { count: 2 }, 1));
    let temperature = DistributionBatch::from_logits(&logits, F::zero()).unwrap_err();
    assert!(matches!(temperature, Error::InvalidTemperature { .. }));
    let nan = array![[0.0, f64::NAN]].mapv(c::<F>);
    let bad_logit = DistributionBatch::from_logits(&nan, F::one()).unwrap_err();
    assert!(matches!(bad_logit, Error::InRow { row: 0, .. }));
}

/// Builds the error `InRow` the way the crate reports it, for comparisons.
fn in_row(error: Error, row: usize) -> Error {
    Error::InRow {
        row,
        source: Box::new(error),
    }
}

fn from_rows_rejects_mixed_vocabularies<F: Real>() {
    let rows = [
        Distribution::from_probs(&values::<F>(&[0.5, 0.5])).unwrap(),
        Distribution::from_probs(&[F::one()]).unwrap(),
    ];
    let error = DistributionBatch::from_rows(&rows).unwrap_err();
    assert!(matches!(error, Error::InRow { row: 1, .. }));
}

fn input_weights_are_normalized_and_checked<F: Real>() {
    let probs = array![[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]].mapv(c::<F>);
    let batch = DistributionBatch::from_probs(&probs).unwrap();
    let weighted = batch
        .clone()
        .with_input_weights(&array![2.0, 0.0, 6.0].mapv(c::<F>))
        .unwrap();
    assert_eq!(
        weighted.input_weights().to_vec(),
        values::<F>(&[0.25, 0.0, 0.75])
    );

    let short = batch
        .clone()
        .with_input_weights(&array![1.0].mapv(c::<F>))
        .unwrap_err();
    assert_eq!(
        short,
        Error::LengthMismatch {
            what: "input weights",
            expected: 3,
            found: 1
        }
    );
    let negative = batch
        .clone()
        .with_input_weights(&array![1.0, -1.0, 1.0].mapv(c::<F>));
    assert!(matches!(
        negative,
        Err(Error::InvalidWeight { index: 1, .. })
    ));
    let zeros = batch
        .with_input_weights(&array![0.0, 0.0, 0.0].mapv(c::<F>))
        .unwrap_err();
    assert_eq!(
        zeros,
        Error::AllZeroWeights {
            what: "input weight",
            count: 3
        }
    );
}

fn expected_kl_weights_inputs<F: Real>() {
    let weights = array![1.0, 3.0].mapv(c::<F>);
    let teacher =
        DistributionBatch::from_probs(&array![[0.6, 0.3, 0.1], [0.5, 0.5, 0.0]].mapv(c::<F>))
            .unwrap()
            .with_input_weights(&weights)
            .unwrap();
    let student =
        DistributionBatch::from_probs(&array![[0.2, 0.5, 0.3], [0.25, 0.25, 0.5]].mapv(c::<F>))
            .unwrap()
            .with_input_weights(&weights)
            .unwrap();
    let first = kl(
        &teacher.distribution(0).unwrap(),
        &student.distribution(0).unwrap(),
    )
    .unwrap();
    let second = kl(
        &teacher.distribution(1).unwrap(),
        &student.distribution(1).unwrap(),
    )
    .unwrap();
    // KL of exact inputs is accurate to a few ε (4.5 ε is 1e-15 in f64).
    let tolerance = c::<F>(4.5) * F::epsilon();
    assert_relative_eq!(second, c::<F>(2.0).ln(), max_relative = tolerance);
    let expected = c::<F>(0.25) * first + c::<F>(0.75) * second;
    assert_relative_eq!(
        expected_kl(&teacher, &student).unwrap(),
        expected,
        max_relative = tolerance
    );
    let per_row = Divergence::KullbackLeibler
        .per_row(&teacher, &student)
        .unwrap();
    assert_eq!(per_row.to_vec(), vec![first, second]);
}

fn zero_weight_inputs_do_not_count<F: Real>() {
    let weights = array![0.0, 1.0].mapv(c::<F>);
    let teacher = DistributionBatch::from_probs(&array![[1.0, 0.0], [0.5, 0.5]].mapv(c::<F>))
        .unwrap()
        .with_input_weights(&weights)
        .unwrap();
    let student = DistributionBatch::from_probs(&array![[0.0, 1.0], [0.5, 0.5]].mapv(c::<F>))
        .unwrap()
        .with_input_weights(&weights)
        .unwrap();
    assert_eq!(expected_kl(&teacher, &student).unwrap(), F::zero());
    let per_row = Divergence::KullbackLeibler
        .per_row(&teacher, &student)
        .unwrap();
    assert_eq!(per_row[0], F::infinity());
}

fn expected_rejects_mismatched_batches<F: Real>() {
    let two = DistributionBatch::from_probs(&array![[0.5, 0.5], [0.5, 0.5]].mapv(c::<F>)).unwrap();
    let one = DistributionBatch::from_probs(&array![[0.5, 0.5]].mapv(c::<F>)).unwrap();
    let wider =
        DistributionBatch::from_probs(&array![[0.5, 0.25, 0.25], [1.0, 0.0, 0.0]].mapv(c::<F>))
            .unwrap();
    assert_eq!(
        expected_kl(&two, &one).unwrap_err(),
        Error::BatchSizeMismatch {
            what: "second batch",
            expected: 2,
            found: 1
        }
    );
    assert!(matches!(
        expected_kl(&two, &wider),
        Err(Error::VocabularyMismatch { .. })
    ));
    let reweighted = two
        .clone()
        .with_input_weights(&array![1.0, 3.0].mapv(c::<F>))
        .unwrap();
    let error = expected_kl(&two, &reweighted).unwrap_err();
    assert!(
        matches!(error, Error::InputWeightMismatch { row: 0, .. }),
        "{error:?}"
    );
    assert!(matches!(
        Divergence::JensenShannon.per_row(&two, &one),
        Err(Error::BatchSizeMismatch { .. })
    ));
    assert!(matches!(
        Divergence::JensenShannon.per_row(&two, &wider),
        Err(Error::VocabularyMismatch { .. })
    ));
}

fn repeat_copies_one_distribution<F: Real>() {
    let p = Distribution::from_probs(&values::<F>(&[0.25, 0.75])).unwrap();
    let batch = DistributionBatch::repeat(&p, 3).unwrap();
    for row in batch.rows() {
        assert_eq!(row.to_vec(), values::<F>(&[0.25, 0.75]));
    }
}

for_both_floats!(
    batch_keeps_rows_and_uniform_weights,
    batch_accepts_non_contiguous_views,
    batch_errors_name_row_and_token,
    batch_rejects_empty_shapes,
    batch_tolerance_is_checked,
    batch_from_logits_reports_row,
    from_rows_rejects_mixed_vocabularies,
    input_weights_are_normalized_and_checked,
    expected_kl_weights_inputs,
    zero_weight_inputs_do_not_count,
    expected_rejects_mismatched_batches,
    repeat_copies_one_distribution,
);

#[test]
fn f32_batches_work() {
    let batch =
        DistributionBatch::<f32>::from_logits(&array![[0.0_f32, 0.0], [1e30, 0.0]], 1.0).unwrap();
    assert_eq!(batch.row(1).unwrap().to_vec(), vec![1.0_f32, 0.0]);
    let d = expected_kl(&batch, &batch).unwrap();
    assert_eq!(d, 0.0_f32);
}
