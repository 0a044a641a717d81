//! Backs the "Guarantees" error table for distributions, batches, divergences and kernels.
//!
//! Every test builds, for one row of the table, an input for each listed
//! variant and checks that the function returns it, in `f32` and `f64`.

#[macro_use]
mod error_table_support;

use error_table_support::{batch, c, dist, in_row, matrix, unwrap_err, values};
use metadistill::divergence::{self, expected_kl};
use metadistill::kernels::{self, KernelFloat};
use metadistill::{Distribution, DistributionBatch, Divergence, Error, Real, Result};
use ndarray::{Array1, Array2};

/// A test for the kind of error a case must return.
type IsExpected = fn(&Error) -> bool;

fn distribution_from_probs<F: Real>() {
    let empty: &[F] = &[];
    assert_err!(Distribution::from_probs(empty), Error::Empty { .. });
    let nan = values::<F>(&[0.5, f64::NAN]);
    assert_err!(
        Distribution::from_probs(nan.as_slice()),
        Error::NonFiniteProbability { index: 1, .. }
    );
    let negative = values::<F>(&[1.5, -0.5]);
    assert_err!(
        Distribution::from_probs(negative.as_slice()),
        Error::NegativeProbability { index: 1, .. }
    );
    let unnormalized = values::<F>(&[0.5, 0.6]);
    assert_err!(
        Distribution::from_probs(unnormalized.as_slice()),
        Error::NotNormalized { .. }
    );
    let half = values::<F>(&[0.5, 0.5]);
    assert_err!(
        Distribution::from_probs_with_tolerance(half.as_slice(), c(-1.0)),
        Error::InvalidTolerance { .. }
    );
}

fn distribution_from_weights<F: Real>() {
    let empty: &[F] = &[];
    assert_err!(Distribution::from_weights(empty), Error::Empty { .. });
    let negative = values::<F>(&[1.0, -1.0]);
    assert_err!(
        Distribution::from_weights(negative.as_slice()),
        Error::InvalidWeight { index: 1, .. }
    );
    let zeros = values::<F>(&[0.0, 0.0]);
    assert_err!(
        Distribution::from_weights(zeros.as_slice()),
        Error::AllZeroWeights { count: 2, .. }
    );
}

fn distribution_from_logits<F: Real>() {
    let logits = values::<F>(&[0.0, 1.0]);
    assert_err!(
        Distribution::from_logits(logits.as_slice(), F::zero()),
        Error::InvalidTemperature { .. }
    );
    let empty: &[F] = &[];
    assert_err!(
        Distribution::from_logits(empty, F::one()),
        Error::Empty { .. }
    );
    let nan = values::<F>(&[0.0, f64::NAN]);
    assert_err!(
        Distribution::from_logits(nan.as_slice(), F::one()),
        Error::InvalidLogit { index: 1, .. }
    );
    let masked = [F::neg_infinity(), F::neg_infinity()];
    assert_err!(
        Distribution::from_logits(&masked, F::one()),
        Error::AllMasked { count: 2 }
    );
}

fn distribution_uniform_and_cross_entropy<F: Real>() {
    assert_err!(Distribution::<F>::uniform(0), Error::Empty { .. });
    assert_err!(
        Distribution::<F>::uniform(usize::MAX),
        Error::InvalidParameter { .. }
    );

    let p = dist::<F>(&[0.5, 0.5]);
    let q = dist::<F>(&[0.2, 0.3, 0.5]);
    assert_err!(p.cross_entropy(&q), Error::VocabularyMismatch { .. });
    assert_err!(p.cross_entropy_bits(&q), Error::VocabularyMismatch { .. });
}

fn batch_from_probs<F: Real>() {
    let no_rows = Array2::<F>::zeros((0, 2));
    assert_err!(DistributionBatch::from_probs(&no_rows), Error::Empty { .. });
    let cases: [(f64, IsExpected); 3] = [
        (f64::NAN, |e| {
            matches!(e, Error::NonFiniteProbability { .. })
        }),
        (-0.5, |e| matches!(e, Error::NegativeProbability { .. })),
        (0.7, |e| matches!(e, Error::NotNormalized { .. })),
    ];
    for (entry, is_expected) in cases {
        let probs = matrix::<F>(&[&[0.5, 0.5], &[entry, 0.5]]);
        let error = in_row(unwrap_err(DistributionBatch::from_probs(&probs)));
        assert!(is_expected(&error), "entry {entry} gave {error:?}");
    }
    let valid = matrix::<F>(&[&[0.5, 0.5]]);
    assert_err!(
        DistributionBatch::from_probs_with_tolerance(&valid, c(0.5)),
        Error::InvalidTolerance { .. }
    );
}

fn batch_from_logits<F: Real>() {
    let logits = matrix::<F>(&[&[0.0, 1.0]]);
    assert_err!(
        DistributionBatch::from_logits(&logits, c(f64::NAN)),
        Error::InvalidTemperature { .. }
    );
    let no_columns = Array2::<F>::zeros((2, 0));
    assert_err!(
        DistributionBatch::from_logits(&no_columns, F::one()),
        Error::Empty { .. }
    );
    let nan = matrix::<F>(&[&[0.0, 1.0], &[f64::NAN, 0.0]]);
    let error = in_row(unwrap_err(DistributionBatch::from_logits(&nan, F::one())));
    assert_is!(error, Error::InvalidLogit { index: 0, .. });
    let masked = matrix::<F>(&[&[0.0, 1.0], &[f64::NEG_INFINITY, f64::NEG_INFINITY]]);
    let error = in_row(unwrap_err(DistributionBatch::from_logits(
        &masked,
        F::one(),
    )));
    assert_is!(error, Error::AllMasked { count: 2 });
}

fn batch_from_rows_repeat_and_weights<F: Real>() {
    assert_err!(DistributionBatch::<F>::from_rows(&[]), Error::Empty { .. });
    let rows = [dist::<F>(&[0.5, 0.5]), dist::<F>(&[0.2, 0.3, 0.5])];
    let error = in_row(unwrap_err(DistributionBatch::from_rows(&rows)));
    assert_is!(error, Error::VocabularyMismatch { .. });

    let p = dist::<F>(&[0.5, 0.5]);
    assert_err!(DistributionBatch::repeat(&p, 0), Error::Empty { .. });
    assert_err!(
        DistributionBatch::repeat(&p, usize::MAX),
        Error::InvalidParameter { .. }
    );

    let two_rows = batch::<F>(&[&[0.5, 0.5], &[0.5, 0.5]]);
    let one = Array1::from(values::<F>(&[1.0]));
    assert_err!(
        two_rows.clone().with_input_weights(&one),
        Error::LengthMismatch { .. }
    );
    let negative = Array1::from(values::<F>(&[1.0, -1.0]));
    assert_err!(
        two_rows.clone().with_input_weights(&negative),
        Error::InvalidWeight { index: 1, .. }
    );
    let zeros = Array1::from(values::<F>(&[0.0, 0.0]));
    assert_err!(
        two_rows.with_input_weights(&zeros),
        Error::AllZeroWeights { .. }
    );
}

fn divergences_on_distributions<F: Real>() {
    assert_err!(Divergence::<F>::renyi(c(-1.0)), Error::InvalidOrder { .. });
    assert_err!(
        Divergence::<F>::renyi(c(f64::NAN)),
        Error::InvalidOrder { .. }
    );

    let p = dist::<F>(&[0.5, 0.5]);
    let q = dist::<F>(&[0.2, 0.3, 0.5]);
    assert_err!(
        Divergence::KullbackLeibler.compute(&p, &q),
        Error::VocabularyMismatch { .. }
    );
    let negative_order = Divergence::Renyi { order: c(-2.0) };
    assert_err!(negative_order.compute(&p, &p), Error::InvalidOrder { .. });

    type Pair<F> = fn(&Distribution<F>, &Distribution<F>) -> Result<F>;
    let functions: [(&str, Pair<F>); 9] = [
        ("kl", divergence::kl),
        ("reverse_kl", divergence::reverse_kl),
        ("js", divergence::js),
        ("js_distance", divergence::js_distance),
        ("total_variation", divergence::total_variation),
        ("hellinger", divergence::hellinger),
        ("squared_hellinger", divergence::squared_hellinger),
        ("chi_squared", divergence::chi_squared),
        ("max_log_ratio", divergence::max_log_ratio),
    ];
    for (name, function) in functions {
        let error = unwrap_err(function(&p, &q));
        assert!(
            matches!(error, Error::VocabularyMismatch { .. }),
            "{name} gave {error:?}"
        );
    }
    assert_err!(
        divergence::renyi(&p, &q, c(2.0)),
        Error::VocabularyMismatch { .. }
    );
    assert_err!(
        divergence::renyi(&p, &p, c(-2.0)),
        Error::InvalidOrder { .. }
    );
}

fn divergences_on_batches<F: Real>() {
    let two_rows = batch::<F>(&[&[0.5, 0.5], &[0.5, 0.5]]);
    let one_row = batch::<F>(&[&[0.5, 0.5]]);
    let wider = batch::<F>(&[&[0.2, 0.3, 0.5], &[0.2, 0.3, 0.5]]);
    let weighted = two_rows
        .clone()
        .with_input_weights(&Array1::from(values::<F>(&[3.0, 1.0])))
        .unwrap();
    let negative_order = Divergence::Renyi { order: c(-2.0) };

    let kl = Divergence::<F>::KullbackLeibler;
    assert_err!(
        kl.per_row(&two_rows, &one_row),
        Error::BatchSizeMismatch { .. }
    );
    assert_err!(
        kl.per_row(&two_rows, &wider),
        Error::VocabularyMismatch { .. }
    );
    assert_err!(
        negative_order.per_row(&two_rows, &two_rows),
        Error::InvalidOrder { .. }
    );

    assert_err!(
        kl.expected(&two_rows, &one_row),
        Error::BatchSizeMismatch { .. }
    );
    assert_err!(
        kl.expected(&two_rows, &wider),
        Error::VocabularyMismatch { .. }
    );
    assert_err!(
        kl.expected(&two_rows, &weighted),
        Error::InputWeightMismatch { row: 0, .. }
    );
    assert_err!(
        negative_order.expected(&two_rows, &two_rows),
        Error::InvalidOrder { .. }
    );

    assert_err!(
        expected_kl(&two_rows, &one_row),
        Error::BatchSizeMismatch { .. }
    );
    assert_err!(
        expected_kl(&two_rows, &wider),
        Error::VocabularyMismatch { .. }
    );
    assert_err!(
        expected_kl(&two_rows, &weighted),
        Error::InputWeightMismatch { .. }
    );
}

type PairKernel<F> =
    fn(ndarray::ArrayView2<F>, ndarray::ArrayView2<F>, ndarray::ArrayViewMut1<F>) -> Result<()>;

fn kernel_row_divergences<F: KernelFloat>() {
    let p = matrix::<F>(&[&[0.5, 0.5], &[0.5, 0.5]]);
    let one_row = matrix::<F>(&[&[0.5, 0.5]]);
    let wider = matrix::<F>(&[&[0.2, 0.3, 0.5], &[0.2, 0.3, 0.5]]);
    let bad_entry = matrix::<F>(&[&[0.5, 0.5], &[0.5, -0.5]]);
    let mut out = Array1::<F>::zeros(2);
    let mut short = Array1::<F>::zeros(1);

    let checked: [(&str, PairKernel<F>); 4] = [
        ("kl_rows", kernels::kl_rows),
        ("reverse_kl_rows", kernels::reverse_kl_rows),
        ("js_rows", kernels::js_rows),
        ("cross_entropy_rows", kernels::cross_entropy_rows),
    ];
    let dot: (&str, PairKernel<F>) = ("dot_rows", kernels::dot_rows);
    for (name, kernel) in checked.into_iter().chain([dot]) {
        let error = unwrap_err(kernel(p.view(), one_row.view(), out.view_mut()));
        assert!(
            matches!(error, Error::BatchSizeMismatch { .. }),
            "{name}: {error:?}"
        );
        let error = unwrap_err(kernel(p.view(), wider.view(), out.view_mut()));
        assert!(
            matches!(error, Error::VocabularyMismatch { .. }),
            "{name}: {error:?}"
        );
        let error = unwrap_err(kernel(p.view(), p.view(), short.view_mut()));
        assert!(
            matches!(error, Error::LengthMismatch { .. }),
            "{name}: {error:?}"
        );
    }
    for (name, kernel) in checked {
        let error = unwrap_err(kernel(p.view(), bad_entry.view(), out.view_mut()));
        assert!(
            matches!(
                error,
                Error::InvalidEntry {
                    row: 1,
                    index: 1,
                    ..
                }
            ),
            "{name}: {error:?}"
        );
    }

    assert_err!(
        kernels::entropy_rows(p.view(), short.view_mut()),
        Error::LengthMismatch { .. }
    );
    assert_err!(
        kernels::entropy_rows(bad_entry.view(), out.view_mut()),
        Error::InvalidEntry { row: 1, .. }
    );
}

fn kernel_logits<F: KernelFloat>() {
    let teacher = matrix::<F>(&[&[0.0, 1.0], &[2.0, 0.0]]);
    let one_row = matrix::<F>(&[&[0.0, 1.0]]);
    let wider = matrix::<F>(&[&[0.0, 1.0, 2.0], &[0.0, 1.0, 2.0]]);
    let nan = matrix::<F>(&[&[0.0, 1.0], &[f64::NAN, 0.0]]);
    let masked = matrix::<F>(&[&[0.0, 1.0], &[f64::NEG_INFINITY, f64::NEG_INFINITY]]);
    let mut out = Array1::<F>::zeros(2);
    let mut short = Array1::<F>::zeros(1);
    let one = F::one();

    assert_err!(
        kernels::kl_from_logits_rows(teacher.view(), teacher.view(), F::zero(), out.view_mut()),
        Error::InvalidTemperature { .. }
    );
    assert_err!(
        kernels::kl_from_logits_rows(teacher.view(), one_row.view(), one, out.view_mut()),
        Error::BatchSizeMismatch { .. }
    );
    assert_err!(
        kernels::kl_from_logits_rows(teacher.view(), wider.view(), one, out.view_mut()),
        Error::VocabularyMismatch { .. }
    );
    assert_err!(
        kernels::kl_from_logits_rows(teacher.view(), teacher.view(), one, short.view_mut()),
        Error::LengthMismatch { .. }
    );
    assert_err!(
        kernels::kl_from_logits_rows(teacher.view(), nan.view(), one, out.view_mut()),
        Error::InvalidEntry {
            row: 1,
            index: 0,
            ..
        }
    );
    let error = unwrap_err(kernels::kl_from_logits_rows(
        masked.view(),
        teacher.view(),
        one,
        out.view_mut(),
    ));
    assert_is!(error, Error::InRow { row: 1, .. });
    assert_is!(in_row(error), Error::AllMasked { count: 2 });
}

fn kernel_meta_teachers<F: KernelFloat>() {
    let teacher = matrix::<F>(&[&[0.5, 0.5], &[0.5, 0.5]]);
    let one_row = matrix::<F>(&[&[0.5, 0.5]]);
    let wider = matrix::<F>(&[&[0.2, 0.3, 0.5], &[0.2, 0.3, 0.5]]);
    let mut out = Array2::<F>::zeros((2, 2));
    let half = c::<F>(0.5);

    assert_err!(
        kernels::mixture_into(c(1.5), teacher.view(), teacher.view(), out.view_mut()),
        Error::InvalidAnchorWeight { .. }
    );
    assert_err!(
        kernels::mixture_into(half, teacher.view(), one_row.view(), out.view_mut()),
        Error::BatchSizeMismatch { .. }
    );
    assert_err!(
        kernels::mixture_into(half, teacher.view(), wider.view(), out.view_mut()),
        Error::VocabularyMismatch { .. }
    );

    let pair = [teacher.view(), teacher.view()];
    let weights = [half, half];
    assert_err!(
        kernels::geometric_pool_into(&[], &[], out.view_mut()),
        Error::Empty { .. }
    );
    assert_err!(
        kernels::geometric_pool_into(&pair, &[half], out.view_mut()),
        Error::LengthMismatch { .. }
    );
    assert_err!(
        kernels::geometric_pool_into(&pair, &[half, c(-1.0)], out.view_mut()),
        Error::InvalidWeight { index: 1, .. }
    );
    assert_err!(
        kernels::geometric_pool_into(&pair, &[F::zero(), F::zero()], out.view_mut()),
        Error::AllZeroWeights { .. }
    );
    let short_pair = [teacher.view(), one_row.view()];
    assert_err!(
        kernels::geometric_pool_into(&short_pair, &weights, out.view_mut()),
        Error::BatchSizeMismatch { .. }
    );
    let wide_pair = [teacher.view(), wider.view()];
    assert_err!(
        kernels::geometric_pool_into(&wide_pair, &weights, out.view_mut()),
        Error::VocabularyMismatch { .. }
    );
    let bad = matrix::<F>(&[&[0.5, 0.5], &[f64::NAN, 0.5]]);
    let bad_pair = [teacher.view(), bad.view()];
    assert_err!(
        kernels::geometric_pool_into(&bad_pair, &weights, out.view_mut()),
        Error::InvalidEntry { row: 1, .. }
    );
    let first = matrix::<F>(&[&[1.0, 0.0], &[0.5, 0.5]]);
    let second = matrix::<F>(&[&[0.0, 1.0], &[0.5, 0.5]]);
    let disjoint = [first.view(), second.view()];
    assert_err!(
        kernels::geometric_pool_into(&disjoint, &weights, out.view_mut()),
        Error::EmptySupport { row: 0 }
    );
}

for_both_floats!(
    distribution_from_probs,
    distribution_from_weights,
    distribution_from_logits,
    distribution_uniform_and_cross_entropy,
    batch_from_probs,
    batch_from_logits,
    batch_from_rows_repeat_and_weights,
    divergences_on_distributions,
    divergences_on_batches,
    kernel_row_divergences,
    kernel_logits,
    kernel_meta_teachers,
);

/// The NumPy readers, on files written to the temporary directory.
#[cfg(feature = "npy")]
mod npy_files {
    use super::*;
    use metadistill::npy;
    use ndarray_npy::write_npy;
    use std::path::PathBuf;

    /// Returns a path in the temporary directory unique to this test process.
    fn temporary(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("metadistill-{}-{name}.npy", std::process::id()))
    }

    #[test]
    fn readers_return_listed_errors() {
        let missing = temporary("missing");
        assert_err!(npy::read_probs::<f64>(&missing), Error::NpyRead { .. });
        assert_err!(
            npy::read_logits::<f64>(&missing, 1.0),
            Error::NpyRead { .. }
        );
        assert_err!(npy::read_features::<f64>(&missing), Error::NpyRead { .. });
        assert_err!(npy::read_labels(&missing), Error::NpyRead { .. });

        let unnormalized = temporary("unnormalized");
        write_npy(&unnormalized, &matrix::<f64>(&[&[0.5, 0.6]])).unwrap();
        let error = in_row(unwrap_err(npy::read_probs::<f64>(&unnormalized)));
        assert_is!(error, Error::NotNormalized { .. });
        assert_err!(
            npy::read_logits::<f64>(&unnormalized, 0.0),
            Error::InvalidTemperature { .. }
        );

        let nan = temporary("nan");
        write_npy(&nan, &matrix::<f64>(&[&[0.5, f64::NAN]])).unwrap();
        let error = in_row(unwrap_err(npy::read_logits::<f64>(&nan, 1.0)));
        assert_is!(error, Error::InvalidLogit { index: 1, .. });
        assert_err!(
            npy::read_features::<f64>(&nan),
            Error::NonFiniteFeature {
                row: 0,
                column: 1,
                ..
            }
        );

        let negative = temporary("negative");
        write_npy(&negative, &Array1::from(vec![1_i64, -2])).unwrap();
        let message = unwrap_err(npy::read_labels(&negative)).to_string();
        assert!(message.contains("label at index 1 is -2"), "{message}");

        for path in [unnormalized, nan, negative] {
            std::fs::remove_file(path).unwrap();
        }
    }
}
