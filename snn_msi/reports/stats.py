"""The statistics of the studies: Student-t intervals of means and paired differences, per-seed OLS slopes, and
a two one-sided tests (TOST) equivalence check. Seeds are the independent units throughout."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["PLATEAU_POINTS", "last_quarter_gain", "t_interval", "seed_slopes", "tost"]


#: Normal's mean validation gain over the last quarter of a run below which it has plateaued (points; the
#: methods benchmark's and the inverse-effectiveness study's horizon check)
PLATEAU_POINTS = 0.5


def t_interval(diffs: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided confidence interval of paired differences (Student t); NaN bounds for one value."""
    from scipy import stats

    d = np.asarray(diffs, dtype=float)
    m = float(d.mean())
    if len(d) < 2:
        return m, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d)))
    return m, m - half, m + half


def seed_slopes(points: dict[int, list[tuple[float, float]]]) -> list[float]:
    """Per seed, the OLS slope of y on x over that seed's ``(x, y)`` points (seeds with < 2 distinct x skipped)."""
    slopes = []
    for pts in points.values():
        x, y = np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
        if len(set(x.tolist())) >= 2:
            slopes.append(float(np.polyfit(x, y, 1)[0]))
    return slopes


def tost(diffs: list[float], margin: float, alpha: float = 0.05) -> tuple[bool, float]:
    """Two one-sided t-tests: are paired differences within ``±margin`` (equivalent) at level ``alpha``?

    Returns ``(equivalent, p)`` with ``p`` the larger of the two one-sided p-values; equivalent exactly when the
    ``1 - 2 alpha`` t-interval of the mean lies inside ``(-margin, margin)``. Fewer than two values, or no spread
    with a mean outside the margin, are not equivalent."""
    from scipy import stats

    d = np.asarray(diffs, dtype=float)
    if margin <= 0 or len(d) < 2:
        return False, float("nan") if len(d) < 2 else 1.0
    m, se = float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d)))
    if se == 0:
        inside = -margin < m < margin
        return inside, 0.0 if inside else 1.0
    df = len(d) - 1
    p = max(float(stats.t.sf((m + margin) / se, df)), float(stats.t.cdf((m - margin) / se, df)))
    return p < alpha, p


def last_quarter_gain(curve: list[tuple[float, float]]) -> float:
    """Points of validation accuracy a run gained in the last quarter of its training samples: the best accuracy
    there minus the best before (NaN for a curve without points in both)."""
    if not curve:
        return float("nan")
    cut = 0.75 * curve[-1][0]
    before, last = [a for n, a in curve if n <= cut], [a for n, a in curve if n > cut]
    return 100 * (max(last) - max(before)) if before and last else float("nan")


def fewer_seeds(k: int, n: int) -> str:
    """`` (n = k)`` after a value over fewer seeds (``k``) than its row or study has (``n``), else nothing."""
    return f" (n = {k})" if k < n else ""
