//! Property tests of the laws every divergence must obey, in f64 and f32.
//!
//! Every test draws its cases from the same fixed seed, so runs are
//! reproducible; a failing case is also saved under `proptest-regressions/`.

use metadistill::divergence::{
    chi_squared, hellinger, js, js_distance, kl, renyi, reverse_kl, squared_hellinger,
    total_variation,
};
use metadistill::{ConvexMixture, Distribution, Divergence, MetaTeacherOperator};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

/// Slack for inequalities between computed values: a few hundred ulps of the larger side.
fn slack(value: f64) -> f64 {
    1e-13 * (1.0 + value.abs())
}

/// Distributions of 1 to 40 tokens, some with zero entries.
fn distribution(len: usize) -> impl Strategy<Value = Distribution<f64>> {
    prop::collection::vec(prop_oneof![4 => 1e-6..1.0_f64, 1 => Just(0.0)], len)
        .prop_filter_map("all weights zero", |weights| {
            Distribution::from_weights(&weights).ok()
        })
}

/// Strictly positive distributions.
fn positive_distribution(len: usize) -> impl Strategy<Value = Distribution<f64>> {
    prop::collection::vec(1e-4..1.0_f64, len)
        .prop_map(|weights| Distribution::from_weights(&weights).expect("positive weights"))
}

fn pair() -> impl Strategy<Value = (Distribution<f64>, Distribution<f64>)> {
    (1_usize..40).prop_flat_map(|len| (distribution(len), distribution(len)))
}

fn positive_triple() -> impl Strategy<Value = [Distribution<f64>; 3]> {
    (1_usize..40).prop_flat_map(|len| {
        (
            positive_distribution(len),
            positive_distribution(len),
            positive_distribution(len),
        )
            .prop_map(|(a, b, c)| [a, b, c])
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        rng_seed: RngSeed::Fixed(20_261_204),
        ..ProptestConfig::default()
    })]

    #[test]
    fn kl_is_non_negative_and_zero_on_itself((p, q) in pair()) {
        let value = kl(&p, &q).unwrap();
        prop_assert!(value >= 0.0, "KL = {value}");
        prop_assert!(!value.is_nan());
        prop_assert_eq!(kl(&p, &p).unwrap(), 0.0);
        prop_assert_eq!(reverse_kl(&p, &q).unwrap(), kl(&q, &p).unwrap());
    }

    #[test]
    fn js_is_symmetric_and_bounded((p, q) in pair()) {
        let forward = js(&p, &q).unwrap();
        let backward = js(&q, &p).unwrap();
        prop_assert_eq!(forward, backward);
        prop_assert!((0.0..=std::f64::consts::LN_2).contains(&forward), "JS = {forward}");
        prop_assert_eq!(js(&p, &p).unwrap(), 0.0);
    }

    #[test]
    fn js_distance_obeys_triangle_inequality([a, b, c] in positive_triple()) {
        let ab = js_distance(&a, &b).unwrap();
        let bc = js_distance(&b, &c).unwrap();
        let ac = js_distance(&a, &c).unwrap();
        prop_assert!(ac <= ab + bc + slack(ac), "{ac} > {ab} + {bc}");
    }

    #[test]
    fn pinsker_bounds_total_variation((p, q) in pair()) {
        let tv = total_variation(&p, &q).unwrap();
        let divergence = kl(&p, &q).unwrap();
        prop_assert!(tv <= (divergence / 2.0).sqrt() + slack(tv), "TV {tv}, KL {divergence}");
        prop_assert!((0.0..=1.0).contains(&tv));
    }

    #[test]
    fn hellinger_brackets_total_variation((p, q) in pair()) {
        let h = hellinger(&p, &q).unwrap();
        let h2 = squared_hellinger(&p, &q).unwrap();
        let tv = total_variation(&p, &q).unwrap();
        prop_assert!((h * h - h2).abs() <= slack(h2));
        prop_assert!(h2 <= tv + slack(tv), "H² {h2} > TV {tv}");
        prop_assert!(tv <= std::f64::consts::SQRT_2 * h + slack(tv), "TV {tv} > √2 H {h}");
        prop_assert!((0.0..=1.0).contains(&h));
    }

    #[test]
    fn chi_squared_dominates_kl((p, q) in pair()) {
        let divergence = kl(&p, &q).unwrap();
        let chi2 = chi_squared(&p, &q).unwrap();
        prop_assert!(divergence <= (1.0 + chi2).ln() + slack(divergence), "KL {divergence}, chi2 {chi2}");
    }

    #[test]
    fn renyi_grows_with_order((p, q) in pair()) {
        let orders = [0.0, 0.25, 0.5, 0.99, 1.0, 1.01, 2.0, 10.0, f64::INFINITY];
        let values: Vec<f64> = orders.iter().map(|&b| renyi(&p, &q, b).unwrap()).collect();
        for (pair, window) in orders.windows(2).zip(values.windows(2)) {
            prop_assert!(window[0] >= 0.0 && !window[0].is_nan());
            prop_assert!(
                window[0] <= window[1] + slack(window[1]),
                "D_{} = {} > D_{} = {}", pair[0], window[0], pair[1], window[1]
            );
        }
        prop_assert_eq!(values[4], kl(&p, &q).unwrap());
    }

    #[test]
    fn mixture_contracts_kl((t, s) in (1_usize..40).prop_flat_map(|n| (distribution(n), positive_distribution(n))), a in 0.01..=1.0_f64) {
        let q = ConvexMixture::new(a).unwrap().build(std::slice::from_ref(&t), std::slice::from_ref(&s)).unwrap();
        let before = kl(&t, &s).unwrap();
        let after = kl(&t, &q).unwrap();
        prop_assert!(after <= (1.0 - a) * before + slack(before), "{after} > (1 - {a}) {before}");
    }

    #[test]
    fn divergences_never_nan((p, q) in pair()) {
        let all = [
            Divergence::KullbackLeibler,
            Divergence::ReverseKullbackLeibler,
            Divergence::JensenShannon,
            Divergence::JensenShannonDistance,
            Divergence::Renyi { order: 0.5 },
            Divergence::max_log_ratio(),
            Divergence::TotalVariation,
            Divergence::Hellinger,
            Divergence::SquaredHellinger,
            Divergence::ChiSquared,
        ];
        for divergence in all {
            let value = divergence.compute(&p, &q).unwrap();
            prop_assert!(value >= 0.0, "{} = {value}", divergence.name());
        }
    }

    #[test]
    fn f32_agrees_with_f64((p, q) in (1_usize..40).prop_flat_map(|n| (positive_distribution(n), positive_distribution(n)))) {
        let p32 = Distribution::<f32>::from_weights(&p.probs().mapv(|v| v as f32)).unwrap();
        let q32 = Distribution::<f32>::from_weights(&q.probs().mapv(|v| v as f32)).unwrap();
        let exact = kl(&p, &q).unwrap();
        let single = f64::from(kl(&p32, &q32).unwrap());
        // Rounding the inputs to f32 moves each ratio by about 1e-7, so KL moves
        // by at most about 1e-7 times the sum of |ln ratio| terms.
        prop_assert!((single - exact).abs() <= 1e-5 * (1.0 + exact), "{single} vs {exact}");
        let js32 = js(&p32, &q32).unwrap();
        prop_assert!((0.0..=std::f32::consts::LN_2).contains(&js32));
    }
}

#[test]
fn disjoint_supports_give_infinity_not_nan() {
    let p = Distribution::from_probs(&[1.0, 0.0]).unwrap();
    let q = Distribution::from_probs(&[0.0, 1.0]).unwrap();
    assert_eq!(kl(&p, &q).unwrap(), f64::INFINITY);
    assert_eq!(chi_squared(&p, &q).unwrap(), f64::INFINITY);
    assert_eq!(renyi(&p, &q, 2.0).unwrap(), f64::INFINITY);
    assert_eq!(renyi(&p, &q, 0.5).unwrap(), f64::INFINITY);
    assert_eq!(renyi(&p, &q, 0.0).unwrap(), f64::INFINITY);
    assert_eq!(renyi(&p, &q, f64::INFINITY).unwrap(), f64::INFINITY);
    assert!((js(&p, &q).unwrap() - std::f64::consts::LN_2).abs() < 1e-16);
    assert_eq!(total_variation(&p, &q).unwrap(), 1.0);
    assert_eq!(hellinger(&p, &q).unwrap(), 1.0);
}

#[test]
fn renyi_rejects_bad_orders() {
    let p = Distribution::from_probs(&[0.5, 0.5]).unwrap();
    for order in [-0.5, f64::NAN] {
        let error = renyi(&p, &p, order).unwrap_err();
        assert!(
            matches!(error, metadistill::Error::InvalidOrder { .. }),
            "{error:?}"
        );
        assert!(Divergence::renyi(order).is_err());
    }
    assert!(Divergence::renyi(3.0).is_ok());
}

#[test]
fn divergences_reject_mismatched_vocabularies() {
    let two = Distribution::from_probs(&[0.5, 0.5]).unwrap();
    let three = Distribution::<f64>::uniform(3).unwrap();
    let all = [
        Divergence::KullbackLeibler,
        Divergence::JensenShannon,
        Divergence::Renyi { order: 2.0 },
        Divergence::TotalVariation,
        Divergence::Hellinger,
        Divergence::ChiSquared,
    ];
    for divergence in all {
        let error = divergence.compute(&two, &three).unwrap_err();
        assert!(
            matches!(
                error,
                metadistill::Error::VocabularyMismatch {
                    expected: 2,
                    found: 3,
                    ..
                }
            ),
            "{}: {error:?}",
            divergence.name()
        );
    }
}

#[test]
fn divergence_names_are_readable() {
    assert_eq!(Divergence::<f64>::KullbackLeibler.name(), "KL");
    assert_eq!(Divergence::Renyi { order: 2.0 }.name(), "Renyi(2)");
    assert_eq!(Divergence::<f64>::max_log_ratio().name(), "Renyi(inf)");
}
