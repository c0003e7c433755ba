"""`journeys demo` (what `make demo` runs), on a small sample so the test stays quick."""

from __future__ import annotations

import json
from pathlib import Path

from journeys.demo import run_demo

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_every_example_and_leaves_other_files_alone(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")  # `--out .` in a project must not wipe it
    (out / "messages.jsonl").write_text("stale\n")  # an earlier demo's output is replaced
    lines: list[str] = []
    result = run_demo(
        ROOT / "journey_specs", ROOT / "templates", out, customers=60, days=10, say=lines.append
    )
    assert (out / "keep.txt").read_text() == "mine"
    assert result.database.exists() and result.database.stat().st_size > 0
    sent = [json.loads(line) for line in result.messages_file.read_text().splitlines()]
    assert sent and all(m["journey"] and m["customer_id"] for m in sent)
    assert any(m["subject"] and m["html"] for m in sent)
    assert any(result.samples_dir.glob("*.html"))
    journeys = result.report["journeys"]
    assert {"welcome", "abandoned-cart", "post-purchase"} <= set(journeys)
    assert sum(j["entered"] for j in journeys.values()) > 20
    assert any("imported 60 customers" in line for line in lines)
