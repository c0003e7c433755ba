"""The web app's HTML pages, per locale, looked up like message templates.

A page ``survey`` for a customer whose locale is ``ko-KR`` is the first of ``survey.ko-KR.html``,
``survey.ko.html``, ``survey.html`` found in the project's ``templates/pages/`` (to restyle or
translate a page) or else among the pages journeys ships (English and Korean). Pages are
Jinja2 templates with autoescaping, rendered in the sandbox.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    FileSystemLoader,
    PackageLoader,
    TemplateNotFound,
    select_autoescape,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment

from journeys.templates import locale_chain

SHIPPED_LOCALES = ("en", "ko")
"""Languages of the pages journeys ships (``en`` is the file without a locale)."""


class Pages:
    """Renders pages for one project."""

    def __init__(self, project_templates: Path | None, default_locale: str) -> None:
        loaders: list[Any] = []
        if project_templates is not None and (project_templates / "pages").is_dir():
            loaders.append(FileSystemLoader(project_templates / "pages"))
        loaders.append(PackageLoader("journeys.web", "templates"))
        self.env = ImmutableSandboxedEnvironment(
            loader=ChoiceLoader(loaders),
            autoescape=select_autoescape(default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.default_locale = default_locale

    def render(self, name: str, locale: str | None, **context: Any) -> str:
        """Page ``name`` in ``locale`` (falling back as message templates do)."""
        chain = locale_chain(locale or self.default_locale)
        if locale and self.default_locale not in chain:
            chain[-1:-1] = locale_chain(self.default_locale)[:-1]
        names = [f"{name}.{loc}.html" if loc else f"{name}.html" for loc in chain]
        try:
            template = self.env.select_template(names)
        except TemplateNotFound:
            raise LookupError(f"no page template {name!r} for locale {locale!r}") from None
        page_locale = template.name.removeprefix(name).strip(".").removesuffix("html").strip(".")
        return template.render(lang=page_locale or "en", **context)

    def best_locale(self, accept_language: str | None) -> str:
        """The browser's preferred language among the shipped ones (for pages that know no
        customer, such as a tampered link), else the project default."""
        ranked: list[tuple[float, str]] = []
        for part in (accept_language or "").split(","):
            tag, _, params = part.strip().partition(";")
            quality = 1.0
            if params.strip().startswith("q="):
                try:
                    quality = float(params.strip()[2:])
                except ValueError:
                    quality = 0.0
            if tag:
                ranked.append((quality, tag.strip()))
        for _, tag in sorted(ranked, key=lambda item: -item[0]):
            base = tag.split("-")[0].lower()
            if base in SHIPPED_LOCALES:
                return tag
        return self.default_locale
