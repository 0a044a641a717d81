//! The axiom checker on operators defined here: a geometric pool, a tempered
//! mixture, a multi-teacher mixture and deliberately broken ones.

use metadistill::axioms::{Checker, DistributionSpace, Property, Report, Verdict, find_limit};
use metadistill::{ConvexMixture, Distribution, Error, MetaTeacherOperator, Real, Result};
use ndarray::{ArrayView1, ArrayViewMut1};

/// Geometric (log-linear) pooling `q ∝ T0^a S_g^(1-a)`.
struct GeometricPool<F> {
    anchor: F,
}

impl<F: Real> MetaTeacherOperator<F> for GeometricPool<F> {
    fn anchor_weight(&self) -> F {
        self.anchor
    }

    fn combine_into(
        &self,
        teachers: &[ArrayView1<F>],
        students: &[ArrayView1<F>],
        mut out: ArrayViewMut1<F>,
    ) -> Result<()> {
        let student = students[students.len() - 1];
        let a = self.anchor;
        for ((q, &t), &s) in out.iter_mut().zip(teachers[0]).zip(student) {
            *q = t.powf(a) * s.powf(F::one() - a);
        }
        let total = out.sum();
        out.mapv_inplace(|q| q / total);
        Ok(())
    }
}

/// The convex mixture tempered after mixing: `q ∝ (a T0 + (1 - a) S_g)^(1/τ)`.
struct TemperedMixture {
    anchor: f64,
    temperature: f64,
}

impl MetaTeacherOperator for TemperedMixture {
    fn anchor_weight(&self) -> f64 {
        self.anchor
    }

    fn combine_into(
        &self,
        teachers: &[ArrayView1<f64>],
        students: &[ArrayView1<f64>],
        mut out: ArrayViewMut1<f64>,
    ) -> Result<()> {
        let student = students[students.len() - 1];
        let a = self.anchor;
        for ((q, &t), &s) in out.iter_mut().zip(teachers[0]).zip(student) {
            *q = (a * t + (1.0 - a) * s).powf(1.0 / self.temperature);
        }
        let total = out.sum();
        out /= total;
        Ok(())
    }
}

/// Declares an anchor weight but copies the latest student.
struct DropsAnchor;

impl MetaTeacherOperator for DropsAnchor {
    fn anchor_weight(&self) -> f64 {
        0.3
    }

    fn combine_into(
        &self,
        _teachers: &[ArrayView1<f64>],
        students: &[ArrayView1<f64>],
        mut out: ArrayViewMut1<f64>,
    ) -> Result<()> {
        out.assign(&students[students.len() - 1]);
        Ok(())
    }
}

/// Forgets to normalize: returns `a T0 + S_g`, which sums to `1 + a`.
struct Unnormalized;

impl MetaTeacherOperator for Unnormalized {
    fn anchor_weight(&self) -> f64 {
        0.3
    }

    fn combine_into(
        &self,
        teachers: &[ArrayView1<f64>],
        students: &[ArrayView1<f64>],
        mut out: ArrayViewMut1<f64>,
    ) -> Result<()> {
        out.assign(&students[students.len() - 1]);
        out.scaled_add(0.3, &teachers[0]);
        Ok(())
    }
}

/// Rejects vocabularies of more than 3 tokens.
struct SmallVocabularyOnly;

impl MetaTeacherOperator for SmallVocabularyOnly {
    fn anchor_weight(&self) -> f64 {
        0.5
    }

    fn combine_into(
        &self,
        teachers: &[ArrayView1<f64>],
        students: &[ArrayView1<f64>],
        mut out: ArrayViewMut1<f64>,
    ) -> Result<()> {
        if out.len() > 3 {
            return Err(Error::LengthMismatch {
                what: "vocabulary",
                expected: 3,
                found: out.len(),
            });
        }
        out.assign(&teachers[0]);
        out *= 0.5;
        out.scaled_add(0.5, &students[students.len() - 1]);
        Ok(())
    }
}

/// Sharpens the student towards its top token: `q ∝ S_g^k` with a huge `k`.
struct Sharpened;

impl MetaTeacherOperator for Sharpened {
    fn anchor_weight(&self) -> f64 {
        0.0
    }

    fn combine_into(
        &self,
        _teachers: &[ArrayView1<f64>],
        students: &[ArrayView1<f64>],
        mut out: ArrayViewMut1<f64>,
    ) -> Result<()> {
        let student = students[students.len() - 1];
        let top = student
            .iter()
            .fold(f64::NEG_INFINITY, |m, &s| m.max(s.ln()));
        for (q, &s) in out.iter_mut().zip(student) {
            *q = (1e5 * (s.ln() - top)).exp();
        }
        let total = out.sum();
        out /= total;
        Ok(())
    }
}

/// Anchors to the average of all base teachers: `q = a mean_k T_k + (1 - a) S_g`.
struct TeacherAverage {
    anchor: f64,
}

impl MetaTeacherOperator for TeacherAverage {
    fn anchor_weight(&self) -> f64 {
        self.anchor
    }

    fn combine_into(
        &self,
        teachers: &[ArrayView1<f64>],
        students: &[ArrayView1<f64>],
        mut out: ArrayViewMut1<f64>,
    ) -> Result<()> {
        let share = self.anchor / teachers.len() as f64;
        for teacher in teachers {
            out.scaled_add(share, teacher);
        }
        out.scaled_add(1.0 - self.anchor, &students[students.len() - 1]);
        Ok(())
    }
}

fn checker(cases: u32) -> Checker<f64> {
    Checker::new()
        .with_cases(cases)
        .expect("positive case count")
}

fn row_of(report: &Report, property: Property) -> &metadistill::axioms::PropertyRow {
    report.row(property).expect("every property has a row")
}

#[test]
fn geometric_pool_contracts_below_pointwise_anchor() -> Result<()> {
    let report = checker(32).check_family(0.3, |anchor| Ok(GeometricPool { anchor }))?;
    let anchoring = row_of(&report, Property::Anchoring);
    assert_eq!(anchoring.verdict, Verdict::Violated, "{report}");
    assert!(anchoring.measurement("smallest a*").unwrap() < 0.3);
    assert!(anchoring.counterexample.is_some());

    for property in [
        Property::ValidOutput,
        Property::Positivity,
        Property::Monotonicity,
        Property::Contraction,
        Property::FixedPoint,
        Property::NoisyContractionCorrected,
        Property::RateDependence,
    ] {
        assert_eq!(
            report.verdict(property),
            Verdict::Holds,
            "{property:?}\n{report}"
        );
    }
    let worst = row_of(&report, Property::Contraction)
        .measurement("worst ratio")
        .unwrap();
    assert!(worst <= 0.7, "{worst}");
    Ok(())
}

#[test]
fn geometric_pool_f32_contracts() -> Result<()> {
    let checker = Checker::<f32>::new().with_cases(16)?.with_properties(&[
        Property::Anchoring,
        Property::Contraction,
        Property::FixedPoint,
    ]);
    let report = checker.check(&GeometricPool { anchor: 0.3_f32 });
    assert_eq!(report.verdict(Property::Anchoring), Verdict::Violated);
    assert_eq!(report.verdict(Property::Contraction), Verdict::Holds);
    assert_eq!(report.verdict(Property::FixedPoint), Verdict::Holds);
    Ok(())
}

#[test]
fn tempered_mixture_misses_fixed_point() -> Result<()> {
    let tempered = TemperedMixture {
        anchor: 0.3,
        temperature: 2.0,
    };
    let report = checker(16)
        .with_properties(&[Property::ValidOutput, Property::FixedPoint])
        .check(&tempered);
    assert_eq!(report.verdict(Property::ValidOutput), Verdict::Holds);
    let fixed = row_of(&report, Property::FixedPoint);
    assert_eq!(fixed.verdict, Verdict::Violated);
    assert!(fixed.measurement("largest limit offset").unwrap() > 0.01);
    let counterexample = fixed.counterexample.as_ref().unwrap();
    assert!(counterexample.description.contains("limit ("));
    Ok(())
}

#[test]
fn tempered_mixture_limit_offset_matches_design() -> Result<()> {
    let tempered = TemperedMixture {
        anchor: 0.3,
        temperature: 2.0,
    };
    let teacher = Distribution::from_probs(&[0.6, 0.3, 0.1])?;
    let start = Distribution::from_probs(&[0.2, 0.5, 0.3])?;
    let limit = find_limit(
        &tempered,
        std::slice::from_ref(&teacher),
        &start,
        1e-13,
        1000,
    )?;
    assert!(limit.converged);
    assert!((limit.offset - 0.122).abs() < 5e-4, "{}", limit.offset);

    // The limit is a fixed point of the tempered recursion, not T0.
    let again = tempered.build(&[teacher], std::slice::from_ref(&limit.student))?;
    let step: f64 = again
        .as_slice()
        .iter()
        .zip(limit.student.as_slice())
        .map(|(a, b)| (a - b).abs())
        .sum();
    assert!(step < 1e-12, "{step}");
    Ok(())
}

#[test]
fn dropped_anchor_is_caught() -> Result<()> {
    let report = checker(16)
        .with_properties(&[
            Property::Anchoring,
            Property::Contraction,
            Property::FixedPoint,
        ])
        .check(&DropsAnchor);
    for property in [
        Property::Anchoring,
        Property::Contraction,
        Property::FixedPoint,
    ] {
        let row = row_of(&report, property);
        assert_eq!(row.verdict, Verdict::Violated, "{property:?}");
        assert!(row.counterexample.is_some(), "{property:?}");
    }
    let ratio = row_of(&report, Property::Contraction)
        .measurement("worst ratio")
        .unwrap();
    assert!(ratio > 0.99, "{ratio}");
    Ok(())
}

#[test]
fn unnormalized_output_violates_axiom_one() -> Result<()> {
    let report = checker(16).check(&Unnormalized);
    let row = row_of(&report, Property::ValidOutput);
    assert_eq!(row.verdict, Verdict::Violated);
    assert_eq!(row.cases, 1);
    assert!(row.worst_margin.unwrap() < 0.0);
    let largest = row.measurement("largest |sum - 1|").unwrap();
    assert!((largest - 0.3).abs() < 1e-12, "{largest}");

    let counterexample = row.counterexample.as_ref().unwrap();
    assert!(
        counterexample.description.contains("invalid meta-teacher"),
        "{}",
        counterexample.description
    );
    // Shrinking reaches the smallest vocabulary and a single student.
    assert_eq!(counterexample.history.vocab_size(), 2);
    assert_eq!(counterexample.history.students.len(), 1);
    // The other properties report the same failure instead of propagating it.
    assert_eq!(report.verdict(Property::Contraction), Verdict::Violated);
    Ok(())
}

#[test]
fn operator_error_violates_axiom_one() -> Result<()> {
    let report = checker(32)
        .with_properties(&[Property::ValidOutput])
        .check(&SmallVocabularyOnly);
    let row = row_of(&report, Property::ValidOutput);
    assert_eq!(row.verdict, Verdict::Violated);
    let counterexample = row.counterexample.as_ref().unwrap();
    assert_eq!(counterexample.history.vocab_size(), 4);
    assert!(counterexample.description.contains("length 4"));
    Ok(())
}

#[test]
fn sharp_operator_fails_continuity() -> Result<()> {
    // Near-uniform two-token inputs often tie at the top, where `S^k` moves fastest.
    let space = DistributionSpace::new(2..=2, 2.0)?;
    let report = checker(32)
        .with_space(space)
        .with_properties(&[Property::Continuity])
        .check(&Sharpened);
    let row = row_of(&report, Property::Continuity);
    assert_eq!(row.verdict, Verdict::Violated, "{report}");
    assert!(row.measurement("Lipschitz in inputs").unwrap() > 1e3);
    Ok(())
}

#[test]
fn teacher_average_converges_to_teacher_mixture() -> Result<()> {
    let report = checker(16)
        .with_teachers(2)?
        .with_properties(&[Property::ValidOutput, Property::FixedPoint])
        .check(&TeacherAverage { anchor: 0.5 });
    assert_eq!(report.verdict(Property::ValidOutput), Verdict::Holds);
    let fixed = row_of(&report, Property::FixedPoint);
    assert_eq!(fixed.verdict, Verdict::Violated);
    assert!(fixed.measurement("largest limit offset").unwrap() > 1e-3);
    assert_eq!(
        fixed
            .counterexample
            .as_ref()
            .unwrap()
            .history
            .teachers
            .len(),
        2
    );
    Ok(())
}

#[test]
fn equivalence_finds_differing_history() -> Result<()> {
    // With one student both operators agree; they differ once the history is longer.
    struct FirstStudent;

    impl MetaTeacherOperator for FirstStudent {
        fn anchor_weight(&self) -> f64 {
            0.3
        }

        fn combine_into(
            &self,
            teachers: &[ArrayView1<f64>],
            students: &[ArrayView1<f64>],
            mut out: ArrayViewMut1<f64>,
        ) -> Result<()> {
            out.assign(&teachers[0]);
            out *= 0.3;
            out.scaled_add(0.7, &students[0]);
            Ok(())
        }
    }

    let checker = checker(64).with_history_len(4)?;
    let mixture = ConvexMixture::new(0.3)?;
    let row = checker.equivalence(&mixture, &FirstStudent);
    assert_eq!(row.verdict, Verdict::Violated);
    let counterexample = row.counterexample.as_ref().unwrap();
    assert_eq!(counterexample.history.students.len(), 2);
    assert_eq!(counterexample.history.vocab_size(), 2);
    assert!(row.measurement("largest difference").unwrap() > 1e-3);

    let itself = checker.equivalence(&mixture, &ConvexMixture::new(0.3)?);
    assert_eq!(itself.verdict, Verdict::Holds);
    assert_eq!(itself.property, Property::Equivalence);
    Ok(())
}

#[test]
fn operator_failing_on_both_sides_counts_as_equal() -> Result<()> {
    let row = checker(16).equivalence(&SmallVocabularyOnly, &SmallVocabularyOnly);
    assert_eq!(row.verdict, Verdict::Holds);
    let mixed = checker(32).equivalence(&SmallVocabularyOnly, &ConvexMixture::new(0.5)?);
    assert_eq!(mixed.verdict, Verdict::Violated);
    let description = &mixed.counterexample.as_ref().unwrap().description;
    assert!(
        description.contains("only one operator failed"),
        "{description}"
    );
    Ok(())
}
