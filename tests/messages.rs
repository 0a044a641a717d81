//! Numbers in error messages and names print compactly, and `-0.0` is stored as `+0.0`.

use metadistill::{
    ConvexMixture, Distribution, DistributionBatch, Divergence, Error, MetaTeacherOperator, Real,
    TemperedMixture, Weights,
};
use ndarray::{Array1, array};

/// Converts an `f64` literal to `F`.
fn c<F: Real>(value: f64) -> F {
    F::from(value).unwrap()
}

#[test]
fn huge_renyi_order_prints_in_exponent_form() {
    let order = Divergence::<f64>::renyi(1e300).unwrap();
    assert_eq!(order.name(), "Renyi(1e300)");
    let tiny = Divergence::<f64>::renyi(2.5e-300).unwrap();
    assert_eq!(tiny.name(), "Renyi(2.5e-300)");
}

#[test]
fn plain_orders_print_as_display_does() {
    assert_eq!(Divergence::<f64>::renyi(2.0).unwrap().name(), "Renyi(2)");
    assert_eq!(Divergence::<f64>::renyi(0.5).unwrap().name(), "Renyi(0.5)");
    assert_eq!(Divergence::<f64>::max_log_ratio().name(), "Renyi(inf)");
}

#[test]
fn f32_orders_print_their_own_shortest_digits() {
    // 0.1_f32 is 0.100000001490116… as an f64; printed as f32 it is 0.1.
    assert_eq!(Divergence::<f32>::renyi(0.1).unwrap().name(), "Renyi(0.1)");
    assert_eq!(
        Divergence::<f32>::renyi(3e38).unwrap().name(),
        "Renyi(3e38)"
    );
}

#[test]
fn oversized_uniform_names_size_compactly() {
    let message = Distribution::<f64>::uniform(usize::MAX)
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "vocabulary size is 1.8446744073709552e19: it must be small enough that all \
         probabilities fit in isize::MAX bytes"
    );
}

#[test]
fn messages_keep_ordinary_numbers_plain() {
    let message = Distribution::from_probs(&[1.5, -0.5])
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "probability at index 1 is -0.5: probabilities must be non-negative"
    );
}

#[test]
fn huge_values_in_messages_print_in_exponent_form() {
    let message = Distribution::from_logits(&[0.0, 1.0], -1e300)
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "temperature is -1e300: it must be finite and greater than 0"
    );
}

#[test]
fn not_normalized_prints_sum_and_tolerance() {
    let error = Distribution::from_probs(&[0.5, 0.6]).unwrap_err();
    let Error::NotNormalized { tolerance, .. } = error else {
        panic!("expected NotNormalized, got {error:?}");
    };
    let message = error.to_string();
    assert!(
        message.starts_with("probabilities sum to 1.1, which is off 1 by more than the tolerance "),
        "{message}"
    );
    // The default tolerance is below 1e-4, so it prints in exponent form.
    assert!(message.contains(&format!("{tolerance:e}:")), "{message}");
}

#[test]
fn operator_names_print_compactly() {
    let mixture = ConvexMixture::<f64>::new(1e-20).unwrap();
    assert_eq!(
        MetaTeacherOperator::<f64>::name(&mixture),
        "ConvexMixture(a = 1e-20)"
    );
    let tempered = TemperedMixture::<f64>::new(0.5, 1e300).unwrap();
    assert_eq!(
        MetaTeacherOperator::<f64>::name(&tempered),
        "TemperedMixture(a = 0.5, tau = 1e300)"
    );
}

/// Checks that every constructor that stores given values turns `-0.0` into `+0.0`.
fn negative_zero_is_stored_as_positive_zero<F: Real>() {
    let minus_zero = -F::zero();
    let one = F::one();

    let from_probs = Distribution::from_probs(&[minus_zero, one]).unwrap();
    assert!(from_probs.probs()[0].is_sign_positive());
    assert_eq!(from_probs.log_probs()[0], F::neg_infinity());

    let with_tolerance = Distribution::from_probs_with_tolerance(&[minus_zero, one], c(1e-3));
    assert!(with_tolerance.unwrap().probs()[0].is_sign_positive());

    let from_weights = Distribution::from_weights(&[minus_zero, one]).unwrap();
    assert!(from_weights.probs()[0].is_sign_positive());

    let batch =
        DistributionBatch::from_probs(&array![[one, minus_zero], [minus_zero, one]]).unwrap();
    assert!(batch.probs().iter().all(|p| p.is_sign_positive()));

    let weighted = batch
        .with_input_weights(&Array1::from(vec![minus_zero, one]))
        .unwrap();
    assert!(weighted.input_weights()[0].is_sign_positive());

    let weights = Weights::new(&[minus_zero, one]).unwrap();
    assert!(weights.as_slice()[0].is_sign_positive());
    let normalized = Weights::normalize(&[minus_zero, one]).unwrap();
    assert!(normalized.as_slice()[0].is_sign_positive());

    let printed = format!("{:?}", from_probs.probs());
    assert!(!printed.contains("-0"), "{printed}");
}

#[test]
fn negative_zero_is_stored_as_positive_zero_f32() {
    negative_zero_is_stored_as_positive_zero::<f32>();
}

#[test]
fn negative_zero_is_stored_as_positive_zero_f64() {
    negative_zero_is_stored_as_positive_zero::<f64>();
}
