//! Backs the "Guarantees" error table for the meta-teacher operators, combinators and solver.
//!
//! Every test builds, for one row of the table, an input for each listed
//! variant and checks that the function returns it, in `f32` and `f64`.

#[macro_use]
mod error_table_support;

use error_table_support::{
    DoublingOperator, batch, c, dist, in_input_vector, in_row, unwrap_err, values,
};
use metadistill::operator::effective_anchor_weight_batch;
use metadistill::{
    ConvexCombination, ConvexMixture, Distribution, Divergence, Error, GeneralizedMixture,
    HistoryWeights, InformationProjection, Iterate, IterativeProjection, MetaTeacherOperator,
    MirrorDescent, PostMap, PostMapped, PowerMeanProjection, Real, TemperedMixture, Weights,
    amari_alpha, divergence_gradient_into, effective_anchor_weight, power_mean_into,
};
use ndarray::{Array1, Array2, ArrayView1};
use std::slice::from_ref;

/// Returns views of `arrays`.
fn views<F: Real>(arrays: &[Array1<F>]) -> Vec<ArrayView1<'_, F>> {
    arrays.iter().map(|array| array.view()).collect()
}

fn provided_build_methods<F: Real>() {
    let mixture = ConvexMixture::<F>::new(c(0.5)).unwrap();
    let teacher = dist::<F>(&[0.5, 0.5]);
    let wider = dist::<F>(&[0.2, 0.3, 0.5]);

    assert_err!(mixture.build(&[], from_ref(&teacher)), Error::Empty { .. });
    assert_err!(mixture.build(from_ref(&teacher), &[]), Error::Empty { .. });
    assert_err!(
        mixture.build(from_ref(&teacher), &[wider]),
        Error::VocabularyMismatch { .. }
    );
    assert_err!(
        DoublingOperator.build(from_ref(&teacher), from_ref(&teacher)),
        Error::InvalidOperatorOutput { .. }
    );
    let two = [teacher.clone(), teacher.clone()];
    assert_err!(
        mixture.build(&two, &[teacher]),
        Error::TeacherCount { found: 2, .. }
    );

    let rows = batch::<F>(&[&[0.5, 0.5], &[0.5, 0.5]]);
    let one_row = batch::<F>(&[&[0.5, 0.5]]);
    let wide_rows = batch::<F>(&[&[0.2, 0.3, 0.5], &[0.2, 0.3, 0.5]]);
    let weighted = rows
        .clone()
        .with_input_weights(&Array1::from(values::<F>(&[3.0, 1.0])))
        .unwrap();
    let teachers = [rows.clone()];
    assert_err!(mixture.build_batch(&[], &teachers), Error::Empty { .. });
    assert_err!(mixture.build_batch(&teachers, &[]), Error::Empty { .. });
    assert_err!(
        mixture.build_batch(&teachers, &[one_row]),
        Error::BatchSizeMismatch { .. }
    );
    assert_err!(
        mixture.build_batch(&teachers, &[wide_rows]),
        Error::VocabularyMismatch { .. }
    );
    assert_err!(
        mixture.build_batch(&teachers, &[weighted]),
        Error::InputWeightMismatch { .. }
    );
    let error = in_row(unwrap_err(
        mixture.build_batch(&[rows.clone(), rows.clone()], &teachers),
    ));
    assert_is!(error, Error::TeacherCount { .. });
    let error = in_row(unwrap_err(
        DoublingOperator.build_batch(&teachers, &teachers),
    ));
    assert_is!(error, Error::InvalidOperatorOutput { .. });

    let mut short = Array2::<F>::zeros((1, 2));
    assert_err!(
        mixture.build_batch_into(&teachers, &teachers, short.view_mut()),
        Error::BatchSizeMismatch { .. }
    );
    let mut wide = Array2::<F>::zeros((2, 3));
    assert_err!(
        mixture.build_batch_into(&teachers, &teachers, wide.view_mut()),
        Error::VocabularyMismatch { .. }
    );
}

fn convex_mixture<F: Real>() {
    assert_err!(
        ConvexMixture::<F>::new(F::zero()),
        Error::InvalidAnchorWeight { .. }
    );
    let mixture = ConvexMixture::<F>::new(c(0.5)).unwrap();
    let point = Array1::from(values::<F>(&[0.5, 0.5]));
    let longer = Array1::from(values::<F>(&[0.2, 0.3, 0.5]));
    let mut out = Array1::<F>::zeros(2);
    assert_err!(
        mixture.combine_into(&[], &[point.view()], out.view_mut()),
        Error::TeacherCount { found: 0, .. }
    );
    assert_err!(
        mixture.combine_into(&[point.view()], &[], out.view_mut()),
        Error::Empty { .. }
    );
    assert_err!(
        mixture.combine_into(&[point.view()], &[longer.view()], out.view_mut()),
        Error::LengthMismatch { found: 3, .. }
    );
}

fn weights<F: Real>() {
    assert_err!(Weights::<F>::new(&[]), Error::Empty { .. });
    assert_err!(
        Weights::new(&values::<F>(&[1.5, -0.5])),
        Error::InvalidWeight { index: 1, .. }
    );
    assert_err!(
        Weights::new(&values::<F>(&[0.5, 0.6])),
        Error::WeightsNotNormalized { .. }
    );
    assert_err!(Weights::<F>::normalize(&[]), Error::Empty { .. });
    assert_err!(
        Weights::normalize(&values::<F>(&[1.0, f64::INFINITY])),
        Error::InvalidWeight { index: 1, .. }
    );
    assert_err!(
        Weights::normalize(&values::<F>(&[0.0, 0.0])),
        Error::AllZeroWeights { .. }
    );
    assert_err!(Weights::<F>::uniform(0), Error::Empty { .. });
    assert_err!(
        Weights::<F>::uniform(usize::MAX),
        Error::InvalidParameter { .. }
    );
}

fn generalized_mixture<F: Real>() {
    let one = || Weights::<F>::uniform(1).unwrap();
    assert_err!(
        GeneralizedMixture::new(c(1.5), one(), HistoryWeights::Latest),
        Error::InvalidAnchorWeight { .. }
    );
    let bad_schemes = [
        HistoryWeights::Window { length: 0 },
        HistoryWeights::ExponentialDecay {
            decay: c(2.0),
            length: 3,
        },
        HistoryWeights::Quality {
            sharpness: c(-1.0),
            length: 3,
        },
    ];
    for scheme in bad_schemes {
        let error = unwrap_err(GeneralizedMixture::new(c(0.5), one(), scheme.clone()));
        assert!(
            matches!(error, Error::InvalidParameter { .. }),
            "{scheme:?}: {error:?}"
        );
        let error = unwrap_err(GeneralizedMixture::single_teacher(c(0.5), scheme));
        assert!(matches!(error, Error::InvalidParameter { .. }), "{error:?}");
    }
    assert_err!(
        GeneralizedMixture::<F>::single_teacher(F::zero(), HistoryWeights::Latest),
        Error::InvalidAnchorWeight { .. }
    );

    let operator = GeneralizedMixture::single_teacher(c(0.5), HistoryWeights::Latest).unwrap();
    let point = Array1::from(values::<F>(&[0.5, 0.5]));
    let longer = Array1::from(values::<F>(&[0.2, 0.3, 0.5]));
    let two_teachers = [point.view(), point.view()];
    assert_err!(
        operator.student_weights(&two_teachers, &[point.view()]),
        Error::TeacherWeightCount { found: 2, .. }
    );
    assert_err!(
        operator.student_weights(&[point.view()], &[]),
        Error::Empty { .. }
    );

    let mut out = Array1::<F>::zeros(2);
    assert_err!(
        operator.combine_into(&[point.view()], &[longer.view()], out.view_mut()),
        Error::LengthMismatch { found: 3, .. }
    );
    assert_err!(
        operator.combine_into(&two_teachers, &[point.view()], out.view_mut()),
        Error::TeacherWeightCount { .. }
    );
    assert_err!(
        operator.combine_into(&[point.view()], &[], out.view_mut()),
        Error::Empty { .. }
    );
}

fn tempered_mixture<F: Real>() {
    assert_err!(
        TemperedMixture::<F>::new(F::zero(), F::one()),
        Error::InvalidAnchorWeight { .. }
    );
    assert_err!(
        TemperedMixture::<F>::new(c(0.5), c(f64::INFINITY)),
        Error::InvalidTemperature { .. }
    );

    let operator = TemperedMixture::<F>::new(c(0.3), c(2.0)).unwrap();
    let teacher = dist::<F>(&[0.6, 0.3, 0.1]);
    assert_err!(
        operator.fixed_point(&teacher, F::zero(), 10),
        Error::InvalidParameter { .. }
    );
    assert_err!(
        operator.fixed_point(&teacher, c(1e-3), 0),
        Error::InvalidParameter { .. }
    );
    assert_err!(
        operator.fixed_point(&teacher, c(1e-30), 2),
        Error::NotConverged { iterations: 2, .. }
    );

    let point = Array1::from(values::<F>(&[0.5, 0.5]));
    let longer = Array1::from(values::<F>(&[0.2, 0.3, 0.5]));
    let mut out = Array1::<F>::zeros(2);
    assert_err!(
        operator.combine_into(
            &[point.view(), point.view()],
            &[point.view()],
            out.view_mut()
        ),
        Error::TeacherCount { found: 2, .. }
    );
    assert_err!(
        operator.combine_into(&[point.view()], &[], out.view_mut()),
        Error::Empty { .. }
    );
    assert_err!(
        operator.combine_into(&[longer.view()], &[point.view()], out.view_mut()),
        Error::LengthMismatch { found: 3, .. }
    );
}

fn power_mean_projections<F: Real>() {
    let half = dist::<F>(&[0.5, 0.5]);
    let wider = dist::<F>(&[0.2, 0.3, 0.5]);
    let two = Weights::<F>::uniform(2).unwrap();
    let forward = PowerMeanProjection::<F>::ForwardKl;
    assert_err!(forward.project(&[], &two), Error::Empty { .. });
    assert_err!(
        forward.project(&[half.clone(), wider], &two),
        Error::VocabularyMismatch { .. }
    );
    assert_err!(
        forward.project(from_ref(&half), &two),
        Error::LengthMismatch { .. }
    );
    let infinite = PowerMeanProjection::Amari {
        order: c(f64::INFINITY),
    };
    assert_err!(
        infinite.project(&[half.clone(), half.clone()], &two),
        Error::InvalidParameter { .. }
    );
    let disjoint = [dist::<F>(&[1.0, 0.0]), dist::<F>(&[0.0, 1.0])];
    assert_err!(
        PowerMeanProjection::ReverseKl.project(&disjoint, &two),
        Error::DisjointSupports { .. }
    );

    let p = Array1::from(values::<F>(&[0.5, 0.5]));
    let longer = Array1::from(values::<F>(&[0.2, 0.3, 0.5]));
    let halves = values::<F>(&[0.5, 0.5]);
    let mut out = Array1::<F>::zeros(2);
    let one = F::one();
    assert_err!(
        power_mean_into(one, &[], &[], out.view_mut()),
        Error::Empty { .. }
    );
    assert_err!(
        power_mean_into(one, &[p.view()], &halves, out.view_mut()),
        Error::LengthMismatch { .. }
    );
    assert_err!(
        power_mean_into(one, &[p.view(), longer.view()], &halves, out.view_mut()),
        Error::LengthMismatch { .. }
    );
    let pair = [p.view(), p.view()];
    assert_err!(
        power_mean_into(one, &pair, &values::<F>(&[1.5, -0.5]), out.view_mut()),
        Error::InvalidWeight { index: 1, .. }
    );
    assert_err!(
        power_mean_into(one, &pair, &values::<F>(&[0.5, 0.6]), out.view_mut()),
        Error::WeightsNotNormalized { .. }
    );
    let mut empty_out = Array1::<F>::zeros(0);
    let empty_point = Array1::<F>::zeros(0);
    let error = unwrap_err(power_mean_into(
        one,
        &[empty_point.view()],
        &[one],
        empty_out.view_mut(),
    ));
    assert_is!(in_input_vector(error), Error::Empty { .. });
    for_each_bad_point::<F>(|bad, is_expected| {
        let points = [p.view(), bad.view()];
        let error = unwrap_err(power_mean_into(one, &points, &halves, out.view_mut()));
        assert!(is_expected(&in_input_vector(error)));
    });
    assert_err!(
        power_mean_into(c(f64::NAN), &pair, &halves, out.view_mut()),
        Error::InvalidParameter { .. }
    );
    let first = Array1::from(values::<F>(&[1.0, 0.0]));
    let second = Array1::from(values::<F>(&[0.0, 1.0]));
    assert_err!(
        power_mean_into(
            F::zero(),
            &[first.view(), second.view()],
            &halves,
            out.view_mut()
        ),
        Error::DisjointSupports { .. }
    );

    assert_err!(
        amari_alpha(&half, &dist::<F>(&[0.2, 0.3, 0.5]), c(0.5)),
        Error::VocabularyMismatch { .. }
    );
    assert_err!(
        amari_alpha(&half, &half, c(f64::NEG_INFINITY)),
        Error::InvalidParameter { .. }
    );
}

/// A test for the kind of error a case must return.
type IsExpected = fn(&Error) -> bool;

/// Calls `check` with a point that has a NaN, a negative entry, or a sum off 1,
/// and a test for the error that such a point gives.
fn for_each_bad_point<F: Real>(mut check: impl FnMut(Array1<F>, IsExpected)) {
    let cases: [(f64, IsExpected); 3] = [
        (f64::NAN, |e| {
            matches!(e, Error::NonFiniteProbability { .. })
        }),
        (-0.5, |e| matches!(e, Error::NegativeProbability { .. })),
        (0.7, |e| matches!(e, Error::NotNormalized { .. })),
    ];
    for (entry, is_expected) in cases {
        check(Array1::from(values::<F>(&[0.5, entry])), is_expected);
    }
}

fn information_projection<F: Real>() {
    let weighting = GeneralizedMixture::<F>::single_teacher(c(0.5), HistoryWeights::Latest);
    let infinite = PowerMeanProjection::Amari {
        order: c(f64::INFINITY),
    };
    assert_err!(
        InformationProjection::new(infinite, weighting.unwrap()),
        Error::InvalidParameter { .. }
    );
    assert_err!(
        InformationProjection::<F>::geometric(c(1.5)),
        Error::InvalidAnchorWeight { .. }
    );
    assert_err!(
        InformationProjection::single_teacher(PowerMeanProjection::ChiSquared, F::zero()),
        Error::InvalidAnchorWeight { .. }
    );
    assert_err!(
        InformationProjection::single_teacher(infinite, c(0.5)),
        Error::InvalidParameter { .. }
    );

    let operator = InformationProjection::<F>::geometric(c(0.5)).unwrap();
    let point = Array1::from(values::<F>(&[0.5, 0.5]));
    let longer = Array1::from(values::<F>(&[0.2, 0.3, 0.5]));
    let mut out = Array1::<F>::zeros(2);
    assert_err!(
        operator.combine_into(
            &[point.view(), point.view()],
            &[point.view()],
            out.view_mut()
        ),
        Error::TeacherWeightCount { .. }
    );
    assert_err!(
        operator.combine_into(&[point.view()], &[], out.view_mut()),
        Error::Empty { .. }
    );
    assert_err!(
        operator.combine_into(&[point.view()], &[longer.view()], out.view_mut()),
        Error::LengthMismatch { .. }
    );
    let first = Array1::from(values::<F>(&[1.0, 0.0]));
    let second = Array1::from(values::<F>(&[0.0, 1.0]));
    assert_err!(
        operator.combine_into(&[first.view()], &[second.view()], out.view_mut()),
        Error::DisjointSupports { .. }
    );
}

fn gradients<F: Real>() {
    let p = Array1::from(values::<F>(&[0.5, 0.5]));
    let longer = Array1::from(values::<F>(&[0.2, 0.3, 0.5]));
    let mut out = Array1::<F>::zeros(2);
    let kl = Divergence::<F>::KullbackLeibler;
    assert_err!(
        divergence_gradient_into(&kl, p.view(), longer.view(), out.view_mut()),
        Error::LengthMismatch { .. }
    );

    let empty = Array1::<F>::zeros(0);
    let mut empty_out = Array1::<F>::zeros(0);
    let error = unwrap_err(divergence_gradient_into(
        &kl,
        empty.view(),
        empty.view(),
        empty_out.view_mut(),
    ));
    assert_is!(in_input_vector(error), Error::Empty { .. });
    for_each_bad_point::<F>(|bad, is_expected| {
        let error = unwrap_err(divergence_gradient_into(
            &kl,
            p.view(),
            bad.view(),
            out.view_mut(),
        ));
        assert!(is_expected(&in_input_vector(error)));
    });

    assert_err!(
        divergence_gradient_into(
            &Divergence::TotalVariation,
            p.view(),
            p.view(),
            out.view_mut()
        ),
        Error::NoGradient { .. }
    );
    let negative_order = Divergence::Renyi { order: c(-1.0) };
    assert_err!(
        divergence_gradient_into(&negative_order, p.view(), p.view(), out.view_mut()),
        Error::InvalidOrder { .. }
    );
}

fn mirror_descent<F: Real>() {
    assert_err!(
        MirrorDescent::<F>::new(F::zero(), 10),
        Error::InvalidParameter { .. }
    );
    assert_err!(
        MirrorDescent::<F>::new(c(1e-3), 0),
        Error::InvalidParameter { .. }
    );

    let solver = MirrorDescent::<F>::default();
    let js = Divergence::<F>::JensenShannon;
    let half = dist::<F>(&[0.5, 0.5]);
    let two = Weights::<F>::uniform(2).unwrap();
    let disjoint = [dist::<F>(&[1.0, 0.0]), dist::<F>(&[0.0, 1.0])];
    let skewed = [
        dist::<F>(&[0.98, 0.01, 0.01]),
        dist::<F>(&[0.01, 0.01, 0.98]),
    ];
    let hurried = MirrorDescent::<F>::new(c(1e-30), 1).unwrap();
    let negative_order = Divergence::Renyi { order: c(-1.0) };
    let pair = [half.clone(), half.clone()];

    assert_err!(solver.solve(&js, &[], &two), Error::Empty { .. });
    assert_err!(
        solver.solve(&js, &[half.clone(), dist(&[0.2, 0.3, 0.5])], &two),
        Error::VocabularyMismatch { .. }
    );
    assert_err!(
        solver.solve(&js, from_ref(&half), &two),
        Error::LengthMismatch { .. }
    );
    assert_err!(
        solver.solve(&Divergence::TotalVariation, &pair, &two),
        Error::NoGradient { .. }
    );
    assert_err!(
        solver.solve(&negative_order, &pair, &two),
        Error::InvalidOrder { .. }
    );
    assert_err!(
        solver.solve(&Divergence::ReverseKullbackLeibler, &disjoint, &two),
        Error::DisjointSupports { .. }
    );
    // Unequal weights keep the start point, the weighted mean, off the optimum.
    let unequal = Weights::new(&values::<F>(&[0.3, 0.7])).unwrap();
    assert_err!(
        hurried.solve(&js, &skewed, &unequal),
        Error::NotConverged { iterations: 1, .. }
    );

    let p = Array1::from(values::<F>(&[0.5, 0.5]));
    let longer = Array1::from(values::<F>(&[0.2, 0.3, 0.5]));
    let halves = values::<F>(&[0.5, 0.5]);
    let mut out = Array1::<F>::zeros(2);
    let views = [p.view(), p.view()];
    assert_err!(
        solver.solve_into(&js, &[], &[], out.view_mut()),
        Error::Empty { .. }
    );
    assert_err!(
        solver.solve_into(&js, &[p.view(), longer.view()], &halves, out.view_mut()),
        Error::LengthMismatch { .. }
    );
    assert_err!(
        solver.solve_into(&js, &views, &values::<F>(&[2.0, -1.0]), out.view_mut()),
        Error::InvalidWeight { .. }
    );
    assert_err!(
        solver.solve_into(&js, &views, &values::<F>(&[0.5, 0.6]), out.view_mut()),
        Error::WeightsNotNormalized { .. }
    );
    for_each_bad_point::<F>(|bad, is_expected| {
        let points = [p.view(), bad.view()];
        let error = unwrap_err(solver.solve_into(&js, &points, &halves, out.view_mut()));
        assert!(is_expected(&in_input_vector(error)));
    });
    let empty_point = Array1::<F>::zeros(0);
    let mut empty_out = Array1::<F>::zeros(0);
    let error = unwrap_err(solver.solve_into(
        &js,
        &[empty_point.view()],
        &[F::one()],
        empty_out.view_mut(),
    ));
    assert_is!(in_input_vector(error), Error::Empty { .. });
    assert_err!(
        solver.solve_into(
            &Divergence::max_log_ratio(),
            &views,
            &halves,
            out.view_mut()
        ),
        Error::NoGradient { .. }
    );
    assert_err!(
        solver.solve_into(&negative_order, &views, &halves, out.view_mut()),
        Error::InvalidOrder { .. }
    );
}

fn iterative_projection<F: Real>() {
    let weighting =
        || GeneralizedMixture::<F>::single_teacher(c(0.5), HistoryWeights::Latest).unwrap();
    let solver = MirrorDescent::<F>::default();
    assert_err!(
        IterativeProjection::new(Divergence::TotalVariation, weighting(), solver),
        Error::NoGradient { .. }
    );
    assert_err!(
        IterativeProjection::new(
            Divergence::Renyi { order: c(f64::NAN) },
            weighting(),
            solver
        ),
        Error::InvalidOrder { .. }
    );

    let js = IterativeProjection::new(Divergence::JensenShannon, weighting(), solver).unwrap();
    let point = Array1::from(values::<F>(&[0.5, 0.5]));
    let longer = Array1::from(values::<F>(&[0.2, 0.3, 0.5]));
    let mut out = Array1::<F>::zeros(2);
    assert_err!(
        js.combine_into(
            &[point.view(), point.view()],
            &[point.view()],
            out.view_mut()
        ),
        Error::TeacherWeightCount { .. }
    );
    assert_err!(
        js.combine_into(&[point.view()], &[], out.view_mut()),
        Error::Empty { .. }
    );
    assert_err!(
        js.combine_into(&[point.view()], &[longer.view()], out.view_mut()),
        Error::LengthMismatch { .. }
    );
    let reverse =
        IterativeProjection::new(Divergence::ReverseKullbackLeibler, weighting(), solver).unwrap();
    let first = Array1::from(values::<F>(&[1.0, 0.0]));
    let second = Array1::from(values::<F>(&[0.0, 1.0]));
    assert_err!(
        reverse.combine_into(&[first.view()], &[second.view()], out.view_mut()),
        Error::DisjointSupports { .. }
    );
    let hurried = MirrorDescent::<F>::new(c(1e-30), 1).unwrap();
    let unequal = GeneralizedMixture::single_teacher(c(0.3), HistoryWeights::Latest).unwrap();
    let impatient = IterativeProjection::new(Divergence::JensenShannon, unequal, hurried).unwrap();
    let skewed = [
        Array1::from(values::<F>(&[0.98, 0.01, 0.01])),
        Array1::from(values::<F>(&[0.01, 0.01, 0.98])),
    ];
    let mut out = Array1::<F>::zeros(3);
    assert_err!(
        impatient.combine_into(&views(&skewed[..1]), &views(&skewed[1..]), out.view_mut()),
        Error::NotConverged { .. }
    );
}

fn combinators<F: Real>() {
    let mixture = || ConvexMixture::<F>::new(c(0.5)).unwrap();
    assert_err!(
        ConvexCombination::new(mixture(), mixture(), c(1.5)),
        Error::InvalidParameter { .. }
    );
    let point = Array1::from(values::<F>(&[0.5, 0.5]));
    let two_teachers = [point.view(), point.view()];
    let mut out = Array1::<F>::zeros(2);

    let blend = ConvexCombination::new(mixture(), mixture(), c(0.5)).unwrap();
    assert_err!(
        blend.combine_into(&two_teachers, &[point.view()], out.view_mut()),
        Error::TeacherCount { .. }
    );
    let broken_blend = ConvexCombination::new(mixture(), DoublingOperator, c(0.5)).unwrap();
    assert_err!(
        broken_blend.combine_into(&[point.view()], &[point.view()], out.view_mut()),
        Error::InvalidOperatorOutput { .. }
    );

    let bad_maps = [
        PostMap::Temper {
            temperature: F::zero(),
        },
        PostMap::TopK { k: 0 },
        PostMap::SmoothUniform { epsilon: c(2.0) },
    ];
    for map in bad_maps {
        let from_validate = unwrap_err(map.validate());
        let from_new = unwrap_err(PostMapped::new(mixture(), map));
        assert_eq!(from_validate, from_new);
        let expected_kind = match map {
            PostMap::Temper { .. } => matches!(from_validate, Error::InvalidTemperature { .. }),
            _ => matches!(from_validate, Error::InvalidParameter { .. }),
        };
        assert!(expected_kind, "{map:?}: {from_validate:?}");
        let mut values = point.clone();
        assert_eq!(unwrap_err(map.apply_into(values.view_mut())), from_validate);
    }
    let mut unnormalized = Array1::from(values::<F>(&[0.5, 0.6]));
    let error = unwrap_err(PostMap::TopK { k: 1 }.apply_into(unnormalized.view_mut()));
    assert_is!(in_input_vector(error), Error::NotNormalized { .. });

    let top = PostMapped::new(mixture(), PostMap::TopK { k: 1 }).unwrap();
    assert_err!(
        top.combine_into(&two_teachers, &[point.view()], out.view_mut()),
        Error::TeacherCount { .. }
    );
    let broken_top = PostMapped::new(DoublingOperator, PostMap::TopK { k: 1 }).unwrap();
    assert_err!(
        broken_top.combine_into(&[point.view()], &[point.view()], out.view_mut()),
        Error::InvalidOperatorOutput { .. }
    );

    assert_err!(Iterate::new(mixture(), 0), Error::InvalidParameter { .. });
    let twice = Iterate::new(mixture(), 2).unwrap();
    assert_err!(
        twice.combine_into(&two_teachers, &[point.view()], out.view_mut()),
        Error::TeacherCount { .. }
    );
    let broken_twice = Iterate::new(DoublingOperator, 2).unwrap();
    assert_err!(
        broken_twice.combine_into(&[point.view()], &[point.view()], out.view_mut()),
        Error::InvalidOperatorOutput { .. }
    );
}

fn effective_anchor_weights<F: Real>() {
    let half: Distribution<F> = dist(&[0.5, 0.5]);
    assert_err!(
        effective_anchor_weight(&half, &dist(&[0.2, 0.3, 0.5])),
        Error::VocabularyMismatch { .. }
    );
    let rows = batch::<F>(&[&[0.5, 0.5], &[0.5, 0.5]]);
    assert_err!(
        effective_anchor_weight_batch(&rows, &batch(&[&[0.5, 0.5]])),
        Error::BatchSizeMismatch { .. }
    );
    assert_err!(
        effective_anchor_weight_batch(&rows, &batch(&[&[0.2, 0.3, 0.5], &[0.2, 0.3, 0.5]])),
        Error::VocabularyMismatch { .. }
    );
}

for_both_floats!(
    provided_build_methods,
    convex_mixture,
    weights,
    generalized_mixture,
    tempered_mixture,
    power_mean_projections,
    information_projection,
    gradients,
    mirror_descent,
    iterative_projection,
    combinators,
    effective_anchor_weights,
);
