"""journeys: marketing customer journeys as code.

YAML specs are parsed and validated (:mod:`journeys.spec`), compiled into immutable plans
(:mod:`journeys.plan`), and run by the runtime against a SQLAlchemy store, in real or virtual time.
"""

__version__ = "0.1.0"
