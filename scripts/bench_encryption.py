#!/usr/bin/env python3
"""Benchmark encryption at rest against the same archive without it, in one run.

    .venv/bin/python scripts/bench_encryption.py                  # the filesystem store
    eval "$(scripts/s3-server start)"
    .venv/bin/python scripts/bench_encryption.py --store s3       # the S3 server

Issue 14's performance targets (item 7), each measured with encryption on
and off in the same invocation, on the same audio:

1. Ingest: ``recarchive ingest --once`` of the same generated calls (2-4
   minutes, 8 kHz WAV) into an installation with ``encryption.enabled`` and
   into one without, in ``--rounds`` alternating rounds
   (``scripts/bench_ingest.py``'s machinery: each part of the corpus on both
   sides back to back, the side going first alternating). Target: the
   encrypted rate at least 0.95 of the plain one (median of the rounds' ratios).
2. Time to first audio byte of a Range read at the start, 25 %, 50 %, 75 %
   and the last 64 KiB of the longest ``--minutes`` recording, through the
   store a running recarchive reads with, as playback opens it
   (``runtime.store.get(key, byte_range=ByteRange(start, end))``, then the
   first piece of ``iter_chunks(64 KiB)``): the catalogue lookup, the data
   key's unwrap, the fetch and the decryption of the first chunk included.
   The range is 64 KiB long (``bytes=N-N+65535``); with ``--open-ended`` it
   runs to the recording's end (``bytes=N-``, what Chrome's player sends),
   and each read is abandoned after its first piece. Each repeat reads every
   position once per side, the two sides back to back, ``--repeats`` times.
   Target: the encrypted time at most 2 ms above the plain one (median of
   the paired differences) at every position, flat with the position.
3. Memory per stream: tracemalloc's peak while a recording of each
   ``--minutes`` length is streamed whole through the same path (64 KiB
   pieces). Target: no growth with the recording's length.

The calls of 1 are ingested by child processes; 2 and 3 read in this
process, from installations that ``recarchive ingest`` filled (the time each
of those single ingests took is printed too: one run each, process start
included, indicative only). Prints a summary, then one line of JSON with the
figures. The generated calls stay in ``--work`` for the next run; the
installations (and on S3 their buckets) are removed.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench_ingest import (
    Side,
    alternate,
    generate,
    generate_long,
    ingest,
    ingest_side,
    prepare_installation,
    split,
    timed,
)
from bench_s3 import (
    CREATED,
    describe_checkout,
    forwarded_environment,
    remove_buckets,
    require_environment,
)
from sqlalchemy import select

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from recarchive.catalogue.models import Recording  # noqa: E402
from recarchive.config import load_settings  # noqa: E402
from recarchive.runtime import Runtime  # noqa: E402
from recarchive.storage.interfaces import ByteRange  # noqa: E402

#: Issue 14, item 7.
TARGET_INGEST_RATIO = 0.95
TARGET_FIRST_BYTE_MS = 2.0
#: How far the encrypted-minus-plain differences may spread over the positions and still
#: count as flat (half the 2 ms budget).
FLAT_MS = 1.0
#: How far the peaks may spread over the lengths and still count as not growing.
FLAT_KIB = 1024.0
#: The pieces playback streams (``lookup.services.AudioAccess.chunks``).
PLAYBACK_CHUNK = 64 * 1024
#: Where the first-byte reads start, as fractions of the recording; None: its end (:func:`offsets`).
POSITIONS: tuple[tuple[str, float | None], ...] = (
    ("start", 0.0),
    ("25 %", 0.25),
    ("50 %", 0.5),
    ("75 %", 0.75),
    ("end", None),
)
SIDES = ("plain", "encrypted")


@dataclasses.dataclass(frozen=True)
class Stored:
    """One recording as an installation stored it, and the runtime that reads it back."""

    runtime: Runtime
    key: str
    size: int
    #: Seconds ``recarchive ingest --once`` took to archive it, process start included.
    ingest_s: float


def stored_copy(base: Path, files: list[Path], store: str, *, encrypted: bool) -> Stored:
    """Ingest ``files`` (one recording) into a fresh installation; open it for reading."""
    config = prepare_installation(base, files, "original", store=store, encrypted=encrypted)
    ingest_s = timed(ingest, config, 1, len(files))
    runtime = Runtime(load_settings(config, env=forwarded_environment()))
    with runtime.sessions() as session:
        recording = session.scalars(select(Recording)).one()
    if recording.encrypted != encrypted:
        sys.exit(f"{base}: the recording is {'' if recording.encrypted else 'not '}encrypted")
    return Stored(runtime, recording.object_key, recording.size_bytes, ingest_s)


@dataclasses.dataclass(frozen=True)
class FirstByte:
    """How the first-byte reads are made."""

    repeats: int
    #: Ranges to the recording's end (``bytes=N-``) instead of 64 KiB long.
    open_ended: bool = False
    #: Pause after each read, for the server to finish with an abandoned one.
    pause_s: float = 0.0


def first_byte_ms(stored: Stored, start: int, *, open_ended: bool = False) -> float:
    """Milliseconds from opening a Range read at ``start`` to its first piece of audio."""
    end = stored.size - 1 if open_ended else min(stored.size - 1, start + PLAYBACK_CHUNK - 1)
    began = time.perf_counter()
    reader = stored.runtime.store.get(stored.key, byte_range=ByteRange(start, end))
    try:
        first = next(reader.iter_chunks(PLAYBACK_CHUNK), b"")
        elapsed = time.perf_counter() - began
    finally:
        reader.close()
    if not first:
        sys.exit(f"a read of {stored.key} at {start} returned nothing")
    return 1000 * elapsed


def stream_peak_kib(stored: Stored) -> float:
    """tracemalloc's peak (KiB above what was traced before) while streaming all the audio."""
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    read = 0
    reader = stored.runtime.store.get(stored.key, byte_range=ByteRange(0, stored.size - 1))
    with reader:
        for piece in reader.iter_chunks(PLAYBACK_CHUNK):
            read += len(piece)
    peak = tracemalloc.get_traced_memory()[1]
    if read != stored.size:
        sys.exit(f"streamed {read} bytes of {stored.key}, expected {stored.size}")
    return (peak - before) / 1024


def offsets(size: int) -> list[tuple[str, int]]:
    """Where each position's reads start in ``size`` bytes (the end: the last 64 KiB, or the
    last tenth of a recording shorter than 640 KiB)."""
    end = size - min(PLAYBACK_CHUNK, size // 10)
    return [
        (name, end if fraction is None else int(size * fraction)) for name, fraction in POSITIONS
    ]


def measure_first_byte(copies: dict[str, Stored], how: FirstByte) -> dict[str, dict[str, Any]]:
    """First-byte times per position: each side's median and the median of paired deltas.

    Each repeat reads every position once per side, the two sides back to back
    (the side going first alternating), so that a slow moment of the machine
    or the server hits both reads of a pair.
    """
    places = offsets(copies["plain"].size)
    times: dict[tuple[str, str], list[float]] = {(p, s): [] for p, _ in places for s in SIDES}
    for side in SIDES:  # warm-up: connections, the key provider, the page cache
        for _name, start in places:
            first_byte_ms(copies[side], start, open_ended=how.open_ended)
    for repeat in range(how.repeats):
        order = SIDES if repeat % 2 == 0 else SIDES[::-1]
        for name, start in places:
            for side in order:
                elapsed = first_byte_ms(copies[side], start, open_ended=how.open_ended)
                times[(name, side)].append(elapsed)
                time.sleep(how.pause_s)
    figures: dict[str, dict[str, Any]] = {}
    for name, start in places:
        plain, encrypted = times[(name, "plain")], times[(name, "encrypted")]
        deltas = [e - p for p, e in zip(plain, encrypted, strict=True)]
        quartiles = statistics.quantiles(deltas, n=4) if len(deltas) > 1 else [deltas[0]] * 3
        figures[name] = {
            "offset": start,
            "plain_ms": statistics.median(plain),
            "encrypted_ms": statistics.median(encrypted),
            "delta_ms": statistics.median(deltas),
            "delta_iqr_ms": quartiles[2] - quartiles[0],
        }
    return figures


def report_first_byte(
    figures: dict[str, dict[str, Any]], how: FirstByte, size: int
) -> dict[str, Any]:
    kind = "to the end (bytes=N-)" if how.open_ended else "of 64 KiB"
    pause = f", {1000 * how.pause_s:g} ms apart" if how.pause_s else ""
    print(
        f"time to first audio byte: Range reads {kind} of a {size / 1e6:.1f} MB recording, "
        f"{how.repeats} per position and side{pause}; delta: median of the paired differences"
    )
    print(
        f"  {'position':<8} {'offset':>10} {'plain ms':>9} {'encrypted ms':>13} {'delta ms':>9} "
        f"{'delta IQR ms':>13}"
    )
    for name, row in figures.items():
        print(
            f"  {name:<8} {row['offset']:>10} {row['plain_ms']:9.2f} "
            f"{row['encrypted_ms']:13.2f} {row['delta_ms']:+9.2f} {row['delta_iqr_ms']:13.2f}"
        )
    deltas = [row["delta_ms"] for row in figures.values()]
    encrypted = [row["encrypted_ms"] for row in figures.values()]
    plain = [row["plain_ms"] for row in figures.values()]
    within = max(deltas) <= TARGET_FIRST_BYTE_MS
    flat = max(deltas) - min(deltas) <= FLAT_MS
    print(
        f"  delta at most {max(deltas):+.2f} ms: "
        f"{'within' if within else 'NOT within'} {TARGET_FIRST_BYTE_MS:g} ms"
    )
    print(
        f"  deltas spread {max(deltas) - min(deltas):.2f} ms over the positions "
        f"(encrypted medians {max(encrypted) - min(encrypted):.2f} ms, plain "
        f"{max(plain) - min(plain):.2f} ms): {'flat' if flat else 'NOT flat'} "
        f"(within {FLAT_MS:g} ms)"
    )
    return {
        "open_ended": how.open_ended,
        "positions": figures,
        "within_2ms": within,
        "flat": flat,
    }


def report_memory(peaks: dict[float, dict[str, float]], sizes: dict[float, int]) -> dict[str, Any]:
    print("memory per stream: tracemalloc peak while streaming a whole recording (64 KiB pieces)")
    print(f"  {'length':>10} {'size MB':>9} {'plain KiB':>10} {'encrypted KiB':>14}")
    for minutes, row in peaks.items():
        print(
            f"  {minutes:>6g} min {sizes[minutes] / 1e6:9.1f} {row['plain']:10.1f} "
            f"{row['encrypted']:14.1f}"
        )
    verdict: dict[str, Any] = {"lengths": {f"{m:g}min": row for m, row in peaks.items()}}
    for side in SIDES:
        values = [row[side] for row in peaks.values()]
        spread = max(values) - min(values)
        verdict[f"{side}_flat"] = flat = spread <= FLAT_KIB
        print(
            f"  {side}: peaks spread {spread:.1f} KiB over the lengths: "
            f"{'flat' if flat else 'GROWS'} (within {FLAT_KIB:g} KiB)"
        )
    return verdict


def run_ingest(options: argparse.Namespace, work: Path) -> dict[str, Any]:
    files = generate(work / "corpus", options.count, options.min_seconds, options.max_seconds)
    size = sum(path.stat().st_size for path in files)
    print(
        f"ingest: {len(files)} recordings, {size / 2**20:.0f} MiB, workers {options.workers}, "
        f"store_format original, {options.store} store"
    )
    installations = work / "ingest"

    def side(encrypted: bool) -> tuple[str, Side]:
        name = "encrypted" if encrypted else "plain"
        return f"ingest, {name}", ingest_side(
            installations, options.workers, "original", store=options.store, encrypted=encrypted
        )

    parts = split(files, options.rounds)
    comparison = alternate(parts, side(False), side(True), server=options.store == "s3")
    met = comparison.ratio >= TARGET_INGEST_RATIO
    print(f"ingest, plain              {comparison.baseline_per_s:8.2f} recordings/s")
    print(f"ingest, encrypted          {comparison.candidate_per_s:8.2f} recordings/s")
    print(
        f"ratio (median of rounds)   {comparison.ratio:8.2f}  "
        f"(target >= {TARGET_INGEST_RATIO}: {'met' if met else 'MISSED'})"
    )
    shutil.rmtree(installations, ignore_errors=True)
    if CREATED:  # the test server's disk is small: the rounds' buckets go now
        remove_buckets()
        CREATED.clear()
    return {
        "plain_per_s": comparison.baseline_per_s,
        "encrypted_per_s": comparison.candidate_per_s,
        "round_ratios": comparison.ratios,
        "ratio": comparison.ratio,
        "met": met,
    }


def run_reads(options: argparse.Namespace, work: Path) -> dict[str, Any]:
    lengths = sorted(set(options.minutes))
    copies: dict[float, dict[str, Stored]] = {}
    installations = work / "reads"
    try:
        for minutes in lengths:
            files = generate_long(work, minutes / 60)
            copies[minutes] = {
                side: stored_copy(
                    installations / f"{minutes:g}min-{side}",
                    files,
                    options.store,
                    encrypted=side == "encrypted",
                )
                for side in SIDES
            }
        longest = copies[lengths[-1]]
        how = FirstByte(options.repeats, options.open_ended, options.pause_ms / 1000)
        figures = measure_first_byte(longest, how)
        first_byte = report_first_byte(figures, how, longest["plain"].size)
        tracemalloc.start()
        try:
            peaks: dict[float, dict[str, float]] = {}
            for minutes in lengths:
                for stored in copies[minutes].values():  # warm: imports, connections, keys
                    first_byte_ms(stored, 0)
                peaks[minutes] = {side: stream_peak_kib(copies[minutes][side]) for side in SIDES}
        finally:
            tracemalloc.stop()
        sizes = {minutes: copies[minutes]["plain"].size for minutes in lengths}
        memory = report_memory(peaks, sizes)
        print("ingest of each recording above, alone (one run each, process start included)")
        ingest_s: dict[str, dict[str, float]] = {}
        for minutes in lengths:
            ingest_s[f"{minutes:g}min"] = row = {s: copies[minutes][s].ingest_s for s in SIDES}
            print(
                f"  {minutes:>6g} min: plain {row['plain']:6.2f} s, "
                f"encrypted {row['encrypted']:6.2f} s"
            )
    finally:
        for pair in copies.values():
            for stored in pair.values():
                stored.runtime.close()
        shutil.rmtree(installations, ignore_errors=True)
    return {"first_byte": first_byte, "memory": memory, "long_ingest_s": ingest_s}


def minutes_list(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of minutes: {text!r}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"not a list of positive minutes: {text!r}")
    return values


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--store",
        choices=("filesystem", "s3"),
        default="filesystem",
        help="the object store (s3: the server of scripts/s3-server)",
    )
    parser.add_argument("--count", type=int, default=600, help="calls to ingest")
    parser.add_argument("--workers", type=int, default=2, help="ingest workers, both sides")
    parser.add_argument("--min-seconds", type=float, default=120, help="shortest call")
    parser.add_argument("--max-seconds", type=float, default=240, help="longest call")
    parser.add_argument("--rounds", type=int, default=4, help="alternating ingest rounds")
    parser.add_argument(
        "--minutes",
        type=minutes_list,
        default=[1.0, 10.0, 60.0],
        help="recording lengths for the memory figures, comma-separated; "
        "the longest is also read for the first-byte figures",
    )
    parser.add_argument(
        "--repeats", type=int, default=101, help="first-byte reads per position and side"
    )
    parser.add_argument(
        "--open-ended",
        action="store_true",
        help="first-byte reads to the recording's end (bytes=N-), abandoned after 64 KiB",
    )
    parser.add_argument(
        "--pause-ms", type=float, default=0.0, help="pause after each first-byte read"
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="work directory; its generated calls are kept for the next run",
    )
    parser.add_argument("--skip-ingest", action="store_true", help="skip the ingest comparison")
    parser.add_argument(
        "--skip-reads", action="store_true", help="skip the first-byte and memory figures"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_arguments(argv)
    if options.store == "s3":
        require_environment("bench_encryption.py")
    work = options.work or Path(tempfile.mkdtemp(prefix="recarchive-bench-encryption-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"recarchive at {describe_checkout()}; {options.store} store; work {work}")
    results: dict[str, Any] = {"store": options.store}
    try:
        if not options.skip_ingest:
            results["ingest"] = run_ingest(options, work)
        if not options.skip_reads:
            results.update(run_reads(options, work))
    finally:
        if CREATED:
            remove_buckets()
        if options.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(_rounded(results)))


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value


if __name__ == "__main__":
    main()
