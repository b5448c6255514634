"""Across-seed summaries: mean, std and a Student-t confidence interval.

Every figure and table that aggregates seeds goes through :func:`mean_ci` (or
its vectorised twin :func:`aggregate_seeds`, which uses the same formula), so a
number in a table and the band in a figure can never disagree.

* std uses ddof=1 (the sample standard deviation).
* the interval is ``mean +- t.ppf((1 + level) / 2, n - 1) * std / sqrt(n)``.
* NaN values (pycocotools' "no ground truth in that range") are left out and
  do not count towards ``n``.
* with one value, std and the interval are NaN: nothing to draw, print "n=1".
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats as _st

LEVEL = 0.95  # the confidence level of every interval and test of the study

SUMMARY_COLUMNS = ["mean", "std", "lo", "hi", "n"]


def _check_level(level: float) -> float:
    if not isinstance(level, (int, float)) or isinstance(level, bool) or not 0 < level < 1:
        raise ValueError(f"confidence level must be in (0, 1), got {level!r}")
    return float(level)


def _half_width(std, n, level: float):
    """t-interval half width; NaN where n < 2 (no spread can be estimated)."""
    std = np.asarray(std, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        dof = np.where(n >= 2, n - 1, np.nan)
        half = _st.t.ppf(0.5 + level / 2, dof) * std / np.sqrt(n)
    return np.where(n >= 2, half, np.nan)


def mean_ci(values: Iterable[float], level: float = LEVEL) -> dict:
    """Mean, std (ddof=1) and the ``level`` t-interval of the finite values.

    Returns ``dict(mean, std, lo, hi, n)``; ``n`` counts the finite values.
    n == 0: everything NaN; n == 1: mean is the value, std/lo/hi NaN.
    """
    level = _check_level(level)
    v = np.asarray(list(values), dtype=float).ravel()
    v = v[np.isfinite(v)]
    n = int(v.size)
    nan = float("nan")
    if n == 0:
        return {"mean": nan, "std": nan, "lo": nan, "hi": nan, "n": 0}
    mean = float(v.mean())
    if n == 1:
        return {"mean": mean, "std": nan, "lo": nan, "hi": nan, "n": 1}
    std = float(v.std(ddof=1))
    half = float(_half_width(std, n, level))
    return {"mean": mean, "std": std, "lo": mean - half, "hi": mean + half, "n": n}


def detectable_difference(std: float, n: int, level: float = LEVEL, power: float = 0.8) -> float:
    """The smallest true mean difference a paired t-test on `n` seeds with this spread
    would find (its `level` two-sided interval excluding 0) with probability `power`:
    (t((1 + level) / 2, n - 1) + t(power, n - 1)) * std / sqrt(n). NaN below 2 seeds."""
    level = _check_level(level)
    if n < 2 or not math.isfinite(std):
        return float("nan")
    dof = n - 1
    return float((_st.t.ppf(0.5 + level / 2, dof) + _st.t.ppf(power, dof)) * std / math.sqrt(n))


def aggregate_seeds(df: pd.DataFrame, by: Sequence[str], value: str = "value",
                    level: float = LEVEL) -> pd.DataFrame:
    """Collapse the rows of each ``by`` group (normally: the seeds) to one summary row.

    Returns the ``by`` columns followed by ``mean, std, lo, hi, n`` (the same
    numbers :func:`mean_ci` gives for each group), in first-appearance order.
    """
    level = _check_level(level)
    by = list(by)
    missing = [c for c in [*by, value] if c not in df.columns]
    if missing:
        raise KeyError(f"aggregate_seeds: frame has no column(s) {', '.join(missing)}")
    if df.empty:
        return pd.DataFrame(columns=by + SUMMARY_COLUMNS)
    vals = pd.to_numeric(df[value], errors="coerce").astype("float64")
    g = vals.groupby([df[c] for c in by], sort=False, dropna=False)
    out = pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1), "n": g.count()})
    out.loc[out["n"] < 2, "std"] = math.nan
    half = _half_width(out["std"].to_numpy(), out["n"].to_numpy(), level)
    out["lo"] = out["mean"] - half
    out["hi"] = out["mean"] + half
    out["n"] = out["n"].astype("int64")
    out = out.reset_index()
    out.columns = by + list(out.columns[len(by):])
    return out[by + SUMMARY_COLUMNS]


# --------------------------------------------------------------------------
# three-outcome tests against a bound (rethink.analysis.claims)
# --------------------------------------------------------------------------
HOLDS, REFUTED, INCONCLUSIVE = "holds", "refuted", "inconclusive"
SIDES = ("above", "below")


def _check_side(side: str) -> str:
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    return side


def three_way(ci: dict, side: str, bound: float) -> str:
    """The outcome of a claim "the true value lies `side` `bound`", from its interval: holds
    when the whole interval is on the claim's side, refuted when it is wholly on the other,
    inconclusive when it straddles the bound (or there is no interval: fewer than 2 values)."""
    _check_side(side)
    if ci["n"] < 2 or not math.isfinite(ci["lo"]):
        return INCONCLUSIVE
    lo, hi = ci["lo"], ci["hi"]
    if side == "above":
        return HOLDS if lo > bound else REFUTED if hi < bound else INCONCLUSIVE
    return HOLDS if hi < bound else REFUTED if lo > bound else INCONCLUSIVE


def two_sided_p(ci: dict, bound: float) -> float:
    """Two-sided one-sample t-test p-value of mean == bound (what the interval decides: the
    `level` interval excludes `bound` exactly when p < 1 - level). NaN below 2 values; with
    no spread, 0 if the mean differs from the bound, else 1."""
    n, std = ci["n"], ci["std"]
    if n < 2 or not math.isfinite(std):
        return float("nan")
    if std == 0:
        return 0.0 if ci["mean"] != bound else 1.0
    t = (ci["mean"] - bound) / (std / math.sqrt(n))
    return float(2 * _st.t.sf(abs(t), n - 1))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (NaN stays NaN and is not counted): the k-th
    smallest of m is multiplied by m - k + 1, and adjusted values never decrease with rank."""
    p = np.asarray(pvalues, dtype=float)
    finite = np.flatnonzero(np.isfinite(p))
    out = np.full(p.shape, np.nan)
    m = finite.size
    running = 0.0
    for rank, i in enumerate(finite[np.argsort(p[finite], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


def power_to_hold(std: float, n: int, side: str, bound: float, true: float,
                  level: float = LEVEL) -> float:
    """Probability that :func:`three_way` reads "holds" when the per-seed values are normal
    with mean `true` and SD `std`, over `n` seeds: the noncentral t's probability that the
    `level` interval lies wholly on the claim's side of `bound`. NaN below 2 seeds."""
    level, side = _check_level(level), _check_side(side)
    if n < 2 or not math.isfinite(std):
        return float("nan")
    crit = _st.t.ppf(0.5 + level / 2, n - 1)
    shift = (true - bound) if side == "above" else (bound - true)
    if std == 0:
        return 1.0 if shift > 0 else 0.0
    return float(_st.nct.sf(crit, n - 1, shift * math.sqrt(n) / std))


def slope_per_seed(x: Sequence[float], y: pd.DataFrame) -> pd.Series:
    """Least-squares slope of each row of `y` (one row per seed, one column per x) against
    `x` (at least two distinct values): the per-seed rate that a levelling-off test and a
    gap's closing speed are judged on."""
    x = np.asarray(x, dtype=float)
    xc = x - x.mean()
    if x.size < 2 or not (xc @ xc) > 0:
        raise ValueError(f"a slope needs two distinct x values, got {x.tolist()}")
    return pd.Series(y.to_numpy(dtype=float) @ xc / (xc @ xc), index=y.index)


__all__ = ["SUMMARY_COLUMNS", "mean_ci", "aggregate_seeds", "detectable_difference", "three_way",
           "two_sided_p", "holm", "power_to_hold", "slope_per_seed", "HOLDS", "REFUTED",
           "INCONCLUSIVE"]


# A pre-training has levelled off when the last quarter of its epochs adds less than this
# (val top-1, percentage points): the backbone the pretrained branches start from is then
# as good as more epochs of that recipe would make it.
LEVELLED_OFF_POINTS = 1.0


def last_quarter_gain(curve: Sequence[dict]) -> float:
    """Val top-1 points gained over the last quarter of a pre-training's epochs (at least the
    last one); `curve` is its per-epoch [{"epoch", "top1", ...}] with top-1 as a fraction."""
    k = max(1, len(curve) // 4)
    before = curve[-k - 1]["top1"] if len(curve) > k else 0.0
    return 100 * (curve[-1]["top1"] - before)
