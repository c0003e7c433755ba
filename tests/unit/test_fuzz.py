"""Fuzzing: specs, templates, conditions, scenarios, events and customers from hostile
generators. No input may end in a traceback (only the documented error of each layer), and
no single case may run over its time or memory budget.

CI runs a few thousand cases in all (``JOURNEYS_FUZZ_EXAMPLES`` examples per test, several
records per example; default below); ``make fuzz`` runs 50 times as many.
"""

from __future__ import annotations

import io
import json
import os
import resource
import string
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_spec_properties import VALID

from journeys.expressions import ExpressionError, evaluate
from journeys.runtime.records import RecordError, normalise_customer, normalise_event
from journeys.scenario_file import check_scenarios
from journeys.service import BadLine, JourneyService, parse_json_lines, read_records
from journeys.spec import check_journey_text, load_project
from journeys.spec.events import EventCatalogue
from journeys.templates import RenderedMessage, TemplateError, TemplateStore

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("JOURNEYS_FUZZ_EXAMPLES", "100"))
CASE_SECONDS = 5.0
"""Wall time one case may take (generous: CI machines are shared)."""
MEMORY_GROWTH = 400 * 1024 * 1024
"""How much the process's peak memory may grow during one fuzz test."""

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
    ],
)


def _peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


@pytest.fixture(autouse=True)
def memory_budget() -> Iterator[None]:
    """The test's cases together may not grow the process's peak memory much."""
    before = _peak()
    yield
    assert _peak() - before < MEMORY_GROWTH


@pytest.fixture
def quick_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A render's time budget of 0.3 s instead of 2 s: slow cases are refused sooner, and a
    case over ``CASE_SECONDS`` means the budget was not enforced."""
    monkeypatch.setattr("journeys.sandbox_limits.MAX_SECONDS", 0.3)


SLOW = settings(parent=FUZZ, max_examples=max(EXAMPLES // 4, 20))
"""For the cases that compile or validate whole specs, templates or scenario files."""


@contextmanager
def case_budget() -> Iterator[None]:
    started = time.monotonic()
    yield
    assert time.monotonic() - started < CASE_SECONDS


# --------------------------------------------------------------------------- hostile values

huge_ints = st.sampled_from([10**9, 10**18, 2**63, 99999999999999999999999, -(2**70), 10**400])
nasty_text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "",
            "\x00",
            "a\x00b",
            "\ud800",
            "order.placed",
            "2026-03-02T10:00:00Z",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-14:00",
            "2025-02-30",
            "03/05/2025",
            "{{ customer.__class__ }}",
            "%s%s%s",
            "Asia/Seoul",
            "Mars/Base",
            "NaN",
            "1e400",
        ]
    ),
    st.sampled_from([121, 129, 201, 321, 5000]).map(lambda n: "x" * n),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    huge_ints,
    st.floats(allow_nan=True, allow_infinity=True),
    nasty_text,
)


def nested(depth: int) -> Any:
    value: Any = 1
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.text(max_size=5), scalars, max_size=3),
    st.sampled_from([nested(10), nested(33), nested(60)]),
)
"""Flat on purpose: recursive strategies cost more to generate than the checks they feed."""
EVENT_KEYS = ["id", "type", "customer_id", "occurred_at", "data"]
CUSTOMER_KEYS = [
    "id",
    "email",
    "phone",
    "first_name",
    "locale",
    "timezone",
    "birthday",
    "email_opt_in",
    "orders_count",
    "lifetime_value",
    "last_order_at",
    "stage",
    "attributes",
    "vip",
]


def records(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(keys) | st.text(max_size=6), values, max_size=7)


def _only(
    expected: type[BaseException] | tuple[type[BaseException], ...], fn: Callable[[], Any]
) -> Any:
    """Run ``fn``; any exception but ``expected`` fails the test (with the input shown)."""
    try:
        return fn()
    except expected:
        return None


# --------------------------------------------------------------------------- records


@FUZZ
@given(st.lists(records(EVENT_KEYS), max_size=8))
def test_events_fail_only_as_record_errors(batch: list[dict[str, Any]]) -> None:
    for record in batch:  # several records per example: generating them is the costly part
        with case_budget():
            _only(RecordError, lambda r=record: normalise_event(r))


@FUZZ
@given(st.lists(records(CUSTOMER_KEYS), max_size=8))
def test_customers_fail_only_as_record_errors(batch: list[dict[str, Any]]) -> None:
    for record in batch:
        with case_budget():
            _only(RecordError, lambda r=record: normalise_customer(r))


json_lines = st.lists(
    st.one_of(
        records(EVENT_KEYS).map(lambda r: json.dumps(r, default=str)),
        st.text(max_size=40),
        st.integers(1, 5).map(lambda n: "[" * 10**n + "]" * 10**n),
        st.integers(4000, 6000).map(lambda n: "9" * n),
    ),
    max_size=10,
)


@FUZZ
@given(json_lines)
def test_json_lines_parse_into_records_or_bad_lines(lines: list[str]) -> None:
    text = "\n".join(lines)
    with case_budget():
        found = list(parse_json_lines(io.StringIO(text)))
    assert len(found) == len(io.StringIO(text).readlines())  # one item per line, no more


csv_cells = st.one_of(
    st.text(alphabet=string.printable, max_size=12),
    st.sampled_from(['"', '""', '"a\nb"', "\x00", "9" * 30, "x" * 140_000]),
)


@FUZZ
@given(st.lists(st.lists(csv_cells, min_size=1, max_size=5), max_size=6), st.booleans())
def test_csv_files_read_into_records_or_bad_lines(
    tmp_path_factory: pytest.TempPathFactory, rows: list[list[str]], header: bool
) -> None:
    path = tmp_path_factory.mktemp("csv") / "c.csv"
    lines = ([",".join(["id", "email", "vip", "note", "orders_count"])] if header else []) + [
        ",".join(row) for row in rows
    ]
    path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    with case_budget():
        found = list(read_records(path))
        for record in found:
            if isinstance(record, dict):
                _only(RecordError, lambda r=record: normalise_customer(r))
    assert all(r is None or isinstance(r, BadLine | dict) for r in found)


@pytest.fixture(scope="module")
def example_project() -> Any:
    project = load_project([ROOT / "journey_specs"], templates_dir=ROOT / "templates")
    assert project.ok
    return project


@pytest.fixture(scope="module")
def service(example_project: Any) -> Iterator[JourneyService]:
    from journeys.store import db as store_db

    db = store_db.open_store("sqlite:///:memory:")
    yield JourneyService(db, example_project)
    db.dispose()


@SLOW
@given(st.lists(records(CUSTOMER_KEYS), max_size=8), st.lists(records(EVENT_KEYS), max_size=8))
def test_import_and_ingest_never_crash_the_store(
    service: JourneyService, people: list[dict[str, Any]], events: list[dict[str, Any]]
) -> None:
    with case_budget():
        customers = service.import_customers(people)
        stored = service.ingest(events)
    assert customers.accepted + len(customers.errors) + customers.unchanged <= len(people)
    assert stored.accepted + len(stored.errors) + stored.duplicates <= len(events)


# --------------------------------------------------------------------------- templates

names = st.sampled_from(
    ["customer.first_name", "event.data.n", "event.data.s", "ns.s", "x", "now", "1", "'ab'"]
)
numbers = st.sampled_from(["2", "10", "100000", "10**9", "10**6", "event.data.n", "-1"])
operators = st.sampled_from(["*", "**", "+", "~", "%", "//", "-"])
filters = st.sampled_from(
    [
        "length",
        "upper",
        "list",
        "join",
        "center({n})",
        "indent({n})",
        "wordwrap({n})",
        "replace('a', 'aa' * {n})",
        "slice({n})",
        "batch({n})",
        "tojson(indent={n})",
        "format(customer)",
        "money('EUR')",
        "default(0)",
        "attr('__class__')",
        "map('center', {n})",
    ]
)


@st.composite
def expressions(draw: st.DrawFn, depth: int = 0) -> str:
    kind = draw(st.integers(0, 4 if depth < 3 else 1))
    if kind == 0:
        return draw(names)
    if kind == 1:
        return draw(numbers)
    if kind == 2:
        left, right = draw(expressions(depth + 1)), draw(expressions(depth + 1))
        return f"({left} {draw(operators)} {right})"
    if kind == 3:
        flt = draw(filters).format(n=draw(numbers))
        return f"({draw(expressions(depth + 1))} | {flt})"
    return f"range({draw(numbers)})"


@st.composite
def template_sources(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 4))
        expr = draw(expressions())
        if kind == 0:
            parts.append("{{ " + expr + " }}")
        elif kind == 1:
            body = "{{ " + draw(expressions()) + " }}"
            parts.append(f"{{% for x in {expr} %}}{body}{{% endfor %}}")
        elif kind == 2:
            parts.append(
                f"{{% set ns = namespace(s={expr}) %}}{{% for i in range({draw(numbers)}) %}}"
                f"{{% set ns.s = ns.s {draw(operators)} ns.s %}}{{% endfor %}}{{{{ ns.s }}}}"
            )
        elif kind == 3:
            parts.append(draw(st.text(max_size=20)))
        else:
            parts.append(
                "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}"
                "{% endmacro %}{{ f(" + draw(numbers) + ") }}"
            )
    return "".join(parts)


CONTEXT = {
    "customer": {"id": "c-1", "first_name": "Mina"},
    "event": {"data": {"n": 10**9, "s": "ab"}},
    "answers": {},
    "now": "2026-03-02T00:00:00Z",
    "journey": {},
    "unsubscribe_url": "u",
}


@SLOW
@given(template_sources())
def test_templates_compile_and_render_within_budget(
    tmp_path_factory: pytest.TempPathFactory, quick_budget: None, source: str
) -> None:
    folder = tmp_path_factory.mktemp("t")
    (folder / "t.html").write_text(f"---\nsubject: s\n---\n{source}\n", encoding="utf-8")
    with case_budget():
        compiled = _only(TemplateError, lambda: TemplateStore(folder).compile("t"))
        if compiled is not None:
            message = _only(TemplateError, lambda: compiled.render(CONTEXT))
            assert message is None or isinstance(message, RenderedMessage)


@SLOW
@given(expressions())
def test_conditions_evaluate_within_budget(quick_budget: None, source: str) -> None:
    with case_budget():
        _only(ExpressionError, lambda: evaluate(f"{source} == 1", CONTEXT))
        text = f'journey: j\ntrigger: {{event: order.placed, when: "{source} > 0"}}\n'
        plan, diags = check_journey_text(text + "steps: [{id: a, wait: 1h}]\n")
    assert (plan is None) == bool(diags)


# --------------------------------------------------------------------------- specs, scenarios

spec_values = st.recursive(
    scalars | st.sampled_from(["end", "24h", "order.placd", "{{ custmer.x }}", "a" * 130]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@SLOW
@given(
    st.lists(
        st.tuples(st.sampled_from(["journey", "trigger", "steps", "exit_on", "goal"]), spec_values),
        max_size=4,
    )
)
def test_specs_give_a_plan_or_positioned_diagnostics(
    example_project: Any, changes: list[tuple[str, Any]]
) -> None:
    spec = {**VALID, **dict(changes)}
    text = yaml.safe_dump(spec, allow_unicode=True)
    with case_budget():
        plan, diags = check_journey_text(
            text, templates=example_project.templates, events=EventCatalogue.build()
        )
    assert (plan is None) == bool(diags)
    assert all(d.line >= 1 and d.col >= 1 for d in diags)


scenario_docs = st.one_of(
    st.text(max_size=200),
    st.dictionaries(
        st.sampled_from(["scenarios", "start", "until", "events", "expect", "customers", "x"]),
        spec_values,
        max_size=5,
    ).map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
)


@SLOW
@given(scenario_docs)
def test_scenario_files_give_scenarios_or_positioned_diagnostics(
    tmp_path_factory: pytest.TempPathFactory, example_project: Any, text: str
) -> None:
    path = tmp_path_factory.mktemp("s") / "s.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    with case_budget():
        scenarios, problems = check_scenarios(path, example_project.plans)
    assert all(d.line >= 1 and d.col >= 1 for d in problems)
    assert not (scenarios and problems)
