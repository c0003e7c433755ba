"""Load a project: every spec file, the lifecycle, the settings and the templates, validated.

:func:`load_project` never raises on bad input: every problem becomes a diagnostic, and only
journeys without problems get a plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from journeys.plan import Lifecycle, Plan
from journeys.settings import Settings, find_settings_file
from journeys.spec.compiler import compile_journey
from journeys.spec.context import JourneyContext, ProjectContext
from journeys.spec.diagnostics import Diagnostic, sort_diagnostics
from journeys.spec.events import EventCatalogue
from journeys.spec.lifecycle import LIFECYCLE_NAMES, parse_lifecycle
from journeys.spec.rules import run_journey_rules, run_project_rules
from journeys.spec.rules.registry import internal_error
from journeys.spec.settings_file import parse_settings
from journeys.spec.structure import parse_journey
from journeys.spec.yamlpos import YamlDoc, load_yaml
from journeys.templates import TemplateStore

SPEC_SUFFIXES = (".yaml", ".yml")
SETTINGS_NAME = "journeys.yaml"
_SKIP_DIRS = {"node_modules", "__pycache__"}


class SpecError(ValueError):
    """Raised by the strict helpers (:func:`load_journey_text`) with every diagnostic."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


@dataclass
class Project:
    """A validated project. ``plans`` holds only the journeys without errors."""

    plans: dict[str, Plan] = field(default_factory=dict)
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    settings: Settings = field(default_factory=Settings)
    templates: TemplateStore = field(default_factory=lambda: TemplateStore("templates"))
    diagnostics: list[Diagnostic] = field(default_factory=list)
    drafts: dict[str, Plan] = field(default_factory=dict)
    """Every journey whose structure compiles, errors or not (for ``journeys graph``)."""
    files: list[str] = field(default_factory=list)
    """The spec files read, in order."""
    events: EventCatalogue = field(default_factory=EventCatalogue.build)
    """The event types the journeys may name."""

    @property
    def ok(self) -> bool:
        """Whether there is no error diagnostic."""
        return not self.errors

    @property
    def errors(self) -> list[Diagnostic]:
        """The diagnostics of severity ``error``."""
        return [d for d in self.diagnostics if d.severity == "error"]


def discover(paths: Iterable[Path | str]) -> tuple[list[Path], list[Diagnostic]]:
    """Spec files under ``paths`` (files as given; directories: ``*.yaml``/``*.yml``, recursively).

    Hidden directories and ``journeys.yaml`` (project settings) are skipped in directories.
    """
    files: list[Path] = []
    problems: list[Diagnostic] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for found in sorted(path.rglob("*")):
                rel = found.relative_to(path).parts
                if any(p.startswith(".") or p in _SKIP_DIRS for p in rel[:-1]):
                    continue
                if (
                    found.suffix in SPEC_SUFFIXES
                    and found.is_file()
                    and found.name != SETTINGS_NAME
                ):
                    files.append(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(
                Diagnostic(str(path), 1, 1, "no such file or directory", "file-not-found")
            )
    unique = list(dict.fromkeys(files))
    return unique, problems


def _read(path: Path) -> tuple[YamlDoc | None, list[Diagnostic]]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, [
            Diagnostic(str(path), 1, 1, f"cannot read file: {exc.strerror}", "file-not-found")
        ]
    return load_yaml(raw, str(path))


def _is_lifecycle(path: Path, doc: YamlDoc | None) -> bool:
    if path.name in LIFECYCLE_NAMES:
        return True
    data = doc.data if doc else None
    return isinstance(data, dict) and "lifecycle" in data and "journey" not in data


def _specs_dir(paths: Sequence[Path | str]) -> Path:
    first = Path(paths[0]) if paths else Path("journey_specs")
    return first if first.is_dir() or not first.suffix else first.parent


def _shown(path: Path | None) -> str:
    """``path`` relative to the working directory when it is below it (for messages)."""
    if path is None:
        return SETTINGS_NAME
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _load_settings(specs_dir: Path) -> tuple[Settings, list[Diagnostic]]:
    path = find_settings_file(specs_dir if specs_dir.exists() else Path.cwd())
    if path is None:
        return Settings(), []
    doc, problems = _read(Path(_shown(path)))
    if doc is None:
        return Settings(), problems
    settings, more = parse_settings(doc, path)
    return settings or Settings(path=path), problems + more


def load_project(
    paths: Sequence[Path | str] = ("journey_specs",),
    templates_dir: Path | str | None = None,
    settings: Settings | None = None,
    stored_events: Iterable[str] = (),
) -> Project:
    """Read, validate and compile every spec under ``paths``.

    ``templates_dir`` defaults to ``<specs dir>/../templates``; ``settings`` to the nearest
    ``journeys.yaml`` above the specs directory (validated; defaults when there is none).
    Event types must be well-known, declared in the settings (``events:``) or among
    ``stored_events`` (the types a database has seen).
    """
    paths = list(paths) or ["journey_specs"]
    specs_dir = _specs_dir(paths)
    project = Project()
    diagnostics: list[Diagnostic] = []
    if settings is None:
        settings, found = _load_settings(specs_dir)
        diagnostics.extend(found)
    project.settings = settings
    project.templates = TemplateStore(templates_folder(specs_dir, templates_dir))
    project.events = EventCatalogue.build(
        settings.events, stored_events, declared_in=_shown(settings.path)
    )
    files, found = discover(paths)
    diagnostics.extend(found)
    project.files = [str(f) for f in files]
    journeys = _read_specs(project, files, diagnostics)
    pctx = ProjectContext(journeys=journeys, settings=settings, templates=project.templates)
    diagnostics.extend(run_project_rules(pctx, str(specs_dir)))
    for ctx in journeys:
        diagnostics.extend(ctx.diagnostics)
        if ctx.plan is not None:
            project.drafts.setdefault(ctx.plan.journey, ctx.plan)
            if not ctx.failed:
                project.plans.setdefault(ctx.plan.journey, ctx.plan)
    project.diagnostics = sort_diagnostics(diagnostics)
    return project


def templates_folder(specs_dir: Path, templates_dir: Path | str | None) -> Path:
    """``templates_dir`` if given, else the ``templates`` folder next to the specs folder."""
    if templates_dir is not None:
        return Path(templates_dir)
    if specs_dir == Path("."):
        return Path("templates")
    return specs_dir.parent / "templates"


def _read_specs(
    project: Project, files: list[Path], diagnostics: list[Diagnostic]
) -> list[JourneyContext]:
    """Check every journey file (its problems go to ``diagnostics``); the first lifecycle file
    sets ``project.lifecycle``."""
    journeys: list[JourneyContext] = []
    lifecycle_seen: str | None = None
    for path in files:
        try:
            doc, found = _read(path)
            diagnostics.extend(found)
            if _is_lifecycle(path, doc):
                if lifecycle_seen is not None:
                    msg = f"a second lifecycle file; the lifecycle is defined in {lifecycle_seen}"
                    diagnostics.append(Diagnostic(str(path), 1, 1, msg, "duplicate-journey"))
                    continue
                lifecycle_seen = str(path)
                if doc is not None and not found:
                    lifecycle, problems = parse_lifecycle(doc, project.events)
                    diagnostics.extend(problems)
                    if lifecycle is not None:
                        project.lifecycle = lifecycle
                continue
            if doc is None:
                continue
            ctx = _check_journey(doc, project.settings, project.templates, project.events)
            ctx.failed = ctx.failed or bool(found)
            journeys.append(ctx)
        except Exception as exc:  # never a traceback for a user's file
            diagnostics.append(internal_error(str(path), "load", exc))
    return journeys


def journey_id(path: Path) -> str | None:
    """The ``journey:`` id a spec file declares (None if it cannot be read or has none)."""
    doc, _ = _read(path)
    data = doc.data if doc is not None else None
    found = data.get("journey") if isinstance(data, dict) else None
    return found if isinstance(found, str) else None


def load_project_with(
    specs: Path | str,
    journey_file: Path | str,
    templates_dir: Path | str | None = None,
    stored_events: Iterable[str] = (),
) -> Project:
    """The project at ``specs`` with ``journey_file`` in it (``journeys forecast``): added,
    or in place of the spec file that defines the same journey id. Settings and templates
    are the project's (``templates_dir`` defaults as in :func:`load_project`); diagnostics
    are :func:`load_project`'s, ``journey_file`` named as given."""
    specs_dir = _specs_dir([specs])
    extra = Path(journey_file)
    jid = journey_id(extra)
    files, problems = discover([specs])
    kept = [
        f for f in files if f.resolve() != extra.resolve() and (jid is None or journey_id(f) != jid)
    ]
    settings, found = _load_settings(specs_dir)
    project = load_project(
        [*kept, extra],
        templates_dir=templates_folder(specs_dir, templates_dir),
        settings=settings,
        stored_events=stored_events,
    )
    project.diagnostics = sort_diagnostics([*problems, *found, *project.diagnostics])
    return project


def _check_journey(
    doc: YamlDoc,
    settings: Settings,
    templates: TemplateStore | None,
    events: EventCatalogue | None = None,
) -> JourneyContext:
    """Structure, draft plan and every journey rule for one document."""
    parsed = parse_journey(doc)
    ctx = JourneyContext(parsed=parsed, settings=settings, templates=templates, events=events)
    ctx.diagnostics.extend(parsed.diagnostics)
    if parsed.complete:
        assert parsed.head is not None and parsed.trigger is not None
        try:
            ctx.plan = compile_journey(
                parsed.head,
                parsed.trigger,
                [s.model for s in parsed.steps if s.model is not None],
                source=doc.path,
                raw=doc.raw,
                templates=templates,
                default_timezone=settings.timezone,
            )
        except Exception as exc:
            ctx.diagnostics.append(internal_error(doc.path, "compile", exc))
    ctx.diagnostics.extend(run_journey_rules(ctx))
    if ctx.diagnostics:
        ctx.failed = True
    return ctx


def check_journey_text(
    text: str | bytes,
    *,
    path: str = "<journey>",
    templates: TemplateStore | None = None,
    settings: Settings | None = None,
    events: EventCatalogue | None = None,
) -> tuple[Plan | None, list[Diagnostic]]:
    """Validate one journey given as text; the plan is ``None`` when there are errors.

    With ``templates=None`` template checks are skipped, with ``events=None`` event type
    checks (handy in tests of the runtime).
    """
    raw = text.encode() if isinstance(text, str) else text
    doc, found = load_yaml(raw, path)
    if doc is None:
        return None, found
    ctx = _check_journey(doc, settings or Settings(), templates, events)
    pctx = ProjectContext(journeys=[ctx], settings=ctx.settings, templates=templates)
    problems = sort_diagnostics([*found, *ctx.diagnostics, *run_project_rules(pctx, path)])
    if problems or ctx.failed:
        return None, problems
    return ctx.plan, []


def load_journey_text(
    text: str | bytes,
    *,
    path: str = "<journey>",
    templates: TemplateStore | None = None,
    settings: Settings | None = None,
    events: EventCatalogue | None = None,
) -> Plan:
    """The plan of one journey given as text; :class:`SpecError` lists every problem."""
    plan, problems = check_journey_text(
        text, path=path, templates=templates, settings=settings, events=events
    )
    if plan is None:
        raise SpecError(problems or [Diagnostic(path, 1, 1, "no plan", "internal-error")])
    return plan
