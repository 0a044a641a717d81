//! The fused batched kernels against the scalar divergences of the crate.
//!
//! The scalar functions of `metadistill::divergence` are accurate to about
//! `1e-13` relative against 60-digit references. The kernels must agree with
//! them to the same order on `f64` (and to about `1e-5` on `f32`). That
//! includes near-equal pairs and entries near the smallest normal number,
//! where the textbook formula keeps no correct digit.

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

/// Returns `rows` random distributions over `columns` tokens with probabilities spanning `e^-spread .. 1`.
fn random_rows(rng: &mut SplitMix, rows: usize, columns: usize, spread: f64) -> Array2<f64> {
    let mut matrix = Array2::from_shape_simple_fn((rows, columns), || (-spread * rng.unit()).exp());
    for mut row in matrix.rows_mut() {
        let sum: f64 = row.sum();
        row.mapv_inplace(|value| value / sum);
    }
    matrix
}

/// Returns `p (1 + d s_i)` with random signs `s_i`, renormalized.
fn perturbed(rng: &mut SplitMix, p: &Array2<f64>, d: f64) -> Array2<f64> {
    let mut q = p.mapv(|value| value * (1.0 + if rng.unit() < 0.5 { -d } else { d }));
    for mut row in q.rows_mut() {
        let sum: f64 = row.sum();
        row.mapv_inplace(|value| value / sum);
    }
    q
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

fn check_divergences(p: &Array2<f64>, q: &Array2<f64>, tolerance: f64, context: &str) {
    let cases: [(&str, RowsFn<f64>, Divergence<f64>); 3] = [
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
            assert_close(g, e, tolerance, &format!("{name} {context} row {row}"));
        }
    }
}

#[test]
fn random_rows_match_scalar_path() {
    let mut rng = SplitMix(11);
    for columns in [1, 3, 15, 16, 17, 1000, 4099] {
        for spread in [1.0, 30.0] {
            let p = random_rows(&mut rng, 4, columns, spread);
            let q = random_rows(&mut rng, 4, columns, spread);
            check_divergences(&p, &q, 1e-13, &format!("V={columns} spread={spread}"));
        }
    }
}

#[test]
fn near_equal_rows_match_scalar_path() {
    let mut rng = SplitMix(12);
    for d in [1e-1, 1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12] {
        let p = random_rows(&mut rng, 3, 2053, 20.0);
        let q = perturbed(&mut rng, &p, d);
        check_divergences(&p, &q, 1e-13, &format!("d={d:e}"));
    }
}

#[test]
fn ratios_across_the_band_edges_match_scalar_path() {
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
    let mut p = Array2::zeros((ratios.len(), columns));
    let mut q = Array2::zeros((ratios.len(), columns));
    for (row, &ratio) in ratios.iter().enumerate() {
        for column in 0..columns {
            let base = 1.0 + column as f64;
            p[[row, column]] = base;
            q[[row, column]] = if column % 2 == 0 { base * ratio } else { base };
        }
    }
    for mut row in p.rows_mut() {
        let sum: f64 = row.sum();
        row.mapv_inplace(|value| value / sum);
    }
    for mut row in q.rows_mut() {
        let sum: f64 = row.sum();
        row.mapv_inplace(|value| value / sum);
    }
    check_divergences(&p, &q, 1e-13, "band edges");
}

#[test]
fn entries_near_smallest_normal_match_scalar_path() {
    let mut rng = SplitMix(13);
    let columns = 96;
    let mut p = Array2::zeros((2, columns));
    for column in 0..columns {
        // Half the entries between 1 and 1000 times the smallest normal number.
        p[[0, column]] = if column % 2 == 0 {
            f64::MIN_POSITIVE * (1.0 + 999.0 * rng.unit())
        } else {
            rng.unit() + 0.01
        };
        p[[1, column]] = f64::MIN_POSITIVE * (2.0 + rng.unit());
    }
    p[[1, 0]] = 1.0;
    for mut row in p.rows_mut() {
        let sum: f64 = row.sum();
        row.mapv_inplace(|value| value / sum);
    }
    for d in [1e-3, 1e-8] {
        let q = perturbed(&mut rng, &p, d);
        check_divergences(&p, &q, 1e-13, &format!("tiny entries d={d:e}"));
    }
}

#[test]
fn zeros_give_conventions_of_scalar_path() {
    let p = Array2::from_shape_vec(
        (1, 20),
        (0..20).map(|i| if i < 10 { 0.1 } else { 0.0 }).collect(),
    )
    .expect("shape");
    let q = Array2::from_shape_vec((1, 20), vec![0.05; 20]).expect("shape");
    check_divergences(&p, &q, 1e-14, "zeros in p");

    let mut out = Array1::zeros(1);
    kl_rows(q.view(), p.view(), out.view_mut()).expect("valid rows");
    assert_eq!(out[0].to_bits(), f64::INFINITY.to_bits());
}

#[test]
fn cross_entropy_and_entropy_match_distribution_methods() {
    let mut rng = SplitMix(14);
    for columns in [5, 1000, 2051] {
        let p = random_rows(&mut rng, 3, columns, 25.0);
        let q = perturbed(&mut rng, &p, 0.3);
        let cross = kernel_values(cross_entropy_rows, &p, &q);
        let mut entropy = Array1::zeros(3);
        entropy_rows(p.view(), entropy.view_mut()).expect("valid rows");
        for row in 0..3 {
            let p_row = Distribution::from_probs(p.row(row)).expect("valid row");
            let q_row = Distribution::from_probs(q.row(row)).expect("valid row");
            let expected = p_row.cross_entropy(&q_row).expect("same vocabulary");
            assert_close(cross[row], expected, 1e-13, "cross-entropy");
            assert_close(entropy[row], p_row.entropy(), 1e-13, "entropy");
        }
    }
}

#[test]
fn f32_rows_match_scalar_path() {
    let mut rng = SplitMix(15);
    for d in [0.5, 1e-2, 1e-4] {
        let p = random_rows(&mut rng, 3, 1031, 15.0).mapv(|value| value as f32);
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

#[test]
fn strided_views_match_contiguous() {
    let mut rng = SplitMix(16);
    let p = random_rows(&mut rng, 40, 37, 10.0);
    let q = random_rows(&mut rng, 40, 37, 10.0);
    // Transposed storage: each row of the view has stride 37... of the original columns.
    let p_columns = p.t().to_owned();
    let q_columns = q.t().to_owned();
    let mut strided = Array1::zeros(40);
    kl_rows(p_columns.t(), q_columns.t(), strided.view_mut()).expect("valid rows");
    let contiguous = kernel_values(kl_rows, &p, &q);
    for row in 0..40 {
        assert_close(strided[row], contiguous[row], 1e-15, "strided");
    }
}

#[test]
fn per_row_and_expected_use_the_same_values() {
    let mut rng = SplitMix(17);
    let p = random_rows(&mut rng, 5, 300, 12.0);
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
    let mean = per_row.sum() / 5.0;
    assert_close(expected, mean, 1e-14, "expected");
    for row in 0..5 {
        let scalar = kl(
            &teacher.distribution(row).expect("row"),
            &student.distribution(row).expect("row"),
        )
        .expect("same vocabulary");
        assert_close(per_row[row], scalar, 1e-13, "per_row");
    }
}

/// Computes the scalar KL of the tempered softmax distributions of two logit rows.
fn scalar_logits_kl(teacher: &Array2<f64>, student: &Array2<f64>, temperature: f64) -> Vec<f64> {
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

#[test]
fn logits_match_scalar_softmax_then_kl() {
    let mut rng = SplitMix(18);
    for columns in [2, 17, 1000, 3001] {
        for temperature in [0.5, 1.0, 4.0] {
            let teacher = Array2::from_shape_simple_fn((3, columns), || 16.0 * rng.unit() - 8.0);
            let student = teacher.mapv(|z| z + 2.0 * rng.unit() - 1.0);
            let mut out = Array1::zeros(3);
            kl_from_logits_rows(teacher.view(), student.view(), temperature, out.view_mut())
                .expect("valid logits");
            let expected = scalar_logits_kl(&teacher, &student, temperature);
            for row in 0..3 {
                // The scalar reference rounds each probability to ε first, which costs it
                // up to a few ε absolute when one token holds nearly all the mass.
                let slack = 4.0 * f64::EPSILON / expected[row];
                let context = format!("logits V={columns} T={temperature}");
                assert_close(out[row], expected[row], 1e-12 + slack, &context);
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

#[test]
fn logits_near_equal_keep_relative_accuracy() {
    let mut rng = SplitMix(44);
    for size in [1e-2, 1e-4, 1e-6] {
        for columns in [40, 1000, 4099] {
            let teacher = Array2::from_shape_simple_fn((2, columns), || 16.0 * rng.unit() - 8.0);
            let delta =
                Array2::from_shape_simple_fn((2, columns), || size * (2.0 * rng.unit() - 1.0));
            let student = &teacher + &delta;
            let mut out = Array1::zeros(2);
            kl_from_logits_rows(teacher.view(), student.view(), 1.0, out.view_mut())
                .expect("valid logits");
            for row in 0..2 {
                let z = teacher.row(row).to_vec();
                // The student's logits are rounded sums: take δ as stored.
                let d: Vec<f64> = student
                    .row(row)
                    .iter()
                    .zip(&z)
                    .map(|(s, t)| s - t)
                    .collect();
                let expected = near_equal_logits_kl(&z, &d);
                // The reference is good to about ε/|δ|; the kernel to a few
                // hundred ε relative (rounding of the logits minus the maximum).
                let tolerance = 1e-12 + 8.0 * f64::EPSILON / size;
                assert_close(
                    out[row],
                    expected,
                    tolerance,
                    &format!("δ = {size:e}, V = {columns}"),
                );
            }
        }
    }
}

#[test]
fn logits_with_masked_tokens() {
    let mut teacher = Array2::from_shape_fn((2, 40), |(r, c)| (r + c) as f64 * 0.1);
    let mut student = Array2::from_shape_fn((2, 40), |(r, c)| (2 * r + c) as f64 * 0.07);
    teacher[[0, 3]] = f64::NEG_INFINITY;
    teacher[[0, 35]] = f64::NEG_INFINITY;
    student[[0, 35]] = f64::NEG_INFINITY;
    student[[1, 5]] = f64::NEG_INFINITY;
    let mut out = Array1::zeros(2);
    kl_from_logits_rows(teacher.view(), student.view(), 1.0, out.view_mut()).expect("valid logits");
    let expected = scalar_logits_kl(
        &teacher.select(Axis(0), &[0]),
        &student.select(Axis(0), &[0]),
        1.0,
    );
    assert_close(out[0], expected[0], 1e-13, "masked tokens");
    assert_eq!(out[1].to_bits(), f64::INFINITY.to_bits());
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
