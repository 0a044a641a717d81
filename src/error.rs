//! The crate-wide error type.

use thiserror::Error;

use crate::real::compact;

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
        /// Name of the empty input, such as "probability vector" or "student history".
        what: &'static str,
    },

    /// A probability that is NaN or infinite.
    #[error(
        "probability at index {index} is {}: every probability must be finite",
        compact(.value)
    )]
    NonFiniteProbability {
        /// Position of the entry in the vector.
        index: usize,
        /// The offending value.
        value: f64,
    },

    /// A probability below zero.
    #[error(
        "probability at index {index} is {}: probabilities must be non-negative",
        compact(.value)
    )]
    NegativeProbability {
        /// Position of the entry in the vector.
        index: usize,
        /// The offending value.
        value: f64,
    },

    /// Probabilities whose sum is further from 1 than the tolerance allows.
    #[error(
        "probabilities sum to {}, which is off 1 by more than the tolerance {}: \
         normalize them first, or build the distribution from weights",
        compact(.sum), compact(.tolerance)
    )]
    NotNormalized {
        /// The sum of the entries, computed with compensated summation.
        sum: f64,
        /// The largest accepted distance of the sum from 1.
        tolerance: f64,
    },

    /// A sum tolerance that is negative, NaN, or above [`crate::MAX_SUM_TOLERANCE`].
    #[error(
        "sum tolerance is {}: pass a tolerance between 0 and 0.1, or build the \
         distribution from weights to normalize it",
        compact(.value)
    )]
    InvalidTolerance {
        /// The offending value.
        value: f64,
    },

    /// A weight that is negative, NaN or infinite.
    #[error(
        "{what} at index {index} is {}: weights must be finite and non-negative",
        compact(.value)
    )]
    InvalidWeight {
        /// Kind of weight, such as "token weight" or "input weight".
        what: &'static str,
        /// Position of the weight.
        index: usize,
        /// The offending value.
        value: f64,
    },

    /// Weights that are all zero, so they cannot be normalized.
    #[error("all {count} {what}s are zero: at least one weight must be positive")]
    AllZeroWeights {
        /// Kind of weight, such as "token weight" or "input weight".
        what: &'static str,
        /// How many weights there were.
        count: usize,
    },

    /// A logit that is NaN or `+inf`; `-inf` is accepted and masks the token.
    #[error(
        "logit at index {index} is {}: logits must be finite or -inf (a masked token)",
        compact(.value)
    )]
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
    #[error(
        "temperature is {}: it must be finite and greater than 0",
        compact(.value)
    )]
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
        /// Name of the input with the wrong size.
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
        /// Name of the input with the wrong number of rows.
        what: &'static str,
        /// The number of rows of the reference batch.
        expected: usize,
        /// The number of rows of the offending batch.
        found: usize,
    },

    /// Two batches whose input weights differ, so their expectation is ambiguous.
    #[error(
        "input weight of row {row} is {} in {what} but {} in the teacher batch: \
         give every batch the same input weights",
        compact(.found), compact(.expected)
    )]
    InputWeightMismatch {
        /// Name of the batch with different weights.
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
        /// Name of the input with the wrong length.
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
    #[error(
        "anchor weight is {}: it must lie in {range}",
        compact(.value)
    )]
    InvalidAnchorWeight {
        /// The offending value.
        value: f64,
        /// The accepted range, such as "(0, 1]".
        range: &'static str,
    },

    /// A Renyi order that is negative or NaN.
    #[error(
        "Renyi order is {}: it must be a non-negative number or +inf",
        compact(.value)
    )]
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
        /// The error found in its output.
        source: Box<Error>,
    },

    /// A numeric parameter outside its valid range.
    #[error(
        "{name} is {}: it must be {requirement}",
        compact(.value)
    )]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// The offending value.
        value: f64,
        /// The constraint it broke, such as "finite and positive".
        requirement: &'static str,
    },

    /// A range of vocabulary sizes for random distributions that is empty or starts at 0.
    #[error("vocabulary size range {min}..={max} is invalid: give 1 <= min <= max tokens")]
    InvalidVocabularyRange {
        /// The smallest vocabulary size requested.
        min: usize,
        /// The largest vocabulary size requested.
        max: usize,
    },

    /// An anchor-weight grid whose entries are not strictly increasing.
    #[error(
        "anchor grid entry {index} is {}, not above the previous entry {}: \
         list the anchor weights in increasing order",
        compact(.value), compact(.previous)
    )]
    UnsortedAnchorGrid {
        /// Position of the offending entry.
        index: usize,
        /// The offending entry.
        value: f64,
        /// The entry before it.
        previous: f64,
    },

    /// Weights that must sum to 1 but do not.
    #[error(
        "{what}s sum to {}, which is off 1 by more than the tolerance {}: \
         normalize them first, or build them with Weights::normalize",
        compact(.sum), compact(.tolerance)
    )]
    WeightsNotNormalized {
        /// The kind of weights, such as "teacher weight".
        what: &'static str,
        /// The sum of the weights, computed with compensated summation.
        sum: f64,
        /// The largest accepted distance of the sum from 1.
        tolerance: f64,
    },

    /// A divergence that an iterative solver cannot differentiate.
    #[error(
        "{divergence} has no gradient the solver can use: pick a differentiable divergence \
         such as Jensen-Shannon, KL, reverse KL, squared Hellinger, chi-squared or Renyi"
    )]
    NoGradient {
        /// The divergence's name.
        divergence: String,
    },

    /// An iterative solver that stopped at its iteration limit before reaching its tolerance.
    #[error(
        "{solver} stopped after {iterations} iterations with residual {}, above the \
         tolerance {}: raise the iteration limit or the tolerance",
        compact(.residual), compact(.tolerance)
    )]
    NotConverged {
        /// The solver's name.
        solver: &'static str,
        /// How many iterations it ran.
        iterations: usize,
        /// The stopping measure it reached: the Frank-Wolfe gap for mirror
        /// descent, the largest change in one step for a fixed-point iteration.
        residual: f64,
        /// The residual it had to reach.
        tolerance: f64,
    },

    /// A pooled distribution that is zero on every token.
    #[error(
        "{what} is zero on every token because no token has positive probability under \
         every input: give the inputs a common support or use an order above 0"
    )]
    DisjointSupports {
        /// The quantity computed, such as "power mean of order 0".
        what: String,
    },

    /// A noisy student that cannot move away from its meta-teacher by the requested error.
    #[error(
        "noisy student cannot reach an error of {} at row {row}: either the meta-teacher \
         puts all its mass on tokens where the error direction is constant, or the error needs \
         a probability below the float range; use a smaller error or a meta-teacher with more \
         than one likely token",
        compact(.size)
    )]
    UnreachableStudentError {
        /// The row (input) of the meta-teacher batch.
        row: usize,
        /// The requested error size.
        size: f64,
    },

    /// An input feature that is NaN or infinite.
    #[error(
        "feature {column} of input {row} is {}: every feature must be finite",
        compact(.value)
    )]
    NonFiniteFeature {
        /// The input (row of the feature matrix).
        row: usize,
        /// The feature (column of the feature matrix).
        column: usize,
        /// The offending value.
        value: f64,
    },

    /// A feature index past the last column of the feature matrix.
    #[error(
        "feature index {index} at position {position} is out of range: the feature matrix has \
         {n_features} columns"
    )]
    FeatureIndexOutOfRange {
        /// Position of the index in the list of selected features.
        position: usize,
        /// The offending index.
        index: usize,
        /// How many features there are.
        n_features: usize,
    },

    /// A class label outside the vocabulary.
    #[error(
        "label of input {row} is {label}: labels must be below the vocabulary size {n_classes}"
    )]
    InvalidLabel {
        /// The input (position in the label vector).
        row: usize,
        /// The offending label.
        label: usize,
        /// The vocabulary size.
        n_classes: usize,
    },

    /// A user metric that returned NaN or an infinite value.
    #[error(
        "metric returned {} at generation {generation}: it must return a finite number",
        compact(.value)
    )]
    NonFiniteMetric {
        /// The generation whose student was measured.
        generation: usize,
        /// The offending value.
        value: f64,
    },

    /// A NumPy `.npy` file that could not be read or has the wrong shape or type.
    #[error("cannot read {path}: {message}")]
    NpyRead {
        /// The file.
        path: String,
        /// The reader's error message, or the label check that failed.
        message: String,
    },

    /// An entry of a raw matrix passed to a batched kernel that the kernel cannot use.
    #[error(
        "{what} at row {row}, index {index} is {}: it must be {requirement}; \
         fix that entry or build a DistributionBatch to validate the whole matrix",
        compact(.value)
    )]
    InvalidEntry {
        /// Name of the input matrix, such as "teacher probabilities" or "student logits".
        what: &'static str,
        /// The row of the entry.
        row: usize,
        /// The column (token) of the entry.
        index: usize,
        /// The offending value.
        value: f64,
        /// The requirement the entry broke, such as "a finite, non-negative probability".
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
    /// A mixture-based operator given a different number of base teachers than teacher weights.
    #[error(
        "{operator} takes {expected} base teachers (one per teacher weight) but was given {found}: \
         pass one teacher per weight"
    )]
    TeacherWeightCount {
        /// The operator's name.
        operator: &'static str,
        /// The number of teacher weights.
        expected: usize,
        /// How many teachers it was given.
        found: usize,
    },

    /// A raw probability vector passed to a function failed its check.
    #[error("{what} is not a probability vector: {source}")]
    InvalidInputVector {
        /// Name of the input that failed, such as `"p"` or `"point 1"`.
        what: String,
        /// The underlying error, naming the index and value.
        #[source]
        source: Box<Error>,
    },

    /// An entry of the checker's anchor-weight grid outside `[0, 1]`.
    #[error(
        "anchor grid entry {index} is {}: every anchor weight in the grid must lie \
         in [0, 1]; replace that entry",
        compact(.value)
    )]
    InvalidAnchorGridEntry {
        /// Position of the offending entry.
        index: usize,
        /// The offending entry.
        value: f64,
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
