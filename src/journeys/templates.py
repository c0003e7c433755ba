"""Message templates: ``templates/<name>[.<locale>].html`` with a subject in front matter.

A template file looks like::

    ---
    subject: "{{ customer.first_name }}, your cart is waiting"
    ---
    <p>Hello {{ customer.first_name }} …</p>

An optional ``<name>[.<locale>].txt`` beside it is the plain-text part; without one the text is
derived from the HTML template once, when it is compiled (:mod:`journeys.delivery.layout`, which
also lets templates extend partials such as ``_layout.html``). Front matter may say
``kind: transactional`` (default: marketing) and ``topic: <name>``, the subscription topic
(``topics:`` in journeys.yaml) a marketing message belongs to. Locales fall back ``ko-KR`` →
``ko`` → the file without a locale. Templates are compiled once per (name, locale) in the sandbox of
:mod:`journeys.expressions`.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Template, TemplateSyntaxError
from jinja2.sandbox import SecurityError

from journeys.delivery.layout import derive_text, partial_environments, partial_files
from journeys.expressions import ENV, HTML_ENV, ExpressionError, check_sandbox
from journeys.sandbox_limits import budget

_NAME = re.compile(r"^(?P<name>[A-Za-z0-9_\-]+?)(?:\.(?P<locale>[a-z]{2,3}(?:-[A-Za-z0-9]+)*))?$")
_TAG = re.compile(r"<[^>]+>")
_BLANKS = re.compile(r"\n\s*\n+")
_TOPIC = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclass(frozen=True)
class TemplateSource:
    """One template file, split into its parts. ``body_line`` and ``subject_line`` are the file
    lines where the body and the subject start; ``text_path`` is the ``.txt`` part's file."""

    name: str
    locale: str
    path: Path
    subject: str
    html: str
    text: str | None
    body_line: int
    subject_line: int = 2
    text_path: Path | None = None
    kind: str | None = None
    """``kind:`` of the front matter: ``marketing`` or ``transactional`` (None: not said)."""
    topic: str | None = None
    """``topic:`` of the front matter: the subscription topic (None: not said)."""
    topic_line: int = 2

    def parts(self) -> list[tuple[str, Path, int]]:
        """``(text, file, first line)`` of the subject, the HTML body and the text part (if
        any): where each part's line 1 is in which file."""
        found = [
            (self.subject, self.path, self.subject_line),
            (self.html, self.path, self.body_line),
        ]
        if self.text is not None:
            found.append((self.text, self.text_path or self.path, 1))
        return found


@dataclass(frozen=True)
class RenderedMessage:
    """What a template renders to for one customer."""

    subject: str
    html: str
    text: str


class TemplateError(ExpressionError):
    """A template that is missing, malformed, does not compile, or fails for one customer."""

    def __init__(self, message: str, path: Path | None = None, line: int = 1) -> None:
        super().__init__(message)
        self.path = path
        self.line = line


@dataclass(frozen=True)
class CompiledTemplate:
    """Subject, HTML and text compiled once; :meth:`render` is called per customer."""

    source: TemplateSource
    subject: Template
    html: Template
    text: Template | None

    def render(self, context: dict[str, Any]) -> RenderedMessage:
        """Render for one customer; any failure becomes a :class:`TemplateError`."""
        try:
            with budget():  # one budget for the whole message
                body = self.html.render(context)
                subject = " ".join(self.subject.render(context).split())
                text = self.text.render(context) if self.text else html_to_text(body)
        except SecurityError as exc:
            raise TemplateError(f"refused by the sandbox: {exc}", self.source.path) from None
        except Exception as exc:  # a marketer's template may raise anything
            raise TemplateError(
                f"{type(exc).__name__}: {exc}", self.source.path, self.source.body_line
            ) from None
        return RenderedMessage(subject=subject, html=body, text=text)


_BREAKS = re.compile(r"(?i)<br\s*/?>|</p>|</h\d>|</li>|</tr>")
_LINK = re.compile(r'(?i)<a\s[^>]*href="([^"]+)"[^>]*>(.*?)</a>')


def html_to_text(body: str) -> str:
    """A readable plain-text part from HTML (tags dropped, entities decoded)."""
    text = _BREAKS.sub("\n", body)
    text = _LINK.sub(r"\2 (\1)", text)
    text = html.unescape(_TAG.sub("", text))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip() + "\n"


def locale_chain(locale: str | None) -> list[str]:
    """``ko-KR`` → ``["ko-KR", "ko", ""]``; ``""`` is the file without a locale."""
    chain: list[str] = []
    if locale:
        parts = locale.replace("_", "-").split("-")
        for i in range(len(parts), 0, -1):
            candidate = "-".join(parts[:i])
            if candidate not in chain:
                chain.append(candidate)
    chain.append("")
    return chain


def _compile_part(env: Any, text: str, path: Path, first_line: int) -> Template:
    """One part of a template file; errors carry the file and line they are on."""
    reason = check_sandbox(text)
    if reason:
        raise TemplateError(reason, path, first_line)
    try:
        return env.from_string(text)
    except TemplateSyntaxError as exc:
        line = first_line + (exc.lineno or 1) - 1
        raise TemplateError(exc.message or str(exc), path, line) from None
    except RecursionError:
        raise TemplateError("nested too deeply", path, first_line) from None


class TemplateStore:
    """The templates of one directory, read lazily and compiled once per (name, locale)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._compiled: dict[tuple[str, str], CompiledTemplate] = {}
        self._by_locale: dict[tuple[str, str | None], CompiledTemplate] = {}
        # Templates may extend the folder's partials (_layout.html); see delivery.layout.
        self._html_env, self._text_env = partial_environments(self.directory, HTML_ENV, ENV)

    @cached_property
    def _files(self) -> dict[tuple[str, str], Path]:
        found: dict[tuple[str, str], Path] = {}
        if not self.directory.is_dir():
            return found
        for path in sorted(self.directory.glob("*.html")):
            match = _NAME.match(path.stem)
            if match and not path.stem.startswith("_"):  # _layout.html … are partials
                found[(match["name"], match["locale"] or "")] = path
        return found

    def names(self) -> list[str]:
        """Every template name in the directory, sorted."""
        return sorted({name for name, _ in self._files})

    def locales(self, name: str) -> list[str]:
        """The locales ``name`` exists in (``""`` is the default file)."""
        return sorted(loc for n, loc in self._files if n == name)

    def has(self, name: str, locale: str = "") -> bool:
        """Whether ``name`` exists exactly in ``locale``."""
        return (name, locale) in self._files

    def resolve_locale(self, name: str, locale: str | None) -> str | None:
        """The locale file that serves ``locale`` (fallback chain), or None if none does."""
        for candidate in locale_chain(locale):
            if (name, candidate) in self._files:
                return candidate
        return None

    def read(self, name: str, locale: str = "") -> TemplateSource:
        """Read and split one template file; malformed front matter raises TemplateError."""
        path = self._files.get((name, locale))
        if path is None:
            raise TemplateError(f"template {name!r} ({locale or 'default'}) does not exist")
        raw = path.read_text(encoding="utf-8")
        front = _FrontMatter.split(raw, path)
        text_path = path.with_suffix(".txt")
        text = text_path.read_text(encoding="utf-8") if text_path.exists() else None
        return TemplateSource(
            name,
            locale,
            path,
            front.subject,
            front.body,
            text,
            front.body_line,
            front.line_of("subject"),
            text_path if text is not None else None,
            front.kind,
            front.topic,
            front.line_of("topic"),
        )

    def compile(self, name: str, locale: str = "") -> CompiledTemplate:
        """Compile (once) the exact ``(name, locale)`` file."""
        key = (name, locale)
        cached = self._compiled.get(key)
        if cached is not None:
            return cached
        src = self.read(name, locale)
        compiled = CompiledTemplate(
            source=src,
            subject=_compile_part(ENV, src.subject, src.path, src.subject_line),
            html=_compile_part(self._html_env, src.html, src.path, src.body_line),
            text=(
                _compile_part(self._text_env, src.text, src.text_path or src.path, 1)
                if src.text is not None
                else _compile_part(self._text_env, derive_text(src.html), src.path, src.body_line)
            ),
        )
        self._compiled[key] = compiled
        return compiled

    def for_locale(self, name: str, locale: str | None) -> CompiledTemplate:
        """The compiled template that serves ``locale`` with fallback (memoised: called for
        every rendered message)."""
        found = self._by_locale.get((name, locale))
        if found is None:
            resolved = self.resolve_locale(name, locale)
            if resolved is None:
                raise TemplateError(f"template {name!r} does not exist")
            found = self._by_locale[(name, locale)] = self.compile(name, resolved)
        return found

    def digest(self, names: list[str] | tuple[str, ...]) -> str:
        """A hash of every file of ``names`` (all locales), part of a plan's version."""
        h = hashlib.sha256()
        for name in sorted(set(names)):
            for locale in self.locales(name):
                path = self._files[(name, locale)]
                h.update(f"{name}.{locale}\0".encode())
                h.update(path.read_bytes())
                txt = path.with_suffix(".txt")
                if txt.exists():
                    h.update(txt.read_bytes())
        for partial in partial_files(self.directory):
            h.update(f"{partial.name}\0".encode() + partial.read_bytes())
        return h.hexdigest()

    def kind(self, name: str) -> str | None:
        """The ``kind:`` the front matter of ``name`` declares (its default file, else its
        first locale), or None."""
        locales = self.locales(name)
        if not locales:
            return None
        return self.read(name, "" if "" in locales else locales[0]).kind


@dataclass(frozen=True)
class _FrontMatter:
    """A template file split into its front matter (checked) and its body."""

    raw: str
    header_end: int
    meta: dict[str, Any]
    body: str
    body_line: int

    @classmethod
    def split(cls, raw: str, path: Path) -> _FrontMatter:
        if not raw.startswith("---"):
            return cls(raw, 0, {}, raw, 1)
        end = raw.find("\n---", 3)
        if end < 0:
            raise TemplateError("front matter is not closed with '---'", path, 1)
        try:
            meta = yaml.safe_load(raw[3:end]) or {}
        except yaml.YAMLError as exc:
            line = getattr(getattr(exc, "problem_mark", None), "line", 0) + 1
            raise TemplateError(f"front matter is not valid YAML: {exc}", path, line) from None
        if not isinstance(meta, dict):
            raise TemplateError("front matter must be 'subject: …'", path, 2)
        rest, body_line = raw[end + 4 :], raw[: end + 4].count("\n") + 1
        if rest.startswith("\n"):
            rest, body_line = rest[1:], body_line + 1
        front = cls(raw, end, meta, rest, body_line)
        front.check(path)
        return front

    def check(self, path: Path) -> None:
        kind, topic = self.meta.get("kind"), self.meta.get("topic")
        if kind not in (None, "marketing", "transactional"):
            msg = f"kind {kind!r} is not valid (valid: marketing, transactional)"
            raise TemplateError(msg, path, self.line_of("kind"))
        if topic is not None and not (isinstance(topic, str) and _TOPIC.match(topic)):
            msg = f"topic {topic!r} must be the name of a topic of journeys.yaml, e.g. newsletter"
            raise TemplateError(msg, path, self.line_of("topic"))

    def line_of(self, key: str) -> int:
        """The file line of ``key:`` in the front matter (2 when it is not there)."""
        found = re.search(rf"^{key}\s*:", self.raw[: self.header_end], re.MULTILINE)
        return self.raw[: found.start()].count("\n") + 1 if found else 2

    @property
    def subject(self) -> str:
        return str(self.meta.get("subject", ""))

    @property
    def kind(self) -> str | None:
        return self.meta.get("kind")

    @property
    def topic(self) -> str | None:
        return self.meta.get("topic")
