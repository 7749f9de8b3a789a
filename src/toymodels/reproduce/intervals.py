"""Noise-aware decisions: 95% intervals over seeds, trends with their p-values, and a floor read off an interval.

Every effect a verdict rests on is an :class:`Interval` over seeds, never a mean alone:

* :func:`paired` when both sides ran the same seeds (the same seed draws the same data and the same initial
  weights, so the per-seed difference removes that noise): Student's t interval of the per-seed differences;
* :func:`unpaired` otherwise: a percentile bootstrap over seeds (each side resampled on its own);
* :func:`ratio`: the same bootstrap for a ratio of means (a loss relative to another);
* :func:`trend`: Spearman's rank correlation over every seed's point (not over means), its two-sided p-value, and a
  bootstrap interval that resamples whole seeds (a seed's points move together).

An interval is read against a floor with :meth:`Interval.versus`: ``above`` only when the whole interval is at or
above the floor, ``below`` when it is at or below minus the floor, ``within`` when it lies strictly inside
(-floor, floor) (no effect as large as the floor), and ``unclear`` otherwise, which a verdict reports as
inconclusive. :func:`threshold_sensitivity` says how a verdict moves when its thresholds are halved or doubled.

Example:
    >>> d = paired([10.0, 12.0, 11.0], [2.0, 3.0, 2.5])
    >>> round(d.estimate, 2), d.versus(5.0)
    (8.5, 'above')
    >>> paired([1.0, 9.0], [0.0, 0.0]).versus(5.0)
    'unclear'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

#: the confidence of every interval, and the bootstrap's resamples and seed (fixed: a document regenerates the same)
LEVEL = 0.95
RESAMPLES = 4000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Interval:
    """An estimate with its 95% interval [low, high] over ``n`` seeds, and how it was computed."""

    estimate: float
    low: float
    high: float
    n: int
    method: str

    def versus(self, floor: float) -> str:
        """``above`` / ``below`` / ``within`` / ``unclear`` against ``floor`` (module docstring); ``unclear`` when
        the interval is undefined (fewer than 2 seeds)."""
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return "unclear"
        if self.low >= floor:
            return "above"
        if self.high <= -floor:
            return "below"
        if -floor < self.low and self.high < floor:
            return "within"
        return "unclear"

    def text(self, digits: int = 3, signed: bool = True) -> str:
        """``+8.5 [95% CI +6.3, +10.7]`` (``n/a`` bounds with fewer than 2 seeds)."""
        fmt = (lambda v: f"{v:+.{digits}g}") if signed else (lambda v: f"{v:.{digits}g}")
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return f"{fmt(self.estimate)} [95% CI n/a, n={self.n}]"
        return f"{fmt(self.estimate)} [95% CI {fmt(self.low)}, {fmt(self.high)}]"


def _clean(values: Sequence[float]) -> np.ndarray:
    a = np.asarray(list(values), dtype=float)
    return a[np.isfinite(a)]


def mean_interval(values: Sequence[float]) -> Interval:
    """Student's t interval of the mean of ``values`` (non-finite values dropped)."""
    a = _clean(values)
    n = len(a)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, "t")
    if n == 1:
        return Interval(float(a[0]), math.nan, math.nan, 1, "t")
    from scipy import stats  # deferred: only the studies need scipy here

    half = float(stats.t.ppf(0.5 + LEVEL / 2, n - 1) * a.std(ddof=1) / math.sqrt(n))
    m = float(a.mean())
    return Interval(m, m - half, m + half, n, f"t interval, n={n}")


def paired(a: Sequence[float], b: Sequence[float]) -> Interval:
    """The mean of a - b over seeds that both sides ran (``a[i]`` and ``b[i]`` the same seed), with Student's t
    interval of the differences; pairs with a non-finite side are dropped (a diverged run)."""
    x, y = np.asarray(list(a), dtype=float), np.asarray(list(b), dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired: {len(x)} values against {len(y)}; pair them by seed first")
    keep = np.isfinite(x) & np.isfinite(y)
    out = mean_interval(x[keep] - y[keep])
    return Interval(out.estimate, out.low, out.high, out.n, f"paired by seed, t interval, n={out.n}")


def _bootstrap(samples: Sequence[np.ndarray], statistic: Callable[..., float], method: str) -> Interval:
    if any(len(s) == 0 for s in samples):
        return Interval(math.nan, math.nan, math.nan, 0, method)
    estimate = float(statistic(*samples))
    n = min(len(s) for s in samples)
    if n < 2:
        return Interval(estimate, math.nan, math.nan, n, method)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    draws = np.array([statistic(*(s[rng.integers(0, len(s), len(s))] for s in samples))
                      for _ in range(RESAMPLES)], dtype=float)
    draws = draws[np.isfinite(draws)]
    low, high = np.quantile(draws, [(1 - LEVEL) / 2, (1 + LEVEL) / 2]) if len(draws) else (math.nan, math.nan)
    return Interval(estimate, float(low), float(high), n, f"{method}, n={n}")


def unpaired(a: Sequence[float], b: Sequence[float]) -> Interval:
    """mean(a) - mean(b) with a percentile bootstrap over seeds, each side resampled on its own."""
    return _bootstrap([_clean(a), _clean(b)], lambda x, y: x.mean() - y.mean(), "bootstrap over seeds")


def ratio(a: Sequence[float], b: Sequence[float]) -> Interval:
    """mean(a) / mean(b) with a percentile bootstrap over seeds (paired resampling when both sides have the same
    seeds, i.e. equal lengths; non-finite values dropped pairwise then)."""
    x, y = np.asarray(list(a), dtype=float), np.asarray(list(b), dtype=float)
    if x.shape == y.shape:
        keep = np.isfinite(x) & np.isfinite(y)
        pairs = np.stack([x[keep], y[keep]], axis=1)
        return _bootstrap([pairs], lambda p: p[:, 0].mean() / p[:, 1].mean(), "paired bootstrap over seeds")
    return _bootstrap([_clean(a), _clean(b)], lambda u, v: u.mean() / v.mean(), "bootstrap over seeds")


@dataclass(frozen=True)
class Trend:
    """Spearman's rho over every seed's point, its two-sided p-value, and a seed-bootstrap interval of rho."""

    rho: float
    p: float
    interval: Interval

    def text(self) -> str:
        return f"Spearman {self.rho:+.2f} (p {self.p:.2g}; 95% CI {self.interval.low:+.2f}, {self.interval.high:+.2f})"

    def direction(self) -> str:
        """``rises`` / ``falls`` when the whole interval is above / below 0, else ``unclear``."""
        if self.interval.low > 0:
            return "rises"
        return "falls" if self.interval.high < 0 else "unclear"


def _rho(x: np.ndarray, y: np.ndarray) -> float:
    from scipy import stats  # deferred: only the studies need scipy here

    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    rho = stats.spearmanr(x, y).statistic
    return float(rho) if np.isfinite(rho) else 0.0


def trend(x: Sequence[float], y: Sequence[float], seeds: Sequence[int]) -> Trend:
    """Does ``y`` rise with ``x``? ``x``, ``y``, ``seeds``: one entry per run (non-finite ``y`` dropped). The
    interval resamples whole seeds, the p-value is scipy's for the pooled points.

    >>> t = trend([1, 2, 3, 1, 2, 3], [0.1, 0.5, 0.9, 0.2, 0.4, 1.0], [0, 0, 0, 1, 1, 1])
    >>> t.rho > 0.8, t.direction()
    (True, 'rises')
    """
    from scipy import stats  # deferred: only the studies need scipy here

    xs, ys, ss = (np.asarray(list(v), dtype=float) for v in (x, y, seeds))
    keep = np.isfinite(ys) & np.isfinite(xs)
    xs, ys, ss = xs[keep], ys[keep], ss[keep]
    rho = _rho(xs, ys)
    p = float(stats.spearmanr(xs, ys).pvalue) if np.ptp(xs) and np.ptp(ys) else 1.0
    groups = [np.flatnonzero(ss == s) for s in np.unique(ss)]
    if len(groups) < 2:
        return Trend(rho, p, Interval(rho, math.nan, math.nan, len(groups), "seed bootstrap"))
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    draws = []
    for _ in range(RESAMPLES):
        idx = np.concatenate([groups[i] for i in rng.integers(0, len(groups), len(groups))])
        draws.append(_rho(xs[idx], ys[idx]))
    low, high = np.quantile(draws, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return Trend(rho, p if math.isfinite(p) else 1.0,
                 Interval(rho, float(low), float(high), len(groups), f"seed bootstrap, {len(groups)} seeds"))


def threshold_sensitivity(judge: Callable[[float], str], current: str) -> str:
    """How a verdict moves with its thresholds: ``judge(factor)`` gives the verdict word with every threshold
    multiplied by ``factor``; returns e.g. ``"unchanged with thresholds halved or doubled"`` or ``"halved: agrees;
    doubled: inconclusive"``."""
    half, double = judge(0.5), judge(2.0)
    if half == current and double == current:
        return "unchanged with thresholds halved or doubled"
    return f"thresholds halved: {half}; doubled: {double}"
