//! `SparseStudent`: `k` tokens kept, the rest of the mass spread evenly.

use ndarray::Array2;

use crate::batch::DistributionBatch;
use crate::error::{Error, Result};
use crate::real::Real;
use crate::student::{Student, batch_like};

/// The rule that picks the `k` tokens a [`SparseStudent`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeptTokens {
    /// The `k` tokens the meta-teacher makes most likely (ties broken by index).
    Largest,
    /// The `k` tokens that make `KL(q ‖ S)` smallest over every choice of `k` tokens.
    Best,
}

/// A student of limited capacity: `k` free probabilities and one shared floor.
///
/// The family is every distribution that takes free values on a set `K` of
/// `k` tokens and one common value `c` on the other `V - k`. For a fixed `K`
/// the member closest to `q` in `KL(q ‖ S)` keeps `S_i = q_i` on `K` and
/// spreads the remaining mass evenly:
///
/// ```text
/// S_i = q_i  (i ∈ K),     S_i = m / (V - k)  (i ∉ K),     m = Σ_{i∉K} q_i
/// KL(q ‖ S) = m · KL(q_R / m ‖ uniform on R),               R = complement of K
/// ```
///
/// The `k` largest tokens are not always the best `K`: for `q = (0.4, 0.4, 0.2)`
/// and `k = 1`, keeping the smallest token leaves an even rest and `KL = 0`,
/// while keeping a largest one gives `KL ≈ 0.034`. [`KeptTokens::Best`] searches
/// the windows of `V - k` consecutive tokens in sorted order for `R` (the
/// tests compare it with every subset of small vocabularies), which costs
/// `O(V log V)` per row.
///
/// `k >= V` keeps every token (`S = q`) and `k = 0` gives the uniform distribution.
///
/// # Examples
///
/// ```
/// use metadistill::Distribution;
/// use metadistill::student::{KeptTokens, SparseStudent, Student};
///
/// let q = Distribution::<f64>::from_probs(&[0.5, 0.3, 0.1, 0.1])?;
/// let s = SparseStudent::new(1, KeptTokens::Largest).fit_one(&q)?;
/// let expected = [0.5, 0.5 / 3.0, 0.5 / 3.0, 0.5 / 3.0];
/// assert!(s.probs().iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-15));
/// # Ok::<(), metadistill::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SparseStudent {
    k: usize,
    kept: KeptTokens,
}

impl SparseStudent {
    /// Builds a student that keeps `k` tokens, chosen by `kept`.
    pub fn new(k: usize, kept: KeptTokens) -> Self {
        SparseStudent { k, kept }
    }

    /// Returns the number of kept tokens `k`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Writes the student for one meta-teacher row into `out`.
    fn fit_row<F: Real>(&self, q: &[F], out: &mut [F]) {
        let vocab_size = q.len();
        if self.k >= vocab_size {
            out.copy_from_slice(q);
            return;
        }

        let mut order: Vec<usize> = (0..vocab_size).collect();
        order.sort_by(|&i, &j| q[j].partial_cmp(&q[i]).unwrap_or(std::cmp::Ordering::Equal));
        let rest_len = vocab_size - self.k;
        let start = match self.kept {
            KeptTokens::Largest => self.k,
            KeptTokens::Best => best_window(q, &order, rest_len),
        };
        let rest = &order[start..start + rest_len];

        let mass: F = rest.iter().map(|&i| q[i]).sum();
        let floor = mass / F::from(rest_len).unwrap_or_else(F::max_value);
        out.copy_from_slice(q);
        for &i in rest {
            out[i] = floor;
        }
    }
}

/// Returns the start of the window of `rest_len` sorted tokens whose flattening costs least.
///
/// The cost of flattening a set `R` of mass `m` is
/// `Σ_R q_i ln q_i - m ln m + m ln |R|`, and prefix sums make each window O(1).
/// NOTE: that the best `R` is a window of the sorted order is checked against
/// every subset for `V <= 7` in the tests, not proven.
fn best_window<F: Real>(q: &[F], order: &[usize], rest_len: usize) -> usize {
    let mut mass_prefix = vec![F::zero(); order.len() + 1];
    let mut entropy_prefix = vec![F::zero(); order.len() + 1];
    for (position, &i) in order.iter().enumerate() {
        let qi = q[i];
        let term = if qi > F::zero() {
            qi * qi.ln()
        } else {
            F::zero()
        };
        mass_prefix[position + 1] = mass_prefix[position] + qi;
        entropy_prefix[position + 1] = entropy_prefix[position] + term;
    }

    let size_ln = F::from(rest_len).unwrap_or_else(F::max_value).ln();
    let mut best = (0, F::infinity());
    for start in 0..=order.len() - rest_len {
        let end = start + rest_len;
        let mass = mass_prefix[end] - mass_prefix[start];
        let mass_term = if mass > F::zero() {
            mass * mass.ln()
        } else {
            F::zero()
        };
        let cost = entropy_prefix[end] - entropy_prefix[start] - mass_term + mass * size_ln;
        if cost < best.1 {
            best = (start, cost);
        }
    }
    best.0
}

impl<F: Real> Student<F> for SparseStudent {
    /// Replaces the meta-teacher of every input by the member of the family it keeps.
    ///
    /// # Errors
    ///
    /// [`Error::InRow`] if rounding leaves a row further from sum 1 than the
    /// default tolerance, which the construction rules out for valid input.
    fn fit(&mut self, meta_teacher: &DistributionBatch<F>) -> Result<DistributionBatch<F>> {
        let mut out = Array2::zeros((meta_teacher.n_inputs(), meta_teacher.vocab_size()));
        for (row, mut out_row) in out.outer_iter_mut().enumerate() {
            let slot = out_row.as_slice_mut().ok_or(Error::Empty {
                what: "student output row",
            })?;
            self.fit_row(meta_teacher.row_slice(row), slot);
        }
        batch_like(out, meta_teacher)
    }

    fn name(&self) -> String {
        let kept = match self.kept {
            KeptTokens::Largest => "largest",
            KeptTokens::Best => "best",
        };
        format!("SparseStudent(k = {}, {kept})", self.k)
    }
}
