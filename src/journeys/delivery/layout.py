"""Partials (``templates/_layout.html`` …) that message templates extend, and text parts.

A message template becomes a full email by extending a layout::

    ---
    subject: "Your cart is waiting"
    ---
    {% extends "_layout.html" %}
    {% block preheader %}We saved your cart{% endblock %}
    {% block content %}<p>Hi {{ customer.first_name }} …</p>{% endblock %}

Only *partials*, files whose name starts with ``_``, can be extended or included, so a
message template can never pull in another message. Partials run in the same sandbox as the
templates that use them.

The plain-text part of a message is its ``.txt`` file or, without one, a text version of the
HTML *template* (:func:`derive_text`), made once when the template is compiled rather than
from each rendered message; a text part that extends ``_layout.html`` gets ``_layout.txt`` or
the layout's own derived text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, Environment, TemplateNotFound
from jinja2.sandbox import SecurityError

from journeys.expressions import check_sandbox

PARTIAL = re.compile(r"^_[A-Za-z0-9_\-]+(?:\.[a-z]{2,3}(?:-[A-Za-z0-9]+)*)?\.(?:html|txt)$")
"""File names a template may extend or include."""

_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_DROP = re.compile(
    r"(?is)<!--.*?-->|<head\b.*?</head>|<style\b.*?</style>|<script\b.*?</script>"
    r'|<(div|span)\b[^>]*class="[^"]*\bpreheader\b[^"]*"[^>]*>.*?</\1>'
)
_BREAK = re.compile(r"(?i)<br\s*/?>|</p>|</h\d>|</li>|</tr>|</div>|</table>|<hr\s*/?>")
_CELL = re.compile(r"(?i)</t[dh]>")
_LINK = re.compile(r'(?is)<a\s[^>]*href="([^"]+)"[^>]*>(.*?)</a>')
_TAG = re.compile(r"<[^>]+>")
_SPACES = re.compile(r"[ \t]+")
_BLANKS = re.compile(r"\n[ \t]*(?:\n[ \t]*)+")


def derive_text(source: str) -> str:
    """A plain-text *template* from an HTML template's source: tags dropped (links kept as
    ``text (url)``, table cells apart), entities decoded, the head, styles and the preheader
    left out. Jinja tags pass through untouched, so the result renders like the HTML does."""
    kept: list[str] = []

    def hide(match: re.Match[str]) -> str:
        kept.append(match.group(0))
        return f"\x00{len(kept) - 1}\x00"

    text = _JINJA.sub(hide, source)
    text = _DROP.sub("", text)
    text = _BREAK.sub("\n", text)
    text = _CELL.sub("  ", text)
    text = _LINK.sub(lambda m: _link_text(m.group(2), m.group(1)), text)
    text = html.unescape(_TAG.sub("", text))
    lines = [_SPACES.sub(" ", line).strip() for line in text.splitlines()]
    text = _BLANKS.sub("\n\n", "\n".join(lines)).strip() + "\n"
    return re.sub("\x00(\\d+)\x00", lambda m: kept[int(m.group(1))], text)


def _link_text(label: str, url: str) -> str:
    label = _TAG.sub("", label).strip()
    return f"{label} ({url})" if label and label != url else url


def tidy_text(text: str) -> str:
    """A rendered text part without the runs of blank lines control tags leave behind."""
    lines = [line.rstrip() for line in text.splitlines()]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip() + "\n"


class PartialsLoader(BaseLoader):
    """Loads the partials of one templates folder for ``{% extends %}``/``{% include %}``.

    ``text=True`` serves the plain-text side: ``_x.txt`` when it exists, else the text
    derived from ``_x.html``.
    """

    def __init__(self, directory: str | Path, *, text: bool = False) -> None:
        self.directory = Path(directory)
        self.text = text

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        if not PARTIAL.match(template):
            raise TemplateNotFound(
                f"{template} (only partials, files whose name starts with '_', can be"
                " extended or included)"
            )
        path = self.directory / template
        source_path = path
        if self.text:
            txt = path.with_suffix(".txt")
            source_path = txt if txt.is_file() else path.with_suffix(".html")
        if not source_path.is_file():
            raise TemplateNotFound(f"{template} (no {path.name} in {self.directory})")
        source = source_path.read_text(encoding="utf-8")
        if self.text and source_path.suffix == ".html":
            source = derive_text(source)
        reason = check_sandbox(source)
        if reason:
            raise SecurityError(f"{source_path.name}: {reason}")
        mtime = source_path.stat().st_mtime
        return source, str(source_path), lambda: _mtime(source_path) == mtime


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def partial_environments(directory: str | Path, html_env: Any, text_env: Any) -> tuple[Any, Any]:
    """Overlays of the sandboxed HTML and text environments that load ``directory``'s
    partials (same filters, globals and sandbox)."""
    return (
        html_env.overlay(loader=PartialsLoader(directory)),
        text_env.overlay(loader=PartialsLoader(directory, text=True)),
    )


def partial_files(directory: str | Path) -> list[Path]:
    """The partial HTML/text files of a templates folder, sorted."""
    folder = Path(directory)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and PARTIAL.match(p.name))
