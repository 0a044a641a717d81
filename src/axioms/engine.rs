//! The search engine behind every property: a seeded proptest runner, and the recursion
//! helpers the properties share.

use std::cell::Cell;
use std::fmt::Debug;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

use crate::axioms::report::{Counterexample, Measurement, Property, PropertyRow, Verdict};
use crate::distribution::Distribution;
use crate::divergence::{kl, total_variation};
use crate::error::{Error, Result};
use crate::operator::MetaTeacherOperator;
use crate::real::Real;

/// The result of one random case: the slack of the property's inequality, and a
/// description of the failure when the case violates it.
pub(crate) struct Outcome {
    pub margin: f64,
    pub failure: Option<String>,
}

impl Outcome {
    /// Builds the outcome of a case that satisfies the property with slack `margin`.
    pub fn pass(margin: f64) -> Self {
        Outcome {
            margin,
            failure: None,
        }
    }

    /// Builds the outcome of a case that violates the property.
    pub fn fail(margin: f64, description: String) -> Self {
        Outcome {
            margin,
            failure: Some(description),
        }
    }

    /// Builds a passing outcome when `holds`, else a failing one described by `describe`.
    pub fn judge(margin: f64, holds: bool, describe: impl FnOnce() -> String) -> Self {
        if holds {
            Outcome::pass(margin)
        } else {
            Outcome::fail(margin, describe())
        }
    }
}

/// Result of a search: cases tried, worst margin and the shrunk failure.
pub(crate) struct Search<V> {
    pub cases: u32,
    pub worst_margin: f64,
    pub failure: Option<(V, String)>,
    /// Reason proptest gave up without a verdict, such as too many rejected cases.
    pub aborted: Option<String>,
}

/// Search settings shared by every property.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SearchSettings {
    pub cases: u32,
    pub seed: u64,
    pub shrink_iterations: u32,
}

/// Runs `test` on random values of `strategy` until a case fails, then shrinks it.
///
/// Each property gets its own random stream derived from the seed and the
/// property, so adding a property leaves the others' cases unchanged.
pub(crate) fn search<S, T>(
    settings: SearchSettings,
    property: Property,
    strategy: &S,
    test: T,
) -> Search<S::Value>
where
    S: Strategy,
    S::Value: Clone + Debug,
    T: Fn(&S::Value) -> Outcome,
{
    // NOTE: `Config::default()` still reads the PROPTEST_* environment variables for
    // the settings not overridden here (such as PROPTEST_VERBOSE).
    let config = Config {
        cases: settings.cases,
        // The shrink budget is enforced in the test closure below, because proptest
        // prints a warning to stderr whenever its own limit is reached.
        max_shrink_iters: u32::MAX - 1,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        ..Config::default()
    };
    let mut seed = [0_u8; 32];
    seed[..8].copy_from_slice(&settings.seed.to_le_bytes());
    seed[8] = property as u8;
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));

    let tried = Cell::new(0_u32);
    let failed = Cell::new(false);
    let worst = Cell::new(f64::INFINITY);
    let shrink_steps = Cell::new(0_u32);
    let result = runner.run(strategy, |value| {
        if failed.get() {
            // Past the budget, every candidate passes, so the shrinker keeps the
            // smallest failing case found so far and stops.
            shrink_steps.set(shrink_steps.get().saturating_add(1));
            if shrink_steps.get() > settings.shrink_iterations {
                return Ok(());
            }
        } else {
            tried.set(tried.get() + 1);
        }
        let outcome = test(&value);
        worst.set(worst.get().min(outcome.margin));
        match outcome.failure {
            None => Ok(()),
            Some(description) => {
                failed.set(true);
                Err(TestCaseError::fail(description))
            }
        }
    });

    let (failure, aborted) = match result {
        Ok(()) => (None, None),
        Err(TestError::Fail(reason, value)) => (Some((value, reason.message().to_string())), None),
        Err(TestError::Abort(reason)) => (None, Some(reason.message().to_string())),
    };
    Search {
        cases: tried.get(),
        worst_margin: worst.get(),
        failure,
        aborted,
    }
}

/// Turns a search into a report row.
pub(crate) fn row_from_search<F: Real, V>(
    property: Property,
    search: Search<V>,
    measurements: Vec<Measurement>,
    to_counterexample: impl FnOnce(V, String) -> Counterexample<F>,
) -> PropertyRow<F> {
    // The margin stays +inf only when no case measured anything.
    let worst_margin = (search.worst_margin < f64::INFINITY).then_some(search.worst_margin);
    if let Some(reason) = search.aborted {
        let mut row = PropertyRow::not_applicable(property, format!("search aborted: {reason}"));
        row.cases = search.cases;
        return row;
    }
    let (verdict, counterexample) = match search.failure {
        None => (Verdict::Holds, None),
        Some((value, description)) => (
            Verdict::Violated,
            Some(to_counterexample(value, description)),
        ),
    };
    PropertyRow {
        property,
        verdict,
        cases: search.cases,
        worst_margin,
        measurements,
        note: String::new(),
        counterexample,
    }
}

/// Converts a crate float to `f64` for reports.
pub(crate) fn f64_of<F: Real>(value: F) -> f64 {
    value.to_f64().unwrap_or(f64::NAN)
}

/// Converts an `f64` to the crate float.
pub(crate) fn real<F: Real>(value: f64) -> F {
    F::from(value).unwrap_or_else(F::nan)
}

/// When an iteration of the recursion stops.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stop<F> {
    /// After a fixed number of generations.
    Never,
    /// Once `D(S_g)` falls to this floor or below.
    Floor(F),
    /// Once the total variation between consecutive students is at most this.
    Converged(F),
}

/// Student model of a run: exact, or off the meta-teacher by a fixed mix.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Fit<'a, F: Real> {
    /// Exact realizability, `S_{g+1} = q_g`.
    Exact,
    /// `S_{g+1} = (1 - η) q_g + η r`, with `r` cycling through the given directions.
    Off(&'a [Distribution<F>], F),
}

/// A run of the recursion from one initial student.
pub(crate) struct Run<F: Real> {
    /// `D(S_g) = KL(T0 ‖ S_g)` for every generation run.
    pub divergences: Vec<F>,
    /// The last student.
    pub last: Distribution<F>,
    /// Total variation between the last two students (`+inf` before the first step).
    pub last_step: F,
    /// Whether the stop rule fired before the generation limit.
    pub stopped: bool,
}

/// Returns `(1 - η) q + η r`, a valid distribution when `q` and `r` are.
pub(crate) fn blend<F: Real>(
    q: &Distribution<F>,
    r: &Distribution<F>,
    eta: F,
) -> Result<Distribution<F>> {
    let mixed: Vec<F> = q
        .as_slice()
        .iter()
        .zip(r.as_slice())
        .map(|(&qi, &ri)| (F::one() - eta) * qi + eta * ri)
        .collect();
    Distribution::from_weights(&mixed)
}

/// Runs the recursion `S_{g+1} = fit(G(T0..Tk; S_0..S_g))` for at most `generations` steps.
///
/// # Errors
///
/// Any error of the operator or of the divergences (vocabulary mismatches).
pub(crate) fn iterate<F: Real, O: MetaTeacherOperator<F> + ?Sized>(
    operator: &O,
    teachers: &[Distribution<F>],
    start: &Distribution<F>,
    generations: usize,
    fit: Fit<'_, F>,
    stop: Stop<F>,
) -> Result<Run<F>> {
    let anchor = teachers.first().ok_or(Error::Empty {
        what: "base teachers",
    })?;
    let mut students = vec![start.clone()];
    let mut divergences = vec![kl(anchor, start)?];
    let mut last_step = F::infinity();
    let mut stopped = false;

    for generation in 0..generations {
        let q = operator.build(teachers, &students)?;
        let next = match fit {
            Fit::Exact => q,
            Fit::Off(directions, eta) => {
                let direction = generation
                    .checked_rem(directions.len())
                    .and_then(|index| directions.get(index))
                    .ok_or(Error::Empty {
                        what: "off-target fit directions",
                    })?;
                blend(&q, direction, eta)?
            }
        };
        let previous = students.last().unwrap_or(start);
        last_step = total_variation(previous, &next)?;
        let divergence = kl(anchor, &next)?;
        divergences.push(divergence);
        students.push(next);

        stopped = match stop {
            Stop::Never => false,
            Stop::Floor(floor) => divergence <= floor,
            Stop::Converged(tolerance) => last_step <= tolerance,
        };
        if stopped {
            break;
        }
    }
    let last = students.pop().unwrap_or_else(|| start.clone());
    Ok(Run {
        divergences,
        last,
        last_step,
        stopped,
    })
}
