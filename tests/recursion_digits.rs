//! The digits fixture and the `.npy` loader (feature `npy`), and an anchored run on real teachers.
#![cfg(feature = "npy")]

use std::path::PathBuf;

use metadistill::npy::{read_features, read_labels, read_logits, read_probs};
use metadistill::recursion::{AnchorSchedule, Recursion, accuracy, convex_mixture};
use metadistill::student::{Capacity, SoftmaxStudent, Student};
use metadistill::{DistributionBatch, Error};
use ndarray::{Array1, Array2, array};
use ndarray_npy::write_npy;

/// The teachers written by `scripts/digits_teachers.py`.
const TEACHERS: [&str; 5] = ["logistic", "svm_rbf", "random_forest", "knn", "naive_bayes"];

/// Images in scikit-learn's digits data set.
const IMAGES: usize = 1797;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data/digits")
        .join(name)
}

/// A path in the system's temporary directory, unique to this test binary and `name`.
fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("metadistill-{}-{name}", std::process::id()))
}

#[test]
fn teacher_rows_are_distributions() {
    for name in TEACHERS {
        let teacher = read_logits::<f64>(fixture(&format!("teacher_{name}.npy")), 1.0).unwrap();
        assert_eq!(teacher.n_inputs(), IMAGES, "{name}");
        assert_eq!(teacher.vocab_size(), 10, "{name}");
        for (row, probs) in teacher.rows().enumerate() {
            let total: f64 = probs.sum();
            assert!(
                (total - 1.0).abs() < 1e-12,
                "{name} row {row} sums to {total}"
            );
            assert!(
                probs.iter().all(|&p| (0.0..=1.0).contains(&p)),
                "{name} row {row}"
            );
        }
    }
}

#[test]
fn teachers_load_in_f32() {
    let teacher = read_logits::<f32>(fixture("teacher_svm_rbf.npy"), 1.0).unwrap();
    let total: f32 = teacher.probs().row(0).sum();
    assert!((total - 1.0).abs() < 1e-5);
}

#[test]
fn labels_and_features_have_expected_shape() {
    let labels = read_labels(fixture("labels.npy")).unwrap();
    let features = read_features::<f64>(fixture("features.npy")).unwrap();
    assert_eq!(labels.len(), IMAGES);
    assert!(labels.iter().all(|&label| label < 10));
    for digit in 0..10 {
        assert!(labels.contains(&digit), "digit {digit} missing");
    }
    assert_eq!(features.dim(), (IMAGES, 64));
    assert!(features.iter().all(|&v| (0.0..=16.0).contains(&v)));
}

#[test]
fn teachers_are_accurate_out_of_sample() {
    let labels = read_labels(fixture("labels.npy")).unwrap();
    for name in TEACHERS {
        let teacher = read_logits::<f64>(fixture(&format!("teacher_{name}.npy")), 1.0).unwrap();
        let score = accuracy(&teacher, &labels).unwrap();
        assert!(score > 0.8, "{name}: accuracy {score}");
        assert!(score < 1.0, "{name}: accuracy {score}");
    }
}

#[test]
fn anchored_digits_run_ends_closer_than_born_again() {
    let features = read_features::<f64>(fixture("features.npy")).unwrap() / 16.0;
    let teacher = read_logits::<f64>(fixture("teacher_svm_rbf.npy"), 1.0).unwrap();
    let columns: Vec<usize> = (0..64).step_by(4).collect();
    let new_student = || {
        SoftmaxStudent::new(features.view(), 10, Capacity::Features(columns.clone()))
            .unwrap()
            .with_max_iterations(10)
            .with_warm_start(false)
    };
    let start = new_student().fit(&teacher).unwrap();
    let teachers = [teacher];

    let mut neighbourhoods = Vec::new();
    for anchor in [0.0, 0.5] {
        let mut student = new_student();
        let run = Recursion::new(&teachers, &start, convex_mixture, &mut student)
            .schedule(AnchorSchedule::Constant(anchor))
            .max_generations(6)
            .run()
            .unwrap();
        neighbourhoods.push(run.neighbourhood(2).unwrap());
    }
    assert!(
        neighbourhoods[1] < neighbourhoods[0],
        "a = 0.5 ends at {} but a = 0 at {}",
        neighbourhoods[1],
        neighbourhoods[0]
    );
}

#[test]
fn missing_file_is_reported() {
    let error = read_logits::<f64>(fixture("no_such_teacher.npy"), 1.0).unwrap_err();
    let Error::NpyRead { path, .. } = error else {
        panic!("unexpected error {error:?}");
    };
    assert!(path.ends_with("no_such_teacher.npy"));
}

#[test]
fn vector_read_as_matrix_is_rejected() {
    let error = read_features::<f64>(fixture("labels.npy")).unwrap_err();
    assert!(matches!(error, Error::NpyRead { .. }));
}

#[test]
fn integer_matrix_is_not_probabilities() {
    let error = read_probs::<f64>(fixture("features.npy")).unwrap_err();
    assert!(matches!(error, Error::NpyRead { .. }));
}

#[test]
fn log_probabilities_are_not_probabilities() {
    let error = read_probs::<f64>(fixture("teacher_logistic.npy")).unwrap_err();
    let Error::InRow { row: 0, source } = error else {
        panic!("unexpected error {error:?}");
    };
    assert!(matches!(*source, Error::NegativeProbability { .. }));
}

#[test]
fn unnormalized_probabilities_are_rejected() {
    let path = scratch("unnormalized.npy");
    write_npy(&path, &array![[0.5_f64, 0.5], [0.5, 0.6]]).unwrap();
    let error = read_probs::<f64>(&path).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    let Error::InRow { row: 1, source } = error else {
        panic!("unexpected error {error:?}");
    };
    assert!(matches!(*source, Error::NotNormalized { .. }));
}

#[test]
fn probabilities_round_trip() {
    let path = scratch("probs.npy");
    let probs: Array2<f64> = array![[0.25, 0.75], [1.0, 0.0]];
    write_npy(&path, &probs).unwrap();
    let batch = read_probs::<f64>(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(batch, DistributionBatch::from_probs(&probs).unwrap());
}

#[test]
fn negative_label_is_rejected() {
    let path = scratch("negative-labels.npy");
    write_npy(&path, &Array1::from(vec![1_i64, -2, 3])).unwrap();
    let error = read_labels(&path).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    let Error::NpyRead { message, .. } = error else {
        panic!("unexpected error {error:?}");
    };
    assert!(message.contains("index 1 is -2"), "{message}");
}

#[test]
fn non_finite_feature_is_rejected() {
    let path = scratch("nan-features.npy");
    write_npy(&path, &array![[0.0_f64, 1.0], [f64::NAN, 2.0]]).unwrap();
    let error = read_features::<f64>(&path).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        error,
        Error::NonFiniteFeature {
            row: 1,
            column: 0,
            ..
        }
    ));
}
