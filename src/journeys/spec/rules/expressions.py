"""Rules about expressions and inline templates: they compile, are safe, and use known names."""

from __future__ import annotations

from collections.abc import Iterator

from jinja2 import TemplateSyntaxError, nodes

from journeys.expressions import (
    ENV,
    EXPRESSION_ROOTS,
    ExpressionError,
    compile_expression,
    compile_template,
    parse_expression,
    unknown_names,
)
from journeys.spec.context import JourneyContext
from journeys.spec.diagnostics import Diagnostic, did_you_mean, quote, valid_list
from journeys.spec.rules.registry import journey_rule
from journeys.spec.yamlpos import Path_, YamlDoc

VISIBLE = sorted(EXPRESSION_ROOTS | {"days_since"})
"""Names shown to marketers (Jinja's own globals such as ``range`` also work)."""
MESSAGE_NAMES = frozenset({"unsubscribe_url", "survey_url"})
"""What a message's templates see besides the expression names (runtime/render.py)."""


def expression_problems(doc: YamlDoc, loc: Path_, source: str) -> list[Diagnostic]:
    """``bad-expression`` / ``unknown-name`` diagnostics for one expression."""
    if not source.strip():
        return [
            doc.at(
                loc, "expression is empty; write a condition or remove the key", "bad-expression"
            )
        ]
    try:
        compile_expression(source)
    except ExpressionError as exc:
        return [
            doc.at(loc, f"expression {quote(source)} does not compile: {exc}", "bad-expression")
        ]
    out: list[Diagnostic] = []
    try:
        names = unknown_names(source)
    except ExpressionError:  # pragma: no cover - compiled above
        names = []
    for name in names:
        msg = f"unknown name {quote(name)} in expression {quote(source)}"
        msg += did_you_mean(name, VISIBLE) + valid_list(VISIBLE, "expressions see")
        out.append(doc.at(loc, msg, "unknown-name"))
    return out


@journey_rule
def expressions_compile(ctx: JourneyContext) -> Iterator[Diagnostic]:
    """Conditions and segments compile in the sandbox and use only visible names."""
    for loc, source in ctx.expression_sites():
        yield from expression_problems(ctx.doc, loc, source)


def template_text_problem(source: str) -> str | None:
    """Why an inline template (subject, set value) is refused, or None."""
    try:
        compile_template(source)
    except ExpressionError as exc:
        return str(exc)
    return None


@journey_rule
def inline_templates_compile(ctx: JourneyContext) -> Iterator[Diagnostic]:
    """Subjects and ``{{ … }}`` values of update/emit compile in the sandbox and use only
    names they can see (a subject also sees the message's links)."""
    for loc, source in ctx.inline_template_sites():
        reason = template_text_problem(source)
        if reason:
            msg = f"template text {quote(source)} does not compile: {reason}"
            yield ctx.at(loc, msg, "bad-expression")
            continue
        also = MESSAGE_NAMES if "subject" in loc else frozenset()
        visible = sorted(set(VISIBLE) | also)
        for name in unknown_names(source, template=True, also=also):
            msg = f"unknown name {quote(name)} in template text {quote(source)}"
            msg += did_you_mean(name, visible) + valid_list(visible, "it can see")
            yield ctx.at(loc, msg, "unknown-name")


def member_refs(source: str, path: tuple[str, ...], *, template: bool = False) -> list[str]:
    """Members read right below ``path`` in an expression (or template): for ``("answers",)``
    the step ids of ``answers.<step>`` and ``answers['step']``; for ``("event", "data")`` the
    fields of ``event.data.<field>``. Sources that do not parse have none."""
    try:
        ast = ENV.parse(source) if template else parse_expression(source)
    except (ExpressionError, TemplateSyntaxError, RecursionError):
        return []
    refs: list[str] = []
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        if _chain(node.node) != list(path):
            continue
        if isinstance(node, nodes.Getattr):
            refs.append(node.attr)
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            refs.append(node.arg.value)
    return refs


def _chain(node: nodes.Node) -> list[str] | None:
    """``event.data`` → ``["event", "data"]``; None for anything but names and members."""
    if isinstance(node, nodes.Name):
        return [node.name]
    if isinstance(node, nodes.Getattr):
        inner = _chain(node.node)
        return None if inner is None else [*inner, node.attr]
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        inner = _chain(node.node)
        value = node.arg.value
        return None if inner is None or not isinstance(value, str) else [*inner, value]
    return None


def answer_refs(source: str) -> list[str]:
    """Step ids used as ``answers.<step>`` or ``answers['step']`` in an expression."""
    return member_refs(source, ("answers",))


@journey_rule
def answers_name_surveys(ctx: JourneyContext) -> Iterator[Diagnostic]:
    """``answers.<step>`` names a survey step of this journey."""
    kinds = ctx.step_kinds()
    surveys = [sid for sid, kind in kinds.items() if kind == "survey"]
    for loc, source in ctx.expression_sites():
        for ref in answer_refs(source):
            if kinds.get(ref) == "survey":
                continue
            if ref in kinds:
                msg = f"answers.{ref}: step {quote(ref)} is a {kinds[ref]} step, not a survey"
            else:
                msg = f"answers.{ref}: there is no survey step {quote(ref)}"
                msg += did_you_mean(ref, surveys)
            msg += valid_list(surveys, "surveys") if surveys else " (this journey has no survey)"
            yield ctx.at(loc, msg, "unknown-answer")
