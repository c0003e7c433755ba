"""Read YAML with a position for every key and value, and none of YAML 1.1's surprises.

The loader composes the document into nodes (PyYAML's safe composer) and builds plain Python
values itself, so that:

* every mapping key and every value keeps its 1-based line and column (:class:`YamlDoc`);
* ``on``/``off``/``yes``/``no`` stay text and ``12:30`` stays text (only ``true``/``false``
  are booleans, there are no sexagesimal numbers and no timestamps);
* duplicate keys, aliases (``*name``), explicit tags and files over :data:`MAX_BYTES` are
  reported as diagnostics, and syntax errors become a diagnostic with line and column.

It never raises on bad input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from journeys.spec.diagnostics import Diagnostic, quote
from journeys.spec.yamlerrors import explain

MAX_BYTES = 1024 * 1024
"""Files larger than this are refused (``file-too-large``)."""

MAX_DEPTH = 64
"""Deeper nesting is refused: no journey needs it, and it protects the recursive composer."""

Path_ = tuple[str | int, ...]
"""A location inside a document: keys and list indices from the root, e.g. ``("steps", 0)``."""

Pos = tuple[int, int]

_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"


class _Loader(yaml.SafeLoader):
    """SafeLoader's composer with a YAML 1.2-core-like resolver (see the module docstring)."""

    yaml_implicit_resolvers: dict[str, list[tuple[str, re.Pattern[str]]]] = {}  # noqa: RUF012

    depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:  # type: ignore[override]
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _AliasError(event.start_mark)
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _DepthError(self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


_Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(_NULL, re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
_Loader.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?[0-9]+|0x[0-9a-fA-F]+|0o[0-7]+)$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)


class _DepthError(Exception):
    def __init__(self, mark: Any) -> None:
        super().__init__("depth")
        self.mark = mark


class _AliasError(Exception):
    def __init__(self, mark: Any) -> None:
        super().__init__("alias")
        self.mark = mark


@dataclass
class YamlDoc:
    """A parsed document: plain ``data`` plus positions of values and of mapping keys."""

    path: str
    data: Any
    values: dict[Path_, Pos] = field(default_factory=dict)
    keys: dict[Path_, Pos] = field(default_factory=dict)
    raw: bytes = b""

    def pos(self, loc: Path_, *, key: bool = False) -> Pos:
        """Line and column of ``loc`` (of its key when ``key``), else of its nearest ancestor."""
        loc = tuple(loc)
        while True:
            table = self.keys if key else self.values
            if loc in table:
                return table[loc]
            if key and loc in self.values:
                return self.values[loc]
            if not loc:
                return (1, 1)
            loc = loc[:-1]
            key = False

    def at(self, loc: Path_, message: str, code: str, *, key: bool = False) -> Diagnostic:
        """A diagnostic for ``loc`` in this file."""
        line, col = self.pos(loc, key=key)
        return Diagnostic(self.path, line, col, message, code)

    def get(self, loc: Path_, default: Any = None) -> Any:
        """The value at ``loc``, or ``default`` when the path does not exist."""
        node = self.data
        for part in loc:
            if (isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node)) or (
                isinstance(part, str) and isinstance(node, dict) and part in node
            ):
                node = node[part]
            else:
                return default
        return node


def _short(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")


def _mark(node: Node) -> Pos:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    """Turns composed nodes into plain values, recording positions and problems."""

    def __init__(self, doc: YamlDoc) -> None:
        self.doc = doc
        self.problems: list[Diagnostic] = []

    def source_at(self, pos: Pos, shift: int = 0) -> str:
        """Two characters of the source at ``pos`` (moved ``shift`` columns)."""
        lines = self.doc.raw.decode("utf-8", "replace").splitlines()
        line = lines[pos[0] - 1] if 0 < pos[0] <= len(lines) else ""
        start = max(pos[1] - 1 + shift, 0)
        return line[start : start + 2]

    def problem(self, pos: Pos, message: str, code: str) -> None:
        self.problems.append(Diagnostic(self.doc.path, pos[0], pos[1], message, code))

    def build(self, node: Node, loc: Path_, depth: int = 0) -> Any:
        self.doc.values[loc] = _mark(node)
        if depth > MAX_DEPTH:
            self.problem(_mark(node), f"nesting deeper than {MAX_DEPTH} levels", "syntax")
            return None
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if isinstance(node, SequenceNode):
            self.check_tag(node, _SEQ)
            return [self.build(item, (*loc, i), depth + 1) for i, item in enumerate(node.value)]
        if isinstance(node, MappingNode):
            self.check_tag(node, _MAP)
            return self.mapping(node, loc, depth)
        return None  # pragma: no cover - composer produces only the three kinds

    def check_tag(self, node: Node, expected: str) -> None:
        if node.tag != expected:
            self.problem(
                _mark(node), f"YAML tag {_short(node.tag)} is not allowed; remove it", "yaml-tag"
            )

    def mapping(self, node: MappingNode, loc: Path_, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        seen: dict[str, Pos] = {}
        for key_node, value_node in node.value:
            kpos = _mark(key_node)
            if not isinstance(key_node, ScalarNode):
                if self.source_at(kpos).startswith("{") and self.source_at(kpos, -1) == "{{":
                    key = loc[-1] if loc and isinstance(loc[-1], str) else "key"
                    msg = (
                        "a value that starts with {{ must be in quotes, or YAML reads it as a"
                        f' mapping: {key}: "{{{{ … }}}}"'
                    )
                    self.problem((kpos[0], kpos[1] - 1), msg, "syntax")
                else:
                    msg = "a key must be plain text, not a list or mapping"
                    self.problem(kpos, msg, "wrong-type")
                continue
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.problem(
                    kpos, "merge keys (<<) are not allowed; write the keys out", "yaml-alias"
                )
                continue
            key = str(key_node.value)
            if key in seen:
                first = seen[key]
                self.problem(
                    kpos,
                    f"duplicate key {quote(key)} (first defined at line {first[0]},"
                    f" column {first[1]}); remove one of them",
                    "duplicate-key",
                )
                continue
            seen[key] = kpos
            self.doc.keys[(*loc, key)] = kpos
            result[key] = self.build(value_node, (*loc, key), depth + 1)
        return result

    def scalar(self, node: ScalarNode) -> Any:
        value: str = node.value
        tag = node.tag
        if tag == _STR:
            return value
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return value.lower() == "true"
        if tag == _INT:
            try:
                return int(value, 0) if value[:2] in ("0x", "0o") else int(value)
            except ValueError:
                pass
        elif tag == _FLOAT:
            try:
                return float(value.replace(".inf", "inf").replace(".Inf", "inf").lower())
            except ValueError:
                pass
        else:
            self.problem(
                _mark(node), f"YAML tag {_short(tag)} is not allowed; remove it", "yaml-tag"
            )
        return value


def load_yaml(raw: bytes, path: str) -> tuple[YamlDoc | None, list[Diagnostic]]:
    """Parse ``raw`` (the bytes of the file at display path ``path``).

    Returns the document (``None`` when it cannot be read at all) and the problems found. An
    empty file gives a document whose ``data`` is ``None``.
    """
    if len(raw) > MAX_BYTES:
        return None, [
            Diagnostic(
                path, 1, 1, f"file is {len(raw)} bytes; the limit is {MAX_BYTES}", "file-too-large"
            )
        ]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [Diagnostic(path, line, col, "file is not UTF-8 text", "syntax")]
    doc = YamlDoc(path=path, data=None, raw=raw)
    loader = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
    except _AliasError as exc:
        pos = (exc.mark.line + 1, exc.mark.column + 1)
        message = "YAML anchors and aliases (&name, *name) are not allowed; write the value out"
        return None, [Diagnostic(path, pos[0], pos[1], message, "yaml-alias")]
    except _DepthError as exc:
        pos = (exc.mark.line + 1, exc.mark.column + 1)
        msg = f"invalid YAML: nested deeper than {MAX_DEPTH} levels"
        return None, [Diagnostic(path, pos[0], pos[1], msg, "syntax")]
    except yaml.MarkedYAMLError as exc:
        line, col, message = explain(exc, text)
        return None, [Diagnostic(path, line, col, message, "syntax")]
    except yaml.reader.ReaderError as exc:
        before = text[: exc.position]
        line, col = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        msg = f"invalid YAML: character #x{exc.character:04x} is not allowed in YAML text"
        return None, [Diagnostic(path, line, col, msg, "syntax")]
    except yaml.YAMLError as exc:
        return None, [Diagnostic(path, 1, 1, f"invalid YAML: {exc}", "syntax")]
    except RecursionError:
        return None, [Diagnostic(path, 1, 1, "invalid YAML: nested too deeply", "syntax")]
    finally:
        if loader is not None:
            loader.dispose()
    if node is None:
        return doc, []
    builder = _Builder(doc)
    doc.data = builder.build(node, ())
    return doc, builder.problems
