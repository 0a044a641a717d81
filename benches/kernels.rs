//! Criterion benchmarks of the batched kernels next to the memory floor.
//!
//! For each precision, thread count (1 and all) and shape `B × V` with
//! `V ∈ {3, 1024, 32768, 131072, 262144}` and `B ∈ {1, 64, 256}`, the group
//! `{f32,f64}/{threads}t/B{B}xV{V}` times:
//!
//! - `dot`: the row-wise dot product, which reads the same bytes as KL and
//!   does one multiply-add per entry (the memory floor);
//! - `kl`: fused KL on probabilities;
//! - `kl_logits`: fused KL on logits (log-softmax included).
//!
//! The other kernels (reverse KL is KL with the arguments swapped; JS,
//! cross-entropy, entropy) run on `B = 256, V = 131072` only, to keep
//! the default run near ten minutes. Throughput is reported in entries
//! (`B × V`). Run with `cargo bench --bench kernels`; pass a filter such as
//! `f64/2t/B256xV131072` to run one group.

use std::time::Duration;

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use metadistill::kernels::{
    KernelFloat, cross_entropy_rows, dot_rows, entropy_rows, js_rows, kl_from_logits_rows, kl_rows,
};
use ndarray::{Array1, Array2, ArrayView2, ShapeBuilder};

const COLUMNS: [usize; 5] = [3, 1024, 32_768, 131_072, 262_144];
const ROWS: [usize; 3] = [1, 64, 256];

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

/// Logits and their row-wise softmax for the largest shape; smaller shapes are sub-views.
struct Data<F> {
    teacher_logits: Array2<F>,
    student_logits: Array2<F>,
    teacher: Array2<F>,
    student: Array2<F>,
}

fn random_logits<F: KernelFloat>(seed: u64) -> Array2<F> {
    let mut rng = SplitMix(seed);
    let shape = (ROWS[2], COLUMNS[4]);
    Array2::from_shape_simple_fn(shape, || {
        F::from(16.0 * rng.unit() - 8.0).unwrap_or_else(F::zero)
    })
}

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

impl<F: KernelFloat> Data<F> {
    fn new() -> Self {
        let teacher_logits = random_logits(1);
        let student_logits = random_logits(2);
        let teacher = softmax(&teacher_logits);
        let student = softmax(&student_logits);
        Data {
            teacher_logits,
            student_logits,
            teacher,
            student,
        }
    }
}

/// Returns the top-left `rows × columns` block of `matrix`, each row contiguous.
fn block<F>(matrix: &Array2<F>, rows: usize, columns: usize) -> ArrayView2<'_, F> {
    let stride = matrix.ncols();
    let data = matrix.as_slice().expect("standard layout");
    let used = (rows - 1) * stride + columns;
    ArrayView2::from_shape((rows, columns).strides((stride, 1)), &data[..used])
        .expect("block inside the matrix")
}

fn thread_pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
}

fn sweep<F: KernelFloat>(criterion: &mut Criterion, precision: &str) {
    let data = Data::<F>::new();
    let all_threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let thread_counts: Vec<usize> = if all_threads > 1 {
        vec![1, all_threads]
    } else {
        vec![1]
    };

    for &threads in &thread_counts {
        let pool = thread_pool(threads);
        for rows in ROWS {
            for columns in COLUMNS {
                let p = block(&data.teacher, rows, columns);
                let q = block(&data.student, rows, columns);
                let z = block(&data.teacher_logits, rows, columns);
                let y = block(&data.student_logits, rows, columns);
                let mut out = Array1::<F>::zeros(rows);
                let name = format!("{precision}/{threads}t/B{rows}xV{columns}");
                let mut group = criterion.benchmark_group(&name);
                group.throughput(Throughput::Elements((rows * columns) as u64));
                group.sampling_mode(SamplingMode::Flat);

                let mut run = |id: &str, kernel: &mut (dyn FnMut(&mut Array1<F>) + Send)| {
                    group.bench_function(BenchmarkId::from_parameter(id), |bencher| {
                        pool.install(|| bencher.iter(|| kernel(&mut out)));
                    });
                };
                run("dot", &mut |out| {
                    dot_rows(p, q, out.view_mut()).expect("dot")
                });
                run("kl", &mut |out| kl_rows(p, q, out.view_mut()).expect("kl"));
                let one = F::one();
                run("kl_logits", &mut |out| {
                    kl_from_logits_rows(z, y, one, out.view_mut()).expect("logits")
                });
                if rows == 256 && columns == 131_072 {
                    run("js", &mut |out| js_rows(p, q, out.view_mut()).expect("js"));
                    run("cross_entropy", &mut |out| {
                        cross_entropy_rows(p, q, out.view_mut()).expect("cross-entropy")
                    });
                    run("entropy", &mut |out| {
                        entropy_rows(p, out.view_mut()).expect("entropy")
                    });
                }
                group.finish();
            }
        }
    }
}

fn kernels(criterion: &mut Criterion) {
    sweep::<f64>(criterion, "f64");
    sweep::<f32>(criterion, "f32");
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .nresamples(2000)
        .without_plots();
    targets = kernels
}
criterion_main!(benches);
