//! The meta-teacher operator trait and the convex mixture.

use approx::assert_relative_eq;
use metadistill::operator::effective_anchor_weight_batch;
use metadistill::{
    ConvexMixture, Distribution, DistributionBatch, Error, MetaTeacherOperator, Result,
    effective_anchor_weight,
};
use ndarray::{ArrayView1, ArrayViewMut1, array};

fn appendix() -> (Distribution, Distribution) {
    (
        Distribution::from_probs(&[0.6, 0.3, 0.1]).unwrap(),
        Distribution::from_probs(&[0.2, 0.5, 0.3]).unwrap(),
    )
}

#[test]
fn mixture_blends_teacher_and_latest_student() {
    let (teacher, start) = appendix();
    let older = Distribution::from_probs(&[1.0, 0.0, 0.0]).unwrap();
    let q = ConvexMixture::new(0.3)
        .unwrap()
        .build(&[teacher], &[older, start])
        .unwrap();
    let expected = [
        0.3 * 0.6 + 0.7 * 0.2,
        0.3 * 0.3 + 0.7 * 0.5,
        0.3 * 0.1 + 0.7 * 0.3,
    ];
    for (got, want) in q.probs().iter().zip(expected) {
        assert_relative_eq!(*got, want, max_relative = 1e-15);
    }
}

#[test]
fn mixture_with_full_anchor_returns_teacher() {
    let (teacher, start) = appendix();
    let q = ConvexMixture::new(1.0)
        .unwrap()
        .build(std::slice::from_ref(&teacher), &[start])
        .unwrap();
    assert_eq!(q, teacher);
}

#[test]
fn unanchored_mixture_copies_student() {
    let (teacher, start) = appendix();
    let operator = ConvexMixture::unanchored();
    assert_eq!(operator.anchor_weight(), 0.0);
    let q = operator
        .build(&[teacher], std::slice::from_ref(&start))
        .unwrap();
    assert_eq!(q, start);
}

#[test]
fn mixture_rejects_bad_anchor_weights() {
    for a in [0.0, -0.1, 1.000_001, f64::NAN, f64::INFINITY] {
        let error = ConvexMixture::new(a).unwrap_err();
        assert!(
            matches!(error, Error::InvalidAnchorWeight { .. }),
            "{a}: {error:?}"
        );
    }
    let message = ConvexMixture::new(1.5).unwrap_err().to_string();
    assert!(
        message.contains("1.5") && message.contains("(0, 1]"),
        "{message}"
    );
}

#[test]
fn build_rejects_bad_input_lists() {
    let (teacher, start) = appendix();
    let operator = ConvexMixture::new(0.5).unwrap();
    let none: [Distribution; 0] = [];
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
    let short = Distribution::from_probs(&[0.5, 0.5]).unwrap();
    assert_eq!(
        operator.build(&[teacher], &[short]).unwrap_err(),
        Error::VocabularyMismatch {
            what: "student",
            expected: 3,
            found: 2
        }
    );
}

#[test]
fn mixture_works_row_by_row_on_batches() {
    let teacher = DistributionBatch::from_probs(&array![[0.6, 0.3, 0.1], [0.0, 0.5, 0.5]])
        .unwrap()
        .with_input_weights(&array![1.0, 2.0])
        .unwrap();
    let student = DistributionBatch::from_probs(&array![[0.2, 0.5, 0.3], [1.0, 0.0, 0.0]])
        .unwrap()
        .with_input_weights(&array![1.0, 2.0])
        .unwrap();
    let q = ConvexMixture::new(0.5)
        .unwrap()
        .build_batch(
            std::slice::from_ref(&teacher),
            std::slice::from_ref(&student),
        )
        .unwrap();
    assert_relative_eq!(q.row(1).unwrap()[0], 0.5, max_relative = 1e-15);
    assert_eq!(q.input_weights(), teacher.input_weights());
    assert_relative_eq!(
        effective_anchor_weight_batch(&q, &teacher).unwrap(),
        0.5,
        max_relative = 1e-15
    );

    let uniform_weights =
        DistributionBatch::from_probs(&array![[0.2, 0.5, 0.3], [1.0, 0.0, 0.0]]).unwrap();
    let error = ConvexMixture::new(0.5)
        .unwrap()
        .build_batch(&[teacher], &[uniform_weights])
        .unwrap_err();
    assert!(
        matches!(error, Error::InputWeightMismatch { .. }),
        "{error:?}"
    );
}

#[test]
fn mixture_anchor_weight_at_least_a() {
    let (teacher, start) = appendix();
    for a in [0.01, 0.3, 0.7, 1.0] {
        let q = ConvexMixture::new(a)
            .unwrap()
            .build(std::slice::from_ref(&teacher), std::slice::from_ref(&start))
            .unwrap();
        let a_star = effective_anchor_weight(&q, &teacher).unwrap();
        assert!(a_star >= a - 1e-15, "a* = {a_star} < a = {a}");
        assert!(a_star <= 1.0);
    }
    // A student that puts no mass on the teacher's first token: a* equals a exactly.
    let opposite = Distribution::from_probs(&[0.0, 0.5, 0.5]).unwrap();
    let q = ConvexMixture::new(0.3)
        .unwrap()
        .build(std::slice::from_ref(&teacher), &[opposite])
        .unwrap();
    assert_relative_eq!(
        effective_anchor_weight(&q, &teacher).unwrap(),
        0.3,
        max_relative = 1e-15
    );
    let short = Distribution::from_probs(&[1.0]).unwrap();
    assert!(matches!(
        effective_anchor_weight(&short, &teacher),
        Err(Error::VocabularyMismatch { .. })
    ));
}

/// An operator that forgets to normalize: the trait must catch it.
struct Unnormalized;

impl MetaTeacherOperator<f64> for Unnormalized {
    fn anchor_weight(&self) -> f64 {
        0.5
    }

    fn combine_into(
        &self,
        teachers: &[ArrayView1<f64>],
        students: &[ArrayView1<f64>],
        mut out: ArrayViewMut1<f64>,
    ) -> Result<()> {
        out.assign(&teachers[0]);
        out += &students[0];
        Ok(())
    }
}

#[test]
fn invalid_operator_output_is_an_error() {
    let (teacher, start) = appendix();
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

    let batch = DistributionBatch::from_probs(&array![[0.5, 0.5], [1.0, 0.0]]).unwrap();
    let batch_error = Unnormalized
        .build_batch(std::slice::from_ref(&batch), std::slice::from_ref(&batch))
        .unwrap_err();
    assert!(matches!(batch_error, Error::InRow { row: 0, .. }));
}

#[test]
fn operator_names_describe_parameters() {
    assert_eq!(
        ConvexMixture::new(0.3).unwrap().name(),
        "ConvexMixture(a = 0.3)"
    );
    assert_eq!(Unnormalized.name(), "Unnormalized");
}

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

/// An operator that reads the last two students and records how many it was given.
struct LastTwo {
    seen: std::cell::Cell<usize>,
}

impl MetaTeacherOperator<f64> for LastTwo {
    fn anchor_weight(&self) -> f64 {
        0.5
    }

    fn history_window(&self) -> Option<usize> {
        Some(2)
    }

    fn combine_into(
        &self,
        teachers: &[ArrayView1<f64>],
        students: &[ArrayView1<f64>],
        mut out: ArrayViewMut1<f64>,
    ) -> Result<()> {
        self.seen.set(students.len());
        out.assign(&teachers[0]);
        out *= 0.5;
        let share = 0.5 / students.len() as f64;
        for student in students {
            out.scaled_add(share, student);
        }
        Ok(())
    }
}

#[test]
fn history_window_limits_students_passed() {
    let (teacher, start) = appendix();
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

#[test]
fn mixture_reads_latest_student_only() {
    assert_eq!(
        MetaTeacherOperator::<f64>::history_window(&ConvexMixture::new(0.3).unwrap()),
        Some(1)
    );
    // An older student of another vocabulary size is outside the window, so it is not read.
    let (teacher, start) = appendix();
    let older = Distribution::from_probs(&[1.0]).unwrap();
    let q = ConvexMixture::new(0.3)
        .unwrap()
        .build(&[teacher], &[older, start])
        .unwrap();
    assert_eq!(q.len(), 3);
}
