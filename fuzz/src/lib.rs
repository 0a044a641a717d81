//! Input decoding and output checks shared by the fuzz targets.
//!
//! Every target decodes its bytes with [`Unstructured`] into floats, vectors,
//! distributions and batches, calls the crate, and checks the contract: no
//! panic, no NaN, and every result either valid or an error variant that the
//! called function documents. The checks panic on a violation, which is what
//! libFuzzer reports as a crash.

use libfuzzer_sys::arbitrary::{Result as DecodeResult, Unstructured};
use metadistill::{
    Distribution, DistributionBatch, Divergence, Error, Real, default_sum_tolerance,
};
use ndarray::{Array1, Array2};

/// The largest vocabulary size a decoded vector gets; small sizes keep runs fast.
pub const MAX_LEN: usize = 12;

/// The largest number of rows a decoded batch gets.
pub const MAX_ROWS: usize = 4;

/// A crate float that the fuzzers can decode from raw bytes.
pub trait FuzzFloat: Real {
    /// Converts an `f64` with an `as` cast (rounding, overflowing to infinity).
    fn from_f64_lossy(value: f64) -> Self;
    /// Converts to `f64` exactly.
    fn widen(self) -> f64;
    /// Decodes a float from raw bits, so NaN payloads and subnormals occur.
    fn from_raw_bits(u: &mut Unstructured) -> DecodeResult<Self>;
}

impl FuzzFloat for f64 {
    fn from_f64_lossy(value: f64) -> Self {
        value
    }
    fn widen(self) -> f64 {
        self
    }
    fn from_raw_bits(u: &mut Unstructured) -> DecodeResult<Self> {
        Ok(f64::from_bits(u.arbitrary()?))
    }
}

impl FuzzFloat for f32 {
    fn from_f64_lossy(value: f64) -> Self {
        value as f32
    }
    fn widen(self) -> f64 {
        f64::from(self)
    }
    fn from_raw_bits(u: &mut Unstructured) -> DecodeResult<Self> {
        Ok(f32::from_bits(u.arbitrary()?))
    }
}

/// Values at the edges of the float range, picked often so the fuzzer meets them early.
const SPECIAL: [f64; 20] = [
    0.0,
    -0.0,
    1.0,
    0.5,
    0.25,
    1e-300,
    1e300,
    f64::MIN_POSITIVE,
    5e-324,
    f64::MAX,
    -f64::MAX,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    f64::EPSILON,
    1.0 - f64::EPSILON,
    1e-45,
    1.175_494_4e-38,
    3.4e38,
    -1.0,
];

/// Decodes any float: a special value, raw bits, or a mantissa times a power of two.
pub fn value<F: FuzzFloat>(u: &mut Unstructured) -> DecodeResult<F> {
    let selector: u8 = u.arbitrary()?;
    let index = usize::from(selector);
    if let Some(&special) = SPECIAL.get(index) {
        return Ok(F::from_f64_lossy(special));
    }
    if selector < 96 {
        return F::from_raw_bits(u);
    }
    let mantissa: u16 = u.arbitrary()?;
    let exponent: i32 = u.int_in_range(-1100..=1030)?;
    let magnitude = f64::from(mantissa) * 2f64.powi(exponent);
    Ok(F::from_f64_lossy(if selector < 112 {
        -magnitude
    } else {
        magnitude
    }))
}

/// Decodes a vector of `len` floats.
pub fn values<F: FuzzFloat>(u: &mut Unstructured, len: usize) -> DecodeResult<Vec<F>> {
    (0..len).map(|_| value(u)).collect()
}

/// Decodes a vocabulary size in `0..=MAX_LEN`.
pub fn length(u: &mut Unstructured) -> DecodeResult<usize> {
    u.int_in_range(0..=MAX_LEN)
}

/// Decodes a distribution of `len` tokens through one of the public constructors.
///
/// Returns `None` when the constructor rejected the input with an error it
/// documents; any other outcome fails the run.
pub fn distribution<F: FuzzFloat>(
    u: &mut Unstructured,
    len: usize,
) -> DecodeResult<Option<Distribution<F>>> {
    let mode: u8 = u.int_in_range(0..=5)?;
    let result = match mode {
        0 => {
            let probs = values::<F>(u, len)?;
            let result = Distribution::from_probs(probs.as_slice());
            if let Ok(p) = &result {
                assert_eq!(
                    p.as_slice(),
                    probs.as_slice(),
                    "from_probs changed its input"
                );
                check_distribution(p, default_sum_tolerance(len));
            }
            check_probs_error(&result);
            result
        }
        1 => {
            // A one-hot vector: exactly normalized, so it must be accepted.
            let hot = u.int_in_range(0..=len.saturating_sub(1))?;
            let probs: Vec<F> = (0..len)
                .map(|i| if i == hot { F::one() } else { F::zero() })
                .collect();
            let result = Distribution::from_probs(probs.as_slice());
            if len > 0 {
                assert!(result.is_ok(), "one-hot vector rejected: {result:?}");
            }
            result
        }
        2 => {
            let weights = values::<F>(u, len)?;
            let result = Distribution::from_weights(weights.as_slice());
            match &result {
                Ok(p) => check_distribution(p, default_sum_tolerance(len)),
                Err(error) => assert!(
                    matches!(
                        error,
                        Error::Empty { .. }
                            | Error::InvalidWeight { .. }
                            | Error::AllZeroWeights { .. }
                    ),
                    "from_weights returned an undocumented error: {error:?}"
                ),
            }
            result
        }
        3 => {
            let logits = values::<F>(u, len)?;
            let temperature = value::<F>(u)?;
            let result = Distribution::from_logits(logits.as_slice(), temperature);
            match &result {
                Ok(p) => check_distribution(p, default_sum_tolerance(len)),
                Err(error) => assert!(
                    matches!(
                        error,
                        Error::Empty { .. }
                            | Error::InvalidLogit { .. }
                            | Error::AllMasked { .. }
                            | Error::InvalidTemperature { .. }
                    ),
                    "from_logits returned an undocumented error: {error:?}"
                ),
            }
            result
        }
        4 => {
            let result = Distribution::uniform(len);
            match &result {
                Ok(p) => check_distribution(p, default_sum_tolerance(len)),
                Err(error) => assert!(
                    matches!(error, Error::Empty { .. }),
                    "uniform returned an undocumented error: {error:?}"
                ),
            }
            result
        }
        _ => {
            let probs = values::<F>(u, len)?;
            let tolerance = value::<F>(u)?;
            let result = Distribution::from_probs_with_tolerance(probs.as_slice(), tolerance);
            match &result {
                Ok(p) => {
                    assert_eq!(
                        p.as_slice(),
                        probs.as_slice(),
                        "from_probs changed its input"
                    );
                    check_distribution(p, tolerance);
                }
                Err(Error::InvalidTolerance { .. }) => {}
                Err(_) => check_probs_error(&result),
            }
            result
        }
    };
    if let Err(error) = &result {
        assert!(!error.to_string().is_empty());
    }
    Ok(result.ok())
}

/// Checks that an error from `from_probs` is one it documents.
fn check_probs_error<T: std::fmt::Debug>(result: &Result<T, Error>) {
    if let Err(error) = result {
        assert!(
            matches!(
                error,
                Error::Empty { .. }
                    | Error::NonFiniteProbability { .. }
                    | Error::NegativeProbability { .. }
                    | Error::NotNormalized { .. }
            ),
            "from_probs returned an undocumented error: {error:?}"
        );
    }
}

/// Sums in `f64`, exactly enough for `MAX_LEN` terms of either float type.
fn sum_f64<F: FuzzFloat>(values: impl Iterator<Item = F>) -> f64 {
    let mut widened: Vec<f64> = values.map(FuzzFloat::widen).collect();
    widened.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
    widened.iter().sum()
}

/// Checks a probability vector: finite, non-negative entries whose sum is within `tolerance` of 1.
pub fn check_probability_vector<F: FuzzFloat>(probs: &[F], tolerance: F) {
    assert!(!probs.is_empty(), "empty probability vector");
    for (index, &p) in probs.iter().enumerate() {
        assert!(p.is_finite(), "entry {index} is {p}");
        assert!(p >= F::zero(), "entry {index} is {p}");
    }
    let sum = sum_f64(probs.iter().copied());
    // The crate checks a compensated sum rounded to F, so the exact sum may
    // pass the tolerance by one rounding of F at the sum's magnitude. The f64
    // sum of up to MAX_LEN entries here is off by at most MAX_LEN ulps of f64.
    let rounding = 2.0 * F::epsilon().widen() * sum.abs().max(1.0);
    let slack = tolerance.widen() + rounding + 16.0 * f64::EPSILON;
    assert!(
        (sum - 1.0).abs() <= slack,
        "entries sum to {sum}, tolerance {tolerance}"
    );
}

/// Checks every invariant of a distribution accepted with sum tolerance `tolerance`.
pub fn check_distribution<F: FuzzFloat>(p: &Distribution<F>, tolerance: F) {
    let probs = p.as_slice();
    assert_eq!(probs.len(), p.len());
    assert!(!p.is_empty());
    check_probability_vector(probs, tolerance);

    for (index, (&prob, &log_prob)) in probs.iter().zip(p.log_probs().iter()).enumerate() {
        assert!(!log_prob.is_nan(), "log-probability {index} is NaN");
        assert!(log_prob != F::infinity(), "log-probability {index} is +inf");
        if prob > F::zero() {
            assert!(log_prob.is_finite(), "p = {prob} > 0 but ln p = {log_prob}");
            // Rounding ln p to the nearest float moves it by up to ε |ln p| / 2, which
            // exp turns into a relative error of the same size; subnormal
            // probabilities keep only absolute precision.
            let back = log_prob.exp();
            let relative = F::from_f64_lossy(8.0) + log_prob.abs();
            let allowed = relative * F::epsilon() * prob + F::min_positive_value();
            assert!(
                (back - prob).abs() <= allowed,
                "exp(ln p) = {back} but p = {prob} at {index}"
            );
        } else {
            assert!(
                log_prob.exp().is_zero(),
                "p = 0 but ln p = {log_prob} at {index}"
            );
        }
    }

    let entropy = p.entropy();
    assert!(!entropy.is_nan(), "entropy is NaN");
    assert!(entropy >= F::zero(), "entropy {entropy} < 0");
    if tolerance <= default_sum_tolerance(p.len()) {
        // H(p) <= ln V for a distribution; the sum tolerance allows a little more.
        let len = F::from_f64_lossy(p.len() as f64);
        let bound = len.ln() * (F::one() + F::from_f64_lossy(1e-3)) + F::from_f64_lossy(1e-3);
        assert!(entropy <= bound, "entropy {entropy} > ln V = {}", len.ln());
    }
}

/// Checks a batch: shape, every row a distribution, input weights normalized.
pub fn check_batch<F: FuzzFloat>(batch: &DistributionBatch<F>, tolerance: F) {
    assert!(batch.n_inputs() > 0);
    assert!(batch.vocab_size() > 0);
    assert_eq!(batch.probs().dim(), (batch.n_inputs(), batch.vocab_size()));
    assert_eq!(batch.rows().len(), batch.n_inputs());
    for row in batch.rows() {
        check_probability_vector(&row.to_vec(), tolerance);
    }
    let weights = batch.input_weights().to_vec();
    assert_eq!(weights.len(), batch.n_inputs());
    check_probability_vector(&weights, default_sum_tolerance(weights.len()));
    assert!(batch.row(batch.n_inputs()).is_none());
    assert!(batch.token(batch.vocab_size()).is_none());
    if let Some(first) = batch.distribution(0) {
        check_distribution(&first, tolerance);
    }
}

/// Decodes a batch of `rows` inputs over `len` tokens, with optional input weights.
///
/// Returns `None` when a constructor rejected the input with a documented error.
pub fn batch<F: FuzzFloat>(
    u: &mut Unstructured,
    rows: usize,
    len: usize,
) -> DecodeResult<Option<DistributionBatch<F>>> {
    let mode: u8 = u.int_in_range(0..=3)?;
    let result = match mode {
        0 => {
            let data = values::<F>(u, rows * len)?;
            let matrix = Array2::from_shape_vec((rows, len), data).ok();
            let Some(matrix) = matrix else {
                return Ok(None);
            };
            let result = DistributionBatch::from_probs(&matrix);
            match &result {
                Ok(batch) => {
                    assert_eq!(batch.probs(), matrix.view(), "from_probs changed its input");
                    check_batch(batch, default_sum_tolerance(len));
                }
                Err(error) => check_batch_probs_error(error),
            }
            result
        }
        1 => {
            let data = values::<F>(u, rows * len)?;
            let temperature = value::<F>(u)?;
            let matrix = Array2::from_shape_vec((rows, len), data).ok();
            let Some(matrix) = matrix else {
                return Ok(None);
            };
            let result = DistributionBatch::from_logits(&matrix, temperature);
            match &result {
                Ok(batch) => check_batch(batch, default_sum_tolerance(len)),
                Err(error) => {
                    let inner = match error {
                        Error::InRow { row, source } => {
                            assert!(*row < rows);
                            source.as_ref()
                        }
                        other => other,
                    };
                    assert!(
                        matches!(
                            inner,
                            Error::Empty { .. }
                                | Error::InvalidTemperature { .. }
                                | Error::InvalidLogit { .. }
                                | Error::AllMasked { .. }
                        ),
                        "batch from_logits returned an undocumented error: {error:?}"
                    );
                }
            }
            result
        }
        2 => {
            let mut distributions = Vec::new();
            for _ in 0..rows {
                let row_len = if u.ratio(15, 16)? { len } else { length(u)? };
                if let Some(d) = distribution::<F>(u, row_len)? {
                    distributions.push(d);
                }
            }
            let result = DistributionBatch::from_rows(&distributions);
            match &result {
                Ok(batch) => check_batch(batch, F::from_f64_lossy(f64::INFINITY)),
                Err(error) => assert!(
                    matches!(error, Error::Empty { .. } | Error::InRow { .. }),
                    "from_rows returned an undocumented error: {error:?}"
                ),
            }
            result
        }
        _ => {
            let Some(d) = distribution::<F>(u, len)? else {
                return Ok(None);
            };
            let result = DistributionBatch::repeat(&d, rows);
            match &result {
                Ok(batch) => check_batch(batch, F::from_f64_lossy(f64::INFINITY)),
                Err(error) => assert!(
                    matches!(error, Error::Empty { .. }),
                    "repeat returned an undocumented error: {error:?}"
                ),
            }
            result
        }
    };
    // from_rows skips rows whose constructor failed, so its shape can differ.
    let Some(batch) = result.ok().filter(|b| b.probs().dim() == (rows, len)) else {
        return Ok(None);
    };

    if u.arbitrary::<bool>()? {
        let count = if u.arbitrary::<bool>()? {
            batch.n_inputs()
        } else {
            u.int_in_range(0..=MAX_ROWS)?
        };
        let weights = Array1::from(values::<F>(u, count)?);
        match batch.clone().with_input_weights(&weights) {
            Ok(weighted) => {
                assert_eq!(
                    weighted.probs(),
                    batch.probs(),
                    "input weights changed the rows"
                );
                check_batch(&weighted, F::from_f64_lossy(f64::INFINITY));
                return Ok(Some(weighted));
            }
            Err(error) => assert!(
                matches!(
                    error,
                    Error::LengthMismatch { .. }
                        | Error::InvalidWeight { .. }
                        | Error::AllZeroWeights { .. }
                ),
                "with_input_weights returned an undocumented error: {error:?}"
            ),
        }
    }
    Ok(Some(batch))
}

/// Checks that an error from the batch `from_probs` is one it documents.
fn check_batch_probs_error(error: &Error) {
    let inner = match error {
        Error::InRow { source, .. } => source.as_ref(),
        other => other,
    };
    assert!(
        matches!(
            inner,
            Error::Empty { .. }
                | Error::NonFiniteProbability { .. }
                | Error::NegativeProbability { .. }
                | Error::NotNormalized { .. }
        ),
        "batch from_probs returned an undocumented error: {error:?}"
    );
}

/// Returns the error inside any number of [`Error::InRow`] wrappers.
pub fn innermost(error: &Error) -> &Error {
    match error {
        Error::InRow { source, .. } => innermost(source),
        other => other,
    }
}

/// Decodes a divergence: every variant, Renyi at an arbitrary order.
pub fn divergence<F: FuzzFloat>(u: &mut Unstructured) -> DecodeResult<Divergence<F>> {
    Ok(match u.int_in_range(0..=8)? {
        0 => Divergence::KullbackLeibler,
        1 => Divergence::ReverseKullbackLeibler,
        2 => Divergence::JensenShannon,
        3 => Divergence::JensenShannonDistance,
        4 => Divergence::TotalVariation,
        5 => Divergence::Hellinger,
        6 => Divergence::SquaredHellinger,
        7 => Divergence::ChiSquared,
        _ => Divergence::Renyi { order: value(u)? },
    })
}

/// Decodes a number in `[0, 1]` on a grid of 2^16 steps, so that ordinary weights are common.
pub fn unit_interval<F: FuzzFloat>(u: &mut Unstructured) -> DecodeResult<F> {
    let step: u16 = u.arbitrary()?;
    Ok(F::from_f64_lossy(f64::from(step) / f64::from(u16::MAX)))
}

/// Decodes a number that is mostly in `[0, 1]` and sometimes any float.
pub fn weight_like<F: FuzzFloat>(u: &mut Unstructured) -> DecodeResult<F> {
    if u.ratio(3, 4)? {
        unit_interval(u)
    } else {
        value(u)
    }
}

/// Decodes up to `max` distributions, each of length `len` or, rarely, another length.
pub fn distributions<F: FuzzFloat>(
    u: &mut Unstructured,
    len: usize,
    max: usize,
) -> DecodeResult<Vec<Distribution<F>>> {
    let count = u.int_in_range(0..=max)?;
    let mut list = Vec::new();
    for _ in 0..count {
        let this_len = if u.ratio(15, 16)? { len } else { length(u)? };
        if let Some(d) = distribution(u, this_len)? {
            list.push(d);
        }
    }
    Ok(list)
}

/// Decodes up to `max` batches of `rows × len`, each rarely with another number of rows.
pub fn batches<F: FuzzFloat>(
    u: &mut Unstructured,
    rows: usize,
    len: usize,
    max: usize,
) -> DecodeResult<Vec<DistributionBatch<F>>> {
    let count = u.int_in_range(0..=max)?;
    let mut list = Vec::new();
    for _ in 0..count {
        let this_rows = if u.ratio(15, 16)? {
            rows
        } else {
            u.int_in_range(0..=MAX_ROWS)?
        };
        if let Some(b) = batch(u, this_rows, len)? {
            list.push(b);
        }
    }
    Ok(list)
}

pub mod operators;
