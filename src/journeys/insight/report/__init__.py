"""The KPI report: every figure of ``journeys report`` and the dashboard, as plain data.

:func:`build_report` asks the store (:mod:`journeys.store.kpis`) for grouped counts and turns
them into the JSON contract of docs/metrics.md with the formulas of :mod:`journeys.insight.stats`.
The plans only name and order things (steps, split variants, where a waiting customer is).
One module per section: :mod:`.enrollments` (journeys, steps, live positions) with
:mod:`.splits` (A/B tests), :mod:`.messages`, :mod:`.surveys`, :mod:`.customers` (value,
retention, stages), :mod:`.voice` (comments) and :mod:`.trends`; :mod:`.build` puts them together.
"""

from journeys.insight.report.build import build_report, stored_plans
from journeys.insight.report.enrollments import position
from journeys.insight.report.splits import CONTROL
from journeys.insight.report.surveys import nps_series

__all__ = ["CONTROL", "build_report", "nps_series", "position", "stored_plans"]
