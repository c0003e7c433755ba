"""No function over 60 lines and no module over 500 lines in ``src/journeys`` (issue 9).

A function's length runs from its ``def`` line to its last line (decorators not counted); a
module's is its number of newlines.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "journeys"
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 500


def offenders(text: str, name: str) -> list[str]:
    """``MODULE <name> <lines>`` and ``FUNC <name> <function> <lines>`` for what is too long."""
    found: list[str] = []
    lines = text.count("\n")
    if lines > MAX_MODULE_LINES:
        found.append(f"MODULE {name} {lines}")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"FUNC {name} {node.name} {length}")
    return found


def _function(name: str, body_lines: int, indent: str = "") -> str:
    body = "".join(f"{indent}    x{i} = {i}\n" for i in range(body_lines))
    return f"{indent}def {name}() -> None:\n{body}"


def test_the_check_counts_lines_as_the_issue_does() -> None:
    # def line + 59 body lines = 60 lines: allowed; def line + 60 = 61: too long. A method
    # and an async function count the same way, and a short module is fine.
    source = (
        _function("fits", 59)
        + _function("too_long", 60)
        + "class C:\n"
        + _function("method", 61, indent="    ")
        + _function("after", 1).replace("def", "async def")
    )
    assert offenders(source, "m.py") == ["FUNC m.py too_long 61", "FUNC m.py method 62"]
    assert offenders("x = 1\n" * 500, "m.py") == []
    assert offenders("x = 1\n" * 501, "m.py") == ["MODULE m.py 501"]


def test_no_function_or_module_in_src_is_too_long() -> None:
    found = [
        line
        for path in sorted(SRC.rglob("*.py"))
        for line in offenders(path.read_text("utf-8"), str(path.relative_to(SRC.parent)))
    ]
    assert not found, "too long (split along real seams):\n" + "\n".join(found)
