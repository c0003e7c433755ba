"""The formulas of the report, as pure functions (docs/metrics.md writes each one out).

No SQL and no I/O: the store hands counts in, these turn them into rates, scores and tests.
``None`` means "no data to compute this from" (an empty denominator), never zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

SIGNIFICANCE_LEVEL = 0.05
"""A variant's difference from its baseline is called significant below this p-value."""


def ratio(part: float, whole: float, digits: int = 4) -> float | None:
    """``part / whole`` rounded, or None when ``whole`` is 0."""
    return round(part / whole, digits) if whole else None


def nps(categories: Mapping[str, int]) -> float | None:
    """Net Promoter Score: % promoters (9-10) − % detractors (0-6) of all NPS answers."""
    total = sum(categories.values())
    if not total:
        return None
    promoters, detractors = categories.get("promoter", 0), categories.get("detractor", 0)
    return round(100 * (promoters - detractors) / total, 1)


def csat(categories: Mapping[str, int]) -> float | None:
    """Customer satisfaction: % of CSAT answers (1-5) that are 4 or 5 (``satisfied``)."""
    total = sum(categories.values())
    return round(100 * categories.get("satisfied", 0) / total, 1) if total else None


def predicted_clv(
    orders: int, revenue: float, customers: int, churn_rate: float | None
) -> float | None:
    """Average order value × orders per ordering customer in the period ÷ churn rate.

    A churn rate of 0 (everybody came back) or unknown gives None: the formula has no finite
    value then.
    """
    if not orders or not customers or not churn_rate:
        return None
    average_order = revenue / orders
    frequency = orders / customers
    return round(average_order * frequency / churn_rate, 2)


@dataclass(frozen=True)
class ProportionTest:
    """A two-proportion z-test of a variant against its baseline."""

    uplift: float | None  # the variant's conversion rate minus the baseline's
    relative_uplift: float | None  # uplift / baseline rate
    z: float | None
    p_value: float | None  # two-sided

    @property
    def significant(self) -> bool:
        """Whether the difference is significant at :data:`SIGNIFICANCE_LEVEL`."""
        return self.p_value is not None and self.p_value < SIGNIFICANCE_LEVEL


def two_proportion_test(
    converted: int, entered: int, base_converted: int, base_entered: int
) -> ProportionTest:
    """Pooled two-proportion z-test of ``converted/entered`` against the baseline's rate.

    z = (p₁ − p₀) / √(p̂ (1 − p̂) (1/n₁ + 1/n₀)) with p̂ the pooled rate; the p-value is
    two-sided, 2 (1 − Φ(|z|)). Undefined (None) when either group is empty; when nobody or
    everybody converted in both groups the rates are equal and p = 1.
    """
    if not entered or not base_entered:
        return ProportionTest(None, None, None, None)
    p1, p0 = converted / entered, base_converted / base_entered
    uplift = round(p1 - p0, 4)
    relative = round((p1 - p0) / p0, 4) if p0 else None
    pooled = (converted + base_converted) / (entered + base_entered)
    variance = pooled * (1 - pooled) * (1 / entered + 1 / base_entered)
    if variance == 0:
        return ProportionTest(uplift, relative, 0.0, 1.0)
    z = (p1 - p0) / math.sqrt(variance)
    p_value = math.erfc(abs(z) / math.sqrt(2))  # = 2 (1 - Φ(|z|))
    return ProportionTest(uplift, relative, round(z, 3), round(p_value, 4))
