//! Tests of the operator combinators and the guarantees they carry.

mod operators_support;

use std::slice::from_ref;

use metadistill::divergence::kl;
use metadistill::recursion::run_exact;
use metadistill::{
    ConvexCombination, ConvexMixture, Distribution, DistributionBatch, Error, GeneralizedMixture,
    HistoryWeights, InformationProjection, Iterate, MetaTeacherOperator, OperatorProperties,
    PostMap, PostMapped, Result, TemperedMixture, effective_anchor_weight,
};
use ndarray::{ArrayView1, ArrayViewMut1, array};
use operators_support::{Lcg, assert_distribution, build, config, distributions, min_ratio};
use proptest::prelude::*;

fn probs(values: &[f64]) -> Result<Distribution> {
    Distribution::from_probs(values)
}

/// An operator that writes a vector summing to 2, to exercise output validation.
struct Doubling;

impl MetaTeacherOperator<f64> for Doubling {
    fn anchor_weight(&self) -> f64 {
        0.0
    }

    fn combine_into(
        &self,
        _teachers: &[ArrayView1<f64>],
        students: &[ArrayView1<f64>],
        mut out: ArrayViewMut1<f64>,
    ) -> Result<()> {
        out.assign(&students[0]);
        out *= 2.0;
        Ok(())
    }
}

#[test]
fn combination_declares_weighted_anchor() -> Result<()> {
    let blend =
        ConvexCombination::new(ConvexMixture::new(0.2)?, ConvexMixture::new(0.6)?, 0.25f64)?;
    assert!((blend.anchor_weight() - 0.5).abs() < 1e-15);
    assert!(blend.anchors_pointwise());
    assert!((blend.contraction_factor().expect("both contract") - 0.5).abs() < 1e-15);
    assert!(blend.fixes_teacher());
    assert!((blend.weight() - 0.25).abs() < 1e-15);
    Ok(())
}

#[test]
fn combination_rejects_bad_weight_and_output() -> Result<()> {
    for weight in [-0.1, 1.5, f64::NAN] {
        let result =
            ConvexCombination::new(ConvexMixture::new(0.2)?, ConvexMixture::new(0.6)?, weight);
        assert!(matches!(result, Err(Error::InvalidParameter { .. })));
    }
    let t = probs(&[0.5, 0.5])?;
    let broken = ConvexCombination::new(ConvexMixture::new(0.2)?, Doubling, 0.5)?;
    let result = broken.build(from_ref(&t), from_ref(&t));
    assert!(matches!(result, Err(Error::InvalidOperatorOutput { .. })));
    let broken_first = ConvexCombination::new(Doubling, ConvexMixture::new(0.2)?, 0.5)?;
    let result = broken_first.build(from_ref(&t), from_ref(&t));
    assert!(matches!(result, Err(Error::InvalidOperatorOutput { .. })));
    Ok(())
}

#[test]
fn combination_reuses_buffer_across_sizes() -> Result<()> {
    let blend = ConvexCombination::new(
        ConvexMixture::new(0.5)?,
        InformationProjection::geometric(0.5)?,
        0.5,
    )?;
    let cases = [
        (probs(&[0.6, 0.3, 0.1])?, probs(&[0.2, 0.5, 0.3])?),
        (probs(&[0.9, 0.1])?, probs(&[0.5, 0.5])?),
        (probs(&[0.6, 0.3, 0.1])?, probs(&[0.2, 0.5, 0.3])?),
    ];
    let first = blend.build(from_ref(&cases[0].0), from_ref(&cases[0].1))?;
    for (t, s) in &cases {
        let q = blend.build(from_ref(t), from_ref(s))?;
        let mixture = ConvexMixture::new(0.5)?.build(from_ref(t), from_ref(s))?;
        let pool = InformationProjection::geometric(0.5)?.build(from_ref(t), from_ref(s))?;
        for i in 0..t.len() {
            let expected = 0.5 * mixture.probs()[i] + 0.5 * pool.probs()[i];
            assert!((q.probs()[i] - expected).abs() < 1e-15);
        }
    }
    let last = blend.build(from_ref(&cases[2].0), from_ref(&cases[2].1))?;
    assert_eq!(first, last);
    Ok(())
}

#[test]
fn post_maps_follow_formulas() -> Result<()> {
    let mut tempered = array![0.5f64, 0.3, 0.2];
    PostMap::Temper { temperature: 0.5 }.apply_into(tempered.view_mut())?;
    assert!((tempered[0] - 0.25 / 0.38).abs() < 1e-15);

    let mut smoothed = array![1.0f64, 0.0];
    PostMap::SmoothUniform { epsilon: 0.2 }.apply_into(smoothed.view_mut())?;
    assert!((smoothed[1] - 0.1).abs() < 1e-15);

    let mut tied = array![0.3, 0.3, 0.3, 0.1];
    PostMap::TopK { k: 2 }.apply_into(tied.view_mut())?;
    assert_eq!(tied.to_vec(), vec![0.5, 0.5, 0.0, 0.0]);

    let mut whole = array![0.7, 0.3];
    PostMap::TopK { k: 5 }.apply_into(whole.view_mut())?;
    assert_eq!(whole.to_vec(), vec![0.7, 0.3]);

    let mut single = array![0.2, 0.5, 0.3];
    PostMap::TopK { k: 1 }.apply_into(single.view_mut())?;
    assert_eq!(single.to_vec(), vec![0.0, 1.0, 0.0]);
    Ok(())
}

#[test]
fn post_maps_reject_bad_parameters() -> Result<()> {
    let mut values = array![0.5, 0.5];
    assert!(matches!(
        PostMap::TopK { k: 0 }.apply_into(values.view_mut()),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        PostMap::SmoothUniform { epsilon: 1.5 }.validate(),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        PostMap::Temper { temperature: -1.0 }.validate(),
        Err(Error::InvalidTemperature { .. })
    ));
    let built = PostMapped::new(
        ConvexMixture::new(0.3)?,
        PostMap::SmoothUniform { epsilon: f64::NAN },
    );
    assert!(matches!(built, Err(Error::InvalidParameter { .. })));
    let broken = PostMapped::new(Doubling, PostMap::TopK { k: 1 })?;
    let t = probs(&[0.5, 0.5])?;
    assert!(matches!(
        broken.build(from_ref(&t), from_ref(&t)),
        Err(Error::InvalidOperatorOutput { .. })
    ));
    Ok(())
}

#[test]
fn smoothing_moves_fixed_point_but_keeps_anchor() -> Result<()> {
    let t = probs(&[0.6, 0.3, 0.1])?;
    let start = probs(&[0.2, 0.5, 0.3])?;
    let (a, epsilon) = (0.3f64, 0.1f64);
    let smoothed = PostMapped::new(ConvexMixture::new(a)?, PostMap::SmoothUniform { epsilon })?;
    assert!((smoothed.anchor_weight() - (1.0 - epsilon) * a).abs() < 1e-15);
    assert!(smoothed.anchors_pointwise());
    assert!(!smoothed.fixes_teacher());
    assert_eq!(smoothed.contraction_factor(), None);

    let run = run_exact(&smoothed, from_ref(&t), &start, 300)?;
    let last = run.final_student().distribution(0).expect("one input");
    let denominator = 1.0 - (1.0 - epsilon) * (1.0 - a);
    for i in 0..3 {
        let expected = ((1.0 - epsilon) * a * t.probs()[i] + epsilon / 3.0) / denominator;
        assert!((last.probs()[i] - expected).abs() < 1e-13);
    }
    assert!(kl(&t, &last)? > 0.0);
    Ok(())
}

#[test]
fn top_k_breaks_positivity() -> Result<()> {
    let t = probs(&[0.6, 0.3, 0.1])?;
    let s = probs(&[0.2, 0.5, 0.3])?;
    let truncated = PostMapped::new(ConvexMixture::new(0.3)?, PostMap::TopK { k: 2 })?;
    let q = truncated.build(from_ref(&t), &[s])?;
    assert!(!q.is_strictly_positive());
    assert_eq!(kl(&t, &q)?, f64::INFINITY);
    assert_eq!(truncated.anchor_weight(), 0.0);
    assert_eq!(truncated.contraction_factor(), None);
    assert!(!truncated.fixes_teacher());
    assert_eq!(truncated.map(), PostMap::TopK { k: 2 });
    Ok(())
}

#[test]
fn tempering_post_map_equals_tempered_mixture() -> Result<()> {
    let t = probs(&[0.6, 0.3, 0.1])?;
    let s = probs(&[0.2, 0.5, 0.3])?;
    let composed = PostMapped::new(
        ConvexMixture::new(0.3)?,
        PostMap::Temper { temperature: 2.0 },
    )?;
    let direct = TemperedMixture::new(0.3, 2.0)?;
    let q = composed.build(from_ref(&t), from_ref(&s))?;
    let r = direct.build(from_ref(&t), from_ref(&s))?;
    for (x, y) in q.probs().iter().zip(r.probs()) {
        assert!((x - y).abs() < 1e-15);
    }
    assert!(!composed.fixes_teacher());
    let identity = PostMapped::new(
        ConvexMixture::new(0.3)?,
        PostMap::Temper {
            temperature: 1.0f64,
        },
    )?;
    assert!(identity.fixes_teacher());
    assert_eq!(identity.contraction_factor(), Some(0.7));
    assert!((identity.anchor_weight() - 0.3).abs() < 1e-15);
    Ok(())
}

#[test]
fn iterate_of_mixture_has_closed_form() -> Result<()> {
    let t = probs(&[0.6, 0.3, 0.1])?;
    let s = probs(&[0.2, 0.5, 0.3])?;
    let a: f64 = 0.3;
    for steps in 1..=4 {
        let iterate = Iterate::new(ConvexMixture::new(a)?, steps)?;
        let q = iterate.build(from_ref(&t), from_ref(&s))?;
        let shrink = (1.0 - a).powi(steps as i32);
        for i in 0..3 {
            let expected = t.probs()[i] + shrink * (s.probs()[i] - t.probs()[i]);
            assert!((q.probs()[i] - expected).abs() < 1e-15);
        }
        let factor = iterate.contraction_factor().expect("mixture contracts");
        assert!((factor - shrink).abs() < 1e-15);
        assert_eq!(iterate.steps(), steps);
    }
    assert!(matches!(
        Iterate::new(ConvexMixture::new(a)?, 0),
        Err(Error::InvalidParameter { .. })
    ));
    Ok(())
}

#[test]
fn iterate_rejects_invalid_intermediate() -> Result<()> {
    let t = probs(&[0.5, 0.5])?;
    let iterate = Iterate::new(Doubling, 2)?;
    let result = iterate.build(from_ref(&t), from_ref(&t));
    assert!(matches!(result, Err(Error::InvalidOperatorOutput { .. })));
    Ok(())
}

#[test]
fn iterate_appends_to_history() -> Result<()> {
    let t = probs(&[0.6, 0.3, 0.1])?;
    let history = [probs(&[0.2, 0.5, 0.3])?, probs(&[0.3, 0.3, 0.4])?];
    let inner = GeneralizedMixture::single_teacher(0.3, HistoryWeights::Window { length: 2 })?;
    let iterate = Iterate::new(inner.clone(), 3)?;
    let q = iterate.build(from_ref(&t), &history)?;

    let mut students = history.to_vec();
    for _ in 0..3 {
        let next = inner.build(from_ref(&t), &students)?;
        students.push(next);
    }
    assert_eq!(&q, students.last().expect("three steps"));
    assert_eq!(iterate.contraction_factor(), Some(0.7));
    assert!(!iterate.reads_latest_only());
    Ok(())
}

#[test]
fn combinators_work_on_batches_and_dyn() -> Result<()> {
    let teacher = DistributionBatch::from_rows(&[probs(&[0.6, 0.4])?, probs(&[0.1, 0.9])?])?;
    let student = DistributionBatch::from_rows(&[probs(&[0.2, 0.8])?, probs(&[0.5, 0.5])?])?;
    let operators: Vec<Box<dyn OperatorProperties>> = vec![
        Box::new(Iterate::new(ConvexMixture::new(0.3)?, 3)?),
        Box::new(ConvexCombination::new(
            ConvexMixture::new(0.3)?,
            InformationProjection::geometric(0.3)?,
            0.5,
        )?),
        Box::new(PostMapped::new(
            ConvexMixture::new(0.3)?,
            PostMap::SmoothUniform { epsilon: 0.1 },
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

#[test]
fn large_vocabulary_combinators() -> Result<()> {
    let mut rng = Lcg::new(41);
    let t = rng.distribution(100_000)?;
    let s = rng.distribution(100_000)?;
    let blend = ConvexCombination::new(
        Iterate::new(ConvexMixture::new(0.3)?, 2)?,
        InformationProjection::geometric(0.3)?,
        0.5,
    )?;
    let q = blend.build(from_ref(&t), from_ref(&s))?;
    assert_distribution(&q);
    let factor = blend.contraction_factor().expect("both contract");
    assert!(kl(&t, &q)? <= factor * kl(&t, &s)?);
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn combination_keeps_anchoring_and_contraction(
        weights in distributions(2),
        a1 in 0.01f64..1.0,
        a2 in 0.01f64..1.0,
        lambda in 0.0f64..=1.0,
    ) {
        let points = build(&weights).expect("positive weights");
        let (t, s) = (&points[0], &points[1]);
        let blend = ConvexCombination::new(ConvexMixture::new(a1).unwrap(), ConvexMixture::new(a2).unwrap(), lambda).unwrap();
        let q = blend.build(from_ref(t), from_ref(s)).unwrap();
        assert_distribution(&q);
        prop_assert!(q.is_strictly_positive());
        prop_assert!(effective_anchor_weight(&q, t).unwrap() >= blend.anchor_weight() * (1.0 - 1e-12));
        let factor = blend.contraction_factor().unwrap();
        prop_assert!(kl(t, &q).unwrap() <= factor * kl(t, s).unwrap() * (1.0 + 1e-12) + 1e-15);

        let mixed = ConvexCombination::new(ConvexMixture::new(a1).unwrap(), InformationProjection::geometric(a2).unwrap(), lambda).unwrap();
        let r = mixed.build(from_ref(t), from_ref(s)).unwrap();
        let factor = mixed.contraction_factor().unwrap();
        prop_assert!(kl(t, &r).unwrap() <= factor * kl(t, s).unwrap() * (1.0 + 1e-12) + 1e-15);
    }

    #[test]
    fn iterate_contracts_by_power(weights in distributions(2), anchor in 0.01f64..1.0, steps in 1usize..5) {
        let points = build(&weights).expect("positive weights");
        let (t, s) = (&points[0], &points[1]);
        let iterate = Iterate::new(InformationProjection::geometric(anchor).unwrap(), steps).unwrap();
        let q = iterate.build(from_ref(t), from_ref(s)).unwrap();
        assert_distribution(&q);
        let factor = iterate.contraction_factor().unwrap();
        prop_assert!(kl(t, &q).unwrap() <= factor * kl(t, s).unwrap() * (1.0 + 1e-12) + 1e-15);

        let mixture = Iterate::new(ConvexMixture::new(anchor).unwrap(), steps).unwrap();
        let m = mixture.build(from_ref(t), from_ref(s)).unwrap();
        prop_assert!(min_ratio(&m, t) >= mixture.anchor_weight() * (1.0 - 1e-12));
    }

    #[test]
    fn smoothing_keeps_pointwise_anchor(weights in distributions(2), anchor in 0.01f64..1.0, epsilon in 0.0f64..=1.0) {
        let points = build(&weights).expect("positive weights");
        let (t, s) = (&points[0], &points[1]);
        let smoothed = PostMapped::new(ConvexMixture::new(anchor).unwrap(), PostMap::SmoothUniform { epsilon }).unwrap();
        let q = smoothed.build(from_ref(t), from_ref(s)).unwrap();
        assert_distribution(&q);
        prop_assert!(effective_anchor_weight(&q, t).unwrap() >= smoothed.anchor_weight() * (1.0 - 1e-12));
    }
}
