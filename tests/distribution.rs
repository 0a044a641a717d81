//! Construction of single distributions: valid inputs, every error, f32 and f64.

use approx::{assert_abs_diff_eq, assert_relative_eq, assert_ulps_eq};
use metadistill::{Distribution, Error, default_sum_tolerance};

#[test]
fn from_probs_stores_values_unchanged() {
    let values = [0.6, 0.3, 0.1];
    let p = Distribution::from_probs(&values).unwrap();
    assert_eq!(p.probs().to_vec(), values.to_vec());
    assert_eq!(p.as_slice(), &values);
    assert_eq!(p.len(), 3);
    assert!(!p.is_empty());
    assert_eq!(p.log_probs()[1], 0.3_f64.ln());
}

#[test]
fn from_probs_rejects_empty() {
    let empty: [f64; 0] = [];
    let error = Distribution::from_probs(&empty).unwrap_err();
    assert_eq!(
        error,
        Error::Empty {
            what: "probability vector"
        }
    );
}

#[test]
fn from_probs_rejects_nan_with_index() {
    let error = Distribution::from_probs(&[0.5, f64::NAN, 0.5]).unwrap_err();
    assert!(matches!(
        error,
        Error::NonFiniteProbability { index: 1, value } if value.is_nan()
    ));
    assert!(error.to_string().contains("index 1"));
}

#[test]
fn from_probs_rejects_infinity() {
    let error = Distribution::from_probs(&[f64::INFINITY, 0.0]).unwrap_err();
    assert_eq!(
        error,
        Error::NonFiniteProbability {
            index: 0,
            value: f64::INFINITY
        }
    );
}

#[test]
fn from_probs_rejects_negative_with_value() {
    let error = Distribution::from_probs(&[0.7, 0.4, -0.1]).unwrap_err();
    assert_eq!(
        error,
        Error::NegativeProbability {
            index: 2,
            value: -0.1
        }
    );
    assert_eq!(
        error.to_string(),
        "probability at index 2 is -0.1: probabilities must be non-negative"
    );
}

#[test]
fn from_probs_rejects_unnormalized_without_renormalizing() {
    let error = Distribution::from_probs(&[0.5, 0.6]).unwrap_err();
    let Error::NotNormalized { sum, tolerance } = error else {
        panic!("expected NotNormalized, got {error:?}");
    };
    assert_abs_diff_eq!(sum, 1.1, epsilon = 1e-15);
    assert_eq!(tolerance, default_sum_tolerance::<f64>(2));
}

#[test]
fn from_probs_accepts_rounding_within_tolerance() {
    // 0.1 + 0.2 + 0.7 is 1 - 1.1e-16 in f64.
    assert!(Distribution::from_probs(&[0.1, 0.2, 0.7]).is_ok());
    // One part in 1e12 is far beyond rounding and must be rejected.
    assert!(Distribution::from_probs(&[0.5, 0.5 + 1e-12]).is_err());
}

#[test]
fn custom_tolerance_accepts_and_rejects() {
    let rounded = [0.333, 0.333, 0.333];
    assert!(Distribution::from_probs(&rounded).is_err());
    assert!(Distribution::from_probs_with_tolerance(&rounded, 2e-3).is_ok());
    assert!(Distribution::from_probs_with_tolerance(&rounded, 5e-4).is_err());
    for bad in [-1e-3, f64::NAN, f64::INFINITY, 0.1 + 1e-9, 10.0] {
        let error = Distribution::from_probs_with_tolerance(&rounded, bad).unwrap_err();
        assert!(matches!(error, Error::InvalidTolerance { .. }), "{error:?}");
    }
}

#[test]
fn from_weights_normalizes_explicitly() {
    let p = Distribution::from_weights(&[2.0, 6.0, 0.0]).unwrap();
    assert_ulps_eq!(p.probs()[0], 0.25);
    assert_ulps_eq!(p.probs()[1], 0.75);
    assert_eq!(p.probs()[2], 0.0);
    assert!(!p.is_strictly_positive());
}

#[test]
fn from_weights_survives_huge_weights() {
    let p = Distribution::from_weights(&[f64::MAX, f64::MAX]).unwrap();
    assert_eq!(p.probs().to_vec(), vec![0.5, 0.5]);
}

#[test]
fn from_weights_rejects_bad_weights() {
    let zeros = Distribution::from_weights(&[0.0, 0.0]).unwrap_err();
    assert_eq!(
        zeros,
        Error::AllZeroWeights {
            what: "token weight",
            count: 2
        }
    );
    let negative = Distribution::from_weights(&[1.0, -2.0]).unwrap_err();
    assert!(matches!(negative, Error::InvalidWeight { index: 1, value, .. } if value == -2.0));
    let nan = Distribution::from_weights(&[f64::NAN]).unwrap_err();
    assert!(matches!(nan, Error::InvalidWeight { index: 0, .. }));
    let infinite = Distribution::from_weights(&[1.0, f64::INFINITY]).unwrap_err();
    assert!(matches!(infinite, Error::InvalidWeight { index: 1, .. }));
    let empty: [f64; 0] = [];
    assert!(matches!(
        Distribution::from_weights(&empty),
        Err(Error::Empty { .. })
    ));
}

#[test]
fn from_logits_matches_softmax() {
    let logits = [1.0, 2.0, 3.0];
    let p = Distribution::from_logits(&logits, 1.0).unwrap();
    let normalizer: f64 = logits.iter().map(|l: &f64| l.exp()).sum();
    for (i, &l) in logits.iter().enumerate() {
        assert_relative_eq!(p.probs()[i], l.exp() / normalizer, max_relative = 1e-15);
        assert_relative_eq!(p.log_probs()[i], l - normalizer.ln(), max_relative = 1e-15);
    }
}

#[test]
fn from_logits_applies_temperature() {
    let hot = Distribution::from_logits(&[0.0, 10.0], 10.0).unwrap();
    let plain = Distribution::from_logits(&[0.0, 1.0], 1.0).unwrap();
    assert_relative_eq!(hot, plain, max_relative = 1e-15);
}

#[test]
fn from_logits_handles_huge_magnitudes() {
    let p = Distribution::from_logits(&[1e300, 1e300 - 1e285, -1e300], 1.0).unwrap();
    assert_eq!(p.probs().to_vec(), vec![1.0, 0.0, 0.0]);
    let tie = Distribution::from_logits(&[-1e300, -1e300], 1.0).unwrap();
    assert_eq!(tie.probs().to_vec(), vec![0.5, 0.5]);
    // The difference of extreme logits overflows; a large temperature still resolves it.
    let extreme = Distribution::from_logits(&[f64::MAX, -f64::MAX], 1e300).unwrap();
    assert_eq!(extreme.probs()[1], 0.0);
    assert!(extreme.log_probs()[1].is_finite());
    assert_relative_eq!(
        extreme.log_probs()[1],
        -2.0 * (f64::MAX / 1e300),
        max_relative = 1e-12
    );
}

#[test]
fn from_logits_masks_negative_infinity() {
    let p = Distribution::from_logits(&[0.0, f64::NEG_INFINITY, 0.0], 1.0).unwrap();
    assert_eq!(p.probs().to_vec(), vec![0.5, 0.0, 0.5]);
    assert_eq!(p.log_probs()[1], f64::NEG_INFINITY);
}

#[test]
fn from_logits_keeps_log_probs_of_underflowed_tokens() {
    let p = Distribution::from_logits(&[0.0, -1000.0], 1.0).unwrap();
    assert_eq!(p.probs()[1], 0.0);
    assert_relative_eq!(p.log_probs()[1], -1000.0, max_relative = 1e-15);
}

#[test]
fn from_logits_rejects_bad_input() {
    let nan = Distribution::from_logits(&[0.0, f64::NAN], 1.0).unwrap_err();
    assert!(matches!(nan, Error::InvalidLogit { index: 1, value } if value.is_nan()));
    let plus_inf = Distribution::from_logits(&[f64::INFINITY, 0.0], 1.0).unwrap_err();
    assert_eq!(
        plus_inf,
        Error::InvalidLogit {
            index: 0,
            value: f64::INFINITY
        }
    );
    let masked =
        Distribution::from_logits(&[f64::NEG_INFINITY, f64::NEG_INFINITY], 1.0).unwrap_err();
    assert_eq!(masked, Error::AllMasked { count: 2 });
    let empty: [f64; 0] = [];
    assert!(matches!(
        Distribution::from_logits(&empty, 1.0),
        Err(Error::Empty { .. })
    ));
}

#[test]
fn from_logits_rejects_bad_temperature() {
    for temperature in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let error = Distribution::from_logits(&[0.0, 1.0], temperature).unwrap_err();
        assert!(
            matches!(error, Error::InvalidTemperature { .. }),
            "{temperature}: {error:?}"
        );
    }
}

#[test]
fn uniform_has_maximal_entropy() {
    let u = Distribution::<f64>::uniform(5).unwrap();
    assert_ulps_eq!(u.entropy(), 5.0_f64.ln());
    assert_ulps_eq!(u.entropy_bits(), 5.0_f64.log2());
    assert!(u.is_strictly_positive());
    assert_eq!(
        Distribution::<f64>::uniform(0).unwrap_err(),
        Error::Empty { what: "vocabulary" }
    );
}

#[test]
fn entropy_ignores_zero_tokens() {
    let p = Distribution::from_probs(&[0.5, 0.0, 0.5]).unwrap();
    assert_ulps_eq!(p.entropy(), 2.0_f64.ln());
    let point = Distribution::from_probs(&[1.0, 0.0]).unwrap();
    assert_eq!(point.entropy(), 0.0);
}

#[test]
fn cross_entropy_conventions() {
    let p = Distribution::from_probs(&[1.0, 0.0]).unwrap();
    let q = Distribution::from_probs(&[0.0, 1.0]).unwrap();
    assert_eq!(p.cross_entropy(&q).unwrap(), f64::INFINITY);
    assert_eq!(q.cross_entropy(&q).unwrap(), 0.0);
    let coin = Distribution::from_probs(&[0.5, 0.5]).unwrap();
    assert_ulps_eq!(coin.cross_entropy_bits(&coin).unwrap(), 1.0);
    let three = Distribution::<f64>::uniform(3).unwrap();
    assert_eq!(
        coin.cross_entropy(&three).unwrap_err(),
        Error::VocabularyMismatch {
            what: "second distribution",
            expected: 2,
            found: 3
        }
    );
}

#[test]
fn approx_traits_compare_probabilities() {
    let a = Distribution::from_probs(&[0.5, 0.5]).unwrap();
    let b = Distribution::from_probs(&[0.5 + 1e-12, 0.5 - 1e-12]).unwrap();
    assert_abs_diff_eq!(a, b, epsilon = 1e-11);
    assert!(!approx::abs_diff_eq!(a, b, epsilon = 1e-13));
    assert_relative_eq!(a, b, max_relative = 1e-11);
    assert!(!approx::ulps_eq!(a, b, max_ulps = 4));
    let longer = Distribution::<f64>::uniform(3).unwrap();
    assert!(!approx::abs_diff_eq!(a, longer, epsilon = 1.0));
}

#[test]
fn f32_distributions_work() {
    let p = Distribution::<f32>::from_probs(&[0.6_f32, 0.3, 0.1]).unwrap();
    assert_relative_eq!(p.entropy(), 0.897_945_7_f32, max_relative = 1e-6);
    let logits = Distribution::<f32>::from_logits(&[1e30_f32, 0.0], 1.0).unwrap();
    assert_eq!(logits.probs().to_vec(), vec![1.0_f32, 0.0]);
    let error = Distribution::<f32>::from_probs(&[0.5_f32, 0.6]).unwrap_err();
    assert!(matches!(error, Error::NotNormalized { .. }));
    // f32 softmax output of a large vocabulary passes the default tolerance.
    let big = Distribution::<f32>::from_logits(&vec![0.25_f32; 100_000], 1.0).unwrap();
    let resummed = Distribution::<f32>::from_probs(big.probs());
    assert!(resummed.is_ok(), "{resummed:?}");
}
