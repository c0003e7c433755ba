"""Insight: the KPI report (``report``, formulas in ``stats``), the voice of the customer
(``voc``), charts (``charts``), the live journey diagram (``diagram``), the one-file HTML
report (``html``) and the dashboard router (``dashboard``). See docs/metrics.md.

Only :mod:`journeys.store` knows SQL (``kpis``, ``customer_view``, ``voc`` there); everything
here is assembly, formulas and presentation.
"""
