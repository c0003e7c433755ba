"""Helpers shared by the spec tests (no tests here; named test_spec_* to live beside them)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from journeys.settings import Settings
from journeys.spec import check_journey_text
from journeys.spec.diagnostics import Diagnostic
from journeys.templates import TemplateStore

SETTINGS = Settings(teams={"support": {"channel": "console"}})

HEAD = """\
journey: t
trigger: {event: cart.updated}
"""


def check(body: str, templates: TemplateStore | None = None) -> list[Diagnostic]:
    """Diagnostics for a journey (``body`` is dedented)."""
    text = textwrap.dedent(body)
    return check_journey_text(text, path="j.yaml", templates=templates, settings=SETTINGS)[1]


def codes(body: str, templates: TemplateStore | None = None) -> list[str]:
    """The codes of :func:`check`, in order."""
    return [d.code for d in check(body, templates)]


def steps(yaml_steps: str) -> str:
    """A journey with the default head and ``yaml_steps`` (dedented) as its steps."""
    return HEAD + "steps:\n" + textwrap.indent(textwrap.dedent(yaml_steps), "  ")


def write_template(
    folder: Path, name: str, body: str = "<p>Hi {{ customer.first_name }}</p>"
) -> None:
    """Create ``folder/name`` with a subject in front matter."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(f'---\nsubject: "Hello"\n---\n{body}\n', encoding="utf-8")
