"""``scripts/bench_ingest.py`` runs end to end on a tiny corpus against the real S3 server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.functional.helpers import run_bench
from tests.s3env import s3_environment


@pytest.mark.slow
@pytest.mark.s3
def test_quick_run_compares_both_formats_and_reports_cpu(tmp_path: Path) -> None:
    s3 = {k: v for k, v in s3_environment().items() if k != "RECARCHIVE_STORAGE_BACKEND"}
    lines = run_bench(
        "bench_ingest.py",
        [
            "--count",
            "8",
            "--rounds",
            "2",
            "--min-seconds",
            "4",
            "--max-seconds",
            "6",
            "--skip-memory",
            "--work",
            str(tmp_path / "work"),
        ],
        tmp_path,
        extra_env=s3,
        timeout=300,
    )
    assert sum(line.strip().startswith("round ") for line in lines) == 4  # 2 rounds x 2 formats
    cpu = [line for line in lines if line.strip().startswith("CPU:")]
    assert len(cpu) == 4
    assert all("ms CPU per recording" in line for line in cpu)
    results = json.loads(next(line for line in reversed(lines) if line.startswith("{")))
    for key in ("upload_per_s", "ingest_original_per_s", "ffmpeg_opus_per_s", "ingest_opus_per_s"):
        assert results[key] > 0
    assert 0 < results["ratio_original"] < 10
    assert 0 < results["ratio_opus"] < 10
    # Target 2 is judged on CPU: both sides per recording, the runs' fixed start-up apart.
    for key in ("original_baseline_cpu_ms", "original_cpu_ms", "original_start_up_cpu_ms"):
        assert results[key] > 0
    assert results["original_cpu_ms_without_start_up"] < results["original_cpu_ms"]
    assert results["original_cpu_ratio"] == pytest.approx(
        results["original_cpu_ms"] / results["original_baseline_cpu_ms"], rel=1e-3
    )  # the JSON line rounds to three decimals
    assert results["original_cpu_target_met"] in (0, 1)
    assert results["opus_target_met"] == float(results["ratio_opus"] >= 0.95)
    assert any(line.startswith("CPU per recording: baseline") for line in lines)
