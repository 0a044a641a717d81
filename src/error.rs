//! The crate-wide error type.

use thiserror::Error;

/// The result type of every fallible function in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when building or combining distributions.
///
/// Every variant carries the offending value, index or shape, and its message
/// names the broken constraint and what would fix it. Values are stored as
/// `f64` whatever the float type of the caller, so that the error type does not
/// depend on it.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum Error {
    /// A distribution, logit vector or weight vector with no entries.
    #[error("{what} is empty: pass at least one entry")]
    Empty {
        /// What was empty, such as "probability vector" or "student history".
        what: &'static str,
    },

    /// A probability that is NaN or infinite.
    #[error("probability at index {index} is {value}: every probability must be finite")]
    NonFiniteProbability {
        /// Position of the entry in the vector.
        index: usize,
        /// The offending value.
        value: f64,
    },

    /// A probability below zero.
    #[error("probability at index {index} is {value}: probabilities must be non-negative")]
    NegativeProbability {
        /// Position of the entry in the vector.
        index: usize,
        /// The offending value.
        value: f64,
    },

    /// Probabilities whose sum is further from 1 than the tolerance allows.
    #[error(
        "probabilities sum to {sum}, which is off 1 by more than the tolerance {tolerance}: \
         normalize them first, or build the distribution from weights"
    )]
    NotNormalized {
        /// The sum of the entries, computed with compensated summation.
        sum: f64,
        /// The largest accepted distance of the sum from 1.
        tolerance: f64,
    },

    /// A sum tolerance that is negative, NaN or infinite.
    #[error("sum tolerance is {value}: pass a finite, non-negative tolerance")]
    InvalidTolerance {
        /// The offending value.
        value: f64,
    },

    /// A weight that is negative, NaN or infinite.
    #[error("{what} at index {index} is {value}: weights must be finite and non-negative")]
    InvalidWeight {
        /// Which weights, such as "token weight" or "input weight".
        what: &'static str,
        /// Position of the weight.
        index: usize,
        /// The offending value.
        value: f64,
    },

    /// Weights that are all zero, so they cannot be normalized.
    #[error("all {count} {what}s are zero: at least one weight must be positive")]
    AllZeroWeights {
        /// Which weights, such as "token weight" or "input weight".
        what: &'static str,
        /// How many weights there were.
        count: usize,
    },

    /// A logit that is NaN or `+inf`; `-inf` is accepted and masks the token.
    #[error("logit at index {index} is {value}: logits must be finite or -inf (a masked token)")]
    InvalidLogit {
        /// Position of the logit.
        index: usize,
        /// The offending value.
        value: f64,
    },

    /// Logits that are all `-inf`, so no token has any probability.
    #[error("all {count} logits are -inf: at least one token must be unmasked")]
    AllMasked {
        /// How many logits there were.
        count: usize,
    },

    /// A softmax temperature that is not finite and positive.
    #[error("temperature is {value}: it must be finite and greater than 0")]
    InvalidTemperature {
        /// The offending value.
        value: f64,
    },

    /// Two distributions over vocabularies of different sizes.
    #[error(
        "vocabulary sizes differ: {what} has {found} tokens but {expected} were expected; \
         every distribution must cover the same vocabulary"
    )]
    VocabularyMismatch {
        /// Which input had the wrong size.
        what: &'static str,
        /// The vocabulary size of the reference input.
        expected: usize,
        /// The vocabulary size of the offending input.
        found: usize,
    },

    /// Two batches with different numbers of inputs (rows).
    #[error(
        "batch sizes differ: {what} has {found} rows but {expected} were expected; \
         every batch must hold the same inputs"
    )]
    BatchSizeMismatch {
        /// Which input had the wrong number of rows.
        what: &'static str,
        /// The number of rows of the reference batch.
        expected: usize,
        /// The number of rows of the offending batch.
        found: usize,
    },

    /// Two batches whose input weights differ, so their expectation is ambiguous.
    #[error(
        "input weight of row {row} is {found} in {what} but {expected} in the teacher batch: \
         give every batch the same input weights"
    )]
    InputWeightMismatch {
        /// Which batch had different weights.
        what: &'static str,
        /// Row whose weight differs.
        row: usize,
        /// The teacher batch's weight for that row.
        expected: f64,
        /// The offending batch's weight for that row.
        found: f64,
    },

    /// A shape that does not match its companion data.
    #[error("{what} has length {found} but {expected} was expected")]
    LengthMismatch {
        /// Which input had the wrong length.
        what: &'static str,
        /// The required length.
        expected: usize,
        /// The offending length.
        found: usize,
    },

    /// An error found in one row of a batch.
    #[error("row {row}: {source}")]
    InRow {
        /// The row (input) where the error was found.
        row: usize,
        /// The error found in that row.
        source: Box<Error>,
    },

    /// An anchor weight outside the range an operator accepts.
    #[error("anchor weight is {value}: it must lie in {range}")]
    InvalidAnchorWeight {
        /// The offending value.
        value: f64,
        /// The accepted range, such as "(0, 1]".
        range: &'static str,
    },

    /// A Renyi order that is negative or NaN.
    #[error("Renyi order is {value}: it must be a non-negative number or +inf")]
    InvalidOrder {
        /// The offending value.
        value: f64,
    },

    /// An operator given the wrong number of base teachers.
    #[error("{operator} takes {expected} base teacher(s) but was given {found}")]
    TeacherCount {
        /// The operator's name.
        operator: &'static str,
        /// How many teachers it takes, such as "exactly 1" or "at least 1".
        expected: &'static str,
        /// How many it was given.
        found: usize,
    },

    /// A meta-teacher operator that returned something other than a distribution.
    #[error("operator {operator} returned an invalid meta-teacher: {source}")]
    InvalidOperatorOutput {
        /// The operator's name.
        operator: String,
        /// What was wrong with its output.
        source: Box<Error>,
    },

    /// A numeric parameter outside its valid range.
    #[error("{name} is {value}: it must be {requirement}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// The offending value.
        value: f64,
        /// The constraint it broke, such as "finite and positive".
        requirement: &'static str,
    },

    /// An entry of a raw matrix passed to a batched kernel that the kernel cannot use.
    #[error(
        "{what} at row {row}, index {index} is {value}: it must be {requirement}; \
         fix that entry or build a DistributionBatch to validate the whole matrix"
    )]
    InvalidEntry {
        /// Which input matrix, such as "teacher probabilities" or "student logits".
        what: &'static str,
        /// The row of the entry.
        row: usize,
        /// The column (token) of the entry.
        index: usize,
        /// The offending value.
        value: f64,
        /// What the entry must be, such as "a finite, non-negative probability".
        requirement: &'static str,
    },

    /// A geometric pool row where no token is positive in every input of positive weight.
    #[error(
        "the geometric pool of row {row} is empty: no token is positive in every input \
         of positive weight; give the inputs a common support"
    )]
    EmptySupport {
        /// The row whose pool is empty.
        row: usize,
    },
}

impl Error {
    /// Wraps an error found in one row of a batch.
    pub(crate) fn in_row(self, row: usize) -> Self {
        Error::InRow {
            row,
            source: Box::new(self),
        }
    }
}
