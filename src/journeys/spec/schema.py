"""JSON Schema (draft 2020-12) of the language, for editors (yaml-language-server)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from journeys.spec.models import JourneySpec, LifecycleFile, SettingsFile

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def _schema(model: type[BaseModel], title: str) -> dict[str, Any]:
    schema = model.model_json_schema(mode="validation")
    return {"$schema": DRAFT, **schema, "title": title}


def journey_schema() -> dict[str, Any]:
    """The schema of a journey file (``journey_specs/*.yaml``)."""
    return _schema(JourneySpec, "journeys journey spec")


def lifecycle_schema() -> dict[str, Any]:
    """The schema of ``journey_specs/lifecycle.yaml``."""
    return _schema(LifecycleFile, "journeys lifecycle.yaml")


def settings_schema() -> dict[str, Any]:
    """The schema of the project settings ``journeys.yaml``."""
    return _schema(SettingsFile, "journeys settings (journeys.yaml)")


def dumps(schema: dict[str, Any]) -> str:
    """Stable JSON text of a schema (what ``journeys schema`` prints)."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
