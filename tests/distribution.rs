//! Construction of single distributions: valid inputs, every error, f32 and f64.
//!
//! Each check is a generic function run for both float types. Tolerances are
//! multiples of the type's machine epsilon `ε` (2.2e-16 for f64, 1.19e-7 for
//! f32), with the reason next to each.

use approx::{assert_abs_diff_eq, assert_relative_eq, assert_ulps_eq};
use metadistill::{Distribution, Error, Real, default_sum_tolerance};

/// Converts an `f64` literal to `F`.
fn c<F: Real>(value: f64) -> F {
    F::from(value).unwrap()
}

/// Converts `F` to `f64`, which the error fields store.
fn wide<F: Real>(value: F) -> f64 {
    value.to_f64().unwrap()
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

fn from_probs_stores_values_unchanged<F: Real>() {
    let values = [c::<F>(0.6), c(0.3), c(0.1)];
    let p = Distribution::from_probs(&values).unwrap();
    assert_eq!(p.probs().to_vec(), values.to_vec());
    assert_eq!(p.as_slice(), &values);
    assert_eq!(p.len(), 3);
    assert!(!p.is_empty());
    assert_eq!(p.log_probs()[1], c::<F>(0.3).ln());
}

fn from_probs_rejects_empty<F: Real>() {
    let empty: [F; 0] = [];
    let error = Distribution::from_probs(&empty).unwrap_err();
    assert_eq!(
        error,
        Error::Empty {
            what: "probability vector"
        }
    );
}

fn from_probs_rejects_nan_with_index<F: Real>() {
    let error = Distribution::from_probs(&[c::<F>(0.5), F::nan(), c(0.5)]).unwrap_err();
    assert!(matches!(
        error,
        Error::NonFiniteProbability { index: 1, value } if value.is_nan()
    ));
    assert!(error.to_string().contains("index 1"));
}

fn from_probs_rejects_infinity<F: Real>() {
    let error = Distribution::from_probs(&[F::infinity(), F::zero()]).unwrap_err();
    assert_eq!(
        error,
        Error::NonFiniteProbability {
            index: 0,
            value: f64::INFINITY
        }
    );
}

fn from_probs_rejects_negative_with_value<F: Real>() {
    let negative = c::<F>(-0.1);
    let error = Distribution::from_probs(&[c(0.7), c(0.4), negative]).unwrap_err();
    assert_eq!(
        error,
        Error::NegativeProbability {
            index: 2,
            value: wide(negative)
        }
    );
    // -0.1 as an f32 is -0.10000000149011612 exactly, and the message prints the stored f64.
    assert_eq!(
        error.to_string(),
        format!(
            "probability at index 2 is {}: probabilities must be non-negative",
            wide(negative)
        )
    );
}

fn from_probs_rejects_unnormalized_without_renormalizing<F: Real>() {
    let error = Distribution::from_probs(&[c::<F>(0.5), c(0.6)]).unwrap_err();
    let Error::NotNormalized { sum, tolerance } = error else {
        panic!("expected NotNormalized, got {error:?}");
    };
    // 0.6 carries half an ulp of F, and the sum one more rounding: within 2 ε of 1.1.
    assert_abs_diff_eq!(sum, 1.1, epsilon = 2.0 * wide(F::epsilon()));
    assert_eq!(tolerance, wide(default_sum_tolerance::<F>(2)));
}

fn from_probs_accepts_rounding_within_tolerance<F: Real>() {
    // 0.1 + 0.2 + 0.7 is off 1 by about one ε after rounding each entry.
    assert!(Distribution::from_probs(&[c::<F>(0.1), c(0.2), c(0.7)]).is_ok());
    // The default tolerance for two entries is 64 ε √2 ≈ 91 ε; an offset of
    // 4096 ε is far beyond rounding and must be rejected.
    let off = c::<F>(0.5) + c::<F>(4096.0) * F::epsilon();
    assert!(Distribution::from_probs(&[c(0.5), off]).is_err());
}

fn custom_tolerance_accepts_and_rejects<F: Real>() {
    let rounded = [c::<F>(0.333), c(0.333), c(0.333)];
    assert!(Distribution::from_probs(&rounded).is_err());
    assert!(Distribution::from_probs_with_tolerance(&rounded, c(2e-3)).is_ok());
    assert!(Distribution::from_probs_with_tolerance(&rounded, c(5e-4)).is_err());
    // Four ulps above the largest accepted tolerance, 0.1 rounded to F.
    let above_max = c::<F>(0.1) * (F::one() + c::<F>(4.0) * F::epsilon());
    for bad in [c(-1e-3), F::nan(), F::infinity(), above_max, c(10.0)] {
        let error = Distribution::from_probs_with_tolerance(&rounded, bad).unwrap_err();
        assert!(matches!(error, Error::InvalidTolerance { .. }), "{error:?}");
    }
}

fn from_weights_normalizes_explicitly<F: Real>() {
    let p = Distribution::from_weights(&[c::<F>(2.0), c(6.0), F::zero()]).unwrap();
    assert_ulps_eq!(p.probs()[0], c(0.25));
    assert_ulps_eq!(p.probs()[1], c(0.75));
    assert_eq!(p.probs()[2], F::zero());
    assert!(!p.is_strictly_positive());
}

fn from_weights_survives_huge_weights<F: Real>() {
    let p = Distribution::from_weights(&[F::max_value(), F::max_value()]).unwrap();
    assert_eq!(p.probs().to_vec(), vec![c::<F>(0.5), c(0.5)]);
}

fn from_weights_rejects_bad_weights<F: Real>() {
    let zeros = Distribution::from_weights(&[F::zero(), F::zero()]).unwrap_err();
    assert_eq!(
        zeros,
        Error::AllZeroWeights {
            what: "token weight",
            count: 2
        }
    );
    let negative = Distribution::from_weights(&[F::one(), c(-2.0)]).unwrap_err();
    assert!(matches!(negative, Error::InvalidWeight { index: 1, value, .. } if value == -2.0));
    let nan = Distribution::from_weights(&[F::nan()]).unwrap_err();
    assert!(matches!(nan, Error::InvalidWeight { index: 0, .. }));
    let infinite = Distribution::from_weights(&[F::one(), F::infinity()]).unwrap_err();
    assert!(matches!(infinite, Error::InvalidWeight { index: 1, .. }));
    let empty: [F; 0] = [];
    assert!(matches!(
        Distribution::from_weights(&empty),
        Err(Error::Empty { .. })
    ));
}

fn from_logits_matches_softmax<F: Real>() {
    let logits = [F::one(), c(2.0), c(3.0)];
    let p = Distribution::from_logits(&logits, F::one()).unwrap();
    let normalizer: F = logits.iter().map(|l| l.exp()).sum();
    // Both sides round three exponentials, a sum and a division or a
    // logarithm: a few ε each, so 4.5 ε (1e-15 in f64).
    let tolerance = c::<F>(4.5) * F::epsilon();
    for (i, &l) in logits.iter().enumerate() {
        assert_relative_eq!(p.probs()[i], l.exp() / normalizer, max_relative = tolerance);
        assert_relative_eq!(
            p.log_probs()[i],
            l - normalizer.ln(),
            max_relative = tolerance
        );
    }
}

fn from_logits_applies_temperature<F: Real>() {
    let hot = Distribution::from_logits(&[F::zero(), c(10.0)], c(10.0)).unwrap();
    let plain = Distribution::from_logits(&[F::zero(), F::one()], F::one()).unwrap();
    // 10 / 10 is exact, so the two differ only by the rounding of one exponential: 4.5 ε.
    assert_relative_eq!(hot, plain, max_relative = c::<F>(4.5) * F::epsilon());
}

fn from_logits_handles_huge_magnitudes<F: Real>() {
    // 1e300 in f64 and 1e36 in f32: the largest logit magnitudes whose
    // ratio to the type's MAX still drives the smaller softmax entry below
    // the smallest float (exp(-2 MAX / big) is exp(-3.6e8) and exp(-680)).
    let big = if F::max_value() > c(1e300) {
        c::<F>(1e300)
    } else {
        c::<F>(1e36)
    };
    let p = Distribution::from_logits(&[big, big - big * c(1e-6), -big], F::one()).unwrap();
    assert_eq!(p.probs().to_vec(), vec![F::one(), F::zero(), F::zero()]);
    let tie = Distribution::from_logits(&[-big, -big], F::one()).unwrap();
    assert_eq!(tie.probs().to_vec(), vec![c::<F>(0.5), c(0.5)]);
    // The difference of extreme logits overflows; a large temperature still resolves it.
    let extreme = Distribution::from_logits(&[F::max_value(), -F::max_value()], big).unwrap();
    assert_eq!(extreme.probs()[1], F::zero());
    assert!(extreme.log_probs()[1].is_finite());
    // Two divisions and a subtraction: a few ε; 1e-12 in f64 as before.
    let tolerance = c::<F>(1e-12).max(c::<F>(4.0) * F::epsilon());
    assert_relative_eq!(
        extreme.log_probs()[1],
        c::<F>(-2.0) * (F::max_value() / big),
        max_relative = tolerance
    );
}

fn from_logits_masks_negative_infinity<F: Real>() {
    let p =
        Distribution::from_logits(&[F::zero(), F::neg_infinity(), F::zero()], F::one()).unwrap();
    assert_eq!(p.probs().to_vec(), vec![c::<F>(0.5), F::zero(), c(0.5)]);
    assert_eq!(p.log_probs()[1], F::neg_infinity());
}

fn from_logits_keeps_log_probs_of_underflowed_tokens<F: Real>() {
    let p = Distribution::from_logits(&[F::zero(), c(-1000.0)], F::one()).unwrap();
    assert_eq!(p.probs()[1], F::zero());
    // The normalizer is ln(1 + e^-1000), which rounds to 0: the log-probability is exact.
    assert_relative_eq!(p.log_probs()[1], c(-1000.0), max_relative = F::epsilon());
}

fn from_logits_rejects_bad_input<F: Real>() {
    let nan = Distribution::from_logits(&[F::zero(), F::nan()], F::one()).unwrap_err();
    assert!(matches!(nan, Error::InvalidLogit { index: 1, value } if value.is_nan()));
    let plus_inf = Distribution::from_logits(&[F::infinity(), F::zero()], F::one()).unwrap_err();
    assert_eq!(
        plus_inf,
        Error::InvalidLogit {
            index: 0,
            value: f64::INFINITY
        }
    );
    let masked =
        Distribution::from_logits(&[F::neg_infinity(), F::neg_infinity()], F::one()).unwrap_err();
    assert_eq!(masked, Error::AllMasked { count: 2 });
    let empty: [F; 0] = [];
    assert!(matches!(
        Distribution::from_logits(&empty, F::one()),
        Err(Error::Empty { .. })
    ));
}

fn from_logits_rejects_bad_temperature<F: Real>() {
    for temperature in [F::zero(), c(-1.0), F::nan(), F::infinity()] {
        let error = Distribution::from_logits(&[F::zero(), F::one()], temperature).unwrap_err();
        assert!(
            matches!(error, Error::InvalidTemperature { .. }),
            "{temperature}: {error:?}"
        );
    }
}

fn uniform_has_maximal_entropy<F: Real>() {
    let u = Distribution::<F>::uniform(5).unwrap();
    let five = c::<F>(5.0);
    assert_ulps_eq!(u.entropy(), five.ln());
    assert_ulps_eq!(u.entropy_bits(), five.log2());
    assert!(u.is_strictly_positive());
    assert_eq!(
        Distribution::<F>::uniform(0).unwrap_err(),
        Error::Empty { what: "vocabulary" }
    );
}

fn entropy_ignores_zero_tokens<F: Real>() {
    let half = c::<F>(0.5);
    let p = Distribution::from_probs(&[half, F::zero(), half]).unwrap();
    assert_ulps_eq!(p.entropy(), c::<F>(2.0).ln());
    let point = Distribution::from_probs(&[F::one(), F::zero()]).unwrap();
    assert_eq!(point.entropy(), F::zero());
}

fn cross_entropy_conventions<F: Real>() {
    let p = Distribution::from_probs(&[F::one(), F::zero()]).unwrap();
    let q = Distribution::from_probs(&[F::zero(), F::one()]).unwrap();
    assert_eq!(p.cross_entropy(&q).unwrap(), F::infinity());
    assert_eq!(q.cross_entropy(&q).unwrap(), F::zero());
    let coin = Distribution::from_probs(&[c::<F>(0.5), c(0.5)]).unwrap();
    assert_ulps_eq!(coin.cross_entropy_bits(&coin).unwrap(), F::one());
    let three = Distribution::<F>::uniform(3).unwrap();
    assert_eq!(
        coin.cross_entropy(&three).unwrap_err(),
        Error::VocabularyMismatch {
            what: "second distribution",
            expected: 2,
            found: 3
        }
    );
}

fn approx_traits_compare_probabilities<F: Real>() {
    // δ = 4096 ε (9e-13 in f64, 4.9e-4 in f32) is 8192 ulps of 0.5, so both
    // entries are exact and still sum to 1.
    let delta = c::<F>(4096.0) * F::epsilon();
    let half = c::<F>(0.5);
    let a = Distribution::from_probs(&[half, half]).unwrap();
    let b = Distribution::from_probs(&[half + delta, half - delta]).unwrap();
    let ten = c::<F>(10.0);
    assert_abs_diff_eq!(a, b, epsilon = ten * delta);
    assert!(!approx::abs_diff_eq!(a, b, epsilon = delta / ten));
    assert_relative_eq!(a, b, max_relative = ten * delta);
    assert!(!approx::ulps_eq!(a, b, max_ulps = 4));
    let longer = Distribution::<F>::uniform(3).unwrap();
    assert!(!approx::abs_diff_eq!(a, longer, epsilon = F::one()));
}

for_both_floats!(
    from_probs_stores_values_unchanged,
    from_probs_rejects_empty,
    from_probs_rejects_nan_with_index,
    from_probs_rejects_infinity,
    from_probs_rejects_negative_with_value,
    from_probs_rejects_unnormalized_without_renormalizing,
    from_probs_accepts_rounding_within_tolerance,
    custom_tolerance_accepts_and_rejects,
    from_weights_normalizes_explicitly,
    from_weights_survives_huge_weights,
    from_weights_rejects_bad_weights,
    from_logits_matches_softmax,
    from_logits_applies_temperature,
    from_logits_handles_huge_magnitudes,
    from_logits_masks_negative_infinity,
    from_logits_keeps_log_probs_of_underflowed_tokens,
    from_logits_rejects_bad_input,
    from_logits_rejects_bad_temperature,
    uniform_has_maximal_entropy,
    entropy_ignores_zero_tokens,
    cross_entropy_conventions,
    approx_traits_compare_probabilities,
);

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
