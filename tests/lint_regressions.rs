//! Inputs that used to panic inside the crate and now return an error.

use metadistill::Error;
use metadistill::student::{Capacity, SoftmaxStudent};
use ndarray::array;

#[test]
fn softmax_huge_rank_is_an_error() {
    let features = array![[0.0_f64, 1.0], [1.0, 0.0]];
    let student = SoftmaxStudent::new(features.view(), 3, Capacity::Rank(usize::MAX));
    assert!(matches!(
        student,
        Err(Error::InvalidParameter { name: "rank", .. })
    ));
}

#[test]
fn softmax_huge_vocabulary_is_an_error() {
    let features = array![[0.0_f32, 1.0], [1.0, 0.0]];
    let student = SoftmaxStudent::new(features.view(), usize::MAX, Capacity::Full);
    assert!(matches!(
        student,
        Err(Error::InvalidParameter {
            name: "n_classes",
            ..
        })
    ));
}

#[test]
fn softmax_rank_past_memory_is_an_error() {
    let features = array![[0.0_f64, 1.0], [1.0, 0.0]];
    let rank = usize::MAX / 16;
    let student = SoftmaxStudent::new(features.view(), 3, Capacity::Rank(rank));
    let Err(Error::InvalidParameter { name, value, .. }) = student else {
        panic!("expected InvalidParameter, got {student:?}");
    };
    assert_eq!(name, "rank");
    assert_eq!(value, rank as f64);
}
