//! The checker and its settings: cases, seed, tolerance, input space and grids.

use std::marker::PhantomData;

use crate::axioms::Family;
use crate::axioms::engine::{SearchSettings, f64_of};
use crate::axioms::properties::{check_property, equivalence_row};
use crate::axioms::report::{Property, PropertyRow, Report};
use crate::axioms::strategies::DistributionSpace;
use crate::error::{Error, Result};
use crate::operator::MetaTeacherOperator;
use crate::real::Real;

/// The seed [`Checker::new`] starts from.
const DEFAULT_SEED: u64 = 0x6d65_7461_6469_7374;

/// Checks operators, on random inputs, against the properties Flouro and Chadwick claim.
///
/// Defaults: 64 cases per property, seed `0x6d65_7461_6469_7374`, tolerance
/// `√ε` of `F` (about `1.5e-8` for `f64`, `3.5e-4` for `f32`), vocabularies of 2
/// to 8 tokens with dynamic range `1e3` ([`DistributionSpace::default`]), one
/// base teacher, histories of up to 3 students, at most 300 generations per
/// run, the anchor grid `0.05, 0.1, 0.2, …, 0.9, 1`, largest accepted
/// sensitivity `1e3` and at most 256 shrinking steps.
///
/// The tolerance is the relative slack every inequality gets
/// (`lhs <= rhs + tolerance · max(1, |rhs|)`), the largest accepted fixed-point
/// offset in nats, and the total-variation step at which a run counts as
/// converged. Axiom 1 uses the crate's own sum tolerance,
/// [`default_sum_tolerance`](crate::default_sum_tolerance), because that is
/// what [`MetaTeacherOperator::build`] accepts.
///
/// # Examples
///
/// ```
/// use metadistill::ConvexMixture;
/// use metadistill::axioms::{Checker, Property, Verdict};
///
/// let checker = Checker::<f64>::new()
///     .with_cases(32)?
///     .with_tolerance(1e-9)?
///     .with_properties(&[Property::Contraction]);
/// let report = checker.check(&ConvexMixture::new(0.3)?);
/// let row = report.row(Property::Contraction).unwrap();
/// assert_eq!(row.verdict, Verdict::Holds);
/// assert!(row.measurement("worst ratio").unwrap() <= 0.7);
/// # Ok::<(), metadistill::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Checker<F: Real = f64> {
    pub(crate) cases: u32,
    pub(crate) seed: u64,
    pub(crate) tolerance: f64,
    pub(crate) space: DistributionSpace,
    pub(crate) teachers: usize,
    pub(crate) history_len: usize,
    pub(crate) generations: usize,
    pub(crate) anchor_grid: Vec<f64>,
    pub(crate) max_sensitivity: f64,
    pub(crate) shrink_iterations: u32,
    pub(crate) properties: Vec<Property>,
    float: PhantomData<F>,
}

impl<F: Real> Default for Checker<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: Real> Checker<F> {
    /// Builds a checker with the default settings.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::axioms::Checker;
    ///
    /// let f64_checker = Checker::<f64>::new();
    /// let f32_checker = Checker::<f32>::new();
    /// # let _ = (f64_checker, f32_checker);
    /// ```
    pub fn new() -> Self {
        Checker {
            cases: 64,
            seed: DEFAULT_SEED,
            tolerance: f64_of(F::epsilon().sqrt()),
            space: DistributionSpace::default(),
            teachers: 1,
            history_len: 3,
            generations: 300,
            anchor_grid: vec![0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
            max_sensitivity: 1e3,
            shrink_iterations: 256,
            properties: Property::ALL.to_vec(),
            float: PhantomData,
        }
    }

    /// Sets the number of random cases per property.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] if `cases` is 0.
    pub fn with_cases(mut self, cases: u32) -> Result<Self> {
        if cases == 0 {
            return Err(Error::InvalidParameter {
                name: "number of cases",
                value: 0.0,
                requirement: "at least 1",
            });
        }
        self.cases = cases;
        Ok(self)
    }

    /// Sets the seed; the same seed and settings give the same report.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::ConvexMixture;
    /// use metadistill::axioms::Checker;
    ///
    /// let checker = Checker::<f64>::new().with_cases(8)?.with_seed(11);
    /// let mixture = ConvexMixture::new(0.3)?;
    /// assert_eq!(checker.check(&mixture), checker.check(&mixture));
    /// # Ok::<(), metadistill::Error>(())
    /// ```
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the tolerance (see the type's documentation for where it applies).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] if `tolerance` is not finite and positive.
    pub fn with_tolerance(mut self, tolerance: f64) -> Result<Self> {
        if !(tolerance.is_finite() && tolerance > 0.0) {
            return Err(Error::InvalidParameter {
                name: "checker tolerance",
                value: tolerance,
                requirement: "finite and positive",
            });
        }
        self.tolerance = tolerance;
        Ok(self)
    }

    /// Sets the space the random teachers and students are drawn from.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::axioms::{Checker, DistributionSpace};
    ///
    /// // Vocabularies of 2 to 16 tokens, probabilities spanning six decades, some zeros.
    /// let space = DistributionSpace::new(2..=16, 1e6)?.with_zeros(0.1)?;
    /// let checker = Checker::<f64>::new().with_space(space);
    /// # let _ = checker;
    /// # Ok::<(), metadistill::Error>(())
    /// ```
    pub fn with_space(mut self, space: DistributionSpace) -> Self {
        self.space = space;
        self
    }

    /// Sets how many base teachers each input has; the first is the anchor `T0`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] if `teachers` is 0.
    pub fn with_teachers(mut self, teachers: usize) -> Result<Self> {
        self.teachers = positive(teachers, "number of base teachers")?;
        Ok(self)
    }

    /// Sets the longest student history in the random inputs of Axioms 1-4.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] if `len` is 0.
    pub fn with_history_len(mut self, len: usize) -> Result<Self> {
        self.history_len = positive(len, "history length")?;
        Ok(self)
    }

    /// Sets the largest number of generations of one run of the recursion.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] if `generations` is 0.
    pub fn with_generations(mut self, generations: usize) -> Result<Self> {
        self.generations = positive(generations, "number of generations")?;
        Ok(self)
    }

    /// Sets the anchor weights Axiom 5 and the rate check compare.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidParameter`] if the grid has fewer than 2 entries.
    /// - [`Error::InvalidAnchorGridEntry`] for an entry outside `[0, 1]` or NaN.
    /// - [`Error::UnsortedAnchorGrid`] unless the entries strictly increase.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::{Error, axioms::Checker};
    ///
    /// assert!(Checker::<f64>::new().with_anchor_grid(&[0.1, 0.5, 0.9]).is_ok());
    /// let unsorted = Checker::<f64>::new().with_anchor_grid(&[0.5, 0.1]);
    /// assert!(matches!(unsorted, Err(Error::UnsortedAnchorGrid { index: 1, .. })));
    /// ```
    pub fn with_anchor_grid(mut self, grid: &[f64]) -> Result<Self> {
        if grid.len() < 2 {
            return Err(Error::InvalidParameter {
                name: "number of anchor grid entries",
                value: grid.len() as f64,
                requirement: "at least 2, because the rate check compares two anchor weights; \
                              pass two or more increasing weights in [0, 1]",
            });
        }
        let mut previous = None;
        for (index, &value) in grid.iter().enumerate() {
            if !(0.0..=1.0).contains(&value) {
                return Err(Error::InvalidAnchorGridEntry { index, value });
            }
            if let Some(previous) = previous.filter(|&previous| value <= previous) {
                return Err(Error::UnsortedAnchorGrid {
                    index,
                    value,
                    previous,
                });
            }
            previous = Some(value);
        }
        self.anchor_grid = grid.to_vec();
        Ok(self)
    }

    /// Sets the largest accepted local Lipschitz constant (Axiom 4) and limit sensitivity.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] if `bound` is not finite and positive.
    pub fn with_max_sensitivity(mut self, bound: f64) -> Result<Self> {
        if !(bound.is_finite() && bound > 0.0) {
            return Err(Error::InvalidParameter {
                name: "maximum sensitivity",
                value: bound,
                requirement: "finite and positive",
            });
        }
        self.max_sensitivity = bound;
        Ok(self)
    }

    /// Sets the most shrinking steps spent on one counterexample.
    pub fn with_shrink_iterations(mut self, iterations: u32) -> Self {
        self.shrink_iterations = iterations;
        self
    }

    /// Restricts the report to `properties`, in the order given.
    pub fn with_properties(mut self, properties: &[Property]) -> Self {
        self.properties = properties
            .iter()
            .copied()
            .filter(|&p| p != Property::Equivalence)
            .collect();
        self
    }

    /// Checks one operator; the properties that vary `a` are reported as not applicable.
    ///
    /// Errors of the operator never escape: an operator that fails or returns
    /// an invalid meta-teacher on some input violates the property being
    /// checked, and the error message is part of the counterexample.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::ConvexMixture;
    /// use metadistill::axioms::{Checker, Property, Verdict};
    ///
    /// let report = Checker::<f64>::new().with_cases(16)?.check(&ConvexMixture::new(0.3)?);
    /// assert_eq!(report.verdict(Property::FixedPoint), Verdict::Holds);
    /// // Axiom 5 varies a, which needs `check_family`.
    /// assert_eq!(report.verdict(Property::Monotonicity), Verdict::NotApplicable);
    /// # Ok::<(), metadistill::Error>(())
    /// ```
    pub fn check<O: MetaTeacherOperator<F> + ?Sized>(&self, operator: &O) -> Report<F> {
        self.report(operator, None)
    }

    /// Checks the operator `make(anchor)` and, through `make`, the properties that vary `a`.
    ///
    /// `make` builds the operator for any anchor weight; grid values where it
    /// returns an error (such as `a = 0` for [`ConvexMixture::new`](crate::ConvexMixture::new))
    /// are skipped.
    ///
    /// # Errors
    ///
    /// Whatever `make(anchor)` returns.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::ConvexMixture;
    /// use metadistill::axioms::{Checker, Property, Verdict};
    ///
    /// let checker = Checker::<f64>::new()
    ///     .with_cases(16)?
    ///     .with_properties(&[Property::Monotonicity, Property::RateDependence]);
    /// let report = checker.check_family(0.3, ConvexMixture::new)?;
    /// assert_eq!(report.verdict(Property::Monotonicity), Verdict::Holds);
    /// assert_eq!(report.verdict(Property::RateDependence), Verdict::Holds);
    /// # Ok::<(), metadistill::Error>(())
    /// ```
    pub fn check_family<O, M>(&self, anchor: F, make: M) -> Result<Report<F>>
    where
        O: MetaTeacherOperator<F>,
        M: Fn(F) -> Result<O>,
    {
        let operator = make(anchor)?;
        let family =
            |a: F| -> Result<Box<dyn MetaTeacherOperator<F> + '_>> { Ok(Box::new(make(a)?)) };
        Ok(self.report(&operator, Some((anchor, &family))))
    }

    /// Searches for an input on which `first` and `second` differ by more than the
    /// tolerance in the largest absolute difference of a probability.
    ///
    /// ```text
    /// differ(x) = max_i |G1(x)_i - G2(x)_i| > tolerance
    /// ```
    ///
    /// An input on which exactly one operator fails counts as a difference; one on
    /// which both fail does not. The row's counterexample is the shrunk input.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::ConvexMixture;
    /// use metadistill::axioms::{Checker, Verdict};
    ///
    /// let checker = Checker::<f64>::new().with_cases(16)?;
    /// let same = checker.equivalence(&ConvexMixture::new(0.3)?, &ConvexMixture::new(0.3)?);
    /// assert_eq!(same.verdict, Verdict::Holds);
    /// let other = checker.equivalence(&ConvexMixture::new(0.3)?, &ConvexMixture::new(0.4)?);
    /// assert_eq!(other.verdict, Verdict::Violated);
    /// assert!(other.counterexample.is_some());
    /// # Ok::<(), metadistill::Error>(())
    /// ```
    pub fn equivalence<A, B>(&self, first: &A, second: &B) -> PropertyRow<F>
    where
        A: MetaTeacherOperator<F> + ?Sized,
        B: MetaTeacherOperator<F> + ?Sized,
    {
        equivalence_row(self, first, second)
    }

    /// Builds the report for `operator`, with `family` for the properties that vary `a`.
    ///
    /// `family` pairs the constructor with the anchor weight it built `operator` from.
    fn report<O: MetaTeacherOperator<F> + ?Sized>(
        &self,
        operator: &O,
        family: Option<(F, &Family<'_, F>)>,
    ) -> Report<F> {
        let rows = self
            .properties
            .iter()
            .map(|&property| check_property(self, property, operator, family))
            .collect();
        Report {
            operator: operator.name(),
            anchor: f64_of(operator.anchor_weight()),
            seed: self.seed,
            rows,
        }
    }

    /// Returns the settings of the proptest runner.
    pub(crate) fn search_settings(&self) -> SearchSettings {
        SearchSettings {
            cases: self.cases,
            seed: self.seed,
            shrink_iterations: self.shrink_iterations,
        }
    }

    /// Returns whether `lhs <= rhs` up to the relative tolerance.
    pub(crate) fn within(&self, lhs: f64, rhs: f64) -> bool {
        lhs <= rhs + self.tolerance * rhs.abs().max(1.0)
    }
}

/// Checks that a count is at least 1.
fn positive(value: usize, name: &'static str) -> Result<usize> {
    if value == 0 {
        Err(Error::InvalidParameter {
            name,
            value: 0.0,
            requirement: "at least 1",
        })
    } else {
        Ok(value)
    }
}
