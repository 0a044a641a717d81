//! Error paths of the batched kernels, and the values of the mixture and the geometric pool.
//!
//! Each check is a generic function run for f32 and for f64. The kernels
//! report an offending value as `f64`, so checks compare it with the input
//! entry widened to `f64`, which is exact for both types.

use metadistill::Error;
use metadistill::kernels::{
    KernelFloat, cross_entropy_rows, dot_rows, entropy_rows, geometric_pool_into, js_rows,
    kl_from_logits_rows, kl_rows, mixture_into, reverse_kl_rows, selected_features,
};
use ndarray::{Array1, Array2, array};

/// Converts an `f64` literal to `F`.
fn c<F: KernelFloat>(value: f64) -> F {
    F::from(value).expect("every f64 literal here fits in f32")
}

/// Converts `F` to `f64`, exactly for f32 and f64.
fn widen<F: KernelFloat>(value: F) -> f64 {
    value.to_f64().expect("f32 and f64 convert to f64")
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

/// Runs each generic check that returns a `Result` for `f32` and for `f64`.
macro_rules! for_both_floats_fallible {
    ($($name:ident),* $(,)?) => {
        mod f32_fallible_cases {
            $(#[test] fn $name() -> Result<(), metadistill::Error> { super::$name::<f32>() })*
        }
        mod f64_fallible_cases {
            $(#[test] fn $name() -> Result<(), metadistill::Error> { super::$name::<f64>() })*
        }
    };
}

for_both_floats!(
    shape_mismatch_is_reported,
    invalid_entries_name_row_and_index,
    logits_errors_are_reported,
    mixture_errors_are_reported,
    geometric_pool_errors_are_reported,
    kl_reports_the_first_invalid_entry_of_a_long_row,
    kl_reports_an_infinite_entry_of_a_long_row,
);

for_both_floats_fallible!(
    mixture_writes_convex_combination,
    geometric_pool_matches_direct_formula,
);

fn uniform<F: KernelFloat>(rows: usize, columns: usize) -> Array2<F> {
    Array2::from_elem((rows, columns), F::one() / c(columns as f64))
}

fn shape_mismatch_is_reported<F: KernelFloat>() {
    let p = uniform::<F>(3, 40);
    let mut out = Array1::zeros(3);
    let fewer_rows = uniform(2, 40);
    let fewer_columns = uniform(3, 39);
    assert_eq!(
        kl_rows(p.view(), fewer_rows.view(), out.view_mut()),
        Err(Error::BatchSizeMismatch {
            what: "second matrix",
            expected: 3,
            found: 2
        })
    );
    assert_eq!(
        js_rows(p.view(), fewer_columns.view(), out.view_mut()),
        Err(Error::VocabularyMismatch {
            what: "second matrix",
            expected: 40,
            found: 39
        })
    );
    let mut short = Array1::zeros(2);
    let error = reverse_kl_rows(p.view(), p.view(), short.view_mut()).unwrap_err();
    assert!(matches!(
        error,
        Error::LengthMismatch {
            expected: 3,
            found: 2,
            ..
        }
    ));
    let error = entropy_rows(p.view(), short.view_mut()).unwrap_err();
    assert!(matches!(error, Error::LengthMismatch { .. }));
    let error = dot_rows(p.view(), fewer_rows.view(), out.view_mut()).unwrap_err();
    assert!(matches!(error, Error::BatchSizeMismatch { .. }));
}

fn invalid_entries_name_row_and_index<F: KernelFloat>() {
    for index in [5, 38] {
        // Index 5 sits in a vector block, 38 in the scalar tail of a 40-token row.
        let p = uniform::<F>(3, 40);
        let mut q = uniform::<F>(3, 40);
        q[[2, index]] = F::nan();
        let mut out = Array1::zeros(3);
        let error = kl_rows(p.view(), q.view(), out.view_mut()).unwrap_err();
        match error {
            Error::InvalidEntry {
                what,
                row,
                index: found,
                value,
                ..
            } => {
                assert_eq!(what, "second probability matrix");
                assert_eq!(row, 2);
                assert_eq!(found, index);
                assert!(value.is_nan());
            }
            other => panic!("unexpected error {other}"),
        }
    }

    let mut p = uniform::<F>(2, 20);
    p[[1, 3]] = c(-0.25);
    let q = uniform::<F>(2, 20);
    let mut out = Array1::zeros(2);
    let message = cross_entropy_rows(p.view(), q.view(), out.view_mut())
        .unwrap_err()
        .to_string();
    assert!(message.starts_with("first probability matrix at row 1, index 3 is -0.25"));
    let error = entropy_rows(p.view(), out.view_mut()).unwrap_err();
    assert!(matches!(
        error,
        Error::InvalidEntry {
            row: 1,
            index: 3,
            value,
            ..
        } if value == widen(p[[1, 3]])
    ));
    p[[1, 3]] = F::infinity();
    let error = js_rows(p.view(), q.view(), out.view_mut()).unwrap_err();
    assert!(matches!(
        error,
        Error::InvalidEntry {
            row: 1,
            index: 3,
            value,
            ..
        } if value == f64::INFINITY
    ));
}

fn logits_errors_are_reported<F: KernelFloat>() {
    let teacher = Array2::<F>::zeros((2, 30));
    let student = Array2::<F>::zeros((2, 30));
    let mut out = Array1::zeros(2);
    for temperature in [F::zero(), -F::one(), F::nan(), F::infinity()] {
        let error =
            kl_from_logits_rows(teacher.view(), student.view(), temperature, out.view_mut())
                .unwrap_err();
        assert!(
            matches!(error, Error::InvalidTemperature { .. }),
            "{temperature}"
        );
        match error {
            Error::InvalidTemperature { value } if temperature.is_nan() => {
                assert!(value.is_nan(), "{value}");
            }
            Error::InvalidTemperature { value } => assert_eq!(value, widen(temperature)),
            other => panic!("unexpected error {other}"),
        }
    }

    let mut bad = student.clone();
    bad[[1, 20]] = F::infinity();
    let error =
        kl_from_logits_rows(teacher.view(), bad.view(), F::one(), out.view_mut()).unwrap_err();
    assert!(matches!(
        error,
        Error::InvalidEntry {
            what: "student logits",
            row: 1,
            index: 20,
            ..
        }
    ));
    bad[[1, 20]] = F::zero();
    bad[[0, 2]] = F::nan();
    let error =
        kl_from_logits_rows(bad.view(), teacher.view(), F::one(), out.view_mut()).unwrap_err();
    assert!(matches!(
        error,
        Error::InvalidEntry {
            what: "teacher logits",
            row: 0,
            index: 2,
            ..
        }
    ));

    let mut masked = teacher.clone();
    masked.row_mut(1).fill(F::neg_infinity());
    let error =
        kl_from_logits_rows(masked.view(), student.view(), F::one(), out.view_mut()).unwrap_err();
    assert_eq!(error, Error::AllMasked { count: 30 }.in_row_for_test(1));

    let narrow = Array2::<F>::zeros((2, 29));
    let error =
        kl_from_logits_rows(teacher.view(), narrow.view(), F::one(), out.view_mut()).unwrap_err();
    assert!(matches!(error, Error::VocabularyMismatch { .. }));
}

/// Builds the error the kernels return for a row, as `Error::InRow`.
trait InRowForTest {
    fn in_row_for_test(self, row: usize) -> Error;
}

impl InRowForTest for Error {
    fn in_row_for_test(self, row: usize) -> Error {
        Error::InRow {
            row,
            source: Box::new(self),
        }
    }
}

fn mixture_writes_convex_combination<F: KernelFloat>() -> Result<(), Error> {
    let teacher = array![[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]].mapv(c::<F>);
    let student = array![[0.2, 0.5, 0.3], [0.6, 0.2, 0.2]].mapv(c::<F>);
    let mut out = Array2::zeros((2, 3));
    mixture_into(c(0.25), teacher.view(), student.view(), out.view_mut())?;
    // Each side rounds at most three operations on values below 1, so each is
    // within 1.5 ε of the exact mixture, and 4 ε leaves a margin.
    let tolerance = c::<F>(4.0) * F::epsilon();
    for ((&q, &t), &s) in out.iter().zip(&teacher).zip(&student) {
        let expected = c::<F>(0.25) * t + c::<F>(0.75) * s;
        assert!((q - expected).abs() <= tolerance, "{q} against {expected}");
    }
    Ok(())
}

fn mixture_errors_are_reported<F: KernelFloat>() {
    let teacher = uniform::<F>(2, 3);
    let mut out = Array2::zeros((2, 3));
    for anchor in [c::<F>(-0.1), c(1.5), F::nan()] {
        let error =
            mixture_into(anchor, teacher.view(), teacher.view(), out.view_mut()).unwrap_err();
        assert!(matches!(error, Error::InvalidAnchorWeight { .. }));
        match error {
            Error::InvalidAnchorWeight { value, .. } if anchor.is_nan() => {
                assert!(value.is_nan(), "{value}");
            }
            Error::InvalidAnchorWeight { value, .. } => assert_eq!(value, widen(anchor)),
            other => panic!("unexpected error {other}"),
        }
    }
    let student = uniform::<F>(3, 3);
    let error = mixture_into(c(0.5), teacher.view(), student.view(), out.view_mut()).unwrap_err();
    assert!(matches!(
        error,
        Error::BatchSizeMismatch {
            what: "student",
            ..
        }
    ));
    let mut wide = Array2::zeros((2, 4));
    let error = mixture_into(c(0.5), teacher.view(), teacher.view(), wide.view_mut()).unwrap_err();
    assert!(matches!(
        error,
        Error::VocabularyMismatch { what: "output", .. }
    ));
}

fn geometric_pool_matches_direct_formula<F: KernelFloat>() -> Result<(), Error> {
    let columns = 37;
    let mut a = Array2::from_shape_fn((3, columns), |(row, column)| {
        c::<F>(1.0 + ((row + 2 * column) % 7) as f64)
    });
    let b = Array2::from_shape_fn((3, columns), |(row, column)| {
        c::<F>(1.0 + ((3 * row + column) % 5) as f64)
    });
    a[[1, 4]] = F::zero();
    let mut out = Array2::zeros((3, columns));
    geometric_pool_into(&[a.view(), b.view()], &[c(3.0), F::one()], out.view_mut())?;
    // The direct formula in `F` rounds two `powf`, a product, a 37-term sum
    // and a quotient, and the kernel rounds its own `ln`, `exp` and
    // normalization, each a few ε relative. Outputs are below 1, so 45 ε
    // absolute (1e-14 on f64, 5.4e-6 on f32) bounds the difference with room to spare.
    let tolerance = c::<F>(45.0) * F::epsilon();
    for row in 0..3 {
        let raw: Vec<F> = (0..columns)
            .map(|column| a[[row, column]].powf(c(0.75)) * b[[row, column]].powf(c(0.25)))
            .collect();
        let total: F = raw.iter().copied().sum();
        for column in 0..columns {
            let expected = raw[column] / total;
            assert!(
                (out[[row, column]] - expected).abs() <= tolerance,
                "row {row} token {column}: kernel {}, direct {expected}",
                out[[row, column]]
            );
        }
    }
    assert_eq!(out[[1, 4]], F::zero());
    assert!(out[[1, 4]].is_sign_positive());
    Ok(())
}

fn geometric_pool_errors_are_reported<F: KernelFloat>() {
    let a = uniform::<F>(2, 3);
    let mut out = Array2::zeros((2, 3));
    let error = geometric_pool_into::<F>(&[], &[], out.view_mut()).unwrap_err();
    assert!(matches!(error, Error::Empty { .. }));
    let error = geometric_pool_into(&[a.view()], &[F::one(), c(2.0)], out.view_mut()).unwrap_err();
    assert!(matches!(
        error,
        Error::LengthMismatch {
            expected: 1,
            found: 2,
            ..
        }
    ));
    let error = geometric_pool_into(&[a.view()], &[-F::one()], out.view_mut()).unwrap_err();
    assert!(matches!(
        error,
        Error::InvalidWeight { index: 0, value, .. } if value == -1.0
    ));
    let error = geometric_pool_into(
        &[a.view(), a.view()],
        &[F::zero(), F::zero()],
        out.view_mut(),
    )
    .unwrap_err();
    assert!(matches!(error, Error::AllZeroWeights { count: 2, .. }));
    let narrow = uniform::<F>(2, 2);
    let error = geometric_pool_into(
        &[a.view(), narrow.view()],
        &[F::one(), F::one()],
        out.view_mut(),
    )
    .unwrap_err();
    assert!(matches!(error, Error::VocabularyMismatch { .. }));

    let disjoint_a = array![[1.0, 0.0], [0.5, 0.5]].mapv(c::<F>);
    let disjoint_b = array![[0.0, 1.0], [0.5, 0.5]].mapv(c::<F>);
    let mut out2 = Array2::zeros((2, 2));
    let error = geometric_pool_into(
        &[disjoint_a.view(), disjoint_b.view()],
        &[F::one(), F::one()],
        out2.view_mut(),
    )
    .unwrap_err();
    assert_eq!(error, Error::EmptySupport { row: 0 });

    let mut negative = uniform::<F>(2, 3);
    negative[[1, 2]] = c(-0.5);
    let error = geometric_pool_into(&[negative.view()], &[F::one()], out.view_mut()).unwrap_err();
    assert!(matches!(
        error,
        Error::InvalidEntry {
            row: 1,
            index: 2,
            value,
            ..
        } if value == -0.5
    ));
}

#[test]
fn selected_features_names_a_target() {
    let features = selected_features();
    assert!(!features.is_empty());
    if cfg!(target_arch = "x86_64")
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
    {
        assert!(features.contains("avx2"), "{features}");
    }
}

/// The KL kernel's fast path gives up on a row at its first unusual block and
/// the checked loop starts over, so a later invalid entry must not hide an
/// earlier one. A token with `q = 0 < p` gives `+inf` only once the rest of
/// the row is checked.
fn kl_reports_the_first_invalid_entry_of_a_long_row<F: KernelFloat>() {
    let columns = 32 * 41 + 7;
    for (first, second) in [(100, 1000), (700, 1300), (1310, 1311)] {
        let p = uniform::<F>(2, columns);
        let mut q = uniform::<F>(2, columns);
        q[[1, second]] = -F::one();
        q[[1, first]] = F::nan();
        let mut out = Array1::zeros(2);
        let error = kl_rows(p.view(), q.view(), out.view_mut()).unwrap_err();
        assert!(
            matches!(error, Error::InvalidEntry { row: 1, index, .. } if index == first),
            "{error}"
        );
    }

    let p = uniform::<F>(1, columns);
    let mut q = uniform::<F>(1, columns);
    q[[0, 200]] = F::zero();
    let mut out = Array1::zeros(1);
    kl_rows(p.view(), q.view(), out.view_mut()).expect("q = 0 < p is valid input");
    assert_eq!(out[0], F::infinity());
    q[[0, 1200]] = F::nan();
    let error = kl_rows(p.view(), q.view(), out.view_mut()).unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidEntry {
                row: 0,
                index: 1200,
                ..
            }
        ),
        "{error}"
    );
}

/// Checks that an infinite entry of a long row is reported. The KL fast path
/// tests only that entries are at least the smallest normal number, and
/// catches `+inf` by the sum it leaves infinite or NaN.
fn kl_reports_an_infinite_entry_of_a_long_row<F: KernelFloat>() {
    let columns = 32 * 41 + 7;
    for index in [40, 700, 1311] {
        for infinite_input in 0..2 {
            let mut p = uniform::<F>(1, columns);
            let mut q = uniform::<F>(1, columns);
            if infinite_input == 0 {
                p[[0, index]] = F::infinity();
            } else {
                q[[0, index]] = F::infinity();
            }
            let mut out = Array1::zeros(1);
            let forward = kl_rows(p.view(), q.view(), out.view_mut()).unwrap_err();
            let reverse = reverse_kl_rows(p.view(), q.view(), out.view_mut()).unwrap_err();
            for error in [forward, reverse] {
                assert!(
                    matches!(
                        error,
                        Error::InvalidEntry { row: 0, index: at, value, .. }
                            if at == index && value == f64::INFINITY
                    ),
                    "{error}"
                );
            }
        }
    }

    // An entry near the largest finite number is valid, and the KL and the
    // cross-entropy overflow to +inf (a NaN sum would come out as 0 after
    // the clamp at 0).
    let mut p = uniform::<F>(1, columns);
    let q = uniform::<F>(1, columns);
    p[[0, 500]] = F::max_value() / c(2.0);
    let mut out = Array1::zeros(1);
    kl_rows(p.view(), q.view(), out.view_mut()).expect("finite entries are valid");
    assert_eq!(out[0], F::infinity());
    cross_entropy_rows(p.view(), q.view(), out.view_mut()).expect("finite entries are valid");
    assert_eq!(out[0], F::infinity());
}
