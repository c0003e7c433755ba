"""Reading records from files: CSV and JSON Lines, one record per line, never a traceback.

A line that cannot be parsed becomes a :class:`BadLine` carrying the reason, so one bad line
is one reported record and the rest of the file is still read.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from journeys.intake import MAX_DEPTH, MAX_LINE


class BadLine:
    """A line that could not even be parsed (placeholder carrying the parse error)."""

    def __init__(self, message: str) -> None:
        self.message = message


# Bytes that are not UTF-8 survive decoding as lone surrogates (errors="surrogateescape"), so
# one bad line becomes one bad record instead of an exception that stops the whole file.
_NOT_UTF8 = re.compile("[\udc80-\udcff]")
NOT_UTF8 = "not UTF-8 text: save the file as UTF-8"


def read_records(path: Path) -> Iterator[Any]:
    """Records of a JSON Lines or CSV file, one per line; unparsable lines (not JSON, not
    UTF-8, a CSV field over the CSV reader's limit, …) yield :class:`BadLine`.

    Blank lines, the CSV header and the extra lines of a CSV row with line breaks in a quoted
    value are yielded as None so that positions stay line numbers.
    """
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as handle:
            reader = csv.DictReader(handle)
            try:
                header = reader.fieldnames
            except csv.Error as exc:
                yield BadLine(f"the header cannot be read: {exc}")
                return
            if not header or "id" not in header:
                shown = [h[:40] for h in header or []][:20]
                yield BadLine(f"the header has no 'id' column (found: {shown})")
                return
            yield None  # the header line
            line = 2  # the line the next yielded item stands for
            while True:
                ended = reader.line_num
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    first = ended + 1
                    yield from itertools.repeat(None, max(first - line, 0))
                    yield BadLine(f"not a CSV row: {exc}")
                    line = max(first, line) + 1
                    continue
                breaks = sum(v.count("\n") for v in row.values() if isinstance(v, str))
                first = reader.line_num - breaks
                yield from itertools.repeat(None, max(first - line, 0))
                line = max(first, line) + 1
                if None in row:
                    yield BadLine(f"{len(row[None])} more value(s) than header columns")  # type: ignore[index]
                elif any(_NOT_UTF8.search(v) for v in row.values() if v):
                    yield BadLine(NOT_UTF8)
                else:
                    yield {k: v for k, v in row.items() if v not in (None, "")}
        return
    with path.open(encoding="utf-8", errors="surrogateescape") as handle:
        yield from parse_json_lines(handle)


def parse_json_lines(lines: Iterable[str]) -> Iterator[Any]:
    """One record per line: the parsed JSON, :class:`BadLine` if it is not JSON (or too long,
    or nested too deeply for any record), None if blank."""
    for line in lines:
        text = line.strip()
        if not text:
            yield None
            continue
        if len(text) > MAX_LINE:
            yield BadLine(f"the line is {len(text):,} characters; a record may have {MAX_LINE:,}")
            continue
        if _NOT_UTF8.search(text):
            yield BadLine(NOT_UTF8)
            continue
        try:
            yield json.loads(text)
        except json.JSONDecodeError as exc:
            yield BadLine(f"not valid JSON: {exc.msg} at column {exc.colno}")
        except RecursionError:
            yield BadLine(f"JSON nested too deeply (a record may nest {MAX_DEPTH} levels)")
        except ValueError as exc:  # e.g. an integer of thousands of digits
            yield BadLine(f"not valid JSON: {str(exc)[:120]}")


def records_from_text(text: str) -> list[Any]:
    """Parse JSON Lines text (tests, HTTP bodies) the way :func:`read_records` reads a file."""
    return list(parse_json_lines(io.StringIO(text)))
