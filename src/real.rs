//! The float types the crate computes with, and its crate-wide tolerances.

use std::any::Any;
use std::fmt::{self, Debug, Display};
use std::iter::Sum;

use approx::{AbsDiffEq, RelativeEq, UlpsEq};
use num_traits::{Float, FloatConst};

/// A floating-point type the crate can compute with: `f64` (the default) or `f32`.
///
/// Every generic item in the crate takes `F: Real`. The trait bundles the
/// `num-traits` and `approx` traits the crate needs. It is implemented for `f32`
/// and `f64`, so callers have nothing to implement.
pub trait Real:
    Float
    + FloatConst
    + Debug
    + Display
    + Default
    + Sum
    + Send
    + Sync
    + 'static
    + AbsDiffEq<Epsilon = Self>
    + RelativeEq
    + UlpsEq
{
}

impl Real for f32 {}
impl Real for f64 {}

/// The largest tolerance on `|Σ p_i - 1|` that the constructors accept.
///
/// Probabilities rounded for printing or produced in low precision are off 1
/// by far less. Anything further off should be normalized explicitly with
/// `from_weights`, so that no entry above 1 becomes a "distribution".
pub const MAX_SUM_TOLERANCE: f64 = 0.1;

/// Multiplier of `ε √V` in the default tolerance on the sum of probabilities.
pub const SUM_TOLERANCE_FACTOR: f64 = 64.0;

/// Returns the default tolerance on `|Σ p_i - 1|` for a vector of `len` probabilities.
///
/// ```text
/// tolerance(V) = 64 · ε · √max(V, 1)
/// ```
///
/// where `ε` is the machine epsilon of `F`. For `f64` this is about `2.5e-14` at
/// V = 3 and `3.6e-12` at V = 256 000; for `f32` about `1.3e-5` and `3.9e-3`.
/// It accepts the rounding left by a softmax computed in the same precision
/// (whose error grows roughly like `ε √V` under pairwise summation) and rejects
/// vectors that were never normalized.
///
/// # Examples
///
/// ```
/// let tolerance: f64 = metadistill::default_sum_tolerance(3);
/// assert!(tolerance > 1e-14 && tolerance < 1e-13);
/// ```
pub fn default_sum_tolerance<F: Real>(len: usize) -> F {
    let factor = F::from(SUM_TOLERANCE_FACTOR).unwrap_or_else(F::one);
    let count = F::from(len.max(1)).unwrap_or_else(F::max_value);
    factor * F::epsilon() * count.sqrt()
}

/// Converts a crate float to `f64` for error messages; both float types convert exactly.
pub(crate) fn to_f64<F: Real>(value: F) -> f64 {
    value.to_f64().unwrap_or(f64::NAN)
}

/// Converts an `f64` constant to `F`, rounding to nearest for `f32`.
pub(crate) fn constant<F: Real>(value: f64) -> F {
    F::from(value).unwrap_or_else(F::nan)
}

/// A float printed compactly for messages and names.
///
/// Values with magnitude in `[1e-4, 1e16)`, zeros, infinities and NaN print as
/// `Display` prints them; the others print in exponent form (`1e300`,
/// `2.5e-7`). Both forms use the shortest digits that read back as the same
/// value of the float type, so `Renyi(1e300)` stays short and `0.1_f32` prints
/// as `0.1`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Compact<F>(pub F);

impl<F: Real> Display for Compact<F> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.0;
        let magnitude = value.abs();
        let plain = value.is_zero()
            || !value.is_finite()
            || (magnitude >= constant(1e-4) && magnitude < constant(1e16));
        if plain {
            return write!(formatter, "{value}");
        }
        let any = &value as &dyn Any;
        if let Some(single) = any.downcast_ref::<f32>() {
            write!(formatter, "{single:e}")
        } else {
            write!(formatter, "{:e}", to_f64(value))
        }
    }
}

/// Wraps an error field for compact printing; `thiserror` passes fields by reference.
pub(crate) fn compact(value: &f64) -> Compact<f64> {
    Compact(*value)
}
