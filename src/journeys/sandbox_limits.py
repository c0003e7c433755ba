"""Budgets for marketer-written templates and expressions: no message may exhaust the machine.

Jinja's sandbox stops escapes, not exhaustion: ``'a' * 10**9``, a string doubled in a
namespace loop, ``([1] * 10**8) | length`` or nested loops run until memory or patience ends.
Three defences, used by the sandbox of :mod:`journeys.expressions`:

* **Per operation**: repetition (``*``), concatenation (``+``, ``~``), powers, the
  width-taking filters and string methods (``center``, ``indent``, ``ljust`` …) check the size
  of what they are about to build *before* building it (:func:`guard_binop`,
  :func:`guard_filter`, :func:`guard_call`).
* **Per message**: every built character, loop turn and call is charged to the
  :class:`Budget` of the current render (:func:`budget`); past :data:`MAX_WORK` units, past
  :data:`MAX_SECONDS`, or past :data:`MAX_OUTPUT` characters of output the render fails with
  :class:`LimitExceeded`, a sandbox error, so that one message fails with its reason and the
  batch goes on.
* **At validate time**: :func:`static_problem` finds constants that can only blow a budget
  (``'a' * 10**9``, ``range(10**9)``, ``10**10**10``) so that ``journeys validate`` refuses them.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar, Token
from typing import Any

from jinja2 import nodes
from jinja2.sandbox import MAX_RANGE, SecurityError

MAX_OUTPUT = 1_000_000
"""Characters one rendered template (one part of a message) may produce."""
MAX_WORK = 5_000_000
"""Units of work of one render or evaluation: characters built, loop turns, calls."""
MAX_SECONDS = 2.0
"""Wall time of one render or evaluation."""
MAX_INT_BITS = 14_000
"""Integers up to about 4,200 digits (the most Python turns into text)."""
CLOCK_EVERY = 256
"""Units of work between two looks at the clock."""
MAX_INDENT = 16
"""The ``indent`` of ``|tojson``: each level repeats it on every line."""


class LimitExceeded(SecurityError):
    """A template or expression over its budget (size, work or time)."""


class Budget:
    """What one render or evaluation has used so far."""

    __slots__ = ("_clock_at", "deadline", "work")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.work = 0
        self._clock_at = 0  # the work at which the clock is read next (reading it costs)

    def charge(self, units: int) -> None:
        """Count ``units`` of work; :class:`LimitExceeded` past the work or time budget."""
        self.work += units
        if self.work < self._clock_at:
            return
        if self.work > MAX_WORK:
            raise LimitExceeded(
                f"it does more than {MAX_WORK:,} units of work (characters built, loop turns)"
            )
        if time.monotonic() > self.deadline:
            raise LimitExceeded(f"it took longer than {MAX_SECONDS:g} s")
        self._clock_at = min(self.work + CLOCK_EVERY, MAX_WORK + 1)


_CURRENT: ContextVar[Budget | None] = ContextVar("journeys_budget", default=None)


class budget:  # lowercase: used like a function, ``with budget() as used:``
    """The budget of one render or evaluation (the enclosing one if there is one already,
    so that a message's subject, HTML and text share one). A class, not a generator
    context manager: it wraps every expression evaluation."""

    __slots__ = ("_seconds", "_token")

    def __init__(self, seconds: float | None = None) -> None:
        self._seconds = seconds
        self._token: Token[Budget | None] | None = None

    def __enter__(self) -> Budget:
        current = _CURRENT.get()
        if current is not None:
            return current
        fresh = Budget(time.monotonic() + (self._seconds or MAX_SECONDS))
        self._token = _CURRENT.set(fresh)
        return fresh

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _CURRENT.reset(self._token)
            self._token = None


def charge(units: int) -> None:
    """Charge the current budget; outside any, refuse only a single step over the budget."""
    current = _CURRENT.get()
    if current is not None:
        current.charge(units)
    elif units > MAX_WORK:
        raise LimitExceeded(f"it would build {units:,} items; the limit is {MAX_WORK:,}")


def size(value: Any) -> int:
    """Roughly how many characters or items ``value`` holds (shallow)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list | tuple):
        return len(value) + sum(len(v) for v in value if isinstance(v, str))
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() // 3
    if isinstance(value, dict | set | frozenset):
        return len(value)
    return 1


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _ensure(units: int, what: str) -> None:
    if units > MAX_WORK:
        raise LimitExceeded(f"{what} would build {units:,} items; the limit is {MAX_WORK:,}")
    charge(units)


def _pow_bits(base: int, exponent: int) -> float:
    if exponent <= 0 or abs(base) <= 1:
        return 0
    return exponent * math.log2(abs(base))


def guard_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse (or charge) ``left <operator> right`` before Python computes it."""
    ints = _int(left) is not None and _int(right) is not None
    seqs = isinstance(left, str | list | tuple), isinstance(right, str | list | tuple)
    if operator == "%" and isinstance(left, str):
        raise SecurityError("string formatting with % is not allowed in journeys templates")
    if operator == "*" and any(seqs):
        seq, count = (left, _int(right)) if seqs[0] else (right, _int(left))
        if count is not None:
            _ensure(size(seq) * max(count, 0), "repeating it")
    elif (
        operator == "*" and ints and abs(left).bit_length() + abs(right).bit_length() > MAX_INT_BITS
    ):
        raise LimitExceeded("the product is too large a number")
    elif operator == "**" and ints and _pow_bits(left, right) > MAX_INT_BITS:
        raise LimitExceeded(f"{left} ** {right} is too large a number")
    elif operator == "+" and all(seqs):
        _ensure(size(left) + size(right), "joining them")


def guarded_concat(value: Any) -> Any:
    """The result of ``a ~ b`` (already built): charged to the budget."""
    _ensure(size(value), "joining text with ~")
    return value


def guarded_turns(iterable: Any) -> Iterator[Any]:
    """A loop's items, each turn charged (an empty nested loop still spends time)."""
    for item in iterable:
        charge(1)
        yield item


def guarded_range(*args: int) -> range:
    """Jinja's sandbox ``range`` (at most 100,000 items), charged to the budget."""
    found = range(*args)
    if len(found) > MAX_RANGE:
        raise LimitExceeded(f"range of {len(found):,} numbers; the limit is {MAX_RANGE:,}")
    charge(len(found))
    return found


_WIDTH_ARGS: dict[str, int] = {"center": 1, "indent": 1, "wordwrap": 1}
_COUNT_ARGS: dict[str, int] = {"slice": 1, "batch": 1}


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str) -> Any:
    return kwargs.get(name, args[index] if len(args) > index else None)


def _precheck_filter(name: str, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    lines = value.count("\n") + 1 if isinstance(value, str) else 1
    if name in _WIDTH_ARGS:
        width = _int(_arg(args, kwargs, 0, "width"))
        if width is not None:
            _ensure(max(width, 0) * (lines if name == "indent" else 1), f"|{name}({width})")
    elif name in _COUNT_ARGS:
        count = _int(_arg(args, kwargs, 0, "slices" if name == "slice" else "linecount"))
        if count is not None:
            _ensure(max(count, 0), f"|{name}({count})")
    elif name == "replace" and isinstance(value, str):
        old, new = _arg(args, kwargs, 0, "old"), _arg(args, kwargs, 1, "new")
        if isinstance(old, str) and isinstance(new, str):
            hits = value.count(old) if old else len(value) + 1
            _ensure(len(value) + hits * len(new), "|replace")
    elif name == "tojson":
        indent = _int(_arg(args, kwargs, 0, "indent"))
        if indent is not None and indent > MAX_INDENT:
            raise LimitExceeded(f"|tojson(indent={indent}): the indent may be at most {MAX_INDENT}")
    elif name == "format":
        raise SecurityError("the format filter (string formatting) is not allowed")


def guard_filter(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (a Jinja filter) with its size checked before and charged after each call."""
    pass_arg = getattr(fn, "jinja_pass_arg", None)

    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        skip = 1 if pass_arg is not None else 0  # the context/environment Jinja passes first
        value = args[skip] if len(args) > skip else None
        _precheck_filter(name, value, args[skip + 1 :], kwargs)
        result = fn(*args, **kwargs)
        if isinstance(result, str | list | tuple):
            charge(size(result))
        return result

    return guarded


_STR_WIDTH = frozenset({"ljust", "rjust", "center", "zfill"})


def guard_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Charge a call made by a template and check string methods that take a width."""
    charge(1)
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if not isinstance(owner, str):
        return
    if name in _STR_WIDTH and args and _int(args[0]) is not None:
        _ensure(max(args[0], 0), f".{name}({args[0]})")
    elif name == "expandtabs":
        tab = _int(args[0]) if args else 8
        _ensure(len(owner) * max(tab or 0, 1), ".expandtabs")
    elif name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        if isinstance(old, str) and isinstance(new, str):
            hits = owner.count(old) if old else len(owner) + 1
            _ensure(len(owner) + hits * len(new), ".replace")
    elif name in ("format", "format_map"):
        raise SecurityError("string formatting is not allowed in journeys templates")


# --------------------------------------------------------------------------- validate time


class _TooBig(Exception):
    pass


def static_problem(ast: nodes.Node) -> str | None:
    """Why a template or expression can only blow its budget, judged from its constants
    (``'a' * 10**9``, ``range(10**9)``, ``'x'|center(10**9)``), or None."""
    try:
        for node in ast.find_all((nodes.BinExpr, nodes.Call, nodes.Filter)):  # Mod is a BinExpr
            _estimate(node)
    except _TooBig as exc:
        return str(exc)
    except RecursionError:
        return "the expression is nested too deeply; split it up"
    return None


_Value = tuple[str, Any]  # ("num", number) or ("seq", size)


def _estimate(node: nodes.Node) -> _Value | None:
    """The constant value (numbers) or size (text and lists) of ``node``, if it has one."""
    if isinstance(node, nodes.Const):
        value = node.value
        if isinstance(value, str):
            return "seq", len(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return "num", value
        return None
    if isinstance(node, nodes.List | nodes.Tuple):
        found = [_estimate(item) for item in node.items]
        return "seq", len(node.items) + sum(v[1] for v in found if v and v[0] == "seq")
    if isinstance(node, nodes.Neg):
        inner = _estimate(node.node)
        return ("num", -inner[1]) if inner and inner[0] == "num" else None
    if isinstance(node, nodes.Mul | nodes.Pow | nodes.Add):
        return _binary(node, _estimate(node.left), _estimate(node.right))
    if isinstance(node, nodes.Mod) and isinstance(node.left, nodes.Const):
        if isinstance(node.left.value, str):
            raise _TooBig("string formatting with % is not allowed")
        return None
    if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
        widths = [_estimate(a) for a in node.args[:1]]
        width = widths[0][1] if widths and widths[0] and widths[0][0] == "num" else None
        if node.node.attr in _STR_WIDTH and isinstance(width, int) and width > MAX_WORK:
            raise _TooBig(f".{node.node.attr}({width:,}) would build more than {MAX_WORK:,}")
        return None
    if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name):
        if node.node.name == "range":
            counts = [_estimate(a) for a in node.args]
            numbers = [c[1] for c in counts if c and c[0] == "num"]
            if len(numbers) == len(node.args) and all(isinstance(n, int) for n in numbers):
                try:
                    total = len(range(*numbers))
                except (TypeError, ValueError, OverflowError):
                    return None
                if total > MAX_RANGE:
                    raise _TooBig(f"range of {total:,} numbers; the limit is {MAX_RANGE:,}")
                return "seq", total
        return None
    if isinstance(node, nodes.Filter):
        if node.name == "format":
            raise _TooBig("the format filter (string formatting) is not allowed")
        for arg in (*node.args, *(k.value for k in node.kwargs)):
            value = _estimate(arg)
            sized = node.name in (*_WIDTH_ARGS, *_COUNT_ARGS) and value and value[0] == "num"
            if sized and isinstance(value[1], int) and value[1] > MAX_WORK:  # type: ignore[index]
                raise _TooBig(
                    f"|{node.name}({value[1]:,}) would build more than {MAX_WORK:,} items"
                )
        inner = _estimate(node.node) if node.node is not None else None
        return inner if node.name in ("list", "string") else None
    return None


def _binary(node: nodes.BinExpr, left: _Value | None, right: _Value | None) -> _Value | None:
    if left is None or right is None:
        return None
    kinds = (left[0], right[0])
    if isinstance(node, nodes.Mul):
        if kinds in (("seq", "num"), ("num", "seq")):
            length, count = (left[1], right[1]) if kinds[0] == "seq" else (right[1], left[1])
            if not isinstance(count, int):
                return None
            total = length * max(count, 0)
            if total > MAX_WORK:
                raise _TooBig(
                    f"repeating {length:,} item(s) {count:,} times would build {total:,};"
                    f" the limit is {MAX_WORK:,}"
                )
            return "seq", total
        if kinds == ("num", "num"):
            product = left[1] * right[1] if _small(left[1], right[1]) else None
            if product is None:
                raise _TooBig("a product too large to compute")
            return "num", product
        return None
    if isinstance(node, nodes.Pow) and kinds == ("num", "num"):
        base, exponent = left[1], right[1]
        if isinstance(base, int) and isinstance(exponent, int):
            if _pow_bits(base, exponent) > MAX_INT_BITS:
                raise _TooBig(f"{base} ** {exponent} is too large a number to compute")
            return "num", base**exponent
        return None
    if isinstance(node, nodes.Add):
        if kinds == ("seq", "seq"):
            return "seq", left[1] + right[1]
        if kinds == ("num", "num"):
            return "num", left[1] + right[1]
    return None


def _small(a: Any, b: Any) -> bool:
    if isinstance(a, int) and isinstance(b, int):
        return abs(a).bit_length() + abs(b).bit_length() <= MAX_INT_BITS
    return True


GROWING_FILTERS = frozenset(
    {*_WIDTH_ARGS, *_COUNT_ARGS, "replace", "tojson", "format", "join", "string", "pprint"}
    | {"urlize", "xmlattr", "list"}
)
"""Filters whose result can be much larger than their input (the others stay within a small
factor of what was already charged when their input was built)."""


def guarded_filters(filters: dict[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """``filters`` with :data:`GROWING_FILTERS` wrapped by :func:`guard_filter`."""
    return {
        name: guard_filter(name, fn) if name in GROWING_FILTERS else fn
        for name, fn in filters.items()
    }
