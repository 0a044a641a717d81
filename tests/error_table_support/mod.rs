//! Shared helpers for the error-table tests: float conversion, inputs, and error matchers.
//!
//! Each error-table test builds one input per variant that the crate docs'
//! "Guarantees" table lists for a function, and checks that the function
//! returns that variant. The tests are generic over the float type and run for
//! `f32` and `f64`.

#![allow(dead_code)]

use metadistill::{Distribution, DistributionBatch, Error, MetaTeacherOperator, Real, Result};
use ndarray::{Array2, ArrayView1, ArrayViewMut1};

/// Converts an `f64` literal to `F`.
pub fn c<F: Real>(value: f64) -> F {
    F::from(value).expect("every literal in these tests fits both float types")
}

/// Converts a slice of `f64` literals to `F`.
pub fn values<F: Real>(entries: &[f64]) -> Vec<F> {
    entries.iter().map(|&x| c(x)).collect()
}

/// Builds a distribution from literals that are known to be valid.
pub fn dist<F: Real>(entries: &[f64]) -> Distribution<F> {
    Distribution::from_probs(values::<F>(entries).as_slice()).expect("a valid test distribution")
}

/// Builds a matrix from rows of literals.
pub fn matrix<F: Real>(rows: &[&[f64]]) -> Array2<F> {
    let columns = rows.first().map_or(0, |row| row.len());
    let flat: Vec<F> = rows.iter().flat_map(|row| values::<F>(row)).collect();
    Array2::from_shape_vec((rows.len(), columns), flat).expect("rows of equal length")
}

/// Builds a batch from rows of literals that are known to be valid.
pub fn batch<F: Real>(rows: &[&[f64]]) -> DistributionBatch<F> {
    DistributionBatch::from_probs(&matrix::<F>(rows)).expect("a valid test batch")
}

/// Returns the error of `result`, failing the test on `Ok`.
pub fn unwrap_err<T>(result: Result<T>) -> Error {
    match result {
        Ok(_) => panic!("expected an error, got Ok"),
        Err(error) => error,
    }
}

/// Returns the error inside [`Error::InRow`], failing the test on any other variant.
pub fn in_row(error: Error) -> Error {
    match error {
        Error::InRow { source, .. } => *source,
        other => panic!("expected InRow, got {other:?}"),
    }
}

/// Returns the error inside [`Error::InvalidInputVector`], failing the test on any other variant.
pub fn in_input_vector(error: Error) -> Error {
    match error {
        Error::InvalidInputVector { source, .. } => *source,
        other => panic!("expected InvalidInputVector, got {other:?}"),
    }
}

/// Asserts that an [`Error`] matches a pattern, printing it otherwise; the error is not moved.
macro_rules! assert_is {
    ($error:expr, $pattern:pat) => {{
        let error: &metadistill::Error = &$error;
        assert!(
            matches!(error, $pattern),
            "expected {}, got {error:?}",
            stringify!($pattern)
        );
    }};
}

/// Asserts that a `Result` is an error matching a pattern.
macro_rules! assert_err {
    ($result:expr, $pattern:pat) => {
        assert_is!($crate::error_table_support::unwrap_err($result), $pattern)
    };
}

/// Runs each generic test function for `f32` and for `f64`.
macro_rules! for_both_floats {
    ($($name:ident),* $(,)?) => {
        mod f32_cases {
            $(#[test] fn $name() { super::$name::<f32>(); })*
        }
        mod f64_cases {
            $(#[test] fn $name() { super::$name::<f64>(); })*
        }
    };
}

/// An operator whose output is never a distribution: it writes 2 on every token.
pub struct DoublingOperator;

impl<F: Real> MetaTeacherOperator<F> for DoublingOperator {
    fn anchor_weight(&self) -> F {
        F::zero()
    }

    fn combine_into(
        &self,
        _teachers: &[ArrayView1<F>],
        _students: &[ArrayView1<F>],
        mut out: ArrayViewMut1<F>,
    ) -> Result<()> {
        out.fill(c(2.0));
        Ok(())
    }
}
