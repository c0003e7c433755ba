"""Orchestration on Prefect: journeys as deployments, CRM events as Prefect events.

- :mod:`journeys.orchestration.prefect_deploy` turns compiled plans into Prefect deployments
  (one per journey, named after it, with its event triggers and cron schedules) and registers
  them for a work pool or serves them from one process (``journeys deploy``).
- :mod:`journeys.orchestration.prefect_events` converts CRM events to and from Prefect events
  (``crm.<type>``, resource ``journeys.customer.<id>``) and pulls them into the event store.
- :mod:`journeys.orchestration.flow_support` opens the engine inside a flow run from the
  environment (``JOURNEYS_DATABASE_URL``, ``JOURNEYS_SPECS``, ``JOURNEYS_TEMPLATES``).

The flows themselves are module-level functions in the top-level ``flows/journey_flows.py``, so
that Prefect can load them again from their entry point (``serve`` and workers do).

Importing this package does not import Prefect; its modules do.
"""
