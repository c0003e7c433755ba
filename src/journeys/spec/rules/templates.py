"""Rules about message templates and teams: they exist, in every locale, and compile."""

from __future__ import annotations

from collections.abc import Iterator

from journeys.spec.context import JourneyContext, ProjectContext
from journeys.spec.diagnostics import Diagnostic, did_you_mean, quote, valid_list
from journeys.spec.rules.registry import journey_rule, project_rule
from journeys.templates import TemplateError, TemplateStore, locale_chain


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
    """Every locale file of every used template compiles in the sandbox (reported once)."""
    store = ctx.templates
    if store is None:
        return
    users: dict[str, list[JourneyContext]] = {}
    for journey in ctx.journeys:
        for _loc, name, _kind in journey.template_sites():
            users.setdefault(name, []).append(journey)
    for name in sorted(users):
        for locale in store.locales(name):
            try:
                store.compile(name, locale)
            except TemplateError as exc:
                path = str(exc.path) if exc.path else f"{store.directory}/{name}.html"
                for journey in users[name]:
                    journey.failed = True
                yield Diagnostic(path, exc.line or 1, 1, str(exc), "template-error")
            except Exception as exc:  # unreadable file, bad encoding …
                for journey in users[name]:
                    journey.failed = True
                path = f"{store.directory}/{name}{'.' + locale if locale else ''}.html"
                yield Diagnostic(path, 1, 1, f"cannot read template: {exc}", "template-error")
