#!/usr/bin/env python3
"""Print high-precision divergence reference values for the metadistill tests.

Usage: python3 scripts/reference_values.py > tests/data/reference_values.tsv

mpmath evaluates every divergence at 60 significant digits on the exact f64 inputs.
The inputs are chosen where a textbook f64 formula loses digits: near-equal pairs,
entries near the smallest normal f64, zeros and disjoint supports. All randomness
comes from random.Random(SEED).random(), which the Python random docs ("Notes on
Reproducibility") promise to repeat across versions, and logarithms go through
mpmath, so the output does not depend on the platform's libm.
"""

import math
import random
import sys
from fractions import Fraction

import mpmath
from mpmath import mp, mpf

mp.dps = 60
SEED = 20261204
REFERENCE_DIGITS = 25
REGENERATE_COMMAND = "python3 scripts/reference_values.py > tests/data/reference_values.tsv"
INF = mpmath.inf


# Divergences. Arguments are lists of mpf that hold the f64 inputs exactly.

def kl(p, q):
    """Compute sum p_i ln(p_i / q_i) with 0 ln 0 = 0, or +inf if some q_i = 0 < p_i."""
    terms = []
    for pi, qi in zip(p, q):
        if pi == 0:
            continue
        if qi == 0:
            return INF
        terms.append(pi * mpmath.log(pi / qi))
    return mp.fsum(terms)


def js(p, q):
    """Compute the Jensen-Shannon divergence with the midpoint m formed exactly."""
    m = [mpmath.ldexp(mp.fadd(pi, qi, exact=True), -1) for pi, qi in zip(p, q)]
    return (kl(p, m) + kl(q, m)) / 2


def renyi(p, q, order):
    """Compute the Renyi divergence of the given order, summed over the support of p."""
    if order == 1:
        return kl(p, q)
    pairs = [(pi, qi) for pi, qi in zip(p, q) if pi > 0]
    if order == 0:
        total = mp.fsum(qi for _, qi in pairs)
        return INF if total == 0 else -mpmath.log(total)
    if order > 1 and any(qi == 0 for _, qi in pairs):
        return INF
    if math.isinf(order):
        return mpmath.log(max(pi / qi for pi, qi in pairs))
    # p (q/p)^(1-b) equals p^b q^(1-b), and it is exactly p when q = p, so
    # identical inputs give exactly 0.
    b = mpf(order)
    total = mp.fsum(pi * (qi / pi) ** (1 - b) for pi, qi in pairs if qi > 0)
    return INF if total == 0 else mpmath.log(total) / (b - 1)


def total_variation(p, q):
    """Compute half the L1 distance."""
    return mp.fsum(abs(mp.fsub(pi, qi, exact=True)) for pi, qi in zip(p, q)) / 2


def squared_hellinger(p, q):
    """Compute 1/2 sum (sqrt p_i - sqrt q_i)^2."""
    return mp.fsum((mpmath.sqrt(pi) - mpmath.sqrt(qi)) ** 2 for pi, qi in zip(p, q)) / 2


def chi_squared(p, q):
    """Compute Pearson's sum (p_i - q_i)^2 / q_i, or +inf if some q_i = 0 < p_i."""
    terms = []
    for pi, qi in zip(p, q):
        if qi == 0:
            if pi > 0:
                return INF
            continue
        terms.append(mp.fsub(pi, qi, exact=True) ** 2 / qi)
    return mp.fsum(terms)


def entropy(p):
    """Compute -sum p_i ln p_i with 0 ln 0 = 0."""
    return -mp.fsum(pi * mpmath.log(pi) for pi in p if pi > 0)


def cross_entropy(p, q):
    """Compute -sum p_i ln q_i, or +inf if some q_i = 0 < p_i."""
    if any(qi == 0 < pi for pi, qi in zip(p, q)):
        return INF
    return -mp.fsum(pi * mpmath.log(qi) for pi, qi in zip(p, q) if pi > 0)


FUNCTIONS = {
    "kl": kl,
    "reverse_kl": lambda p, q: kl(q, p),
    "js": js,
    "js_distance": lambda p, q: mpmath.sqrt(js(p, q)),
    "total_variation": total_variation,
    "hellinger": lambda p, q: mpmath.sqrt(squared_hellinger(p, q)),
    "squared_hellinger": squared_hellinger,
    "chi_squared": chi_squared,
    "cross_entropy": cross_entropy,
    "entropy": lambda p, q: entropy(p),
}


# Exactly normalized f64 inputs.

def exact_sum(values):
    return sum(map(Fraction, values), Fraction(0))


def is_float(value):
    """Return whether the rational value is exactly representable as an f64."""
    return Fraction(float(value)) == value


def normalize_exactly(weights):
    """Round weights / sum(weights) to f64 and adjust the positive entries so they sum to exactly 1.

    The largest entry takes the rounding residual first, rounded to its own ulp, and
    each smaller entry takes what is left. On Dirichlet samples of up to 1000 entries
    no entry moved by more than 5 ulps of the largest one. Zero weights stay zero.
    """
    total = mp.fsum(weights)
    values = [float(mpf(w) / total) for w in weights]
    residual = 1 - exact_sum(values)
    for i in sorted(range(len(values)), key=lambda i: -values[i]):
        if residual == 0 or values[i] == 0:
            break
        adjusted = float(Fraction(values[i]) + residual)
        if adjusted <= 0:
            raise ValueError(f"normalization residual {float(residual)} exceeds entry {values[i]}. "
                             "Use weights that are all above 1e-15 times the largest weight.")
        residual -= Fraction(adjusted) - Fraction(values[i])
        values[i] = adjusted
    if residual != 0:
        raise ValueError(f"weights {weights} cannot be normalized exactly. Try other weights.")
    return values


def dirichlet(size, rng):
    """Draw a Dirichlet(1, ..., 1) sample by normalizing Exp(1) variates exactly."""
    return normalize_exactly([-mpmath.log(1 - rng.random()) for _ in range(size)])


def perturb_near_equal(p, d, rng):
    """Return q with q_i = p_i (1 + d c_i), sum p_i c_i = 0 exactly and sum q_i = sum p_i.

    Entries are grouped with their neighbours in sorted order (pairs, plus one triple
    when len(p) is odd). Within a group the shifts q_i - p_i are multiples of twice the
    largest ulp in the group and add up to zero, so each q_i is an f64 and the sum is
    unchanged. The realized c_i are +-1 up to that rounding and the ratio of neighbours.
    """
    order = sorted(range(len(p)), key=lambda i: p[i])
    groups = [order[k:k + 2] for k in range(0, len(order), 2)]
    if len(groups[-1]) == 1:
        groups[-2].extend(groups.pop())
    q = list(p)
    for group in groups:
        grid = 2 * max(Fraction(math.ulp(p[i])) for i in group)
        sign = 1 if rng.random() < 0.5 else -1
        shifts = [round(sign * Fraction(d) * Fraction(p[i]) / grid) * grid for i in group[:-1]]
        shifts.append(-sum(shifts))
        for i, shift in zip(group, shifts):
            value = Fraction(p[i]) + shift
            if shift == 0 or value <= 0 or not is_float(value):
                raise ValueError(f"cannot perturb p[{i}] = {p[i]!r} by d = {d} on the f64 grid. Use a larger d.")
            q[i] = float(value)
    return q


def carry_missing_mass(values):
    """Return f64 entries, largest first, that add up to exactly 1 - sum(values).

    Each entry is the largest f64 not above the mass still missing. A distribution with
    an entry near 2^-1022 can only sum to exactly 1 if entries at every scale in between
    carry its low bits, so this returns about 20 entries that shrink by about 2^-53 each.
    """
    missing = 1 - exact_sum(values)
    carried = []
    while missing > 0:
        entry = float(missing)
        if Fraction(entry) > missing:
            entry = math.nextafter(entry, 0)
        carried.append(entry)
        missing -= Fraction(entry)
    return carried


def with_carried_mass(p_head, q_head):
    """Extend p_head and q_head with their carried mass, padded to equal lengths.

    The shorter list is padded by halving its largest carried entry, which is exact,
    so both lists stay positive at the same positions.
    """
    p_tail, q_tail = carry_missing_mass(p_head), carry_missing_mass(q_head)
    for tail, other in ((p_tail, q_tail), (q_tail, p_tail)):
        while len(tail) < len(other):
            half = tail[0] / 2
            tail[0:1] = [half, half]
    return p_head + p_tail, q_head + q_tail


# Cases.

RENYI_ORDERS = {0.0: "0", 0.5: "0p5", 1.0: "1", 2.0: "2", 10.0: "10", math.inf: "inf"}


def columns(functions, renyi_orders=()):
    """Return (function, order) pairs, with order None for functions other than renyi."""
    return [(function, None) for function in functions] + [("renyi", float(b)) for b in renyi_orders]


ALL_COLUMNS = columns(
    ["kl", "reverse_kl", "js", "js_distance", "total_variation", "hellinger",
     "squared_hellinger", "chi_squared", "entropy", "cross_entropy"],
    [0, 0.5, 1, 2, 10, math.inf],
)
NEAR_EQUAL_COLUMNS = columns(
    ["kl", "reverse_kl", "js", "squared_hellinger", "chi_squared", "total_variation"],
    [0.5, 2, 10, math.inf],
)
TINY_COLUMNS = columns(["kl", "reverse_kl", "js", "cross_entropy", "entropy"], [2, math.inf])
DIVERGENCES = [
    "kl", "reverse_kl", "js", "js_distance", "total_variation", "hellinger", "squared_hellinger", "chi_squared",
]


def build_cases(rng):
    """Return (case name, p, q, check_p_sum, columns) tuples."""
    # The f64 values 0.6, 0.3 and 0.1 sum to 1 - 2^-55 as rationals, so this case skips
    # the exact-sum check on p. The references still use the exact f64 inputs.
    cases = [("appendix", [0.6, 0.3, 0.1], [0.2, 0.5, 0.3], False, ALL_COLUMNS)]

    for size in (2, 3, 10, 64):
        p = dirichlet(size, rng)
        for exponent in (3, 6, 9, 12):
            q = perturb_near_equal(p, 10.0 ** -exponent, rng)
            cases.append((f"near_equal_v{size}_d1em{exponent}", p, q, True, NEAR_EQUAL_COLUMNS))

    # Entries near the smallest normal f64 (2.2250738585072014e-308) and one subnormal.
    # "matched" puts the tiny entries at the same positions in p and q. "dominant" puts
    # ordinary p mass where q is tiny, so p_i / q_i overflows f64 (0.5 / 5e-320).
    cases.append(("tiny_matched", *with_carried_mass(
        [0.4, 0.3, 0.2, 3e-308, 1e-307, 2.5e-308],
        [0.1, 0.3, 0.35, 1e-307, 5e-320, 3e-308]), True, TINY_COLUMNS))
    cases.append(("tiny_dominant", *with_carried_mass(
        [0.5, 0.3, 0.15, 3e-308, 1e-307],
        [5e-320, 3e-308, 0.6, 0.25, 0.1]), True, TINY_COLUMNS))

    cases.append(("disjoint", [0.25, 0.75, 0.0, 0.0], [0.0, 0.0, 0.625, 0.375], True,
                  columns(DIVERGENCES, [0, 0.5, 2, math.inf])))
    cases.append(("q_zero_in_p_support", normalize_exactly([0.5, 0.3, 0.2]),
                  normalize_exactly([0.6, 0.4, 0.0]), True,
                  columns(DIVERGENCES + ["cross_entropy"], [0, 0.5, 2, math.inf])))
    cases.append(("p_zero_in_q_support", normalize_exactly([0.7, 0.0, 0.3, 0.0]),
                  normalize_exactly([0.3, 0.1, 0.5, 0.1]), True,
                  columns(DIVERGENCES + ["entropy", "cross_entropy"], [0, 0.5, 2, math.inf])))

    cases.append(("random_v1000", dirichlet(1000, rng), dirichlet(1000, rng), True,
                  columns(["kl", "js"], [0.5])))
    identical = dirichlet(5, rng)
    cases.append(("identical_v5", identical, identical, True,
                  columns(DIVERGENCES, [0, 0.5, 2, math.inf])))
    cases.append(("single_outcome", [1.0], [1.0], True,
                  columns(DIVERGENCES + ["entropy", "cross_entropy"], [0.5, 2, math.inf])))
    return cases


# Output.

def evaluate(function, order, p, q):
    p_exact = [mpf(x) for x in p]
    q_exact = [mpf(x) for x in q]
    if function == "renyi":
        return renyi(p_exact, q_exact, order)
    return FUNCTIONS[function](p_exact, q_exact)


def format_reference(value):
    if value == INF:
        return "inf"
    return mpmath.nstr(value, REFERENCE_DIGITS, min_fixed=0, max_fixed=0)


def generate_rows(cases):
    """Evaluate every case column and return the TSV rows after sanity checks."""
    rows = []
    names = set()
    for case, p, q, check_p_sum, columns in cases:
        if check_p_sum:
            assert exact_sum(p) == 1, f"{case}: p does not sum to exactly 1"
        assert exact_sum(q) == 1, f"{case}: q does not sum to exactly 1"
        assert len(p) == len(q), f"{case}: p and q have different lengths"
        assert min(p) >= 0, f"{case}: p has a negative entry"
        assert min(q) >= 0, f"{case}: q has a negative entry"
        for function, order in columns:
            name = f"{case}_{function}" if order is None else f"{case}_renyi_{RENYI_ORDERS[order]}"
            assert name not in names, f"duplicate case name {name}"
            names.add(name)
            value = evaluate(function, order, p, q)
            assert value >= 0, f"{name}: negative reference {value}"
            if case in ("identical_v5", "single_outcome") and function not in ("entropy", "cross_entropy"):
                assert value == 0, f"{name}: expected exactly 0, got {value}"
            rows.append([
                name,
                function,
                "-" if order is None else repr(order),
                ",".join(map(repr, p)),
                "-" if function == "entropy" else ",".join(map(repr, q)),
                format_reference(value),
            ])
    return rows


def main():
    rows = generate_rows(build_cases(random.Random(SEED)))
    appendix_kl = next(row for row in rows if row[0] == "appendix_kl")
    assert appendix_kl[5].startswith("3.96058"), f"appendix kl is {appendix_kl[5]}, expected 0.396058..."
    out = sys.stdout
    out.write("# Reference values for metadistill's divergences, entropies and Renyi divergences.\n")
    out.write(f"# Regenerate with: {REGENERATE_COMMAND}\n")
    out.write(f"# Computed by mpmath {mpmath.__version__} at mp.dps = {mp.dps} on the exact f64 inputs. "
              f"reference is rounded to {REFERENCE_DIGITS} significant digits, and inf is +infinity.\n")
    out.write("# Natural logarithms. order is the Renyi order, and p and q are Python float reprs "
              "(shortest round-trip).\n")
    out.write("# Every p and q sums to exactly 1 as rationals, except p in the appendix_* rows: "
              "the f64 values 0.6, 0.3 and 0.1 sum to 1 - 2^-55.\n")
    out.write("# near_equal_vV_d1emN: vocabulary size V, q_i = p_i (1 + d c_i) with d = 1e-N.\n")
    out.write("name\tfunction\torder\tp\tq\treference\n")
    for row in rows:
        out.write("\t".join(row) + "\n")


if __name__ == "__main__":
    main()
