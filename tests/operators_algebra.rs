//! Tests of the operator combinators and the guarantees they carry.

mod operators_support;

use std::slice::from_ref;

use metadistill::divergence::kl;
use metadistill::recursion::run_exact;
use metadistill::{
    ConvexCombination, ConvexMixture, Distribution, DistributionBatch, Error, GeneralizedMixture,
    HistoryWeights, InformationProjection, Iterate, MetaTeacherOperator, OperatorProperties,
    PostMap, PostMapped, Real, Result, TemperedMixture, effective_anchor_weight,
};
use ndarray::{ArrayView1, ArrayViewMut1, array};
use operators_support::{Lcg, assert_distribution, build, config, distributions};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Converts an `f64` literal to `F`.
fn c<F: Real>(value: f64) -> F {
    F::from(value).unwrap()
}

/// Builds a distribution from `f64` literals.
fn probs<F: Real>(entries: &[f64]) -> Result<Distribution<F>> {
    let values: Vec<F> = entries.iter().map(|&x| c(x)).collect();
    Distribution::from_probs(&values)
}

/// Returns a tolerance of `count` machine epsilons of `F`.
fn ulps<F: Real>(count: f64) -> F {
    c::<F>(count) * F::epsilon()
}

/// Rounds a drawn distribution to `F` and renormalizes it there.
fn to<F: Real>(p: &Distribution) -> Distribution<F> {
    Distribution::from_weights(&p.probs().mapv(c::<F>)).unwrap()
}

/// Returns the smallest `q_i / t_i` over the tokens where `t_i > 0`, before capping at 1.
fn smallest_ratio<F: Real>(q: &Distribution<F>, t: &Distribution<F>) -> F {
    q.probs()
        .iter()
        .zip(t.probs())
        .filter(|&(_, &ti)| ti > F::zero())
        .map(|(&qi, &ti)| qi / ti)
        .fold(F::infinity(), F::min)
}

/// Runs each generic check for `f32` and for `f64`.
macro_rules! for_both_floats {
    ($($name:ident),* $(,)?) => {
        mod f32_cases {
            $(#[test] fn $name() -> metadistill::Result<()> { super::$name::<f32>() })*
        }
        mod f64_cases {
            $(#[test] fn $name() -> metadistill::Result<()> { super::$name::<f64>() })*
        }
    };
}

/// An operator that writes a vector summing to 2, to exercise output validation.
struct Doubling;

impl<F: Real> MetaTeacherOperator<F> for Doubling {
    fn anchor_weight(&self) -> F {
        F::zero()
    }

    fn combine_into(
        &self,
        _teachers: &[ArrayView1<F>],
        students: &[ArrayView1<F>],
        mut out: ArrayViewMut1<F>,
    ) -> Result<()> {
        out.assign(&students[0]);
        out.mapv_inplace(|x| x + x);
        Ok(())
    }
}

// Unless a check states another bound, 4.5 ε (1e-15 in f64) covers the few
// roundings between two ways of computing one probability or weight.

fn combination_declares_weighted_anchor<F: Real>() -> Result<()> {
    let blend = ConvexCombination::new(
        ConvexMixture::new(c::<F>(0.2))?,
        ConvexMixture::new(c(0.6))?,
        c(0.25),
    )?;
    assert!((blend.anchor_weight() - c(0.5)).abs() < ulps(4.5));
    assert!(blend.anchors_pointwise());
    assert!((blend.contraction_factor().expect("both contract") - c(0.5)).abs() < ulps(4.5));
    assert!(blend.fixes_teacher());
    assert!((blend.weight() - c(0.25)).abs() < ulps(4.5));
    Ok(())
}

fn combination_rejects_bad_weight_and_output<F: Real>() -> Result<()> {
    for weight in [c::<F>(-0.1), c(1.5), F::nan()] {
        let result = ConvexCombination::new(
            ConvexMixture::new(c(0.2))?,
            ConvexMixture::new(c(0.6))?,
            weight,
        );
        assert!(matches!(result, Err(Error::InvalidParameter { .. })));
    }
    let t = probs::<F>(&[0.5, 0.5])?;
    let broken = ConvexCombination::new(ConvexMixture::new(c(0.2))?, Doubling, c(0.5))?;
    let result = broken.build(from_ref(&t), from_ref(&t));
    assert!(matches!(result, Err(Error::InvalidOperatorOutput { .. })));
    let broken_first = ConvexCombination::new(Doubling, ConvexMixture::new(c(0.2))?, c(0.5))?;
    let result = broken_first.build(from_ref(&t), from_ref(&t));
    assert!(matches!(result, Err(Error::InvalidOperatorOutput { .. })));
    Ok(())
}

fn combination_reuses_buffer_across_sizes<F: Real>() -> Result<()> {
    let half = c::<F>(0.5);
    let blend = ConvexCombination::new(
        ConvexMixture::new(half)?,
        InformationProjection::geometric(half)?,
        half,
    )?;
    let cases = [
        (probs::<F>(&[0.6, 0.3, 0.1])?, probs(&[0.2, 0.5, 0.3])?),
        (probs(&[0.9, 0.1])?, probs(&[0.5, 0.5])?),
        (probs(&[0.6, 0.3, 0.1])?, probs(&[0.2, 0.5, 0.3])?),
    ];
    let first = blend.build(from_ref(&cases[0].0), from_ref(&cases[0].1))?;
    for (t, s) in &cases {
        let q = blend.build(from_ref(t), from_ref(s))?;
        let mixture = ConvexMixture::new(half)?.build(from_ref(t), from_ref(s))?;
        let pool = InformationProjection::geometric(half)?.build(from_ref(t), from_ref(s))?;
        for i in 0..t.len() {
            let expected = half * mixture.probs()[i] + half * pool.probs()[i];
            assert!((q.probs()[i] - expected).abs() < ulps(4.5));
        }
    }
    let last = blend.build(from_ref(&cases[2].0), from_ref(&cases[2].1))?;
    assert_eq!(first, last);
    Ok(())
}

fn post_maps_follow_formulas<F: Real>() -> Result<()> {
    let mut tempered = array![0.5, 0.3, 0.2].mapv(c::<F>);
    PostMap::Temper {
        temperature: c(0.5),
    }
    .apply_into(tempered.view_mut())?;
    assert!((tempered[0] - c(0.25 / 0.38)).abs() < ulps(4.5));

    let mut smoothed = array![1.0, 0.0].mapv(c::<F>);
    PostMap::SmoothUniform { epsilon: c(0.2) }.apply_into(smoothed.view_mut())?;
    assert!((smoothed[1] - c(0.1)).abs() < ulps(4.5));

    let mut tied = array![0.3, 0.3, 0.3, 0.1].mapv(c::<F>);
    PostMap::TopK { k: 2 }.apply_into(tied.view_mut())?;
    assert_eq!(tied.to_vec(), [0.5, 0.5, 0.0, 0.0].map(c::<F>).to_vec());

    let mut whole = array![0.7, 0.3].mapv(c::<F>);
    PostMap::TopK { k: 5 }.apply_into(whole.view_mut())?;
    assert_eq!(whole.to_vec(), [0.7, 0.3].map(c::<F>).to_vec());

    let mut single = array![0.2, 0.5, 0.3].mapv(c::<F>);
    PostMap::TopK { k: 1 }.apply_into(single.view_mut())?;
    assert_eq!(single.to_vec(), [0.0, 1.0, 0.0].map(c::<F>).to_vec());
    Ok(())
}

fn post_maps_reject_bad_parameters<F: Real>() -> Result<()> {
    let mut values = array![0.5, 0.5].mapv(c::<F>);
    assert!(matches!(
        PostMap::TopK { k: 0 }.apply_into(values.view_mut()),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        PostMap::<F>::SmoothUniform { epsilon: c(1.5) }.validate(),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        PostMap::<F>::Temper {
            temperature: c(-1.0)
        }
        .validate(),
        Err(Error::InvalidTemperature { .. })
    ));
    let built = PostMapped::new(
        ConvexMixture::new(c::<F>(0.3))?,
        PostMap::SmoothUniform { epsilon: F::nan() },
    );
    assert!(matches!(built, Err(Error::InvalidParameter { .. })));
    let broken = PostMapped::new(Doubling, PostMap::TopK { k: 1 })?;
    let t = probs::<F>(&[0.5, 0.5])?;
    assert!(matches!(
        broken.build(from_ref(&t), from_ref(&t)),
        Err(Error::InvalidOperatorOutput { .. })
    ));
    Ok(())
}

fn smoothing_moves_fixed_point_but_keeps_anchor<F: Real>() -> Result<()> {
    let t = probs::<F>(&[0.6, 0.3, 0.1])?;
    let start = probs::<F>(&[0.2, 0.5, 0.3])?;
    let (a, epsilon) = (c::<F>(0.3), c::<F>(0.1));
    let smoothed = PostMapped::new(ConvexMixture::new(a)?, PostMap::SmoothUniform { epsilon })?;
    let one = F::one();
    assert!((smoothed.anchor_weight() - (one - epsilon) * a).abs() < ulps(4.5));
    assert!(smoothed.anchors_pointwise());
    assert!(!smoothed.fixes_teacher());
    assert_eq!(smoothed.contraction_factor(), None);

    let run = run_exact(&smoothed, from_ref(&t), &start, 300)?;
    let last = run.final_student().distribution(0).expect("one input");
    let denominator = one - (one - epsilon) * (one - a);
    for i in 0..3 {
        let expected = ((one - epsilon) * a * t.probs()[i] + epsilon / c(3.0)) / denominator;
        // Each of 300 steps rounds, and the errors shrink by 0.63 per step,
        // so they settle at a few ε; 450 ε is 1e-13 in f64.
        assert!((last.probs()[i] - expected).abs() < ulps(450.0));
    }
    assert!(kl(&t, &last)? > F::zero());
    Ok(())
}

fn top_k_breaks_positivity<F: Real>() -> Result<()> {
    let t = probs::<F>(&[0.6, 0.3, 0.1])?;
    let s = probs::<F>(&[0.2, 0.5, 0.3])?;
    let truncated = PostMapped::new(ConvexMixture::new(c::<F>(0.3))?, PostMap::TopK { k: 2 })?;
    let q = truncated.build(from_ref(&t), &[s])?;
    assert!(!q.is_strictly_positive());
    assert_eq!(kl(&t, &q)?, F::infinity());
    assert_eq!(truncated.anchor_weight(), F::zero());
    assert_eq!(truncated.contraction_factor(), None);
    assert!(!truncated.fixes_teacher());
    assert_eq!(truncated.map(), PostMap::TopK { k: 2 });
    Ok(())
}

fn tempering_post_map_equals_tempered_mixture<F: Real>() -> Result<()> {
    let t = probs::<F>(&[0.6, 0.3, 0.1])?;
    let s = probs::<F>(&[0.2, 0.5, 0.3])?;
    let a = c::<F>(0.3);
    let composed = PostMapped::new(
        ConvexMixture::new(a)?,
        PostMap::Temper {
            temperature: c(2.0),
        },
    )?;
    let direct = TemperedMixture::new(a, c(2.0))?;
    let q = composed.build(from_ref(&t), from_ref(&s))?;
    let r = direct.build(from_ref(&t), from_ref(&s))?;
    for (&x, &y) in q.probs().iter().zip(r.probs()) {
        assert!((x - y).abs() < ulps(4.5));
    }
    assert!(!composed.fixes_teacher());
    let identity = PostMapped::new(
        ConvexMixture::new(a)?,
        PostMap::Temper {
            temperature: F::one(),
        },
    )?;
    assert!(identity.fixes_teacher());
    assert_eq!(identity.contraction_factor(), Some(F::one() - a));
    assert!((identity.anchor_weight() - a).abs() < ulps(4.5));
    Ok(())
}

fn iterate_of_mixture_has_closed_form<F: Real>() -> Result<()> {
    let t = probs::<F>(&[0.6, 0.3, 0.1])?;
    let s = probs::<F>(&[0.2, 0.5, 0.3])?;
    let a = c::<F>(0.3);
    for steps in 1..=4 {
        let iterate = Iterate::new(ConvexMixture::new(a)?, steps)?;
        let q = iterate.build(from_ref(&t), from_ref(&s))?;
        let shrink = (F::one() - a).powi(steps as i32);
        for i in 0..3 {
            let expected = t.probs()[i] + shrink * (s.probs()[i] - t.probs()[i]);
            assert!((q.probs()[i] - expected).abs() < ulps(4.5));
        }
        let factor = iterate.contraction_factor().expect("mixture contracts");
        assert!((factor - shrink).abs() < ulps(4.5));
        assert_eq!(iterate.steps(), steps);
    }
    assert!(matches!(
        Iterate::new(ConvexMixture::new(a)?, 0),
        Err(Error::InvalidParameter { .. })
    ));
    Ok(())
}

fn iterate_rejects_invalid_intermediate<F: Real>() -> Result<()> {
    let t = probs::<F>(&[0.5, 0.5])?;
    let iterate = Iterate::new(Doubling, 2)?;
    let result = iterate.build(from_ref(&t), from_ref(&t));
    assert!(matches!(result, Err(Error::InvalidOperatorOutput { .. })));
    Ok(())
}

fn iterate_appends_to_history<F: Real>() -> Result<()> {
    let t = probs::<F>(&[0.6, 0.3, 0.1])?;
    let history = [probs::<F>(&[0.2, 0.5, 0.3])?, probs(&[0.3, 0.3, 0.4])?];
    let inner = GeneralizedMixture::single_teacher(c(0.3), HistoryWeights::Window { length: 2 })?;
    let iterate = Iterate::new(inner.clone(), 3)?;
    let q = iterate.build(from_ref(&t), &history)?;

    let mut students = history.to_vec();
    for _ in 0..3 {
        let next = inner.build(from_ref(&t), &students)?;
        students.push(next);
    }
    assert_eq!(&q, students.last().expect("three steps"));
    assert_eq!(iterate.contraction_factor(), Some(c(0.7)));
    assert!(!iterate.reads_latest_only());
    Ok(())
}

fn combinators_work_on_batches_and_dyn<F: Real>() -> Result<()> {
    let teacher = DistributionBatch::from_rows(&[probs::<F>(&[0.6, 0.4])?, probs(&[0.1, 0.9])?])?;
    let student = DistributionBatch::from_rows(&[probs::<F>(&[0.2, 0.8])?, probs(&[0.5, 0.5])?])?;
    let a = c::<F>(0.3);
    let operators: Vec<Box<dyn OperatorProperties<F>>> = vec![
        Box::new(Iterate::new(ConvexMixture::new(a)?, 3)?),
        Box::new(ConvexCombination::new(
            ConvexMixture::new(a)?,
            InformationProjection::geometric(a)?,
            c(0.5),
        )?),
        Box::new(PostMapped::new(
            ConvexMixture::new(a)?,
            PostMap::SmoothUniform { epsilon: c(0.1) },
        )?),
    ];
    for operator in &operators {
        let batch = operator.build_batch(from_ref(&teacher), from_ref(&student))?;
        for row in 0..2 {
            let single = operator.build(
                &[teacher.distribution(row).expect("row")],
                &[student.distribution(row).expect("row")],
            )?;
            assert_eq!(
                batch.distribution(row).expect("row"),
                single,
                "{}",
                operator.name()
            );
        }
    }
    Ok(())
}

fn large_vocabulary_combinators<F: Real>() -> Result<()> {
    let mut rng = Lcg::new(41);
    let t = to::<F>(&rng.distribution(100_000)?);
    let s = to::<F>(&rng.distribution(100_000)?);
    let a = c::<F>(0.3);
    let blend = ConvexCombination::new(
        Iterate::new(ConvexMixture::new(a)?, 2)?,
        InformationProjection::geometric(a)?,
        c(0.5),
    )?;
    let q = blend.build(from_ref(&t), from_ref(&s))?;
    let factor = blend.contraction_factor().expect("both contract");
    assert!(kl(&t, &q)? <= factor * kl(&t, &s)?);
    Ok(())
}

for_both_floats!(
    combination_declares_weighted_anchor,
    combination_rejects_bad_weight_and_output,
    combination_reuses_buffer_across_sizes,
    post_maps_follow_formulas,
    post_maps_reject_bad_parameters,
    smoothing_moves_fixed_point_but_keeps_anchor,
    top_k_breaks_positivity,
    tempering_post_map_equals_tempered_mixture,
    iterate_of_mixture_has_closed_form,
    iterate_rejects_invalid_intermediate,
    iterate_appends_to_history,
    combinators_work_on_batches_and_dyn,
    large_vocabulary_combinators,
);

#[test]
fn combinators_in_f32() -> Result<()> {
    let t = Distribution::<f32>::from_probs(&[0.6, 0.3, 0.1])?;
    let s = Distribution::<f32>::from_probs(&[0.2, 0.5, 0.3])?;
    let blend = ConvexCombination::new(
        ConvexMixture::<f32>::new(0.2)?,
        Iterate::new(ConvexMixture::<f32>::new(0.3)?, 2)?,
        0.5f32,
    )?;
    let q = blend.build(from_ref(&t), from_ref(&s))?;
    let factor = blend.contraction_factor().expect("both contract");
    assert!((factor - (0.5 * 0.8 + 0.5 * 0.49)).abs() < 1e-6);
    assert!(kl(&t, &q)? <= factor * kl(&t, &s)?);
    Ok(())
}

/// Tells whether `value <= bound` up to 4500 ε relative and 4.5 ε absolute slack.
///
/// The slack (1e-12 and 1e-15 in f64) covers the rounding of the mixture and
/// of the two divergences compared.
fn within_bound<F: Real>(value: F, bound: F) -> bool {
    value <= bound * (F::one() + ulps(4500.0)) + ulps(4.5)
}

fn combination_law<F: Real>(
    t: &Distribution<F>,
    s: &Distribution<F>,
    a1: F,
    a2: F,
    lambda: F,
) -> std::result::Result<(), TestCaseError> {
    let blend = ConvexCombination::new(
        ConvexMixture::new(a1).unwrap(),
        ConvexMixture::new(a2).unwrap(),
        lambda,
    )
    .unwrap();
    let q = blend.build(from_ref(t), from_ref(s)).unwrap();
    prop_assert!(q.is_strictly_positive());
    let anchor = blend.anchor_weight() * (F::one() - ulps(4500.0));
    prop_assert!(effective_anchor_weight(&q, t).unwrap() >= anchor);
    let factor = blend.contraction_factor().unwrap();
    prop_assert!(within_bound(kl(t, &q).unwrap(), factor * kl(t, s).unwrap()));

    let mixed = ConvexCombination::new(
        ConvexMixture::new(a1).unwrap(),
        InformationProjection::geometric(a2).unwrap(),
        lambda,
    )
    .unwrap();
    let r = mixed.build(from_ref(t), from_ref(s)).unwrap();
    let factor = mixed.contraction_factor().unwrap();
    prop_assert!(within_bound(kl(t, &r).unwrap(), factor * kl(t, s).unwrap()));
    Ok(())
}

fn iterate_law<F: Real>(
    t: &Distribution<F>,
    s: &Distribution<F>,
    anchor: F,
    steps: usize,
) -> std::result::Result<(), TestCaseError> {
    let iterate = Iterate::new(InformationProjection::geometric(anchor).unwrap(), steps).unwrap();
    let q = iterate.build(from_ref(t), from_ref(s)).unwrap();
    let factor = iterate.contraction_factor().unwrap();
    prop_assert!(within_bound(kl(t, &q).unwrap(), factor * kl(t, s).unwrap()));

    let mixture = Iterate::new(ConvexMixture::new(anchor).unwrap(), steps).unwrap();
    let m = mixture.build(from_ref(t), from_ref(s)).unwrap();
    prop_assert!(smallest_ratio(&m, t) >= mixture.anchor_weight() * (F::one() - ulps(4500.0)));
    Ok(())
}

fn smoothing_law<F: Real>(
    t: &Distribution<F>,
    s: &Distribution<F>,
    anchor: F,
    epsilon: F,
) -> std::result::Result<(), TestCaseError> {
    let smoothed = PostMapped::new(
        ConvexMixture::new(anchor).unwrap(),
        PostMap::SmoothUniform { epsilon },
    )
    .unwrap();
    let q = smoothed.build(from_ref(t), from_ref(s)).unwrap();
    let anchor = smoothed.anchor_weight() * (F::one() - ulps(4500.0));
    prop_assert!(effective_anchor_weight(&q, t).unwrap() >= anchor);
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    // Each law runs on the drawn f64 case and on the same case rounded to f32.

    #[test]
    fn combination_keeps_anchoring_and_contraction(
        weights in distributions(2),
        a1 in 0.01f64..1.0,
        a2 in 0.01f64..1.0,
        lambda in 0.0f64..=1.0,
    ) {
        let points = build(&weights).expect("positive weights");
        let (t, s) = (&points[0], &points[1]);
        combination_law(t, s, a1, a2, lambda)?;
        combination_law::<f32>(&to(t), &to(s), c(a1), c(a2), c(lambda))?;
        let q = ConvexCombination::new(ConvexMixture::new(a1).unwrap(), ConvexMixture::new(a2).unwrap(), lambda).unwrap().build(from_ref(t), from_ref(s)).unwrap();
        assert_distribution(&q);
    }

    #[test]
    fn iterate_contracts_by_power(weights in distributions(2), anchor in 0.01f64..1.0, steps in 1usize..5) {
        let points = build(&weights).expect("positive weights");
        let (t, s) = (&points[0], &points[1]);
        iterate_law(t, s, anchor, steps)?;
        iterate_law::<f32>(&to(t), &to(s), c(anchor), steps)?;
    }

    #[test]
    fn smoothing_keeps_pointwise_anchor(weights in distributions(2), anchor in 0.01f64..1.0, epsilon in 0.0f64..=1.0) {
        let points = build(&weights).expect("positive weights");
        let (t, s) = (&points[0], &points[1]);
        smoothing_law(t, s, anchor, epsilon)?;
        smoothing_law::<f32>(&to(t), &to(s), c(anchor), c(epsilon))?;
    }
}
