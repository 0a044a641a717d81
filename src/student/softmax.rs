//! `SoftmaxStudent`: a softmax regression over input features, trained by distillation.

use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::batch::DistributionBatch;
use crate::distribution::check_element_count;
use crate::divergence::{Divergence, expected_kl};
use crate::error::{Error, Result};
use crate::real::{Real, constant, to_f64};
use crate::student::optimize::{FitReport, minimize};
use crate::student::{Student, with_weights_of};

/// The capacity limit of a [`SoftmaxStudent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capacity {
    /// Every feature, a full `V × d` weight matrix.
    Full,
    /// Only the listed feature columns (a feature subset).
    Features(Vec<usize>),
    /// Every feature through a weight matrix of rank at most `r`: `W = A B`
    /// with `A` of shape `V × r` and `B` of shape `r × d`.
    Rank(usize),
}

/// A softmax regression student, `S(·|x) = softmax(W x + b)`, fitted by knowledge distillation.
///
/// Each fit minimizes the input-weighted distillation loss with exact gradients:
///
/// ```text
/// L(W, b) = Σ_x w_x KL(q(·|x) ‖ S(·|x)),     ∂L/∂z_x = w_x (S(·|x) - q(·|x)),   z_x = W x + b
/// ```
///
/// The minimizer is L-BFGS with a backtracking line search. It stops when the
/// largest gradient entry is at most the tolerance ([`FitOutcome::Converged`]),
/// after the iteration limit ([`FitOutcome::IterationLimit`]), or when no step
/// lowers the loss ([`FitOutcome::Stalled`]). [`SoftmaxStudent::last_report`]
/// reports which. Each fit starts from the weights of the previous one unless
/// [`SoftmaxStudent::with_warm_start`] turns that off.
///
/// With [`Capacity::Full`] or [`Capacity::Features`] the loss is convex in
/// `(W, b)`. With [`Capacity::Rank`] it is not, and the factors start from
/// small seeded random values.
///
/// Features on very different scales slow the minimizer down; scaling them
/// to about `[0, 1]` first is usually enough.
///
/// [`FitOutcome::Converged`]: crate::student::FitOutcome::Converged
/// [`FitOutcome::IterationLimit`]: crate::student::FitOutcome::IterationLimit
/// [`FitOutcome::Stalled`]: crate::student::FitOutcome::Stalled
///
/// # Examples
///
/// ```
/// use metadistill::student::{Capacity, FitOutcome, SoftmaxStudent, Student};
/// use metadistill::DistributionBatch;
/// use ndarray::array;
///
/// let features = array![[0.0_f64], [1.0], [2.0]];
/// let target = DistributionBatch::from_logits(&array![[0.0, 0.0], [0.0, 1.0], [0.0, 2.0]], 1.0)?;
/// let mut student = SoftmaxStudent::new(features.view(), 2, Capacity::Full)?.with_tolerance(1e-10)?;
/// student.fit(&target)?;
/// let report = student.last_report().unwrap();
/// assert_eq!(report.outcome, FitOutcome::Converged);
/// assert!(report.loss < 1e-12);
/// # Ok::<(), metadistill::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SoftmaxStudent<F: Real = f64> {
    features: Array2<F>,
    n_classes: usize,
    rank: Option<usize>,
    /// The length of the parameter vector, checked not to overflow.
    n_layout: usize,
    params: Vec<F>,
    tolerance: F,
    max_iterations: usize,
    seed: u64,
    warm_start: bool,
    report: Option<FitReport<F>>,
}

/// The default iteration limit of one fit.
const DEFAULT_MAX_ITERATIONS: usize = 500;

impl<F: Real> SoftmaxStudent<F> {
    /// Builds an untrained student over `features` (rows = inputs, columns = features) and `n_classes` tokens.
    ///
    /// The default tolerance on the largest gradient entry is `√ε` of `F`
    /// (about `1.5e-8` for `f64`, `3.5e-4` for `f32`) and the default iteration
    /// limit is 500.
    ///
    /// # Errors
    ///
    /// - [`Error::Empty`] if `features` has no rows or `n_classes` is 0.
    /// - [`Error::NonFiniteFeature`] for a NaN or infinite feature.
    /// - [`Error::FeatureIndexOutOfRange`] for a selected feature past the last column.
    /// - [`Error::InvalidParameter`] for [`Capacity::Rank`] of 0, or if the
    ///   parameters (named by the rank, or by `n_classes` without one) or the
    ///   predicted probabilities would take more than `isize::MAX` bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use metadistill::student::{Capacity, SoftmaxStudent};
    /// use metadistill::Error;
    /// use ndarray::array;
    ///
    /// let features = array![[0.0, 1.0], [1.0, 0.0]];
    /// let bad = SoftmaxStudent::new(features.view(), 3, Capacity::Features(vec![0, 2]));
    /// assert!(matches!(bad, Err(Error::FeatureIndexOutOfRange { index: 2, .. })));
    /// ```
    pub fn new(features: ArrayView2<F>, n_classes: usize, capacity: Capacity) -> Result<Self> {
        if features.nrows() == 0 {
            return Err(Error::Empty {
                what: "feature matrix (no rows)",
            });
        }
        if n_classes == 0 {
            return Err(Error::Empty { what: "vocabulary" });
        }
        for ((row, column), &value) in features.indexed_iter() {
            if !value.is_finite() {
                return Err(Error::NonFiniteFeature {
                    row,
                    column,
                    value: to_f64(value),
                });
            }
        }

        let (selected, rank) = match capacity {
            Capacity::Full => (features.to_owned(), None),
            Capacity::Features(columns) => {
                for (position, &index) in columns.iter().enumerate() {
                    if index >= features.ncols() {
                        return Err(Error::FeatureIndexOutOfRange {
                            position,
                            index,
                            n_features: features.ncols(),
                        });
                    }
                }
                (features.select(ndarray::Axis(1), &columns), None)
            }
            Capacity::Rank(0) => {
                return Err(Error::InvalidParameter {
                    name: "rank",
                    value: 0.0,
                    requirement: "at least 1",
                });
            }
            Capacity::Rank(rank) => (features.to_owned(), Some(rank)),
        };
        let features = Array2::from_shape_vec(selected.dim(), selected.iter().copied().collect())
            .map_err(|_| Error::Empty {
            what: "feature matrix",
        })?;
        let n_layout = checked_layout_len(n_classes, features.ncols(), rank)
            .filter(|&count| count <= isize::MAX.unsigned_abs() / std::mem::size_of::<F>())
            .ok_or(Error::InvalidParameter {
                name: if rank.is_some() { "rank" } else { "n_classes" },
                value: rank.unwrap_or(n_classes) as f64,
                requirement: "small enough that all parameters fit in isize::MAX bytes",
            })?;
        check_element_count::<F>(
            features.nrows().checked_mul(n_classes),
            "n_classes",
            n_classes,
        )?;

        let mut student = SoftmaxStudent {
            features,
            n_classes,
            rank,
            n_layout,
            params: Vec::new(),
            tolerance: F::epsilon().sqrt(),
            max_iterations: DEFAULT_MAX_ITERATIONS,
            seed: 0,
            warm_start: true,
            report: None,
        };
        student.reset();
        Ok(student)
    }

    /// Sets the tolerance on the largest absolute gradient entry.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] if `tolerance` is negative or not finite.
    pub fn with_tolerance(mut self, tolerance: F) -> Result<Self> {
        if !tolerance.is_finite() || tolerance < F::zero() {
            return Err(Error::InvalidParameter {
                name: "gradient tolerance",
                value: to_f64(tolerance),
                requirement: "finite and non-negative",
            });
        }
        self.tolerance = tolerance;
        Ok(self)
    }

    /// Sets the iteration limit of one fit.
    ///
    /// A limit of 0 is stored, and every later fit rejects it with
    /// [`Error::InvalidParameter`].
    // NOTE: the check sits in `fit` so that this builder keeps returning `Self`.
    pub fn with_max_iterations(mut self, max_iterations: usize) -> Self {
        self.max_iterations = max_iterations;
        self
    }

    /// Chooses whether each fit starts from the previous weights (`true`, the default) or afresh.
    ///
    /// A fresh start with a small iteration limit mimics a network retrained
    /// from scratch each generation, as in Born-Again training: the fit then
    /// falls short of its target in a consistent direction.
    pub fn with_warm_start(mut self, warm_start: bool) -> Self {
        self.warm_start = warm_start;
        self
    }

    /// Sets the seed of the random start of the rank-limited factors and restarts from it.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self.reset();
        self
    }

    /// Forgets the trained weights: zeros, or seeded small values for the factors of a rank limit.
    pub fn reset(&mut self) {
        let (v, d) = (self.n_classes, self.features.ncols());
        self.params = match self.rank {
            None => vec![F::zero(); v * d + v],
            Some(r) => {
                let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
                let mut params: Vec<F> = (0..v * r + r * d)
                    .map(|_| constant(rng.random_range(-0.1..=0.1)))
                    .collect();
                params.extend(std::iter::repeat_n(F::zero(), v));
                params
            }
        };
        self.report = None;
    }

    /// Returns the report of the last fit, `None` before the first.
    pub fn last_report(&self) -> Option<&FitReport<F>> {
        self.report.as_ref()
    }

    /// Returns the number of trainable parameters.
    pub fn n_parameters(&self) -> usize {
        self.params.len()
    }

    /// Returns the student's distributions for its inputs with the current weights.
    ///
    /// The input weights are uniform; [`Student::fit`] returns them with the
    /// meta-teacher's.
    ///
    /// # Errors
    ///
    /// [`Error::InRow`] wrapping [`Error::InvalidLogit`] if the weights have
    /// grown so large that a logit is not finite. The line search rejects
    /// such steps, so a fit does not produce them.
    pub fn predict(&self) -> Result<DistributionBatch<F>> {
        let logits = self.logits(&self.params)?;
        DistributionBatch::from_logits(&logits, F::one())
    }

    /// Splits `params` into its weight blocks and the bias `b` (length `V`).
    ///
    /// The layout is `W` then `b`, or with a rank limit `A` then `B` then `b`,
    /// every matrix row-major.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] if `params` does not have the layout's length.
    /// The student and its minimizer only pass vectors built by [`Self::reset`],
    /// so this does not happen.
    fn split_params<'p>(&self, params: &'p [F]) -> Result<(WeightBlocks<'p, F>, &'p [F])> {
        let (v, d) = (self.n_classes, self.features.ncols());
        let mismatch = || Error::LengthMismatch {
            what: "softmax student parameter vector",
            expected: self.n_layout,
            found: params.len(),
        };
        let (weight_part, bias) = params
            .len()
            .checked_sub(v)
            .and_then(|at| params.split_at_checked(at))
            .ok_or_else(mismatch)?;
        let blocks = match self.rank {
            None => WeightBlocks::Full(
                ArrayView2::from_shape((v, d), weight_part).map_err(|_| mismatch())?,
            ),
            Some(r) => {
                let (a, b) = weight_part.split_at_checked(v * r).ok_or_else(mismatch)?;
                WeightBlocks::Factors(
                    ArrayView2::from_shape((v, r), a).map_err(|_| mismatch())?,
                    ArrayView2::from_shape((r, d), b).map_err(|_| mismatch())?,
                )
            }
        };
        Ok((blocks, bias))
    }

    /// Returns the logits `W x + b` of every input.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] if `params` does not have the layout's length.
    fn logits(&self, params: &[F]) -> Result<Array2<F>> {
        let (blocks, bias) = self.split_params(params)?;
        let product;
        let w = match blocks {
            WeightBlocks::Full(w) => w,
            WeightBlocks::Factors(a, b) => {
                product = factor_product(a, b);
                product.view()
            }
        };
        let mut logits = Array2::zeros((self.features.nrows(), self.n_classes));
        for (x, mut z) in self.features.outer_iter().zip(logits.outer_iter_mut()) {
            for ((zc, w_row), &bc) in z.iter_mut().zip(w.rows()).zip(bias) {
                *zc = bc
                    + w_row
                        .iter()
                        .zip(x.iter())
                        .fold(F::zero(), |s, (&a, &b)| s + a * b);
            }
        }
        Ok(logits)
    }

    /// Computes the loss `Σ_x w_x KL(q_x ‖ S_x)` and writes its gradient.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] if `params` does not have the layout's length
    /// or `gradient` not the length of `params`.
    fn loss_and_gradient(
        &self,
        params: &[F],
        target: &DistributionBatch<F>,
        gradient: &mut [F],
    ) -> Result<F> {
        let (v, d) = (self.n_classes, self.features.ncols());
        if gradient.len() != params.len() {
            return Err(Error::LengthMismatch {
                what: "softmax student gradient",
                expected: params.len(),
                found: gradient.len(),
            });
        }
        let (blocks, _) = self.split_params(params)?;
        let logits = self.logits(params)?;
        let mut weight_gradient = Array2::zeros((v, d));
        let mut bias_gradient = vec![F::zero(); v];
        let mut loss = F::zero();
        let mut residual = vec![F::zero(); v];
        let mut probs = vec![F::zero(); v];

        let rows = self
            .features
            .outer_iter()
            .zip(logits.outer_iter())
            .zip(target.input_weights());
        for (row, ((x, z), &weight)) in rows.enumerate() {
            if weight <= F::zero() {
                continue;
            }
            let q = target.row_slice(row);
            let top = z.iter().copied().fold(F::neg_infinity(), F::max);
            let total: F = z.iter().map(|&zc| (zc - top).exp()).sum();
            let log_normalizer = top + total.ln();
            let classes = probs
                .iter_mut()
                .zip(residual.iter_mut())
                .zip(bias_gradient.iter_mut())
                .zip(z.iter().zip(q));
            for (((p, r), g), (&zc, &qc)) in classes {
                *p = (zc - log_normalizer).exp();
                *r = weight * (*p - qc);
                *g = *g + *r;
            }
            // The accurate KL keeps the loss meaningful near 0, where the
            // cross-entropy minus the entropy would cancel to rounding noise.
            let row_kl = Divergence::KullbackLeibler
                .compute_slices(q, &probs)
                .unwrap_or_else(|_| F::nan());
            loss = loss + weight * row_kl;
            for (mut slot, &rc) in weight_gradient.outer_iter_mut().zip(&residual) {
                for (g, &xj) in slot.iter_mut().zip(x.iter()) {
                    *g = *g + rc * xj;
                }
            }
        }

        // `gradient` has the length of `params`, which `split_params` checked.
        let (weight_part, bias_part) = gradient.split_at_mut(gradient.len() - v);
        bias_part.copy_from_slice(&bias_gradient);
        match blocks {
            WeightBlocks::Full(_) => {
                for (g, &dw) in weight_part.iter_mut().zip(weight_gradient.iter()) {
                    *g = dw;
                }
            }
            WeightBlocks::Factors(a, b) => {
                let (grad_a, grad_b) = weight_part.split_at_mut(a.len());
                let mut grad_a = matrix_mut(a.dim(), grad_a)?;
                let mut grad_b = matrix_mut(b.dim(), grad_b)?;
                grad_a.fill(F::zero());
                grad_b.fill(F::zero());
                // With `W = A B`: ∂L/∂A = (∂L/∂W) Bᵀ and ∂L/∂B = Aᵀ (∂L/∂W).
                let class_rows = weight_gradient
                    .outer_iter()
                    .zip(a.outer_iter())
                    .zip(grad_a.outer_iter_mut());
                for ((dw_row, a_row), mut grad_a_row) in class_rows {
                    let factor_rows = a_row
                        .iter()
                        .zip(grad_a_row.iter_mut())
                        .zip(b.outer_iter().zip(grad_b.outer_iter_mut()));
                    for ((&a_ck, grad_a_ck), (b_row, mut grad_b_row)) in factor_rows {
                        let entries = dw_row.iter().zip(b_row.iter()).zip(grad_b_row.iter_mut());
                        for ((&dw, &b_kj), grad_b_kj) in entries {
                            *grad_a_ck = *grad_a_ck + dw * b_kj;
                            *grad_b_kj = *grad_b_kj + a_ck * dw;
                        }
                    }
                }
            }
        }
        Ok(loss)
    }
}

/// Returns the length of the parameter vector (the weight blocks, then the bias), `None` on overflow.
fn checked_layout_len(v: usize, d: usize, rank: Option<usize>) -> Option<usize> {
    let weights = match rank {
        None => v.checked_mul(d)?,
        Some(r) => v.checked_mul(r)?.checked_add(r.checked_mul(d)?)?,
    };
    weights.checked_add(v)
}

/// The weight part of a parameter vector, viewed as matrices.
enum WeightBlocks<'p, F> {
    /// The full matrix `W` (`V × d`).
    Full(ArrayView2<'p, F>),
    /// The factors `A` (`V × r`) and `B` (`r × d`) of `W = A B`.
    Factors(ArrayView2<'p, F>, ArrayView2<'p, F>),
}

/// Views `values` as a row-major `rows × columns` matrix of the gradient.
///
/// # Errors
///
/// [`Error::LengthMismatch`] if `values` does not have `rows · columns` entries.
fn matrix_mut<F: Real>(
    (rows, columns): (usize, usize),
    values: &mut [F],
) -> Result<ArrayViewMut2<'_, F>> {
    let found = values.len();
    ArrayViewMut2::from_shape((rows, columns), values).map_err(|_| Error::LengthMismatch {
        what: "softmax student gradient block",
        expected: rows * columns,
        found,
    })
}

/// Multiplies the factors `A` (`V × r`) and `B` (`r × d`) into `W = A B`.
///
/// Each entry sums `A_ck B_kj` in increasing `k`.
fn factor_product<F: Real>(a: ArrayView2<F>, b: ArrayView2<F>) -> Array2<F> {
    let mut w = Array2::zeros((a.nrows(), b.ncols()));
    for (mut w_row, a_row) in w.outer_iter_mut().zip(a.outer_iter()) {
        for (&factor, b_row) in a_row.iter().zip(b.outer_iter()) {
            for (w_cj, &b_kj) in w_row.iter_mut().zip(b_row.iter()) {
                *w_cj = *w_cj + factor * b_kj;
            }
        }
    }
    w
}

impl<F: Real> Student<F> for SoftmaxStudent<F> {
    /// Trains the weights on the meta-teacher, starting from the previous fit, and returns the prediction.
    ///
    /// # Errors
    ///
    /// - [`Error::BatchSizeMismatch`] if the meta-teacher does not have one row per feature row.
    /// - [`Error::VocabularyMismatch`] if its vocabulary is not `n_classes`.
    /// - [`Error::InvalidParameter`] if the iteration limit is 0, because such a
    ///   fit would return the starting weights untrained.
    /// - [`Error::InRow`] wrapping [`Error::InvalidLogit`] if the trained
    ///   weights give a logit that is not finite, as [`SoftmaxStudent::predict`]
    ///   reports it.
    fn fit(&mut self, meta_teacher: &DistributionBatch<F>) -> Result<DistributionBatch<F>> {
        if self.max_iterations == 0 {
            return Err(Error::InvalidParameter {
                name: "softmax student iteration limit",
                value: 0.0,
                requirement: "at least 1; pass a positive limit to with_max_iterations",
            });
        }
        if meta_teacher.n_inputs() != self.features.nrows() {
            return Err(Error::BatchSizeMismatch {
                what: "meta-teacher batch",
                expected: self.features.nrows(),
                found: meta_teacher.n_inputs(),
            });
        }
        if meta_teacher.vocab_size() != self.n_classes {
            return Err(Error::VocabularyMismatch {
                what: "meta-teacher batch",
                expected: self.n_classes,
                found: meta_teacher.vocab_size(),
            });
        }

        if !self.warm_start {
            self.reset();
        }
        let mut params = std::mem::take(&mut self.params);
        let mut failure = None;
        let mut report = minimize(
            |theta, gradient| match self.loss_and_gradient(theta, meta_teacher, gradient) {
                Ok(loss) => loss,
                Err(error) => {
                    // NaN makes the line search reject the step, and the error is returned below.
                    failure.get_or_insert(error);
                    F::nan()
                }
            },
            &mut params,
            self.tolerance,
            self.max_iterations,
        );
        self.params = params;
        if let Some(error) = failure {
            return Err(error);
        }

        let prediction = with_weights_of(self.predict()?, meta_teacher);
        report.loss = expected_kl(meta_teacher, &prediction)?;
        self.report = Some(report);
        Ok(prediction)
    }

    fn last_fit_report(&self) -> Option<FitReport<F>> {
        self.report.clone()
    }

    fn name(&self) -> String {
        match self.rank {
            None => format!("SoftmaxStudent({} features)", self.features.ncols()),
            Some(r) => format!(
                "SoftmaxStudent({} features, rank {r})",
                self.features.ncols()
            ),
        }
    }
}
