"""Templates and conditions cannot exhaust the machine: bounded at validate time when their
constants say so, and at render time per message (size, work, time), one message failing
with its reason while the batch goes on."""

from __future__ import annotations

import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import pytest
from jinja2.sandbox import SecurityError
from test_spec_support import check, steps, write_template

from engine_helpers import write_project
from journeys.expressions import ENV, ExpressionError, evaluate
from journeys.sandbox_limits import MAX_SECONDS
from journeys.simulate import simulate
from journeys.templates import TemplateError, TemplateStore

UNBOUNDED = [
    "'a' * 10**9",
    "([1] * 10**8) | length",
    "range(10**9) | length",
    "'x' | center(10**9)",
    "'x'.ljust(10**9)",
    "2 ** 1000000",
    "'%s' | format(customer)",
    "'%s' % customer",
    "[1] | slice(10**8) | list",
]


@pytest.mark.parametrize("source", UNBOUNDED)
def test_validate_refuses_unbounded_constants_in_conditions(source: str) -> None:
    diags = check(steps(f'- id: b\n  branch: [{{when: "{source} == 1", goto: end}}]'))
    assert [d.code for d in diags] == ["bad-expression"], diags


@pytest.mark.parametrize("source", UNBOUNDED)
def test_validate_refuses_unbounded_constants_in_template_files(
    tmp_path: Path, source: str
) -> None:
    folder = tmp_path / "templates"
    write_template(folder, "big.html", "<p>{{ " + source + " }}</p>")
    diags = check(steps("- {id: a, send: {template: big}}"), TemplateStore(folder))
    assert [(d.code, Path(d.path).name, d.line) for d in diags] == [
        ("template-error", "big.html", 4)
    ]


# Attacks whose size comes from the data, so only the render can stop them.
ATTACKS = {
    "repeat": "{{ event.data.word * event.data.times }}",
    "doubling with ~": "{% set ns = namespace(s=event.data.word) %}"
    "{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
    "doubling with +": "{% set ns = namespace(s=event.data.word) %}"
    "{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}",
    "squaring": "{% set ns = namespace(x=event.data.times) %}"
    "{% for i in range(60) %}{% set ns.x = ns.x * ns.x %}{% endfor %}{{ ns.x > 0 }}",
    "nested loops": "{% for a in range(100000) %}{% for b in range(100000) %}"
    "{% endfor %}{% endfor %}",
    "exponential macro": "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}"
    "{% endif %}{% endmacro %}{{ f(event.data.times) }}",
    "wide method": "{{ event.data.word.ljust(event.data.times) }}",
    "wide filter": "{{ event.data.word | center(event.data.times) }}",
    "many wide": "{{ range(100000) | map('center', 100000) | list | length }}",
    "replace": "{{ (event.data.word * 100000) | replace(event.data.word, 'x' * 1000) }}",
    "output": "{% for i in range(100000) %}{{ event.data.page }}{% endfor %}",
    "power": "{{ event.data.times ** event.data.times }}",
    "percent": "{{ event.data.fmt % customer }}",
    "recursion": "{% for x in [1, 2] recursive %}{{ loop([1, 2]) }}{% endfor %}",
}
DATA = {"word": "ab", "times": 10**9, "page": "p" * 100, "fmt": "%s"}


@pytest.mark.parametrize("body", ATTACKS.values(), ids=list(ATTACKS))
def test_a_message_over_its_budget_fails_fast_and_small(tmp_path: Path, body: str) -> None:
    folder = tmp_path / "templates"
    write_template(folder, "t.html", body)
    template = TemplateStore(folder).compile("t")
    context = {"customer": {"id": "c-1"}, "event": {"data": DATA}, "unsubscribe_url": "u"}
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(TemplateError):
            template.render(context)
        took = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert took < MAX_SECONDS + 2
    assert peak < 64 * 1024 * 1024


def test_a_condition_over_its_budget_is_an_expression_error() -> None:
    context = {"customer": {}, "event": {"data": DATA}}
    started = time.monotonic()
    with pytest.raises(ExpressionError, match="refused by the sandbox: repeating it"):
        evaluate("(event.data.word * event.data.times) | length > 3", context)
    with pytest.raises(ExpressionError, match="too large a number"):
        evaluate("event.data.times ** event.data.times > 3", context)
    assert time.monotonic() - started < 1
    assert evaluate("(event.data.word * 3) | length", context) == 6


def test_the_format_filter_is_refused_even_without_the_static_check() -> None:
    with pytest.raises(SecurityError, match="format filter"):
        ENV.from_string("{{ '%s' | format(customer) }}").render(customer={"secret": 1})
    with pytest.raises(SecurityError, match="formatting"):
        ENV.from_string("{{ f % customer }}").render(f="%s", customer={"secret": 1})


CART = """
journey: greedy
trigger: {event: cart.updated}
steps:
  - {id: mail, send: {template: greedy}}
"""


def test_one_message_over_budget_fails_with_a_reason_and_the_batch_goes_on(
    tmp_path: Path,
) -> None:
    project = write_project(
        tmp_path,
        {"greedy": CART},
        templates={
            "greedy.html": "---\nsubject: Hi\n---\n<p>{{ event.data.word * event.data.n }}</p>\n"
        },
    )
    people = [
        {"id": f"c-{i}", "email": f"c{i}@example.com", "email_opt_in": True} for i in (1, 2, 3)
    ]
    events = [
        {
            "id": f"e{i}",
            "type": "cart.updated",
            "customer_id": f"c-{i}",
            "occurred_at": "2026-03-02T00:00:00Z",
            "data": {"word": "ab", "n": n},
        }
        for i, n in ((1, 3), (2, 10**9), (3, 2))
    ]
    start = datetime(2026, 3, 2, tzinfo=UTC)
    result = simulate(project, people, events, start=start, until=datetime(2026, 3, 3, tzinfo=UTC))
    assert [m["customer_id"] for m in result.messages] == ["c-1", "c-3"]
    assert [(s["customer_id"], s["status"]) for s in result.skipped] == [("c-2", "failed")]
    assert "repeating it would build 2,000,000,000 items" in result.skipped[0]["reason"]
