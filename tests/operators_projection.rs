//! Tests of the information projections: closed forms, optimality, fixed points and the solver.

mod operators_support;

use std::slice::from_ref;

use metadistill::divergence::{chi_squared, kl, squared_hellinger};
use metadistill::recursion::run_exact;
use metadistill::{
    ConvexMixture, Distribution, DistributionBatch, Divergence, Error, GeneralizedMixture,
    HistoryWeights, InformationProjection, IterativeProjection, MetaTeacherOperator, MirrorDescent,
    PowerMeanProjection, Result, Weights, amari_alpha, divergence_gradient_into,
    effective_anchor_weight, power_mean_into,
};
use ndarray::Array1;
use operators_support::{Lcg, assert_distribution, build, config, distributions};
use proptest::prelude::*;

fn probs(values: &[f64]) -> Result<Distribution> {
    Distribution::from_probs(values)
}

/// Evaluates `Σ_k w_k D(p_k, q)` for the divergence a projection minimizes.
fn objective(
    kind: PowerMeanProjection,
    points: &[Distribution],
    weights: &[f64],
    q: &Distribution,
) -> Result<f64> {
    let mut total = 0.0;
    for (p, &w) in points.iter().zip(weights) {
        let d = match kind {
            PowerMeanProjection::ForwardKl => kl(p, q)?,
            PowerMeanProjection::ReverseKl => kl(q, p)?,
            PowerMeanProjection::SquaredHellinger => squared_hellinger(p, q)?,
            PowerMeanProjection::ChiSquared => chi_squared(p, q)?,
            PowerMeanProjection::Amari { order } => amari_alpha(p, q, order)?,
            _ => unreachable!("every projection is listed"),
        };
        total += w * d;
    }
    Ok(total)
}

/// Moves `q` along `exp(scale · direction)` and renormalizes.
fn perturb(q: &Distribution, direction: &[f64], scale: f64) -> Result<Distribution> {
    let weights: Vec<f64> = q
        .probs()
        .iter()
        .zip(direction)
        .map(|(&p, &d)| p * (scale * d).exp())
        .collect();
    Distribution::from_weights(weights.as_slice())
}

const KINDS: [PowerMeanProjection; 7] = [
    PowerMeanProjection::ForwardKl,
    PowerMeanProjection::ReverseKl,
    PowerMeanProjection::SquaredHellinger,
    PowerMeanProjection::ChiSquared,
    PowerMeanProjection::Amari { order: -1.5 },
    PowerMeanProjection::Amari { order: 0.3 },
    PowerMeanProjection::Amari { order: 3.0 },
];

#[test]
fn closed_forms_match_formulas() -> Result<()> {
    let points = [probs(&[0.6, 0.3, 0.1])?, probs(&[0.2, 0.5, 0.3])?];
    let w = Weights::new(&[0.3, 0.7])?;
    let p = |k: usize, i: usize| points[k].probs()[i];
    let normalized = |raw: Vec<f64>| -> Vec<f64> {
        let sum: f64 = raw.iter().sum();
        raw.into_iter().map(|x| x / sum).collect()
    };
    let formulas: [(PowerMeanProjection, Vec<f64>); 4] = [
        (
            PowerMeanProjection::ForwardKl,
            (0..3).map(|i| 0.3 * p(0, i) + 0.7 * p(1, i)).collect(),
        ),
        (
            PowerMeanProjection::ReverseKl,
            normalized(
                (0..3)
                    .map(|i| p(0, i).powf(0.3) * p(1, i).powf(0.7))
                    .collect(),
            ),
        ),
        (
            PowerMeanProjection::SquaredHellinger,
            normalized(
                (0..3)
                    .map(|i| (0.3 * p(0, i).sqrt() + 0.7 * p(1, i).sqrt()).powi(2))
                    .collect(),
            ),
        ),
        (
            PowerMeanProjection::ChiSquared,
            normalized(
                (0..3)
                    .map(|i| (0.3 * p(0, i).powi(2) + 0.7 * p(1, i).powi(2)).sqrt())
                    .collect(),
            ),
        ),
    ];
    for (kind, expected) in formulas {
        let q = kind.project(&points, &w)?;
        for (found, wanted) in q.probs().iter().zip(&expected) {
            assert!((found - wanted).abs() < 1e-15, "{kind:?}");
        }
    }
    Ok(())
}

#[test]
fn extreme_orders_stay_finite() -> Result<()> {
    let points = [probs(&[0.6, 0.3, 0.1])?, probs(&[0.2, 0.5, 0.3])?];
    let w = [0.5, 0.5];
    for order in [400.0, -400.0] {
        let q = PowerMeanProjection::Amari { order }.project(&points, &Weights::new(&w)?)?;
        // ln M_b = max ln p + (1/b) ln Σ w (p / max p)^b, a second log-space form.
        let log_means: Vec<f64> = (0..3)
            .map(|i| {
                let values = [points[0].probs()[i], points[1].probs()[i]];
                let top = if order > 0.0 {
                    values[0].max(values[1])
                } else {
                    values[0].min(values[1])
                };
                let sum: f64 = values.iter().map(|v| 0.5 * (v / top).powf(order)).sum();
                top.ln() + sum.ln() / order
            })
            .collect();
        let norm: f64 = log_means.iter().map(|l| l.exp()).sum();
        for (found, l) in q.probs().iter().zip(&log_means) {
            assert!((found - l.exp() / norm).abs() < 1e-13, "order {order}");
        }
    }
    Ok(())
}

#[test]
fn geometric_mean_of_tiny_probabilities() -> Result<()> {
    let tiny = 1e-310;
    let points = [probs(&[tiny, 1.0 - tiny])?, probs(&[0.5, 0.5])?];
    let q = PowerMeanProjection::ReverseKl.project(&points, &Weights::new(&[0.5, 0.5])?)?;
    let expected_ratio = (tiny * 0.5f64).sqrt() / (0.5f64).sqrt();
    assert!(q.probs()[0] > 0.0);
    assert!((q.probs()[0] / q.probs()[1] / expected_ratio - 1.0).abs() < 1e-12);
    Ok(())
}

#[test]
fn disjoint_supports_are_an_error() -> Result<()> {
    let points = [probs(&[1.0, 0.0])?, probs(&[0.0, 1.0])?];
    let w = Weights::new(&[0.5, 0.5])?;
    let geometric = PowerMeanProjection::ReverseKl.project(&points, &w);
    assert!(matches!(geometric, Err(Error::DisjointSupports { .. })));
    let negative = PowerMeanProjection::Amari { order: -1.0 }.project(&points, &w);
    assert!(matches!(negative, Err(Error::DisjointSupports { .. })));
    let hellinger = PowerMeanProjection::SquaredHellinger.project(&points, &w)?;
    assert!((hellinger.probs()[0] - 0.5).abs() < 1e-15);
    Ok(())
}

#[test]
fn power_mean_rejects_bad_input() -> Result<()> {
    let p = Array1::from(vec![0.5, 0.5]);
    let short = Array1::from(vec![1.0]);
    let mut out = Array1::zeros(2);

    assert!(matches!(
        power_mean_into(1.0, &[], &[], out.view_mut()),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        power_mean_into(1.0, &[p.view()], &[0.5, 0.5], out.view_mut()),
        Err(Error::LengthMismatch {
            what: "weight vector",
            ..
        })
    ));
    assert!(matches!(
        power_mean_into(1.0, &[p.view(), short.view()], &[0.5, 0.5], out.view_mut()),
        Err(Error::LengthMismatch { what: "point", .. })
    ));
    assert!(matches!(
        power_mean_into(1.0, &[p.view(), p.view()], &[1.5, -0.5], out.view_mut()),
        Err(Error::InvalidWeight { index: 1, .. })
    ));
    assert!(matches!(
        power_mean_into(1.0, &[p.view(), p.view()], &[0.5, 0.6], out.view_mut()),
        Err(Error::WeightsNotNormalized { .. })
    ));
    assert!(matches!(
        power_mean_into(f64::NAN, &[p.view()], &[1.0], out.view_mut()),
        Err(Error::InvalidParameter { .. })
    ));

    let infinite_order = PowerMeanProjection::Amari {
        order: f64::INFINITY,
    };
    assert!(matches!(
        InformationProjection::single_teacher(infinite_order, 0.5),
        Err(Error::InvalidParameter { .. })
    ));

    let other = probs(&[1.0])?;
    let mismatched = PowerMeanProjection::ForwardKl
        .project(&[probs(&[0.5, 0.5])?, other], &Weights::uniform(2)?);
    assert!(matches!(mismatched, Err(Error::VocabularyMismatch { .. })));
    Ok(())
}

#[test]
fn amari_matches_named_divergences() -> Result<()> {
    let p = probs(&[0.6, 0.3, 0.1])?;
    let q = probs(&[0.2, 0.5, 0.3])?;
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-14 * b.abs().max(1e-300);
    assert!(close(amari_alpha(&p, &q, 1.0)?, kl(&p, &q)?));
    assert!(close(amari_alpha(&p, &q, 0.0)?, kl(&q, &p)?));
    assert!(close(
        amari_alpha(&p, &q, 0.5)?,
        4.0 * squared_hellinger(&p, &q)?
    ));
    assert!(close(amari_alpha(&p, &q, 2.0)?, chi_squared(&p, &q)? / 2.0));
    assert!(close(
        amari_alpha(&p, &q, -1.0)?,
        chi_squared(&q, &p)? / 2.0
    ));
    assert!(matches!(
        amari_alpha(&p, &q, f64::NAN),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        amari_alpha(&p, &probs(&[1.0])?, 0.5),
        Err(Error::VocabularyMismatch { .. })
    ));
    Ok(())
}

#[test]
fn forward_kl_projection_is_mixture() -> Result<()> {
    let t = probs(&[0.6, 0.3, 0.1])?;
    let s = probs(&[0.2, 0.5, 0.3])?;
    let projection = InformationProjection::single_teacher(PowerMeanProjection::ForwardKl, 0.3)?;
    let q = projection.build(from_ref(&t), from_ref(&s))?;
    let mixture = ConvexMixture::new(0.3)?.build(&[t], &[s])?;
    assert_eq!(q, mixture);
    Ok(())
}

#[test]
fn geometric_pool_identity_and_anchoring_gap() -> Result<()> {
    let t = probs(&[0.5, 0.5])?;
    let s = probs(&[0.999, 0.001])?;
    let a = 0.3;
    let q = InformationProjection::geometric(a)?.build(from_ref(&t), from_ref(&s))?;
    let z: f64 = (0..2)
        .map(|i| t.probs()[i].powf(a) * s.probs()[i].powf(1.0 - a))
        .sum();
    let identity = (1.0 - a) * kl(&t, &s)? + z.ln();
    assert!((kl(&t, &q)? - identity).abs() < 1e-14);
    assert!(z <= 1.0);
    // The pool contracts but its effective anchor weight falls below the nominal a.
    assert!(effective_anchor_weight(&q, &t)? < a);
    Ok(())
}

#[test]
fn multi_teacher_fixed_points_are_power_means() -> Result<()> {
    let teachers = [probs(&[0.6, 0.3, 0.1])?, probs(&[0.1, 0.2, 0.7])?];
    let start = probs(&[0.2, 0.5, 0.3])?;
    let w = Weights::new(&[0.4, 0.6])?;
    for kind in [
        PowerMeanProjection::ReverseKl,
        PowerMeanProjection::SquaredHellinger,
        PowerMeanProjection::Amari { order: 3.0 },
    ] {
        let weighting = GeneralizedMixture::new(0.3, w.clone(), HistoryWeights::Latest)?;
        let operator = InformationProjection::new(kind, weighting)?;
        let run = run_exact(&operator, &teachers, &start, 400)?;
        let last = run.final_student().distribution(0).expect("one input");
        let expected = kind.project(&teachers, &w)?;
        for (found, wanted) in last.probs().iter().zip(expected.probs()) {
            assert!((found - wanted).abs() < 1e-12, "{kind:?}");
        }
    }
    Ok(())
}

#[test]
fn large_vocabulary_geometric_pool_contracts() -> Result<()> {
    let mut rng = Lcg::new(5);
    let t = rng.distribution(100_000)?;
    let s = rng.distribution(100_000)?;
    let q = InformationProjection::geometric(0.3)?.build(from_ref(&t), from_ref(&s))?;
    assert_distribution(&q);
    assert!(kl(&t, &q)? <= 0.7 * kl(&t, &s)?);
    Ok(())
}

#[test]
fn projection_runs_on_batches_and_f32() -> Result<()> {
    let teacher = DistributionBatch::from_rows(&[probs(&[0.6, 0.4])?, probs(&[0.1, 0.9])?])?;
    let student = DistributionBatch::from_rows(&[probs(&[0.2, 0.8])?, probs(&[0.5, 0.5])?])?;
    let operator = InformationProjection::geometric(0.5)?;
    let q = operator.build_batch(&[teacher], &[student])?;
    let row = q.distribution(1).expect("two inputs");
    let expected = (0.05f64).sqrt() / ((0.05f64).sqrt() + (0.45f64).sqrt());
    assert!((row.probs()[0] - expected).abs() < 1e-15);

    let t32 = Distribution::<f32>::from_probs(&[0.6, 0.3, 0.1])?;
    let s32 = Distribution::<f32>::from_probs(&[0.2, 0.5, 0.3])?;
    let q32 =
        InformationProjection::<f32>::geometric(0.3)?.build(from_ref(&t32), from_ref(&s32))?;
    assert!(kl(&t32, &q32)? <= 0.7 * kl(&t32, &s32)?);
    Ok(())
}

#[test]
fn solver_matches_every_closed_form() -> Result<()> {
    let points = [
        probs(&[0.6, 0.3, 0.1])?,
        probs(&[0.2, 0.5, 0.3])?,
        probs(&[0.05, 0.15, 0.8])?,
    ];
    let w = Weights::new(&[0.2, 0.3, 0.5])?;
    let pairs = [
        (Divergence::KullbackLeibler, PowerMeanProjection::ForwardKl),
        (
            Divergence::ReverseKullbackLeibler,
            PowerMeanProjection::ReverseKl,
        ),
        (
            Divergence::SquaredHellinger,
            PowerMeanProjection::SquaredHellinger,
        ),
        (Divergence::ChiSquared, PowerMeanProjection::ChiSquared),
    ];
    for (divergence, closed) in pairs {
        let (q, report) = MirrorDescent::default().solve(&divergence, &points, &w)?;
        let exact = closed.project(&points, &w)?;
        for (found, wanted) in q.probs().iter().zip(exact.probs()) {
            assert!((found - wanted).abs() < 1e-8, "{}", divergence.name());
        }
        assert!(report.gap <= MirrorDescent::<f64>::default().tolerance());
    }
    Ok(())
}

#[test]
fn solver_reports_early_stop() -> Result<()> {
    let points = [probs(&[0.98, 0.01, 0.01])?, probs(&[0.01, 0.01, 0.98])?];
    let w = Weights::new(&[0.5, 0.5])?;
    let solver = MirrorDescent::new(1e-14, 1)?;
    let result = solver.solve(&Divergence::JensenShannon, &points, &w);
    assert!(matches!(
        result,
        Err(Error::NotConverged { iterations: 1, .. })
    ));
    Ok(())
}

#[test]
fn solver_rejects_bad_settings() -> Result<()> {
    assert!(matches!(
        MirrorDescent::new(0.0, 10),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        MirrorDescent::new(1e-10, 0),
        Err(Error::InvalidParameter { .. })
    ));
    let weighting = GeneralizedMixture::single_teacher(0.3, HistoryWeights::Latest)?;
    for divergence in [Divergence::TotalVariation, Divergence::max_log_ratio()] {
        let result =
            IterativeProjection::new(divergence, weighting.clone(), MirrorDescent::default());
        assert!(matches!(result, Err(Error::NoGradient { .. })));
    }
    let negative = IterativeProjection::new(
        Divergence::Renyi { order: -1.0 },
        weighting,
        MirrorDescent::default(),
    );
    assert!(matches!(negative, Err(Error::InvalidOrder { .. })));
    Ok(())
}

#[test]
fn gradient_rejects_length_mismatch() {
    let p = Array1::from(vec![0.5, 0.5]);
    let q = Array1::from(vec![1.0]);
    let mut out = Array1::zeros(2);
    let result = divergence_gradient_into(
        &Divergence::KullbackLeibler,
        p.view(),
        q.view(),
        out.view_mut(),
    );
    assert!(matches!(result, Err(Error::LengthMismatch { .. })));
}

#[test]
fn solver_handles_single_token() -> Result<()> {
    let points = [probs(&[1.0])?, probs(&[1.0])?];
    let (q, report) = MirrorDescent::default().solve(
        &Divergence::JensenShannon,
        &points,
        &Weights::uniform(2)?,
    )?;
    assert_eq!(q.probs()[0], 1.0);
    assert_eq!(report.iterations, 0);
    Ok(())
}

#[test]
fn jensen_shannon_operator_in_f32_and_batches() -> Result<()> {
    let weighting = GeneralizedMixture::<f32>::single_teacher(0.3, HistoryWeights::Latest)?;
    let operator = IterativeProjection::new(
        Divergence::JensenShannon,
        weighting,
        MirrorDescent::default(),
    )?;
    let t = Distribution::<f32>::from_probs(&[0.6, 0.3, 0.1])?;
    let s = Distribution::<f32>::from_probs(&[0.2, 0.5, 0.3])?;
    let q = operator.build(from_ref(&t), from_ref(&s))?;
    assert!(kl(&t, &q)? < kl(&t, &s)?);

    let weighting = GeneralizedMixture::single_teacher(0.3, HistoryWeights::Latest)?;
    let operator = IterativeProjection::new(
        Divergence::JensenShannon,
        weighting,
        MirrorDescent::default(),
    )?;
    let teacher = DistributionBatch::from_rows(&[probs(&[0.6, 0.4])?, probs(&[0.1, 0.9])?])?;
    let student = DistributionBatch::from_rows(&[probs(&[0.2, 0.8])?, probs(&[0.5, 0.5])?])?;
    let batch = operator.build_batch(&[teacher], &[student])?;
    let row = batch.distribution(1).expect("two inputs");
    let single = operator.build(&[probs(&[0.1, 0.9])?], &[probs(&[0.5, 0.5])?])?;
    assert_eq!(row, single);
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn projections_minimize_objective(weights in distributions(3), direction in prop::collection::vec(-1.0f64..1.0, 40)) {
        let points = build(&weights).expect("positive weights");
        let w = [0.2, 0.3, 0.5];
        let pool = Weights::new(&w).unwrap();
        for kind in KINDS {
            let q = kind.project(&points, &pool).unwrap();
            assert_distribution(&q);
            prop_assert!(q.is_strictly_positive());
            let best = objective(kind, &points, &w, &q).unwrap();
            for scale in [1e-3, 1e-1, 1.0] {
                let other = perturb(&q, &direction[..q.len()], scale).unwrap();
                let value = objective(kind, &points, &w, &other).unwrap();
                prop_assert!(best <= value + 1e-12 * value.abs().max(1e-3), "{kind:?}: {best} > {value}");
            }
        }
    }

    #[test]
    fn solver_minimizes_jensen_shannon(weights in distributions(3), direction in prop::collection::vec(-1.0f64..1.0, 40)) {
        let points = build(&weights).expect("positive weights");
        let w = [0.2, 0.3, 0.5];
        let (q, _) = MirrorDescent::default()
            .solve(&Divergence::JensenShannon, &points, &Weights::new(&w).unwrap())
            .unwrap();
        assert_distribution(&q);
        prop_assert!(q.is_strictly_positive());
        let js = |q: &Distribution| -> f64 {
            points.iter().zip(w).map(|(p, w)| w * Divergence::JensenShannon.compute(p, q).unwrap()).sum()
        };
        let best = js(&q);
        for scale in [1e-3, 1e-1, 1.0] {
            let other = perturb(&q, &direction[..q.len()], scale).unwrap();
            prop_assert!(best <= js(&other) + 1e-12);
        }
    }

    #[test]
    fn gradients_match_finite_differences(weights in distributions(2)) {
        let points = build(&weights).expect("positive weights");
        let (p, q) = (&points[0], &points[1]);
        prop_assume!(p.len() >= 2);
        let divergences = [
            Divergence::KullbackLeibler,
            Divergence::ReverseKullbackLeibler,
            Divergence::JensenShannon,
            Divergence::JensenShannonDistance,
            Divergence::SquaredHellinger,
            Divergence::Hellinger,
            Divergence::ChiSquared,
            Divergence::Renyi { order: 0.5 },
            Divergence::Renyi { order: 2.0 },
        ];
        let h = 1e-6;
        for divergence in divergences {
            let mut gradient = Array1::zeros(p.len());
            divergence_gradient_into(&divergence, p.probs(), q.probs(), gradient.view_mut()).unwrap();
            let mut plus = q.probs().to_vec();
            let mut minus = q.probs().to_vec();
            plus[0] += h;
            plus[1] -= h;
            minus[0] -= h;
            minus[1] += h;
            let at = |values: &[f64]| divergence.compute(p, &Distribution::from_probs(values).unwrap()).unwrap();
            let numeric = (at(&plus) - at(&minus)) / (2.0 * h);
            let analytic = gradient[0] - gradient[1];
            prop_assert!((numeric - analytic).abs() <= 1e-4 * analytic.abs().max(1.0), "{}: {numeric} vs {analytic}", divergence.name());
        }
    }

    #[test]
    fn geometric_pool_contracts(weights in distributions(2), anchor in 0.01f64..1.0) {
        let points = build(&weights).expect("positive weights");
        let q = InformationProjection::geometric(anchor).unwrap().build(&points[..1], &points[1..]).unwrap();
        assert_distribution(&q);
        prop_assert!(q.is_strictly_positive());
        let before = kl(&points[0], &points[1]).unwrap();
        prop_assert!(kl(&points[0], &q).unwrap() <= (1.0 - anchor) * before * (1.0 + 1e-12) + 1e-15);
    }
}

#[test]
fn solver_handles_zero_entries() -> Result<()> {
    let symmetric = [probs(&[1.0, 0.0, 0.0])?, probs(&[0.0, 1.0, 0.0])?];
    let half = Weights::new(&[0.5, 0.5])?;
    let (q, _) = MirrorDescent::default().solve(&Divergence::JensenShannon, &symmetric, &half)?;
    assert!((q.probs()[0] - 0.5).abs() < 1e-9);
    assert_eq!(q.probs()[2], 0.0);

    // Reverse KL puts zero mass wherever any point is zero, like the geometric mean.
    let overlapping = [probs(&[0.5, 0.5, 0.0])?, probs(&[0.2, 0.3, 0.5])?];
    let w = Weights::new(&[0.4, 0.6])?;
    let (q, _) =
        MirrorDescent::default().solve(&Divergence::ReverseKullbackLeibler, &overlapping, &w)?;
    let exact = PowerMeanProjection::ReverseKl.project(&overlapping, &w)?;
    for (found, wanted) in q.probs().iter().zip(exact.probs()) {
        assert!((found - wanted).abs() < 1e-8);
    }
    assert_eq!(q.probs()[2], 0.0);
    Ok(())
}

#[test]
fn solver_rejects_disjoint_reverse_kl() -> Result<()> {
    let points = [probs(&[1.0, 0.0])?, probs(&[0.0, 1.0])?];
    let w = Weights::new(&[0.5, 0.5])?;
    let result = MirrorDescent::default().solve(&Divergence::ReverseKullbackLeibler, &points, &w);
    assert!(matches!(result, Err(Error::DisjointSupports { .. })));
    Ok(())
}

#[test]
fn renyi_gradient_finite_on_disjoint_supports() -> Result<()> {
    let p = Array1::from(vec![1.0f64, 0.0]);
    let q = Array1::from(vec![0.0, 1.0]);
    let mut out = Array1::zeros(2);
    let half = Divergence::Renyi { order: 0.5 };
    divergence_gradient_into(&half, p.view(), q.view(), out.view_mut())?;
    assert!(out.iter().all(|g| g.is_finite()));
    Ok(())
}

#[test]
fn jensen_shannon_fixed_point_is_teacher_projection() -> Result<()> {
    let teachers = [probs(&[0.6, 0.3, 0.1])?, probs(&[0.1, 0.2, 0.7])?];
    let start = probs(&[0.2, 0.5, 0.3])?;
    let w = Weights::new(&[0.4, 0.6])?;
    let weighting = GeneralizedMixture::new(0.5, w.clone(), HistoryWeights::Latest)?;
    let operator = IterativeProjection::new(
        Divergence::JensenShannon,
        weighting,
        MirrorDescent::default(),
    )?;
    let run = run_exact(&operator, &teachers, &start, 80)?;
    let last = run.final_student().distribution(0).expect("one input");
    let (expected, _) =
        MirrorDescent::default().solve(&Divergence::JensenShannon, &teachers, &w)?;
    for (found, wanted) in last.probs().iter().zip(expected.probs()) {
        assert!((found - wanted).abs() < 1e-8);
    }
    Ok(())
}

#[test]
fn new_error_messages_name_values() {
    let errors = [
        Error::WeightsNotNormalized {
            what: "weight",
            sum: 1.1,
            tolerance: 1e-14,
        },
        Error::NoGradient {
            divergence: "total variation".into(),
        },
        Error::NotConverged {
            solver: "mirror descent",
            iterations: 7,
            residual: 0.25,
            tolerance: 1e-12,
        },
        Error::DisjointSupports {
            what: "power mean of order 0".into(),
        },
    ];
    let values = ["1.1", "total variation", "0.25", "order 0"];
    for (error, value) in errors.iter().zip(values) {
        let message = error.to_string();
        assert!(message.contains(value), "{message}");
        assert!(!message.ends_with('.'), "{message}");
        let first = message.chars().next().expect("non-empty message");
        assert!(!first.is_uppercase(), "{message}");
    }
}

#[test]
fn large_vocabulary_projections() -> Result<()> {
    let mut rng = Lcg::new(73);
    let t = rng.distribution(100_000)?;
    let s = rng.distribution(100_000)?;
    for kind in KINDS {
        let operator = InformationProjection::single_teacher(kind, 0.3)?;
        let q = operator.build(from_ref(&t), from_ref(&s))?;
        assert_distribution(&q);
        assert!(q.is_strictly_positive(), "{kind:?}");
    }

    // A looser tolerance keeps this debug-build test to a few solver iterations.
    let weighting = GeneralizedMixture::single_teacher(0.3, HistoryWeights::Latest)?;
    let solver = MirrorDescent::new(1e-6, 1000)?;
    let operator = IterativeProjection::new(Divergence::JensenShannon, weighting, solver)?;
    let q = operator.build(from_ref(&t), from_ref(&s))?;
    assert_distribution(&q);
    assert!(kl(&t, &q)? < kl(&t, &s)?);
    Ok(())
}

#[test]
fn power_mean_guarantees_follow_order() -> Result<()> {
    use metadistill::OperatorProperties;

    let single = InformationProjection::single_teacher;
    // Order 2 anchors pointwise for one teacher and the latest student exactly
    // when a <= 1/2, and trivially at a = 1 where the output is T0.
    assert!(single(PowerMeanProjection::ChiSquared, 0.3)?.anchors_pointwise());
    assert!(!single(PowerMeanProjection::ChiSquared, 0.7)?.anchors_pointwise());
    assert!(single(PowerMeanProjection::ChiSquared, 1.0)?.anchors_pointwise());
    assert_eq!(
        single(PowerMeanProjection::ChiSquared, 0.3)?.contraction_factor(),
        None
    );
    // Orders in [0, 1] contract like the geometric pool but do not anchor pointwise.
    let hellinger = single(PowerMeanProjection::SquaredHellinger, 0.3)?;
    assert!(!hellinger.anchors_pointwise());
    assert_eq!(hellinger.contraction_factor(), Some(0.7));
    let harmonic = single(PowerMeanProjection::Amari { order: -1.0 }, 0.3)?;
    assert!(!harmonic.anchors_pointwise());
    assert_eq!(harmonic.contraction_factor(), None);

    // Pooled weights (0.15, 0.15, 0.7): √0.15 >= 0.15 (2 √0.15 + √0.7).
    let two = GeneralizedMixture::new(0.3, Weights::uniform(2)?, HistoryWeights::Latest)?;
    let chi_two = InformationProjection::new(PowerMeanProjection::ChiSquared, two)?;
    assert!(chi_two.anchors_pointwise());
    // A window of students changes the pooled weights with the history: no claim.
    let window = GeneralizedMixture::single_teacher(0.3, HistoryWeights::Window { length: 3 })?;
    let chi_window = InformationProjection::new(PowerMeanProjection::ChiSquared, window)?;
    assert!(!chi_window.anchors_pointwise());
    Ok(())
}
