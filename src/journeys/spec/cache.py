"""Compile once: the runtime loads compiled plans instead of validating every spec on every
open (every Prefect flow run opens the project).

:func:`load_compiled_project` keys a cache by the content of every file the project reads (the
specs, the lifecycle, ``journeys.yaml`` and the templates). A hit rebuilds the project from the
saved plans (like dbt's manifest, the artifact between compile and run); a miss validates and
compiles with :func:`~journeys.spec.project.load_project` and, when the project is clean,
saves it. ``JOURNEYS_PLANS`` (or ``plans=``) points at the output of ``journeys compile``
instead, which is then taken as it is.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from journeys.plan import Lifecycle, Plan
from journeys.spec.project import (
    Project,
    _load_settings,
    _specs_dir,
    discover,
    load_project,
    templates_folder,
)
from journeys.templates import TemplateStore

log = logging.getLogger("journeys.spec.cache")

FORMAT = 1
"""Bumped when the cached form changes (older entries are then ignored)."""
ENV_PLANS = "JOURNEYS_PLANS"
ENV_CACHE = "JOURNEYS_CACHE_DIR"


def _templates_dir(specs: Path, templates_dir: Path | str | None) -> Path:
    return templates_folder(_specs_dir([specs]), templates_dir)


def content_key(specs: Path, templates_dir: Path | str | None = None) -> str:
    """A hash of every file the project at ``specs`` reads."""
    files, _ = discover([specs])
    folder = _templates_dir(specs, templates_dir)
    if folder.is_dir():
        files += sorted(p for p in folder.rglob("*") if p.is_file())
    settings, _ = _load_settings(_specs_dir([specs]))
    if settings.path is not None:
        files.append(settings.path)
    digest = hashlib.sha256(f"journeys-plans-{FORMAT}".encode())
    for path in files:
        digest.update(str(path).encode() + b"\0")
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"<unreadable>")
        digest.update(b"\0")
    return digest.hexdigest()[:32]


def cache_dir(specs: Path) -> Path:
    """``.journeys/cache`` beside the project's specs folder (or ``$JOURNEYS_CACHE_DIR``)."""
    explicit = os.environ.get(ENV_CACHE)
    if explicit:
        return Path(explicit)
    return _specs_dir([specs]).resolve().parent / ".journeys" / "cache"


def load_compiled_project(
    specs: Path, templates_dir: Path | str | None = None, plans: Path | None = None
) -> Project:
    """The project at ``specs``, from compiled plans when they are current (see module)."""
    plans = plans or (Path(os.environ[ENV_PLANS]) if os.environ.get(ENV_PLANS) else None)
    if plans is not None:
        return from_compiled(plans, specs, templates_dir)
    key = content_key(specs, templates_dir)
    path = cache_dir(specs) / f"project-{key}.json"
    if path.is_file():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            return _rebuild(saved, specs, templates_dir)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring the unreadable plan cache %s: %s", path, exc)
    project = load_project([specs], templates_dir=templates_dir)
    if project.ok:
        _save(project, path)
    return project


def _save(project: Project, path: Path) -> None:
    data = {
        "format": FORMAT,
        "plans": [p.to_dict() for p in project.plans.values()],
        "lifecycle": project.lifecycle.to_dict(),
        "files": project.files,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:  # a read-only checkout still runs, it just compiles every time
        log.info("cannot write the plan cache %s: %s", path, exc)


def _rebuild(saved: dict, specs: Path, templates_dir: Path | str | None) -> Project:
    if saved.get("format") != FORMAT:
        raise ValueError(f"cache format {saved.get('format')} is not {FORMAT}")
    settings, problems = _load_settings(_specs_dir([specs]))
    plans = {p["journey"]: Plan.from_dict(p) for p in saved["plans"]}
    return Project(
        plans=plans,
        lifecycle=Lifecycle.from_dict(saved["lifecycle"]),
        settings=settings,
        templates=TemplateStore(_templates_dir(specs, templates_dir)),
        diagnostics=problems,
        drafts=dict(plans),
        files=list(saved.get("files", [])),
    )


def from_compiled(plans: Path, specs: Path, templates_dir: Path | str | None = None) -> Project:
    """A project from ``journeys compile`` output (``*.plan.json`` and ``lifecycle.json``)."""
    found = {
        p.journey: p
        for p in (Plan.from_json(f.read_text("utf-8")) for f in sorted(plans.glob("*.plan.json")))
    }
    lifecycle_file = plans / "lifecycle.json"
    lifecycle = (
        Lifecycle.from_dict(json.loads(lifecycle_file.read_text("utf-8")))
        if lifecycle_file.is_file()
        else Lifecycle()
    )
    settings, problems = _load_settings(_specs_dir([specs]))
    return Project(
        plans=found,
        lifecycle=lifecycle,
        settings=settings,
        templates=TemplateStore(_templates_dir(specs, templates_dir)),
        diagnostics=problems,
        drafts=dict(found),
    )
