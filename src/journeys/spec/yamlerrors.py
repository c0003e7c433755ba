"""Plain words for YAML syntax errors: what probably happened, and where.

PyYAML says ``mapping values are not allowed here`` or ``expected <block end>, but found
'<block mapping start>'``; a marketer needs "this line is indented more than the key above
it". :func:`explain` looks at the parser's problem and at the lines around it and says the
likely cause, with the line and column to look at.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import yaml


def _quote_hint(line: str) -> str:
    """``put the value in quotes: name: "Sale: 50% off"`` from the offending line."""
    key, sep, value = line.strip().removeprefix("- ").partition(":")
    value = value.strip()
    if sep and value and '"' not in value:
        return f'put the value in quotes: {key.strip()}: "{value}"'
    return "put the value in quotes"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _previous(lines: list[str], index: int) -> tuple[int, str] | None:
    """The nearest line before ``index`` with content (not blank, not a comment)."""
    for i in range(index - 1, -1, -1):
        text = lines[i].strip()
        if text and not text.startswith("#"):
            return i, lines[i]
    return None


def _owner(lines: list[str], index: int) -> str | None:
    """The nearest line before ``index`` indented no deeper than line ``index``."""
    depth = _indent(lines[index]) if index < len(lines) else 0
    for i in range(index - 1, -1, -1):
        text = lines[i].strip()
        if text and not text.startswith("#") and _indent(lines[i]) <= depth:
            return lines[i]
    return None


@dataclass(frozen=True)
class _Failure:
    """A YAML syntax error and the text around it."""

    line: int
    col: int
    lines: list[str]
    here: str
    """The text of the line the parser stopped on."""
    problem: str
    context: str
    mark: yaml.Mark | None
    start: yaml.Mark | None
    """Where the construct the parser was reading starts, if it says."""

    @property
    def opened(self) -> str:
        """Where the construct being read starts, in words."""
        start = self.start
        return f"line {start.line + 1}, column {start.column + 1}" if start else "above"


Explanation = tuple[int, int, str]


def explain(exc: yaml.MarkedYAMLError, text: str) -> Explanation:
    """``(line, col, message)`` (1-based) for a YAML syntax error in ``text``."""
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    lines = text.splitlines()
    here = lines[line - 1] if 0 < line <= len(lines) else ""
    failure = _Failure(
        line, col, lines, here, exc.problem or "", exc.context or "", mark, exc.context_mark
    )
    for cause in _CAUSES:
        found = cause(failure)
        if found is not None:
            return found
    return _parser_words(failure)


def _bad_first_character(f: _Failure) -> Explanation | None:
    found = re.search(r"found character '(.+?)' that cannot start any token", f.problem)
    if not found:
        return None
    char = found[1]
    if char == "\\t":
        return f.line, f.col, "invalid YAML: a tab character; indent with spaces only"
    return f.line, f.col, f"invalid YAML: a value cannot start with {char}; {_quote_hint(f.here)}"


def _second_colon(f: _Failure) -> Explanation | None:
    if "mapping values are not allowed here" not in f.problem:
        return None
    before = _previous(f.lines, f.line - 1)
    if before is not None and _indent(f.here) > _indent(before[1]):
        key = before[1].strip().split(":", 1)[0]
        return (
            f.line,
            _indent(f.here) + 1,
            f"invalid YAML: this line is indented more than {key!r} on line"
            f" {before[0] + 1}, so it reads as part of that value; line the keys of one"
            " mapping up in the same column, or put the value in quotes",
        )
    return f.line, f.col, f"invalid YAML: a second ': ' in one line; {_quote_hint(f.here)}"


def _misindented_block(f: _Failure) -> Explanation | None:
    if "expected <block end>" not in f.problem or "block" not in f.context:
        return None
    if "'-'" in f.problem:
        return (
            f.line,
            f.col,
            "invalid YAML: a list item (- …) where a 'key: value' was expected; indent"
            " the list under its key",
        )
    before = _previous(f.lines, f.line - 1)
    owner = _owner(f.lines, f.line - 1)
    if owner is not None and owner.lstrip().startswith("- ") and _indent(owner) == _indent(f.here):
        return (
            f.line,
            f.col,
            f"invalid YAML: this key is at the level of the list's '- ' (column"
            f" {_indent(owner) + 1}), where only list items can be; indent it to column"
            f" {_indent(owner) + 3} to put it in the item above, or less to put it next to"
            " the key that holds the list",
        )
    above = f" (line {before[0] + 1} starts at column {_indent(before[1]) + 1})" if before else ""
    return (
        f.line,
        f.col,
        f"invalid YAML: this line is indented differently from the keys around it{above};"
        f" the keys of one mapping (or the items of one list) must start in the same"
        f" column, the block starts at {f.opened}",
    )


def _missing_colon(f: _Failure) -> Explanation | None:
    if "could not find expected ':'" not in f.problem:
        return None
    where = f.start or f.mark
    assert where is not None
    return (
        where.line + 1,
        where.column + 1,
        "invalid YAML: a line without 'key: value' where a key was expected; add the ':'"
        " after the key (or indent the line under the key it belongs to)",
    )


def _unclosed_bracket(f: _Failure) -> Explanation | None:
    if "flow mapping" not in f.context and "flow sequence" not in f.context:
        return None
    close = "}" if "mapping" in f.context else "]"
    return (
        f.line,
        f.col,
        f"invalid YAML: the {'{' if close == '}' else '['} opened at {f.opened} is not closed"
        f" with {close} before this point (or a ',' is missing between its items)",
    )


def _unclosed_quote(f: _Failure) -> Explanation | None:
    if "quoted scalar" not in f.context or "end of stream" not in f.problem:
        return None
    start = f.start
    return (
        start.line + 1 if start else f.line,
        start.column + 1 if start else f.col,
        "invalid YAML: this quote is never closed; add the closing quote",
    )


def _parser_words(f: _Failure) -> Explanation:
    """No known cause: the parser's own words, and where the construct starts."""
    parts = [p for p in (f.context, f.problem) if p]
    message = "invalid YAML: " + ", ".join(parts) if parts else "invalid YAML"
    if f.start is not None and f.mark is not None and f.start.line != f.mark.line:
        message += f" (the construct starts at {f.opened})"
    return f.line, f.col, message


_CAUSES: tuple[Callable[[_Failure], Explanation | None], ...] = (
    _bad_first_character,
    _second_colon,
    _misindented_block,
    _missing_colon,
    _unclosed_bracket,
    _unclosed_quote,
)
"""The likely causes, most specific first: the first that recognises the error explains it."""
