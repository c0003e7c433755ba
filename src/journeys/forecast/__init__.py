"""``journeys forecast``: a new or changed journey replayed on the stored history of the last
days, in virtual time and in memory, before it goes live.

:func:`run_forecast` replays the history (:mod:`.replay`) against the SPEC's version of the
journey and, when a different live version exists, against that one too, with the journeys
that can change what it does (:mod:`.project`); :mod:`.tally` counts what each did and
:mod:`.text` prints it. Nothing is sent and nothing is written to the database read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from journeys.clock import iso
from journeys.forecast.project import Subject, alongside, run_project
from journeys.forecast.replay import ForecastRun, History, Replayed, replay
from journeys.forecast.tally import RunTally, difference
from journeys.spec import Project

__all__ = ["Forecast", "History", "Subject", "run_forecast"]


@dataclass
class Forecast:
    """What a forecast found (the JSON report of docs/cli.md)."""

    subject: Subject
    spec_file: str
    start: datetime
    until: datetime
    days: int
    replayed: Replayed
    alongside: list[str]
    spec: RunTally
    live: RunTally | None = None

    @property
    def unchanged(self) -> bool:
        """Whether the live version is the SPEC itself (nothing to compare)."""
        return self.subject.live is not None and not self.subject.changed

    def to_dict(self, with_messages: bool = False) -> dict[str, Any]:
        """The report as JSON-ready data; ``with_messages`` adds every message (``list``)."""
        live = self.subject.live
        return {
            "journey": self.subject.journey,
            "spec": self.spec_file,
            "period": {"start": iso(self.start), "until": iso(self.until), "days": self.days},
            "replayed": {"events": self.replayed.events, "customers": self.replayed.customers},
            "alongside": self.alongside,
            "forecast": self.spec.to_dict(with_messages),
            "live": {
                "version": live.version if live else None,
                "from": self.subject.live_from,
                "unchanged": self.unchanged,
                **(self.live.to_dict(with_messages) if self.live else {}),
            },
            "difference": difference(self.spec, self.live) if self.live else None,
        }


def run_forecast(
    project: Project,
    subject: Subject,
    history: History,
    *,
    start: datetime,
    until: datetime,
    days: int,
    spec_file: str,
) -> Forecast:
    """Replay ``[start, until)`` of ``history`` against the SPEC's version of the journey
    (and the live one, when it differs) in the forecast ``project``."""
    others = alongside(project, subject)
    runs = [ForecastRun(run_project(project, others, subject.spec), subject.journey, start)]
    if subject.changed:
        assert subject.live is not None
        runs.append(ForecastRun(run_project(project, others, subject.live), subject.journey, start))
    replayed = replay(runs, history, start, until)
    return Forecast(
        subject=subject,
        spec_file=spec_file,
        start=start,
        until=until,
        days=days,
        replayed=replayed,
        alongside=others,
        spec=runs[0].tally(),
        live=runs[1].tally() if len(runs) > 1 else None,
    )
