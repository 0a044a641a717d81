//! Error paths of the batched kernels, and the values of the mixture and the geometric pool.

use metadistill::Error;
use metadistill::kernels::{
    cross_entropy_rows, dot_rows, entropy_rows, geometric_pool_into, js_rows, kl_from_logits_rows,
    kl_rows, mixture_into, reverse_kl_rows, selected_features,
};
use ndarray::{Array1, Array2, array};

fn uniform(rows: usize, columns: usize) -> Array2<f64> {
    Array2::from_elem((rows, columns), 1.0 / columns as f64)
}

#[test]
fn shape_mismatch_is_reported() {
    let p = uniform(3, 40);
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

#[test]
fn invalid_entries_name_row_and_index() {
    for index in [5, 38] {
        // Index 5 sits in a vector block, 38 in the scalar tail of a 40-token row.
        let p = uniform(3, 40);
        let mut q = uniform(3, 40);
        q[[2, index]] = f64::NAN;
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

    let mut p = uniform(2, 20);
    p[[1, 3]] = -0.25;
    let q = uniform(2, 20);
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
            ..
        }
    ));
    p[[1, 3]] = f64::INFINITY;
    let error = js_rows(p.view(), q.view(), out.view_mut()).unwrap_err();
    assert!(matches!(
        error,
        Error::InvalidEntry {
            row: 1,
            index: 3,
            ..
        }
    ));
}

#[test]
fn logits_errors_are_reported() {
    let teacher = Array2::<f64>::zeros((2, 30));
    let student = Array2::<f64>::zeros((2, 30));
    let mut out = Array1::zeros(2);
    for temperature in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let error =
            kl_from_logits_rows(teacher.view(), student.view(), temperature, out.view_mut())
                .unwrap_err();
        assert!(
            matches!(error, Error::InvalidTemperature { .. }),
            "{temperature}"
        );
    }

    let mut bad = student.clone();
    bad[[1, 20]] = f64::INFINITY;
    let error = kl_from_logits_rows(teacher.view(), bad.view(), 1.0, out.view_mut()).unwrap_err();
    assert!(matches!(
        error,
        Error::InvalidEntry {
            what: "student logits",
            row: 1,
            index: 20,
            ..
        }
    ));
    bad[[1, 20]] = 0.0;
    bad[[0, 2]] = f64::NAN;
    let error = kl_from_logits_rows(bad.view(), teacher.view(), 1.0, out.view_mut()).unwrap_err();
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
    masked.row_mut(1).fill(f64::NEG_INFINITY);
    let error =
        kl_from_logits_rows(masked.view(), student.view(), 1.0, out.view_mut()).unwrap_err();
    assert_eq!(error, Error::AllMasked { count: 30 }.in_row_for_test(1));

    let narrow = Array2::<f64>::zeros((2, 29));
    let error =
        kl_from_logits_rows(teacher.view(), narrow.view(), 1.0, out.view_mut()).unwrap_err();
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

#[test]
fn mixture_writes_convex_combination() -> Result<(), Error> {
    let teacher = array![[0.6_f32, 0.3, 0.1], [0.2, 0.2, 0.6]];
    let student = array![[0.2_f32, 0.5, 0.3], [0.6, 0.2, 0.2]];
    let mut out = Array2::zeros((2, 3));
    mixture_into(0.25, teacher.view(), student.view(), out.view_mut())?;
    for ((q, &t), &s) in out.iter().zip(&teacher).zip(&student) {
        assert!((q - (0.25 * t + 0.75 * s)).abs() < 1e-7);
    }
    Ok(())
}

#[test]
fn mixture_errors_are_reported() {
    let teacher = uniform(2, 3);
    let mut out = Array2::zeros((2, 3));
    for anchor in [-0.1, 1.5, f64::NAN] {
        let error =
            mixture_into(anchor, teacher.view(), teacher.view(), out.view_mut()).unwrap_err();
        assert!(matches!(error, Error::InvalidAnchorWeight { .. }));
    }
    let student = uniform(3, 3);
    let error = mixture_into(0.5, teacher.view(), student.view(), out.view_mut()).unwrap_err();
    assert!(matches!(
        error,
        Error::BatchSizeMismatch {
            what: "student",
            ..
        }
    ));
    let mut wide = Array2::zeros((2, 4));
    let error = mixture_into(0.5, teacher.view(), teacher.view(), wide.view_mut()).unwrap_err();
    assert!(matches!(
        error,
        Error::VocabularyMismatch { what: "output", .. }
    ));
}

#[test]
fn geometric_pool_matches_direct_formula() -> Result<(), Error> {
    let columns = 37;
    let a = Array2::from_shape_fn((3, columns), |(r, c)| 1.0 + ((r + 2 * c) % 7) as f64);
    let b = Array2::from_shape_fn((3, columns), |(r, c)| 1.0 + ((3 * r + c) % 5) as f64);
    let mut a = a;
    a[[1, 4]] = 0.0;
    let mut out = Array2::zeros((3, columns));
    geometric_pool_into(&[a.view(), b.view()], &[3.0, 1.0], out.view_mut())?;
    for row in 0..3 {
        let raw: Vec<f64> = (0..columns)
            .map(|c| a[[row, c]].powf(0.75) * b[[row, c]].powf(0.25))
            .collect();
        let total: f64 = raw.iter().sum();
        for c in 0..columns {
            let expected = raw[c] / total;
            assert!(
                (out[[row, c]] - expected).abs() < 1e-14,
                "row {row} token {c}"
            );
        }
    }
    assert_eq!(out[[1, 4]].to_bits(), 0);
    Ok(())
}

#[test]
fn geometric_pool_errors_are_reported() {
    let a = uniform(2, 3);
    let mut out = Array2::zeros((2, 3));
    let error = geometric_pool_into::<f64>(&[], &[], out.view_mut()).unwrap_err();
    assert!(matches!(error, Error::Empty { .. }));
    let error = geometric_pool_into(&[a.view()], &[1.0, 2.0], out.view_mut()).unwrap_err();
    assert!(matches!(
        error,
        Error::LengthMismatch {
            expected: 1,
            found: 2,
            ..
        }
    ));
    let error = geometric_pool_into(&[a.view()], &[-1.0], out.view_mut()).unwrap_err();
    assert!(matches!(error, Error::InvalidWeight { index: 0, .. }));
    let error =
        geometric_pool_into(&[a.view(), a.view()], &[0.0, 0.0], out.view_mut()).unwrap_err();
    assert!(matches!(error, Error::AllZeroWeights { count: 2, .. }));
    let narrow = uniform(2, 2);
    let error =
        geometric_pool_into(&[a.view(), narrow.view()], &[1.0, 1.0], out.view_mut()).unwrap_err();
    assert!(matches!(error, Error::VocabularyMismatch { .. }));

    let disjoint_a = array![[1.0, 0.0], [0.5, 0.5]];
    let disjoint_b = array![[0.0, 1.0], [0.5, 0.5]];
    let mut out2 = Array2::zeros((2, 2));
    let error = geometric_pool_into(
        &[disjoint_a.view(), disjoint_b.view()],
        &[1.0, 1.0],
        out2.view_mut(),
    )
    .unwrap_err();
    assert_eq!(error, Error::EmptySupport { row: 0 });

    let mut negative = uniform(2, 3);
    negative[[1, 2]] = -0.5;
    let error = geometric_pool_into(&[negative.view()], &[1.0], out.view_mut()).unwrap_err();
    assert!(matches!(
        error,
        Error::InvalidEntry {
            row: 1,
            index: 2,
            ..
        }
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

/// The KL kernel reads a row's two halves side by side; an invalid entry in
/// the second half must not hide an earlier one in the first. A token with
/// `q = 0 < p` gives `+inf` only once the rest of the row is checked.
#[test]
fn kl_reports_the_first_invalid_entry_of_a_long_row() {
    let columns = 32 * 41 + 7;
    for (first, second) in [(100, 1000), (700, 1300), (1310, 1311)] {
        let p = uniform(2, columns);
        let mut q = uniform(2, columns);
        q[[1, second]] = -1.0;
        q[[1, first]] = f64::NAN;
        let mut out = Array1::zeros(2);
        let error = kl_rows(p.view(), q.view(), out.view_mut()).unwrap_err();
        assert!(
            matches!(error, Error::InvalidEntry { row: 1, index, .. } if index == first),
            "{error}"
        );
    }

    let p = uniform(1, columns);
    let mut q = uniform(1, columns);
    q[[0, 200]] = 0.0;
    let mut out = Array1::zeros(1);
    kl_rows(p.view(), q.view(), out.view_mut()).expect("q = 0 < p is valid input");
    assert_eq!(out[0], f64::INFINITY);
    q[[0, 1200]] = f64::NAN;
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
