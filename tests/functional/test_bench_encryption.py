"""``scripts/bench_encryption.py`` runs end to end on tiny recordings and prints every figure.

The figures' values are never asserted: timing targets belong to the benchmark's
runs (docs/performance.md), not to tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.functional.helpers import run_bench
from tests.s3env import s3_environment

POSITIONS = ("start", "25 %", "50 %", "75 %", "end")


@pytest.mark.slow
@pytest.mark.parametrize("store", ["filesystem", pytest.param("s3", marks=pytest.mark.s3)])
def test_quick_run_prints_ingest_first_byte_and_memory_figures(store: str, tmp_path: Path) -> None:
    extra = {}
    if store == "s3":
        extra = {k: v for k, v in s3_environment().items() if k != "RECARCHIVE_STORAGE_BACKEND"}
    lines = run_bench(
        "bench_encryption.py",
        ["--store", store, "--count", "4", "--rounds", "1", "--min-seconds", "2",
         "--max-seconds", "3", "--minutes", "0.05,0.1", "--repeats", "3",
         "--work", str(tmp_path / "work")],
        tmp_path,
        extra_env=extra,
        timeout=300,
    )  # fmt: skip
    text = "\n".join(lines)
    assert f"{store} store" in lines[0]
    assert sum(line.strip().startswith("round ") for line in lines) == 1
    assert sum("ms CPU per recording" in line for line in lines) == 2
    assert "ratio (median of rounds)" in text
    assert "(target >= 0.95: " in text

    header = next(i for i, line in enumerate(lines) if "encrypted ms" in line)
    rows = [line.split() for line in lines[header + 1 : header + 1 + len(POSITIONS)]]
    assert [" ".join(row[:-5]) for row in rows] == list(POSITIONS)
    for row in rows:  # offset, plain ms, encrypted ms, delta ms, delta IQR ms
        plain, encrypted, _delta, _iqr = (float(value) for value in row[-4:])
        assert plain > 0
        assert encrypted > 0
    assert "delta at most" in text
    assert "over the positions" in text

    memory = next(i for i, line in enumerate(lines) if "encrypted KiB" in line)
    assert [line.split()[:2] for line in lines[memory + 1 : memory + 3]] == [
        ["0.05", "min"],
        ["0.1", "min"],
    ]
    assert sum("peaks spread" in line for line in lines) == 2

    results = json.loads(lines[-1])
    assert results["store"] == store
    ingest = results["ingest"]
    assert ingest["plain_per_s"] > 0
    assert ingest["encrypted_per_s"] > 0
    assert len(ingest["round_ratios"]) == 1
    assert isinstance(ingest["met"], bool)
    positions = results["first_byte"]["positions"]
    assert list(positions) == list(POSITIONS)
    for figures in positions.values():
        assert figures["plain_ms"] > 0
        assert figures["encrypted_ms"] > 0
    assert isinstance(results["first_byte"]["within_2ms"], bool)
    assert isinstance(results["first_byte"]["flat"], bool)
    lengths = results["memory"]["lengths"]
    assert list(lengths) == ["0.05min", "0.1min"]
    for peaks in lengths.values():
        assert peaks["plain"] > 0
        assert peaks["encrypted"] > 0
    assert not (tmp_path / "work" / "ingest").exists()  # installations removed, calls kept
    assert not (tmp_path / "work" / "reads").exists()
