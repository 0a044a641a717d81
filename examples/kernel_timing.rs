//! Times the batched kernels on one shape and prints a table of median times.
//!
//! ```text
//! cargo run --release --example kernel_timing -- [ROWS] [COLUMNS] [THREADS] [f32|f64] [REPEATS] [KERNELS]
//! ```
//!
//! Defaults: 256 rows, 131072 columns, all threads, f64, 5 repeats, all kernels
//! (KERNELS is a comma-separated subset of dot,kl,js,cross_entropy,entropy,kl_logits). Each line
//! gives the kernel, the precision, the shape, the thread count, the median
//! seconds per call and the nanoseconds per entry. `scripts/peer_comparison.py`
//! runs this program and reads the lines that start with `kernel\t`.

use std::time::Instant;

use metadistill::kernels::{
    KernelFloat, cross_entropy_rows, dot_rows, entropy_rows, js_rows, kl_from_logits_rows, kl_rows,
};
use ndarray::{Array1, Array2};

/// A small seeded generator (SplitMix64), so runs time the same data.
struct SplitMix(u64);

impl SplitMix {
    fn next_unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Returns a matrix of logits with a spread like a language model's (about ±8).
fn random_logits<F: KernelFloat>(rows: usize, columns: usize, seed: u64) -> Array2<F> {
    let mut rng = SplitMix(seed);
    Array2::from_shape_simple_fn((rows, columns), || {
        F::from(16.0 * rng.next_unit() - 8.0).unwrap_or_else(F::zero)
    })
}

/// Returns the row-wise softmax of `logits`.
fn softmax<F: KernelFloat>(logits: &Array2<F>) -> Array2<F> {
    let mut probs = logits.clone();
    for mut row in probs.rows_mut() {
        let max = row.iter().copied().fold(F::neg_infinity(), F::max);
        row.mapv_inplace(|z| (z - max).exp());
        let sum: F = row.iter().copied().sum();
        row.mapv_inplace(|p| p / sum);
    }
    probs
}

/// Returns the median of `repeats` timings of `run`, after one warm-up call.
fn median_seconds(repeats: usize, mut run: impl FnMut()) -> f64 {
    run();
    let mut times: Vec<f64> = (0..repeats)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn time_all<F: KernelFloat>(
    rows: usize,
    columns: usize,
    threads: usize,
    repeats: usize,
    selected: &[&str],
) {
    let is_selected = |name: &str| selected.is_empty() || selected.contains(&name);
    let precision = std::any::type_name::<F>();
    let teacher_logits = random_logits::<F>(rows, columns, 1);
    let student_logits = random_logits::<F>(rows, columns, 2);
    let p = softmax(&teacher_logits);
    let q = softmax(&student_logits);
    let mut out = Array1::<F>::zeros(rows);

    let report = |name: &str, seconds: f64| {
        let per_entry = seconds * 1e9 / (rows * columns) as f64;
        println!(
            "kernel\t{name}\t{precision}\t{rows}\t{columns}\t{threads}\t{seconds:.6e}\t{per_entry:.4}"
        );
    };
    let check = |result: metadistill::Result<()>| {
        if let Err(error) = result {
            eprintln!("kernel failed: {error}");
            std::process::exit(1);
        }
    };

    if is_selected("dot") {
        let seconds = median_seconds(repeats, || {
            check(dot_rows(p.view(), q.view(), out.view_mut()))
        });
        report("dot", seconds);
    }
    if is_selected("kl") {
        let seconds = median_seconds(repeats, || {
            check(kl_rows(p.view(), q.view(), out.view_mut()))
        });
        report("kl", seconds);
    }
    if is_selected("js") {
        let seconds = median_seconds(repeats, || {
            check(js_rows(p.view(), q.view(), out.view_mut()))
        });
        report("js", seconds);
    }
    if is_selected("cross_entropy") {
        let seconds = median_seconds(repeats, || {
            check(cross_entropy_rows(p.view(), q.view(), out.view_mut()))
        });
        report("cross_entropy", seconds);
    }
    if is_selected("entropy") {
        let seconds = median_seconds(repeats, || check(entropy_rows(p.view(), out.view_mut())));
        report("entropy", seconds);
    }
    if is_selected("kl_logits") {
        let temperature = F::one();
        let seconds = median_seconds(repeats, || {
            check(kl_from_logits_rows(
                teacher_logits.view(),
                student_logits.view(),
                temperature,
                out.view_mut(),
            ))
        });
        report("kl_logits", seconds);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |index: usize, default: usize| -> usize {
        args.get(index)
            .and_then(|text| text.parse().ok())
            .unwrap_or(default)
    };
    let rows = number(0, 256);
    let columns = number(1, 131_072);
    let threads = number(
        2,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    let precision = args.get(3).map_or("f64", String::as_str);
    let repeats = number(4, 5).max(1);
    let selected: Vec<&str> = args
        .get(5)
        .map(|list| list.split(',').collect())
        .unwrap_or_default();

    println!(
        "# dispatched features: {}",
        metadistill::kernels::selected_features()
    );
    println!("#\tkernel\tprecision\trows\tcolumns\tthreads\tseconds\tns_per_entry");
    let pool = match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(pool) => pool,
        Err(error) => {
            eprintln!("cannot build a pool of {threads} threads: {error}");
            std::process::exit(1);
        }
    };
    pool.install(|| match precision {
        "f32" => time_all::<f32>(rows, columns, threads, repeats, &selected),
        _ => time_all::<f64>(rows, columns, threads, repeats, &selected),
    });
}
