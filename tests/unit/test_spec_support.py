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


def test_template_errors_name_the_file_and_line_of_the_part_they_are_in(tmp_path: Path) -> None:
    """A syntax error in the .txt part is in the .txt file; one in the subject is on the
    subject's line, wherever it sits in the front matter; one in the body is on its line."""
    from journeys.templates import TemplateError

    (tmp_path / "a.html").write_text("---\nsubject: ok\n---\n<p>fine</p>\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("line one\n{{ x \n", encoding="utf-8")
    (tmp_path / "b.html").write_text(
        '---\n# a note\nsubject: "{{ oops"\n---\n<p>x</p>\n', encoding="utf-8"
    )
    (tmp_path / "c.html").write_text(
        "---\nsubject: s\n---\n<p>1</p>\n<p>{% if %}</p>\n", encoding="utf-8"
    )
    found = {}
    for name in "abc":
        try:
            TemplateStore(tmp_path).compile(name)
        except TemplateError as exc:
            assert exc.path is not None
            found[name] = (exc.path.name, exc.line)
    assert found == {"a": ("a.txt", 2), "b": ("b.html", 3), "c": ("c.html", 5)}
