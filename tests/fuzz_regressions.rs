//! Inputs the fuzz targets in `fuzz/` found to break the crate, kept as plain tests.
//!
//! Each test rebuilds, through the public API, the input of one minimized
//! crasher (the raw bytes are in `fuzz/regressions/<target>/`) and checks the
//! fixed behaviour, in f64 and f32.

use metadistill::divergence::kl;
use metadistill::kernels::{
    KernelFloat, cross_entropy_rows, geometric_pool_into, kl_from_logits_rows, kl_rows,
    reverse_kl_rows,
};
use metadistill::recursion::{AnchorSchedule, Recursion, convex_mixture, run_exact};
use metadistill::student::{
    Capacity, ErrorMeasure, ExactStudent, KeptTokens, NoisyStudent, SoftmaxStudent, SparseStudent,
    Student,
};
use metadistill::{
    ConvexMixture, Distribution, DistributionBatch, Divergence, Error, GeneralizedMixture,
    HistoryWeights, InformationProjection, IterativeProjection, MetaTeacherOperator, MirrorDescent,
    OperatorProperties, PostMap, PostMapped, PowerMeanProjection, Real, TemperedMixture, Weights,
};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1};

/// `ConvexMixture::combine_into` with a teacher view longer than `out`:
/// ndarray's `Zip` panicked with "Producer dimension mismatch".
fn combine_into_rejects_length_mismatch<F: Real>() {
    let mixture = ConvexMixture::<F>::new(F::one()).unwrap();
    let long = Array1::from_elem(7, F::one() / F::from(7).unwrap());
    let short = Array1::from_elem(5, F::one() / F::from(5).unwrap());

    let mut out = Array1::zeros(5);
    let result = mixture.combine_into(&[long.view()], &[short.view()], out.view_mut());
    assert_eq!(
        result,
        Err(Error::LengthMismatch {
            what: "base teacher",
            expected: 5,
            found: 7,
        })
    );

    let mut out = Array1::zeros(5);
    let students: [ArrayView1<F>; 2] = [short.view(), long.view()];
    let result = mixture.combine_into(&[short.view()], &students, out.view_mut());
    assert_eq!(
        result,
        Err(Error::LengthMismatch {
            what: "student",
            expected: 5,
            found: 7,
        })
    );
}

#[test]
fn combine_into_length_mismatch_f64() {
    combine_into_rejects_length_mismatch::<f64>();
}

#[test]
fn combine_into_length_mismatch_f32() {
    combine_into_rejects_length_mismatch::<f32>();
}

/// Checks a start that puts no mass on a token the teacher needs, so `D(S_0) = +inf`.
/// The unanchored operator keeps `D = +inf`, and the ratio `inf / inf` was NaN;
/// with `a = 1` the bound `0 · inf` was NaN.
fn infinite_start_gives_no_nan<F: Real>() {
    let teacher = Distribution::<F>::uniform(2).unwrap();
    let start = Distribution::from_probs(&[F::one(), F::zero()]).unwrap();

    let unanchored = run_exact(
        &ConvexMixture::unanchored(),
        std::slice::from_ref(&teacher),
        &start,
        3,
    )
    .unwrap();
    for record in unanchored.records() {
        assert_eq!(record.divergence, F::infinity());
        assert_eq!(record.bound, F::infinity());
        assert_eq!(record.ratio, None, "generation {}", record.generation);
    }

    let full = ConvexMixture::new(F::one()).unwrap();
    let anchored = run_exact(&full, &[teacher], &start, 2).unwrap();
    let records = anchored.records();
    assert_eq!(records[0].divergence, F::infinity());
    assert_eq!(records[0].bound, F::infinity());
    for record in &records[1..] {
        assert_eq!(record.divergence, F::zero());
        assert_eq!(record.bound, F::zero(), "generation {}", record.generation);
    }
    // D(S_0) is +inf, so the first ratio is undefined; D(S_1) is 0, so the second is too.
    assert_eq!(records[1].ratio, None);
    assert_eq!(records[2].ratio, None);
}

#[test]
fn infinite_start_no_nan_f64() {
    infinite_start_gives_no_nan::<f64>();
}

#[test]
fn infinite_start_no_nan_f32() {
    infinite_start_gives_no_nan::<f32>();
}

/// `GeneralizedMixture::combine_into` with a student view shorter than `out`:
/// ndarray's `Zip` panicked with "Producer dimension mismatch".
fn generalized_combine_into_rejects_length_mismatch<F: Real>() {
    let mixture = GeneralizedMixture::<F>::single_teacher(
        F::from(0.5).unwrap(),
        HistoryWeights::Window { length: 2 },
    )
    .unwrap();
    let teacher = Array1::from_elem(2, F::from(0.5).unwrap());
    let short = Array1::from_elem(1, F::one());

    let mut out = Array1::zeros(2);
    let result = mixture.combine_into(&[teacher.view()], &[short.view()], out.view_mut());
    assert_eq!(
        result,
        Err(Error::LengthMismatch {
            what: "student",
            expected: 2,
            found: 1,
        })
    );
}

#[test]
fn generalized_combine_into_length_mismatch_f64() {
    generalized_combine_into_rejects_length_mismatch::<f64>();
}

#[test]
fn generalized_combine_into_length_mismatch_f32() {
    generalized_combine_into_rejects_length_mismatch::<f32>();
}

/// `TemperedMixture::combine_into` with a teacher view longer than `out`, the same panic.
fn tempered_combine_into_rejects_length_mismatch<F: Real>() {
    let tempered = TemperedMixture::<F>::new(F::from(0.5).unwrap(), F::from(2.0).unwrap()).unwrap();
    let long = Array1::from_elem(3, F::one() / F::from(3).unwrap());
    let student = Array1::from_elem(2, F::from(0.5).unwrap());

    let mut out = Array1::zeros(2);
    let result = tempered.combine_into(&[long.view()], &[student.view()], out.view_mut());
    assert_eq!(
        result,
        Err(Error::LengthMismatch {
            what: "base teacher",
            expected: 2,
            found: 3,
        })
    );
}

#[test]
fn tempered_combine_into_length_mismatch_f64() {
    tempered_combine_into_rejects_length_mismatch::<f64>();
}

#[test]
fn tempered_combine_into_length_mismatch_f32() {
    tempered_combine_into_rejects_length_mismatch::<f32>();
}

/// Teacher weights `[1, 1e-30]` pass the sum tolerance, and `fixes_teacher`
/// claimed `G(T0; T0, …) = T0`. A power mean of negative order is 0 wherever
/// the second teacher is 0, whatever its weight, so the output was one-hot.
fn tiny_second_teacher_weight_breaks_fixed_point<F: Real>() {
    let weights = Weights::new(&[F::one(), F::from(1e-30).unwrap()]).unwrap();
    let weighting =
        GeneralizedMixture::new(F::from(0.25).unwrap(), weights, HistoryWeights::Latest).unwrap();
    let order = F::from(-1e30).unwrap();
    let projection =
        InformationProjection::new(PowerMeanProjection::Amari { order }, weighting).unwrap();
    assert!(!projection.fixes_teacher());
    assert_eq!(projection.contraction_factor(), None);

    let teacher = Distribution::<F>::uniform(4).unwrap();
    let other = Distribution::from_probs(&[F::zero(), F::one(), F::zero(), F::zero()]).unwrap();
    let q = projection
        .build(&[teacher.clone(), other], std::slice::from_ref(&teacher))
        .unwrap();
    assert_eq!(q.as_slice()[1], F::one());
}

#[test]
fn tiny_teacher_weight_fixed_point_f64() {
    tiny_second_teacher_weight_breaks_fixed_point::<f64>();
}

#[test]
fn tiny_teacher_weight_fixed_point_f32() {
    tiny_second_teacher_weight_breaks_fixed_point::<f32>();
}

/// `PostMap::Temper` at τ = 1.1e-44 divided `ln p` by τ before subtracting the
/// maximum: every `ln p / τ` overflowed to -inf, and `-inf - (-inf)` gave NaN,
/// which `build` reported as an invalid operator output.
fn tiny_temperature_gives_no_nan<F: Real>() {
    let temperature = F::from(1.1e-44).unwrap();
    let tempered =
        PostMapped::new(ConvexMixture::unanchored(), PostMap::Temper { temperature }).unwrap();
    let teacher = Distribution::<F>::uniform(3).unwrap();
    let third = F::one() / F::from(3).unwrap();
    let student = Distribution::from_weights(&[F::one(), F::from(2).unwrap(), F::one()]).unwrap();
    let q = tempered
        .build(std::slice::from_ref(&teacher), &[student])
        .unwrap();
    // The largest entry takes all the mass in the limit τ -> 0.
    assert_eq!(q.as_slice(), &[F::zero(), F::one(), F::zero()]);

    let mixture = TemperedMixture::new(F::one(), temperature).unwrap();
    let q = mixture
        .build(&[teacher], &[Distribution::uniform(3).unwrap()])
        .unwrap();
    for &p in q.as_slice() {
        assert!((p - third).abs() <= F::epsilon());
    }
}

#[test]
fn tiny_temperature_no_nan_f64() {
    tiny_temperature_gives_no_nan::<f64>();
}

#[test]
fn tiny_temperature_no_nan_f32() {
    tiny_temperature_gives_no_nan::<f32>();
}

/// Checks `kl_from_logits_rows` at a temperature whose reciprocal overflows
/// (4.25e-314 in f64, 1e-40 in f32, both subnormal). The teacher puts all its
/// mass on its largest logit, which the student masks, so KL is +inf, and the
/// scalar path returns +inf. The kernel multiplies by `1/T = inf`, gets
/// `0 · inf = NaN` at the maximum, and returned 0 for the row.
fn subnormal_temperature_logits_kernel<F: Real + KernelFloat>(temperature: F) {
    let teacher = [F::zero(), F::one(), F::from(2).unwrap()];
    let student = [F::from(2).unwrap(), F::one(), F::neg_infinity()];
    let p = Distribution::from_logits(&teacher, temperature).unwrap();
    let q = Distribution::from_logits(&student, temperature).unwrap();
    assert_eq!(kl(&p, &q).unwrap(), F::infinity());

    let z = Array2::from_shape_vec((1, 3), teacher.to_vec()).unwrap();
    let y = Array2::from_shape_vec((1, 3), student.to_vec()).unwrap();
    let mut out = Array1::zeros(1);
    kl_from_logits_rows(z.view(), y.view(), temperature, out.view_mut()).unwrap();
    assert_eq!(out[0], F::infinity());
}

#[test]
fn subnormal_temperature_logits_f64() {
    subnormal_temperature_logits_kernel::<f64>(4.25e-314);
}

#[test]
fn subnormal_temperature_logits_f32() {
    subnormal_temperature_logits_kernel::<f32>(1e-40);
}

/// The error `reverse_kl_rows` returns for a NaN in its second argument `q`.
/// The kernel computes `KL(q ‖ p)` by swapping its inputs, so it named `q`
/// "first probability matrix".
fn reverse_kl_names_inputs<F: Real + KernelFloat>() {
    let p = Array2::from_shape_vec((1, 2), vec![F::from(0.5).unwrap(); 2]).unwrap();
    let q = Array2::from_shape_vec((1, 2), vec![F::nan(), F::one()]).unwrap();
    let mut out = Array1::zeros(1);
    let error = reverse_kl_rows(p.view(), q.view(), out.view_mut()).unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidEntry {
                what: "second probability matrix",
                row: 0,
                index: 0,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn reverse_kl_input_names_f64() {
    reverse_kl_names_inputs::<f64>();
}

#[test]
fn reverse_kl_input_names_f32() {
    reverse_kl_names_inputs::<f32>();
}

/// A two-input row kernel of `metadistill::kernels`.
type PairKernel<F> = fn(ArrayView2<F>, ArrayView2<F>, ArrayViewMut1<F>) -> metadistill::Result<()>;

/// Checks a row whose token 0 has `q = 0 < p` and whose token 10 is negative. The KL,
/// reverse KL and cross-entropy kernels stopped at the infinite term and
/// returned `+inf` without reading token 10, although their docs promise
/// `InvalidEntry` for every invalid entry.
fn infinite_term_still_checks_entries<F: Real + KernelFloat>() {
    let mut p = vec![F::zero(); 12];
    let mut q = vec![F::zero(); 12];
    p[0] = F::from(0.5).unwrap();
    p[1] = F::from(0.5).unwrap();
    q[1] = F::one();
    q[10] = -F::one();
    let p = Array2::from_shape_vec((1, 12), p).unwrap();
    let q = Array2::from_shape_vec((1, 12), q).unwrap();
    let mut out = Array1::zeros(1);
    let kernels: [(&str, PairKernel<F>); 2] = [
        ("kl_rows", kl_rows::<F>),
        ("cross_entropy_rows", cross_entropy_rows::<F>),
    ];
    for (name, kernel) in kernels {
        let result = kernel(p.view(), q.view(), out.view_mut());
        assert!(
            matches!(
                result,
                Err(Error::InvalidEntry {
                    row: 0,
                    index: 10,
                    ..
                })
            ),
            "{name}: {result:?}"
        );
    }
    let result = reverse_kl_rows(q.view(), p.view(), out.view_mut());
    assert!(
        matches!(
            result,
            Err(Error::InvalidEntry {
                row: 0,
                index: 10,
                ..
            })
        ),
        "reverse_kl_rows: {result:?}"
    );
}

#[test]
fn infinite_term_checks_entries_f64() {
    infinite_term_still_checks_entries::<f64>();
}

#[test]
fn infinite_term_checks_entries_f32() {
    infinite_term_still_checks_entries::<f32>();
}

/// Two pooled inputs where the first is 0 at token 0 and the second is -inf
/// there. `geometric_pool_into` stopped at the zero of positive weight and
/// never read the second input's entry.
fn pool_checks_every_input<F: Real + KernelFloat>() {
    let first = Array2::from_shape_vec((1, 2), vec![F::zero(), F::one()]).unwrap();
    let second = Array2::from_shape_vec((1, 2), vec![F::neg_infinity(), F::one()]).unwrap();
    let mut out = Array2::zeros((1, 2));
    let weights = [F::one(), F::one()];
    let result = geometric_pool_into(&[first.view(), second.view()], &weights, out.view_mut());
    assert!(
        matches!(
            result,
            Err(Error::InvalidEntry {
                row: 0,
                index: 0,
                ..
            })
        ),
        "{result:?}"
    );
}

#[test]
fn pool_checks_every_input_f64() {
    pool_checks_every_input::<f64>();
}

#[test]
fn pool_checks_every_input_f32() {
    pool_checks_every_input::<f32>();
}

/// Teacher logits with NaN at token 0 and `+inf` at token 40, in the tail after
/// the first 32-token block. `kl_from_logits_rows` checked the tail first and
/// reported token 40; `Distribution::from_logits` reports token 0.
fn logits_kernel_reports_first_invalid<F: Real + KernelFloat>() {
    let mut teacher = vec![F::zero(); 41];
    teacher[0] = F::nan();
    teacher[40] = F::infinity();
    let scalar = Distribution::from_logits(&teacher, F::one()).unwrap_err();
    assert!(
        matches!(scalar, Error::InvalidLogit { index: 0, .. }),
        "{scalar:?}"
    );

    let z = Array2::from_shape_vec((1, 41), teacher).unwrap();
    let y = Array2::zeros((1, 41));
    let mut out = Array1::zeros(1);
    let result = kl_from_logits_rows(z.view(), y.view(), F::one(), out.view_mut());
    assert!(
        matches!(
            result,
            Err(Error::InvalidEntry {
                what: "teacher logits",
                row: 0,
                index: 0,
                ..
            })
        ),
        "{result:?}"
    );
}

#[test]
fn logits_first_invalid_f64() {
    logits_kernel_reports_first_invalid::<f64>();
}

#[test]
fn logits_first_invalid_f32() {
    logits_kernel_reports_first_invalid::<f32>();
}

/// Teacher logits whose second token has a probability below the smallest
/// normal number, a token the student masks. KL is +inf, and the scalar path
/// returns +inf; `kl_from_logits_rows` flushed that probability to 0 and
/// returned a finite value.
fn subnormal_teacher_mass_on_masked_token<F: Real + KernelFloat>(gap: F) {
    let teacher = [F::zero(), -gap];
    let student = [F::zero(), F::neg_infinity()];
    let temperature = F::from(0.1).unwrap();
    let p = Distribution::from_logits(&teacher, temperature).unwrap();
    assert!(p.as_slice()[1] > F::zero());
    assert!(p.as_slice()[1] < F::min_positive_value());
    let q = Distribution::from_logits(&student, temperature).unwrap();
    assert_eq!(kl(&p, &q).unwrap(), F::infinity());

    let z = Array2::from_shape_vec((1, 2), teacher.to_vec()).unwrap();
    let y = Array2::from_shape_vec((1, 2), student.to_vec()).unwrap();
    let mut out = Array1::zeros(1);
    kl_from_logits_rows(z.view(), y.view(), temperature, out.view_mut()).unwrap();
    assert_eq!(out[0], F::infinity());
}

#[test]
fn subnormal_teacher_masked_student_f64() {
    // p_1 = e^(-713.8) ≈ 1e-310.
    subnormal_teacher_mass_on_masked_token::<f64>(71.38);
}

#[test]
fn subnormal_teacher_masked_student_f32() {
    // p_1 = e^(-92.1) ≈ 1e-40.
    subnormal_teacher_mass_on_masked_token::<f32>(9.21);
}

/// `NoisyStudent::against_teacher` with a teacher batch whose input weights
/// differ from the meta-teacher's: the fit returned `InputWeightMismatch`,
/// which it does not document, though the direction reads the rows alone.
fn noisy_student_ignores_teacher_weights<F: Real>() {
    let (half, high, low) = (
        F::from(0.5).unwrap(),
        F::from(0.9).unwrap(),
        F::from(0.1).unwrap(),
    );
    // Rows that differ from the meta-teacher's, so the tilt direction is not constant.
    let teacher_rows = Array2::from_shape_vec((2, 2), vec![half, half, high, low]).unwrap();
    let teacher = DistributionBatch::from_probs(&teacher_rows)
        .unwrap()
        .with_input_weights(&Array1::from(vec![F::one(), F::zero()]))
        .unwrap();
    let rows = Array2::from_shape_vec((2, 2), vec![high, low, half, half]).unwrap();
    let meta_teacher = DistributionBatch::from_probs(&rows).unwrap();
    let size = F::from(0.1).unwrap();
    let mut student =
        NoisyStudent::against_teacher(size, ErrorMeasure::MaxLogRatio, teacher).unwrap();
    let fitted = student.fit(&meta_teacher).unwrap();
    assert_eq!(fitted.input_weights(), meta_teacher.input_weights());
    let errors = Divergence::max_log_ratio()
        .per_row(&meta_teacher, &fitted)
        .unwrap();
    for &error in &errors {
        assert!((error - size).abs() <= F::epsilon().sqrt());
    }
}

#[test]
fn noisy_student_teacher_weights_f64() {
    noisy_student_ignores_teacher_weights::<f64>();
}

#[test]
fn noisy_student_teacher_weights_f32() {
    noisy_student_ignores_teacher_weights::<f32>();
}

/// Checks that students copy input weights. A student's output carried the
/// meta-teacher's input weights divided by their
/// sum a second time, which moved a weight by one unit in the last place, such
/// as 0.4994834798218429 to 0.4994834798218428. Among the weight pairs
/// `(k, 97 - k)` some change under a second normalization; the students must
/// copy every one of them exactly.
fn students_copy_input_weights<F: Real>() {
    let rows = Array2::from_shape_vec(
        (2, 3),
        vec![
            F::from(0.5).unwrap(),
            F::from(0.3).unwrap(),
            F::from(0.2).unwrap(),
            F::from(0.2).unwrap(),
            F::from(0.2).unwrap(),
            F::from(0.6).unwrap(),
        ],
    )
    .unwrap();
    let features = Array2::from_shape_vec((2, 1), vec![F::one(), -F::one()]).unwrap();
    let mut changed_by_renormalizing = 0;
    for k in 1..97 {
        let raw = Array1::from(vec![F::from(k).unwrap(), F::from(97 - k).unwrap()]);
        let meta_teacher = DistributionBatch::from_probs(&rows)
            .unwrap()
            .with_input_weights(&raw)
            .unwrap();
        let again = meta_teacher
            .clone()
            .with_input_weights(meta_teacher.input_weights())
            .unwrap();
        if again.input_weights() != meta_teacher.input_weights() {
            changed_by_renormalizing += 1;
        }

        let mut students: Vec<Box<dyn Student<F>>> = vec![
            Box::new(SparseStudent::new(1, KeptTokens::Largest)),
            Box::new(
                NoisyStudent::random(F::from(0.01).unwrap(), ErrorMeasure::KullbackLeibler, 7)
                    .unwrap(),
            ),
            Box::new(
                SoftmaxStudent::new(features.view(), 3, Capacity::Full)
                    .unwrap()
                    .with_max_iterations(2),
            ),
        ];
        for student in &mut students {
            let fitted = student.fit(&meta_teacher).unwrap();
            assert_eq!(
                fitted.input_weights(),
                meta_teacher.input_weights(),
                "{} with weights ({k}, {})",
                student.name(),
                97 - k
            );
        }
    }
    assert!(changed_by_renormalizing > 0);
}

#[test]
fn students_copy_input_weights_f64() {
    students_copy_input_weights::<f64>();
}

#[test]
fn students_copy_input_weights_f32() {
    students_copy_input_weights::<f32>();
}

/// `Recursion` from a start with `D(S_0) = +inf` at `a = 1`: the bounds
/// `(1 - a) · D(S_0) + ε∞` were `0 · inf = NaN`.
fn runner_infinite_start_gives_no_nan<F: Real>() {
    let teacher = DistributionBatch::repeat(&Distribution::<F>::uniform(2).unwrap(), 1).unwrap();
    let point_mass = Distribution::from_probs(&[F::one(), F::zero()]).unwrap();
    let start = DistributionBatch::repeat(&point_mass, 1).unwrap();
    let teachers = [teacher];
    let mut student = ExactStudent;
    let run = Recursion::new(&teachers, &start, convex_mixture, &mut student)
        .schedule(AnchorSchedule::Constant(F::one()))
        .max_generations(2)
        .run()
        .unwrap();
    let records = run.records();
    assert_eq!(records[0].divergence, F::infinity());
    for record in &records[1..] {
        assert_eq!(record.divergence, F::zero());
        assert_eq!(record.bound, F::zero(), "generation {}", record.generation);
        assert_eq!(record.step_bound, Some(F::zero()));
    }
}

#[test]
fn runner_infinite_start_no_nan_f64() {
    runner_infinite_start_gives_no_nan::<f64>();
}

#[test]
fn runner_infinite_start_no_nan_f32() {
    runner_infinite_start_gives_no_nan::<f32>();
}

/// An iterative Renyi projection of order 6.67e272 onto three copies of `T0`
/// and `T0` itself. The weighted mixture it starts from differs from `T0` by
/// rounding, which the order turns into gradients of size 1e283, and the
/// solver returned the point mass on the last token, with objective `+inf`.
/// A result worse than the start is now `NotConverged`.
fn huge_renyi_order_keeps_fixed_point<F: Real>() {
    let probs = [
        0.1662464516811538,
        0.16675070966376923,
        0.16675070966376923,
        0.16675070966376923,
        0.16675070966376923,
        0.16675070966376923,
        1.605750924946376e-35,
        1.2127712684745945e-109,
    ];
    let probs: Vec<F> = probs.iter().map(|&p| F::from(p).unwrap()).collect();
    let teacher = Distribution::from_probs_with_tolerance(&probs, F::from(1e-6).unwrap()).unwrap();
    // f32 has no 6.67e272, so it takes its largest float, 3.4e38.
    let order = F::from(6.670709007833653e272)
        .filter(|order| order.is_finite())
        .unwrap_or_else(F::max_value);
    let weighting = GeneralizedMixture::single_teacher(
        F::from(0.615686274509804).unwrap(),
        HistoryWeights::Quality {
            sharpness: F::from(5.753524351165793e-205).unwrap_or_else(F::zero),
            length: 4,
        },
    )
    .unwrap();
    let solver = MirrorDescent::new(F::from(1e-6).unwrap(), 2).unwrap();
    let projection =
        IterativeProjection::new(Divergence::Renyi { order }, weighting, solver).unwrap();
    assert!(projection.fixes_teacher());

    let history = vec![teacher.clone(); 3];
    match projection.build(std::slice::from_ref(&teacher), &history) {
        Ok(q) => {
            for (&qi, &ti) in q.as_slice().iter().zip(teacher.as_slice()) {
                assert!((qi - ti).abs() <= F::from(1e-6).unwrap() * ti, "q = {q:?}");
            }
        }
        Err(error) => assert!(matches!(error, Error::NotConverged { .. }), "{error:?}"),
    }
}

#[test]
fn huge_renyi_order_fixed_point_f64() {
    huge_renyi_order_keeps_fixed_point::<f64>();
}

#[test]
fn huge_renyi_order_fixed_point_f32() {
    huge_renyi_order_keeps_fixed_point::<f32>();
}

/// The power mean of order 0.1 of copies of `T0` whose entries are near 1e-131:
/// `expm1(0.1 ln p)` lay near -1 and `ln_1p` of it kept three digits, so the
/// projection moved `T0_0 = 5.62e-132` to `5.59e-132` although `T0` is its fixed point.
fn small_order_power_mean_keeps_tiny_entries<F: Real>() {
    let tiny = F::from(5.6217088707919446e-132)
        .filter(|value| !value.is_zero())
        .unwrap_or_else(|| F::from(1e-40).unwrap());
    let other = tiny + tiny;
    let mut probs = vec![tiny, other, other, other];
    let rest = F::one() - (tiny + other + other + other);
    probs.push(rest);
    let teacher = Distribution::from_probs(&probs).unwrap();
    let weighting = GeneralizedMixture::single_teacher(
        F::from(0.613824673838407).unwrap(),
        HistoryWeights::ExponentialDecay {
            decay: F::from(0.451621271076524).unwrap(),
            length: 2,
        },
    )
    .unwrap();
    let order = F::from(0.1).unwrap();
    let projection =
        InformationProjection::new(PowerMeanProjection::Amari { order }, weighting).unwrap();
    assert!(projection.fixes_teacher());

    let history = vec![teacher.clone(); 3];
    let q = projection
        .build(std::slice::from_ref(&teacher), &history)
        .unwrap();
    for (index, (&qi, &ti)) in q.as_slice().iter().zip(teacher.as_slice()).enumerate() {
        // ln p rounds to ε |ln p| <= 700 ε, which exp turns into a relative error.
        let allowed = F::from(1e3).unwrap() * F::epsilon() * ti;
        assert!(
            (qi - ti).abs() <= allowed,
            "token {index}: q = {qi}, T0 = {ti}"
        );
    }
}

#[test]
fn small_order_tiny_entries_f64() {
    small_order_power_mean_keeps_tiny_entries::<f64>();
}

#[test]
fn small_order_tiny_entries_f32() {
    small_order_power_mean_keeps_tiny_entries::<f32>();
}

/// The reverse-KL projection of a teacher with a subnormal first entry and a
/// student that is 0 on the second token. The gradient `ln(q/p) + 1` took the
/// quotient first, which overflowed to `+inf` at the subnormal `p`, so every
/// token looked infinite and the solver reported disjoint supports, though
/// both points are positive on the first token, the whole answer.
fn reverse_kl_projection_subnormal_entry<F: Real>() {
    let tiny = F::min_positive_value() / F::from(1024).unwrap();
    let teacher = Distribution::from_probs(&[tiny, F::one()]).unwrap();
    let student = Distribution::from_probs(&[F::one(), F::zero()]).unwrap();
    let weighting =
        GeneralizedMixture::single_teacher(F::from(0.5).unwrap(), HistoryWeights::Latest).unwrap();
    let projection = IterativeProjection::new(
        Divergence::ReverseKullbackLeibler,
        weighting,
        MirrorDescent::default(),
    )
    .unwrap();
    let q = projection.build(&[teacher], &[student]).unwrap();
    assert_eq!(q.as_slice(), &[F::one(), F::zero()]);
}

#[test]
fn reverse_kl_projection_subnormal_f64() {
    reverse_kl_projection_subnormal_entry::<f64>();
}

#[test]
fn reverse_kl_projection_subnormal_f32() {
    reverse_kl_projection_subnormal_entry::<f32>();
}

/// The power mean of order -1.8e308 of two overlapping points: `b ln p`
/// overflowed to `+inf` for every `p` below about 0.37, so the mean was 0 on
/// every token and the projection reported disjoint supports.
fn huge_negative_order_power_mean<F: Real>() {
    let teacher =
        Distribution::from_probs(&[F::from(0.1).unwrap(), F::from(0.9).unwrap()]).unwrap();
    let student =
        Distribution::from_probs(&[F::from(0.2).unwrap(), F::from(0.8).unwrap()]).unwrap();
    let order = -F::max_value();
    let projection = InformationProjection::single_teacher(
        PowerMeanProjection::Amari { order },
        F::from(0.5).unwrap(),
    )
    .unwrap();
    let q = projection.build(&[teacher], &[student]).unwrap();
    // M_b tends to min_k p_k as b -> -inf: (0.1, 0.8) normalized.
    let expected = [F::from(0.1 / 0.9).unwrap(), F::from(0.8 / 0.9).unwrap()];
    for (&qi, &ei) in q.as_slice().iter().zip(&expected) {
        assert!(
            (qi - ei).abs() <= F::from(8).unwrap() * F::epsilon(),
            "q = {q:?}"
        );
    }
}

#[test]
fn huge_negative_order_mean_f64() {
    huge_negative_order_power_mean::<f64>();
}

#[test]
fn huge_negative_order_mean_f32() {
    huge_negative_order_power_mean::<f32>();
}

/// Renyi of order 1.6e144 between `T0` and `T0` rounded by one ulp: the
/// binomial expansion cancelled terms of size 1e128 and returned `+inf`, not a
/// value near 0. With the start of the projection at `+inf`, mirror descent
/// then returned a point mass as the projection of copies of `T0`.
fn huge_renyi_order_near_equal_points<F: Real>() {
    let mut probs = vec![F::zero(); 12];
    probs[0] = F::from(0.9999694833523702).unwrap();
    probs[2] = F::from(3.0516647629726174e-5).unwrap();
    let teacher = Distribution::from_probs(&probs).unwrap();
    let anchor = F::from(0.03906309605554284).unwrap();
    let mixed: Vec<F> = probs
        .iter()
        .map(|&p| anchor * p + (F::one() - anchor) * p)
        .collect();
    let start = Distribution::from_probs(&mixed).unwrap();
    let order = F::from(1.6404232265591757e144)
        .filter(|order| order.is_finite())
        .unwrap_or_else(F::max_value);
    let divergence = Divergence::Renyi { order };
    let value = divergence.compute(&teacher, &start).unwrap();
    // The points differ by rounding, so D_b is at most the max log-ratio, a few ε.
    assert!(
        value <= F::from(4).unwrap() * F::epsilon(),
        "D_b = {value:?}"
    );

    let weighting =
        GeneralizedMixture::single_teacher(anchor, HistoryWeights::Window { length: 1 }).unwrap();
    let solver = MirrorDescent::new(F::from(1e-6).unwrap(), 12).unwrap();
    let projection = IterativeProjection::new(divergence, weighting, solver).unwrap();
    let history = vec![teacher.clone(); 3];
    match projection.build(std::slice::from_ref(&teacher), &history) {
        Ok(q) => {
            for (&qi, &ti) in q.as_slice().iter().zip(teacher.as_slice()) {
                assert!((qi - ti).abs() <= F::from(1e-6).unwrap(), "q = {q:?}");
            }
        }
        Err(error) => assert!(matches!(error, Error::NotConverged { .. }), "{error:?}"),
    }
}

#[test]
fn huge_renyi_order_near_equal_f64() {
    huge_renyi_order_near_equal_points::<f64>();
}

#[test]
fn huge_renyi_order_near_equal_f32() {
    huge_renyi_order_near_equal_points::<f32>();
}

/// `geometric_pool_into` with weights `[MAX, MAX]`: it divides each weight by
/// their plain sum, which overflows to `+inf`, so every weight became 0 and
/// the pool came out uniform instead of the geometric mean of its inputs.
fn pool_weights_near_max<F: Real + KernelFloat>() {
    let first =
        Array2::from_shape_vec((1, 2), vec![F::from(0.9).unwrap(), F::from(0.1).unwrap()]).unwrap();
    let second = Array2::from_shape_vec((1, 2), vec![F::from(0.5).unwrap(); 2]).unwrap();
    let mut big = Array2::zeros((1, 2));
    let mut unit = Array2::zeros((1, 2));
    let inputs = [first.view(), second.view()];
    geometric_pool_into(&inputs, &[F::max_value(), F::max_value()], big.view_mut()).unwrap();
    geometric_pool_into(&inputs, &[F::one(), F::one()], unit.view_mut()).unwrap();
    for (&found, &expected) in big.iter().zip(unit.iter()) {
        assert!((found - expected).abs() <= F::epsilon(), "{big} != {unit}");
    }
}

#[test]
fn pool_weights_near_max_f64() {
    pool_weights_near_max::<f64>();
}

#[test]
fn pool_weights_near_max_f32() {
    pool_weights_near_max::<f32>();
}

/// The geometric pool with `a = 1` and teacher weights `[1, 1e-30]`: its
/// declared anchor weight `a w_0` is 1, and `anchors_pointwise()` claimed
/// `q >= T0` on every token, but the second teacher's zero makes `q_0 = 0`.
fn tiny_second_teacher_weight_breaks_anchoring<F: Real>() {
    let weights = Weights::new(&[F::one(), F::from(1e-30).unwrap()]).unwrap();
    let weighting = GeneralizedMixture::new(F::one(), weights, HistoryWeights::Latest).unwrap();
    let projection = InformationProjection::new(PowerMeanProjection::ReverseKl, weighting).unwrap();
    assert_eq!(projection.anchor_weight(), F::one());
    assert!(!projection.anchors_pointwise());

    let teacher = Distribution::<F>::uniform(3).unwrap();
    let other =
        Distribution::from_probs(&[F::zero(), F::from(0.5).unwrap(), F::from(0.5).unwrap()])
            .unwrap();
    let q = projection
        .build(&[teacher.clone(), other], std::slice::from_ref(&teacher))
        .unwrap();
    assert_eq!(q.as_slice()[0], F::zero());
}

#[test]
fn tiny_teacher_weight_anchoring_f64() {
    tiny_second_teacher_weight_breaks_anchoring::<f64>();
}

#[test]
fn tiny_teacher_weight_anchoring_f32() {
    tiny_second_teacher_weight_breaks_anchoring::<f32>();
}

/// Checks `reverse_kl_rows` with both inputs NaN at token 0. The kernel computes
/// `KL(q ‖ p)` and so met `q` first, but at one token the error must name the
/// first argument, `p`, as the scalar constructors and the other kernels do.
fn reverse_kl_names_p_first_at_a_shared_token<F: Real + KernelFloat>() {
    let p = Array2::from_shape_vec((1, 2), vec![F::nan(), F::one()]).unwrap();
    let q = Array2::from_shape_vec((1, 2), vec![F::nan(), F::one()]).unwrap();
    let mut out = Array1::zeros(1);
    let error = reverse_kl_rows(p.view(), q.view(), out.view_mut()).unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidEntry {
                what: "first probability matrix",
                row: 0,
                index: 0,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn reverse_kl_shared_token_f64() {
    reverse_kl_names_p_first_at_a_shared_token::<f64>();
}

#[test]
fn reverse_kl_shared_token_f32() {
    reverse_kl_names_p_first_at_a_shared_token::<f32>();
}

/// Checks a row where the student masks token 1 and the teacher does not,
/// but the teacher's gap to its maximum, divided by `T`, overflows to `-inf`
/// (f32) or its probability rounds to 0 (f64). The exact KL is `+inf`, and
/// the kernel had taken the token as masked by both and returned 0.
fn student_masks_a_vanishing_teacher_token<F: Real + KernelFloat>(top: F, temperature: F) {
    let z = Array2::from_shape_vec((1, 2), vec![top, -top]).unwrap();
    let y = Array2::from_shape_vec((1, 2), vec![F::zero(), F::neg_infinity()]).unwrap();
    let mut out = Array1::zeros(1);
    kl_from_logits_rows(z.view(), y.view(), temperature, out.view_mut()).unwrap();
    assert_eq!(out[0], F::infinity());
}

#[test]
fn student_masks_vanishing_teacher_token_f64() {
    student_masks_a_vanishing_teacher_token::<f64>(1e300, 0.1);
}

#[test]
fn student_masks_vanishing_teacher_token_f32() {
    student_masks_a_vanishing_teacher_token::<f32>(3e38, 0.1);
}
