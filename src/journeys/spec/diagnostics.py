"""Diagnostics: one problem in one file, at a line and column, with a stable code.

Rendered like actionlint: ``path:line:col: message [code]``. Codes are stable kebab-case
strings that tools may match on; :data:`CODES` lists each with a one-line meaning.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "warning"]

CODES: dict[str, str] = {
    # reading the file
    "syntax": "the file is not valid YAML (or not UTF-8, or nested too deeply)",
    "file-not-found": "a path given to the command does not exist or cannot be read",
    "file-too-large": "the file is larger than the 1 MiB limit",
    "duplicate-key": "the same key appears twice in one mapping",
    "yaml-alias": "YAML anchors and aliases (&name / *name) are not allowed",
    "yaml-tag": "explicit YAML tags such as !!python/object are not allowed",
    # structure
    "unknown-key": "a key the language does not know (often a typo)",
    "missing-field": "a required key is missing",
    "wrong-type": "a value of the wrong kind (text, number, list or mapping)",
    "bad-value": "a value that is not one of the allowed choices",
    "bad-id": "a journey or step id that is not a lowercase slug",
    "bad-trigger": "the trigger does not have exactly one of event, date, schedule, stage",
    "unknown-step-type": "a step whose type is not one of the step types",
    "ambiguous-step": "a step with two types (for example both send and wait)",
    "bad-duration": "a duration that cannot be read (use 30m, 24h, 3d, 2w or P3D)",
    "bad-time": "a time of day or window that cannot be read (use HH:MM, 21:00-09:00)",
    "bad-cron": "a schedule that is not a 5-field cron expression",
    "bad-timezone": "a time zone that is not an IANA name such as Europe/Paris",
    "unknown-stage": "a lifecycle stage that is not one of the five stages",
    "bad-stages": "lifecycle.yaml lists stages other than the five, in order",
    "too-long": "a name longer than the database column that stores it",
    # semantics
    "duplicate-step-id": "two steps share an id",
    "duplicate-journey": "two files define the same journey id",
    "duplicate-variant": "two split variants share a name",
    "unknown-goto": "a goto or on_* target that is not a step id nor end",
    "unreachable-step": "a step that no path from the first step leads to",
    "unreachable-case": "a branch case after the else case (it can never be chosen)",
    "loop-without-wait": "a cycle of steps with no wait, wait_for or survey in it",
    "split-weights": "split weights that do not add up to 100",
    "bad-expression": "an expression or inline template that does not compile or is unsafe",
    "unknown-name": "an expression, inline template or template file uses a name it cannot see",
    "unknown-answer": "answers.<step> names a step that is not a survey",
    "missing-template": "a template that has no file in the templates directory",
    "missing-locale": "a template lacks a locale that other templates of the journey have",
    "template-error": "a template file that does not compile or is refused by the sandbox",
    "unknown-team": "notify.to names a team that journeys.yaml does not define",
    "unknown-topic": "a template's topic: is not one of the topics journeys.yaml defines",
    "unknown-event": "an event type that is not well-known, declared in journeys.yaml or stored",
    "unknown-event-field": "event.data.<field> (or emit data) names a field the event type's"
    " declaration in journeys.yaml does not have",
    "unconfigured-channel": "a step sends on a channel that channels: in journeys.yaml lacks",
    "secret-in-settings": "journeys.yaml holds a secret; secrets come from the environment",
    "internal-error": "a bug in the validator; please report it with the file",
    # scenario files (journeys test)
    "bad-record": "(scenario) a customer or event that journeys import/ingest would refuse",
    "unknown-journey": "(scenario) a journey the project does not have",
    "unknown-step": "(scenario) an expected message at a step its journey does not have",
    "in-flight-step-removed": "(warning, validate --database) customers are in flight at a step "
    "this version removes; they finish on their own version",
    "in-flight-journey-removed": "(warning, validate --database) customers are still in a "
    "journey no spec defines any more",
}
"""Every diagnostic code with a one-line meaning (docs/language.md explains each)."""


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem: ``path:line:col: message [code]`` (line and column are 1-based)."""

    path: str
    line: int
    col: int
    message: str
    code: str
    severity: Severity = "error"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message} [{self.code}]"

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict with every field."""
        return asdict(self)


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Sorted by path, line, column (then code and message), without exact duplicates."""
    return sorted(set(diagnostics), key=lambda d: (d.path, d.line, d.col, d.code, d.message))


def render_text(diagnostics: Iterable[Diagnostic]) -> str:
    """One ``path:line:col: message [code]`` line per diagnostic."""
    return "".join(f"{d}\n" for d in diagnostics)


def render_json(diagnostics: Iterable[Diagnostic]) -> str:
    """A JSON array of diagnostic objects (path, line, col, message, code, severity)."""
    return json.dumps([d.to_dict() for d in diagnostics], indent=2, ensure_ascii=False)


def quote(value: object) -> str:
    """A value as it appears in messages: text in double quotes, others as YAML would show."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """``; did you mean "send"?`` when ``word`` is close to one of ``choices``, else ``""``."""
    if not isinstance(word, str):
        return ""
    options = list(dict.fromkeys(choices))
    lowered = {c.lower(): c for c in options}
    if word.lower() in lowered and lowered[word.lower()] != word:
        return f"; did you mean {quote(lowered[word.lower()])}?"
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"; did you mean {quote(close[0])}?" if close else ""


def valid_list(choices: Sequence[str], label: str = "valid", limit: int = 30) -> str:
    """`` (valid: a, b, c)`` listing the alternatives (shortened past ``limit``)."""
    if not choices:
        return ""
    shown = list(choices[:limit])
    more = f", … {len(choices) - limit} more" if len(choices) > limit else ""
    return f" ({label}: {', '.join(shown)}{more})"
