"""Polynomial coefficients of the fused kernels, fitted in 60-digit arithmetic.

Run: python3 scripts/kernel_coefficients.py   (mpmath 1.3.0, from requirements.txt)

For each series the kernels evaluate, the script fits a polynomial by
Chebyshev interpolation (mpmath.chebyfit) on the interval the kernels feed it.
It rounds the coefficients to f64 and f32 and prints the largest relative
error of the rounded polynomial against the function on 2001 points of the
interval. The Rust constants in src/kernels/lanes.rs are the printed values.
"""

import mpmath as mp

mp.mp.dps = 60

# |v| <= 3 - 2*sqrt(2) = 0.1716 after the range reduction of the logarithm,
# and |v| <= 0.2004 after that of the KL kernel, which reads the ratio's
# binade off the difference of the bit patterns (off by up to 0.0861 of a
# binade). A little room above covers the rounding of v.
ATANH_T_MAX = mp.mpf("0.0405")


def atanh_tail_series(t):
    """S(t) with atanh(v) = v + v^3 S(v^2), t = v^2."""
    if t == 0:
        return mp.mpf(1) / 3
    v = mp.sqrt(t)
    return (mp.atanh(v) - v) / v**3


# |delta| <= 3 - 2*sqrt(2), where the Jensen-Shannon kernel takes its series.
JS_T_MAX = mp.mpf("0.0295")

# |r| <= ln(2)/2 after the range reduction of the exponential, plus room for
# the rounding of r.
EXP_R_MAX = mp.log(2) / 2 + mp.mpf("1e-6")

# |t| <= 0.25, where the logits kernel takes psi(t) from its series.
PSI_T_MAX = mp.mpf("0.25")


def js_series(t):
    """H(t) with h(delta) = delta^2 H(delta^2), the Jensen-Shannon kernel."""
    if t == 0:
        return mp.mpf(1)
    d = mp.sqrt(t)
    h = (1 + d) * mp.log(1 + d) + (1 - d) * mp.log(1 - d)
    return h / t


def psi_series(t):
    """P(t) with psi(t) = e^(-t) - 1 + t = t^2 P(t)."""
    if t == 0:
        return mp.mpf(1) / 2
    return (mp.exp(-t) - 1 + t) / t**2


def to_f32(x):
    """Rounds x to the nearest f32 (round half to even), returned as an mpf."""
    import struct

    return mp.mpf(struct.unpack("f", struct.pack("f", float(x)))[0])


def fit(name, function, interval, degree, rounding):
    coefficients, _ = mp.chebyfit(function, interval, degree + 1, error=True)
    rounded = [rounding(c) for c in coefficients]
    lo, hi = interval
    worst = mp.mpf(0)
    for i in range(2001):
        x = lo + (hi - lo) * i / 2000
        worst = max(worst, abs(mp.polyval(rounded, x) / function(x) - 1))
    # Lowest degree first, as the kernels store them.
    print(f"{name}: degree {degree}, max relative error {mp.nstr(worst, 3)}")
    for c in reversed(rounded):
        print(f"    {float(c)!r},")


if __name__ == "__main__":
    fit("ATANH_TAIL f64", atanh_tail_series, [0, ATANH_T_MAX], 7, lambda c: mp.mpf(float(c)))
    fit("ATANH_TAIL f32", atanh_tail_series, [0, ATANH_T_MAX], 3, to_f32)
    fit("JS_SERIES f64", js_series, [0, JS_T_MAX], 6, lambda c: mp.mpf(float(c)))
    fit("JS_SERIES f32", js_series, [0, JS_T_MAX], 2, to_f32)
    fit("EXP_SERIES f64", mp.exp, [-EXP_R_MAX, EXP_R_MAX], 11, lambda c: mp.mpf(float(c)))
    fit("EXP_SERIES f32", mp.exp, [-EXP_R_MAX, EXP_R_MAX], 6, to_f32)
    fit("PSI_SERIES f64", psi_series, [-PSI_T_MAX, PSI_T_MAX], 9, lambda c: mp.mpf(float(c)))
    fit("PSI_SERIES f32", psi_series, [-PSI_T_MAX, PSI_T_MAX], 5, to_f32)
