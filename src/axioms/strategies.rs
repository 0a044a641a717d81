//! proptest strategies for random distributions, histories and weights.
//!
//! The checker draws every input from these strategies, and they are public so
//! that you can property-test your own code with the same inputs. Each random
//! distribution comes from integer token weights drawn log-uniformly from
//! `[1, R]`, where `R` is the dynamic range, so the ratio of its largest to its
//! smallest non-zero probability is at most `R`. Shrinking moves every weight
//! towards 1 (the uniform distribution), turns zero tokens back on and shortens
//! the vocabulary, so a failing case shrinks to a small vocabulary with small
//! integer weights.

use std::fmt;
use std::ops::RangeInclusive;

use proptest::collection::vec;
use proptest::prelude::*;

use crate::distribution::Distribution;
use crate::error::{Error, Result};
use crate::real::Real;

/// The space random distributions are drawn from: vocabulary sizes, dynamic range and zeros.
///
/// # Examples
///
/// ```
/// use metadistill::axioms::DistributionSpace;
///
/// let space = DistributionSpace::new(2..=6, 1e3)?.with_zeros(0.2)?;
/// assert_eq!(space.vocab_sizes(), 2..=6);
/// assert_eq!(space.dynamic_range(), 1e3);
/// # Ok::<(), metadistill::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct DistributionSpace {
    min_vocab: usize,
    max_vocab: usize,
    dynamic_range: f64,
    zero_probability: f64,
}

impl Default for DistributionSpace {
    /// Vocabularies of 2 to 8 tokens, dynamic range `1e3`, no zero probabilities.
    fn default() -> Self {
        DistributionSpace {
            min_vocab: 2,
            max_vocab: 8,
            dynamic_range: 1e3,
            zero_probability: 0.0,
        }
    }
}

impl DistributionSpace {
    /// Builds a space of strictly positive distributions over `vocab_sizes` tokens.
    ///
    /// ```text
    /// w_i = round(exp(u_i)),   u_i ~ Uniform[0, ln R],   p = w / Σ w
    /// ```
    ///
    /// so `max_i p_i / min_i p_i <= R`.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidVocabularyRange`] if the range is empty or starts at 0.
    /// - [`Error::InvalidParameter`] if `dynamic_range` is below 1 or not finite.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::{Error, axioms::DistributionSpace};
    ///
    /// assert!(DistributionSpace::new(3..=3, 10.0).is_ok());
    /// let empty = DistributionSpace::new(0..=4, 10.0);
    /// assert!(matches!(empty, Err(Error::InvalidVocabularyRange { .. })));
    /// ```
    pub fn new(vocab_sizes: RangeInclusive<usize>, dynamic_range: f64) -> Result<Self> {
        let (min, max) = vocab_sizes.into_inner();
        if min == 0 || min > max {
            return Err(Error::InvalidVocabularyRange { min, max });
        }
        if !(dynamic_range.is_finite() && dynamic_range >= 1.0) {
            return Err(Error::InvalidParameter {
                name: "dynamic range",
                value: dynamic_range,
                requirement: "finite and at least 1",
            });
        }
        Ok(DistributionSpace {
            min_vocab: min,
            max_vocab: max,
            dynamic_range,
            zero_probability: 0.0,
        })
    }

    /// Lets each token have probability exactly 0 with chance `probability`.
    ///
    /// At least one token of every distribution stays positive.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] if `probability` is not in `[0, 1)`.
    pub fn with_zeros(mut self, probability: f64) -> Result<Self> {
        if !(0.0..1.0).contains(&probability) {
            return Err(Error::InvalidParameter {
                name: "zero-token probability",
                value: probability,
                requirement: "in [0, 1)",
            });
        }
        self.zero_probability = probability;
        Ok(self)
    }

    /// Returns the range of vocabulary sizes.
    pub fn vocab_sizes(&self) -> RangeInclusive<usize> {
        self.min_vocab..=self.max_vocab
    }

    /// Returns the largest ratio between two non-zero probabilities of one distribution.
    pub fn dynamic_range(&self) -> f64 {
        self.dynamic_range
    }

    /// Returns the chance that a token gets probability exactly 0.
    pub fn zero_probability(&self) -> f64 {
        self.zero_probability
    }

    /// Returns the same space without zero probabilities.
    pub(crate) fn strictly_positive(&self) -> Self {
        DistributionSpace {
            zero_probability: 0.0,
            ..self.clone()
        }
    }
}

/// Base teachers and a student history over one vocabulary: one input of an operator.
#[derive(Debug, Clone, PartialEq)]
pub struct History<F: Real = f64> {
    /// The base teachers `T0..Tk`; the first is the anchor `T0`.
    pub teachers: Vec<Distribution<F>>,
    /// The students `S_0..S_g`, oldest first.
    pub students: Vec<Distribution<F>>,
}

impl<F: Real> History<F> {
    /// Returns the vocabulary size (0 for an empty history).
    pub fn vocab_size(&self) -> usize {
        self.teachers
            .first()
            .or(self.students.first())
            .map_or(0, Distribution::len)
    }
}

impl<F: Real> fmt::Display for History<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, teacher) in self.teachers.iter().enumerate() {
            writeln!(f, "    T{index} = {}", format_probs(teacher))?;
        }
        for (index, student) in self.students.iter().enumerate() {
            writeln!(f, "    S{index} = {}", format_probs(student))?;
        }
        Ok(())
    }
}

/// Formats a distribution as `(p_0, p_1, …)` with six significant digits.
pub(crate) fn format_probs<F: Real>(distribution: &Distribution<F>) -> String {
    let entries: Vec<String> = distribution
        .as_slice()
        .iter()
        .map(|p| format!("{:.6}", p.to_f64().unwrap_or(f64::NAN)))
        .collect();
    format!("({})", entries.join(", "))
}

/// Draws distributions over exactly `vocab_size` tokens from `space`.
///
/// `space`'s vocabulary range is ignored; its dynamic range and zero chance apply.
///
/// # Examples
///
/// ```
/// use metadistill::axioms::{DistributionSpace, distribution};
/// use proptest::strategy::{Strategy, ValueTree};
/// use proptest::test_runner::TestRunner;
///
/// let space = DistributionSpace::new(2..=8, 100.0)?;
/// let mut runner = TestRunner::deterministic();
/// let p = distribution::<f64>(&space, 4).new_tree(&mut runner).unwrap().current();
/// assert_eq!(p.len(), 4);
/// let (lo, hi) = p.as_slice().iter().fold((1.0_f64, 0.0_f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
/// assert!(hi / lo <= 100.0);
/// # Ok::<(), metadistill::Error>(())
/// ```
pub fn distribution<F: Real>(
    space: &DistributionSpace,
    vocab_size: usize,
) -> BoxedStrategy<Distribution<F>> {
    let log_range = space.dynamic_range.ln();
    let zero_chance = space.zero_probability;
    let token = (0.0..=log_range, prop::bool::weighted(zero_chance));
    vec(token, vocab_size.max(1))
        .prop_filter_map("token weights were not finite", |tokens| {
            let mut weights: Vec<F> = tokens
                .iter()
                .map(|&(log_weight, zero)| {
                    if zero {
                        F::zero()
                    } else {
                        F::from(f64::exp(log_weight).round()).unwrap_or_else(F::one)
                    }
                })
                .collect();
            if weights.iter().all(|w| w.is_zero()) {
                // The vector has at least one token, so the first always exists.
                if let Some(first) = weights.first_mut() {
                    *first = F::one();
                }
            }
            Distribution::from_weights(&weights).ok()
        })
        .boxed()
}

/// Draws distributions whose vocabulary size is drawn from `space` too.
///
/// # Examples
///
/// ```
/// use metadistill::axioms::{DistributionSpace, distributions};
/// use proptest::strategy::{Strategy, ValueTree};
/// use proptest::test_runner::TestRunner;
///
/// let space = DistributionSpace::new(2..=5, 10.0)?;
/// let mut runner = TestRunner::deterministic();
/// let p = distributions::<f64>(&space).new_tree(&mut runner).unwrap().current();
/// assert!((2..=5).contains(&p.len()));
/// # Ok::<(), metadistill::Error>(())
/// ```
pub fn distributions<F: Real>(space: &DistributionSpace) -> BoxedStrategy<Distribution<F>> {
    let space = space.clone();
    space
        .vocab_sizes()
        .prop_flat_map(move |size| distribution::<F>(&space, size))
        .boxed()
}

/// Draws `count` distributions over one common vocabulary, whose size is drawn from `space`.
///
/// # Examples
///
/// ```
/// use metadistill::axioms::{DistributionSpace, distribution_lists};
/// use proptest::strategy::{Strategy, ValueTree};
/// use proptest::test_runner::TestRunner;
///
/// let mut runner = TestRunner::deterministic();
/// let list = distribution_lists::<f64>(&DistributionSpace::default(), 3)
///     .new_tree(&mut runner)
///     .unwrap()
///     .current();
/// assert_eq!(list.len(), 3);
/// assert!(list.iter().all(|p| p.len() == list[0].len()));
/// ```
pub fn distribution_lists<F: Real>(
    space: &DistributionSpace,
    count: usize,
) -> BoxedStrategy<Vec<Distribution<F>>> {
    let space = space.clone();
    space
        .vocab_sizes()
        .prop_flat_map(move |size| vec(distribution::<F>(&space, size), count))
        .boxed()
}

/// Draws histories: `teachers` base teachers and a student history whose length is drawn
/// from `students`, all over one vocabulary drawn from `space`.
///
/// Shrinking shortens the history and the vocabulary.
///
/// # Examples
///
/// ```
/// use metadistill::axioms::{DistributionSpace, histories};
/// use metadistill::{ConvexMixture, MetaTeacherOperator};
/// use proptest::test_runner::TestRunner;
///
/// let mixture = ConvexMixture::new(0.5)?;
/// let mut runner = TestRunner::deterministic();
/// let result = runner.run(&histories::<f64>(&DistributionSpace::default(), 1, 1..=3), |h| {
///     assert!(mixture.build(&h.teachers, &h.students).is_ok());
///     Ok(())
/// });
/// assert!(result.is_ok());
/// # Ok::<(), metadistill::Error>(())
/// ```
pub fn histories<F: Real>(
    space: &DistributionSpace,
    teachers: usize,
    students: RangeInclusive<usize>,
) -> BoxedStrategy<History<F>> {
    let space = space.clone();
    (space.vocab_sizes(), students)
        .prop_flat_map(move |(size, n_students)| {
            (
                vec(distribution::<F>(&space, size), teachers),
                vec(distribution::<F>(&space, size), n_students),
            )
        })
        .prop_map(|(teachers, students)| History { teachers, students })
        .boxed()
}

/// Draws `len` non-negative weights that sum to 1, such as teacher or input weights.
///
/// Each weight starts as an integer in `[1, 100]` before normalization, so no
/// weight is below `1/(100 len)`; shrinking moves them towards equal weights.
///
/// # Examples
///
/// ```
/// use metadistill::axioms::weights;
/// use proptest::strategy::{Strategy, ValueTree};
/// use proptest::test_runner::TestRunner;
///
/// let mut runner = TestRunner::deterministic();
/// let w = weights::<f64>(4).new_tree(&mut runner).unwrap().current();
/// assert_eq!(w.len(), 4);
/// assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
/// ```
pub fn weights<F: Real>(len: usize) -> BoxedStrategy<Vec<F>> {
    vec(1_u32..=100, len.max(1))
        .prop_map(|raw| {
            let total: u32 = raw.iter().sum();
            raw.iter()
                .map(|&w| F::from(f64::from(w) / f64::from(total)).unwrap_or_else(F::zero))
                .collect()
        })
        .boxed()
}

/// Draws anchor weights uniformly from `range`; shrinking moves them towards its start.
///
/// # Examples
///
/// ```
/// use metadistill::axioms::anchor_weights;
/// use proptest::strategy::{Strategy, ValueTree};
/// use proptest::test_runner::TestRunner;
///
/// let mut runner = TestRunner::deterministic();
/// let a: f64 = anchor_weights(0.1..=0.9).new_tree(&mut runner).unwrap().current();
/// assert!((0.1..=0.9).contains(&a));
/// ```
pub fn anchor_weights<F: Real>(range: RangeInclusive<f64>) -> BoxedStrategy<F> {
    range
        .prop_map(|a| F::from(a).unwrap_or_else(F::zero))
        .boxed()
}
