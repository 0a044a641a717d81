//! Tests of the generalized mixture: weights, history schemes, equilibria and contraction.

mod operators_support;

use std::slice::from_ref;

use metadistill::divergence::kl;
use metadistill::recursion::run_exact;
use metadistill::{
    Distribution, DistributionBatch, Error, GeneralizedMixture, HistoryWeights,
    MetaTeacherOperator, Result, Weights, effective_anchor_weight,
};
use ndarray::{Array1, ArrayView1};
use operators_support::{Lcg, assert_distribution, build, config, distributions};
use proptest::prelude::*;

fn probs(values: &[f64]) -> Result<Distribution> {
    Distribution::from_probs(values)
}

#[test]
fn weights_reject_bad_entries() {
    let negative = Weights::new(&[0.5, -0.1, 0.6]);
    assert_eq!(
        negative,
        Err(Error::InvalidWeight {
            what: "weight",
            index: 1,
            value: -0.1
        })
    );
    assert!(matches!(
        Weights::new(&[0.5, f64::NAN]),
        Err(Error::InvalidWeight { index: 1, .. })
    ));
    assert!(matches!(
        Weights::new(&[0.5, 0.6]),
        Err(Error::WeightsNotNormalized { .. })
    ));
    assert!(matches!(Weights::<f64>::new(&[]), Err(Error::Empty { .. })));
    assert!(matches!(
        Weights::normalize(&[0.0, 0.0]),
        Err(Error::AllZeroWeights { count: 2, .. })
    ));
    assert!(matches!(
        Weights::normalize(&[1.0, f64::INFINITY]),
        Err(Error::InvalidWeight { index: 1, .. })
    ));
    assert!(matches!(
        Weights::<f64>::uniform(0),
        Err(Error::Empty { .. })
    ));
}

#[test]
fn weights_normalize_explicitly() -> Result<()> {
    let weights = Weights::normalize(&[3.0, 1.0])?;
    assert_eq!(weights.as_slice(), &[0.75, 0.25]);
    let single = Weights::<f32>::uniform(4)?;
    assert_eq!(single.as_slice(), &[0.25f32; 4]);
    Ok(())
}

#[test]
fn constructor_rejects_bad_parameters() -> Result<()> {
    let one = || Weights::uniform(1);
    assert!(matches!(
        GeneralizedMixture::new(0.0, one()?, HistoryWeights::Latest),
        Err(Error::InvalidAnchorWeight { .. })
    ));
    assert!(matches!(
        GeneralizedMixture::new(f64::NAN, one()?, HistoryWeights::Latest),
        Err(Error::InvalidAnchorWeight { .. })
    ));
    assert!(matches!(
        GeneralizedMixture::new(0.5, one()?, HistoryWeights::Window { length: 0 }),
        Err(Error::InvalidParameter {
            name: "history window length",
            ..
        })
    ));
    let bad_decay = HistoryWeights::ExponentialDecay {
        decay: 1.5,
        length: 3,
    };
    assert!(matches!(
        GeneralizedMixture::new(0.5, one()?, bad_decay),
        Err(Error::InvalidParameter {
            name: "history decay factor",
            ..
        })
    ));
    let bad_quality = HistoryWeights::Quality {
        sharpness: -1.0,
        length: 3,
    };
    assert!(matches!(
        GeneralizedMixture::new(0.5, one()?, bad_quality),
        Err(Error::InvalidParameter {
            name: "quality sharpness",
            ..
        })
    ));
    Ok(())
}

#[test]
fn combine_rejects_wrong_teacher_count() -> Result<()> {
    let operator = GeneralizedMixture::new(0.5, Weights::uniform(2)?, HistoryWeights::Latest)?;
    let t = probs(&[0.5, 0.5])?;
    let result = operator.build(from_ref(&t), from_ref(&t));
    assert!(matches!(
        result,
        Err(Error::TeacherWeightCount {
            expected: 2,
            found: 1,
            ..
        })
    ));
    let message = operator
        .build(from_ref(&t), from_ref(&t))
        .unwrap_err()
        .to_string();
    assert!(message.contains("takes 2 base teachers"), "{message}");
    let empty: [Distribution; 0] = [];
    assert!(matches!(
        operator.build(&[t.clone(), t], &empty),
        Err(Error::Empty { .. })
    ));
    Ok(())
}

#[test]
fn history_schemes_give_documented_weights() -> Result<()> {
    let t = probs(&[1.0, 0.0, 0.0])?;
    let history = [
        probs(&[0.0, 1.0, 0.0])?,
        probs(&[0.0, 0.0, 1.0])?,
        probs(&[0.0, 0.5, 0.5])?,
    ];
    let views: Vec<_> = history.iter().map(Distribution::probs).collect();
    let teachers = [t.probs()];
    let weights = |scheme| -> Result<Vec<f64>> {
        GeneralizedMixture::single_teacher(0.5, scheme)?.student_weights(&teachers, &views)
    };

    assert_eq!(weights(HistoryWeights::Latest)?, vec![1.0]);
    assert_eq!(
        weights(HistoryWeights::Window { length: 2 })?,
        vec![0.5, 0.5]
    );
    let decay = weights(HistoryWeights::ExponentialDecay {
        decay: 0.5,
        length: usize::MAX,
    })?;
    let expected = [4.0 / 7.0, 2.0 / 7.0, 1.0 / 7.0];
    for (found, wanted) in decay.iter().zip(expected) {
        assert!((found - wanted).abs() < 1e-15);
    }
    let explicit = weights(HistoryWeights::Explicit(Weights::new(&[0.2, 0.8])?))?;
    assert_eq!(explicit, vec![0.2, 0.8]);
    Ok(())
}

#[test]
fn short_history_reweights_available_students() -> Result<()> {
    let t = probs(&[0.6, 0.4])?;
    let history = [probs(&[0.2, 0.8])?, probs(&[0.4, 0.6])?];
    let views: Vec<_> = history.iter().map(Distribution::probs).collect();
    let teachers = [t.probs()];
    let weights = |scheme| -> Result<Vec<f64>> {
        GeneralizedMixture::single_teacher(0.5, scheme)?.student_weights(&teachers, &views)
    };

    assert_eq!(
        weights(HistoryWeights::Window { length: 5 })?,
        vec![0.5, 0.5]
    );
    let explicit = Weights::new(&[0.1, 0.3, 0.6])?;
    let truncated = weights(HistoryWeights::Explicit(explicit))?;
    assert!((truncated[0] - 0.25).abs() < 1e-15);
    assert!((truncated[1] - 0.75).abs() < 1e-15);

    // Only lags missing from the history carry weight: the oldest student gets it all.
    let late = Weights::new(&[0.0, 0.0, 1.0])?;
    assert_eq!(weights(HistoryWeights::Explicit(late))?, vec![0.0, 1.0]);
    Ok(())
}

#[test]
fn quality_weights_favor_closer_students() -> Result<()> {
    let t = probs(&[0.6, 0.3, 0.1])?;
    let far = probs(&[0.1, 0.1, 0.8])?;
    let near = probs(&[0.55, 0.3, 0.15])?;
    let views = [far.probs(), near.probs()];
    let scheme = HistoryWeights::Quality {
        sharpness: 2.0,
        length: 2,
    };
    let operator = GeneralizedMixture::single_teacher(0.5, scheme)?;
    let weights = operator.student_weights(&[t.probs()], &views)?;

    let d_far = kl(&t, &far)?;
    let d_near = kl(&t, &near)?;
    let expected_near = 1.0 / (1.0 + (-2.0 * (d_far - d_near)).exp());
    assert!((weights[0] - expected_near).abs() < 1e-14);
    assert!(weights[0] > weights[1]);

    let flat = HistoryWeights::Quality {
        sharpness: 0.0,
        length: 2,
    };
    let flat = GeneralizedMixture::single_teacher(0.5, flat)?;
    assert_eq!(flat.student_weights(&[t.probs()], &views)?, vec![0.5, 0.5]);
    Ok(())
}

#[test]
fn quality_weights_equal_when_all_infinite() -> Result<()> {
    let t = probs(&[0.5, 0.5])?;
    let a = probs(&[1.0, 0.0])?;
    let b = probs(&[0.0, 1.0])?;
    let scheme = HistoryWeights::Quality {
        sharpness: 1.0,
        length: 2,
    };
    let operator = GeneralizedMixture::single_teacher(0.5, scheme)?;
    let weights = operator.student_weights(&[t.probs()], &[a.probs(), b.probs()])?;
    assert_eq!(weights, vec![0.5, 0.5]);
    Ok(())
}

#[test]
fn mixture_formula_matches_hand_computation() -> Result<()> {
    let teachers = [probs(&[0.6, 0.3, 0.1])?, probs(&[0.2, 0.2, 0.6])?];
    let history = [probs(&[0.2, 0.5, 0.3])?, probs(&[0.4, 0.4, 0.2])?];
    let operator = GeneralizedMixture::new(
        0.4,
        Weights::new(&[0.75, 0.25])?,
        HistoryWeights::Window { length: 2 },
    )?;
    let q = operator.build(&teachers, &history)?;
    for token in 0..3 {
        let teacher_part = 0.75 * teachers[0].probs()[token] + 0.25 * teachers[1].probs()[token];
        let student_part = 0.5 * history[0].probs()[token] + 0.5 * history[1].probs()[token];
        let expected = 0.4 * teacher_part + 0.6 * student_part;
        assert!((q.probs()[token] - expected).abs() < 1e-15);
    }
    assert!((operator.anchor_weight() - 0.3).abs() < 1e-15);
    Ok(())
}

#[test]
fn multi_teacher_equilibrium_is_teacher_mixture() -> Result<()> {
    let teachers = [
        probs(&[0.6, 0.3, 0.1])?,
        probs(&[0.1, 0.1, 0.8])?,
        probs(&[0.3, 0.4, 0.3])?,
    ];
    let w = [0.5, 0.3, 0.2];
    let start = probs(&[0.2, 0.5, 0.3])?;
    let schemes = [
        HistoryWeights::Latest,
        HistoryWeights::Window { length: 4 },
        HistoryWeights::ExponentialDecay {
            decay: 0.7,
            length: 5,
        },
        HistoryWeights::Quality {
            sharpness: 3.0,
            length: 3,
        },
    ];
    for scheme in schemes {
        let operator = GeneralizedMixture::new(0.3, Weights::new(&w)?, scheme)?;
        let run = run_exact(&operator, &teachers, &start, 300)?;
        let last = run.final_student().distribution(0).expect("one input");
        for token in 0..3 {
            let mixture: f64 = (0..3).map(|k| w[k] * teachers[k].probs()[token]).sum();
            assert!(
                (last.probs()[token] - mixture).abs() < 1e-12,
                "{}",
                operator.name()
            );
        }
    }
    Ok(())
}

#[test]
fn history_contraction_bound_holds_along_run() -> Result<()> {
    let t = probs(&[0.6, 0.3, 0.1])?;
    let start = probs(&[0.2, 0.5, 0.3])?;
    let scheme = HistoryWeights::ExponentialDecay {
        decay: 0.6,
        length: 4,
    };
    let operator = GeneralizedMixture::single_teacher(0.3, scheme)?;
    let run = run_exact(&operator, from_ref(&t), &start, 30)?;
    let students: Vec<Distribution> = run
        .students()
        .iter()
        .map(|b| b.distribution(0).expect("one input"))
        .collect();
    for g in 0..30 {
        let views: Vec<_> = students[..=g].iter().map(Distribution::probs).collect();
        let v = operator.student_weights(&[t.probs()], &views)?;
        let mut bound = 0.0;
        for (lag, weight) in v.iter().enumerate() {
            bound += weight * kl(&t, &students[g - lag])?;
        }
        let next = kl(&t, &students[g + 1])?;
        assert!(next <= 0.7 * bound * (1.0 + 1e-12), "generation {g}");
    }
    Ok(())
}

#[test]
fn batch_runs_row_by_row() -> Result<()> {
    let teacher = DistributionBatch::from_rows(&[probs(&[0.6, 0.4])?, probs(&[0.1, 0.9])?])?;
    let student = DistributionBatch::from_rows(&[probs(&[0.2, 0.8])?, probs(&[0.5, 0.5])?])?;
    let operator = GeneralizedMixture::single_teacher(0.5, HistoryWeights::Latest)?;
    let q = operator.build_batch(&[teacher], &[student])?;
    let row = q.distribution(1).expect("two inputs");
    assert!((row.probs()[0] - 0.3).abs() < 1e-15);
    Ok(())
}

#[test]
fn f32_mixture_matches_f64() -> Result<()> {
    let t32 = Distribution::<f32>::from_probs(&[0.6, 0.3, 0.1])?;
    let s32 = Distribution::<f32>::from_probs(&[0.2, 0.5, 0.3])?;
    let operator = GeneralizedMixture::<f32>::single_teacher(0.3, HistoryWeights::Latest)?;
    let q = operator.build(&[t32], &[s32])?;
    assert!((q.probs()[0] - 0.32).abs() < 1e-6);
    Ok(())
}

#[test]
fn large_vocabulary_contracts() -> Result<()> {
    let mut rng = Lcg::new(17);
    let t = rng.distribution(100_000)?;
    let s = rng.distribution(100_000)?;
    let operator = GeneralizedMixture::single_teacher(0.3, HistoryWeights::Latest)?;
    let q = operator.build(from_ref(&t), from_ref(&s))?;
    assert_distribution(&q);
    assert!(kl(&t, &q)? <= 0.7 * kl(&t, &s)?);
    assert!(effective_anchor_weight(&q, &t)? >= 0.3 - 1e-12);
    Ok(())
}

#[test]
fn combine_into_writes_caller_buffer() -> Result<()> {
    let t = probs(&[0.6, 0.4])?;
    let s = probs(&[0.2, 0.8])?;
    let operator = GeneralizedMixture::single_teacher(0.5, HistoryWeights::Latest)?;
    let mut buffer = Array1::from_elem(2, 7.0);
    operator.combine_into(&[t.probs()], &[s.probs()], buffer.view_mut())?;
    assert!((buffer[0] - 0.4).abs() < 1e-15);
    let strided = [0.6, 9.0, 0.4];
    let shape = ndarray::ShapeBuilder::strides(ndarray::Ix1(2), ndarray::Ix1(2));
    let view = ArrayView1::from_shape(shape, &strided).expect("valid strides");
    let scheme = HistoryWeights::Quality {
        sharpness: 1.0,
        length: 2,
    };
    let quality = GeneralizedMixture::single_teacher(0.5, scheme)?;
    let history = [s.probs(), t.probs()];
    let from_strided = quality.student_weights(&[view], &history)?;
    let from_contiguous = quality.student_weights(&[t.probs()], &history)?;
    assert_eq!(from_strided, from_contiguous);
    assert!(from_strided[0] > from_strided[1]);
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn output_is_anchored_distribution(weights in distributions(4), anchor in 0.01f64..1.0) {
        let points = build(&weights).expect("positive weights");
        let (teachers, students) = points.split_at(2);
        let scheme = HistoryWeights::Window { length: 2 };
        let operator = GeneralizedMixture::new(anchor, Weights::new(&[0.5, 0.5]).unwrap(), scheme).unwrap();
        let q = operator.build(teachers, students).unwrap();
        assert_distribution(&q);
        prop_assert!(q.is_strictly_positive());
        let a_star = effective_anchor_weight(&q, &teachers[0]).unwrap();
        prop_assert!(a_star >= operator.anchor_weight() * (1.0 - 1e-12));
    }

    #[test]
    fn single_teacher_contracts(weights in distributions(2), anchor in 0.01f64..1.0) {
        let points = build(&weights).expect("positive weights");
        let operator = GeneralizedMixture::single_teacher(anchor, HistoryWeights::Latest).unwrap();
        let q = operator.build(&points[..1], &points[1..]).unwrap();
        let before = kl(&points[0], &points[1]).unwrap();
        let after = kl(&points[0], &q).unwrap();
        prop_assert!(after <= (1.0 - anchor) * before * (1.0 + 1e-12) + 1e-15);
    }
}
