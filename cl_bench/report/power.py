"""How many paired runs a comparison needs: the power of the two-sided paired t-test.

With n pairs whose differences have mean delta and standard deviation sigma, the paired t
statistic follows a noncentral t distribution with df = n - 1 and noncentrality
lambda = sqrt(n) delta / sigma (Cohen, "Statistical Power Analysis for the Behavioral Sciences",
1988, ch. 2; the formula of statsmodels' ``TTestPower``). At level alpha its power is

    power(n) = P(T > t_{1-alpha/2, n-1}) + P(T < -t_{1-alpha/2, n-1}),  T ~ nct(n - 1, lambda)

and :func:`paired_runs_needed` is the smallest n >= 2 with power(n) >= the target. Computed
with ``scipy.stats.nct`` and ``scipy.stats.t`` (statsmodels is not a dependency).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

#: the search stops here; a larger need is reported as "more than MAX_PAIRS"
MAX_PAIRS = 100_000


def paired_t_power(n: int, effect_size: float, alpha: float = 0.05) -> float:
    """Power of the two-sided paired t-test with ``n`` pairs and standardised effect
    ``effect_size`` = delta / sigma (module docstring)."""
    if n < 2:
        return float("nan")
    df = n - 1
    critical = stats.t.ppf(1 - alpha / 2, df)
    noncentrality = math.sqrt(n) * abs(effect_size)
    return float(stats.nct.sf(critical, df, noncentrality)
                 + stats.nct.cdf(-critical, df, noncentrality))


def paired_runs_needed(differences: np.ndarray, alpha: float = 0.05,
                       power: float = 0.8) -> float:
    """The smallest n >= 2 of paired runs at which the two-sided paired t-test at ``alpha``
    detects the observed mean difference with probability ``power``, taking the observed
    standard deviation (ddof 1) of ``differences`` as the true one.

    NaN with fewer than two differences or a zero mean difference (nothing to detect); 2 when
    the differences have no spread; ``inf`` above :data:`MAX_PAIRS`.
    """
    d = np.asarray(differences, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size < 2:
        return float("nan")
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if abs(mean) <= 1e-12:
        return float("nan")
    if sd <= 1e-12:
        return 2.0
    effect = mean / sd
    if paired_t_power(MAX_PAIRS, effect, alpha) < power:
        return float("inf")
    low, high = 2, 2
    while paired_t_power(high, effect, alpha) < power:  # power grows with n: double, bisect
        low, high = high, high * 2
    while low < high:
        middle = (low + high) // 2
        if paired_t_power(middle, effect, alpha) >= power:
            high = middle
        else:
            low = middle + 1
    return float(high)


__all__ = ["MAX_PAIRS", "paired_runs_needed", "paired_t_power"]
