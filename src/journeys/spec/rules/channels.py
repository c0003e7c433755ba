"""Rules about delivery: every channel a step uses is configured, and partials are sound.

Without a ``channels:`` section the project is in demo mode (every channel logs to the
console), so nothing is missing; once ``channels:`` names a provider for any channel, a step
that sends on a channel it does not name is an error at that step, before a customer is
enrolled into a message that cannot go out.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from jinja2 import TemplateSyntaxError, meta

from journeys.delivery.layout import PartialsLoader, partial_files
from journeys.expressions import ENV
from journeys.spec.context import JourneyContext, ProjectContext
from journeys.spec.diagnostics import Diagnostic, did_you_mean, quote, valid_list
from journeys.spec.rules.registry import journey_rule, project_rule

_EXAMPLE = {
    "email": "{provider: sendgrid}",
    "sms": '{provider: twilio, from: "+15005550006"}',
    "push": "{provider: console}",
    "webhook": "{provider: webhook, url: https://…}",
}


@journey_rule
def channels_configured(ctx: JourneyContext) -> Iterator[Diagnostic]:
    """A send, survey or notify step uses only channels ``journeys.yaml`` configures."""
    configured = ctx.settings.channels
    if not configured:
        return
    where = ctx.settings.path.name if ctx.settings.path else "journeys.yaml"
    for i, raw in ctx.steps_raw():
        sid = raw.get("id") if isinstance(raw.get("id"), str) else f"#{i + 1}"
        for kind in ("send", "survey"):
            body = raw.get(kind)
            if not isinstance(body, dict):
                continue
            channel = body.get("channel", "email")
            if isinstance(channel, str) and channel != "console" and channel not in configured:
                loc = ("steps", i, kind, "channel") if "channel" in body else ("steps", i, kind)
                yield ctx.at(loc, _message(sid, channel, configured, where), "unconfigured-channel")
        body = raw.get("notify")
        if isinstance(body, dict) and isinstance(body.get("to"), str):
            team = ctx.settings.teams.get(body["to"])
            channel = team.get("channel") if team else None
            if channel in ("email", "sms", "push") and channel not in configured:
                msg = _message(sid, channel, configured, where, team=body["to"])
                yield ctx.at(("steps", i, "notify", "to"), msg, "unconfigured-channel")


def _message(
    step: str, channel: str, configured: dict[str, object], where: str, team: str | None = None
) -> str:
    by = f"team {quote(team)}, which uses {channel}" if team else channel
    example = _EXAMPLE.get(channel, "{provider: console}")
    return (
        f"step {quote(step)} sends by {by}, but {where} configures no {channel} channel"
        f" (configured: {', '.join(sorted(configured))}); add channels: {{{channel}: {example}}}"
    )


@journey_rule
def template_kinds_agree(ctx: JourneyContext) -> Iterator[Diagnostic]:
    """Every locale file of a template declares the same ``kind:`` (or none)."""
    store = ctx.templates
    if store is None:
        return
    seen: set[str] = set()
    for loc, name, _kind in ctx.template_sites():
        if name in seen or not store.locales(name):
            continue
        seen.add(name)
        try:
            kinds = {locale: store.read(name, locale).kind for locale in store.locales(name)}
        except Exception:  # a broken file is reported by templates_compile
            continue
        if len(set(kinds.values())) > 1:
            said = ", ".join(
                f"{name}.{lo}: {k or 'unset'}" if lo else f"{name}: {k or 'unset'}"
                for lo, k in sorted(kinds.items())
            )
            msg = (
                f"the locale files of template {quote(name)} disagree on kind ({said});"
                " write the same kind: in each"
            )
            yield ctx.at(loc, msg, "template-error")


@project_rule
def partials_sound(ctx: ProjectContext) -> Iterator[Diagnostic]:
    """Partials (``_layout.html``) compile in the sandbox, and every ``{% extends %}`` or
    ``{% include %}`` of a partial or of a used template names a partial that exists."""
    store = ctx.templates
    if store is None:
        return
    partials = partial_files(store.directory)
    names = [p.name for p in partials]
    loader = PartialsLoader(store.directory)
    for path in partials:
        try:
            source, _, _ = loader.get_source(ENV, path.name)
            ENV.parse(source)
        except TemplateSyntaxError as exc:
            yield Diagnostic(
                str(path), exc.lineno or 1, 1, exc.message or str(exc), "template-error"
            )
            continue
        except Exception as exc:
            yield Diagnostic(str(path), 1, 1, str(exc), "template-error")
            continue
        yield from _references(path, names)
    used = {name for journey in ctx.journeys for _, name, _ in journey.template_sites()}
    for name in sorted(used):
        for locale in store.locales(name):
            yield from _references(
                store.directory / f"{name}{'.' + locale if locale else ''}.html", names
            )


def _references(path: Path, partials: list[str]) -> Iterator[Diagnostic]:
    try:
        source = path.read_text(encoding="utf-8")
        refs = list(meta.find_referenced_templates(ENV.parse(source)))
    except Exception:  # unreadable or not compiling: templates_compile says so
        return
    for ref in refs:
        if ref is None or ref in partials:
            continue
        line = next((i for i, text in enumerate(source.splitlines(), 1) if ref in text), 1)
        msg = f"{quote(ref)} is not a partial in {path.parent}/" + did_you_mean(ref, partials)
        msg += valid_list(partials, "partials") if partials else " (add it, e.g. _layout.html)"
        yield Diagnostic(str(path), line, 1, msg, "template-error")
