"""Plain words for YAML syntax errors: what probably happened, and where.

PyYAML says ``mapping values are not allowed here`` or ``expected <block end>, but found
'<block mapping start>'``; a marketer needs "this line is indented more than the key above
it". :func:`explain` looks at the parser's problem and at the lines around it and says the
likely cause, with the line and column to look at.
"""

from __future__ import annotations

import re

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


def explain(exc: yaml.MarkedYAMLError, text: str) -> tuple[int, int, str]:
    """``(line, col, message)`` (1-based) for a YAML syntax error in ``text``."""
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    lines = text.splitlines()
    here = lines[line - 1] if 0 < line <= len(lines) else ""
    problem = exc.problem or ""
    context = exc.context or ""
    start = exc.context_mark
    opened = f"line {start.line + 1}, column {start.column + 1}" if start else "above"
    found = re.search(r"found character '(.+?)' that cannot start any token", problem)
    if found:
        char = found[1]
        if char == "\\t":
            return line, col, "invalid YAML: a tab character; indent with spaces only"
        return line, col, f"invalid YAML: a value cannot start with {char}; {_quote_hint(here)}"
    if "mapping values are not allowed here" in problem:
        before = _previous(lines, line - 1)
        if before is not None and _indent(here) > _indent(before[1]):
            key = before[1].strip().split(":", 1)[0]
            return (
                line,
                _indent(here) + 1,
                f"invalid YAML: this line is indented more than {key!r} on line"
                f" {before[0] + 1}, so it reads as part of that value; line the keys of one"
                " mapping up in the same column, or put the value in quotes",
            )
        return line, col, f"invalid YAML: a second ': ' in one line; {_quote_hint(here)}"
    if "expected <block end>" in problem and "block" in context:
        if "'-'" in problem:
            return (
                line,
                col,
                "invalid YAML: a list item (- …) where a 'key: value' was expected; indent"
                " the list under its key",
            )
        before = _previous(lines, line - 1)
        owner = _owner(lines, line - 1)
        if (
            owner is not None
            and owner.lstrip().startswith("- ")
            and _indent(owner) == _indent(here)
        ):
            return (
                line,
                col,
                f"invalid YAML: this key is at the level of the list's '- ' (column"
                f" {_indent(owner) + 1}), where only list items can be; indent it to column"
                f" {_indent(owner) + 3} to put it in the item above, or less to put it next to"
                " the key that holds the list",
            )
        above = (
            f" (line {before[0] + 1} starts at column {_indent(before[1]) + 1})" if before else ""
        )
        return (
            line,
            col,
            f"invalid YAML: this line is indented differently from the keys around it{above};"
            f" the keys of one mapping (or the items of one list) must start in the same"
            f" column, the block starts at {opened}",
        )
    if "could not find expected ':'" in problem:
        where = start or mark
        assert where is not None
        return (
            where.line + 1,
            where.column + 1,
            "invalid YAML: a line without 'key: value' where a key was expected; add the ':'"
            " after the key (or indent the line under the key it belongs to)",
        )
    if "flow mapping" in context or "flow sequence" in context:
        close = "}" if "mapping" in context else "]"
        return (
            line,
            col,
            f"invalid YAML: the {'{' if close == '}' else '['} opened at {opened} is not closed"
            f" with {close} before this point (or a ',' is missing between its items)",
        )
    if "quoted scalar" in context and "end of stream" in problem:
        return (
            start.line + 1 if start else line,
            start.column + 1 if start else col,
            "invalid YAML: this quote is never closed; add the closing quote",
        )
    parts = [p for p in (context, problem) if p]
    message = "invalid YAML: " + ", ".join(parts) if parts else "invalid YAML"
    if start is not None and mark is not None and start.line != mark.line:
        message += f" (the construct starts at {opened})"
    return line, col, message
