"""Sandboxed Jinja2 for marketer-written expressions and templates.

Marketers write both, so both run in an immutable sandbox that refuses private attributes
(``__class__``, ``__globals__`` …) and string formatting (``format``/``format_map``, also
through ``|attr``, the ``format`` filter and ``'…' % x``), and that bounds what one render or
evaluation may build and how long it may take (:mod:`journeys.sandbox_limits`). Expressions
are compiled once and cached by source text.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, Template, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.visitor import NodeTransformer

from journeys.locale_filters import register_locale_filters
from journeys.sandbox_limits import (
    MAX_OUTPUT,
    LimitExceeded,
    budget,
    guard_binop,
    guard_call,
    guarded_concat,
    guarded_filters,
    guarded_range,
    guarded_turns,
    static_problem,
)

EXPRESSION_ROOTS = frozenset({"customer", "event", "answers", "now", "journey"})
"""The names an expression can see (docs/language.md, Expressions)."""

_BLOCKED_ATTRS = frozenset({"format", "format_map", "mro", "gi_frame", "f_globals", "func_globals"})


class ExpressionError(ValueError):
    """An expression or template that does not compile, or that the sandbox refused."""


class BoundedTemplate(Template):
    """A template whose :meth:`render` runs within a budget (:mod:`journeys.sandbox_limits`):
    its output, work and time are capped, and going over raises a sandbox error."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        with budget() as used:
            ctx = self.new_context(dict(*args, **kwargs))
            parts: list[str] = []
            length = 0
            try:
                for chunk in self.root_render_func(ctx):
                    length += len(chunk)
                    if length > MAX_OUTPUT:
                        raise LimitExceeded(f"it renders more than {MAX_OUTPUT:,} characters")
                    parts.append(chunk)
                used.charge(length)
            except Exception:
                self.environment.handle_exception()
            return "".join(parts)


class _Guards(NodeTransformer):
    """Routes every loop's items and every ``~`` through the budget (see the sandbox)."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _internal_filter(node.iter, "journeys_turns")
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _internal_filter(node, "journeys_concat")


def _internal_filter(node: nodes.Expr, name: str) -> nodes.Filter:
    found = nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)
    environment = getattr(node, "environment", None)
    if environment is not None:
        found.set_environment(environment)
    return found


class JourneySandbox(ImmutableSandboxedEnvironment):
    """Immutable sandbox where ``a.b`` on a mapping reads the key ``b`` first, and where
    nothing can exhaust the machine.

    Plain Jinja tries the attribute first, so ``event.data.items`` would be ``dict.items``
    instead of the cart's items. Repetition, concatenation, powers and ``%`` are checked
    before they run, every loop turn and call is charged to the render's budget, and
    templates render with :class:`BoundedTemplate`.
    """

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    template_class = BoundedTemplate

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        guard_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        guard_call(__obj, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def _generate(
        self,
        source: nodes.Template,
        name: str | None,
        filename: str | None,
        defer_init: bool = False,
    ) -> str:
        guarded = _Guards().visit(source)
        return super()._generate(guarded, name, filename, defer_init=defer_init)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if attr.startswith("_") or attr in _BLOCKED_ATTRS:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        # Fail loudly: a silent Undefined would hide an escape attempt as a false condition.
        raise SecurityError(f"access to {attribute!r} of {type(obj).__name__} is not allowed")

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        # A plain dict instead of Jinja's ChainMap over the environment's globals: every
        # expression call and render copies it into a fresh context, and a ChainMap is slow
        # to copy. The globals are set once in make_environment, before any compile.
        return {**self.globals, **(d or {})}

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
            return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


def _days_since(value: Any, now: Any = None) -> float | None:
    """Days from ``value`` (ISO text, date or datetime) to ``now`` (default: current UTC)."""
    when = _as_datetime(value)
    if when is None:
        return None
    ref = _as_datetime(now) or datetime.now(UTC)
    return (ref - when).total_seconds() / 86400


def _as_datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, ChainableUndefined):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def make_environment() -> JourneySandbox:
    """A fresh sandbox with the journeys filters: ``days_since`` and the locale-aware ``money``,
    ``number``, ``percent``, ``date``, ``datetime`` (:mod:`journeys.locale_filters`); every
    filter guarded, the ``format`` filter refused and no ``lipsum`` (it writes any amount of
    text)."""
    env = JourneySandbox(undefined=ChainableUndefined, autoescape=False)
    env.filters["days_since"] = _days_since
    register_locale_filters(env)
    env.filters = guarded_filters(env.filters)
    env.filters["journeys_turns"] = guarded_turns
    env.filters["journeys_concat"] = guarded_concat
    env.globals.pop("lipsum", None)
    env.globals["range"] = guarded_range
    env.globals["days_since"] = _days_since
    return env


ENV = make_environment()
HTML_ENV = make_environment()
HTML_ENV.autoescape = True


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> Any:
    """Compile an expression once; raise :class:`ExpressionError` with Jinja's message."""
    reason = check_sandbox("{{ " + source + " }}")
    if reason:
        raise ExpressionError(reason)
    try:
        return ENV.compile_expression(source, undefined_to_none=True)
    except TemplateSyntaxError as exc:
        raise ExpressionError(exc.message or str(exc)) from None
    except RecursionError:
        raise ExpressionError(TOO_DEEP) from None


TOO_DEEP = "the expression is nested too deeply; split it up"


def parse_expression(source: str) -> nodes.Template:
    """Jinja's syntax tree of the expression ``source``; :class:`ExpressionError` if it does
    not parse (including nesting so deep that the parser gives up)."""
    try:
        return ENV.parse("{{ " + source + " }}")
    except TemplateSyntaxError as exc:
        raise ExpressionError(exc.message or str(exc)) from None
    except RecursionError:
        raise ExpressionError(TOO_DEEP) from None


def unknown_names(
    source: str, *, template: bool = False, also: frozenset[str] = frozenset()
) -> list[str]:
    """Top-level names in ``source`` that an expression (or, ``template``, an inline template)
    cannot see: typos like ``costumer``. ``also`` are further names the caller provides."""
    allowed = EXPRESSION_ROOTS | set(ENV.globals) | also
    found = name_uses(source, template=template)
    return sorted({name for name, _line in found if name not in allowed})


def name_uses(source: str, *, template: bool = True) -> list[tuple[str, int]]:
    """``(name, line)`` of every read of a name that ``source`` does not define itself (with
    ``set`` or ``for``): the names it expects from outside. Lines count from 1 in ``source``.
    A ``source`` that does not parse has none (whoever compiles it reports why)."""
    try:
        ast = ENV.parse(source) if template else parse_expression(source)
    except (TemplateSyntaxError, RecursionError, ExpressionError):
        if not template:
            raise
        return []
    outside = meta.find_undeclared_variables(ast)
    return [
        (node.name, node.lineno)
        for node in ast.find_all(nodes.Name)
        if node.ctx == "load" and node.name in outside
    ]


def check_sandbox(source: str) -> str | None:
    """Why ``source`` would be refused by the sandbox at run time, found statically, or None."""
    try:
        ast = ENV.parse(source)
    except TemplateSyntaxError:
        return None
    except RecursionError:
        return TOO_DEEP
    unbounded = static_problem(ast)
    if unbounded:
        return f"{unbounded}; a message may not do that"
    for node in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            name = str(node.arg.value)
        elif isinstance(node, nodes.Filter) and node.name == "attr" and node.args:
            arg = node.args[0]
            name = str(arg.value) if isinstance(arg, nodes.Const) else ""
        else:
            continue
        if name.startswith("_") or name in _BLOCKED_ATTRS:
            return f"access to {name!r} is not allowed in journeys expressions and templates"
    return None


_GROWING_NODES = (
    nodes.Call,
    nodes.Filter,
    nodes.Mul,
    nodes.Pow,
    nodes.Add,
    nodes.Mod,
    nodes.Concat,
)


@lru_cache(maxsize=4096)
def _can_grow(source: str) -> bool:
    """Whether an expression calls or builds anything (then it runs within a budget; plain
    comparisons, the common case, do not need one)."""
    try:
        return any(True for _ in parse_expression(source).find_all(_GROWING_NODES))
    except ExpressionError:
        return True


_RUNTIME_ERRORS = (Exception,)
"""What a marketer's expression may raise at run time: anything (a filter given the wrong
kind of value raises AttributeError, say). It fails that one evaluation, never the batch."""


def evaluate(source: str, context: Mapping[str, Any]) -> Any:
    """Evaluate an expression against ``context``.

    Sandbox violations and run-time failures (comparing a missing attribute or ``None`` with a
    number, ``'7' >= 5``, division by zero …) raise :class:`ExpressionError` naming the
    expression, so the caller fails that one enrollment or event with a reason instead of the
    whole batch.
    """
    try:
        compiled = compile_expression(source)
        if not _can_grow(source):
            return compiled(**context)
        with budget():
            return compiled(**context)
    except SecurityError as exc:
        raise ExpressionError(f"refused by the sandbox: {exc}") from None
    except _RUNTIME_ERRORS as exc:
        raise ExpressionError(f"{source!r} failed: {exc}") from None


@lru_cache(maxsize=1024)
def compile_template(source: str) -> Any:
    """A short inline template (subject override, ``set``/``emit`` value), compiled once."""
    reason = check_sandbox(source)
    if reason:
        raise ExpressionError(reason)
    try:
        return ENV.from_string(source)
    except TemplateSyntaxError as exc:
        raise ExpressionError(exc.message or str(exc)) from None
    except RecursionError:
        raise ExpressionError(TOO_DEEP) from None


def template_value(value: Any, context: Mapping[str, Any]) -> Any:
    """A ``set``/``emit`` value: ``"{{ expr }}"`` keeps the expression's type (a number stays a
    number); other text with ``{{`` renders as a template; anything else is returned as is.
    Any failure is an :class:`ExpressionError`."""
    if isinstance(value, str) and "{{" in value:
        stripped = value.strip()
        if stripped.startswith("{{") and stripped.endswith("}}") and value.count("{{") == 1:
            return evaluate(stripped[2:-2].strip(), context)
        try:
            return compile_template(value).render(context)
        except SecurityError as exc:
            raise ExpressionError(f"refused by the sandbox: {exc}") from None
        except _RUNTIME_ERRORS as exc:
            raise ExpressionError(f"{value!r} failed: {exc}") from None
    return value


def truthy(source: str | None, context: Mapping[str, Any]) -> bool:
    """Evaluate a condition; a missing condition is true, undefined values are false."""
    if source is None:
        return True
    return bool(evaluate(source, context))
