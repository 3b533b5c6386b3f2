#!/usr/bin/env python3
"""Benchmark ingest against its baselines on the real S3 server, in one run.

    eval "$(scripts/s3-server start)"
    .venv/bin/python scripts/bench_ingest.py --count 1000 --workers 2

Measures, on the same generated calls (a few minutes each, 8 kHz WAV):

1. ``store_format = "original"``: ``recarchive ingest --once`` from an
   Asterisk spool into the S3 server, against a plain boto3 upload of the same
   files at the same concurrency. Target: ingest's own CPU per recording
   (its processes and their children, the S3 server excluded) at most 1.5x
   the plain upload's; the rate ratio is reported beside it. The fixed cost
   of a run (an ``ingest --once`` that finds nothing to do) is measured too,
   and the CPU per recording is also given without it.
2. ``store_format = "opus"``: the same ingest, against ffmpeg alone
   transcoding the same files to Opus with the same parallelism. Target: 0.95.
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
import dataclasses
import functools
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

from bench_s3 import (
    CREATED,
    client,
    forwarded_environment,
    remove_buckets,
    require_environment,
)

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
             "--max-seconds", str(max_s), "--seed", "7", "--engine", "tones",
             "--cache", str(corpus.parent / ".gen_cache")],
            check=True,
        )  # fmt: skip
    return sorted((corpus / "monitor").rglob("*.wav"))


def timed(function: Callable[..., None], *args: object) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


#: Ingest's own CPU per recording (original format) against the plain upload's, at most.
CPU_TARGET = 1.5
#: Ingest to Opus against ffmpeg alone on the same files, at least (median of the rounds).
OPUS_TARGET = 0.95

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

    def __init__(self, *, server: bool = True) -> None:
        """``server``: whether the side uses the S3 server (else its CPU is not counted)."""
        self.side_s = 0.0
        self.server_s: float | None = 0.0 if server else None
        self.missing = "S3 server not on this machine" if server else "no S3 server used"
        self.recordings = 0

    def measure(self, function: Callable[..., None], *args: object, count: int) -> float:
        side, server = own_cpu_s(), server_cpu_s() if self.server_s is not None else None
        elapsed = timed(function, *args)
        self.side_s += own_cpu_s() - side
        after = server_cpu_s() if self.server_s is not None else None
        if server is None or after is None or self.server_s is None:
            self.server_s = None
        else:
            self.server_s += after - server
        self.recordings += count
        return elapsed

    def describe(self) -> str:
        side = 1000 * self.side_s / max(1, self.recordings)
        if self.server_s is None:
            return f"{side:5.1f} ms CPU per recording ({self.missing})"
        server = 1000 * self.server_s / max(1, self.recordings)
        return f"{side:5.1f} ms CPU per recording, Ceph {server:5.1f} ms"


#: One side of a comparison: called with a round's number and files, it prepares what
#: is not measured (a fresh installation) and returns what is.
Side = Callable[[int, list[Path]], Callable[[], None]]


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Two sides measured on the same files, round by round."""

    baseline_per_s: float
    candidate_per_s: float
    #: Per round: the candidate's rate over the baseline's.
    ratios: list[float]
    #: CPU seconds of each side's own processes over all rounds, and the recordings counted.
    baseline_cpu_s: float = 0.0
    candidate_cpu_s: float = 0.0
    count: int = 0

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)


def split(files: list[Path], rounds: int) -> list[list[Path]]:
    """``files`` dealt into ``rounds`` parts (fewer when there are fewer files)."""
    count = max(1, min(rounds, len(files)))
    return [files[i::count] for i in range(count)]


def alternate(
    parts: list[list[Path]],
    baseline: tuple[str, Side],
    candidate: tuple[str, Side],
    *,
    server: bool = True,
) -> Comparison:
    """Measure both sides on each part back to back, the side going first alternating (ABBA).

    Prints each round's rates and ratio, then the CPU time each side and (with
    ``server``) the S3 server spent per recording: on a machine whose cores
    the server shares, that bounds the ratio.
    """
    (base_name, base_side), (name, side) = baseline, candidate
    base_total = total = 0.0
    ratios = []
    base_cpu, cpu = CpuMeter(server=server), CpuMeter(server=server)
    for number, part in enumerate(parts):
        run_base, run = base_side(number, part), side(number, part)
        n = len(part)
        if number % 2 == 0:
            base_s = base_cpu.measure(run_base, count=n)
            candidate_s = cpu.measure(run, count=n)
        else:
            candidate_s = cpu.measure(run, count=n)
            base_s = base_cpu.measure(run_base, count=n)
        base_total += base_s
        total += candidate_s
        ratios.append(base_s / candidate_s)
        print(
            f"  round {number + 1}/{len(parts)}: {base_name} {n / base_s:7.2f}/s, "
            f"{name} {n / candidate_s:7.2f}/s, ratio {base_s / candidate_s:5.2f}"
        )
    print(f"  CPU: {base_name}: {base_cpu.describe()}")
    print(f"  CPU: {name}: {cpu.describe()}")
    count = sum(len(part) for part in parts)
    return Comparison(count / base_total, count / total, ratios, base_cpu.side_s, cpu.side_s, count)


def ingest_side(
    work: Path,
    workers: int,
    store_format: str,
    *,
    store: str = "s3",
    encrypted: bool = False,
    group_commit: int | None = None,
) -> Side:
    """``recarchive ingest --once`` of a round's files into a fresh installation."""
    label = f"{store_format}-encrypted" if encrypted else store_format

    def prepare(number: int, part: list[Path]) -> Callable[[], None]:
        base = work / f"{label}-{number}"
        config = prepare_installation(
            base, part, store_format, store=store, encrypted=encrypted, group_commit=group_commit
        )
        return functools.partial(ingest, config, workers, len(part))

    return prepare


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


def prepare_installation(
    base: Path,
    files: list[Path],
    store_format: str,
    *,
    store: str = "s3",
    encrypted: bool = False,
    group_commit: int | None = None,
) -> Path:
    """A fresh catalogue, store and spool (hard links to ``files``) for one ingest run.

    ``store`` is ``"s3"`` (a new bucket on the S3 server) or ``"filesystem"``
    (``<base>/var/objects``); ``encrypted`` turns encryption at rest on (the
    key file is made by ``recarchive init``). The CDR is the corpus's whole
    Master.csv: rows of calls not in this spool are never waited for
    (``expect_recording_for_answered = false``).
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
    grouping = "" if group_commit is None else f"group_commit = {group_commit}\n"
    storage = f'[storage]\nbackend = "{store}"\n'
    if store == "s3":
        bucket = f"bench-{store_format}-{uuid.uuid4().hex[:8]}"
        # `recarchive init` also makes the audit anchors' Object Lock bucket (empty: ingest
        # publishes no anchor).
        CREATED.extend((bucket, f"{bucket}-audit"))
        storage += (
            f'[s3]\nendpoint_url = "{os.environ["RECARCHIVE_S3_ENDPOINT_URL"]}"\n'
            f'bucket = "{bucket}"\n'
        )
    config.write_text(
        f'[general]\ndata_dir = "{base / "var"}"\nlog_format = "json"\nlog_level = "WARNING"\n'
        f"{storage}"
        f"[encryption]\nenabled = {'true' if encrypted else 'false'}\n"
        f'[audio]\nstore_format = "{store_format}"\n'
        "[ingest]\nsettle_s = 0\n"
        f"{grouping}"
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
    return subprocess.run(
        [sys.executable, "-m", "recarchive", "--config", str(config), *args],
        env=forwarded_environment(), check=True, capture_output=True, text=True,
    )  # fmt: skip


def ingest(config: Path, workers: int, expected: int) -> None:
    done = run_cli(config, "ingest", "--once", "--json", "--workers", str(workers))
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    if summary["archived"] != expected:
        sys.exit(f"ingest archived {summary['archived']} of {expected}: {summary}")


def start_up_cpu_s(work: Path, files: list[Path], workers: int, store_format: str) -> float:
    """CPU seconds of an ``ingest --once`` that finds nothing to do: a run's fixed cost.

    The same installation's shape and worker count as the measured runs (the
    processes start, import, open the catalogue and the store, discover, fork
    their workers and find the queue empty); the median of three runs.
    """
    config = prepare_installation(work / f"start-up-{store_format}", files[:1], store_format)
    for path in (config.parent / "spool" / "monitor").rglob("*"):
        if path.is_file():
            path.unlink()
    samples = []
    for _ in range(3):
        before = own_cpu_s()
        done = run_cli(config, "ingest", "--once", "--json", "--workers", str(workers))
        samples.append(own_cpu_s() - before)
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        if summary["archived"]:
            sys.exit(f"the start-up run archived something: {summary}")
    return statistics.median(samples)


def cpu_figures(
    name: str, comparison: Comparison, start_up_s: float, rounds: int, target: float
) -> dict[str, float]:
    """CPU per recording of both sides, with and without the runs' fixed start-up, judged."""
    count = max(1, comparison.count)
    base_ms = 1000 * comparison.baseline_cpu_s / count
    own_ms = 1000 * comparison.candidate_cpu_s / count
    steady_ms = 1000 * max(0.0, comparison.candidate_cpu_s - start_up_s * rounds) / count
    print(f"CPU per recording: baseline {base_ms:.1f} ms, {name} {own_ms:.1f} ms "
          f"({own_ms / base_ms:.2f}x; target <= {target}x: "
          f"{'met' if own_ms <= target * base_ms else 'not met'})")  # fmt: skip
    print(f"  {name} without its runs' start-up ({1000 * start_up_s:.0f} ms CPU each, "
          f"{rounds} run(s)): {steady_ms:.1f} ms ({steady_ms / base_ms:.2f}x)")  # fmt: skip
    return {
        f"{name}_baseline_cpu_ms": base_ms,
        f"{name}_cpu_ms": own_ms,
        f"{name}_cpu_ratio": own_ms / base_ms,
        f"{name}_start_up_cpu_ms": 1000 * start_up_s,
        f"{name}_cpu_ms_without_start_up": steady_ms,
        f"{name}_cpu_ratio_without_start_up": steady_ms / base_ms,
        f"{name}_cpu_target_met": float(own_ms <= target * base_ms),
    }


def peak_memory_mib(config: Path) -> float:
    """Largest resident set of recarchive or any of its children during one ingest."""
    script = (
        "import resource, subprocess, sys\n"
        "subprocess.run(sys.argv[1:], check=True, capture_output=True)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, sys.executable, "-m", "recarchive", "--config",
         str(config), "ingest", "--once", "--json"],
        env=forwarded_environment(), check=True, capture_output=True, text=True,
    )  # fmt: skip
    return int(done.stdout.strip()) / 1024


def generate_long(work: Path, hours: float) -> list[Path]:
    """One generated call of ``hours`` (8 kHz mono WAV) in a spool of its own under ``work``.

    The generator's pool of utterances is made once per ``work`` (``work/.gen_cache``).
    """
    corpus = work / f"long-{hours:g}h"
    if not (corpus / "manifest.json").exists():
        subprocess.run(
            [sys.executable, str(GENERATOR), "--out", str(corpus), "--layout", "spool",
             "--count", "0", "--hours", str(hours), "--formats", "wav", "--engine", "tones",
             "--cache", str(work / ".gen_cache")],
            check=True,
        )  # fmt: skip
    return sorted((corpus / "monitor").rglob("*.wav"))


def memory_case(work: Path, hours: float) -> float:
    long_files = generate_long(work, hours)
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
    parser.add_argument(
        "--group-commit", type=int, default=None, help="ingest.group_commit (default: its own)"
    )
    return parser.parse_args()


def run(options: argparse.Namespace) -> None:
    work = options.work or Path(tempfile.mkdtemp(prefix="recarchive-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    files = generate(work / "corpus", options.count, options.min_seconds, options.max_seconds)
    count = len(files)
    size = sum(path.stat().st_size for path in files)
    print(f"corpus: {count} recordings, {size / 2**20:.0f} MiB, workers {options.workers}")
    results: dict[str, float] = {}

    parts = split(files, options.rounds)

    def baseline(function: Callable[[list[Path], int], None]) -> Side:
        return lambda _number, part: functools.partial(function, part, options.workers)

    def ingesting(store_format: str) -> tuple[str, Side]:
        side = ingest_side(work, options.workers, store_format, group_commit=options.group_commit)
        return f"ingest ({store_format})", side

    original = alternate(parts, ("plain upload", baseline(plain_upload)), ingesting("original"))
    results.update(
        upload_per_s=original.baseline_per_s,
        ingest_original_per_s=original.candidate_per_s,
        ratio_original=original.ratio,
    )
    print(f"plain boto3 upload       {original.baseline_per_s:8.2f} recordings/s")
    print(f"ingest (original)        {original.candidate_per_s:8.2f} recordings/s")
    print(f"ratio (median of rounds) {original.ratio:8.2f}  (reported beside the CPU target)")
    start_up = start_up_cpu_s(work, files, options.workers, "original")
    results.update(cpu_figures("original", original, start_up, len(parts), CPU_TARGET))

    if not options.skip_opus:
        plain_opus_dir = work / "plain-opus"

        def transcode(part: list[Path], workers: int) -> None:
            plain_transcode(part, workers, plain_opus_dir, options.bitrate)

        opus = alternate(parts, ("ffmpeg alone", baseline(transcode)), ingesting("opus"))
        results.update(
            ffmpeg_opus_per_s=opus.baseline_per_s,
            ingest_opus_per_s=opus.candidate_per_s,
            ratio_opus=opus.ratio,
        )
        print(f"ffmpeg alone to Opus     {opus.baseline_per_s:8.2f} recordings/s")
        print(f"ingest (opus)            {opus.candidate_per_s:8.2f} recordings/s")
        print(f"ratio (median of rounds) {opus.ratio:8.2f}  (target >= {OPUS_TARGET})")
        results["opus_target_met"] = float(opus.ratio >= OPUS_TARGET)

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
