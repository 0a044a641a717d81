//! The fused batched kernels against the scalar divergences of the crate.
//!
//! The scalar functions of `metadistill::divergence` are accurate to about
//! `1e-13` relative against 60-digit references. The kernels must agree with
//! them to the same order on `f64` (and to about `1e-5` on `f32`). That
//! includes near-equal pairs and entries near the smallest normal number,
//! where the textbook formula keeps no correct digit.
//!
//! Most checks are generic functions run for f32 and for f64, and each f32
//! kernel is compared with the f32 scalar path on the same inputs.
//! Tolerances are multiples of the type's machine epsilon `ε`
//! (2.22e-16 for f64, 1.19e-7 for f32), with the reason next to each.

use metadistill::divergence::{Divergence, kl};
use metadistill::kernels::{
    KernelFloat, cross_entropy_rows, entropy_rows, js_rows, kl_from_logits_rows, kl_rows,
    reverse_kl_rows,
};
use metadistill::{Distribution, DistributionBatch, Real};
use ndarray::{Array1, Array2, ArrayView2, Axis};

/// A small seeded generator (SplitMix64).
struct SplitMix(u64);

impl SplitMix {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Runs each generic check for `f32` and for `f64`.
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

for_both_floats!(
    random_rows_match_scalar_path,
    near_equal_rows_match_scalar_path,
    ratios_across_the_band_edges_match_scalar_path,
    entries_near_smallest_normal_match_scalar_path,
    zeros_give_conventions_of_scalar_path,
    cross_entropy_and_entropy_match_distribution_methods,
    strided_views_match_contiguous,
    per_row_and_expected_use_the_same_values,
    logits_match_scalar_softmax_then_kl,
    logits_near_equal_keep_relative_accuracy,
    logits_with_masked_tokens,
);

/// Converts an `f64` value to `F`, rounding to nearest for f32.
fn c<F: Real>(value: f64) -> F {
    F::from(value).expect("finite f64 values convert to f32 and f64")
}

/// Converts `F` to `f64`, exactly for f32 and f64.
fn widen<F: Real>(value: F) -> f64 {
    value.to_f64().expect("f32 and f64 convert to f64")
}

/// Returns `multiple` times the machine epsilon of `F`, as `f64`.
fn eps<F: Real>(multiple: f64) -> f64 {
    multiple * widen(F::epsilon())
}

/// Relative tolerance, in ε, between a row kernel and the scalar path of the same type.
///
/// The scalar path is held to 1e-13 relative against 60-digit references on
/// f64, which is 450 ε, and the kernel to the same multiple on both types
/// (5.4e-5 on f32). Both evaluate the same per-token terms, each to a few ε,
/// but sum up to 4099 of them in a different order. The largest gap these
/// tests measured was 13 ε on f32 and 11 ε on f64, both on the row with
/// masked logits, on x86-64 with AVX2 and FMA.
const ROW_TOLERANCE_EPS: f64 = 450.0;

/// Returns `rows` random distributions over `columns` tokens with probabilities spanning `e^-spread .. 1`.
///
/// The rows are normalized in f64 and then rounded to `F`, so an f32 row
/// sums to 1 within about `√V ε`, which the scalar constructors accept.
fn random_rows<F: Real>(rng: &mut SplitMix, rows: usize, columns: usize, spread: f64) -> Array2<F> {
    let mut matrix = Array2::from_shape_simple_fn((rows, columns), || (-spread * rng.unit()).exp());
    for mut row in matrix.rows_mut() {
        let sum: f64 = row.sum();
        row.mapv_inplace(|value| value / sum);
    }
    matrix.mapv(c::<F>)
}

/// Returns `p (1 + d s_i)` with random signs `s_i`, renormalized in f64 and rounded to `F`.
fn perturbed<F: Real>(rng: &mut SplitMix, p: &Array2<F>, d: f64) -> Array2<F> {
    let mut q = p.mapv(|value| widen(value) * (1.0 + if rng.unit() < 0.5 { -d } else { d }));
    for mut row in q.rows_mut() {
        let sum: f64 = row.sum();
        row.mapv_inplace(|value| value / sum);
    }
    q.mapv(c::<F>)
}

/// Divides every row by its sum in `F`.
fn normalize_rows<F: Real>(matrix: &mut Array2<F>) {
    for mut row in matrix.rows_mut() {
        let sum: F = row.sum();
        row.mapv_inplace(|value| value / sum);
    }
}

type RowsFn<F> =
    fn(ArrayView2<F>, ArrayView2<F>, ndarray::ArrayViewMut1<F>) -> metadistill::Result<()>;

/// Computes the kernel on every row.
fn kernel_values<F: KernelFloat>(kernel: RowsFn<F>, p: &Array2<F>, q: &Array2<F>) -> Array1<F> {
    let mut out = Array1::zeros(p.nrows());
    kernel(p.view(), q.view(), out.view_mut()).expect("kernel accepts valid rows");
    out
}

/// Computes the scalar divergence of every row from `Distribution`s.
fn scalar_values<F: Real>(divergence: Divergence<F>, p: &Array2<F>, q: &Array2<F>) -> Vec<F> {
    p.rows()
        .into_iter()
        .zip(q.rows())
        .map(|(p_row, q_row)| {
            let p_row = Distribution::from_probs(p_row).expect("valid row");
            let q_row = Distribution::from_probs(q_row).expect("valid row");
            divergence
                .compute(&p_row, &q_row)
                .expect("scalar divergence")
        })
        .collect()
}

fn assert_close(got: f64, expected: f64, tolerance: f64, context: &str) {
    if expected.is_infinite() {
        assert_eq!(
            got.to_bits(),
            expected.to_bits(),
            "{context}: kernel {got}, scalar {expected}"
        );
        return;
    }
    let scale = expected.abs().max(f64::MIN_POSITIVE);
    assert!(
        (got - expected).abs() <= tolerance * scale,
        "{context}: kernel {got:e}, scalar {expected:e}, relative {:e}",
        (got - expected).abs() / scale
    );
}

fn check_divergences<F: KernelFloat>(p: &Array2<F>, q: &Array2<F>, tolerance: f64, context: &str) {
    let cases: [(&str, RowsFn<F>, Divergence<F>); 3] = [
        ("KL", kl_rows, Divergence::KullbackLeibler),
        (
            "reverse KL",
            reverse_kl_rows,
            Divergence::ReverseKullbackLeibler,
        ),
        ("JS", js_rows, Divergence::JensenShannon),
    ];
    for (name, kernel, divergence) in cases {
        let got = kernel_values(kernel, p, q);
        let expected = scalar_values(divergence, p, q);
        for (row, (&g, &e)) in got.iter().zip(&expected).enumerate() {
            let context = format!("{name} {context} row {row}");
            assert_close(widen(g), widen(e), tolerance, &context);
        }
    }
}

fn random_rows_match_scalar_path<F: KernelFloat>() {
    let mut rng = SplitMix(11);
    let tolerance = eps::<F>(ROW_TOLERANCE_EPS);
    for columns in [1, 3, 15, 16, 17, 1000, 4099] {
        for spread in [1.0, 30.0] {
            let p = random_rows::<F>(&mut rng, 4, columns, spread);
            let q = random_rows::<F>(&mut rng, 4, columns, spread);
            check_divergences(&p, &q, tolerance, &format!("V={columns} spread={spread}"));
        }
    }
}

fn near_equal_rows_match_scalar_path<F: KernelFloat>() {
    let mut rng = SplitMix(12);
    let tolerance = eps::<F>(ROW_TOLERANCE_EPS);
    for d in [1e-1, 1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12] {
        let p = random_rows::<F>(&mut rng, 3, 2053, 20.0);
        let q = perturbed(&mut rng, &p, d);
        check_divergences(&p, &q, tolerance, &format!("d={d:e}"));
    }
}

fn ratios_across_the_band_edges_match_scalar_path<F: KernelFloat>() {
    // Ratios q/p on both sides of √2, 2 and their inverses, and far beyond.
    let ratios = [
        1.414,
        1.4143,
        1.999,
        2.001,
        std::f64::consts::FRAC_1_SQRT_2 * 0.9999,
        0.70712,
        0.49,
        0.51,
        1e-9,
        1e9,
    ];
    let columns = 64;
    let mut p = Array2::<F>::zeros((ratios.len(), columns));
    let mut q = Array2::<F>::zeros((ratios.len(), columns));
    for (row, &ratio) in ratios.iter().enumerate() {
        for column in 0..columns {
            let base = c::<F>(1.0 + column as f64);
            p[[row, column]] = base;
            q[[row, column]] = if column % 2 == 0 {
                base * c(ratio)
            } else {
                base
            };
        }
    }
    normalize_rows(&mut p);
    normalize_rows(&mut q);
    check_divergences(&p, &q, eps::<F>(ROW_TOLERANCE_EPS), "band edges");
}

fn entries_near_smallest_normal_match_scalar_path<F: KernelFloat>() {
    let mut rng = SplitMix(13);
    let columns = 96;
    let smallest_normal = F::min_positive_value();
    let mut p = Array2::<F>::zeros((2, columns));
    for column in 0..columns {
        // Half the entries between 1 and 1000 times the smallest normal number.
        p[[0, column]] = if column % 2 == 0 {
            smallest_normal * c(1.0 + 999.0 * rng.unit())
        } else {
            c(rng.unit() + 0.01)
        };
        p[[1, column]] = smallest_normal * c(2.0 + rng.unit());
    }
    p[[1, 0]] = F::one();
    normalize_rows(&mut p);
    let tolerance = eps::<F>(ROW_TOLERANCE_EPS);
    for d in [1e-3, 1e-8] {
        let q = perturbed(&mut rng, &p, d);
        check_divergences(&p, &q, tolerance, &format!("tiny entries d={d:e}"));
    }
}

fn zeros_give_conventions_of_scalar_path<F: KernelFloat>() {
    let p = Array2::from_shape_vec(
        (1, 20),
        (0..20)
            .map(|i| if i < 10 { c::<F>(0.1) } else { F::zero() })
            .collect(),
    )
    .expect("shape");
    let q = Array2::from_shape_vec((1, 20), vec![c::<F>(0.05); 20]).expect("shape");
    // Ten equal nonzero terms leave a few roundings per path, so 45 ε
    // (1e-14 on f64, 5.4e-6 on f32) is ample. Both paths agreed exactly here.
    check_divergences(&p, &q, eps::<F>(45.0), "zeros in p");

    let mut out = Array1::zeros(1);
    kl_rows(q.view(), p.view(), out.view_mut()).expect("valid rows");
    assert_eq!(out[0], F::infinity());
}

fn cross_entropy_and_entropy_match_distribution_methods<F: KernelFloat>() {
    let mut rng = SplitMix(14);
    let tolerance = eps::<F>(ROW_TOLERANCE_EPS);
    for columns in [5, 1000, 2051] {
        let p = random_rows::<F>(&mut rng, 3, columns, 25.0);
        let q = perturbed(&mut rng, &p, 0.3);
        let cross = kernel_values(cross_entropy_rows, &p, &q);
        let mut entropy = Array1::zeros(3);
        entropy_rows(p.view(), entropy.view_mut()).expect("valid rows");
        for row in 0..3 {
            let p_row = Distribution::from_probs(p.row(row)).expect("valid row");
            let q_row = Distribution::from_probs(q.row(row)).expect("valid row");
            let expected = p_row.cross_entropy(&q_row).expect("same vocabulary");
            let context = format!("V={columns} row {row}");
            assert_close(
                widen(cross[row]),
                widen(expected),
                tolerance,
                &format!("cross-entropy {context}"),
            );
            assert_close(
                widen(entropy[row]),
                widen(p_row.entropy()),
                tolerance,
                &format!("entropy {context}"),
            );
        }
    }
}

#[test]
fn f32_rows_match_scalar_path() {
    let mut rng = SplitMix(15);
    for d in [0.5, 1e-2, 1e-4] {
        let p = random_rows::<f64>(&mut rng, 3, 1031, 15.0).mapv(|value| value as f32);
        let q = perturbed(&mut rng, &p.mapv(f64::from), d).mapv(|value| value as f32);
        let cases: [(RowsFn<f32>, Divergence<f32>); 3] = [
            (kl_rows, Divergence::KullbackLeibler),
            (reverse_kl_rows, Divergence::ReverseKullbackLeibler),
            (js_rows, Divergence::JensenShannon),
        ];
        for (kernel, divergence) in cases {
            let got = kernel_values(kernel, &p, &q);
            let expected = scalar_values(divergence, &p, &q);
            for (&g, &e) in got.iter().zip(&expected) {
                assert_close(f64::from(g), f64::from(e), 2e-5, &format!("f32 d={d:e}"));
            }
        }
    }
}

fn strided_views_match_contiguous<F: KernelFloat>() {
    let mut rng = SplitMix(16);
    let p = random_rows::<F>(&mut rng, 40, 37, 10.0);
    let q = random_rows::<F>(&mut rng, 40, 37, 10.0);
    // Transposed storage: each row of the view has stride 37... of the original columns.
    let p_columns = p.t().to_owned();
    let q_columns = q.t().to_owned();
    let mut strided = Array1::zeros(40);
    kl_rows(p_columns.t(), q_columns.t(), strided.view_mut()).expect("valid rows");
    let contiguous = kernel_values(kl_rows, &p, &q);
    // The same values in another memory layout may only be summed in another
    // order, so 4.5 ε (1e-15 on f64, 5.4e-7 on f32) suffices. Both agreed exactly.
    let tolerance = eps::<F>(4.5);
    for row in 0..40 {
        let context = format!("strided row {row}");
        assert_close(
            widen(strided[row]),
            widen(contiguous[row]),
            tolerance,
            &context,
        );
    }
}

fn per_row_and_expected_use_the_same_values<F: KernelFloat>() {
    let mut rng = SplitMix(17);
    let p = random_rows::<F>(&mut rng, 5, 300, 12.0);
    let q = perturbed(&mut rng, &p, 1e-6);
    let teacher = DistributionBatch::from_probs(&p).expect("valid batch");
    let student = DistributionBatch::from_probs(&q).expect("valid batch");
    let per_row = Divergence::KullbackLeibler
        .per_row(&teacher, &student)
        .expect("same shape");
    let kernel = kernel_values(kl_rows, &p, &q);
    assert_eq!(per_row, kernel);

    let expected = Divergence::KullbackLeibler
        .expected(&teacher, &student)
        .expect("same weights");
    let mean = per_row.sum() / c::<F>(5.0);
    // `expected` sums five values with compensation and the mean here
    // rounds each addition to ε/2, so they differ by a few ε. 45 ε is
    // 1e-14 on f64 and 5.4e-6 on f32.
    assert_close(widen(expected), widen(mean), eps::<F>(45.0), "expected");
    for row in 0..5 {
        let scalar = kl(
            &teacher.distribution(row).expect("row"),
            &student.distribution(row).expect("row"),
        )
        .expect("same vocabulary");
        let context = format!("per_row row {row}");
        let tolerance = eps::<F>(ROW_TOLERANCE_EPS);
        assert_close(widen(per_row[row]), widen(scalar), tolerance, &context);
    }
}

/// Computes the scalar KL of the tempered softmax distributions of two logit rows.
fn scalar_logits_kl<F: Real>(teacher: &Array2<F>, student: &Array2<F>, temperature: F) -> Vec<F> {
    teacher
        .axis_iter(Axis(0))
        .zip(student.axis_iter(Axis(0)))
        .map(|(t, s)| {
            let p = Distribution::from_logits(t, temperature).expect("valid logits");
            let q = Distribution::from_logits(s, temperature).expect("valid logits");
            kl(&p, &q).expect("same vocabulary")
        })
        .collect()
}

fn logits_match_scalar_softmax_then_kl<F: KernelFloat>() {
    let mut rng = SplitMix(18);
    for columns in [2, 17, 1000, 3001] {
        for temperature in [0.5, 1.0, 4.0] {
            let teacher =
                Array2::from_shape_simple_fn((3, columns), || c::<F>(16.0 * rng.unit() - 8.0));
            let student = teacher.mapv(|z| z + c::<F>(2.0 * rng.unit() - 1.0));
            let mut out = Array1::zeros(3);
            kl_from_logits_rows(
                teacher.view(),
                student.view(),
                c(temperature),
                out.view_mut(),
            )
            .expect("valid logits");
            let expected = scalar_logits_kl(&teacher, &student, c(temperature));
            for row in 0..3 {
                // The tolerance is 4500 ε relative (1e-12 on f64, 5.4e-4 on f32) because
                // both paths shift the logits, exponentiate and take a log-sum first. The scalar reference rounds each probability to ε first,
                // which costs it up to a few ε absolute when one token holds nearly all
                // the mass. On f32 that slack dominates for KL values below about 1e-3.
                let expected = widen(expected[row]);
                let slack = eps::<F>(4.0) / expected;
                let context = format!("logits V={columns} T={temperature} row {row}");
                assert_close(
                    widen(out[row]),
                    expected,
                    eps::<F>(4500.0) + slack,
                    &context,
                );
            }
        }
    }
}

/// Returns `KL(softmax(z) ‖ softmax(z + δ))` by a formula that keeps its
/// relative accuracy for small `δ`: with `p = softmax(z)`,
///
/// ```text
/// KL = -Σ p δ + ln Σ p e^δ = -Σ p δ + ln_1p(Σ p (e^δ - 1))
/// ```
///
/// The two parts are of size `|δ|` and cancel to `Var_p(δ)/2`, so the
/// result is good to about `ε/|δ|` relative.
fn near_equal_logits_kl(z: &[f64], delta: &[f64]) -> f64 {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = z.iter().map(|&value| (value - max).exp()).collect();
    let total: f64 = weights.iter().sum();
    let mut linear = 0.0;
    let mut growth = 0.0;
    for (&weight, &d) in weights.iter().zip(delta) {
        let p = weight / total;
        linear -= p * d;
        growth += p * d.exp_m1();
    }
    linear + growth.ln_1p()
}

fn logits_near_equal_keep_relative_accuracy<F: KernelFloat>() {
    let mut rng = SplitMix(44);
    // The kernel's error is about 8 ε/|δ| relative (see below). On f32 that
    // reaches 0.95 at |δ| = 1e-6, so f32 stops at 1e-4, where it is 1e-2.
    let sizes: &[f64] = if widen(F::epsilon()) > 1e-10 {
        &[1e-2, 1e-3, 1e-4]
    } else {
        &[1e-2, 1e-4, 1e-6]
    };
    for &size in sizes {
        for columns in [40, 1000, 4099] {
            let teacher =
                Array2::from_shape_simple_fn((2, columns), || c::<F>(16.0 * rng.unit() - 8.0));
            let delta = Array2::from_shape_simple_fn((2, columns), || {
                c::<F>(size * (2.0 * rng.unit() - 1.0))
            });
            let student = &teacher + &delta;
            let mut out = Array1::zeros(2);
            kl_from_logits_rows(teacher.view(), student.view(), F::one(), out.view_mut())
                .expect("valid logits");
            for row in 0..2 {
                // The reference runs in f64 on the f32 inputs, which widen exactly.
                // It needs f64 because in f32 it would be good only to about
                // ε/|δ| = 1.2e-3 at |δ| = 1e-4, no better than the kernel itself,
                // and the scalar f32 softmax-then-KL path, which rounds each
                // probability to ε first, keeps no digit of a KL near
                // Var(δ)/2 ≈ 2e-9.
                let z: Vec<f64> = teacher.row(row).iter().map(|&t| widen(t)).collect();
                // The student's logits are rounded sums: take δ as stored.
                let d: Vec<f64> = student
                    .row(row)
                    .iter()
                    .zip(&z)
                    .map(|(&s, t)| widen(s) - t)
                    .collect();
                let expected = near_equal_logits_kl(&z, &d);
                // The reference is good to about ε/|δ| of f64. The kernel is good
                // to about 8 ε/|δ| of its own type plus 4500 ε (1e-12 on f64),
                // because rounding the logits minus their maximum moves each δ by
                // up to 8 ε absolute, half an ulp of 16, the largest |z - max|
                // here. On f32 at |δ| = 1e-4 that allows 1.0e-2, and 4.6e-4 was
                // measured.
                let tolerance = eps::<F>(4500.0) + eps::<F>(8.0) / size;
                assert_close(
                    widen(out[row]),
                    expected,
                    tolerance,
                    &format!("δ = {size:e}, V = {columns}"),
                );
            }
        }
    }
}

fn logits_with_masked_tokens<F: KernelFloat>() {
    let mut teacher =
        Array2::from_shape_fn((2, 40), |(row, column)| c::<F>((row + column) as f64 * 0.1));
    let mut student = Array2::from_shape_fn((2, 40), |(row, column)| {
        c::<F>((2 * row + column) as f64 * 0.07)
    });
    teacher[[0, 3]] = F::neg_infinity();
    teacher[[0, 35]] = F::neg_infinity();
    student[[0, 35]] = F::neg_infinity();
    student[[1, 5]] = F::neg_infinity();
    let mut out = Array1::zeros(2);
    kl_from_logits_rows(teacher.view(), student.view(), F::one(), out.view_mut())
        .expect("valid logits");
    let expected = scalar_logits_kl(
        &teacher.select(Axis(0), &[0]),
        &student.select(Axis(0), &[0]),
        F::one(),
    );
    let tolerance = eps::<F>(ROW_TOLERANCE_EPS);
    assert_close(
        widen(out[0]),
        widen(expected[0]),
        tolerance,
        "masked tokens",
    );
    assert_eq!(out[1], F::infinity());
}

#[test]
fn logits_f32_match_f64() {
    let mut rng = SplitMix(19);
    let teacher = Array2::from_shape_simple_fn((2, 5000), || 10.0 * rng.unit() - 5.0);
    let student = teacher.mapv(|z| z + rng.unit() - 0.5);
    let mut exact = Array1::zeros(2);
    kl_from_logits_rows(teacher.view(), student.view(), 1.0, exact.view_mut())
        .expect("valid logits");
    let teacher32 = teacher.mapv(|z| z as f32);
    let student32 = student.mapv(|z| z as f32);
    let mut single = Array1::<f32>::zeros(2);
    kl_from_logits_rows(teacher32.view(), student32.view(), 1.0, single.view_mut())
        .expect("valid logits");
    for row in 0..2 {
        assert_close(f64::from(single[row]), exact[row], 1e-4, "f32 logits");
    }
}
