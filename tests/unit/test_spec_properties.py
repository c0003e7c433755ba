"""Property tests: any input either compiles or gives diagnostics, never an exception."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeys.plan import Plan
from journeys.spec import check_journey_text

VALID: dict[str, Any] = {
    "journey": "cart",
    "name": "Cart",
    "stage": "consideration",
    "trigger": {"event": "cart.updated", "when": "event.data.total >= 20"},
    "exit_on": ["order.placed"],
    "goal": {"event": "order.placed", "within": "7d"},
    "quiet_hours": "21:00-09:00",
    "steps": [
        {"id": "wait", "wait": "24h"},
        {"id": "remind", "send": {"template": "cart_reminder"}},
        {"id": "bought", "wait_for": {"event": "order.placed", "within": "48h"}, "on_event": "end"},
        {
            "id": "value",
            "branch": [{"when": "customer.lifetime_value >= 500", "goto": "vip"}, {"goto": "ab"}],
        },
        {"id": "vip", "send": {"template": "vip"}, "goto": "end"},
        {
            "id": "ab",
            "split": [
                {"variant": "a", "weight": 50, "goto": "end"},
                {"variant": "b", "weight": 50, "goto": "ask"},
            ],
        },
        {"id": "ask", "survey": {"kind": "nps", "template": "nps", "within": "7d"}},
        {"id": "tell", "notify": {"to": "support", "template": "alert"}},
        {"id": "chain", "emit": {"event": "x.y", "data": {"a": 1}}},
        {"id": "up", "update": {"stage": "purchase", "set": {"t": "{{ event.data.total }}"}}},
        {"id": "bye", "exit": "done"},
    ],
}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["end", "wait", "1h", "-3d", "09:00", "{{", "customer.x", "ko", "__class__"]),
)
keys = st.one_of(
    st.text(max_size=8),
    st.sampled_from(
        [
            "journey",
            "trigger",
            "steps",
            "id",
            "send",
            "wait",
            "goto",
            "branch",
            "split",
            "when",
            "on_event",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)


def _check(text: str) -> None:
    plan, diags = check_journey_text(text)
    assert (plan is None) == bool(diags)
    if plan is not None:
        assert Plan.from_json(plan.to_json()) == plan
    for d in diags:
        assert d.line >= 1 and d.col >= 1 and d.code


def test_the_base_spec_is_valid() -> None:
    plan, diags = check_journey_text(yaml.safe_dump(VALID))
    assert diags == [] and plan is not None


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_random_text(text: str) -> None:
    _check(text)


@settings(max_examples=80, deadline=None)
@given(values)
def test_random_yaml_structures(data: Any) -> None:
    _check(yaml.safe_dump(data))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


ALL_PATHS = _paths(VALID)[1:]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(ALL_PATHS), st.sampled_from(["set", "drop"]), values), max_size=4
    )
)
def test_mutations_of_a_valid_spec(mutations: list[tuple[tuple[Any, ...], str, Any]]) -> None:
    spec = copy.deepcopy(VALID)
    for path, action, value in mutations:
        parent: Any = spec
        try:
            for part in path[:-1]:
                parent = parent[part]
            if action == "drop":
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    _check(yaml.safe_dump(spec, allow_unicode=True))
