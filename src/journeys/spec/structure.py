"""Structural validation: raw YAML data → pydantic models, errors → positioned diagnostics.

A journey is validated part by part (the top-level keys, the trigger, each step) so that every
structural problem is reported at once and the parts that are fine are still available to the
semantic rules.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from journeys.spec.diagnostics import Diagnostic, did_you_mean, quote, valid_list
from journeys.spec.models import (
    STEP_COMMON_KEYS,
    STEP_MODELS,
    STEP_OUTCOME_KEYS,
    TRIGGER_MODELS,
    BranchCaseSpec,
    GotoSpec,
    JourneyHead,
    SplitVariantSpec,
    StepSpec,
    TriggerSpec,
)
from journeys.spec.yamlpos import Path_, YamlDoc

_TYPE_NAMES = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
    "list_type": "a list",
    "union_tag_invalid": "a duration or a mapping",
}
_STAGE_FIELDS = {"stage", "initial"}


def describe(value: Any) -> str:
    """A value for messages: ``"abc"``, ``12``, ``a list``, ``a mapping``, ``null``."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return quote(value)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Model classes mentioned anywhere in a type annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        args = args[:1]
    if origin in (typing.Union, types.UnionType) or args:
        for arg in args:
            found.extend(m for m in _models_in(arg) if m not in found)
    return found


def fields_at(root: type[BaseModel], parts: tuple[str | int, ...]) -> list[str]:
    """The keys a mapping at ``parts`` (relative to ``root``) may have, or ``[]`` if unknown."""
    cls: type[BaseModel] | None = root
    for part in parts:
        if cls is None:
            return []
        if isinstance(part, str) and part in cls.model_fields:
            models = _models_in(cls.model_fields[part].annotation)
            cls = models[0] if len(models) == 1 else None
    return list(cls.model_fields) if cls else []


def normalize_loc(data: Any, loc: tuple[Any, ...], *, keep_last: bool) -> Path_:
    """Keep the parts of a pydantic ``loc`` that exist in ``data`` (drops union tags etc.)."""
    node = data
    out: list[str | int] = []
    for i, part in enumerate(loc):
        if (isinstance(node, dict) and isinstance(part, str) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        ):
            node = node[part]
            out.append(part)
        elif keep_last and i == len(loc) - 1 and isinstance(part, str | int):
            out.append(part)
    return tuple(out)


def where(doc: YamlDoc, loc: Path_) -> str:
    """Human words for a location: ``send of step "remind"``, ``goal``, ``the journey``."""
    step = ""
    parts = list(loc)
    if len(parts) >= 2 and parts[0] == "steps" and isinstance(parts[1], int):
        sid = doc.get(("steps", parts[1], "id"))
        step = f"step {quote(sid)}" if isinstance(sid, str) else f"step #{parts[1] + 1}"
        parts = parts[2:]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    if text and step:
        return f"{text} of {step}"
    return text or step or ("the file" if not loc else "the journey")


def pydantic_diagnostics(
    doc: YamlDoc, prefix: Path_, model: type[BaseModel], error: ValidationError
) -> list[Diagnostic]:
    """Diagnostics for every error of ``error``, raised validating the value at ``prefix``."""
    out: list[Diagnostic] = []
    for err in error.errors(include_url=False):
        kind = err["type"]
        full = normalize_loc(doc.data, prefix + tuple(err["loc"]), keep_last=kind == "missing")
        name = full[-1] if full and len(full) > len(prefix) else None
        parent = full[:-1] if name is not None else full
        failure = _Failure(doc, err, kind, full, name, parent, err.get("input"))
        if kind == "extra_forbidden":
            out.append(_unknown_key(failure, model, tuple(full[len(prefix) :])))
        else:
            out.append(_diagnostic(failure))
    return out


@dataclass(frozen=True)
class _Failure:
    """One pydantic error placed in the document: at ``full``, about key ``name`` (None when
    the error is about the value at ``prefix`` itself) of the mapping at ``parent``."""

    doc: YamlDoc
    err: ErrorDetails
    kind: str
    full: Path_
    name: str | int | None
    parent: Path_
    value: Any


_BOUNDS = {
    "greater_than_equal": "at least",
    "less_than_equal": "at most",
    "greater_than": "within bounds",
    "less_than": "within bounds",
}


def _diagnostic(f: _Failure) -> Diagnostic:
    """The diagnostic of one error other than an unknown key."""
    doc, kind, full, name, parent = f.doc, f.kind, f.full, f.name, f.parent
    if kind == "missing":
        ctx = where(doc, parent) if parent else "the journey"
        return doc.at(parent, f"missing key {quote(name)} in {ctx}", "missing-field")
    if kind == "literal_error":
        return _not_a_choice(f)
    if kind in _TYPE_NAMES:
        return _wrong_type(f)
    if kind in ("too_short", "string_too_short"):
        return doc.at(full, f"{where(doc, full)} must not be empty", "missing-field")
    if kind in _BOUNDS:
        bound = next(iter(f.err.get("ctx", {}).values()), "")
        msg = f"{name} in {where(doc, parent)} must be {_BOUNDS[kind]} {bound}, got "
        return doc.at(full, msg + describe(f.value), "bad-value")
    if re.fullmatch(r"[a-z]+(?:-[a-z]+)+", kind):  # our PydanticCustomError codes
        msg = f.err["msg"]
        named = kind in ("bad-duration", "bad-time", "bad-value")
        if named and isinstance(name, str) and not re.search(rf"\b{re.escape(name)}\b", msg):
            msg = f"{name}: {msg}"
        return doc.at(full, msg, kind)
    return doc.at(full, f"{where(doc, full)}: {f.err['msg']}", "wrong-type")


def _unknown_key(f: _Failure, model: type[BaseModel], rel: Path_) -> Diagnostic:
    """A key the model does not have: where it belongs instead, or the nearest valid key."""
    valid = fields_at(model, rel[:-1])
    inside = f" in {where(f.doc, f.parent)}" if f.parent else " at the top level"
    msg = f"unknown key {quote(f.name)}" + inside
    moved = misplaced(f.doc, f.parent, f.name) if model in _JOURNEY_MODELS else ""
    msg += moved or did_you_mean(f.name, valid) + valid_list(valid)
    return f.doc.at(f.full, msg, "unknown-key", key=True)


def _not_a_choice(f: _Failure) -> Diagnostic:
    """A value outside a fixed set of choices (a stage, a step kind, …)."""
    choices = re.findall(r"'([^']*)'", str(f.err.get("ctx", {}).get("expected", "")))
    code = "unknown-stage" if f.name in _STAGE_FIELDS else "bad-value"
    inside = f" in {where(f.doc, f.parent)}" if f.parent else ""
    msg = f"{f.name} {describe(f.value)}{inside} is not valid"
    return f.doc.at(f.full, msg + did_you_mean(f.value, choices) + valid_list(choices), code)


def _wrong_type(f: _Failure) -> Diagnostic:
    """A value of the wrong type, with a hint for the classic ``-id:`` list typo."""
    label = where(f.doc, f.full)
    if isinstance(f.name, str):
        label = f"{f.name} in {where(f.doc, f.parent)}" if f.parent else str(f.name)
    msg = f"{label} must be {_TYPE_NAMES[f.kind]}, got {describe(f.value)}"
    value = f.value
    if (
        f.kind == "list_type"
        and isinstance(value, dict)
        and any(str(k).startswith("-") for k in value)
    ):
        msg += '; a list item needs a space after the dash: "- id: …"'
    return f.doc.at(f.full, msg, "wrong-type")


_JOURNEY_MODELS = (JourneyHead, GotoSpec, *TRIGGER_MODELS.values(), *STEP_MODELS.values())
_STEP_KEYS = [*STEP_COMMON_KEYS, *STEP_MODELS, *STEP_OUTCOME_KEYS]


def _fields(*models: type[BaseModel]) -> list[str]:
    return list(dict.fromkeys(name for m in models for name in m.model_fields))


def journey_keys(doc: YamlDoc, loc: Path_) -> list[str]:
    """The keys the mapping at ``loc`` of a journey document may have ([] if not a mapping
    of the language)."""
    raw = doc.get(loc)
    present = list(raw) if isinstance(raw, dict) else []
    if loc == ():
        return list(JourneyHead.model_fields)
    if loc == ("trigger",):
        kinds = [k for k in present if k in TRIGGER_MODELS] or list(TRIGGER_MODELS)
        return _fields(*(TRIGGER_MODELS[k] for k in kinds))
    if loc == ("goal",):
        return fields_at(JourneyHead, ("goal",))
    if len(loc) == 2 and loc[0] == "steps":
        kinds = [k for k in present if k in STEP_MODELS]
        return _fields(*(STEP_MODELS[k] for k in kinds)) if kinds else _STEP_KEYS
    if len(loc) == 3 and loc[0] == "steps" and loc[2] in STEP_MODELS:
        kind = str(loc[2])
        return _fields(*_models_in(STEP_MODELS[kind].model_fields[kind].annotation))
    if len(loc) == 4 and loc[0] == "steps" and loc[2] in ("branch", "split"):
        return _fields(BranchCaseSpec if loc[2] == "branch" else SplitVariantSpec)
    return []


def misplaced(doc: YamlDoc, loc: Path_, name: str) -> str:
    """``; did you mean it under "trigger"?`` when ``name``, unknown in the mapping at
    ``loc``, is a key of a mapping next to it or around it (a mis-indented key), else ``""``."""
    here = doc.get(loc)
    if name.startswith("-") and name[1:].strip() in (journey_keys(doc, loc) or _STEP_KEYS):
        return f'; a list item needs a space after the dash: "- {name[1:].strip()}:"'
    below = [
        key
        for key, value in (here.items() if isinstance(here, dict) else [])
        if (value is None or isinstance(value, dict)) and name in journey_keys(doc, (*loc, key))
    ]
    if below:
        options = " or ".join(quote(k) for k in below)
        return f"; did you mean it under {options}? (indent it below that key)"
    if loc:
        up = loc[:-2] if isinstance(loc[-1], int) else loc[:-1]
        if name in journey_keys(doc, up):
            place = "at the top level" if not up else f"in {where(doc, up)}"
            return f"; did you mean it one level up, {place}? (indent it less)"
    elif name in _STEP_KEYS:
        return "; did you mean it in a step? (under steps:, after a '- ')"
    elif name in _fields(*TRIGGER_MODELS.values()):
        return '; did you mean it under "trigger"? (indent it below trigger:)'
    return ""


def validate_part(
    doc: YamlDoc, prefix: Path_, model: type[BaseModel], value: Any
) -> tuple[Any, list[Diagnostic]]:
    """Validate ``value`` (found at ``prefix``) against ``model``."""
    try:
        return model.model_validate(value), []
    except ValidationError as exc:
        return None, pydantic_diagnostics(doc, prefix, model, exc)


@dataclass
class StepEntry:
    """One item of ``steps``: its raw data, id and detected type, and its model if valid."""

    index: int
    raw: Any
    id: str | None
    kind: str | None
    model: StepSpec | None = None

    @property
    def loc(self) -> Path_:
        """Where the step is in the document."""
        return ("steps", self.index)


@dataclass
class ParsedJourney:
    """A journey file after structural validation (parts are ``None`` where invalid)."""

    doc: YamlDoc
    head: JourneyHead | None = None
    trigger: TriggerSpec | None = None
    steps: list[StepEntry] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether every part is structurally valid (a plan can be compiled)."""
        return (
            self.head is not None
            and self.trigger is not None
            and bool(self.steps)
            and all(s.model is not None for s in self.steps)
        )

    @property
    def journey_id(self) -> str | None:
        """The journey id as written (even when invalid), if it is text."""
        value = self.doc.get(("journey",))
        return value if isinstance(value, str) else None

    def step_ids(self) -> list[str]:
        """Every step id as written (text ids only, in order, duplicates kept)."""
        return [s.id for s in self.steps if s.id is not None]


def _step_kind(
    doc: YamlDoc, loc: Path_, raw: dict[str, Any]
) -> tuple[str | None, list[Diagnostic]]:
    present = [k for k in raw if k in STEP_MODELS]
    sid = raw.get("id")
    label = f"step {quote(sid)}" if isinstance(sid, str) else f"step #{loc[-1] + 1}"  # type: ignore[operator]
    types_ = list(STEP_MODELS)
    if len(present) == 1:
        return present[0], []
    if len(present) > 1:
        msg = (
            f"{label} has more than one type ({', '.join(present)}); a step does one thing,"
            " so split it into separate steps"
        )
        return None, [doc.at((*loc, present[1]), msg, "ambiguous-step", key=True)]
    if "goto" in raw:
        return "goto", []
    known = {*STEP_COMMON_KEYS, *STEP_OUTCOME_KEYS}
    unknown = [k for k in raw if k not in known]
    if unknown:
        msg = f"unknown step type {quote(unknown[0])}" + did_you_mean(unknown[0], types_)
        return None, [
            doc.at((*loc, unknown[0]), msg + valid_list(types_), "unknown-step-type", key=True)
        ]
    msg = f"{label} has no type; add one of: {', '.join(types_)} (or just a goto)"
    return None, [doc.at(loc, msg, "missing-field")]


def parse_steps(doc: YamlDoc, raw_steps: Any) -> tuple[list[StepEntry], list[Diagnostic]]:
    """Detect each step's type and validate it against its model."""
    entries: list[StepEntry] = []
    problems: list[Diagnostic] = []
    if not isinstance(raw_steps, list):
        return entries, problems  # reported by the head model
    for i, raw in enumerate(raw_steps):
        loc: Path_ = ("steps", i)
        if not isinstance(raw, dict):
            msg = f"step #{i + 1} must be a mapping with an id and a type, got {describe(raw)}"
            problems.append(doc.at(loc, msg, "wrong-type"))
            entries.append(StepEntry(i, raw, None, None))
            continue
        sid = raw.get("id") if isinstance(raw.get("id"), str) else None
        kind, found = _step_kind(doc, loc, raw)
        problems.extend(found)
        entry = StepEntry(i, raw, sid, kind)
        if kind is not None:
            model_cls = GotoSpec if kind == "goto" else STEP_MODELS[kind]
            entry.model, errs = validate_part(doc, loc, model_cls, raw)
            problems.extend(errs)
        entries.append(entry)
    return entries, problems


def parse_trigger(doc: YamlDoc, raw: Any) -> tuple[TriggerSpec | None, list[Diagnostic]]:
    """Detect the trigger kind (exactly one of event|date|schedule|stage) and validate it."""
    loc: Path_ = ("trigger",)
    kinds = list(TRIGGER_MODELS)
    if not isinstance(raw, dict):
        if raw is None and doc.get(loc, "absent") == "absent":
            return None, []  # missing: reported by the head model
        msg = f"trigger must be a mapping with one of {', '.join(kinds)}, got {describe(raw)}"
        return None, [doc.at(loc, msg, "wrong-type")]
    present = [k for k in raw if k in TRIGGER_MODELS]
    if len(present) != 1:
        if present:
            msg = f"trigger has {' and '.join(present)}; a trigger has exactly one of"
            return None, [
                doc.at((*loc, present[1]), f"{msg} {', '.join(kinds)}", "bad-trigger", key=True)
            ]
        unknown = [k for k in raw if k not in ("when", "at", "offset", "segment")]
        hint = did_you_mean(unknown[0], kinds) if unknown else ""
        target = (*loc, unknown[0]) if unknown else loc
        msg = f"trigger needs exactly one of {', '.join(kinds)}{hint}"
        return None, [doc.at(target, msg, "bad-trigger", key=bool(unknown))]
    model, errs = validate_part(doc, loc, TRIGGER_MODELS[present[0]], raw)
    return model, errs


def parse_journey(doc: YamlDoc) -> ParsedJourney:
    """Validate the structure of a journey document, collecting every problem."""
    parsed = ParsedJourney(doc=doc)
    data = doc.data
    if not isinstance(data, dict):
        what = "empty" if data is None else f"{describe(data)}"
        msg = (
            f"a journey file must be a mapping with journey, trigger and steps; this one is {what}"
        )
        parsed.diagnostics.append(
            doc.at((), msg, "missing-field" if data is None else "wrong-type")
        )
        return parsed
    parsed.head, errs = validate_part(doc, (), JourneyHead, data)
    parsed.diagnostics.extend(errs)
    if "trigger" in data:
        parsed.trigger, errs = parse_trigger(doc, data["trigger"])
        parsed.diagnostics.extend(errs)
    parsed.steps, errs = parse_steps(doc, data.get("steps"))
    parsed.diagnostics.extend(errs)
    return parsed
