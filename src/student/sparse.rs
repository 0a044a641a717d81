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

        out.copy_from_slice(q);
        // Each token pairs its probability with its output slot; the stable
        // sort puts them in decreasing probability, ties in token order.
        let mut tokens: Vec<(F, &mut F)> = q.iter().copied().zip(out.iter_mut()).collect();
        tokens.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
        let rest_len = vocab_size - self.k;
        let start = match self.kept {
            KeptTokens::Largest => self.k,
            KeptTokens::Best => {
                let sorted: Vec<F> = tokens.iter().map(|&(qi, _)| qi).collect();
                best_window(&sorted, rest_len)
            }
        };

        let mass: F = tokens
            .iter()
            .skip(start)
            .take(rest_len)
            .map(|&(qi, _)| qi)
            .sum();
        let floor = mass / F::from(rest_len).unwrap_or_else(F::max_value);
        for (_, slot) in tokens.iter_mut().skip(start).take(rest_len) {
            **slot = floor;
        }
    }
}

/// Returns the start of the window of `rest_len` sorted tokens whose flattening costs least.
///
/// `sorted` contains the probabilities in decreasing order.
/// The cost of flattening a set `R` of mass `m` is
/// `Σ_R q_i ln q_i - m ln m + m ln |R|`, and prefix sums make each window O(1).
/// NOTE: that the best `R` is a window of the sorted order is checked against
/// every subset for `V <= 7` in the tests, not proven.
fn best_window<F: Real>(sorted: &[F], rest_len: usize) -> usize {
    let mut mass_prefix = Vec::with_capacity(sorted.len() + 1);
    let mut entropy_prefix = Vec::with_capacity(sorted.len() + 1);
    let (mut mass_total, mut entropy_total) = (F::zero(), F::zero());
    mass_prefix.push(mass_total);
    entropy_prefix.push(entropy_total);
    for &qi in sorted {
        let term = if qi > F::zero() {
            qi * qi.ln()
        } else {
            F::zero()
        };
        mass_total = mass_total + qi;
        entropy_total = entropy_total + term;
        mass_prefix.push(mass_total);
        entropy_prefix.push(entropy_total);
    }

    let size_ln = F::from(rest_len).unwrap_or_else(F::max_value).ln();
    // Pairing each prefix with the one `rest_len` later yields every window
    // `start..start + rest_len` that fits.
    let mass_windows = mass_prefix.iter().zip(mass_prefix.iter().skip(rest_len));
    let entropy_windows = entropy_prefix
        .iter()
        .zip(entropy_prefix.iter().skip(rest_len));
    let mut best = (0, F::infinity());
    for (start, ((&mass_start, &mass_end), (&entropy_start, &entropy_end))) in
        mass_windows.zip(entropy_windows).enumerate()
    {
        let mass = mass_end - mass_start;
        let mass_term = if mass > F::zero() {
            mass * mass.ln()
        } else {
            F::zero()
        };
        let cost = entropy_end - entropy_start - mass_term + mass * size_ln;
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
