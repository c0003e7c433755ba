"""The A/B splits of a journey: each variant's conversion against the baseline's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from journeys.insight.stats import ratio, two_proportion_test
from journeys.plan import Plan, SplitStep

CONTROL = "control"
"""The variant name that marks a split's hold-out group (its baseline)."""


def split_figures(
    plan: Plan, tallies: Mapping[tuple[str, str, str], list[int]]
) -> dict[str, dict[str, Any]]:
    """Per split step: each variant's entered/converted/rate, and against the baseline (the
    ``control`` variant, else the split's first variant) the uplift and a z-test."""
    out: dict[str, dict[str, Any]] = {}
    for split in plan.steps:
        if not isinstance(split, SplitStep):
            continue
        counts = {v.variant: (0, 0) for v in split.variants}
        for (journey, step_id, variant), (entered, converted) in tallies.items():
            if journey == plan.journey and step_id == split.id:
                counts[variant] = (entered, converted)
        names = list(counts)
        baseline = CONTROL if CONTROL in counts else names[0]
        base_entered, base_converted = counts[baseline]
        variants: dict[str, Any] = {}
        for name in names:
            entered, converted = counts[name]
            v: dict[str, Any] = {
                "entered": entered,
                "converted": converted,
                "conversion_rate": ratio(converted, entered),
            }
            if name == baseline:
                v["baseline"] = True
            else:
                test = two_proportion_test(converted, entered, base_converted, base_entered)
                v.update(
                    uplift=test.uplift,
                    relative_uplift=test.relative_uplift,
                    z=test.z,
                    p_value=test.p_value,
                    significant=test.significant,
                )
            variants[name] = v
        winner = _winner(variants, baseline)
        out[split.id] = {"baseline": baseline, "winner": winner, "variants": variants}
    return out


def _winner(variants: dict[str, Any], baseline: str) -> str | None:
    """The variant that beats the baseline significantly with the highest rate, if any."""
    better = [
        (v["conversion_rate"] or 0.0, name)
        for name, v in variants.items()
        if name != baseline and v.get("significant") and (v.get("uplift") or 0) > 0
    ]
    return max(better)[1] if better else None
