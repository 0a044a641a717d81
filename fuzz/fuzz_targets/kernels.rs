//! Fuzzes the fused kernels of `metadistill::kernels` against the scalar path.
//!
//! Rows have up to 100 tokens, so they cross the 32-token blocks of the
//! kernels: the vector path, the scalar fallback of a block and the tail all
//! run. The matrices are contiguous, column slices with a stride of 2, or
//! transposed views. For valid distributions each kernel must match the
//! scalar functions of `metadistill::divergence` and `Distribution`. For a
//! matrix with invalid entries it must report the entry that the scalar
//! constructors report first: the same variant, row and index.

#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use metadistill::divergence::{js, kl, reverse_kl};
use metadistill::kernels::{
    KernelFloat, cross_entropy_rows, entropy_rows, geometric_pool_into, js_rows,
    kl_from_logits_rows, kl_rows, mixture_into, reverse_kl_rows,
};
use metadistill::{
    ConvexMixture, Distribution, Error, MetaTeacherOperator, Weights, power_mean_into,
};
use metadistill_fuzz::{FuzzFloat, distribution, value, weight_like};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, s};

/// Tells whether the checks accept the behaviour of seven kernel bugs this target found.
///
/// The bugs are fixed, each with a minimized input in `regressions/kernels/`
/// and a test in tests/fuzz_regressions.rs, so this is `false`: the target
/// checks the documented behaviour. The models stay so that the old
/// behaviour can be compared when a kernel changes.
const FOLLOW_KNOWN_KERNEL_BUGS: bool = false;

/// The largest vocabulary: three 32-token blocks and a tail.
const MAX_TOKENS: usize = 100;

/// The largest number of rows.
const MAX_ROWS: usize = 3;

/// A float type the kernels accept and the fuzzers can decode.
trait KernelFuzzFloat: FuzzFloat + KernelFloat {}
impl KernelFuzzFloat for f32 {}
impl KernelFuzzFloat for f64 {}

/// A matrix stored in one of three layouts, so the kernels see contiguous and strided rows.
struct Stored<F> {
    data: Array2<F>,
    layout: u8,
}

impl<F: KernelFuzzFloat> Stored<F> {
    /// Stores `rows` in layout 0 (row-major), 1 (every other column of a wider
    /// array) or 2 (the transpose of a column-major array).
    fn new(rows: &Array2<F>, layout: u8) -> Self {
        let (height, width) = rows.dim();
        let data = match layout {
            1 => {
                let mut wide = Array2::from_elem((height, 2 * width), F::from_f64_lossy(f64::NAN));
                wide.slice_mut(s![.., ..;2]).assign(rows);
                wide
            }
            2 => rows.t().to_owned(),
            _ => rows.clone(),
        };
        Stored { data, layout }
    }

    fn view(&self) -> ArrayView2<'_, F> {
        match self.layout {
            1 => self.data.slice(s![.., ..;2]),
            2 => self.data.t(),
            _ => self.data.view(),
        }
    }
}

/// An invalid entry put into a matrix: its row, token and value.
#[derive(Debug, Clone, Copy)]
struct Corruption<F> {
    row: usize,
    token: usize,
    value: F,
}

/// Decodes a matrix of `rows` valid distributions over `len` tokens, then
/// replaces a few entries with values a probability may not take.
fn probability_matrix<F: KernelFuzzFloat>(
    u: &mut Unstructured,
    rows: usize,
    len: usize,
) -> Result<Option<Array2<F>>> {
    let mut matrix = Array2::zeros((rows, len));
    for mut row in matrix.rows_mut() {
        let Some(d) = distribution::<F>(u, len)? else {
            return Ok(None);
        };
        row.assign(&d.probs());
    }
    if u.ratio(1, 4)? {
        for _ in 0..u.int_in_range(1..=3)? {
            let corruption = corruption(u, rows, len)?;
            if let Some(slot) = matrix.get_mut((corruption.row, corruption.token)) {
                *slot = corruption.value;
            }
        }
    }
    Ok(Some(matrix))
}

/// Decodes one invalid probability: negative, NaN or infinite.
fn corruption<F: KernelFuzzFloat>(
    u: &mut Unstructured,
    rows: usize,
    len: usize,
) -> Result<Corruption<F>> {
    let row = u.int_in_range(0..=rows.saturating_sub(1))?;
    let token = u.int_in_range(0..=len.saturating_sub(1))?;
    let bad = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -1.0,
        -5e-324,
        -1e-300,
    ];
    let index = u.choose_index(bad.len())?;
    let value = F::from_f64_lossy(bad.get(index).copied().unwrap_or(f64::NAN));
    Ok(Corruption { row, token, value })
}

/// Returns the first invalid entry the scalar constructor finds in `row`, as a token index.
fn first_invalid<F: KernelFuzzFloat>(row: ArrayView1<F>) -> Option<usize> {
    match Distribution::from_probs(row) {
        Err(
            Error::NonFiniteProbability { index, .. } | Error::NegativeProbability { index, .. },
        ) => Some(index),
        _ => None,
    }
}

/// Returns `(row, token, input)` of the entry a two-input kernel must report:
/// the first row with an invalid entry, its first invalid token, and the
/// first input (0 or 1) that is invalid there.
fn expected_entry<F: KernelFuzzFloat>(inputs: &[ArrayView2<F>]) -> Option<(usize, usize, usize)> {
    let rows = inputs.first()?.nrows();
    for row in 0..rows {
        let found = inputs
            .iter()
            .enumerate()
            .filter_map(|(input, matrix)| first_invalid(matrix.row(row)).map(|t| (t, input)))
            .min();
        if let Some((token, input)) = found {
            return Some((row, token, input));
        }
    }
    None
}

/// Checks a kernel error against the entry the scalar constructors report first.
fn check_entry_error(
    kernel: &str,
    error: &Error,
    expected: Option<(usize, usize, usize)>,
    names: [&str; 2],
) {
    let Some((row, token, input)) = expected else {
        panic!("{kernel} reported an error on valid entries: {error:?}");
    };
    match error {
        Error::InvalidEntry {
            what,
            row: found_row,
            index,
            ..
        } => {
            assert_eq!(
                (*found_row, *index),
                (row, token),
                "{kernel} reported another entry than the scalar path: {error:?}"
            );
            // A known kernel bug: reverse_kl_rows names its two inputs the other way round.
            if !(FOLLOW_KNOWN_KERNEL_BUGS && kernel == "reverse_kl_rows") {
                let name = names.get(input).copied().unwrap_or_default();
                assert_eq!(*what, name, "{kernel} named the wrong input: {error:?}");
            }
        }
        other => panic!("{kernel} returned {other:?} for an invalid entry"),
    }
}

/// Checks a kernel value against the scalar value within `tolerance`.
fn check_close<F: KernelFuzzFloat>(
    kernel: &str,
    row: usize,
    found: F,
    expected: F,
    tolerance: f64,
) {
    assert!(!found.is_nan(), "{kernel} row {row} is NaN");
    assert!(found >= F::zero(), "{kernel} row {row} is {found} < 0");
    if expected.is_infinite() || found.is_infinite() {
        assert!(
            found == expected,
            "{kernel} row {row}: kernel {found}, scalar path {expected}"
        );
        return;
    }
    let difference = (found.widen() - expected.widen()).abs();
    assert!(
        difference <= tolerance,
        "{kernel} row {row}: kernel {found}, scalar path {expected}, tolerance {tolerance:e}"
    );
}

/// Returns the size `Σ_i |term_i|` that bounds the rounding of a divergence of `p` and `q`.
///
/// Each path computes every token's term to a few units of roundoff of the
/// term's magnitude `p |ln(p/q)| + |p - q|`. The sums are compensated, so the
/// two results differ by a few ε times the sum of those magnitudes.
fn magnitude<F: KernelFuzzFloat>(p: &[F], q: &[F]) -> f64 {
    p.iter()
        .zip(q)
        .map(|(&pi, &qi)| {
            let (pi, qi) = (pi.widen(), qi.widen());
            let log = if pi > 0.0 && qi > 0.0 {
                (pi.ln() - qi.ln()).abs() + pi.ln().abs() + qi.ln().abs()
            } else {
                0.0
            };
            pi * log + (pi - qi).abs() + qi * qi.max(f64::MIN_POSITIVE).ln().abs()
        })
        .sum()
}

/// Returns the tolerance between a kernel and the scalar path for a row of magnitude `size`.
///
/// The kernels evaluate `ln` with their own polynomials, accurate to a few ulps.
/// They also split each term differently from the scalar path. The two paths
/// therefore agree to a small multiple of ε in every term, and 64 ε leaves
/// room for both. Entries
/// below the smallest normal number carry only absolute precision, about
/// `MIN_POSITIVE` each, times a logarithm of at most about 750.
fn tolerance<F: KernelFuzzFloat>(size: f64, len: usize) -> f64 {
    let len = len as f64;
    64.0 * F::epsilon().widen() * size + 1e3 * len * F::min_positive_value().widen()
}

/// The two inputs of the probability kernels, as their errors name them.
const PROBABILITY_NAMES: [&str; 2] = ["first probability matrix", "second probability matrix"];

/// Tells whether a pair kernel stops at token `(p_i, q_i)` and returns `+inf` for the row.
///
/// A known kernel bug (see [`FOLLOW_KNOWN_KERNEL_BUGS`]): KL, reverse KL and
/// cross-entropy return `+inf` at the first token whose term is infinite and
/// skip the entries after it, although their docs promise `InvalidEntry` for
/// every invalid entry.
fn stops_at<F: KernelFuzzFloat>(kernel: &str, pi: F, qi: F) -> bool {
    if !FOLLOW_KNOWN_KERNEL_BUGS {
        return false;
    }
    let zero = F::zero();
    match kernel {
        "kl_rows" | "cross_entropy_rows" => qi == zero && pi > zero,
        "reverse_kl_rows" => pi == zero && qi > zero,
        _ => false,
    }
}

/// Returns `(row, token, input)` of the entry a pair kernel reports: tokens
/// are read in order, `p` before `q`, and a row ends at its first infinite term.
fn expected_pair_entry<F: KernelFuzzFloat>(
    kernel: &str,
    p: ArrayView2<F>,
    q: ArrayView2<F>,
) -> Option<(usize, usize, usize)> {
    let valid = |value: F| value >= F::zero() && value.is_finite();
    for row in 0..p.nrows() {
        for (token, (&pi, &qi)) in p.row(row).iter().zip(q.row(row).iter()).enumerate() {
            if !valid(pi) {
                return Some((row, token, 0));
            }
            if !valid(qi) {
                return Some((row, token, 1));
            }
            if stops_at(kernel, pi, qi) {
                break;
            }
        }
    }
    None
}

/// Runs the five probability kernels on `p` and `q` and compares them with the scalar path.
fn probability_kernels<F: KernelFuzzFloat>(p: ArrayView2<F>, q: ArrayView2<F>) {
    let rows = p.nrows();
    let expected_p = expected_entry(&[p]);

    type Kernel<F> =
        fn(ArrayView2<F>, ArrayView2<F>, ndarray::ArrayViewMut1<F>) -> metadistill::Result<()>;
    let pair_kernels: [(&str, Kernel<F>); 4] = [
        ("kl_rows", kl_rows::<F>),
        ("reverse_kl_rows", reverse_kl_rows::<F>),
        ("js_rows", js_rows::<F>),
        ("cross_entropy_rows", cross_entropy_rows::<F>),
    ];
    for (name, kernel) in pair_kernels {
        let expected = expected_pair_entry(name, p, q);
        // The constructors of the scalar path find the same first entry when no row stops early.
        if !matches!(name, "kl_rows" | "reverse_kl_rows" | "cross_entropy_rows") {
            assert_eq!(expected, expected_entry(&[p, q]));
        }
        let mut out = Array1::from_elem(rows, F::from_f64_lossy(-7.0));
        match kernel(p, q, out.view_mut()) {
            Ok(()) => {
                assert!(
                    expected.is_none(),
                    "{name} accepted an invalid entry at {expected:?}"
                );
                for row in 0..rows {
                    compare_pair_row(name, row, p.row(row), q.row(row), out[row]);
                }
            }
            Err(error) => check_entry_error(name, &error, expected, PROBABILITY_NAMES),
        }
    }

    let mut out = Array1::from_elem(rows, F::from_f64_lossy(-7.0));
    match entropy_rows(p, out.view_mut()) {
        Ok(()) => {
            assert!(
                expected_p.is_none(),
                "entropy_rows accepted an invalid entry"
            );
            for row in 0..rows {
                let Ok(d) = Distribution::from_probs(p.row(row)) else {
                    continue;
                };
                let row_p = p.row(row).to_vec();
                let size = magnitude(&row_p, &row_p);
                let tolerance = tolerance::<F>(size, row_p.len());
                check_close("entropy_rows", row, out[row], d.entropy(), tolerance);
            }
        }
        Err(error) => check_entry_error("entropy_rows", &error, expected_p, PROBABILITY_NAMES),
    }
}

/// Compares one row of a pair kernel with the scalar function of the same divergence.
fn compare_pair_row<F: KernelFuzzFloat>(
    name: &str,
    row: usize,
    p: ArrayView1<F>,
    q: ArrayView1<F>,
    found: F,
) {
    assert!(!found.is_nan(), "{name} row {row} is NaN");
    assert!(found >= F::zero(), "{name} row {row} is {found} < 0");
    // The scalar path takes distributions only; other rows are checked for sign alone.
    let (Ok(dp), Ok(dq)) = (Distribution::from_probs(p), Distribution::from_probs(q)) else {
        return;
    };
    let scalar = match name {
        "kl_rows" => kl(&dp, &dq),
        "reverse_kl_rows" => reverse_kl(&dp, &dq),
        "js_rows" => js(&dp, &dq),
        _ => dp.cross_entropy(&dq),
    };
    let scalar = match scalar {
        Ok(value) => value,
        Err(error) => panic!("the scalar {name} failed on distributions: {error:?}"),
    };
    let (p, q) = (p.to_vec(), q.to_vec());
    let size = magnitude(&p, &q) + magnitude(&q, &p);
    check_close(name, row, found, scalar, tolerance::<F>(size, p.len()));
}

/// Decodes a logit matrix: finite values of any size, masked tokens, and sometimes NaN or `+inf`.
fn logit_matrix<F: KernelFuzzFloat>(
    u: &mut Unstructured,
    rows: usize,
    len: usize,
) -> Result<Array2<F>> {
    let mut matrix = Array2::zeros((rows, len));
    let scale = F::from_f64_lossy(f64::from(u.int_in_range(0u16..=1024)?).exp2() / 1024.0);
    for slot in matrix.iter_mut() {
        *slot = match u.int_in_range(0u8..=15)? {
            0 => F::neg_infinity(),
            1 => value(u)?,
            _ => F::from_f64_lossy(f64::from(u.arbitrary::<i16>()?) / 256.0) * scale,
        };
    }
    Ok(matrix)
}

/// Returns the reference error of the logits kernel for one row: the scalar constructor's, teacher first.
///
/// A known kernel bug (see [`FOLLOW_KNOWN_KERNEL_BUGS`]): the kernel checks the
/// tail of a row (the tokens after its last full 32-token block) before the
/// blocks, so it reports an invalid logit in the tail ahead of an earlier one.
fn logits_row_error<F: KernelFuzzFloat>(
    teacher: ArrayView1<F>,
    student: ArrayView1<F>,
    temperature: F,
) -> Option<(usize, Error)> {
    for (input, row) in [teacher, student].into_iter().enumerate() {
        let tail_start = if FOLLOW_KNOWN_KERNEL_BUGS {
            row.len() - row.len() % 32
        } else {
            row.len()
        };
        let tail = row.slice(s![tail_start..]);
        if let Err(Error::InvalidLogit { index, value }) =
            Distribution::from_logits(tail, temperature)
        {
            let index = index + tail_start;
            return Some((input, Error::InvalidLogit { index, value }));
        }
        if let Err(error @ (Error::InvalidLogit { .. } | Error::AllMasked { .. })) =
            Distribution::from_logits(row, temperature)
        {
            return Some((input, error));
        }
    }
    None
}

/// Runs `kl_from_logits_rows` and compares it with `from_logits` followed by `kl`.
fn logits_kernel<F: KernelFuzzFloat>(z: ArrayView2<F>, y: ArrayView2<F>, temperature: F) {
    let rows = z.nrows();
    let mut out = Array1::from_elem(rows, F::from_f64_lossy(-7.0));
    let result = kl_from_logits_rows(z, y, temperature, out.view_mut());
    if !(temperature > F::zero() && temperature.is_finite()) {
        assert!(
            matches!(result, Err(Error::InvalidTemperature { .. })),
            "kl_from_logits_rows accepted temperature {temperature}: {result:?}"
        );
        return;
    }
    let first_bad = (0..rows).find_map(|row| {
        logits_row_error(z.row(row), y.row(row), temperature).map(|(input, e)| (row, input, e))
    });
    // A known kernel bug: the kernel multiplies by 1/T, which overflows for
    // subnormal T, and then returns wrong values.
    let reciprocal_overflows = (F::one() / temperature).is_infinite();
    if FOLLOW_KNOWN_KERNEL_BUGS && reciprocal_overflows {
        return;
    }
    match (result, first_bad) {
        (Ok(()), None) => {
            for row in 0..rows {
                compare_logits_row(row, z.row(row), y.row(row), temperature, out[row]);
            }
        }
        (Ok(()), Some(bad)) => {
            panic!("kl_from_logits_rows accepted a row the scalar path rejects: {bad:?}")
        }
        (Err(error), None) => panic!("kl_from_logits_rows rejected valid logits: {error:?}"),
        (Err(error), Some((row, input, scalar))) => match (&error, &scalar) {
            (
                Error::InvalidEntry {
                    what,
                    row: r,
                    index,
                    ..
                },
                Error::InvalidLogit { index: i, .. },
            ) => {
                assert_eq!(
                    (*r, *index),
                    (row, *i),
                    "kernel {error:?}, scalar {scalar:?}"
                );
                let names = ["teacher logits", "student logits"];
                assert_eq!(
                    Some(what),
                    names.get(input),
                    "kernel {error:?}, scalar {scalar:?}"
                );
            }
            (Error::InRow { row: r, source }, Error::AllMasked { count }) => {
                assert_eq!(*r, row, "kernel {error:?}, scalar {scalar:?}");
                assert!(
                    matches!(source.as_ref(), Error::AllMasked { count: c } if c == count),
                    "kernel {error:?}, scalar {scalar:?}"
                );
            }
            _ => panic!("kernel {error:?}, scalar {scalar:?} at row {row}"),
        },
    }
}

/// Compares one row of the logits kernel with the scalar path.
fn compare_logits_row<F: KernelFuzzFloat>(
    row: usize,
    z: ArrayView1<F>,
    y: ArrayView1<F>,
    temperature: F,
    found: F,
) {
    assert!(!found.is_nan(), "kl_from_logits_rows row {row} is NaN");
    assert!(
        found >= F::zero(),
        "kl_from_logits_rows row {row} is {found}"
    );
    let (Ok(p), Ok(q)) = (
        Distribution::from_logits(z, temperature),
        Distribution::from_logits(y, temperature),
    ) else {
        panic!("the scalar path rejected logits the kernel accepted at row {row}");
    };
    // A student probability that underflows to 0 makes the scalar KL +inf, while
    // the kernel keeps ln q finite, so the two results differ by design.
    let underflow = q
        .as_slice()
        .iter()
        .zip(y.iter())
        .any(|(&qi, &yi)| qi.is_zero() && yi > F::neg_infinity());
    let Ok(scalar) = kl(&p, &q) else {
        panic!("the scalar KL failed on distributions at row {row}");
    };
    if underflow && scalar.is_infinite() {
        return;
    }
    // A known kernel bug: the kernel flushes a teacher probability below the
    // smallest normal number to 0. A token the student masks there then gives
    // a finite row, not +inf.
    let subnormal_masked = p
        .as_slice()
        .iter()
        .zip(q.as_slice())
        .any(|(&pi, &qi)| pi > F::zero() && pi < F::min_positive_value() && qi.is_zero());
    if FOLLOW_KNOWN_KERNEL_BUGS && subnormal_masked {
        return;
    }
    // ln p_i = z_i/T - ln Σ e^(z_j/T) rounds to ε (|z_i/T| + |ln Σ|) in each
    // path, and each token's term carries that error times p_i.
    let lse = |d: &Distribution<F>, x: ArrayView1<F>| -> f64 {
        d.log_probs()
            .iter()
            .zip(x.iter())
            .filter(|(l, _)| l.is_finite())
            .map(|(&l, &xi)| (xi.widen() / temperature.widen() - l.widen()).abs())
            .fold(0.0, f64::max)
    };
    // Masked tokens give inf - inf = NaN in this bound; count them as unbounded.
    let shift = lse(&p, z) + lse(&q, y);
    let shift = if shift.is_nan() { f64::INFINITY } else { shift };
    let size: f64 = p
        .as_slice()
        .iter()
        .zip(z.iter().zip(y.iter()))
        .map(|(&pi, (&zi, &yi))| {
            if pi.is_zero() {
                return 0.0;
            }
            let scaled = (zi.widen().abs() + yi.widen().abs()) / temperature.widen();
            pi.widen() * (scaled.min(f64::MAX) + shift + 1.0)
        })
        .sum::<f64>()
        + magnitude(p.as_slice(), q.as_slice());
    // A token the student masks and the teacher does not makes the exact KL
    // +inf, which the kernel returns (its docs say so) even where the
    // teacher's probability rounds to 0 and the scalar path gives a finite value.
    let masked_by_student_only = z
        .iter()
        .zip(y.iter())
        .any(|(&zi, &yi)| yi == F::neg_infinity() && zi > F::neg_infinity());
    if masked_by_student_only {
        assert!(
            found.is_infinite(),
            "kl_from_logits_rows row {row}: kernel {found} where the student masks a teacher token"
        );
        return;
    }
    if found.is_infinite() != scalar.is_infinite() {
        panic!(
            "kl_from_logits_rows row {row}: kernel {found}, scalar {scalar}\nT = {temperature}\nz = {z}\ny = {y}\np = {}\nq = {}",
            p.probs(),
            q.probs()
        );
    }
    // The scalar path stores q_i, and a subnormal q_i keeps only the absolute
    // precision of the subnormal spacing, so ln q_i is off by up to spacing / q_i.
    // The kernel keeps ln q_i itself (a KL of 544 nats showed the difference).
    let spacing = F::min_positive_value().widen() * F::epsilon().widen();
    let subnormal: f64 = p
        .as_slice()
        .iter()
        .zip(q.as_slice())
        .filter(|&(_, &qi)| qi > F::zero() && qi < F::min_positive_value())
        .map(|(&pi, &qi)| pi.widen() * (spacing / qi.widen()))
        .sum();
    check_close(
        "kl_from_logits_rows",
        row,
        found,
        scalar,
        tolerance::<F>(size, z.len()) + 2.0 * subnormal,
    );
}

/// Runs `mixture_into` and compares every row with `ConvexMixture::build`.
fn mixture_kernel<F: KernelFuzzFloat>(
    anchor: F,
    teacher: ArrayView2<F>,
    student: ArrayView2<F>,
    mut out: ArrayViewMut2<F>,
) {
    let result = mixture_into(anchor, teacher, student, out.view_mut());
    let anchor_ok = anchor >= F::zero() && anchor <= F::one();
    let Ok(()) = result else {
        let error = result.err();
        if !anchor_ok {
            assert!(
                matches!(error, Some(Error::InvalidAnchorWeight { .. })),
                "{error:?}"
            );
        } else {
            assert!(
                matches!(
                    error,
                    Some(Error::BatchSizeMismatch { .. } | Error::VocabularyMismatch { .. })
                ),
                "mixture_into returned {error:?}"
            );
        }
        return;
    };
    assert!(anchor_ok, "mixture_into accepted anchor {anchor}");
    let mixture = if anchor.is_zero() {
        ConvexMixture::unanchored()
    } else {
        match ConvexMixture::new(anchor) {
            Ok(mixture) => mixture,
            Err(error) => panic!("ConvexMixture rejected anchor {anchor}: {error:?}"),
        }
    };
    for row in 0..teacher.nrows() {
        let (Ok(t), Ok(s)) = (
            Distribution::from_probs(teacher.row(row)),
            Distribution::from_probs(student.row(row)),
        ) else {
            continue;
        };
        let Ok(q) = mixture.build(&[t], &[s]) else {
            continue;
        };
        // Both compute a t + (1 - a) s with the same two roundings.
        for (token, (&found, &expected)) in out.row(row).iter().zip(q.as_slice()).enumerate() {
            assert!(
                found == expected,
                "mixture_into row {row} token {token}: {found}, ConvexMixture {expected}"
            );
        }
    }
}

/// Runs `geometric_pool_into` and compares every row with the power mean of order 0.
fn pool_kernel<F: KernelFuzzFloat>(
    inputs: &[ArrayView2<F>],
    weights: &[F],
    rows: usize,
    len: usize,
) {
    let mut out = Array2::from_elem((rows, len), F::from_f64_lossy(-7.0));
    let result = geometric_pool_into(inputs, weights, out.view_mut());
    let bad_rows: Vec<usize> = (0..rows)
        .filter(|&row| expected_pool_entry(inputs, weights, row).is_some())
        .collect();
    let Ok(()) = result else {
        let error = result.err();
        match &error {
            Some(Error::InvalidEntry { row, index, .. }) => {
                // Rows run in parallel, so any row with an invalid entry may be reported.
                assert!(bad_rows.contains(row), "{error:?} names a valid row");
                let first = expected_pool_entry(inputs, weights, *row);
                assert_eq!(Some(*index), first, "geometric_pool_into: {error:?}");
            }
            Some(Error::EmptySupport { row }) => {
                assert!(*row < rows);
                let points: Vec<ArrayView1<F>> =
                    inputs.iter().map(|input| input.row(*row)).collect();
                if let Some(Ok(())) = scalar_pool(&points, weights, len).map(|(r, _)| r) {
                    panic!("geometric_pool_into: {error:?}, but the scalar power mean exists");
                }
            }
            Some(
                Error::Empty { .. }
                | Error::LengthMismatch { .. }
                | Error::InvalidWeight { .. }
                | Error::AllZeroWeights { .. }
                | Error::BatchSizeMismatch { .. }
                | Error::VocabularyMismatch { .. },
            ) => {}
            other => panic!("geometric_pool_into returned an undocumented error: {other:?}"),
        }
        return;
    };
    assert!(
        bad_rows.is_empty(),
        "geometric_pool_into accepted invalid entries in rows {bad_rows:?}"
    );
    // A known kernel bug: the pool divides the weights by their plain sum, which
    // overflows for weights near the largest float and leaves every weight 0.
    let total: F = weights.iter().copied().sum();
    if FOLLOW_KNOWN_KERNEL_BUGS && total.is_infinite() {
        return;
    }
    for row in 0..rows {
        let points: Vec<ArrayView1<F>> = inputs.iter().map(|input| input.row(row)).collect();
        let Some((result, expected)) = scalar_pool(&points, weights, len) else {
            continue;
        };
        match result {
            Ok(()) => {
                for (token, (&found, &wanted)) in out.row(row).iter().zip(&expected).enumerate() {
                    // Σ_k w_k ln P_k rounds to ε Σ_k w_k |ln P_k| per token; exp turns
                    // that into a relative error, and the normalization adds a few ε.
                    let logs: f64 = points
                        .iter()
                        .map(|p| p[token].widen().max(f64::MIN_POSITIVE).ln().abs())
                        .sum();
                    let relative = 64.0 * F::epsilon().widen() * (1.0 + 2.0 * logs);
                    let allowed = relative * wanted.widen() + 1e3 * F::min_positive_value().widen();
                    assert!(
                        (found.widen() - wanted.widen()).abs() <= allowed,
                        "geometric_pool_into row {row} token {token}: {found}, power mean {wanted}"
                    );
                }
            }
            Err(error) => {
                panic!("geometric_pool_into pooled row {row}, the power mean failed: {error:?}")
            }
        }
    }
}

/// Returns the token of the invalid entry `geometric_pool_into` reports in `row`.
///
/// A known kernel bug (see [`FOLLOW_KNOWN_KERNEL_BUGS`]): at each token the
/// pool reads the inputs in order and stops at the first input of positive
/// weight that is 0, without checking the inputs after it, although its docs
/// promise `InvalidEntry` for every invalid entry.
fn expected_pool_entry<F: KernelFuzzFloat>(
    inputs: &[ArrayView2<F>],
    weights: &[F],
    row: usize,
) -> Option<usize> {
    let total: F = weights.iter().copied().sum();
    let len = inputs.first()?.ncols();
    (0..len).find(|&token| {
        for (input, &weight) in inputs.iter().zip(weights) {
            let value = input[[row, token]];
            if !(value >= F::zero() && value.is_finite()) {
                return true;
            }
            if FOLLOW_KNOWN_KERNEL_BUGS && !(weight / total).is_zero() && value.is_zero() {
                return false;
            }
        }
        false
    })
}

/// Computes the weighted geometric mean of one row with `power_mean_into`, or
/// `None` when its inputs are not distributions or the weights not valid.
fn scalar_pool<F: KernelFuzzFloat>(
    points: &[ArrayView1<F>],
    weights: &[F],
    len: usize,
) -> Option<(metadistill::Result<()>, Vec<F>)> {
    if points.iter().any(|p| Distribution::from_probs(*p).is_err()) {
        return None;
    }
    let normalized = Weights::normalize(weights).ok()?;
    let mut out = Array1::zeros(len);
    let result = power_mean_into(F::zero(), points, normalized.as_slice(), out.view_mut());
    if let Err(Error::DisjointSupports { .. }) = result {
        return Some((result, Vec::new()));
    }
    Some((result, out.to_vec()))
}

fn run<F: KernelFuzzFloat>(u: &mut Unstructured) -> Result<()> {
    let rows = u.int_in_range(0..=MAX_ROWS)?;
    let len = u.int_in_range(0..=MAX_TOKENS)?;
    let layouts: [u8; 2] = [u.int_in_range(0..=2)?, u.int_in_range(0..=2)?];

    let Some(p) = probability_matrix::<F>(u, rows, len)? else {
        return Ok(());
    };
    let q = if u.ratio(1, 8)? {
        p.clone()
    } else {
        match probability_matrix::<F>(u, rows, len)? {
            Some(q) => q,
            None => return Ok(()),
        }
    };
    let (p_stored, q_stored) = (Stored::new(&p, layouts[0]), Stored::new(&q, layouts[1]));
    probability_kernels(p_stored.view(), q_stored.view());

    let anchor = weight_like::<F>(u)?;
    let out_shape = if u.ratio(7, 8)? {
        (rows, len)
    } else {
        (rows, len + 1)
    };
    let mut out = Array2::zeros(out_shape);
    mixture_kernel(anchor, p_stored.view(), q_stored.view(), out.view_mut());

    let weights: Vec<F> = (0..u.int_in_range(0..=3)?)
        .map(|_| weight_like(u))
        .collect::<Result<_>>()?;
    let inputs = [p_stored.view(), q_stored.view(), p_stored.view()];
    let count = weights.len().min(inputs.len());
    pool_kernel(inputs.get(..count).unwrap_or_default(), &weights, rows, len);

    let z = logit_matrix::<F>(u, rows, len)?;
    let y = if u.ratio(1, 8)? {
        z.clone()
    } else {
        logit_matrix::<F>(u, rows, len)?
    };
    let temperature = if u.ratio(1, 2)? {
        F::from_f64_lossy(f64::from(u.int_in_range(1u8..=40)?) / 10.0)
    } else {
        value(u)?
    };
    let (z_stored, y_stored) = (Stored::new(&z, layouts[1]), Stored::new(&y, layouts[0]));
    logits_kernel(z_stored.view(), y_stored.view(), temperature);
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let _ = if u.arbitrary::<bool>().unwrap_or(false) {
        run::<f32>(&mut u)
    } else {
        run::<f64>(&mut u)
    };
});
