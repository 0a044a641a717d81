//! Teacher distributions, features and labels from NumPy `.npy` files (feature `npy`).
//!
//! Models trained with NumPy, scikit-learn or PyTorch can save their class
//! probabilities or logits with `numpy.save`; these functions load them as
//! batches (rows = inputs, columns = tokens), with the same checks as the
//! in-memory constructors. Probabilities are never renormalized: a matrix
//! whose rows do not sum to 1 within the tolerance is rejected, and logits or
//! log-probabilities go through a softmax, which normalizes by definition.
//!
//! Accepted element types: `f64` and `f32` for probabilities, logits and
//! features (also `u8`, `u16`, `i32`, `i64` for features), and `u8`, `u16`,
//! `i32`, `i64`, `u64` for labels.

use std::path::Path;

use ndarray::{Array1, Array2};
use ndarray_npy::{ReadNpyError, ReadableElement, read_npy};

use crate::batch::DistributionBatch;
use crate::error::{Error, Result};
use crate::real::Real;

/// Builds the error for a file that could not be read.
fn read_error(path: &Path, message: impl Into<String>) -> Error {
    Error::NpyRead {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// Reads a 2-D array of the first element type that matches the file, converted to `f64`.
fn read_matrix_f64(path: &Path, integers: bool) -> Result<Array2<f64>> {
    let mut last = match read_npy::<_, Array2<f64>>(path) {
        Ok(matrix) => return Ok(matrix),
        Err(error) => error,
    };
    if matches!(last, ReadNpyError::WrongDescriptor(_)) {
        match read_npy::<_, Array2<f32>>(path) {
            Ok(matrix) => return Ok(matrix.mapv(f64::from)),
            Err(error) => last = error,
        }
    }
    if integers && matches!(last, ReadNpyError::WrongDescriptor(_)) {
        match read_matrix_as::<u8>(path, f64::from)
            .or_else(|_| read_matrix_as::<u16>(path, f64::from))
            .or_else(|_| read_matrix_as::<i32>(path, f64::from))
            .or_else(|_| read_matrix_as::<i64>(path, |v| v as f64))
        {
            Ok(matrix) => return Ok(matrix),
            Err(error) => last = error,
        }
    }
    Err(read_error(path, last.to_string()))
}

/// Reads a 2-D array of element type `T` and converts it with `convert`.
fn read_matrix_as<T: ReadableElement + Copy>(
    path: &Path,
    convert: impl Fn(T) -> f64,
) -> std::result::Result<Array2<f64>, ReadNpyError> {
    read_npy::<_, Array2<T>>(path).map(|matrix| matrix.mapv(convert))
}

/// Converts an `f64` matrix to `F`.
fn convert_matrix<F: Real>(matrix: Array2<f64>) -> Array2<F> {
    matrix.mapv(|v| F::from(v).unwrap_or_else(F::nan))
}

/// Reads a matrix of probabilities (rows = inputs) and checks every row.
///
/// The rows are checked as [`DistributionBatch::from_probs`] checks them.
/// `f32` probabilities rarely sum to 1 within the `f64` default tolerance;
/// load them with `F = f32`, or save log-probabilities and use [`read_logits`].
///
/// # Errors
///
/// - [`Error::NpyRead`] if the file is missing, unreadable, not 2-D, or of
///   another element type than `f64` or `f32`.
/// - The errors of [`DistributionBatch::from_probs`], such as [`Error::InRow`]
///   wrapping [`Error::NotNormalized`].
///
/// # Examples
///
/// ```
/// use metadistill::npy::read_probs;
///
/// let missing = read_probs::<f64>("no/such/file.npy");
/// assert!(missing.unwrap_err().to_string().starts_with("cannot read no/such/file.npy"));
/// ```
pub fn read_probs<F: Real>(path: impl AsRef<Path>) -> Result<DistributionBatch<F>> {
    let matrix = convert_matrix::<F>(read_matrix_f64(path.as_ref(), false)?);
    DistributionBatch::from_probs(&matrix)
}

/// Reads a matrix of logits or log-probabilities and applies a softmax at `temperature` to each row.
///
/// ```text
/// p_i(x) = exp(l_i(x) / τ) / Σ_j exp(l_j(x) / τ)
/// ```
///
/// `-inf` entries (log-probabilities of 0) give probability 0.
///
/// # Errors
///
/// - [`Error::NpyRead`] as for [`read_probs`].
/// - The errors of [`DistributionBatch::from_logits`]: [`Error::InvalidTemperature`],
///   and [`Error::InRow`] wrapping [`Error::InvalidLogit`] or [`Error::AllMasked`].
///
/// # Examples
///
/// ```
/// # fn main() -> metadistill::Result<()> {
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits/teacher_logistic.npy");
/// let teacher = metadistill::npy::read_logits::<f64>(path, 1.0)?;
/// assert_eq!(teacher.vocab_size(), 10);
/// # Ok(())
/// # }
/// ```
pub fn read_logits<F: Real>(
    path: impl AsRef<Path>,
    temperature: F,
) -> Result<DistributionBatch<F>> {
    let matrix = convert_matrix::<F>(read_matrix_f64(path.as_ref(), false)?);
    DistributionBatch::from_logits(&matrix, temperature)
}

/// Reads a feature matrix (rows = inputs, columns = features).
///
/// # Errors
///
/// - [`Error::NpyRead`] if the file cannot be read as a 2-D array of `f64`,
///   `f32`, `u8`, `u16`, `i32` or `i64`.
/// - [`Error::NonFiniteFeature`] for a NaN or infinite feature.
///
/// # Examples
///
/// ```
/// # fn main() -> metadistill::Result<()> {
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits/features.npy");
/// let features = metadistill::npy::read_features::<f64>(path)?;
/// assert_eq!(features.ncols(), 64);
/// # Ok(())
/// # }
/// ```
pub fn read_features<F: Real>(path: impl AsRef<Path>) -> Result<Array2<F>> {
    let features = convert_matrix::<F>(read_matrix_f64(path.as_ref(), true)?);
    for ((row, column), &value) in features.indexed_iter() {
        if !value.is_finite() {
            return Err(Error::NonFiniteFeature {
                row,
                column,
                value: crate::real::to_f64(value),
            });
        }
    }
    Ok(features)
}

/// Reads a vector of non-negative integer class labels.
///
/// # Errors
///
/// [`Error::NpyRead`] if the file cannot be read as a 1-D array of `u8`,
/// `u16`, `i32`, `i64` or `u64`, or contains a negative label.
///
/// # Examples
///
/// ```
/// # fn main() -> metadistill::Result<()> {
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits/labels.npy");
/// let labels = metadistill::npy::read_labels(path)?;
/// assert!(labels.iter().all(|&label| label < 10));
/// # Ok(())
/// # }
/// ```
pub fn read_labels(path: impl AsRef<Path>) -> Result<Vec<usize>> {
    let path = path.as_ref();
    let signed = read_npy::<_, Array1<i64>>(path)
        .or_else(|_| read_npy::<_, Array1<i32>>(path).map(|a| a.mapv(i64::from)))
        .or_else(|_| read_npy::<_, Array1<u16>>(path).map(|a| a.mapv(i64::from)))
        .or_else(|_| read_npy::<_, Array1<u8>>(path).map(|a| a.mapv(i64::from)));
    let labels: Vec<i64> = match signed {
        Ok(labels) => labels.to_vec(),
        Err(_) => {
            let unsigned = read_npy::<_, Array1<u64>>(path)
                .map_err(|error| read_error(path, error.to_string()))?;
            return Ok(unsigned.iter().map(|&label| label as usize).collect());
        }
    };
    labels
        .iter()
        .enumerate()
        .map(|(index, &label)| {
            usize::try_from(label).map_err(|_| {
                read_error(
                    path,
                    format!("label at index {index} is {label}: labels must be non-negative"),
                )
            })
        })
        .collect()
}
