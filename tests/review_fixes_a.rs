//! Regression tests for wrong numbers and weak checks found in review:
//! Renyi and Amari orders at the float limits, raw-vector input checks,
//! error wording and the history window of each built-in operator.

use metadistill::divergence::renyi;
use metadistill::{Distribution, Real};

/// The pair p = (0.6, 0.3, 0.1), q = (0.2, 0.5, 0.3), whose max log-ratio is ln 3.
fn pair<F: Real>() -> (Distribution<F>, Distribution<F>) {
    let c = |x: f64| F::from(x).unwrap();
    let p = Distribution::from_probs(&[c(0.6), c(0.3), c(0.1)]).unwrap();
    let q = Distribution::from_probs(&[c(0.2), c(0.5), c(0.3)]).unwrap();
    (p, q)
}

fn renyi_huge_orders_reach_max_log_ratio<F: Real>(tolerance: f64) {
    let (p, q) = pair::<F>();
    let limit = 3.0_f64.ln();
    for order in [F::max_value(), F::from(1e30).unwrap()] {
        let value = renyi(&p, &q, order).unwrap().to_f64().unwrap();
        assert!(
            (value - limit).abs() < tolerance,
            "order {order:?} gave {value}"
        );
    }
}

#[test]
fn renyi_huge_orders_f64() {
    renyi_huge_orders_reach_max_log_ratio::<f64>(1e-12);
    let (p, q) = pair::<f64>();
    let value = renyi(&p, &q, 1e300).unwrap();
    assert!((value - 3.0_f64.ln()).abs() < 1e-12);
}

#[test]
fn renyi_huge_orders_f32() {
    renyi_huge_orders_reach_max_log_ratio::<f32>(1e-5);
}

// Renyi gradient at huge orders.

use metadistill::{
    ConvexCombination, ConvexMixture, Divergence, Error, GeneralizedMixture, HistoryWeights,
    InformationProjection, Iterate, IterativeProjection, MetaTeacherOperator, MirrorDescent,
    PostMap, PostMapped, PowerMeanProjection, TemperedMixture, Weights, amari_alpha,
    divergence_gradient_into, power_mean_into,
};
use ndarray::{Array1, ArrayView1, array};

fn c<F: Real>(x: f64) -> F {
    F::from(x).unwrap()
}

/// At huge orders only the token of the max log-ratio (token 0, ratio 3) keeps a
/// gradient, which tends to `-(p_0/q_0) / p_0 = -1/q_0 = -5`.
fn renyi_gradient_at_huge_orders<F: Real>(orders: &[f64]) {
    let (p, q) = pair::<F>();
    let mut orders: Vec<F> = orders.iter().map(|&order| c(order)).collect();
    orders.push(F::max_value());
    for order in orders {
        let mut gradient = Array1::zeros(3);
        let divergence = Divergence::Renyi { order };
        divergence_gradient_into(&divergence, p.probs(), q.probs(), gradient.view_mut()).unwrap();
        let g: Vec<f64> = gradient.iter().map(|v| v.to_f64().unwrap()).collect();
        assert!((g[0] + 5.0).abs() < 1e-4, "order {order:?}: {g:?}");
        assert_eq!(g[1], 0.0, "order {order:?}: {g:?}");
        assert_eq!(g[2], 0.0, "order {order:?}: {g:?}");
    }
}

#[test]
fn renyi_gradient_huge_orders_f64() {
    renyi_gradient_at_huge_orders::<f64>(&[1e30, 1e300]);
}

#[test]
fn renyi_gradient_huge_orders_f32() {
    renyi_gradient_at_huge_orders::<f32>(&[1e30]);
}

#[test]
fn renyi_gradient_moderate_order_matches_formula() {
    let (p, q) = pair::<f64>();
    let order = 3.0;
    let mut gradient = Array1::zeros(3);
    let divergence = Divergence::Renyi { order };
    divergence_gradient_into(&divergence, p.probs(), q.probs(), gradient.view_mut()).unwrap();
    let sum: f64 = (0..3)
        .map(|i| p.probs()[i].powf(order) * q.probs()[i].powf(1.0 - order))
        .sum();
    for i in 0..3 {
        let expected = -(p.probs()[i] / q.probs()[i]).powf(order) / sum;
        assert!((gradient[i] - expected).abs() < 1e-13 * expected.abs());
    }
}

#[test]
fn iterative_projection_huge_renyi_order_is_not_disjoint() {
    let (p, q) = pair::<f64>();
    let weighting = GeneralizedMixture::single_teacher(0.3, HistoryWeights::Latest).unwrap();
    let operator = IterativeProjection::new(
        Divergence::Renyi { order: 1e300 },
        weighting,
        MirrorDescent::default(),
    )
    .unwrap();
    let result = operator.build(&[p], &[q]);
    assert!(
        matches!(result, Ok(_) | Err(Error::NotConverged { .. })),
        "{result:?}"
    );
}

// Raw-vector input checks.

/// Returns the error wrapped in `InvalidInputVector`, checking the input's name.
fn inner_error(error: Error, name: &str) -> Error {
    match error {
        Error::InvalidInputVector { what, source } => {
            assert_eq!(what, name);
            *source
        }
        other => panic!("expected InvalidInputVector, got {other:?}"),
    }
}

#[test]
fn post_map_rejects_invalid_vectors() {
    let mut nan = array![f64::NAN, 0.5, 0.5];
    let error = PostMap::Temper { temperature: 2.0 }
        .apply_into(nan.view_mut())
        .unwrap_err();
    assert!(matches!(
        inner_error(error, "vector to post-map"),
        Error::NonFiniteProbability { index: 0, .. }
    ));

    let mut negative = array![-1.0, 0.5, 0.5];
    let error = PostMap::TopK { k: 2 }
        .apply_into(negative.view_mut())
        .unwrap_err();
    assert!(matches!(
        inner_error(error, "vector to post-map"),
        Error::NegativeProbability { index: 0, .. }
    ));

    let mut unnormalized = array![3.0, 3.0, 3.0];
    let error = PostMap::SmoothUniform { epsilon: 0.5 }
        .apply_into(unnormalized.view_mut())
        .unwrap_err();
    assert!(matches!(
        inner_error(error, "vector to post-map"),
        Error::NotNormalized { .. }
    ));
    assert_eq!(unnormalized, array![3.0, 3.0, 3.0]);
}

#[test]
fn gradient_rejects_invalid_vectors() {
    let valid = array![0.2f64, 0.5, 0.3];
    let mut gradient = Array1::zeros(3);
    let nan = array![f64::NAN, 0.5, 0.5];
    let error = divergence_gradient_into(
        &Divergence::KullbackLeibler,
        nan.view(),
        valid.view(),
        gradient.view_mut(),
    )
    .unwrap_err();
    assert!(matches!(
        inner_error(error, "p"),
        Error::NonFiniteProbability { index: 0, .. }
    ));

    let unnormalized = array![5.0f64, 5.0, 5.0];
    let error = divergence_gradient_into(
        &Divergence::KullbackLeibler,
        unnormalized.view(),
        valid.view(),
        gradient.view_mut(),
    )
    .unwrap_err();
    assert!(matches!(
        inner_error(error, "p"),
        Error::NotNormalized { .. }
    ));

    let negative = array![0.5f64, -0.5, 1.0];
    let error = divergence_gradient_into(
        &Divergence::KullbackLeibler,
        valid.view(),
        negative.view(),
        gradient.view_mut(),
    )
    .unwrap_err();
    assert!(matches!(
        inner_error(error, "q"),
        Error::NegativeProbability { index: 1, .. }
    ));
}

#[test]
fn power_mean_rejects_invalid_points() {
    let valid = array![0.2f64, 0.5, 0.3];
    let mut out = Array1::zeros(3);
    let cases: [(Array1<f64>, f64); 3] = [
        (array![f64::NAN, 0.5, 0.5], 0.5),
        (array![-0.5, 1.0, 0.5], 2.0),
        (array![5.0, 5.0, 5.0], 0.5),
    ];
    for (bad, order) in &cases {
        let error = power_mean_into(
            *order,
            &[valid.view(), bad.view()],
            &[0.5, 0.5],
            out.view_mut(),
        )
        .unwrap_err();
        let inner = inner_error(error, "point 1");
        let expected = match bad[0] {
            v if v.is_nan() => matches!(inner, Error::NonFiniteProbability { index: 0, .. }),
            v if v < 0.0 => matches!(inner, Error::NegativeProbability { index: 0, .. }),
            _ => matches!(inner, Error::NotNormalized { .. }),
        };
        assert!(expected, "{bad} gave {inner:?}");
    }
}

// Amari orders and power means near 0 and at huge magnitudes.

fn tiny_orders_match_order_zero<F: Real>(orders: &[f64], tolerance: f64) {
    let (p, q) = pair::<F>();
    let at_zero = amari_alpha(&p, &q, F::zero()).unwrap().to_f64().unwrap();
    let mut geometric = Array1::<F>::zeros(3);
    let points = [p.probs(), q.probs()];
    let weights = [c::<F>(0.3), c::<F>(0.7)];
    power_mean_into(F::zero(), &points, &weights, geometric.view_mut()).unwrap();

    for &order in orders {
        for signed in [order, -order] {
            let value = amari_alpha(&p, &q, c(signed)).unwrap().to_f64().unwrap();
            assert!(
                (value - at_zero).abs() < tolerance,
                "order {signed}: {value} vs {at_zero}"
            );
            let mut pool = Array1::<F>::zeros(3);
            power_mean_into(c(signed), &points, &weights, pool.view_mut()).unwrap();
            for (i, (&got, &want)) in pool.iter().zip(&geometric).enumerate() {
                let difference = (got - want).to_f64().unwrap().abs();
                assert!(difference < tolerance, "order {signed}, token {i}: {got:?}");
            }
        }
    }
}

#[test]
fn tiny_orders_match_order_zero_f64() {
    tiny_orders_match_order_zero::<f64>(&[1e-10, 1e-20, 1e-300], 1e-9);
    let (p, q) = pair::<f64>();
    let reverse_kl = metadistill::divergence::kl(&q, &p).unwrap();
    assert!((reverse_kl - 0.365274).abs() < 1e-6);
    assert!((amari_alpha(&p, &q, 1e-20).unwrap() - reverse_kl).abs() < 1e-14);
}

#[test]
fn tiny_orders_match_order_zero_f32() {
    tiny_orders_match_order_zero::<f32>(&[1e-10, 1e-20, 1e-30], 1e-5);
}

#[test]
fn information_projection_tiny_amari_order_is_geometric() {
    let (p, q) = pair::<f64>();
    let geometric = InformationProjection::single_teacher(PowerMeanProjection::ReverseKl, 0.3)
        .unwrap()
        .build(std::slice::from_ref(&p), std::slice::from_ref(&q))
        .unwrap();
    let tiny =
        InformationProjection::single_teacher(PowerMeanProjection::Amari { order: 1e-20 }, 0.3)
            .unwrap()
            .build(&[p], &[q])
            .unwrap();
    for (got, want) in tiny.probs().iter().zip(geometric.probs()) {
        assert!((got - want).abs() < 1e-14, "{got} vs {want}");
    }
}

fn amari_huge_orders_are_infinite<F: Real>(orders: &[f64]) {
    let (p, q) = pair::<F>();
    let mut orders: Vec<F> = orders.iter().map(|&order| c(order)).collect();
    orders.push(F::max_value());
    orders.push(-F::max_value());
    for order in orders {
        for signed in [order, -order] {
            let value = amari_alpha(&p, &q, signed).unwrap();
            assert_eq!(value, F::infinity(), "order {signed:?}");
        }
        assert_eq!(amari_alpha(&p, &p, order).unwrap(), F::zero());
    }
}

#[test]
fn amari_huge_orders_f64() {
    amari_huge_orders_are_infinite::<f64>(&[1e10, 1e300]);
}

#[test]
fn amari_huge_orders_f32() {
    amari_huge_orders_are_infinite::<f32>(&[1e10, 1e30]);
}

#[test]
fn amari_small_order_branch_matches_direct_sum() {
    let (p, q) = pair::<f64>();
    for order in [-0.1249, -0.01, 0.01, 0.1249, 0.1251] {
        let sum: f64 = (0..3)
            .map(|i| p.probs()[i].powf(order) * q.probs()[i].powf(1.0 - order))
            .sum();
        let direct = (1.0 - sum) / (order * (1.0 - order));
        let value = amari_alpha(&p, &q, order).unwrap();
        assert!(
            (value - direct).abs() < 1e-13,
            "order {order}: {value} vs {direct}"
        );
    }
}

// History windows: a window-limited build equals combining the full history.

/// Six students, oldest first, each a different full-support distribution.
fn history() -> Vec<Distribution> {
    (0..6)
        .map(|g| {
            let x = 1.0 + g as f64;
            let raw = [x, 2.0 + (g % 3) as f64, 7.0 - x / 2.0];
            let total: f64 = raw.iter().sum();
            let probs: Vec<f64> = raw.iter().map(|v| v / total).collect();
            Distribution::from_probs(&probs).unwrap()
        })
        .collect()
}

fn assert_window_build_matches_full<O: MetaTeacherOperator<f64>>(
    operator: &O,
    teachers: &[Distribution],
    expected_window: Option<usize>,
) {
    assert_eq!(
        operator.history_window(),
        expected_window,
        "{}",
        operator.name()
    );
    let students = history();
    let teacher_views: Vec<ArrayView1<f64>> = teachers.iter().map(|t| t.probs()).collect();
    let student_views: Vec<ArrayView1<f64>> = students.iter().map(|s| s.probs()).collect();
    let mut full = Array1::zeros(3);
    operator
        .combine_into(&teacher_views, &student_views, full.view_mut())
        .unwrap();
    let windowed = operator.build(teachers, &students).unwrap();
    assert_eq!(windowed.probs(), full.view(), "{}", operator.name());
}

fn teacher() -> Vec<Distribution> {
    vec![pair::<f64>().0]
}

#[test]
fn generalized_mixture_windows() {
    let schemes = [
        (HistoryWeights::Latest, 1),
        (HistoryWeights::Window { length: 3 }, 3),
        (
            HistoryWeights::ExponentialDecay {
                decay: 0.5,
                length: 4,
            },
            4,
        ),
        (
            HistoryWeights::Quality {
                sharpness: 2.0,
                length: 2,
            },
            2,
        ),
        (
            HistoryWeights::Explicit(Weights::new(&[0.5, 0.0, 0.5]).unwrap()),
            3,
        ),
        (
            HistoryWeights::Explicit(Weights::new(&[0.0, 0.0, 1.0]).unwrap()),
            3,
        ),
    ];
    for (scheme, window) in schemes {
        let operator = GeneralizedMixture::single_teacher(0.3, scheme).unwrap();
        assert_window_build_matches_full(&operator, &teacher(), Some(window));
    }
    let whole = GeneralizedMixture::single_teacher(
        0.3,
        HistoryWeights::ExponentialDecay {
            decay: 0.5,
            length: usize::MAX,
        },
    )
    .unwrap();
    assert_window_build_matches_full(&whole, &teacher(), Some(usize::MAX));
}

#[test]
fn information_projection_window() {
    let weighting =
        GeneralizedMixture::single_teacher(0.3, HistoryWeights::Window { length: 2 }).unwrap();
    let operator =
        InformationProjection::new(PowerMeanProjection::Amari { order: 0.5 }, weighting).unwrap();
    assert_window_build_matches_full(&operator, &teacher(), Some(2));
}

#[test]
fn iterative_projection_window() {
    let weighting =
        GeneralizedMixture::single_teacher(0.3, HistoryWeights::Window { length: 2 }).unwrap();
    let operator = IterativeProjection::new(
        Divergence::SquaredHellinger,
        weighting,
        MirrorDescent::default(),
    )
    .unwrap();
    assert_window_build_matches_full(&operator, &teacher(), Some(2));
}

#[test]
fn tempered_mixture_window() {
    let operator = TemperedMixture::new(0.3, 2.0).unwrap();
    assert_window_build_matches_full(&operator, &teacher(), Some(1));
}

#[test]
fn combinator_windows() {
    let window = |length| {
        GeneralizedMixture::single_teacher(0.3, HistoryWeights::Window { length }).unwrap()
    };
    let post_mapped = PostMapped::new(window(3), PostMap::Temper { temperature: 2.0 }).unwrap();
    assert_window_build_matches_full(&post_mapped, &teacher(), Some(3));

    let iterate = Iterate::new(window(2), 3).unwrap();
    assert_window_build_matches_full(&iterate, &teacher(), Some(2));

    let combination =
        ConvexCombination::new(ConvexMixture::new(0.3).unwrap(), window(4), 0.5).unwrap();
    assert_window_build_matches_full(&combination, &teacher(), Some(4));
}

/// An operator that reads the whole history, as every user operator does by default.
struct WholeHistory;

impl MetaTeacherOperator<f64> for WholeHistory {
    fn anchor_weight(&self) -> f64 {
        0.0
    }

    fn combine_into(
        &self,
        _teachers: &[ArrayView1<f64>],
        students: &[ArrayView1<f64>],
        mut out: ndarray::ArrayViewMut1<f64>,
    ) -> metadistill::Result<()> {
        out.fill(0.0);
        let share = 1.0 / students.len() as f64;
        for student in students {
            out.scaled_add(share, student);
        }
        Ok(())
    }
}

#[test]
fn combination_with_whole_history_has_no_window() {
    let combination =
        ConvexCombination::new(ConvexMixture::new(0.3).unwrap(), WholeHistory, 0.5).unwrap();
    assert_window_build_matches_full(&combination, &teacher(), None);
}
