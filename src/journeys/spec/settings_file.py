"""Validate the project settings file ``journeys.yaml`` (see :mod:`journeys.settings`)."""

from __future__ import annotations

from pathlib import Path

from journeys.settings import Settings
from journeys.spec.delivery_models import check_delivery_settings
from journeys.spec.diagnostics import Diagnostic, quote
from journeys.spec.models import SettingsFile
from journeys.spec.structure import describe, validate_part
from journeys.spec.web_models import RETIRED_KEYS, check_web_settings
from journeys.spec.yamlpos import YamlDoc

_TEAM_NEEDS = {"email": "address", "sms": "address", "webhook": "url"}


def parse_settings(doc: YamlDoc, path: Path) -> tuple[Settings | None, list[Diagnostic]]:
    """Validate ``journeys.yaml``; ``None`` settings when it has errors."""
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict):
        msg = f"journeys.yaml must be a mapping of settings, got {describe(data)}"
        return None, [doc.at((), msg, "wrong-type")]
    # A secret in the file gets its own diagnostic (check_web_settings), not "unknown key".
    known = {k: v for k, v in data.items() if k not in RETIRED_KEYS}
    spec, problems = validate_part(doc, (), SettingsFile, known)
    teams = data.get("teams")
    if isinstance(teams, dict):
        for name, team in teams.items():
            if not isinstance(team, dict):
                continue
            need = _TEAM_NEEDS.get(str(team.get("channel")))
            if need and not team.get(need):
                msg = f"team {quote(name)} uses channel {team['channel']} and needs {quote(need)}"
                problems.append(doc.at(("teams", name), msg, "missing-field"))
    problems.extend(check_delivery_settings(doc, data))
    problems.extend(check_web_settings(doc, data))
    if problems or spec is None:
        return None, problems
    try:
        return Settings.from_dict(data, path), []
    except Exception as exc:  # from_dict is outside this package; never crash validation
        return None, [doc.at((), f"cannot read settings: {exc}", "internal-error")]
