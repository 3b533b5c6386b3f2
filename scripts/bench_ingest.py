#!/usr/bin/env python3
"""Benchmark ingest against its baselines on the real S3 server, in one run.

    eval "$(scripts/s3-server start)"
    .venv/bin/python scripts/bench_ingest.py --count 1000 --workers 2

Measures, on the same generated calls (a few minutes each, 8 kHz WAV):

1. ``store_format = "original"``: ``recarchive ingest --once`` from an
   Asterisk spool into the S3 server, against a plain boto3 upload of the same
   files at the same concurrency. Target: ingest at least 0.9 of the upload rate.
2. ``store_format = "opus"``: the same ingest, against ffmpeg alone
   transcoding the same files to Opus with the same parallelism. Target: 0.9.
3. Peak memory (largest process: recarchive or one of its ffmpeg children)
   while ingesting one 1-hour and one 3-hour recording. Target: under 150 MB,
   and about the same for both lengths.

Prints recordings per second for each side and the ratios; the machines are
noisy, so only ratios measured in the same run mean anything. The corpus is
split into ``--rounds`` parts; each part is measured on both sides back to
back, the side that goes first alternating from round to round, so that a
slow minute of the machine (or of the one-OSD Ceph server) hits both sides
alike. The ratio reported is the median of the rounds' ratios; the rates are
totals over all rounds.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from bench_s3 import CREATED, client, remove_buckets, require_environment

REPO = Path(__file__).resolve().parent.parent
GENERATOR = REPO / "scripts" / "gen_calls.py"


def s3_environment() -> dict[str, str]:
    return require_environment("bench_ingest.py")


def generate(corpus: Path, count: int, min_s: float, max_s: float) -> list[Path]:
    marker = corpus / "manifest.json"
    if not marker.exists():
        subprocess.run(
            [sys.executable, str(GENERATOR), "--out", str(corpus), "--layout", "spool",
             "--count", str(count), "--formats", "wav", "--min-seconds", str(min_s),
             "--max-seconds", str(max_s), "--seed", "7", "--engine", "tones"],
            check=True,
        )  # fmt: skip
    return sorted((corpus / "monitor").rglob("*.wav"))


def timed(function: object, *args: object) -> float:
    started = time.perf_counter()
    function(*args)  # type: ignore[operator]
    return time.perf_counter() - started


#: Processes of a Ceph server on this machine, whose CPU time the benchmark reports.
CEPH_DAEMONS = frozenset({"radosgw", "ceph-osd", "ceph-mon"})


def own_cpu_s() -> float:
    """CPU seconds of this script and of the children it has waited for."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def server_cpu_s() -> float | None:
    """CPU seconds of the Ceph daemons running here; None when the server is elsewhere."""
    ticks, found = 0, False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, _, rest = text.partition(" (")[2].rpartition(") ")
        if name in CEPH_DAEMONS:
            fields = rest.split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
            found = True
    return ticks / os.sysconf("SC_CLK_TCK") if found else None


class CpuMeter:
    """CPU milliseconds per recording, of one side and of the S3 server, summed over rounds."""

    def __init__(self) -> None:
        self.side_s = 0.0
        self.server_s: float | None = 0.0
        self.recordings = 0

    def measure(self, function: Callable[..., None], *args: object, count: int) -> float:
        side, server = own_cpu_s(), server_cpu_s()
        elapsed = timed(function, *args)
        self.side_s += own_cpu_s() - side
        after = server_cpu_s()
        if server is None or after is None or self.server_s is None:
            self.server_s = None
        else:
            self.server_s += after - server
        self.recordings += count
        return elapsed

    def describe(self) -> str:
        side = 1000 * self.side_s / max(1, self.recordings)
        if self.server_s is None:
            return f"{side:5.1f} ms CPU per recording (S3 server not on this machine)"
        server = 1000 * self.server_s / max(1, self.recordings)
        return f"{side:5.1f} ms CPU per recording, Ceph {server:5.1f} ms"


def plain_upload(files: list[Path], workers: int) -> None:
    s3 = client()
    bucket = f"bench-plain-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    CREATED.append(bucket)

    def upload(path: Path) -> None:
        with path.open("rb") as body:
            s3.put_object(Bucket=bucket, Key=f"plain/{path.name}", Body=body)

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(upload, files))


def plain_transcode(files: list[Path], workers: int, out: Path, bitrate: int) -> None:
    out.mkdir(parents=True, exist_ok=True)

    def transcode(path: Path) -> None:
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(path), "-c:a", "libopus",
             "-b:a", f"{bitrate}k", "-application", "voip", str(out / f"{path.stem}.ogg")],
            check=True,
        )  # fmt: skip

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(transcode, files))


def prepare_installation(base: Path, files: list[Path], store_format: str) -> Path:
    """A fresh catalogue, bucket and spool (hard links to ``files``) for one ingest run.

    The CDR is the corpus's whole Master.csv: rows of calls not in this
    spool are never waited for (``expect_recording_for_answered = false``).
    """
    if base.exists():
        shutil.rmtree(base)
    spool = base / "spool"
    corpus = _corpus_of(files[0])
    for source in files:
        target = spool / "monitor" / source.relative_to(corpus / "monitor")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(source, target)
    (spool / "cdr").mkdir(parents=True)
    shutil.copy(corpus / "cdr" / "Master.csv", spool / "cdr" / "Master.csv")
    config = base / "recarchive.toml"
    bucket = f"bench-{store_format}-{uuid.uuid4().hex[:8]}"
    CREATED.append(bucket)
    config.write_text(
        f'[general]\ndata_dir = "{base / "var"}"\nlog_format = "json"\nlog_level = "WARNING"\n'
        f'[storage]\nbackend = "s3"\n'
        f'[s3]\nendpoint_url = "{os.environ["RECARCHIVE_S3_ENDPOINT_URL"]}"\n'
        f'bucket = "{bucket}"\n'
        f'[audio]\nstore_format = "{store_format}"\n'
        "[ingest]\nsettle_s = 0\n"
        f'[[sources]]\nkind = "spool"\nname = "pbx"\npath = "{spool / "monitor"}"\n'
        f'cdr_path = "{spool / "cdr" / "Master.csv"}"\n'
        "expect_recording_for_answered = false\n",
        encoding="utf-8",
    )
    run_cli(config, "init")
    return config


def _corpus_of(path: Path) -> Path:
    """The corpus directory (the one holding ``monitor/``) a generated file lies in."""
    for parent in path.parents:
        if parent.name == "monitor":
            return parent.parent
    raise ValueError(f"{path} is not under a monitor/ directory")


def run_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RECARCHIVE_")}
    environment.update(s3_environment())
    return subprocess.run(
        [sys.executable, "-m", "recarchive", "--config", str(config), *args],
        env=environment, check=True, capture_output=True, text=True,
    )  # fmt: skip


def ingest(config: Path, workers: int, expected: int) -> None:
    done = run_cli(config, "ingest", "--once", "--json", "--workers", str(workers))
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    if summary["archived"] != expected:
        sys.exit(f"ingest archived {summary['archived']} of {expected}: {summary}")


def peak_memory_mib(config: Path) -> float:
    """Largest resident set of recarchive or any of its children during one ingest."""
    script = (
        "import resource, subprocess, sys\n"
        "subprocess.run(sys.argv[1:], check=True, capture_output=True)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RECARCHIVE_")}
    environment.update(s3_environment())
    done = subprocess.run(
        [sys.executable, "-c", script, sys.executable, "-m", "recarchive", "--config",
         str(config), "ingest", "--once", "--json"],
        env=environment, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return int(done.stdout.strip()) / 1024


def memory_case(work: Path, hours: float) -> float:
    corpus = work / f"long-{hours:g}h"
    if not (corpus / "manifest.json").exists():
        subprocess.run(
            [sys.executable, str(GENERATOR), "--out", str(corpus), "--layout", "spool",
             "--count", "0", "--hours", str(hours), "--formats", "wav", "--engine", "tones"],
            check=True,
        )  # fmt: skip
    long_files = sorted((corpus / "monitor").rglob("*.wav"))
    config = prepare_installation(work / f"mem-{hours:g}h", long_files, "original")
    return peak_memory_mib(config)


def main() -> None:
    options = parse_arguments()
    s3_environment()
    try:
        run(options)
    finally:
        remove_buckets()


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="calls to ingest")
    parser.add_argument("--workers", type=int, default=2, help="concurrency of both sides")
    parser.add_argument("--min-seconds", type=float, default=120, help="shortest call")
    parser.add_argument("--max-seconds", type=float, default=240, help="longest call")
    parser.add_argument("--bitrate", type=int, default=16, help="Opus bit rate, kb/s")
    parser.add_argument("--rounds", type=int, default=5, help="alternating measurement rounds")
    parser.add_argument("--work", type=Path, default=None, help="work directory (kept)")
    parser.add_argument("--skip-opus", action="store_true", help="skip the Opus comparison")
    parser.add_argument("--skip-memory", action="store_true", help="skip the memory cases")
    return parser.parse_args()


def run(options: argparse.Namespace) -> None:
    work = options.work or Path(tempfile.mkdtemp(prefix="recarchive-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    files = generate(work / "corpus", options.count, options.min_seconds, options.max_seconds)
    count = len(files)
    size = sum(path.stat().st_size for path in files)
    print(f"corpus: {count} recordings, {size / 2**20:.0f} MiB, workers {options.workers}")
    results: dict[str, float] = {}

    rounds = max(1, min(options.rounds, count))
    parts = [files[i::rounds] for i in range(rounds)]

    def compare(
        name: str, baseline: Callable[[list[Path], int], None], store_format: str
    ) -> tuple[float, float, float]:
        """(baseline rate, ingest rate, median ratio) over the rounds, ABBA order.

        Also prints the CPU time each side and the S3 server spent per recording:
        on a machine whose cores the server shares, that bounds the ratio.
        """
        base_total = ingest_total = 0.0
        ratios = []
        base_cpu, ingest_cpu = CpuMeter(), CpuMeter()
        for number, part in enumerate(parts):
            config = prepare_installation(work / f"{store_format}-{number}", part, store_format)
            n = len(part)
            if number % 2 == 0:
                base_s = base_cpu.measure(baseline, part, options.workers, count=n)
                ingest_s = ingest_cpu.measure(ingest, config, options.workers, n, count=n)
            else:
                ingest_s = ingest_cpu.measure(ingest, config, options.workers, n, count=n)
                base_s = base_cpu.measure(baseline, part, options.workers, count=n)
            base_total += base_s
            ingest_total += ingest_s
            ratios.append(base_s / ingest_s)
            print(
                f"  round {number + 1}/{rounds}: {name} {len(part) / base_s:7.2f}/s, "
                f"ingest ({store_format}) {len(part) / ingest_s:7.2f}/s, "
                f"ratio {base_s / ingest_s:5.2f}"
            )
        print(f"  CPU: {name}: {base_cpu.describe()}")
        print(f"  CPU: ingest ({store_format}): {ingest_cpu.describe()}")
        return count / base_total, count / ingest_total, statistics.median(ratios)

    upload, ingested, ratio = compare("plain upload", plain_upload, "original")
    results.update(upload_per_s=upload, ingest_original_per_s=ingested, ratio_original=ratio)
    print(f"plain boto3 upload       {upload:8.2f} recordings/s")
    print(f"ingest (original)        {ingested:8.2f} recordings/s")
    print(f"ratio (median of rounds) {ratio:8.2f}  (target >= 0.9)")

    if not options.skip_opus:
        plain_opus_dir = work / "plain-opus"

        def transcode(part: list[Path], workers: int) -> None:
            plain_transcode(part, workers, plain_opus_dir, options.bitrate)

        ffmpeg, ingested, ratio = compare("ffmpeg alone", transcode, "opus")
        results.update(ffmpeg_opus_per_s=ffmpeg, ingest_opus_per_s=ingested, ratio_opus=ratio)
        print(f"ffmpeg alone to Opus     {ffmpeg:8.2f} recordings/s")
        print(f"ingest (opus)            {ingested:8.2f} recordings/s")
        print(f"ratio (median of rounds) {ratio:8.2f}  (target >= 0.9)")

    if not options.skip_memory:
        for hours in (1.0, 3.0):
            peak = memory_case(work, hours)
            results[f"peak_mib_{hours:g}h"] = peak
            print(f"peak memory, {hours:g} h call   {peak:8.1f} MiB  (target < 150)")
    print(json.dumps({k: round(v, 3) for k, v in results.items()}))
    print(f"work directory: {work}  (peak RSS of this script: "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")  # fmt: skip


if __name__ == "__main__":
    main()
