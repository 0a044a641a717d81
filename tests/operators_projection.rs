//! Tests of the information projections: closed forms, optimality, fixed points and the solver.

mod operators_support;

use std::slice::from_ref;

use metadistill::divergence::{chi_squared, kl, squared_hellinger};
use metadistill::recursion::run_exact;
use metadistill::{
    ConvexMixture, Distribution, DistributionBatch, Divergence, Error, GeneralizedMixture,
    HistoryWeights, InformationProjection, IterativeProjection, MetaTeacherOperator, MirrorDescent,
    PowerMeanProjection, Real, Result, Weights, amari_alpha, divergence_gradient_into,
    effective_anchor_weight, power_mean_into,
};
use ndarray::Array1;
use operators_support::{Lcg, assert_distribution, build, config, distributions};
use proptest::prelude::*;

fn probs(values: &[f64]) -> Result<Distribution> {
    Distribution::from_probs(values)
}

/// Converts an `f64` literal to `F`.
fn c<F: Real>(value: f64) -> F {
    F::from(value).unwrap()
}

/// Builds a distribution of `F` from `f64` literals.
fn dist<F: Real>(entries: &[f64]) -> Result<Distribution<F>> {
    let values: Vec<F> = entries.iter().map(|&x| c(x)).collect();
    Distribution::from_probs(&values)
}

/// Returns a tolerance of `count` machine epsilons of `F`.
fn ulps<F: Real>(count: f64) -> F {
    c::<F>(count) * F::epsilon()
}

/// Returns how far a default mirror-descent solution may sit from the exact projection.
///
/// The solver stops at a Frank-Wolfe gap of ε^(3/4). Near a smooth optimum the
/// distance shrinks like the square root of the gap, and these cases land
/// within 1e-8 in f64 and within 1e-3 in f32 (gap 6e-6).
fn solver_distance<F: Real>() -> F {
    if std::mem::size_of::<F>() == 8 {
        c(1e-8)
    } else {
        c(1e-3)
    }
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

fn closed_forms_match_formulas<F: Real>() -> Result<()> {
    let points = [dist::<F>(&[0.6, 0.3, 0.1])?, dist(&[0.2, 0.5, 0.3])?];
    let (w0, w1) = (c::<F>(0.3), c::<F>(0.7));
    let w = Weights::new(&[w0, w1])?;
    let p = |k: usize, i: usize| points[k].probs()[i];
    let normalized = |raw: Vec<F>| -> Vec<F> {
        let sum: F = raw.iter().copied().sum();
        raw.into_iter().map(|x| x / sum).collect()
    };
    let formulas: [(PowerMeanProjection<F>, Vec<F>); 4] = [
        (
            PowerMeanProjection::ForwardKl,
            (0..3).map(|i| w0 * p(0, i) + w1 * p(1, i)).collect(),
        ),
        (
            PowerMeanProjection::ReverseKl,
            normalized(
                (0..3)
                    .map(|i| p(0, i).powf(w0) * p(1, i).powf(w1))
                    .collect(),
            ),
        ),
        (
            PowerMeanProjection::SquaredHellinger,
            normalized(
                (0..3)
                    .map(|i| (w0 * p(0, i).sqrt() + w1 * p(1, i).sqrt()).powi(2))
                    .collect(),
            ),
        ),
        (
            PowerMeanProjection::ChiSquared,
            normalized(
                (0..3)
                    .map(|i| (w0 * p(0, i).powi(2) + w1 * p(1, i).powi(2)).sqrt())
                    .collect(),
            ),
        ),
    ];
    // The crate works in log space and the formulas directly: a few roundings
    // apart, so 4.5 ε (1e-15 in f64).
    for (kind, expected) in formulas {
        let q = kind.project(&points, &w)?;
        for (&found, &wanted) in q.probs().iter().zip(&expected) {
            assert!((found - wanted).abs() < ulps(4.5), "{kind:?}");
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

fn amari_matches_named_divergences<F: Real>() -> Result<()> {
    let p = dist::<F>(&[0.6, 0.3, 0.1])?;
    let q = dist::<F>(&[0.2, 0.5, 0.3])?;
    // Each pair is one divergence computed two ways: 45 ε relative (1e-14 in f64).
    let close =
        |a: F, b: F| (a - b).abs() <= ulps::<F>(45.0) * b.abs().max(F::min_positive_value());
    let two = c::<F>(2.0);
    assert!(close(amari_alpha(&p, &q, F::one())?, kl(&p, &q)?));
    assert!(close(amari_alpha(&p, &q, F::zero())?, kl(&q, &p)?));
    assert!(close(
        amari_alpha(&p, &q, c(0.5))?,
        c::<F>(4.0) * squared_hellinger(&p, &q)?
    ));
    assert!(close(amari_alpha(&p, &q, two)?, chi_squared(&p, &q)? / two));
    assert!(close(
        amari_alpha(&p, &q, -F::one())?,
        chi_squared(&q, &p)? / two
    ));
    assert!(matches!(
        amari_alpha(&p, &q, F::nan()),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        amari_alpha(&p, &dist(&[1.0])?, c(0.5)),
        Err(Error::VocabularyMismatch { .. })
    ));
    Ok(())
}

fn forward_kl_projection_is_mixture<F: Real>() -> Result<()> {
    let t = dist::<F>(&[0.6, 0.3, 0.1])?;
    let s = dist::<F>(&[0.2, 0.5, 0.3])?;
    let a = c::<F>(0.3);
    let projection = InformationProjection::single_teacher(PowerMeanProjection::ForwardKl, a)?;
    let q = projection.build(from_ref(&t), from_ref(&s))?;
    let mixture = ConvexMixture::new(a)?.build(&[t], &[s])?;
    assert_eq!(q, mixture);
    Ok(())
}

fn geometric_pool_identity_and_anchoring_gap<F: Real>() -> Result<()> {
    let t = dist::<F>(&[0.5, 0.5])?;
    let s = dist::<F>(&[0.999, 0.001])?;
    let a = c::<F>(0.3);
    let q = InformationProjection::geometric(a)?.build(from_ref(&t), from_ref(&s))?;
    let z: F = (0..2)
        .map(|i| t.probs()[i].powf(a) * s.probs()[i].powf(F::one() - a))
        .sum();
    let identity = (F::one() - a) * kl(&t, &s)? + z.ln();
    // Two KL values and a logarithm of sizes near 1: 45 ε (1e-14 in f64).
    assert!((kl(&t, &q)? - identity).abs() < ulps(45.0));
    assert!(z <= F::one());
    // The pool contracts but its effective anchor weight falls below the nominal a.
    assert!(effective_anchor_weight(&q, &t)? < a);
    Ok(())
}

fn multi_teacher_fixed_points_are_power_means<F: Real>() -> Result<()> {
    let teachers = [dist::<F>(&[0.6, 0.3, 0.1])?, dist(&[0.1, 0.2, 0.7])?];
    let start = dist::<F>(&[0.2, 0.5, 0.3])?;
    let w = Weights::new(&[c::<F>(0.4), c(0.6)])?;
    for kind in [
        PowerMeanProjection::ReverseKl,
        PowerMeanProjection::SquaredHellinger,
        PowerMeanProjection::Amari { order: c(3.0) },
    ] {
        let weighting = GeneralizedMixture::new(c(0.3), w.clone(), HistoryWeights::Latest)?;
        let operator = InformationProjection::new(kind, weighting)?;
        let run = run_exact(&operator, &teachers, &start, 400)?;
        let last = run.final_student().distribution(0).expect("one input");
        let expected = kind.project(&teachers, &w)?;
        // 400 steps leave only the rounding each step adds: 4500 ε (1e-12 in f64).
        for (&found, &wanted) in last.probs().iter().zip(expected.probs()) {
            assert!((found - wanted).abs() < ulps(4500.0), "{kind:?}");
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

fn solver_matches_every_closed_form<F: Real>() -> Result<()> {
    let points = [
        dist::<F>(&[0.6, 0.3, 0.1])?,
        dist(&[0.2, 0.5, 0.3])?,
        dist(&[0.05, 0.15, 0.8])?,
    ];
    let w = Weights::new(&[c::<F>(0.2), c(0.3), c(0.5)])?;
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
        for (&found, &wanted) in q.probs().iter().zip(exact.probs()) {
            assert!(
                (found - wanted).abs() < solver_distance::<F>(),
                "{}",
                divergence.name()
            );
        }
        assert!(report.gap <= MirrorDescent::<F>::default().tolerance());
    }
    Ok(())
}

fn solver_reports_early_stop<F: Real>() -> Result<()> {
    let points = [dist::<F>(&[0.98, 0.01, 0.01])?, dist(&[0.01, 0.01, 0.98])?];
    let w = Weights::new(&[c::<F>(0.5), c(0.5)])?;
    let solver = MirrorDescent::new(c::<F>(1e-14), 1)?;
    let result = solver.solve(&Divergence::JensenShannon, &points, &w);
    assert!(matches!(
        result,
        Err(Error::NotConverged { iterations: 1, .. })
    ));
    Ok(())
}

fn solver_rejects_bad_settings<F: Real>() -> Result<()> {
    assert!(matches!(
        MirrorDescent::<F>::new(F::zero(), 10),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        MirrorDescent::<F>::new(c(1e-10), 0),
        Err(Error::InvalidParameter { .. })
    ));
    let weighting = GeneralizedMixture::<F>::single_teacher(c(0.3), HistoryWeights::Latest)?;
    for divergence in [Divergence::TotalVariation, Divergence::max_log_ratio()] {
        let result =
            IterativeProjection::new(divergence, weighting.clone(), MirrorDescent::default());
        assert!(matches!(result, Err(Error::NoGradient { .. })));
    }
    let negative = IterativeProjection::new(
        Divergence::Renyi { order: c(-1.0) },
        weighting,
        MirrorDescent::default(),
    );
    assert!(matches!(negative, Err(Error::InvalidOrder { .. })));
    Ok(())
}

fn gradient_rejects_length_mismatch<F: Real>() -> Result<()> {
    let p = Array1::from(vec![c::<F>(0.5), c(0.5)]);
    let q = Array1::from(vec![F::one()]);
    let mut out = Array1::zeros(2);
    let result = divergence_gradient_into(
        &Divergence::KullbackLeibler,
        p.view(),
        q.view(),
        out.view_mut(),
    );
    assert!(matches!(result, Err(Error::LengthMismatch { .. })));
    Ok(())
}

fn solver_handles_single_token<F: Real>() -> Result<()> {
    let points = [dist::<F>(&[1.0])?, dist(&[1.0])?];
    let (q, report) = MirrorDescent::default().solve(
        &Divergence::JensenShannon,
        &points,
        &Weights::uniform(2)?,
    )?;
    assert_eq!(q.probs()[0], F::one());
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

fn solver_handles_zero_entries<F: Real>() -> Result<()> {
    let symmetric = [dist::<F>(&[1.0, 0.0, 0.0])?, dist(&[0.0, 1.0, 0.0])?];
    let half = Weights::new(&[c::<F>(0.5), c(0.5)])?;
    let (q, _) = MirrorDescent::default().solve(&Divergence::JensenShannon, &symmetric, &half)?;
    assert!((q.probs()[0] - c(0.5)).abs() < solver_distance::<F>());
    assert_eq!(q.probs()[2], F::zero());

    // Reverse KL puts zero mass wherever any point is zero, like the geometric mean.
    let overlapping = [dist::<F>(&[0.5, 0.5, 0.0])?, dist(&[0.2, 0.3, 0.5])?];
    let w = Weights::new(&[c::<F>(0.4), c(0.6)])?;
    let (q, _) =
        MirrorDescent::default().solve(&Divergence::ReverseKullbackLeibler, &overlapping, &w)?;
    let exact = PowerMeanProjection::ReverseKl.project(&overlapping, &w)?;
    for (&found, &wanted) in q.probs().iter().zip(exact.probs()) {
        assert!((found - wanted).abs() < solver_distance::<F>());
    }
    assert_eq!(q.probs()[2], F::zero());
    Ok(())
}

fn solver_rejects_disjoint_reverse_kl<F: Real>() -> Result<()> {
    let points = [dist::<F>(&[1.0, 0.0])?, dist(&[0.0, 1.0])?];
    let w = Weights::new(&[c::<F>(0.5), c(0.5)])?;
    let result = MirrorDescent::default().solve(&Divergence::ReverseKullbackLeibler, &points, &w);
    assert!(matches!(result, Err(Error::DisjointSupports { .. })));
    Ok(())
}

fn renyi_gradient_finite_on_disjoint_supports<F: Real>() -> Result<()> {
    let p = Array1::from(vec![F::one(), F::zero()]);
    let q = Array1::from(vec![F::zero(), F::one()]);
    let mut out = Array1::zeros(2);
    let half = Divergence::Renyi { order: c::<F>(0.5) };
    divergence_gradient_into(&half, p.view(), q.view(), out.view_mut())?;
    assert!(out.iter().all(|g| g.is_finite()));
    Ok(())
}

fn jensen_shannon_fixed_point_is_teacher_projection<F: Real>() -> Result<()> {
    let teachers = [dist::<F>(&[0.6, 0.3, 0.1])?, dist(&[0.1, 0.2, 0.7])?];
    let start = dist::<F>(&[0.2, 0.5, 0.3])?;
    let w = Weights::new(&[c::<F>(0.4), c(0.6)])?;
    let weighting = GeneralizedMixture::new(c(0.5), w.clone(), HistoryWeights::Latest)?;
    let operator = IterativeProjection::new(
        Divergence::JensenShannon,
        weighting,
        MirrorDescent::default(),
    )?;
    let run = run_exact(&operator, &teachers, &start, 80)?;
    let last = run.final_student().distribution(0).expect("one input");
    let (expected, _) =
        MirrorDescent::default().solve(&Divergence::JensenShannon, &teachers, &w)?;
    for (&found, &wanted) in last.probs().iter().zip(expected.probs()) {
        assert!((found - wanted).abs() < solver_distance::<F>());
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

fn power_mean_guarantees_follow_order<F: Real>() -> Result<()> {
    use metadistill::OperatorProperties;

    let single = InformationProjection::<F>::single_teacher;
    let (low, high) = (c::<F>(0.3), c::<F>(0.7));
    // Order 2 anchors pointwise for one teacher and the latest student exactly
    // when a <= 1/2, and trivially at a = 1 where the output is T0.
    assert!(single(PowerMeanProjection::ChiSquared, low)?.anchors_pointwise());
    assert!(!single(PowerMeanProjection::ChiSquared, high)?.anchors_pointwise());
    assert!(single(PowerMeanProjection::ChiSquared, F::one())?.anchors_pointwise());
    assert_eq!(
        single(PowerMeanProjection::ChiSquared, low)?.contraction_factor(),
        None
    );
    // Orders in [0, 1] contract like the geometric pool but do not anchor pointwise.
    let hellinger = single(PowerMeanProjection::SquaredHellinger, low)?;
    assert!(!hellinger.anchors_pointwise());
    assert_eq!(hellinger.contraction_factor(), Some(F::one() - low));
    let harmonic = single(PowerMeanProjection::Amari { order: -F::one() }, low)?;
    assert!(!harmonic.anchors_pointwise());
    assert_eq!(harmonic.contraction_factor(), None);

    // Pooled weights (0.15, 0.15, 0.7): √0.15 >= 0.15 (2 √0.15 + √0.7).
    let two = GeneralizedMixture::new(low, Weights::uniform(2)?, HistoryWeights::Latest)?;
    let chi_two = InformationProjection::new(PowerMeanProjection::ChiSquared, two)?;
    assert!(chi_two.anchors_pointwise());
    // A window of students changes the pooled weights with the history: no claim.
    let window = GeneralizedMixture::single_teacher(low, HistoryWeights::Window { length: 3 })?;
    let chi_window = InformationProjection::new(PowerMeanProjection::ChiSquared, window)?;
    assert!(!chi_window.anchors_pointwise());
    Ok(())
}

for_both_floats!(
    closed_forms_match_formulas,
    amari_matches_named_divergences,
    forward_kl_projection_is_mixture,
    geometric_pool_identity_and_anchoring_gap,
    multi_teacher_fixed_points_are_power_means,
    solver_matches_every_closed_form,
    solver_reports_early_stop,
    solver_rejects_bad_settings,
    gradient_rejects_length_mismatch,
    solver_handles_single_token,
    solver_handles_zero_entries,
    solver_rejects_disjoint_reverse_kl,
    renyi_gradient_finite_on_disjoint_supports,
    jensen_shannon_fixed_point_is_teacher_projection,
    power_mean_guarantees_follow_order,
);
