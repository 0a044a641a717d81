//! Recursive meta-distillation on real teachers: scikit-learn's handwritten digits.
//!
//! The teachers are five scikit-learn classifiers whose cross-validated class
//! probabilities `scripts/digits_teachers.py` wrote to `data/digits/`. Each
//! student is a softmax regression on 16 of the 64 pixels, too small to copy
//! any teacher exactly. Every generation retrains it from scratch for a few
//! L-BFGS iterations, as Born-Again training retrains a network, so its fit
//! falls short of its meta-teacher. The run compares
//!
//! - one teacher (the RBF support vector machine) against five teachers
//!   averaged by a multi-teacher meta-teacher,
//! - anchor weights a ∈ {0, 0.1, 0.3, 0.5, 1}, where a = 0 is Born-Again
//!   (each generation learns only from the previous student),
//!
//! printing D(S_g) to the teacher(s), the student's accuracy on the labels,
//! and the observed neighbourhood next to the bound ε∞ / a.
//!
//! Run with `cargo run --release --features npy --example digits`.

use std::path::Path;

use metadistill::npy::{read_features, read_labels, read_logits};
use metadistill::recursion::{
    AnchorSchedule, Recursion, RecursionTrajectory, accuracy, convex_mixture,
};
use metadistill::student::{Capacity, FitOutcome, SoftmaxStudent, Student};
use metadistill::{DistributionBatch, MetaTeacherOperator, Result};
use ndarray::{Array2, ArrayView1, ArrayViewMut1, Axis};

/// The teachers written by `scripts/digits_teachers.py`.
const TEACHERS: [&str; 5] = ["logistic", "svm_rbf", "random_forest", "knn", "naive_bayes"];

/// The teacher of the single-teacher runs.
const SINGLE_TEACHER: &str = "svm_rbf";

/// The anchor weights compared.
const ANCHORS: [f64; 5] = [0.0, 0.1, 0.3, 0.5, 1.0];

/// Generations per run.
const GENERATIONS: usize = 20;

/// The generations shown in the tables.
const SHOWN: [usize; 6] = [0, 1, 2, 5, 10, 20];

/// Pixels the student uses: the 16 with the largest variance over the data set.
const STUDENT_FEATURES: usize = 16;

/// L-BFGS iterations per generation, each from a fresh start.
const STUDENT_ITERATIONS: usize = 15;

/// Generations at the end of a run whose largest `D` is the observed neighbourhood.
const TAIL: usize = 5;

/// The multi-teacher meta-teacher `q = a · (1/K) Σ_k T_k + (1 - a) S_g`.
///
/// Its fixed point is the teacher average, so `D` is measured against that.
struct TeacherAverage {
    anchor: f64,
}

impl MetaTeacherOperator<f64> for TeacherAverage {
    fn anchor_weight(&self) -> f64 {
        self.anchor
    }

    fn combine_into(
        &self,
        teachers: &[ArrayView1<f64>],
        students: &[ArrayView1<f64>],
        mut out: ArrayViewMut1<f64>,
    ) -> Result<()> {
        let share = self.anchor / teachers.len() as f64;
        for teacher in teachers {
            out.scaled_add(share, teacher);
        }
        if let Some(last) = students.last() {
            out.scaled_add(1.0 - self.anchor, last);
        }
        Ok(())
    }
}

fn main() -> Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/digits");
    let pixels = read_features::<f64>(dir.join("features.npy"))?;
    let labels = read_labels(dir.join("labels.npy"))?;
    let teachers = TEACHERS
        .iter()
        .map(|name| read_logits::<f64>(dir.join(format!("teacher_{name}.npy")), 1.0))
        .collect::<Result<Vec<_>>>()?;

    println!(
        "scikit-learn digits: {} images, {} pixels, 10 classes",
        pixels.nrows(),
        pixels.ncols()
    );
    println!("teachers (5-fold cross-validated, out-of-sample probabilities):");
    for (name, teacher) in TEACHERS.iter().zip(&teachers) {
        println!("  {name:14} accuracy {:.4}", accuracy(teacher, &labels)?);
    }
    let average = average_teacher(&teachers)?;
    println!(
        "  {:14} accuracy {:.4}",
        "average of 5",
        accuracy(&average, &labels)?
    );

    let features = student_features(&pixels);
    println!(
        "\nstudent: softmax regression on the {STUDENT_FEATURES} highest-variance pixels, \
         retrained from zero for {STUDENT_ITERATIONS} L-BFGS iterations per generation"
    );

    let single_index = TEACHERS
        .iter()
        .position(|&n| n == SINGLE_TEACHER)
        .unwrap_or(0);
    let single = [teachers[single_index].clone()];
    println!("\n=== single teacher: {SINGLE_TEACHER}, q = a T + (1 - a) S_g ===");
    compare_anchors(&single, &single[0], &features, &labels, false)?;

    println!("\n=== five teachers: q = a (1/5) Σ_k T_k + (1 - a) S_g, D against the average ===");
    compare_anchors(&teachers, &average, &features, &labels, true)?;

    println!(
        "\nReading: with a = 0 (Born-Again) each student learns only the previous one, so what a \
         short fit loses is never recovered and D(S_g) climbs. Any a > 0 keeps D(S_g) in a \
         neighbourhood of the teacher; the corrected bound puts it below ε∞ / a, where ε∞ is the \
         largest per-step max log-ratio error of the student."
    );
    Ok(())
}

/// Runs every anchor weight from the same `S_0` and prints the tables.
fn compare_anchors(
    teachers: &[DistributionBatch<f64>],
    reference: &DistributionBatch<f64>,
    features: &Array2<f64>,
    labels: &[usize],
    averaged: bool,
) -> Result<()> {
    let mut first = new_student(features)?;
    let start = first.fit(reference)?;

    let mut runs = Vec::new();
    for &anchor in &ANCHORS {
        let mut student = new_student(features)?;
        let recursion = if averaged {
            Recursion::new(
                teachers,
                &start,
                |a| Ok(TeacherAverage { anchor: a }),
                &mut student,
            )
        } else {
            Recursion::new(teachers, &start, convex_mixture, &mut student)
        };
        let run = recursion
            .reference(reference)
            .schedule(AnchorSchedule::Constant(anchor))
            .max_generations(GENERATIONS)
            .track_metric(|s| accuracy(s, labels))
            .run()?;
        runs.push((anchor, run));
    }

    print_table("D(S_g) to the teacher, nats", &runs, |r, g| {
        r.records()[g].divergence
    });
    print_table("student accuracy on the labels", &runs, |r, g| {
        r.records()[g].metric.unwrap_or(f64::NAN)
    });
    print_neighbourhoods(&runs);
    Ok(())
}

/// Prints one value per anchor weight and shown generation.
fn print_table(
    title: &str,
    runs: &[(f64, RecursionTrajectory<f64>)],
    value: impl Fn(&RecursionTrajectory<f64>, usize) -> f64,
) {
    println!("\n{title}");
    print!("{:>8}", "a");
    for g in SHOWN {
        print!("{:>9}", format!("g={g}"));
    }
    println!();
    for (anchor, run) in runs {
        print!("{anchor:>8}");
        for g in SHOWN {
            print!("{:>9.4}", value(run, g));
        }
        println!();
    }
}

/// Prints the observed neighbourhood of each run next to the bound ε∞ / a.
fn print_neighbourhoods(runs: &[(f64, RecursionTrajectory<f64>)]) {
    println!("\nobserved neighbourhood (max D over the last {TAIL} generations) against ε∞ / a");
    println!(
        "{:>8}{:>14}{:>14}{:>14}{:>14}{:>16}",
        "a", "neighbourhood", "max ε∞", "ε∞ / a", "mean ε", "fits at limit"
    );
    for (anchor, run) in runs {
        let neighbourhood = run.neighbourhood(TAIL).unwrap_or(f64::NAN);
        let eps_max = run.max_fit_error_max().unwrap_or(f64::NAN);
        let bound = if *anchor > 0.0 {
            format!("{:.4}", eps_max / anchor)
        } else {
            "none".to_string()
        };
        let errors: Vec<f64> = run.records().iter().filter_map(|r| r.fit_error).collect();
        let mean_error = errors.iter().sum::<f64>() / errors.len().max(1) as f64;
        let reports: Vec<_> = run
            .records()
            .iter()
            .filter_map(|r| r.fit_report.as_ref())
            .collect();
        let at_limit = reports
            .iter()
            .filter(|report| report.outcome == FitOutcome::IterationLimit)
            .count();
        let fits = format!("{at_limit} of {}", reports.len());
        println!(
            "{anchor:>8}{neighbourhood:>14.4}{eps_max:>14.4}{bound:>14}{mean_error:>14.4}{fits:>16}"
        );
    }
}

/// Builds a fresh student of limited capacity.
fn new_student(features: &Array2<f64>) -> Result<SoftmaxStudent<f64>> {
    let columns = top_variance_columns(features, STUDENT_FEATURES);
    Ok(
        SoftmaxStudent::new(features.view(), 10, Capacity::Features(columns))?
            .with_max_iterations(STUDENT_ITERATIONS)
            .with_warm_start(false),
    )
}

/// Scales the pixels (0..16) to [0, 1].
fn student_features(pixels: &Array2<f64>) -> Array2<f64> {
    pixels / 16.0
}

/// Returns the indices of the `count` columns of largest variance, in index order.
fn top_variance_columns(features: &Array2<f64>, count: usize) -> Vec<usize> {
    let variances = features.var_axis(Axis(0), 0.0);
    let mut order: Vec<usize> = (0..features.ncols()).collect();
    order.sort_by(|&i, &j| variances[j].total_cmp(&variances[i]));
    let mut chosen = order[..count.min(order.len())].to_vec();
    chosen.sort_unstable();
    chosen
}

/// Averages the teachers' probabilities row by row.
fn average_teacher(teachers: &[DistributionBatch<f64>]) -> Result<DistributionBatch<f64>> {
    let mut sum = Array2::<f64>::zeros(teachers[0].probs().dim());
    for teacher in teachers {
        sum += &teacher.probs();
    }
    sum /= teachers.len() as f64;
    DistributionBatch::from_probs(&sum)
}
