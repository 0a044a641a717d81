#!/usr/bin/env python3
"""Time the crate's batched KL kernels next to numpy, scipy and torch on the same shapes.

For every shape B x V, precision and thread count the script times

- the crate (the `kernel_timing` example, built in release mode): row-wise dot
  product (memory floor), fused KL on probabilities, fused KL on logits;
- numpy:  (p * np.log(p / q)).sum(1)
- scipy:  scipy.special.rel_entr(p, q).sum(1)
- torch:  F.kl_div(q.log(), p, reduction="none").sum(1)            (from probabilities)
- torch:  F.kl_div(F.log_softmax(y / T, 1), F.log_softmax(z / T, 1),
                   reduction="none", log_target=True).sum(1)      (from logits)

and prints each median time with its ratio to the crate's time for the same
input (probabilities or logits). numpy and scipy ufuncs run on one thread
whatever the thread count; torch uses torch.set_num_threads. The numpy and
scipy timings run in a child process with OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE removed from its environment, and the script prints the
BLAS library threadpoolctl finds there.

With --fit-slope it also times the crate's KL, logits KL and dot product for
B = 64 and V = 1024 ... 1048576 and prints the least-squares slope of
log(time) against log(B x V); 1.0 means time linear in the number of entries.

Install the pinned versions with `pip install -r scripts/requirements-bench.txt`
and run from the repository root:

    python3 scripts/peer_comparison.py
    python3 scripts/peer_comparison.py --shapes 256x131072 --dtypes f64 --threads 2 --fit-slope
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

import numpy as np

CRATE_BINARY = os.path.join("target", "release", "examples", "kernel_timing")
NUMPY_DTYPES = {"f64": "float64", "f32": "float32"}


def build_crate():
    """Build the timing example in release mode."""
    subprocess.run(
        ["cargo", "build", "--release", "--example", "kernel_timing"], check=True
    )


def crate_times(rows, columns, threads, dtype, repeats, kernels):
    """Run the timing example once and return {kernel: median seconds}."""
    command = [
        CRATE_BINARY,
        str(rows),
        str(columns),
        str(threads),
        dtype,
        str(repeats),
        ",".join(kernels),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    times = {}
    for line in output.splitlines():
        fields = line.split("\t")
        if fields[0] == "kernel":
            times[fields[1]] = float(fields[6])
    return times


def make_inputs(rows, columns, dtype, seed):
    """Return teacher and student logits in [-8, 8) and their softmax, like the crate's example."""
    rng = np.random.default_rng(seed)
    teacher_logits = (16.0 * rng.random((rows, columns)) - 8.0).astype(dtype)
    student_logits = (16.0 * rng.random((rows, columns)) - 8.0).astype(dtype)

    def softmax(logits):
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    return teacher_logits, student_logits, softmax(teacher_logits), softmax(student_logits)


def median_seconds(repeats, run):
    """Return the median wall time of `repeats` calls of `run`, after one warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def numpy_worker(rows, columns, dtype, repeats):
    """Time numpy and scipy in this (child) process and print the result as JSON."""
    import scipy.special
    from threadpoolctl import threadpool_info

    _, _, p, q = make_inputs(rows, columns, dtype, 7)
    result = {
        "numpy": median_seconds(repeats, lambda: (p * np.log(p / q)).sum(1)),
        "scipy": median_seconds(repeats, lambda: scipy.special.rel_entr(p, q).sum(1)),
        "blas": [
            {key: info.get(key) for key in ("internal_api", "version", "architecture", "num_threads")}
            for info in threadpool_info()
        ],
    }
    print(json.dumps(result))


def numpy_times(rows, columns, dtype, repeats):
    """Run `numpy_worker` in a child process without the OpenBLAS tuning variables."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
    }
    command = [
        sys.executable,
        __file__,
        "--numpy-worker",
        f"{rows}x{columns}",
        dtype,
        str(repeats),
    ]
    output = subprocess.run(
        command, check=True, capture_output=True, text=True, env=environment
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def torch_times(rows, columns, dtype, threads, repeats):
    """Time torch's kl_div from probabilities and from logits on `threads` threads."""
    import torch
    import torch.nn.functional as functional

    torch.set_num_threads(threads)
    teacher_logits, student_logits, p, q = make_inputs(rows, columns, dtype, 7)
    z = torch.from_numpy(teacher_logits)
    y = torch.from_numpy(student_logits)
    p = torch.from_numpy(p)
    q = torch.from_numpy(q)
    temperature = 1.0

    def from_probabilities():
        return functional.kl_div(q.log(), p, reduction="none").sum(1)

    def from_logits():
        log_p = functional.log_softmax(z / temperature, dim=1)
        log_q = functional.log_softmax(y / temperature, dim=1)
        return functional.kl_div(log_q, log_p, reduction="none", log_target=True).sum(1)

    with torch.inference_mode():
        return {
            "torch": median_seconds(repeats, from_probabilities),
            "torch_logits": median_seconds(repeats, from_logits),
        }


def compare(shapes, dtypes, thread_counts, repeats):
    """Print one table row per shape, precision and thread count."""
    header = (
        "| dtype | B | V | threads | dot ms | KL ms | KL/dot | numpy ms | numpy/KL "
        "| scipy ms | scipy/KL | torch ms | torch/KL | logits ms | torch logits ms "
        "| torch/logits |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    blas_reported = False
    for rows, columns in shapes:
        for dtype in dtypes:
            peers_single = numpy_times(rows, columns, dtype, repeats)
            if not blas_reported:
                print(f"<!-- numpy child process BLAS: {peers_single['blas']} -->")
                blas_reported = True
            for threads in thread_counts:
                crate = crate_times(rows, columns, threads, dtype, repeats, ["dot", "kl", "kl_logits"])
                torch = torch_times(rows, columns, NUMPY_DTYPES[dtype], threads, repeats)
                kl = crate["kl"]
                logits = crate["kl_logits"]
                print(
                    f"| {dtype} | {rows} | {columns} | {threads} "
                    f"| {crate['dot'] * 1e3:.2f} | {kl * 1e3:.2f} | {kl / crate['dot']:.2f} "
                    f"| {peers_single['numpy'] * 1e3:.1f} | {peers_single['numpy'] / kl:.1f} "
                    f"| {peers_single['scipy'] * 1e3:.1f} | {peers_single['scipy'] / kl:.1f} "
                    f"| {torch['torch'] * 1e3:.1f} | {torch['torch'] / kl:.1f} "
                    f"| {logits * 1e3:.2f} | {torch['torch_logits'] * 1e3:.1f} "
                    f"| {torch['torch_logits'] / logits:.1f} |",
                    flush=True,
                )


def fit_slope(threads, dtype, repeats):
    """Time the crate for B = 64 and V = 1024 ... 1048576 and print the log-log slope per kernel."""
    rows = 64
    columns_list = [1024 * 4**k for k in range(6)]
    samples = {"dot": [], "kl": [], "kl_logits": []}
    print(f"\n| kernel | B | V | ns/entry |  ({dtype}, {threads} threads)")
    print("|---|---|---|---|")
    for columns in columns_list:
        times = crate_times(rows, columns, threads, dtype, repeats, list(samples))
        for kernel, seconds in times.items():
            samples[kernel].append((rows * columns, seconds))
            print(f"| {kernel} | {rows} | {columns} | {seconds * 1e9 / (rows * columns):.3f} |")
    print()
    for kernel, points in samples.items():
        xs = [math.log(entries) for entries, _ in points]
        ys = [math.log(seconds) for _, seconds in points]
        mean_x = statistics.mean(xs)
        mean_y = statistics.mean(ys)
        slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sum(
            (x - mean_x) ** 2 for x in xs
        )
        print(f"fitted slope of log(time) on log(B x V), {kernel}: {slope:.3f}")


def criterion_table(root=os.path.join("target", "criterion")):
    """Print the `cargo bench --bench kernels` results as a table of ns per entry and ratios to dot."""
    results = {}
    for directory, _, files in os.walk(root):
        if os.path.basename(directory) != "new" or "estimates.json" not in files:
            continue
        with open(os.path.join(directory, "benchmark.json")) as handle:
            benchmark = json.load(handle)
        with open(os.path.join(directory, "estimates.json")) as handle:
            median_ns = json.load(handle)["median"]["point_estimate"]
        dtype, threads, shape = benchmark["group_id"].split("/")
        rows, columns = parse_shape(shape[1:].replace("V", ""))
        kernel = benchmark.get("value_str") or benchmark["function_id"]
        results.setdefault((dtype, int(threads[:-1]), rows, columns), {})[kernel] = median_ns
    print("| dtype | threads | B | V | dot ns/entry | KL ns/entry | KL/dot | logits ns/entry | logits/dot |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (dtype, threads, rows, columns), kernels in sorted(results.items()):
        if not {"dot", "kl", "kl_logits"} <= kernels.keys():
            continue
        entries = rows * columns
        dot, kl, logits = (kernels[name] / entries for name in ("dot", "kl", "kl_logits"))
        print(
            f"| {dtype} | {threads} | {rows} | {columns} | {dot:.3f} | {kl:.3f} | {kl / dot:.2f} "
            f"| {logits:.3f} | {logits / dot:.2f} |"
        )
    extras = {key: value for key, value in results.items() if "js" in value}
    for (dtype, threads, rows, columns), kernels in sorted(extras.items()):
        entries = rows * columns
        listed = ", ".join(
            f"{name} {kernels[name] / entries:.3f}" for name in sorted(kernels)
        )
        print(f"\n{dtype}, {threads} threads, B={rows}, V={columns}, ns/entry: {listed}")


def parse_shape(text):
    rows, columns = text.lower().split("x")
    return int(rows), int(columns)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shapes",
        default="256x131072,64x32768,256x1024",
        help="comma-separated BxV shapes (default: %(default)s)",
    )
    parser.add_argument("--dtypes", default="f64,f32", help="f64, f32 or both (default: %(default)s)")
    parser.add_argument(
        "--threads",
        default=f"1,{os.cpu_count()}",
        help="comma-separated thread counts (default: 1 and all cores, %(default)s)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per median (default: %(default)s)")
    parser.add_argument("--fit-slope", action="store_true", help="also fit the slope of time in B x V")
    parser.add_argument("--no-build", action="store_true", help="skip `cargo build --release`")
    parser.add_argument(
        "--criterion-table",
        action="store_true",
        help="only print the results of `cargo bench --bench kernels` from target/criterion",
    )
    parser.add_argument("--numpy-worker", nargs=3, metavar=("SHAPE", "DTYPE", "REPEATS"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.numpy_worker:
        shape, dtype, repeats = args.numpy_worker
        rows, columns = parse_shape(shape)
        numpy_worker(rows, columns, NUMPY_DTYPES[dtype], int(repeats))
        return

    if args.criterion_table:
        criterion_table()
        return
    if not args.no_build:
        build_crate()
    shapes = [parse_shape(text) for text in args.shapes.split(",")]
    dtypes = args.dtypes.split(",")
    thread_counts = sorted({int(text) for text in args.threads.split(",")})
    compare(shapes, dtypes, thread_counts, args.repeats)
    if args.fit_slope:
        fit_slope(max(thread_counts), "f64", args.repeats)


if __name__ == "__main__":
    main()
