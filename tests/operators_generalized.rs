//! Tests of the generalized mixture: weights, history schemes, equilibria and contraction.

mod operators_support;

use std::slice::from_ref;

use metadistill::divergence::kl;
use metadistill::recursion::run_exact;
use metadistill::{
    Distribution, DistributionBatch, Error, GeneralizedMixture, HistoryWeights,
    MetaTeacherOperator, Real, Result, Weights, effective_anchor_weight,
};
use ndarray::{Array1, ArrayView1};
use operators_support::{Lcg, assert_distribution, build, config, distributions};
use proptest::prelude::*;

/// Converts an `f64` literal to `F`.
fn c<F: Real>(value: f64) -> F {
    F::from(value).unwrap()
}

/// Converts `f64` literals to a vector of `F`.
fn values<F: Real>(entries: &[f64]) -> Vec<F> {
    entries.iter().map(|&x| c(x)).collect()
}

/// Builds a distribution from `f64` literals.
fn probs<F: Real>(entries: &[f64]) -> Result<Distribution<F>> {
    Distribution::from_probs(&values::<F>(entries))
}

/// Returns a tolerance of `count` machine epsilons of `F`.
fn ulps<F: Real>(count: f64) -> F {
    c::<F>(count) * F::epsilon()
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

fn weights_reject_bad_entries<F: Real>() -> Result<()> {
    let minus = c::<F>(-0.1);
    let negative = Weights::new(&[c(0.5), minus, c(0.6)]);
    assert_eq!(
        negative,
        Err(Error::InvalidWeight {
            what: "weight",
            index: 1,
            value: minus.to_f64().unwrap()
        })
    );
    assert!(matches!(
        Weights::new(&[c(0.5), F::nan()]),
        Err(Error::InvalidWeight { index: 1, .. })
    ));
    assert!(matches!(
        Weights::new(&values::<F>(&[0.5, 0.6])),
        Err(Error::WeightsNotNormalized { .. })
    ));
    assert!(matches!(Weights::<F>::new(&[]), Err(Error::Empty { .. })));
    assert!(matches!(
        Weights::normalize(&[F::zero(), F::zero()]),
        Err(Error::AllZeroWeights { count: 2, .. })
    ));
    assert!(matches!(
        Weights::normalize(&[F::one(), F::infinity()]),
        Err(Error::InvalidWeight { index: 1, .. })
    ));
    assert!(matches!(Weights::<F>::uniform(0), Err(Error::Empty { .. })));
    Ok(())
}

fn weights_normalize_explicitly<F: Real>() -> Result<()> {
    let weights = Weights::normalize(&values::<F>(&[3.0, 1.0]))?;
    assert_eq!(weights.as_slice(), values::<F>(&[0.75, 0.25]).as_slice());
    let single = Weights::<F>::uniform(4)?;
    assert_eq!(single.as_slice(), values::<F>(&[0.25; 4]).as_slice());
    Ok(())
}

fn constructor_rejects_bad_parameters<F: Real>() -> Result<()> {
    let one = || Weights::<F>::uniform(1);
    assert!(matches!(
        GeneralizedMixture::new(F::zero(), one()?, HistoryWeights::Latest),
        Err(Error::InvalidAnchorWeight { .. })
    ));
    assert!(matches!(
        GeneralizedMixture::new(F::nan(), one()?, HistoryWeights::Latest),
        Err(Error::InvalidAnchorWeight { .. })
    ));
    assert!(matches!(
        GeneralizedMixture::new(c(0.5), one()?, HistoryWeights::Window { length: 0 }),
        Err(Error::InvalidParameter {
            name: "history window length",
            ..
        })
    ));
    let bad_decay = HistoryWeights::ExponentialDecay {
        decay: c(1.5),
        length: 3,
    };
    assert!(matches!(
        GeneralizedMixture::new(c(0.5), one()?, bad_decay),
        Err(Error::InvalidParameter {
            name: "history decay factor",
            ..
        })
    ));
    let bad_quality = HistoryWeights::Quality {
        sharpness: c(-1.0),
        length: 3,
    };
    assert!(matches!(
        GeneralizedMixture::new(c(0.5), one()?, bad_quality),
        Err(Error::InvalidParameter {
            name: "quality sharpness",
            ..
        })
    ));
    Ok(())
}

fn combine_rejects_wrong_teacher_count<F: Real>() -> Result<()> {
    let operator =
        GeneralizedMixture::new(c::<F>(0.5), Weights::uniform(2)?, HistoryWeights::Latest)?;
    let t = probs::<F>(&[0.5, 0.5])?;
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
    let empty: [Distribution<F>; 0] = [];
    assert!(matches!(
        operator.build(&[t.clone(), t], &empty),
        Err(Error::Empty { .. })
    ));
    Ok(())
}

fn history_schemes_give_documented_weights<F: Real>() -> Result<()> {
    let t = probs::<F>(&[1.0, 0.0, 0.0])?;
    let history = [
        probs::<F>(&[0.0, 1.0, 0.0])?,
        probs(&[0.0, 0.0, 1.0])?,
        probs(&[0.0, 0.5, 0.5])?,
    ];
    let views: Vec<_> = history.iter().map(Distribution::probs).collect();
    let teachers = [t.probs()];
    let weights = |scheme| -> Result<Vec<F>> {
        GeneralizedMixture::single_teacher(c(0.5), scheme)?.student_weights(&teachers, &views)
    };

    assert_eq!(weights(HistoryWeights::Latest)?, vec![F::one()]);
    assert_eq!(
        weights(HistoryWeights::Window { length: 2 })?,
        values::<F>(&[0.5, 0.5])
    );
    let decay = weights(HistoryWeights::ExponentialDecay {
        decay: c(0.5),
        length: usize::MAX,
    })?;
    // One compensated sum and one division per weight: within 4.5 ε.
    let expected = [4.0 / 7.0, 2.0 / 7.0, 1.0 / 7.0];
    for (&found, wanted) in decay.iter().zip(expected) {
        assert!((found - c(wanted)).abs() < ulps(4.5));
    }
    let explicit = weights(HistoryWeights::Explicit(Weights::new(&values::<F>(&[
        0.2, 0.8,
    ]))?))?;
    assert_eq!(explicit, values::<F>(&[0.2, 0.8]));
    Ok(())
}

fn short_history_reweights_available_students<F: Real>() -> Result<()> {
    let t = probs::<F>(&[0.6, 0.4])?;
    let history = [probs::<F>(&[0.2, 0.8])?, probs(&[0.4, 0.6])?];
    let views: Vec<_> = history.iter().map(Distribution::probs).collect();
    let teachers = [t.probs()];
    let weights = |scheme| -> Result<Vec<F>> {
        GeneralizedMixture::single_teacher(c(0.5), scheme)?.student_weights(&teachers, &views)
    };

    assert_eq!(
        weights(HistoryWeights::Window { length: 5 })?,
        values::<F>(&[0.5, 0.5])
    );
    let explicit = Weights::new(&values::<F>(&[0.1, 0.3, 0.6]))?;
    let truncated = weights(HistoryWeights::Explicit(explicit))?;
    // 0.1 / 0.4 and 0.3 / 0.4 from inputs rounded to F: within 4.5 ε.
    assert!((truncated[0] - c(0.25)).abs() < ulps(4.5));
    assert!((truncated[1] - c(0.75)).abs() < ulps(4.5));

    // Only lags missing from the history carry weight: the oldest student gets it all.
    let late = Weights::new(&values::<F>(&[0.0, 0.0, 1.0]))?;
    assert_eq!(
        weights(HistoryWeights::Explicit(late))?,
        vec![F::zero(), F::one()]
    );
    Ok(())
}

fn quality_weights_favor_closer_students<F: Real>() -> Result<()> {
    let t = probs::<F>(&[0.6, 0.3, 0.1])?;
    let far = probs::<F>(&[0.1, 0.1, 0.8])?;
    let near = probs::<F>(&[0.55, 0.3, 0.15])?;
    let views = [far.probs(), near.probs()];
    let scheme = HistoryWeights::Quality {
        sharpness: c(2.0),
        length: 2,
    };
    let operator = GeneralizedMixture::single_teacher(c(0.5), scheme)?;
    let weights = operator.student_weights(&[t.probs()], &views)?;

    let d_far = kl(&t, &far)?;
    let d_near = kl(&t, &near)?;
    let expected_near = F::one() / (F::one() + (c::<F>(-2.0) * (d_far - d_near)).exp());
    // Two KL values, an exponential and a normalization: 45 ε (1e-14 in f64).
    assert!((weights[0] - expected_near).abs() < ulps(45.0));
    assert!(weights[0] > weights[1]);

    let flat = HistoryWeights::Quality {
        sharpness: F::zero(),
        length: 2,
    };
    let flat = GeneralizedMixture::single_teacher(c(0.5), flat)?;
    assert_eq!(
        flat.student_weights(&[t.probs()], &views)?,
        values::<F>(&[0.5, 0.5])
    );
    Ok(())
}

fn quality_weights_equal_when_all_infinite<F: Real>() -> Result<()> {
    let t = probs::<F>(&[0.5, 0.5])?;
    let a = probs::<F>(&[1.0, 0.0])?;
    let b = probs::<F>(&[0.0, 1.0])?;
    let scheme = HistoryWeights::Quality {
        sharpness: F::one(),
        length: 2,
    };
    let operator = GeneralizedMixture::single_teacher(c(0.5), scheme)?;
    let weights = operator.student_weights(&[t.probs()], &[a.probs(), b.probs()])?;
    assert_eq!(weights, values::<F>(&[0.5, 0.5]));
    Ok(())
}

fn mixture_formula_matches_hand_computation<F: Real>() -> Result<()> {
    let teachers = [probs::<F>(&[0.6, 0.3, 0.1])?, probs(&[0.2, 0.2, 0.6])?];
    let history = [probs::<F>(&[0.2, 0.5, 0.3])?, probs(&[0.4, 0.4, 0.2])?];
    let operator = GeneralizedMixture::new(
        c(0.4),
        Weights::new(&values::<F>(&[0.75, 0.25]))?,
        HistoryWeights::Window { length: 2 },
    )?;
    let q = operator.build(&teachers, &history)?;
    let (a, rest, half) = (c::<F>(0.4), c::<F>(0.6), c::<F>(0.5));
    for token in 0..3 {
        let teacher_part =
            c::<F>(0.75) * teachers[0].probs()[token] + c::<F>(0.25) * teachers[1].probs()[token];
        let student_part = half * history[0].probs()[token] + half * history[1].probs()[token];
        let expected = a * teacher_part + rest * student_part;
        // Products and sums of four terms in a different order: within 4.5 ε.
        assert!((q.probs()[token] - expected).abs() < ulps(4.5));
    }
    assert!((operator.anchor_weight() - c(0.3)).abs() < ulps(4.5));
    Ok(())
}

fn multi_teacher_equilibrium_is_teacher_mixture<F: Real>() -> Result<()> {
    let teachers = [
        probs::<F>(&[0.6, 0.3, 0.1])?,
        probs(&[0.1, 0.1, 0.8])?,
        probs(&[0.3, 0.4, 0.3])?,
    ];
    let w = values::<F>(&[0.5, 0.3, 0.2]);
    let start = probs::<F>(&[0.2, 0.5, 0.3])?;
    let schemes = [
        HistoryWeights::Latest,
        HistoryWeights::Window { length: 4 },
        HistoryWeights::ExponentialDecay {
            decay: c(0.7),
            length: 5,
        },
        HistoryWeights::Quality {
            sharpness: c(3.0),
            length: 3,
        },
    ];
    for scheme in schemes {
        let operator = GeneralizedMixture::new(c(0.3), Weights::new(&w)?, scheme)?;
        let run = run_exact(&operator, &teachers, &start, 300)?;
        let last = run.final_student().distribution(0).expect("one input");
        for token in 0..3 {
            let mixture: F = (0..3).map(|k| w[k] * teachers[k].probs()[token]).sum();
            // 300 steps leave (0.7)^300 of the start error; what remains is
            // the rounding each step adds, well within 4500 ε (1e-12 in f64).
            assert!(
                (last.probs()[token] - mixture).abs() < ulps(4500.0),
                "{}",
                operator.name()
            );
        }
    }
    Ok(())
}

fn history_contraction_bound_holds_along_run<F: Real>() -> Result<()> {
    let t = probs::<F>(&[0.6, 0.3, 0.1])?;
    let start = probs::<F>(&[0.2, 0.5, 0.3])?;
    let scheme = HistoryWeights::ExponentialDecay {
        decay: c(0.6),
        length: 4,
    };
    let operator = GeneralizedMixture::single_teacher(c(0.3), scheme)?;
    let run = run_exact(&operator, from_ref(&t), &start, 30)?;
    let students: Vec<Distribution<F>> = run
        .students()
        .iter()
        .map(|b| b.distribution(0).expect("one input"))
        .collect();
    for g in 0..30 {
        let views: Vec<_> = students[..=g].iter().map(Distribution::probs).collect();
        let v = operator.student_weights(&[t.probs()], &views)?;
        let mut bound = F::zero();
        for (lag, &weight) in v.iter().enumerate() {
            bound = bound + weight * kl(&t, &students[g - lag])?;
        }
        let next = kl(&t, &students[g + 1])?;
        // Convexity gives the bound exactly; 4500 ε (1e-12 in f64) of relative
        // slack covers the rounding of the stored iterates.
        assert!(
            next <= c::<F>(0.7) * bound * (F::one() + ulps(4500.0)),
            "generation {g}"
        );
    }
    Ok(())
}

fn batch_runs_row_by_row<F: Real>() -> Result<()> {
    let teacher = DistributionBatch::from_rows(&[probs::<F>(&[0.6, 0.4])?, probs(&[0.1, 0.9])?])?;
    let student = DistributionBatch::from_rows(&[probs::<F>(&[0.2, 0.8])?, probs(&[0.5, 0.5])?])?;
    let operator = GeneralizedMixture::single_teacher(c(0.5), HistoryWeights::Latest)?;
    let q = operator.build_batch(&[teacher], &[student])?;
    let row = q.distribution(1).expect("two inputs");
    assert!((row.probs()[0] - c(0.3)).abs() < ulps(4.5));
    Ok(())
}

fn large_vocabulary_contracts<F: Real>() -> Result<()> {
    let mut rng = Lcg::new(17);
    let narrow = |p: Distribution| Distribution::<F>::from_weights(&p.probs().mapv(c::<F>));
    let t = narrow(rng.distribution(100_000)?)?;
    let s = narrow(rng.distribution(100_000)?)?;
    let operator = GeneralizedMixture::single_teacher(c(0.3), HistoryWeights::Latest)?;
    let q = operator.build(from_ref(&t), from_ref(&s))?;
    assert!(kl(&t, &q)? <= c::<F>(0.7) * kl(&t, &s)?);
    // q_i / t_i >= a up to the rounding of one mixture and one division: 4.5 ε.
    assert!(effective_anchor_weight(&q, &t)? >= c::<F>(0.3) - ulps(4.5));
    Ok(())
}

fn combine_into_writes_caller_buffer<F: Real>() -> Result<()> {
    let t = probs::<F>(&[0.6, 0.4])?;
    let s = probs::<F>(&[0.2, 0.8])?;
    let operator = GeneralizedMixture::single_teacher(c(0.5), HistoryWeights::Latest)?;
    let mut buffer = Array1::from_elem(2, c::<F>(7.0));
    operator.combine_into(&[t.probs()], &[s.probs()], buffer.view_mut())?;
    assert!((buffer[0] - c(0.4)).abs() < ulps(4.5));
    let strided = values::<F>(&[0.6, 9.0, 0.4]);
    let shape = ndarray::ShapeBuilder::strides(ndarray::Ix1(2), ndarray::Ix1(2));
    let view = ArrayView1::from_shape(shape, &strided).expect("valid strides");
    let scheme = HistoryWeights::Quality {
        sharpness: F::one(),
        length: 2,
    };
    let quality = GeneralizedMixture::single_teacher(c(0.5), scheme)?;
    let history = [s.probs(), t.probs()];
    let from_strided = quality.student_weights(&[view], &history)?;
    let from_contiguous = quality.student_weights(&[t.probs()], &history)?;
    assert_eq!(from_strided, from_contiguous);
    assert!(from_strided[0] > from_strided[1]);
    Ok(())
}

for_both_floats!(
    weights_reject_bad_entries,
    weights_normalize_explicitly,
    constructor_rejects_bad_parameters,
    combine_rejects_wrong_teacher_count,
    history_schemes_give_documented_weights,
    short_history_reweights_available_students,
    quality_weights_favor_closer_students,
    quality_weights_equal_when_all_infinite,
    mixture_formula_matches_hand_computation,
    multi_teacher_equilibrium_is_teacher_mixture,
    history_contraction_bound_holds_along_run,
    batch_runs_row_by_row,
    large_vocabulary_contracts,
    combine_into_writes_caller_buffer,
);

#[test]
fn f32_mixture_matches_f64() -> Result<()> {
    let t32 = Distribution::<f32>::from_probs(&[0.6, 0.3, 0.1])?;
    let s32 = Distribution::<f32>::from_probs(&[0.2, 0.5, 0.3])?;
    let operator = GeneralizedMixture::<f32>::single_teacher(0.3, HistoryWeights::Latest)?;
    let q = operator.build(&[t32], &[s32])?;
    assert!((q.probs()[0] - 0.32).abs() < 1e-6);
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

        // The same case in f32, with 4500 ε of relative slack (1e-12 in f64).
        let narrow: Vec<Distribution<f32>> = points.iter().map(|p| Distribution::from_weights(&p.probs().mapv(|x| x as f32)).unwrap()).collect();
        let (teachers, students) = narrow.split_at(2);
        let operator = GeneralizedMixture::new(anchor as f32, Weights::new(&[0.5, 0.5]).unwrap(), HistoryWeights::Window { length: 2 }).unwrap();
        let q = operator.build(teachers, students).unwrap();
        prop_assert!(q.is_strictly_positive());
        let a_star = effective_anchor_weight(&q, &teachers[0]).unwrap();
        prop_assert!(a_star >= operator.anchor_weight() * (1.0 - 4500.0 * f32::EPSILON));
    }

    #[test]
    fn single_teacher_contracts(weights in distributions(2), anchor in 0.01f64..1.0) {
        let points = build(&weights).expect("positive weights");
        let operator = GeneralizedMixture::single_teacher(anchor, HistoryWeights::Latest).unwrap();
        let q = operator.build(&points[..1], &points[1..]).unwrap();
        let before = kl(&points[0], &points[1]).unwrap();
        let after = kl(&points[0], &q).unwrap();
        prop_assert!(after <= (1.0 - anchor) * before * (1.0 + 1e-12) + 1e-15);

        // The same case in f32: 4500 ε relative and 4.5 ε absolute slack, as 1e-12 and 1e-15 in f64.
        let narrow: Vec<Distribution<f32>> = points.iter().map(|p| Distribution::from_weights(&p.probs().mapv(|x| x as f32)).unwrap()).collect();
        let anchor = anchor as f32;
        let operator = GeneralizedMixture::single_teacher(anchor, HistoryWeights::Latest).unwrap();
        let q = operator.build(&narrow[..1], &narrow[1..]).unwrap();
        let before = kl(&narrow[0], &narrow[1]).unwrap();
        let after = kl(&narrow[0], &q).unwrap();
        prop_assert!(after <= (1.0 - anchor) * before * (1.0 + 4500.0 * f32::EPSILON) + 4.5 * f32::EPSILON);
    }
}
