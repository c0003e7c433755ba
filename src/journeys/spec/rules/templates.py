"""Rules about message templates and teams: they exist, in every locale, and compile."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from journeys.expressions import ENV, name_uses
from journeys.spec.context import JourneyContext, ProjectContext
from journeys.spec.diagnostics import Diagnostic, did_you_mean, quote, valid_list
from journeys.spec.rules.expressions import MESSAGE_NAMES, VISIBLE
from journeys.spec.rules.registry import journey_rule, project_rule
from journeys.templates import TemplateError, TemplateSource, TemplateStore, locale_chain


def _folder(store: TemplateStore) -> str:
    return str(store.directory)


@journey_rule
def templates_exist(ctx: JourneyContext) -> Iterator[Diagnostic]:
    """Every template named by a send, survey or notify step has a file."""
    store = ctx.templates
    if store is None:
        return
    names = store.names()
    for loc, name, _kind in ctx.template_sites():
        if name in names:
            continue
        msg = f"template {quote(name)} does not exist in {_folder(store)}/"
        if names:
            msg += did_you_mean(name, names) + valid_list(names, "templates")
        else:
            msg += f" (add {_folder(store)}/{name}.html)"
        yield ctx.at(loc, msg, "missing-template")


@journey_rule
def templates_cover_locales(ctx: JourneyContext) -> Iterator[Diagnostic]:
    """A locale one template of the journey has, every template has (or falls back to)."""
    store = ctx.templates
    if store is None:
        return
    first_site: dict[str, tuple[object, ...]] = {}
    for loc, name, _kind in ctx.template_sites():
        if store.locales(name):
            first_site.setdefault(name, loc)
    owners: dict[str, str] = {}
    for name in first_site:
        for locale in store.locales(name):
            if locale:
                owners.setdefault(locale, name)
    folder = _folder(store)
    for name, loc in first_site.items():
        for locale, owner in sorted(owners.items()):
            chain = locale_chain(locale)[:-1]  # without the default file
            if any(store.has(name, c) for c in chain):
                continue
            msg = (
                f"template {quote(name)} has no {quote(locale)} version but {quote(owner)} has one,"
                f" so {locale} customers would get mixed languages;"
                f" add {folder}/{name}.{locale}.html"
            )
            yield ctx.at(loc, msg, "missing-locale")
        default = ctx.settings.default_locale
        if store.resolve_locale(name, default) is None:
            msg = (
                f"template {quote(name)} has no default file for customers in other locales;"
                f" add {folder}/{name}.html (or {name}.{default}.html for the default locale)"
            )
            yield ctx.at(loc, msg, "missing-locale")


@journey_rule
def notify_teams_exist(ctx: JourneyContext) -> Iterator[Diagnostic]:
    """``notify.to`` is a team of the project settings."""
    teams = sorted(ctx.settings.teams)
    for i, raw in ctx.steps_raw():
        body = raw.get("notify")
        if not isinstance(body, dict) or not isinstance(body.get("to"), str):
            continue
        team = body["to"]
        if team not in teams:
            where = ctx.settings.path or "journeys.yaml"
            msg = f"team {quote(team)} is not defined in {where}" + did_you_mean(team, teams)
            msg += valid_list(teams, "teams")
            yield ctx.at(("steps", i, "notify", "to"), msg, "unknown-team")


@project_rule
def templates_compile(ctx: ProjectContext) -> Iterator[Diagnostic]:
    """Every locale file of every used template compiles in the sandbox and uses only names
    a message sees (reported once, at the template's own line and column)."""
    store = ctx.templates
    if store is None:
        return
    users: dict[str, list[JourneyContext]] = {}
    kinds: dict[str, set[str]] = {}
    for journey in ctx.journeys:
        for _loc, name, kind in journey.template_sites():
            users.setdefault(name, []).append(journey)
            kinds.setdefault(name, set()).add(kind)
    for name in sorted(users):
        for locale in store.locales(name):
            try:
                store.compile(name, locale)
                source = store.read(name, locale)
                found = list(_unknown_names(source, "survey" in kinds[name]))
                found += _unknown_topic(source, ctx.settings.topics, ctx.settings.path)
            except TemplateError as exc:
                path = str(exc.path) if exc.path else f"{store.directory}/{name}.html"
                found = [Diagnostic(path, exc.line or 1, 1, str(exc), "template-error")]
            except Exception as exc:  # unreadable file, bad encoding …
                path = f"{store.directory}/{name}{'.' + locale if locale else ''}.html"
                found = [Diagnostic(path, 1, 1, f"cannot read template: {exc}", "template-error")]
            if found:
                for journey in users[name]:
                    journey.failed = True
            yield from found


def _unknown_topic(
    source: TemplateSource, topics: Mapping[str, object], settings_path: Path | None
) -> list[Diagnostic]:
    """``unknown-topic`` when the front matter's ``topic:`` is not a topic of the project."""
    if source.topic is None or source.topic in topics:
        return []
    where = settings_path.name if settings_path else "journeys.yaml"
    names = sorted(topics)
    msg = f"topic {quote(source.topic)} is not defined under topics: in {where}"
    msg += did_you_mean(source.topic, names) if names else f" (add topics: {{{source.topic}: …}})"
    msg += valid_list(names, "topics")
    col = len("topic:") + 2
    return [Diagnostic(str(source.path), source.topic_line, col, msg, "unknown-topic")]


def _unknown_names(source: TemplateSource, survey: bool) -> Iterator[Diagnostic]:
    """``unknown-name`` for each name a template file reads that no message provides."""
    visible = sorted(set(VISIBLE) | MESSAGE_NAMES)
    allowed = set(visible) | set(ENV.globals)
    if not survey:
        allowed.discard("survey_url")
    for text, path, first_line in source.parts():
        lines = path.read_text(encoding="utf-8").splitlines() if text else []
        for name, lineno in name_uses(text):
            if name in allowed:
                continue
            line = first_line + lineno - 1
            here = lines[line - 1] if 0 < line <= len(lines) else ""
            found = re.search(rf"(?<![\w.]){re.escape(name)}\b", here)
            col = found.start() + 1 if found else 1
            if name == "survey_url":
                msg = (
                    'unknown name "survey_url": only templates sent by a survey step get a'
                    " survey link; use this template in a survey step or remove the link"
                )
            else:
                msg = f"unknown name {quote(name)} in template" + did_you_mean(name, visible)
                msg += valid_list(visible, "templates see")
            yield Diagnostic(str(path), line, col, msg, "unknown-name")
