//! Equivalence of two operators up to a tolerance.

use std::cell::Cell;

use super::{counterexample, raise};
use crate::axioms::engine::{Outcome, f64_of, row_from_search, search};
use crate::axioms::report::{Measurement, Property, PropertyRow};
use crate::axioms::settings::Checker;
use crate::axioms::strategies::histories;
use crate::operator::MetaTeacherOperator;
use crate::real::Real;

/// Searches for an input where `max_i |G1(x)_i - G2(x)_i|` exceeds the tolerance.
pub(crate) fn equivalence_row<F, A, B>(
    checker: &Checker<F>,
    first: &A,
    second: &B,
) -> PropertyRow<F>
where
    F: Real,
    A: MetaTeacherOperator<F> + ?Sized,
    B: MetaTeacherOperator<F> + ?Sized,
{
    let strategy = histories::<F>(&checker.space, checker.teachers, 1..=checker.history_len);
    let largest = Cell::new(0.0);
    let found = search(
        checker.search_settings(),
        Property::Equivalence,
        &strategy,
        |history| {
            let left = first.build(&history.teachers, &history.students);
            let right = second.build(&history.teachers, &history.students);
            match (left, right) {
                (Ok(left), Ok(right)) => {
                    let (index, difference) = left
                        .as_slice()
                        .iter()
                        .zip(right.as_slice())
                        .map(|(&x, &y)| f64_of((x - y).abs()))
                        .enumerate()
                        .fold(
                            (0, 0.0),
                            |best, (i, d)| if d > best.1 { (i, d) } else { best },
                        );
                    raise(&largest, difference);
                    Outcome::judge(
                        checker.tolerance - difference,
                        difference <= checker.tolerance,
                        || {
                            format!(
                                "{} and {} differ by {difference:.6e} at token {index}",
                                first.name(),
                                second.name()
                            )
                        },
                    )
                }
                (Err(_), Err(_)) => Outcome::pass(checker.tolerance),
                (Err(error), Ok(_)) | (Ok(_), Err(error)) => Outcome::fail(
                    f64::NEG_INFINITY,
                    format!("only one operator failed: {error}"),
                ),
            }
        },
    );
    let measurements = vec![Measurement {
        name: "largest difference",
        value: largest.get(),
    }];
    row_from_search(Property::Equivalence, found, measurements, counterexample)
}
