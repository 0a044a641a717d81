//! Row access for the kernels and the errors a row kernel reports.

use ndarray::ArrayView1;

use crate::error::Error;
use crate::real::to_f64;

use super::lanes::{KernelFloat, LANES, Lanes};
use super::prefetch;

/// A row of a matrix the kernels read in blocks of `LANES` entries.
///
/// Contiguous rows are read straight from memory. Strided rows (a column
/// slice of a larger array, a transposed view) are gathered one block at a
/// time into a stack array, so neither kind allocates.
pub(crate) trait RowAccess<F: KernelFloat> {
    fn len(&self) -> usize;
    fn get(&self, index: usize) -> F;
    /// Returns entries `start .. start + LANES`; the caller keeps `start + LANES <= len`.
    fn block(&self, start: usize) -> Lanes<F>;
    /// Asks for the entries a fixed distance after `start` to be loaded into
    /// the cache. Only contiguous rows do: a strided row's next entries need
    /// not be near each other.
    #[inline(always)]
    fn prefetch_ahead(&self, _start: usize) {}
}

impl<F: KernelFloat> RowAccess<F> for &[F] {
    #[inline(always)]
    fn len(&self) -> usize {
        <[F]>::len(self)
    }

    #[inline(always)]
    fn get(&self, index: usize) -> F {
        self[index]
    }

    #[inline(always)]
    fn block(&self, start: usize) -> Lanes<F> {
        let mut block = [F::zero(); LANES];
        block.copy_from_slice(&self[start..start + LANES]);
        block
    }

    #[inline(always)]
    fn prefetch_ahead(&self, start: usize) {
        prefetch::prefetch_ahead(self, start);
    }
}

/// A row with a stride other than 1.
pub(crate) struct Strided<'a, F>(pub(crate) ArrayView1<'a, F>);

impl<F: KernelFloat> RowAccess<F> for Strided<'_, F> {
    #[inline(always)]
    fn len(&self) -> usize {
        self.0.len()
    }

    #[inline(always)]
    fn get(&self, index: usize) -> F {
        self.0[index]
    }

    #[inline(always)]
    fn block(&self, start: usize) -> Lanes<F> {
        let mut block = [F::zero(); LANES];
        for (lane, slot) in block.iter_mut().enumerate() {
            *slot = self.0[start + lane];
        }
        block
    }
}

/// An invalid entry found by a row kernel, before the row number is known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct EntryError {
    /// Index of the input, [`EntryError::FIRST`] or [`EntryError::SECOND`].
    pub(crate) input: usize,
    pub(crate) index: usize,
    pub(crate) value: f64,
    pub(crate) requirement: &'static str,
}

impl EntryError {
    pub(crate) const FIRST: usize = 0;
    pub(crate) const SECOND: usize = 1;
}

/// An error a row kernel reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum RowError {
    Entry(EntryError),
    /// Every logit of the given input is `-inf`; carries the row length.
    AllMasked {
        count: usize,
    },
}

impl RowError {
    /// Exchanges the two inputs an entry error names, for a kernel called
    /// with its arguments swapped (the reverse KL computes `KL(q ‖ p)`).
    pub(crate) fn swap_inputs(self) -> Self {
        match self {
            RowError::Entry(entry) => RowError::Entry(EntryError {
                input: if entry.input == EntryError::FIRST {
                    EntryError::SECOND
                } else {
                    EntryError::FIRST
                },
                ..entry
            }),
            other => other,
        }
    }

    /// Converts to the crate error, naming the row and the inputs by `names`.
    pub(crate) fn into_error(self, row: usize, names: [&'static str; 2]) -> Error {
        match self {
            RowError::Entry(entry) => Error::InvalidEntry {
                what: names[entry.input.min(1)],
                row,
                index: entry.index,
                value: entry.value,
                requirement: entry.requirement,
            },
            RowError::AllMasked { count } => Error::AllMasked { count }.in_row(row),
        }
    }
}

/// Checks that a probability is finite and non-negative.
#[inline(always)]
pub(crate) fn check_probability<F: KernelFloat>(
    input: usize,
    index: usize,
    value: F,
) -> Result<(), RowError> {
    if value >= F::zero() && value.is_finite() {
        Ok(())
    } else {
        Err(RowError::Entry(EntryError {
            input,
            index,
            value: to_f64(value),
            requirement: "a finite, non-negative probability",
        }))
    }
}

/// Checks every entry of two probability rows from `start` on, for a kernel
/// that found an infinite term and must still report any invalid entry after it.
#[cold]
#[inline(never)]
pub(crate) fn check_rest<F: KernelFloat, R: RowAccess<F>>(
    p: &R,
    q: &R,
    start: usize,
) -> Result<(), RowError> {
    for index in start..p.len() {
        check_probability(EntryError::FIRST, index, p.get(index))?;
        check_probability(EntryError::SECOND, index, q.get(index))?;
    }
    Ok(())
}

/// Checks that a logit is finite or `-inf` (a masked token).
#[inline(always)]
pub(crate) fn check_logit<F: KernelFloat>(
    input: usize,
    index: usize,
    value: F,
) -> Result<(), RowError> {
    if value < F::infinity() {
        Ok(())
    } else {
        Err(RowError::Entry(EntryError {
            input,
            index,
            value: to_f64(value),
            requirement: "finite or -inf (a masked token)",
        }))
    }
}
