"""``scripts/bench_lookup.py`` runs end to end on a tiny catalogue and prints its table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.functional.helpers import run_bench

QUERY_ROWS = ("by customer id", "by phone number", "by date range + reason", "audio, first byte")


@pytest.mark.slow
def test_quick_run_measures_every_query_type(tmp_path: Path) -> None:
    lines = run_bench(
        "bench_lookup.py",
        [
            "--quick",
            "--backend",
            "sqlite",
            "--no-bucket",
            "--recordings",
            "2000",
            "--requests",
            "50",
            "--warmup",
            "10",
            "--alone",
            "10",
            "--clients",
            "5",
            "--paced",
            "10",
            "--rate",
            "40",
            "--playable",
            "20",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--work",
            str(tmp_path / "work"),
        ],
        tmp_path,
        timeout=120,
    )
    header = next(i for i, line in enumerate(lines) if line.startswith("backend"))
    assert "p50 ms" in lines[header]
    assert "p99 ms" in lines[header]
    rows = [line.split() for line in lines[header + 1 :] if line.startswith("sqlite ")]
    for label in QUERY_ROWS:
        width = len(label.split())
        measured = [row[1 + width :] for row in rows if " ".join(row[1 : 1 + width]) == label]
        loads = [(" ".join(row[:2]), row[2]) for row in measured]
        assert loads == [("5 clients", "50"), ("1 client", "10"), ("40/s paced", "10")]
        for row in measured:
            p50, p99 = float(row[3]), float(row[4])
            assert 0 < p50 <= p99
    summary = json.loads(lines[-1])
    assert set(summary) >= {"sqlite_customer_c5", "sqlite_audio_ttfb_c1", "sqlite_number_40ps"}
