//! `DistributionBatch`: one distribution per input, the paper's `p(·|x)`.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

use crate::distribution::{
    Distribution, check_element_count, log_softmax_into, normalize_weights_into, positive_zero,
    validate_probs, validate_tolerance,
};
use crate::error::{Error, Result};
use crate::real::{Real, default_sum_tolerance, to_f64};

/// The conditional distributions `p(·|x)` of one model over a set of inputs `x`.
///
/// Rows are inputs and columns are tokens. Every row is a valid distribution
/// over the same vocabulary. The input weights are the data distribution over
/// the inputs, used by expectations such as `D(M) = E_x KL(T0(·|x) ‖ M(·|x))`;
/// they are uniform unless set with [`DistributionBatch::with_input_weights`].
///
/// # Examples
///
/// ```
/// use metadistill::DistributionBatch;
/// use ndarray::array;
///
/// let teacher = DistributionBatch::from_probs(&array![[0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])?
///     .with_input_weights(&array![3.0, 1.0])?;
/// assert_eq!(teacher.n_inputs(), 2);
/// assert_eq!(teacher.vocab_size(), 3);
/// assert_eq!(teacher.input_weights()[0], 0.75);
/// # Ok::<(), metadistill::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct DistributionBatch<F: Real = f64> {
    probs: Array2<F>,
    input_weights: Array1<F>,
}

/// Copies a matrix into a new array in standard (row-major, contiguous) layout.
fn standard_layout<F: Real>(matrix: ArrayView2<F>) -> Array2<F> {
    let shape = matrix.dim();
    let data: Vec<F> = matrix.iter().copied().collect();
    Array2::from_shape_vec(shape, data).unwrap_or_else(|_| Array2::zeros((0, 0)))
}

/// Checks that a matrix has at least one row and one column.
fn check_shape(rows: usize, columns: usize) -> Result<()> {
    if rows == 0 {
        return Err(Error::Empty {
            what: "batch (no rows)",
        });
    }
    if columns == 0 {
        return Err(Error::Empty {
            what: "batch (no columns)",
        });
    }
    Ok(())
}

/// Checks that a `(rows, columns)` shape equals the expected one.
///
/// `what` names the input with the shape `found` in the error.
pub(crate) fn check_same_shape(
    expected: (usize, usize),
    found: (usize, usize),
    what: &'static str,
) -> Result<()> {
    if found.0 != expected.0 {
        return Err(Error::BatchSizeMismatch {
            what,
            expected: expected.0,
            found: found.0,
        });
    }
    if found.1 != expected.1 {
        return Err(Error::VocabularyMismatch {
            what,
            expected: expected.1,
            found: found.1,
        });
    }
    Ok(())
}

/// Returns uniform input weights over `rows` inputs.
fn uniform_weights<F: Real>(rows: usize) -> Array1<F> {
    let count = F::from(rows).unwrap_or_else(F::max_value);
    Array1::from_elem(rows, F::one() / count)
}

impl<F: Real> DistributionBatch<F> {
    /// Builds a batch from a matrix of probabilities (rows = inputs), with uniform input weights.
    ///
    /// Each row is checked as [`Distribution::from_probs`] checks a vector,
    /// against the default tolerance for its length, and stored as given,
    /// except that a `-0.0` entry is stored as `+0.0`.
    ///
    /// # Errors
    ///
    /// - [`Error::Empty`] if the matrix has no rows or no columns.
    /// - [`Error::InRow`] wrapping the error of the first invalid row
    ///   ([`Error::NonFiniteProbability`], [`Error::NegativeProbability`] or
    ///   [`Error::NotNormalized`]), which names the row and the token.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::{DistributionBatch, Error};
    /// use ndarray::array;
    ///
    /// let bad = DistributionBatch::from_probs(&array![[0.5, 0.5], [0.5, -0.5]]);
    /// let message = bad.unwrap_err().to_string();
    /// assert!(message.starts_with("row 1: probability at index 1 is -0.5"));
    /// ```
    pub fn from_probs<'a>(probs: impl Into<ArrayView2<'a, F>>) -> Result<Self> {
        let probs = probs.into();
        let tolerance = default_sum_tolerance(probs.ncols());
        Self::from_probs_with_tolerance(probs, tolerance)
    }

    /// Builds a batch from probabilities whose row sums may be off 1 by at most `tolerance`.
    ///
    /// # Errors
    ///
    /// As [`DistributionBatch::from_probs`], and [`Error::InvalidTolerance`] if
    /// the tolerance is negative, NaN or above [`MAX_SUM_TOLERANCE`](crate::MAX_SUM_TOLERANCE).
    pub fn from_probs_with_tolerance<'a>(
        probs: impl Into<ArrayView2<'a, F>>,
        tolerance: F,
    ) -> Result<Self> {
        let probs = probs.into();
        validate_tolerance(tolerance)?;
        check_shape(probs.nrows(), probs.ncols())?;
        for (row, values) in probs.outer_iter().enumerate() {
            validate_probs(values, tolerance).map_err(|error| error.in_row(row))?;
        }

        let mut stored = standard_layout(probs);
        stored.mapv_inplace(positive_zero);
        Ok(DistributionBatch {
            probs: stored,
            input_weights: uniform_weights(probs.nrows()),
        })
    }

    /// Builds a batch of softmax distributions from a matrix of logits, row by row.
    ///
    /// Each row is handled as [`Distribution::from_logits`] handles a vector.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidTemperature`] if `temperature` is not finite and positive.
    /// - [`Error::Empty`] if the matrix has no rows or no columns.
    /// - [`Error::InRow`] wrapping [`Error::InvalidLogit`] or [`Error::AllMasked`].
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::DistributionBatch;
    /// use ndarray::array;
    ///
    /// let batch = DistributionBatch::from_logits(&array![[0.0, 0.0], [0.0, f64::NEG_INFINITY]], 1.0)?;
    /// assert_eq!(batch.row(1).unwrap().to_vec(), vec![1.0, 0.0]);
    /// # Ok::<(), metadistill::Error>(())
    /// ```
    pub fn from_logits<'a>(logits: impl Into<ArrayView2<'a, F>>, temperature: F) -> Result<Self> {
        let logits = logits.into();
        check_shape(logits.nrows(), logits.ncols())?;

        let mut probs = Array2::zeros(logits.dim());
        let mut scratch = vec![F::zero(); logits.ncols()];
        for (row, (values, mut out)) in logits.outer_iter().zip(probs.outer_iter_mut()).enumerate()
        {
            log_softmax_into(values, temperature, &mut scratch).map_err(|error| match error {
                Error::InvalidTemperature { .. } => error,
                other => other.in_row(row),
            })?;
            for (slot, &log_p) in out.iter_mut().zip(scratch.iter()) {
                *slot = log_p.exp();
            }
        }

        Ok(DistributionBatch {
            input_weights: uniform_weights(probs.nrows()),
            probs,
        })
    }

    /// Builds a batch with one row per distribution, with uniform input weights.
    ///
    /// # Errors
    ///
    /// - [`Error::Empty`] if `rows` is empty.
    /// - [`Error::InRow`] wrapping [`Error::VocabularyMismatch`] for the first
    ///   row whose size differs from the first row's.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::{Distribution, DistributionBatch};
    ///
    /// let rows = [Distribution::from_probs(&[0.5, 0.5])?, Distribution::uniform(2)?];
    /// let batch = DistributionBatch::from_rows(&rows)?;
    /// assert_eq!(batch.n_inputs(), 2);
    /// # Ok::<(), metadistill::Error>(())
    /// ```
    pub fn from_rows(rows: &[Distribution<F>]) -> Result<Self> {
        let first = rows.first().ok_or(Error::Empty {
            what: "list of rows",
        })?;
        let columns = first.len();
        let mut probs = Array2::zeros((rows.len(), columns));
        for (row, (distribution, mut out)) in rows.iter().zip(probs.outer_iter_mut()).enumerate() {
            if distribution.len() != columns {
                return Err(Error::VocabularyMismatch {
                    what: "row",
                    expected: columns,
                    found: distribution.len(),
                }
                .in_row(row));
            }
            out.assign(&distribution.probs());
        }

        Ok(DistributionBatch {
            input_weights: uniform_weights(rows.len()),
            probs,
        })
    }

    /// Builds a batch of `n_inputs` copies of one distribution.
    ///
    /// # Errors
    ///
    /// - [`Error::Empty`] if `n_inputs` is 0.
    /// - [`Error::InvalidParameter`] if the `n_inputs · V` probabilities would
    ///   take more than `isize::MAX` bytes.
    pub fn repeat(distribution: &Distribution<F>, n_inputs: usize) -> Result<Self> {
        if n_inputs == 0 {
            return Err(Error::Empty {
                what: "batch (no rows)",
            });
        }
        let count = n_inputs.checked_mul(distribution.len());
        check_element_count::<F>(count, "number of inputs", n_inputs)?;
        let probs = distribution
            .probs()
            .broadcast((n_inputs, distribution.len()))
            .map(standard_layout)
            .ok_or(Error::Empty {
                what: "batch (no rows)",
            })?;
        Ok(DistributionBatch {
            probs,
            input_weights: uniform_weights(n_inputs),
        })
    }

    /// Sets the input weights (the data distribution over the rows), normalizing them.
    ///
    /// ```text
    /// w_x ← w_x / Σ_y w_y
    /// ```
    ///
    /// Zero weights are allowed: such inputs take no part in expectations.
    ///
    /// # Errors
    ///
    /// - [`Error::LengthMismatch`] if there is not one weight per row.
    /// - [`Error::InvalidWeight`] for a negative, NaN or infinite weight.
    /// - [`Error::AllZeroWeights`] if every weight is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::{DistributionBatch, Error};
    /// use ndarray::array;
    ///
    /// let batch = DistributionBatch::from_probs(&array![[1.0], [1.0]])?;
    /// let bad = batch.with_input_weights(&array![1.0, f64::NAN]);
    /// assert!(matches!(bad, Err(Error::InvalidWeight { index: 1, .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn with_input_weights<'a>(mut self, weights: impl Into<ArrayView1<'a, F>>) -> Result<Self> {
        let weights = weights.into();
        if weights.len() != self.n_inputs() {
            return Err(Error::LengthMismatch {
                what: "input weights",
                expected: self.n_inputs(),
                found: weights.len(),
            });
        }
        let mut normalized = vec![F::zero(); weights.len()];
        normalize_weights_into(weights, "input weight", &mut normalized)?;

        self.input_weights = Array1::from(normalized);
        Ok(self)
    }

    /// Builds a batch from parts already known to be valid.
    pub(crate) fn from_valid(probs: Array2<F>, input_weights: Array1<F>) -> Self {
        DistributionBatch {
            probs,
            input_weights,
        }
    }

    /// Splits the batch into its probability matrix and input weights.
    pub(crate) fn into_parts(self) -> (Array2<F>, Array1<F>) {
        (self.probs, self.input_weights)
    }

    /// Returns the probabilities, one row per input, as a view.
    pub fn probs(&self) -> ArrayView2<'_, F> {
        self.probs.view()
    }

    /// Returns the normalized input weights as a view.
    pub fn input_weights(&self) -> ArrayView1<'_, F> {
        self.input_weights.view()
    }

    /// Returns the distribution of input `row` as a view, or `None` past the last row.
    pub fn row(&self, row: usize) -> Option<ArrayView1<'_, F>> {
        (row < self.n_inputs()).then(|| self.probs.row(row))
    }

    /// Returns the distribution of input `row` as a [`Distribution`], or `None` past the last row.
    pub fn distribution(&self, row: usize) -> Option<Distribution<F>> {
        self.row(row)
            .map(|values| Distribution::from_valid(Array1::from(values.to_vec())))
    }

    /// Returns an iterator over the rows.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = ArrayView1<'_, F>> {
        self.probs.outer_iter()
    }

    /// Returns the number of inputs (rows).
    pub fn n_inputs(&self) -> usize {
        self.probs.nrows()
    }

    /// Returns the vocabulary size (columns).
    pub fn vocab_size(&self) -> usize {
        self.probs.ncols()
    }

    /// Returns the contiguous slice of row `row`; the caller guarantees `row < n_inputs`.
    pub(crate) fn row_slice(&self, row: usize) -> &[F] {
        let columns = self.vocab_size();
        let all = self.probs.as_slice().unwrap_or(&[]);
        all.get(row * columns..(row + 1) * columns).unwrap_or(&[])
    }

    /// Checks that `other` has the same shape and input weights as `self`.
    ///
    /// `what` names `other` in the error.
    pub(crate) fn check_compatible(&self, other: &Self, what: &'static str) -> Result<()> {
        check_same_shape(self.probs.dim(), other.probs.dim(), what)?;
        let tolerance = default_sum_tolerance::<F>(self.n_inputs());
        for (row, (&expected, &found)) in self
            .input_weights
            .iter()
            .zip(other.input_weights.iter())
            .enumerate()
        {
            if (expected - found).abs() > tolerance {
                return Err(Error::InputWeightMismatch {
                    what,
                    row,
                    expected: to_f64(expected),
                    found: to_f64(found),
                });
            }
        }
        Ok(())
    }

    /// Returns the probabilities of one column (token) across inputs.
    pub fn token(&self, token: usize) -> Option<ArrayView1<'_, F>> {
        (token < self.vocab_size()).then(|| self.probs.index_axis(Axis(1), token))
    }
}
