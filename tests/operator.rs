//! The meta-teacher operator trait and the convex mixture, in f32 and f64.
//!
//! Each check is a generic function run for both float types. Tolerances are
//! multiples of the type's machine epsilon `ε`, with the reason next to each.

use approx::assert_relative_eq;
use metadistill::operator::effective_anchor_weight_batch;
use metadistill::{
    ConvexMixture, Distribution, DistributionBatch, Error, MetaTeacherOperator, Real, Result,
    effective_anchor_weight,
};
use ndarray::{ArrayView1, ArrayViewMut1, array};

/// Converts an `f64` literal to `F`.
fn c<F: Real>(value: f64) -> F {
    F::from(value).unwrap()
}

/// Builds a distribution from literals that are known to be valid.
fn dist<F: Real>(entries: &[f64]) -> Distribution<F> {
    let values: Vec<F> = entries.iter().map(|&x| c(x)).collect();
    Distribution::from_probs(&values).unwrap()
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

/// Returns the appendix pair: teacher `(0.6, 0.3, 0.1)` and initial student `(0.2, 0.5, 0.3)`.
fn appendix<F: Real>() -> (Distribution<F>, Distribution<F>) {
    (dist(&[0.6, 0.3, 0.1]), dist(&[0.2, 0.5, 0.3]))
}

fn mixture_blends_teacher_and_latest_student<F: Real>() {
    let (teacher, start) = appendix::<F>();
    let older = dist::<F>(&[1.0, 0.0, 0.0]);
    let q = ConvexMixture::new(c::<F>(0.3))
        .unwrap()
        .build(std::slice::from_ref(&teacher), &[older, start.clone()])
        .unwrap();
    // a t + (1 - a) s rounds the weight 1 - a, two products and a sum, each
    // within half an ulp, so 2.5 ε covers them. The expected value below is
    // computed in F the same way, up to the order of operations.
    let a = c::<F>(0.3);
    let rest = F::one() - a;
    for ((got, &t), &s) in q
        .probs()
        .iter()
        .zip(teacher.as_slice())
        .zip(start.as_slice())
    {
        assert_relative_eq!(
            *got,
            a * t + rest * s,
            max_relative = c::<F>(2.5) * F::epsilon()
        );
    }
    // The same check against the exact decimal values, within the rounding of the inputs.
    let decimal = [0.32, 0.44, 0.24];
    for (got, want) in q.probs().iter().zip(decimal) {
        assert_relative_eq!(*got, c(want), max_relative = c::<F>(4.0) * F::epsilon());
    }
}

fn mixture_with_full_anchor_returns_teacher<F: Real>() {
    let (teacher, start) = appendix::<F>();
    let q = ConvexMixture::new(F::one())
        .unwrap()
        .build(std::slice::from_ref(&teacher), &[start])
        .unwrap();
    assert_eq!(q, teacher);
}

fn unanchored_mixture_copies_student<F: Real>() {
    let (teacher, start) = appendix::<F>();
    let operator = ConvexMixture::unanchored();
    assert_eq!(operator.anchor_weight(), F::zero());
    let q = operator
        .build(&[teacher], std::slice::from_ref(&start))
        .unwrap();
    assert_eq!(q, start);
}

fn mixture_rejects_bad_anchor_weights<F: Real>() {
    // One ulp above 1 in each type.
    let above_one = F::one() + F::epsilon();
    for a in [F::zero(), c(-0.1), above_one, F::nan(), F::infinity()] {
        let error = ConvexMixture::new(a).unwrap_err();
        assert!(
            matches!(error, Error::InvalidAnchorWeight { .. }),
            "{a}: {error:?}"
        );
    }
    let message = ConvexMixture::new(c::<F>(1.5)).unwrap_err().to_string();
    assert!(
        message.contains("1.5") && message.contains("(0, 1]"),
        "{message}"
    );
}

fn build_rejects_bad_input_lists<F: Real>() {
    let (teacher, start) = appendix::<F>();
    let operator = ConvexMixture::new(c::<F>(0.5)).unwrap();
    let none: [Distribution<F>; 0] = [];
    assert!(matches!(
        operator.build(&none, std::slice::from_ref(&start)),
        Err(Error::Empty { .. })
    ));
    assert_eq!(
        operator
            .build(std::slice::from_ref(&teacher), &none)
            .unwrap_err(),
        Error::Empty {
            what: "student history"
        }
    );
    let two_teachers = [teacher.clone(), teacher.clone()];
    assert_eq!(
        operator
            .build(&two_teachers, std::slice::from_ref(&start))
            .unwrap_err(),
        Error::TeacherCount {
            operator: "ConvexMixture",
            expected: "exactly 1",
            found: 2
        }
    );
    let short = dist::<F>(&[0.5, 0.5]);
    assert_eq!(
        operator.build(&[teacher], &[short]).unwrap_err(),
        Error::VocabularyMismatch {
            what: "student",
            expected: 3,
            found: 2
        }
    );
}

fn mixture_works_row_by_row_on_batches<F: Real>() {
    let weights = array![1.0, 2.0].mapv(c::<F>);
    let teacher =
        DistributionBatch::from_probs(&array![[0.6, 0.3, 0.1], [0.0, 0.5, 0.5]].mapv(c::<F>))
            .unwrap()
            .with_input_weights(&weights)
            .unwrap();
    let student =
        DistributionBatch::from_probs(&array![[0.2, 0.5, 0.3], [1.0, 0.0, 0.0]].mapv(c::<F>))
            .unwrap()
            .with_input_weights(&weights)
            .unwrap();
    let q = ConvexMixture::new(c::<F>(0.5))
        .unwrap()
        .build_batch(
            std::slice::from_ref(&teacher),
            std::slice::from_ref(&student),
        )
        .unwrap();
    // 0.5 · 0 + 0.5 · 1 and the ratio 0.5 / 1 are exact in both types.
    assert_eq!(q.row(1).unwrap()[0], c(0.5));
    assert_eq!(q.input_weights(), teacher.input_weights());
    assert_relative_eq!(
        effective_anchor_weight_batch(&q, &teacher).unwrap(),
        c(0.5),
        max_relative = c::<F>(4.0) * F::epsilon()
    );

    let uniform_weights =
        DistributionBatch::from_probs(&array![[0.2, 0.5, 0.3], [1.0, 0.0, 0.0]].mapv(c::<F>))
            .unwrap();
    let error = ConvexMixture::new(c::<F>(0.5))
        .unwrap()
        .build_batch(&[teacher], &[uniform_weights])
        .unwrap_err();
    assert!(
        matches!(error, Error::InputWeightMismatch { .. }),
        "{error:?}"
    );
}

fn mixture_anchor_weight_at_least_a<F: Real>() {
    let (teacher, start) = appendix::<F>();
    for a in [0.01, 0.3, 0.7, 1.0].map(c::<F>) {
        let q = ConvexMixture::new(a)
            .unwrap()
            .build(std::slice::from_ref(&teacher), std::slice::from_ref(&start))
            .unwrap();
        let a_star = effective_anchor_weight(&q, &teacher).unwrap();
        // q_i / t_i >= a is exact in real numbers. Rounding the mixture and
        // the ratio can take a few ε off it, so 4.5 ε (1e-15 in f64) is allowed.
        assert!(
            a_star >= a - c::<F>(4.5) * F::epsilon(),
            "a* = {a_star} < a = {a}"
        );
        assert!(a_star <= F::one());
    }
    // A student that puts no mass on the teacher's first token: a* equals a up to rounding.
    let opposite = dist::<F>(&[0.0, 0.5, 0.5]);
    let q = ConvexMixture::new(c::<F>(0.3))
        .unwrap()
        .build(std::slice::from_ref(&teacher), &[opposite])
        .unwrap();
    assert_relative_eq!(
        effective_anchor_weight(&q, &teacher).unwrap(),
        c(0.3),
        max_relative = c::<F>(4.5) * F::epsilon()
    );
    let short = dist::<F>(&[1.0]);
    assert!(matches!(
        effective_anchor_weight(&short, &teacher),
        Err(Error::VocabularyMismatch { .. })
    ));
}

/// An operator that forgets to normalize: the trait must catch it.
struct Unnormalized;

impl<F: Real> MetaTeacherOperator<F> for Unnormalized {
    fn anchor_weight(&self) -> F {
        c(0.5)
    }

    fn combine_into(
        &self,
        teachers: &[ArrayView1<F>],
        students: &[ArrayView1<F>],
        mut out: ArrayViewMut1<F>,
    ) -> Result<()> {
        let pairs = teachers[0].iter().zip(students[0].iter());
        for (slot, (&t, &s)) in out.iter_mut().zip(pairs) {
            *slot = t + s;
        }
        Ok(())
    }
}

fn invalid_operator_output_is_an_error<F: Real>() {
    let (teacher, start) = appendix::<F>();
    let error = Unnormalized.build(&[teacher], &[start]).unwrap_err();
    let Error::InvalidOperatorOutput { operator, source } = &error else {
        panic!("expected InvalidOperatorOutput, got {error:?}");
    };
    assert_eq!(operator, "Unnormalized");
    assert!(matches!(**source, Error::NotNormalized { .. }));
    assert!(
        error
            .to_string()
            .starts_with("operator Unnormalized returned an invalid meta-teacher")
    );

    let batch =
        DistributionBatch::from_probs(&array![[0.5, 0.5], [1.0, 0.0]].mapv(c::<F>)).unwrap();
    let batch_error = Unnormalized
        .build_batch(std::slice::from_ref(&batch), std::slice::from_ref(&batch))
        .unwrap_err();
    assert!(matches!(batch_error, Error::InRow { row: 0, .. }));
}

fn operator_names_describe_parameters<F: Real>() {
    assert_eq!(
        ConvexMixture::new(c::<F>(0.3)).unwrap().name(),
        "ConvexMixture(a = 0.3)"
    );
    assert_eq!(
        MetaTeacherOperator::<F>::name(&Unnormalized),
        "Unnormalized"
    );
}

/// An operator that reads the last two students and records how many it was given.
struct LastTwo {
    seen: std::cell::Cell<usize>,
}

impl<F: Real> MetaTeacherOperator<F> for LastTwo {
    fn anchor_weight(&self) -> F {
        c(0.5)
    }

    fn history_window(&self) -> Option<usize> {
        Some(2)
    }

    fn combine_into(
        &self,
        teachers: &[ArrayView1<F>],
        students: &[ArrayView1<F>],
        mut out: ArrayViewMut1<F>,
    ) -> Result<()> {
        self.seen.set(students.len());
        out.assign(&teachers[0]);
        out.mapv_inplace(|t| t * c(0.5));
        let share = c::<F>(0.5) / c(students.len() as f64);
        for student in students {
            out.scaled_add(share, student);
        }
        Ok(())
    }
}

fn history_window_limits_students_passed<F: Real>() {
    let (teacher, start) = appendix::<F>();
    let operator = LastTwo {
        seen: std::cell::Cell::new(0),
    };
    let history = vec![start.clone(); 5];
    operator
        .build(std::slice::from_ref(&teacher), &history)
        .unwrap();
    assert_eq!(operator.seen.get(), 2);
    operator
        .build(std::slice::from_ref(&teacher), &history[..1])
        .unwrap();
    assert_eq!(operator.seen.get(), 1);

    let batches = vec![DistributionBatch::repeat(&start, 2).unwrap(); 4];
    let teachers = [DistributionBatch::repeat(&teacher, 2).unwrap()];
    operator.build_batch(&teachers, &batches).unwrap();
    assert_eq!(operator.seen.get(), 2);
}

fn mixture_reads_latest_student_only<F: Real>() {
    assert_eq!(
        MetaTeacherOperator::<F>::history_window(&ConvexMixture::new(c::<F>(0.3)).unwrap()),
        Some(1)
    );
    // An older student of another vocabulary size is outside the window, so it is not read.
    let (teacher, start) = appendix::<F>();
    let older = dist::<F>(&[1.0]);
    let q = ConvexMixture::new(c::<F>(0.3))
        .unwrap()
        .build(&[teacher], &[older, start])
        .unwrap();
    assert_eq!(q.len(), 3);
}

for_both_floats!(
    mixture_blends_teacher_and_latest_student,
    mixture_with_full_anchor_returns_teacher,
    unanchored_mixture_copies_student,
    mixture_rejects_bad_anchor_weights,
    build_rejects_bad_input_lists,
    mixture_works_row_by_row_on_batches,
    mixture_anchor_weight_at_least_a,
    invalid_operator_output_is_an_error,
    operator_names_describe_parameters,
    history_window_limits_students_passed,
    mixture_reads_latest_student_only,
);

#[test]
fn f32_mixture_matches_f64() {
    let teacher = Distribution::<f32>::from_probs(&[0.6_f32, 0.3, 0.1]).unwrap();
    let start = Distribution::<f32>::from_probs(&[0.2_f32, 0.5, 0.3]).unwrap();
    let q = ConvexMixture::new(0.3_f32)
        .unwrap()
        .build(&[teacher], &[start])
        .unwrap();
    assert_relative_eq!(q.probs()[0], 0.32_f32, max_relative = 1e-6);
}
