"""The fake providers in a child process (its own interpreter and GIL), for load and fault
tests: :class:`FakeProvidersProcess` runs ``python -m journeys.testing.fake_providers``."""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
from dataclasses import asdict
from typing import Any

from journeys.testing.fake_providers.plan import Credentials, FaultPlan
from journeys.testing.fake_providers.server import FakeProviders


class FakeProvidersProcess:
    """:class:`FakeProviders` in a child process (its own interpreter and GIL)."""

    def __init__(
        self,
        credentials: Credentials | None = None,
        plan: FaultPlan | None = None,
        *,
        clock_name: str | None = None,
    ) -> None:
        self.config = {
            "credentials": asdict(credentials or Credentials()),
            "plan": asdict(plan or FaultPlan()),
            "clock_name": clock_name,
        }
        self.credentials = credentials or Credentials()
        self._proc: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The child's process id (0 when not running)."""
        return self._proc.pid if self._proc is not None else 0

    def __enter__(self) -> FakeProvidersProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> int:
        """Start the child and wait for its port."""
        command = [sys.executable, "-m", "journeys.testing.fake_providers"]
        self._proc = subprocess.Popen(
            [*command, "--config", json.dumps(self.config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line.startswith("{"):
            self.stop()
            raise RuntimeError(f"the fake providers did not start: {line!r}")
        self.port = int(json.loads(line)["port"])
        return self.port

    def stats(self) -> dict[str, Any]:
        """``GET /_stats`` of the child."""
        import httpx

        return dict(httpx.get(f"{self.url}/_stats", timeout=30).json())

    def accepted_count(self) -> int:
        """``GET /_count``: requests accepted so far."""
        import httpx

        return int(httpx.get(f"{self.url}/_count", timeout=30).json()["accepted"])

    def stop(self) -> None:
        """Stop the child (closing its stdin ends it)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(Exception):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _serve(config: dict[str, Any]) -> None:
    plan = dict(config.get("plan") or {})
    if "reset" in plan:
        plan["reset"] = tuple(plan["reset"])
    server = FakeProviders(
        Credentials(**(config.get("credentials") or {})),
        FaultPlan(**plan),
        clock_name=config.get("clock_name"),
    )
    server.start()
    print(json.dumps({"port": server.port}), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        sys.stdin.read()  # until the parent closes our stdin (or dies)
    server.stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m journeys.testing.fake_providers --config JSON``."""
    from journeys.testing import fake_providers

    doc = fake_providers.__doc__
    parser = argparse.ArgumentParser(
        prog="python -m journeys.testing.fake_providers",
        description=doc.splitlines()[0] if doc else "",
    )
    parser.add_argument("--config", default="{}")
    args = parser.parse_args(argv)
    _serve(json.loads(args.config))
