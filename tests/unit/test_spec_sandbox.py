"""The validator refuses sandbox escapes in expressions and in templates."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_spec_support import check, steps, write_template

from journeys.templates import TemplateStore

ESCAPES = [
    "customer.__class__",
    "customer.__class__.__mro__",
    "event.__globals__",
    "event.data|attr('format')",
    "event.data|attr('__class__')",
    "'{0.__class__}'.format(customer)",
    "'{x}'.format_map(customer)",
    "customer['__class__']",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_expression_escapes_are_rejected(source: str) -> None:
    text = steps(f'- id: b\n  branch: [{{when: "{source}", goto: end}}]')
    diags = check(text)
    assert [d.code for d in diags] == ["bad-expression"], diags
    assert "not allowed" in diags[0].message


@pytest.mark.parametrize("source", ESCAPES)
def test_template_escapes_are_rejected(tmp_path: Path, source: str) -> None:
    folder = tmp_path / "templates"
    write_template(folder, "evil.html", "<p>{{ " + source + " }}</p>")
    diags = check(steps("- {id: a, send: {template: evil}}"), TemplateStore(folder))
    assert [d.code for d in diags] == ["template-error"]
    assert diags[0].path.endswith("evil.html")


@pytest.mark.parametrize("source", ESCAPES)
def test_inline_template_escapes_are_rejected(source: str) -> None:
    text = steps(f'- {{id: a, update: {{set: {{x: "{{{{ {source} }}}}"}}}}}}')
    assert [d.code for d in check(text)] == ["bad-expression"]


def test_subject_escape_in_front_matter(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "s.html").write_text('---\nsubject: "{{ customer.__class__ }}"\n---\n<p>x</p>\n')
    diags = check(steps("- {id: a, send: {template: s}}"), TemplateStore(folder))
    assert [(d.code, d.line) for d in diags] == [("template-error", 2)]
