//! Batches of distributions: row validation, input weights and batched divergences.

use approx::assert_relative_eq;
use metadistill::divergence::{expected_kl, kl};
use metadistill::{Distribution, DistributionBatch, Divergence, Error};
use ndarray::{Array2, array};

#[test]
fn batch_keeps_rows_and_uniform_weights() {
    let batch = DistributionBatch::from_probs(&array![[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]]).unwrap();
    assert_eq!(batch.n_inputs(), 2);
    assert_eq!(batch.vocab_size(), 3);
    assert_eq!(batch.input_weights().to_vec(), vec![0.5, 0.5]);
    assert_eq!(batch.row(1).unwrap().to_vec(), vec![0.2, 0.5, 0.3]);
    assert!(batch.row(2).is_none());
    assert_eq!(batch.token(0).unwrap().to_vec(), vec![0.6, 0.2]);
    assert!(batch.token(3).is_none());
    assert_eq!(batch.rows().len(), 2);
    let second = batch.distribution(1).unwrap();
    assert_eq!(second.as_slice(), &[0.2, 0.5, 0.3]);
}

#[test]
fn batch_accepts_non_contiguous_views() {
    let wide = array![[0.6, 9.0, 0.4], [0.1, 9.0, 0.9]];
    let columns = wide.slice(ndarray::s![.., ..;2]);
    let batch = DistributionBatch::from_probs(columns).unwrap();
    assert_eq!(batch.row(1).unwrap().to_vec(), vec![0.1, 0.9]);
    let transposed = array![[0.6, 0.1], [0.4, 0.9]];
    let batch = DistributionBatch::from_probs(transposed.t()).unwrap();
    assert_eq!(batch.row(0).unwrap().to_vec(), vec![0.6, 0.4]);
}

#[test]
fn batch_errors_name_row_and_token() {
    let error = DistributionBatch::from_probs(&array![[0.5, 0.5], [0.5, f64::NAN]]).unwrap_err();
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

    let unnormalized = DistributionBatch::from_probs(&array![[0.9, 0.2]]).unwrap_err();
    assert!(matches!(unnormalized, Error::InRow { row: 0, .. }));
}

#[test]
fn batch_rejects_empty_shapes() {
    let no_rows = Array2::<f64>::zeros((0, 3));
    assert!(matches!(
        DistributionBatch::from_probs(&no_rows),
        Err(Error::Empty { .. })
    ));
    let no_columns = Array2::<f64>::zeros((2, 0));
    assert!(matches!(
        DistributionBatch::from_probs(&no_columns),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        DistributionBatch::<f64>::from_rows(&[]),
        Err(Error::Empty { .. })
    ));
    let p = Distribution::from_probs(&[1.0]).unwrap();
    assert!(matches!(
        DistributionBatch::repeat(&p, 0),
        Err(Error::Empty { .. })
    ));
}

#[test]
fn batch_tolerance_is_checked() {
    let rounded = array![[0.333, 0.333, 0.333]];
    assert!(DistributionBatch::from_probs(&rounded).is_err());
    assert!(DistributionBatch::from_probs_with_tolerance(&rounded, 1e-2).is_ok());
    assert!(matches!(
        DistributionBatch::from_probs_with_tolerance(&rounded, -1.0),
        Err(Error::InvalidTolerance { .. })
    ));
}

#[test]
fn batch_from_logits_reports_row() {
    let logits = array![[0.0, 1.0], [f64::NEG_INFINITY, f64::NEG_INFINITY]];
    let error = DistributionBatch::from_logits(&logits, 1.0).unwrap_err();
    assert_eq!(error, Error::AllMasked { count: 2 }.clone_in_row(1));
    let temperature = DistributionBatch::from_logits(&logits, 0.0).unwrap_err();
    assert!(matches!(temperature, Error::InvalidTemperature { .. }));
    let bad_logit = DistributionBatch::from_logits(&array![[0.0, f64::NAN]], 1.0).unwrap_err();
    assert!(matches!(bad_logit, Error::InRow { row: 0, .. }));
}

/// Builds the error `InRow` the way the crate reports it, for comparisons.
trait InRowExt {
    fn clone_in_row(self, row: usize) -> Error;
}

impl InRowExt for Error {
    fn clone_in_row(self, row: usize) -> Error {
        Error::InRow {
            row,
            source: Box::new(self),
        }
    }
}

#[test]
fn from_rows_rejects_mixed_vocabularies() {
    let rows = [
        Distribution::from_probs(&[0.5, 0.5]).unwrap(),
        Distribution::from_probs(&[1.0]).unwrap(),
    ];
    let error = DistributionBatch::from_rows(&rows).unwrap_err();
    assert!(matches!(error, Error::InRow { row: 1, .. }));
}

#[test]
fn input_weights_are_normalized_and_checked() {
    let batch = DistributionBatch::from_probs(&array![[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]).unwrap();
    let weighted = batch
        .clone()
        .with_input_weights(&array![2.0, 0.0, 6.0])
        .unwrap();
    assert_eq!(weighted.input_weights().to_vec(), vec![0.25, 0.0, 0.75]);

    let short = batch.clone().with_input_weights(&array![1.0]).unwrap_err();
    assert_eq!(
        short,
        Error::LengthMismatch {
            what: "input weights",
            expected: 3,
            found: 1
        }
    );
    let negative = batch.clone().with_input_weights(&array![1.0, -1.0, 1.0]);
    assert!(matches!(
        negative,
        Err(Error::InvalidWeight { index: 1, .. })
    ));
    let zeros = batch
        .with_input_weights(&array![0.0, 0.0, 0.0])
        .unwrap_err();
    assert_eq!(
        zeros,
        Error::AllZeroWeights {
            what: "input weight",
            count: 3
        }
    );
}

#[test]
fn expected_kl_weights_inputs() {
    let teacher = DistributionBatch::from_probs(&array![[0.6, 0.3, 0.1], [0.5, 0.5, 0.0]])
        .unwrap()
        .with_input_weights(&array![1.0, 3.0])
        .unwrap();
    let student = DistributionBatch::from_probs(&array![[0.2, 0.5, 0.3], [0.25, 0.25, 0.5]])
        .unwrap()
        .with_input_weights(&array![1.0, 3.0])
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
    assert_relative_eq!(second, 2.0_f64.ln(), max_relative = 1e-15);
    let expected = 0.25 * first + 0.75 * second;
    assert_relative_eq!(
        expected_kl(&teacher, &student).unwrap(),
        expected,
        max_relative = 1e-15
    );
    let per_row = Divergence::KullbackLeibler
        .per_row(&teacher, &student)
        .unwrap();
    assert_eq!(per_row.to_vec(), vec![first, second]);
}

#[test]
fn zero_weight_inputs_do_not_count() {
    let teacher = DistributionBatch::from_probs(&array![[1.0, 0.0], [0.5, 0.5]])
        .unwrap()
        .with_input_weights(&array![0.0, 1.0])
        .unwrap();
    let student = DistributionBatch::from_probs(&array![[0.0, 1.0], [0.5, 0.5]])
        .unwrap()
        .with_input_weights(&array![0.0, 1.0])
        .unwrap();
    assert_eq!(expected_kl(&teacher, &student).unwrap(), 0.0);
    let per_row = Divergence::KullbackLeibler
        .per_row(&teacher, &student)
        .unwrap();
    assert_eq!(per_row[0], f64::INFINITY);
}

#[test]
fn expected_rejects_mismatched_batches() {
    let two = DistributionBatch::from_probs(&array![[0.5, 0.5], [0.5, 0.5]]).unwrap();
    let one = DistributionBatch::from_probs(&array![[0.5, 0.5]]).unwrap();
    let wider = DistributionBatch::from_probs(&array![[0.5, 0.25, 0.25], [1.0, 0.0, 0.0]]).unwrap();
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
    let reweighted = two.clone().with_input_weights(&array![1.0, 3.0]).unwrap();
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

#[test]
fn repeat_copies_one_distribution() {
    let p = Distribution::from_probs(&[0.25, 0.75]).unwrap();
    let batch = DistributionBatch::repeat(&p, 3).unwrap();
    for row in batch.rows() {
        assert_eq!(row.to_vec(), vec![0.25, 0.75]);
    }
}

#[test]
fn f32_batches_work() {
    let batch =
        DistributionBatch::<f32>::from_logits(&array![[0.0_f32, 0.0], [1e30, 0.0]], 1.0).unwrap();
    assert_eq!(batch.row(1).unwrap().to_vec(), vec![1.0_f32, 0.0]);
    let d = expected_kl(&batch, &batch).unwrap();
    assert_eq!(d, 0.0_f32);
}
