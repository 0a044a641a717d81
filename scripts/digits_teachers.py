"""Write out-of-sample teacher probabilities for scikit-learn's handwritten digits.

Trains five different classifiers on the 8x8 digits data set that ships with
scikit-learn (1797 images, 64 pixel features with values 0..16, 10 classes)
and writes, under data/digits/:

- features.npy: uint8, shape (1797, 64), the pixel values;
- labels.npy: uint8, shape (1797,), the digit of each image;
- teacher_<name>.npy: float32, shape (1797, 10), the natural logarithm of each
  classifier's class probabilities, predicted for every image by the model of
  a 5-fold stratified cross-validation that did not see it. A probability of
  exactly 0 is stored as -inf. The log form keeps the files at half the size of
  float64 probabilities, and a softmax of each row restores a distribution that
  sums to 1 to machine precision.

Every random generator is seeded, so a rerun with the versions pinned in
scripts/requirements-digits.txt writes the same files.

Usage: python3 scripts/digits_teachers.py [OUTPUT_DIR]
"""

import sys
from pathlib import Path

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

SEED = 0
FOLDS = 5


def teachers():
    """Return the classifiers by file name, deliberately of different kinds."""
    return {
        "logistic": make_pipeline(
            StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)
        ),
        "svm_rbf": make_pipeline(
            StandardScaler(),
            CalibratedClassifierCV(SVC(C=10.0, gamma="scale"), method="sigmoid", ensemble=False),
        ),
        "random_forest": RandomForestClassifier(n_estimators=200, random_state=SEED),
        "knn": KNeighborsClassifier(n_neighbors=10, weights="distance"),
        "naive_bayes": GaussianNB(),
    }


def main():
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("data/digits")
    out_dir.mkdir(parents=True, exist_ok=True)

    digits = load_digits()
    features = digits.data.astype(np.uint8)
    labels = digits.target.astype(np.uint8)
    if not np.array_equal(features, digits.data):
        raise ValueError("digits features are not integers in 0..255")
    np.save(out_dir / "features.npy", features)
    np.save(out_dir / "labels.npy", labels)

    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=SEED)
    for name, model in teachers().items():
        probs = cross_val_predict(
            model, digits.data, digits.target, cv=folds, method="predict_proba"
        )
        with np.errstate(divide="ignore"):
            log_probs = np.log(probs).astype(np.float32)
        np.save(out_dir / f"teacher_{name}.npy", log_probs)
        accuracy = np.mean(np.argmax(probs, axis=1) == digits.target)
        zeros = np.mean(probs == 0.0)
        print(f"{name:14s} cross-validated accuracy {accuracy:.4f}, zero probabilities {zeros:.3f}")


if __name__ == "__main__":
    main()
