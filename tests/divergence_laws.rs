//! Property tests of the laws every divergence must obey, in f64 and f32.
//!
//! Every test draws its cases from the same fixed seed, so runs are
//! reproducible; a failing case is also saved under `proptest-regressions/`.

use metadistill::divergence::{
    chi_squared, hellinger, js, js_distance, kl, renyi, reverse_kl, squared_hellinger,
    total_variation,
};
use metadistill::{ConvexMixture, Distribution, Divergence, MetaTeacherOperator, Real};
use proptest::prelude::*;
use proptest::test_runner::{RngSeed, TestCaseError};

/// Slack for inequalities between computed values: a few hundred ulps of the larger side.
///
/// 512 ε is 1.1e-13 in f64 and 6.1e-5 in f32; each side of an inequality is
/// a compensated sum of up to 40 terms whose rounding stays within that.
fn slack<F: Real>(value: F) -> F {
    c::<F>(512.0) * F::epsilon() * (F::one() + value.abs())
}

/// Converts an `f64` literal to `F`.
fn c<F: Real>(value: f64) -> F {
    F::from(value).unwrap()
}

/// Rounds a drawn distribution to `F` and renormalizes it there.
fn to<F: Real>(p: &Distribution<f64>) -> Distribution<F> {
    Distribution::from_weights(&p.probs().mapv(c::<F>)).unwrap()
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

/// The result of one law on one drawn case.
type Law = Result<(), TestCaseError>;

fn kl_law<F: Real>(p: &Distribution<F>, q: &Distribution<F>) -> Law {
    let value = kl(p, q).unwrap();
    prop_assert!(value >= F::zero(), "KL = {value}");
    prop_assert!(!value.is_nan());
    prop_assert_eq!(kl(p, p).unwrap(), F::zero());
    prop_assert_eq!(reverse_kl(p, q).unwrap(), kl(q, p).unwrap());
    Ok(())
}

fn js_law<F: Real>(p: &Distribution<F>, q: &Distribution<F>) -> Law {
    let forward = js(p, q).unwrap();
    let backward = js(q, p).unwrap();
    prop_assert_eq!(forward, backward);
    prop_assert!(
        forward >= F::zero() && forward <= F::LN_2(),
        "JS = {forward}"
    );
    prop_assert_eq!(js(p, p).unwrap(), F::zero());
    Ok(())
}

fn triangle_law<F: Real>([a, b, c]: &[Distribution<F>; 3]) -> Law {
    let ab = js_distance(a, b).unwrap();
    let bc = js_distance(b, c).unwrap();
    let ac = js_distance(a, c).unwrap();
    prop_assert!(ac <= ab + bc + slack(ac), "{ac} > {ab} + {bc}");
    Ok(())
}

fn pinsker_law<F: Real>(p: &Distribution<F>, q: &Distribution<F>) -> Law {
    let tv = total_variation(p, q).unwrap();
    let divergence = kl(p, q).unwrap();
    let bound = (divergence / c(2.0)).sqrt();
    prop_assert!(tv <= bound + slack(tv), "TV {tv}, KL {divergence}");
    prop_assert!(tv >= F::zero() && tv <= F::one());
    Ok(())
}

fn hellinger_law<F: Real>(p: &Distribution<F>, q: &Distribution<F>) -> Law {
    let h = hellinger(p, q).unwrap();
    let h2 = squared_hellinger(p, q).unwrap();
    let tv = total_variation(p, q).unwrap();
    prop_assert!((h * h - h2).abs() <= slack(h2));
    prop_assert!(h2 <= tv + slack(tv), "H² {h2} > TV {tv}");
    prop_assert!(tv <= F::SQRT_2() * h + slack(tv), "TV {tv} > √2 H {h}");
    prop_assert!(h >= F::zero() && h <= F::one());
    Ok(())
}

fn chi_squared_law<F: Real>(p: &Distribution<F>, q: &Distribution<F>) -> Law {
    let divergence = kl(p, q).unwrap();
    let chi2 = chi_squared(p, q).unwrap();
    let bound = chi2.ln_1p();
    prop_assert!(
        divergence <= bound + slack(divergence),
        "KL {divergence}, chi2 {chi2}"
    );
    Ok(())
}

fn renyi_law<F: Real>(p: &Distribution<F>, q: &Distribution<F>) -> Law {
    let orders = [0.0, 0.25, 0.5, 0.99, 1.0, 1.01, 2.0, 10.0, f64::INFINITY];
    let values: Vec<F> = orders.iter().map(|&b| renyi(p, q, c(b)).unwrap()).collect();
    for (pair, window) in orders.windows(2).zip(values.windows(2)) {
        prop_assert!(window[0] >= F::zero() && !window[0].is_nan());
        prop_assert!(
            window[0] <= window[1] + slack(window[1]),
            "D_{} = {} > D_{} = {}",
            pair[0],
            window[0],
            pair[1],
            window[1]
        );
    }
    prop_assert_eq!(values[4], kl(p, q).unwrap());
    Ok(())
}

fn contraction_law<F: Real>(t: &Distribution<F>, s: &Distribution<F>, a: F) -> Law {
    let mixture = ConvexMixture::new(a).unwrap();
    let q = mixture
        .build(std::slice::from_ref(t), std::slice::from_ref(s))
        .unwrap();
    let before = kl(t, s).unwrap();
    let after = kl(t, &q).unwrap();
    prop_assert!(
        after <= (F::one() - a) * before + slack(before),
        "{after} > (1 - {a}) {before}"
    );
    Ok(())
}

fn never_nan_law<F: Real>(p: &Distribution<F>, q: &Distribution<F>) -> Law {
    let all = [
        Divergence::KullbackLeibler,
        Divergence::ReverseKullbackLeibler,
        Divergence::JensenShannon,
        Divergence::JensenShannonDistance,
        Divergence::Renyi { order: c(0.5) },
        Divergence::max_log_ratio(),
        Divergence::TotalVariation,
        Divergence::Hellinger,
        Divergence::SquaredHellinger,
        Divergence::ChiSquared,
    ];
    for divergence in all {
        let value = divergence.compute(p, q).unwrap();
        prop_assert!(value >= F::zero(), "{} = {value}", divergence.name());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        rng_seed: RngSeed::Fixed(20_261_204),
        ..ProptestConfig::default()
    })]

    // Each law runs on the drawn f64 case and on the same case rounded to f32.

    #[test]
    fn kl_is_non_negative_and_zero_on_itself((p, q) in pair()) {
        kl_law(&p, &q)?;
        kl_law::<f32>(&to(&p), &to(&q))?;
    }

    #[test]
    fn js_is_symmetric_and_bounded((p, q) in pair()) {
        js_law(&p, &q)?;
        js_law::<f32>(&to(&p), &to(&q))?;
    }

    #[test]
    fn js_distance_obeys_triangle_inequality(triple in positive_triple()) {
        triangle_law(&triple)?;
        triangle_law::<f32>(&triple.each_ref().map(to))?;
    }

    #[test]
    fn pinsker_bounds_total_variation((p, q) in pair()) {
        pinsker_law(&p, &q)?;
        pinsker_law::<f32>(&to(&p), &to(&q))?;
    }

    #[test]
    fn hellinger_brackets_total_variation((p, q) in pair()) {
        hellinger_law(&p, &q)?;
        hellinger_law::<f32>(&to(&p), &to(&q))?;
    }

    #[test]
    fn chi_squared_dominates_kl((p, q) in pair()) {
        chi_squared_law(&p, &q)?;
        chi_squared_law::<f32>(&to(&p), &to(&q))?;
    }

    #[test]
    fn renyi_grows_with_order((p, q) in pair()) {
        renyi_law(&p, &q)?;
        renyi_law::<f32>(&to(&p), &to(&q))?;
    }

    #[test]
    fn mixture_contracts_kl((t, s) in (1_usize..40).prop_flat_map(|n| (distribution(n), positive_distribution(n))), a in 0.01..=1.0_f64) {
        contraction_law(&t, &s, a)?;
        contraction_law::<f32>(&to(&t), &to(&s), c(a))?;
    }

    #[test]
    fn divergences_never_nan((p, q) in pair()) {
        never_nan_law(&p, &q)?;
        never_nan_law::<f32>(&to(&p), &to(&q))?;
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

fn disjoint_supports_give_infinity_not_nan<F: Real>() {
    let p = Distribution::from_probs(&[F::one(), F::zero()]).unwrap();
    let q = Distribution::from_probs(&[F::zero(), F::one()]).unwrap();
    assert_eq!(kl(&p, &q).unwrap(), F::infinity());
    assert_eq!(chi_squared(&p, &q).unwrap(), F::infinity());
    for order in [2.0, 0.5, 0.0, f64::INFINITY] {
        assert_eq!(
            renyi(&p, &q, c(order)).unwrap(),
            F::infinity(),
            "order {order}"
        );
    }
    // JS of disjoint points is ln 2 up to the rounding of one logarithm.
    assert!((js(&p, &q).unwrap() - F::LN_2()).abs() <= F::epsilon() / c(2.0));
    assert_eq!(total_variation(&p, &q).unwrap(), F::one());
    assert_eq!(hellinger(&p, &q).unwrap(), F::one());
}

fn renyi_rejects_bad_orders<F: Real>() {
    let p = Distribution::from_probs(&[c::<F>(0.5), c(0.5)]).unwrap();
    for order in [c::<F>(-0.5), F::nan()] {
        let error = renyi(&p, &p, order).unwrap_err();
        assert!(
            matches!(error, metadistill::Error::InvalidOrder { .. }),
            "{error:?}"
        );
        assert!(Divergence::renyi(order).is_err());
    }
    assert!(Divergence::<F>::renyi(c(3.0)).is_ok());
}

fn divergences_reject_mismatched_vocabularies<F: Real>() {
    let two = Distribution::from_probs(&[c::<F>(0.5), c(0.5)]).unwrap();
    let three = Distribution::<F>::uniform(3).unwrap();
    let all = [
        Divergence::KullbackLeibler,
        Divergence::JensenShannon,
        Divergence::Renyi { order: c(2.0) },
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

fn divergence_names_are_readable<F: Real>() {
    assert_eq!(Divergence::<F>::KullbackLeibler.name(), "KL");
    assert_eq!(Divergence::Renyi { order: c::<F>(2.0) }.name(), "Renyi(2)");
    assert_eq!(Divergence::<F>::max_log_ratio().name(), "Renyi(inf)");
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

for_both_floats!(
    disjoint_supports_give_infinity_not_nan,
    renyi_rejects_bad_orders,
    divergences_reject_mismatched_vocabularies,
    divergence_names_are_readable,
);
