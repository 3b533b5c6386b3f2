#!/usr/bin/env python3
"""Benchmark the lookup API's search latency on a catalogue of 1,000,000 recordings.

    .venv/bin/python scripts/bench_lookup.py                  # 1M recordings, both backends
    .venv/bin/python scripts/bench_lookup.py --quick --backend sqlite --no-bucket

1. Builds a catalogue of ``--recordings`` calls (SQLite, cached under
   ``var/bench/``; PostgreSQL, a fresh ``recarchive_bench_*`` database) by
   bulk insert: ~50,000 customers with one or two numbers, 70 % of calls
   from known customers, a year of calls, 1-3 reason codes each (skewed),
   40 agents, 6 queues. A pool of recordings has real audio (short WAVs in
   a filesystem store); object keys are unique, so not every row can.
2. Serves it on loopback: ``recarchive serve``'s application under uvicorn, one
   process (``--workers N``: ``recarchive serve --workers N`` itself).
3. ``--clients`` concurrent keep-alive clients send ``--requests`` requests
   per query type after a warm-up: by customer id, by phone number (E.164
   and national spellings), by date range + reason code (as a QA trainer),
   and the first audio byte of a Range request. Then the same queries one
   at a time ("alone"), which is the service time without queueing.
   Every answer is checked (status, non-empty results).
4. The same "by customer" and "by date range + reason" questions answered
   with S3 alone (list the bucket, HEAD each object for its metadata) on
   ``--bucket-recordings`` objects in a fresh bucket, against the catalogue
   holding the same recordings; prints both times and their ratio.

Prints p50, p99, mean and throughput per query type and backend, whether
issue 18's target for that load is met (closed loop: >= 400 requests/s on
SQLite, >= 300/s on PostgreSQL; one at a time: p50 < 4 ms and p99 < 8 ms;
paced: p99 < 20 ms), and where the server spent its time (SQL by statement,
audit append, commits, token checks), measured inside the server process.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import bisect
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import gc
import hashlib
import hmac
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx
from bench_s3 import describe_checkout
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from recarchive.catalogue.database import create_catalogue_engine  # noqa: E402
from recarchive.catalogue.migrate import upgrade_schema  # noqa: E402
from recarchive.catalogue.revision import shipped_head  # noqa: E402

if TYPE_CHECKING:
    from fastapi import FastAPI
    from mypy_boto3_s3.client import S3Client

#: Bump when the generated data changes, so cached catalogues are rebuilt.
DATA_REVISION = 2
#: Issue 18's targets: closed-loop throughput per backend (req/s), one client at a time
#: (p50, p99 ms), paced (p99 ms).
TARGET_CLOSED_PER_S = {"sqlite": 400.0, "postgresql": 300.0}
TARGET_ALONE_MS = (4.0, 8.0)
TARGET_PACED_P99_MS = 20.0
TZ = ZoneInfo("Europe/Helsinki")
# fmt: off
#: Default taxonomy, skewed: billing questions dominate, "other" is rare.
REASONS = {"billing": 30, "contract_change": 18, "outage": 14, "fault_report": 10, "moving": 10,
           "new_contract": 8, "personal_data_change": 6, "other": 4}
QUEUES = {"electricity": 35, "billing": 25, "outages": 15, "district_heating": 10, "gas": 8,
          "moving": 7}
RECORDING_COLUMNS = (
    "id", "source", "source_ref", "call_id", "started_at", "duration_ms", "direction",
    "caller_number", "called_number", "agent", "queue", "customer_id", "customer_match",
    "object_key", "format", "codec", "channels", "sample_rate", "size_bytes", "sha256",
    "retention_class", "retain_until", "retention_rule", "status", "created_at", "updated_at",
)
# fmt: on
AGENTS = [f"agent{i:03d}" for i in range(40)]
SERVICE_NUMBER = "+358201234500"
QUERIES = ("customer", "number", "date_reason", "audio_ttfb")
LABELS = {
    "customer": "by customer id",
    "number": "by phone number",
    "date_reason": "by date range + reason",
    "audio_ttfb": "audio, first byte",
}

# --- the synthetic call population --------------------------------------------------


@dataclasses.dataclass
class Population:
    """What was generated and what the queries are drawn from (cached as JSON)."""

    recordings: int
    seed: int
    anchor: str  # ISO date the year of calls ends on
    #: Customers with at least one call, numbers that appear in calls.
    callers: list[str] = dataclasses.field(default_factory=list)
    numbers: list[str] = dataclasses.field(default_factory=list)
    #: Sampled visible calls: [id, started_at ISO, [reason codes]] (date queries, audio).
    sample: list[list[Any]] = dataclasses.field(default_factory=list)
    #: Calls with real audio: [id, object_key, wav index].
    playable: list[list[Any]] = dataclasses.field(default_factory=list)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self)), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Population:
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _reason_sets(rng: random.Random, count: int = 4096) -> list[tuple[str, ...]]:
    """``count`` draws of 1-3 distinct codes (60/30/10 %), each drawn by weight."""
    sets = []
    for _ in range(count):
        codes: dict[str, int] = dict(REASONS)
        chosen: list[str] = []
        for _ in range(rng.choices((1, 2, 3), weights=(6, 3, 1))[0]):
            code = rng.choices(list(codes), weights=list(codes.values()))[0]
            chosen.append(code)
            del codes[code]
        sets.append(tuple(chosen))
    return sets


class Generator:
    """The catalogue's rows for ``recordings`` calls, the same for a given seed."""

    def __init__(self, recordings: int, seed: int, playable: int, anchor: dt.date) -> None:
        self.n = recordings
        self.rng = random.Random(seed)
        self.population = Population(recordings, seed, anchor.isoformat())
        self.end = dt.datetime.combine(anchor, dt.time(), TZ).astimezone(dt.UTC)
        self.customer_count = max(50, min(50_000, recordings // 20))
        rng = self.rng
        numbers = rng.sample(range(10_000_000), self.customer_count * 2)
        self.customers = [
            (f"C{1_000_000 + i}", tuple(f"+35840{numbers[2 * i + j]:07d}" for j in range(count)))
            for i in range(self.customer_count)
            for count in [1 if rng.random() < 0.6 else 2]
        ]
        activity = [rng.lognormvariate(0, 1.0) for _ in self.customers]
        self.cumulative = list(_accumulate(activity))
        #: Customers who objected to training use (QA trainers do not see their calls).
        self.objected = set(rng.sample([c for c, _ in self.customers], self.customer_count // 500))
        self.held_customers = rng.sample([c for c, _ in self.customers], 50)
        self.sample_at = set(rng.sample(range(recordings), min(recordings, 5000 + playable)))
        self.restricted_at = set(rng.sample(range(recordings), min(recordings // 100, 30)))
        self.held_at = set(rng.sample(range(recordings), min(recordings // 100, 100)))
        self.playable_wanted = playable
        self.restricted_ids: list[uuid.UUID] = []
        self.held_ids: list[uuid.UUID] = []

    def customer_rows(self) -> Iterator[tuple[Any, ...]]:
        created = self.end - dt.timedelta(days=400)
        for customer_id, _ in self.customers:
            identity = hashlib.sha256(customer_id.encode()).hexdigest()
            yield (
                customer_id,
                f"Customer {customer_id}",
                identity,
                "henkilotunnus",
                created,
                created,
            )

    def phone_rows(self) -> Iterator[tuple[Any, ...]]:
        """The directory's rows: numbers as keyed hashes, as recarchive keeps them."""
        for customer_id, phones in self.customers:
            for e164 in phones:
                yield (
                    customer_id,
                    hmac.new(b"bench", f"phone:{e164}".encode(), "sha256").hexdigest(),
                )

    def _times(self) -> array.array[float]:
        """Start times (epoch seconds) over the year before the anchor, in order."""
        rng, start = self.rng, self.end.timestamp() - 365 * 86_400
        hours = [0, 0, 0, 0, 0, 0, 0, 1, 6, 10, 10, 9, 7, 8, 9, 8, 6, 3, 2, 1, 1, 0, 0, 0]
        cumulative_hours = list(_accumulate(hours))
        times = array.array("d")
        while len(times) < self.n:
            day = rng.randrange(365)
            weekday = (self.end - dt.timedelta(days=365 - day)).weekday()
            if weekday >= 5 and rng.random() < 0.7:
                continue  # fewer calls at weekends
            hour = bisect.bisect(cumulative_hours, rng.random() * cumulative_hours[-1])
            times.append(start + day * 86_400 + hour * 3600 + rng.random() * 3600)
        return array.array("d", sorted(times))

    def recording_batches(
        self, wavs: Sequence[tuple[int, str]], batch: int = 10_000
    ) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
        """``(recordings, reasons, candidates)`` rows in batches, oldest call first.

        ``wavs`` are ``(size, sha256)`` of the real audio files; sampled
        calls cycle through them, so the playable ones can be stored.
        """
        rng, population = self.rng, self.population
        callers: set[str] = set()
        numbers: set[str] = set()
        recordings: list[tuple[Any, ...]] = []
        reasons: list[tuple[Any, ...]] = []
        candidates: list[tuple[Any, ...]] = []
        total = self.cumulative[-1]
        reason_sets = _reason_sets(rng)
        queues = [q for q, weight in QUEUES.items() for _ in range(weight)]
        for index, epoch in enumerate(self._times()):
            recording_id = _uuid(rng)
            started = dt.datetime.fromtimestamp(epoch, dt.UTC)
            customer_id, match, number = None, "unknown", f"+35845{rng.randrange(10**7):07d}"
            draw = rng.random()
            if draw < 0.70:
                position = bisect.bisect(self.cumulative, rng.random() * total)
                customer_id, phones = self.customers[min(position, self.customer_count - 1)]
                number, match = rng.choice(phones), "matched"
                callers.add(customer_id)
                numbers.add(number)
            elif draw < 0.71:
                match = "ambiguous"
                for candidate in rng.sample(self.customers, 2):
                    candidates.append((recording_id, candidate[0]))
            direction = "outbound" if rng.random() < 0.15 else "inbound"
            caller, called = (
                (SERVICE_NUMBER, number) if direction == "outbound" else (number, SERVICE_NUMBER)
            )
            codes = list(reason_sets[rng.getrandbits(12)])
            duration_ms = int(min(1200, max(30, rng.lognormvariate(5.3, 0.8))) * 1000)
            key = f"recordings/{started:%Y/%m/%d}/{recording_id}.wav"
            size, sha = duration_ms * 16, hashlib.sha256(recording_id.bytes).hexdigest()
            if index in self.sample_at:
                visible = customer_id not in self.objected and index not in self.restricted_at
                wav = len(population.playable) % len(wavs)
                if visible and len(population.playable) < self.playable_wanted:
                    size, sha = wavs[wav]
                    population.playable.append([str(recording_id), key, wav])
                elif visible:
                    population.sample.append([str(recording_id), started.isoformat(), codes])
            if index in self.restricted_at:
                self.restricted_ids.append(recording_id)
            if index in self.held_at:
                self.held_ids.append(recording_id)
            # fmt: off
            recordings.append((
                recording_id, "pbx", f"bench/{index}", f"{int(epoch)}.{index}", started,
                duration_ms, direction, caller, called, rng.choice(AGENTS),
                queues[rng.randrange(len(queues))], customer_id, match, key, "wav", "pcm_s16le", 1,
                8000, size, sha, "standard", started + dt.timedelta(days=365), "default", "active",
                started, started,
            ))
            # fmt: on
            for code in codes:
                reasons.append((recording_id, code, "rule", started))
            if len(recordings) >= batch:
                yield recordings, reasons, candidates
                recordings, reasons, candidates = [], [], []
        if recordings:
            yield recordings, reasons, candidates
        population.callers = sorted(callers)
        population.numbers = sorted(numbers)

    def control_rows(self) -> dict[str, list[dict[str, Any]]]:
        """Holds and restrictions (a realistic few), once the recordings are generated."""
        now, rng = self.end, self.rng
        holds, links, restrictions = [], [], []
        for number, customer_id in enumerate(self.held_customers):
            holds.append(self._hold(f"DISPUTE-{number}", customer_id, now))
        for number, recording_id in enumerate(self.held_ids):
            hold = self._hold(f"CLAIM-{number}", None, now)
            holds.append(hold)
            links.append({"hold_id": hold["id"], "recording_id": recording_id})
        for customer_id in sorted(self.objected):
            restrictions.append(self._restriction("objection", customer_id, None, now))
        for recording_id in self.restricted_ids:
            restrictions.append(self._restriction("restriction", None, recording_id, now))
        rng.shuffle(restrictions)
        return {"holds": holds, "hold_recordings": links, "processing_restrictions": restrictions}

    def _hold(self, case: str, customer_id: str | None, now: dt.datetime) -> dict[str, Any]:
        return dict(id=_uuid(self.rng), case_ref=case, reason="billing dispute",
                    customer_id=customer_id, placed_by="bench", placed_at=now, until=None,
                    released_at=None)  # fmt: skip

    def _restriction(
        self, kind: str, customer_id: str | None, recording_id: uuid.UUID | None, now: dt.datetime
    ) -> dict[str, Any]:
        purpose = "dispute" if kind == "restriction" else None
        return dict(id=_uuid(self.rng), kind=kind, customer_id=customer_id,
                    recording_id=recording_id, allowed_purpose=purpose, created_at=now,
                    created_by="bench")  # fmt: skip


def _accumulate(values: Sequence[float]) -> Iterator[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


# --- building catalogues ------------------------------------------------------------


def make_wavs(directory: Path, count: int = 20) -> list[Path]:
    """``count`` short 8 kHz mono PCM WAVs (5-20 s of tones) made with ffmpeg."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = directory / f"tone{index:02d}.wav"
        if not path.exists():
            tone = f"sine=frequency={300 + 40 * index}:duration={5 + index % 16}:sample_rate=8000"
            command = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", tone]
            subprocess.run([*command, "-ac", "1", "-c:a", "pcm_s16le", str(path)], check=True)
        paths.append(path)
    return paths


def describe_wavs(paths: Sequence[Path]) -> list[tuple[int, str]]:
    return [(p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest()) for p in paths]


class Loader:
    """Bulk rows into a migrated catalogue: COPY on PostgreSQL; on SQLite one connection
    with the journal off for the load (the file is new), values converted as SQLAlchemy does.
    """

    def __init__(self, engine: Engine) -> None:
        from recarchive.catalogue.database import Base

        self.engine = engine
        self.tables = Base.metadata.tables
        self.postgres = engine.dialect.name == "postgresql"
        self.pooled = engine.raw_connection()
        driver = self.pooled.driver_connection
        if driver is None:  # only for a connection already closed, never a new one
            raise RuntimeError("bulk load: the pool gave a closed connection")
        self.raw: Any = driver
        if not self.postgres:
            self.raw.isolation_level = None
            for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-1000000"):
                self.raw.execute(f"PRAGMA {pragma}")

    def rows(self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self.postgres:
            with self.raw.cursor() as cursor:
                statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
                with cursor.copy(statement) as copy:
                    for row in rows:
                        copy.write_row(row)
            self.raw.commit()
            return
        self._check(table, columns, rows[0])
        converted = [tuple(map(_sqlite_value, row)) for row in rows]
        marks = ", ".join("?" * len(columns))
        self.raw.execute("BEGIN")
        names = ", ".join(columns)  # our own table and column names, not input
        self.raw.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", converted)  # noqa: S608
        self.raw.execute("COMMIT")

    def _check(self, table: str, columns: Sequence[str], row: tuple[Any, ...]) -> None:
        """The conversion gives what SQLAlchemy itself would store (checked on each batch)."""
        for column, value in zip(columns, row, strict=True):
            process = self.tables[table].c[column].type._cached_bind_processor(self.engine.dialect)
            if value is not None and process is not None and process(value) != _sqlite_value(value):
                sys.exit(f"bulk load: {table}.{column} would be stored differently")

    def dicts(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            columns = list(rows[0])
            self.rows(table, columns, [tuple(row[c] for c in columns) for row in rows])

    def finish(self) -> None:
        if not self.postgres:
            self.raw.execute("PRAGMA journal_mode=WAL")
        self.pooled.close()
        if self.postgres:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.exec_driver_sql("VACUUM ANALYZE")  # what autovacuum does after a load


def _sqlite_value(value: Any) -> Any:
    """A value as SQLAlchemy stores it in SQLite (UUIDs as hex, UTC times as naive text)."""
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat(" ", "microseconds")
    return value


def fill(
    engine: Engine,
    generator: Generator,
    wavs: Sequence[tuple[int, str]],
    keep: list[tuple[str, str, str | None, str, str]] | None = None,
) -> None:
    """Migrate and fill an empty catalogue; prints progress.

    ``keep`` receives ``(id, object key, customer id, started at, reason codes)`` of
    every call (for the bucket comparison).
    """
    upgrade_schema(engine)
    loader = Loader(engine)
    started = time.perf_counter()
    loader.rows(
        "customers",
        ("customer_id", "name", "identity_hash", "identity_kind", "created_at", "updated_at"),
        list(generator.customer_rows()),
    )
    loader.rows("customer_phones", ("customer_id", "phone_hash"), list(generator.phone_rows()))
    done = 0
    for recordings, reasons, candidates in generator.recording_batches(wavs, batch=20_000):
        loader.rows("recordings", RECORDING_COLUMNS, recordings)
        loader.rows(
            "recording_reasons", ("recording_id", "code", "assigned_by", "assigned_at"), reasons
        )
        loader.rows("recording_candidates", ("recording_id", "customer_id"), candidates)
        if keep is not None:
            codes: dict[uuid.UUID, list[str]] = {}
            for recording_id, code, *_ in reasons:
                codes.setdefault(recording_id, []).append(code)
            keep.extend(
                (str(r[0]), r[13], r[11], r[4].isoformat(), ",".join(codes[r[0]]))
                for r in recordings
            )
        done += len(recordings)
        if done % 200_000 < len(recordings) or done == generator.n:
            rate = done / (time.perf_counter() - started)
            print(f"  {engine.dialect.name}: {done:>9,} recordings ({rate:,.0f}/s)", flush=True)
    for table, rows in generator.control_rows().items():
        loader.dicts(table, rows)
    loader.finish()


def store_audio(root: Path, playable: Sequence[Sequence[Any]], wav_paths: Sequence[Path]) -> None:
    """Put the playable calls' audio (the real WAVs) in a filesystem store at their keys."""
    from recarchive.storage.filesystem import FilesystemObjectStore

    store = FilesystemObjectStore(root)
    store.create()
    for _recording_id, key, wav in playable:
        if not store.exists(key):
            with wav_paths[wav].open("rb") as stream:
                store.put(key, stream, content_type="audio/wav")


def cache_for(options: argparse.Namespace) -> Path:
    """Where the SQLite catalogue and the audio of these options are kept between runs."""
    stem = f"lookup-{options.recordings}-s{options.seed}-p{options.playable}"
    cache_dir: Path = options.cache_dir
    return cache_dir / f"{stem}-d{DATA_REVISION}-m{shipped_head()}"


def anchor_for(options: argparse.Namespace) -> dt.date:
    """The day the year of calls ends: the cached catalogue's, else today."""
    manifest = cache_for(options) / "population.json"
    if manifest.exists():
        return dt.date.fromisoformat(Population.load(manifest).anchor)
    return dt.datetime.now(dt.UTC).date()


def build_sqlite(options: argparse.Namespace, wav_paths: list[Path], anchor: dt.date) -> Population:
    """The cached SQLite catalogue for the options (built when missing)."""
    cache = cache_for(options)
    database, manifest = cache / "catalogue.db", cache / "population.json"
    if manifest.exists():
        print(f"sqlite: cached catalogue {database}")
        return Population.load(manifest)
    for stale in cache.parent.glob(cache.name.rsplit("-d", 1)[0] + "-d*"):
        if stale != cache:  # the same catalogue for older data or schema revisions
            shutil.rmtree(stale, ignore_errors=True)
    if database.exists():
        database.unlink()
    cache.mkdir(parents=True, exist_ok=True)
    engine = create_catalogue_engine(f"sqlite:///{database}")
    generator = Generator(options.recordings, options.seed, options.playable, anchor)
    started = time.perf_counter()
    fill(engine, generator, describe_wavs(wav_paths))
    engine.dispose()
    print(
        f"sqlite: built in {time.perf_counter() - started:.0f} s, "
        f"{database.stat().st_size / 2**20:,.0f} MiB"
    )
    generator.population.save(manifest)
    return generator.population


def postgres_admin(options: argparse.Namespace) -> Engine:
    url = make_url(options.postgres_url).set(drivername="postgresql+psycopg")
    return create_engine(url, isolation_level="AUTOCOMMIT")


def build_postgresql(
    options: argparse.Namespace, name: str, wav_paths: list[Path], anchor: dt.date
) -> tuple[str, Population]:
    admin = postgres_admin(options)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    url = make_url(options.postgres_url).set(drivername="postgresql+psycopg", database=name)
    rendered = url.render_as_string(hide_password=False)
    engine = create_catalogue_engine(rendered)
    generator = Generator(options.recordings, options.seed, options.playable, anchor)
    started = time.perf_counter()
    fill(engine, generator, describe_wavs(wav_paths))
    with engine.connect() as connection:
        size = connection.exec_driver_sql("SELECT pg_database_size(current_database())").scalar()
    engine.dispose()
    print(
        f"postgresql: built {name} in {time.perf_counter() - started:.0f} s, "
        f"{(size or 0) / 2**20:,.0f} MiB"
    )
    return rendered, generator.population


def drop_postgresql(options: argparse.Namespace, name: str) -> None:
    admin = postgres_admin(options)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


# --- the server and what it measures of itself --------------------------------------

#: Statement families, first match wins; the rest are named by their first words.
SQL_LABELS = [
    (re.compile(r"pg_advisory_xact_lock"), "audit: advisory lock (wait)"),
    (re.compile(r"^UPDATE audit_events SET seq = seq"), "audit: SQLite write lock (wait)"),
    (re.compile(r"^SELECT audit_events\.hash"), "audit: previous hash"),
    (re.compile(r"^INSERT INTO audit_events"), "audit: insert"),
    (re.compile(r"FROM api_tokens|FROM users|UPDATE api_tokens"), "token lookup"),
    (re.compile(r"^SELECT recording_reasons"), "load reasons"),
    (re.compile(r"^SELECT recording_candidates"), "load candidates"),
    (
        re.compile(r"^SELECT recordings\.id\b.*WHERE recordings\.id IN", re.S),
        "flags (held/restricted/objected)",
    ),
    (re.compile(r"^SELECT processing_restrictions"), "restrictions of one"),
    (re.compile(r"^SELECT recordings\..*ORDER BY recordings\.started_at", re.S), "search"),
    (re.compile(r"^SELECT recordings\..*WHERE recordings\.id = ", re.S), "load one"),
]


def sql_label(statement: str) -> str:
    statement = statement.strip()
    for pattern, label in SQL_LABELS:
        if pattern.search(statement):
            return label
    return " ".join(statement.split()[:4])[:50]


class Probes:
    """Time spent in the server, by SQL statement family and by service step; thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.timers: dict[str, list[float]] = {}
            self.slowest: dict[str, tuple[float, str, Any]] = {}

    def add(
        self, name: str, seconds: float, statement: str | None = None, params: Any = None
    ) -> None:
        with self.lock:
            entry = self.timers.setdefault(name, [0, 0.0, 0.0])
            entry[0] += 1
            entry[1] += seconds
            entry[2] = max(entry[2], seconds)
            if statement is not None and seconds > self.slowest.get(name, (0.0,))[0]:
                self.slowest[name] = (seconds, statement, params)


def install_probes() -> Probes:
    """Time SQL, commits, the audit append, searches and token checks in this process.

    SQL through SQLAlchemy's cursor events; the steps through recarchive's own
    timing probes (:mod:`recarchive.probes`: the commit, the audit append,
    search, audio, token checks), whose names the breakdown prints; garbage
    collector pauses through ``gc.callbacks``.
    """
    from sqlalchemy import event

    from recarchive import probes as timing

    probes = Probes()

    def before(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: Any
    ) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: Any) -> None:
        seconds = time.perf_counter() - conn.info.pop("bench_started", time.perf_counter())
        probes.add("sql: " + sql_label(statement), seconds, statement, params)

    event.listen(Engine, "before_cursor_execute", before)
    event.listen(Engine, "after_cursor_execute", after)
    timing.install(probes.add)
    collecting: dict[int, float] = {}

    def collection(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collecting[info["generation"]] = time.perf_counter()
        elif (began := collecting.pop(info["generation"], None)) is not None:
            probes.add(f"gc: generation {info['generation']} pause", time.perf_counter() - began)

    gc.callbacks.append(collection)
    return probes


def add_probes_route(app: FastAPI, probes: Probes, engine: Engine) -> None:
    """``GET /_bench/probes`` on ``app``: the timers, and the plans of the slowest statements.

    ``reset``: start counting again after this answer; ``explain``: the plans
    (:func:`explain_slowest`).
    """

    @app.get("/_bench/probes", include_in_schema=False)
    def read_probes(reset: bool = False, explain: bool = False) -> dict[str, Any]:
        with probes.lock:
            timers = {k: list(v) for k, v in probes.timers.items()}
            slowest = dict(probes.slowest)
        plans = explain_slowest(engine, slowest) if explain else {}
        if reset:
            probes.reset()
        return {"timers": timers, "plans": plans}


def explain_slowest(engine: Engine, slowest: dict[str, tuple[float, str, Any]]) -> dict[str, Any]:
    """The plan of the slowest SELECT of each family (EXPLAIN ANALYZE on PostgreSQL)."""
    plans = {}
    for name, (seconds, statement, params) in slowest.items():
        if not statement.lstrip().startswith("SELECT") or "pg_advisory" in statement:
            continue
        prefix = (
            "EXPLAIN (ANALYZE, BUFFERS) "
            if engine.dialect.name == "postgresql"
            else ("EXPLAIN QUERY PLAN ")
        )
        with engine.connect() as connection:
            rows = connection.exec_driver_sql(prefix + statement, params).all()
        plan = [" ".join(str(part) for part in row) for row in rows]
        plans[name] = {"ms": round(seconds * 1000, 2), "sql": statement, "plan": plan}
    return plans


def serve(config: Path, port: int, workers: int) -> None:
    """Serve the catalogue of ``config`` on loopback in this process (the server subprocess).

    One process is served with the probes (:func:`serve_with_probes`);
    several are ``recarchive serve --workers`` itself: uvicorn starts the
    workers as fresh interpreters, which the probes cannot reach.
    """
    if workers == 1:
        serve_with_probes(config, port)
        return
    from recarchive.cli import cli

    bind = f"127.0.0.1:{port}"
    arguments = ["--config", str(config), "serve", "--bind", bind, "--workers", str(workers)]
    cli.main(arguments, prog_name="recarchive")


def serve_with_probes(config: Path, port: int) -> None:
    """The application ``recarchive serve`` builds (:func:`~recarchive.api.app.create_app`),
    with the probes installed and ``/_bench/probes`` added, run by uvicorn the way
    ``serve`` runs one process."""
    import uvicorn

    from recarchive.api.app import create_app, settle_heap, startup_check
    from recarchive.cli.serve_cmd import bind_listener, uvicorn_options
    from recarchive.config import load_settings
    from recarchive.logs import configure_logging
    from recarchive.runtime import Runtime

    settings = load_settings(config)
    configure_logging(settings.general.log_level, settings.general.log_format)
    runtime = Runtime(settings)
    try:
        startup_check(runtime)  # a fresh catalogue: it is up, or the benchmark cannot go on
        probes = install_probes()
        app = create_app(runtime)
        add_probes_route(app, probes, runtime.engine)
        settle_heap()
        server = uvicorn.Server(uvicorn.Config(app, **uvicorn_options("127.0.0.1", port)))
        server.run(sockets=[bind_listener("127.0.0.1", port)])
        if not server.started:
            sys.exit("the server did not start: see the log above")
    finally:
        runtime.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_environment(with_s3: bool) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RECARCHIVE_")}
    if with_s3:
        for name in ("RECARCHIVE_S3_ACCESS_KEY_ID", "RECARCHIVE_S3_SECRET_ACCESS_KEY"):
            environment[name] = os.environ[name]
    return environment


@dataclasses.dataclass
class Server:
    """One ``recarchive serve`` subprocess and the tokens of its users."""

    name: str
    config: Path
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path
    tokens: dict[str, str]
    workers: int = 1

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def probes(self, *, reset: bool = False, explain: bool = False) -> dict[str, Any]:
        if self.workers > 1:  # the probes live in a single-process server only
            return {"timers": {}, "plans": {}}
        params = {"reset": reset, "explain": explain}
        try:
            answer = httpx.get(f"{self.base_url}/_bench/probes", params=params, timeout=120)
        except httpx.TransportError as exc:
            raise BenchFailure(self.lost(exc)) from exc
        answer.raise_for_status()
        return dict(answer.json())

    def lost(self, error: Exception) -> str:
        """Why the server stopped answering, as far as can be told."""
        time.sleep(1)
        code = self.process.poll()
        state = "still running" if code is None else f"exited with status {code}"
        if code is not None and code < 0:
            state = f"was killed by signal {-code} (not by this benchmark)"
        tail = self.log.read_text(errors="replace")[-1500:]
        return (
            f"{self.name}: the server stopped answering ({error!r}); it {state}. "
            f"Log {self.log}:\n{tail}"
        )


def write_config(work: Path, name: str, catalogue_url: str, store: dict[str, str]) -> Path:
    config = work / f"{name}.toml"
    storage = "".join(f'{key} = "{value}"\n' for key, value in store.items() if key != "s3")
    s3 = store.get("s3", "")
    config.write_text(
        f'[general]\ndata_dir = "{work / ("var-" + name)}"\nlog_format = "json"\n'
        f'log_level = "INFO"\n[catalogue]\nurl = "{catalogue_url}"\n'
        f"[storage]\n{storage}{s3}",
        encoding="utf-8",
    )
    return config


def start_server(name: str, config: Path, *, with_s3: bool = False, workers: int = 1) -> Server:
    """Add one user per role needed, then serve the catalogue; waits until it answers."""
    from recarchive.access.actors import Actor
    from recarchive.access.models import Role
    from recarchive.access.users import add_user
    from recarchive.config import load_settings
    from recarchive.runtime import Runtime

    environment = clean_environment(with_s3)
    runtime = Runtime(load_settings(config, env=environment))
    suffix = uuid.uuid4().hex[:6]
    tokens = {
        role: add_user(
            runtime,
            f"bench-{role.replace('_', '-')}-{suffix}",
            role,
            actor=Actor("bench", Role.ADMIN, "bench"),
            token_days=1,
        ).token
        for role in ("dispute_handler", "qa_trainer")
    }
    runtime.close()
    port = free_port()
    log = config.with_suffix(".log")
    with log.open("wb") as stderr:
        child = ["--api-child", str(config), "--port", str(port), "--workers", str(workers)]
        process = subprocess.Popen(
            [sys.executable, __file__, *child], env=environment, stdout=stderr, stderr=stderr
        )
    server = Server(name, config, f"http://127.0.0.1:{port}", process, log, tokens, workers)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise BenchFailure(f"{name}: the server exited with {process.returncode}:\n{tail}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.base_url}/healthz", timeout=5).status_code == 200:
                return server
        time.sleep(0.2)
    server.stop()
    raise BenchFailure(f"{name}: the server did not answer /healthz within 60 s (log {log})")


class BenchFailure(Exception):
    """The benchmark cannot go on (a wrong answer, a server that does not start)."""


# --- the load -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Request:
    kind: str
    path: str
    params: tuple[tuple[str, str], ...]
    role: str
    expect: tuple[str, ...] = ()


def plan_requests(population: Population, kind: str, count: int, seed: int) -> list[Request]:
    """``count`` requests of one kind, drawn from the population (the same for a seed)."""
    rng = random.Random(f"{seed}-{kind}")
    search = "/api/v1/recordings"
    requests = []
    params: tuple[tuple[str, str], ...]
    for _ in range(count):
        if kind == "customer":
            customer = rng.choice(population.callers)
            requests.append(
                Request(kind, search, (("customer_id", customer),), "dispute_handler", (customer,))
            )
        elif kind == "number":
            e164 = rng.choice(population.numbers)
            national = "0" + e164[4:]  # +35840xxxxxxx -> 040xxxxxxx
            spellings = [e164, f"{national[:3]} {national[3:]}",
                         f"{national[:3]}-{national[3:6]} {national[6:]}",
                         f"+358 {e164[4:6]} {e164[6:9]} {e164[9:]}"]  # fmt: skip
            spelling = rng.choice(spellings)
            requests.append(
                Request(kind, search, (("number", spelling),), "dispute_handler", (e164,))
            )
        elif kind == "date_reason":
            recording_id, started_text, codes = rng.choice(population.sample)
            day = dt.datetime.fromisoformat(started_text).astimezone(TZ).date()
            days = rng.choice([1, 7, 30])
            first = day - dt.timedelta(days=rng.randrange(days))
            last = first + dt.timedelta(days=days)
            reason = rng.choice(codes)
            params = (("from", first.isoformat()), ("to", last.isoformat()), ("reason", reason))
            requests.append(Request(kind, search, params, "qa_trainer", (reason,)))
        else:
            recording_id, _key, _wav = rng.choice(population.playable)
            params = (("purpose", "dispute"), ("case", "BENCH-1"))
            requests.append(
                Request(kind, f"{search}/{recording_id}/audio", params, "dispute_handler")
            )
    return requests


def check_answer(request: Request, status: int, body: bytes, headers: httpx.Headers) -> str | None:
    """What is wrong with an answer, or None."""
    if request.kind == "audio_ttfb":
        if status != 206 or not headers.get("content-range", "").startswith("bytes 0-"):
            return f"status {status}, Content-Range {headers.get('content-range')!r}"
        return None if body else "no audio bytes"
    if status != 200:
        return f"status {status}: {body[:300]!r}"
    items = json.loads(body)["items"]
    if not items:
        return "no results where the population has some"
    first = items[0]
    if request.kind == "customer" and first["customer"]["customer_id"] != request.expect[0]:
        return f"first result belongs to {first['customer']['customer_id']}"
    if request.kind == "number" and request.expect[0] not in (
        first["customer"]["caller_number"],
        first["customer"]["called_number"],
    ):
        return "first result has neither number"
    if request.kind == "date_reason" and request.expect[0] not in first["reasons"]:
        return f"first result lacks reason {request.expect[0]}"
    return None


#: Requests sent again because the server closed a keep-alive connection as it was reused.
RETRIED: list[str] = []


async def _send(
    client: httpx.AsyncClient, request: Request, token: str, scheduled: float | None = None
) -> float:
    """Seconds until the whole answer (searches) or its first body byte (audio).

    A request that finds its keep-alive connection closed by the server (the
    race between uvicorn's 5 s keep-alive timeout and a client reusing the
    connection) is sent once more, as browsers do, and counted; the time
    includes both attempts. Paced requests count from when they were due
    (``scheduled``), so time spent waiting for a free connection is included.
    """
    headers = {"authorization": f"Bearer {token}"}
    if request.kind == "audio_ttfb":
        headers["range"] = "bytes=0-65535"
    started = scheduled if scheduled is not None else time.perf_counter()
    try:
        return await _timed(client, request, headers, started)
    except (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError) as exc:
        RETRIED.append(f"{exc!r} after {time.perf_counter() - started:.2f} s")
    try:
        return await _timed(client, request, headers, started)
    except httpx.TransportError as exc:
        waited = time.perf_counter() - started
        raise httpx.TransportError(f"{exc!r} after {waited:.2f} s, {dict(request.params)}") from exc


async def _timed(
    client: httpx.AsyncClient, request: Request, headers: dict[str, str], started: float
) -> float:
    async with client.stream("GET", request.path, params=request.params, headers=headers) as r:
        first = b""
        elapsed = None
        async for chunk in r.aiter_raw():
            if request.kind == "audio_ttfb" and elapsed is None and chunk:
                elapsed = time.perf_counter() - started
                first = chunk
            elif request.kind != "audio_ttfb":
                first += chunk  # the whole JSON answer
        if elapsed is None:
            elapsed = time.perf_counter() - started
        problem = check_answer(request, r.status_code, first, r.headers)
    if problem:
        described = dict(request.params)
        raise BenchFailure(f"{LABELS[request.kind]} {described}: {problem}")
    return elapsed


async def _drive(
    base_url: str, tokens: dict[str, str], requests: list[Request], clients: int
) -> tuple[list[float], float]:
    pending = iter(requests)
    latencies: list[float] = []
    # Idle connections are dropped well before the server's 5 s keep-alive timeout.
    limits = httpx.Limits(
        max_connections=clients, max_keepalive_connections=clients, keepalive_expiry=1.0
    )
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120) as client:

        async def worker() -> None:
            for request in pending:
                latencies.append(await _send(client, request, tokens[request.role]))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return latencies, time.perf_counter() - started


async def _pace(
    base_url: str, tokens: dict[str, str], requests: list[Request], clients: int, rate: float
) -> tuple[list[float], float]:
    """Send requests at Poisson arrivals of ``rate`` per second, whatever the answers take."""
    rng = random.Random(len(requests))
    limits = httpx.Limits(
        max_connections=clients, max_keepalive_connections=clients, keepalive_expiry=1.0
    )
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120) as client:
        started = due = time.perf_counter()
        sent = []
        for request in requests:
            due += rng.expovariate(rate)
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            sent.append(
                asyncio.create_task(_send(client, request, tokens[request.role], scheduled=due))
            )
        latencies = list(await asyncio.gather(*sent))
        return latencies, time.perf_counter() - started


def drive(
    server: Server, requests: list[Request], clients: int, rate: float = 0.0
) -> tuple[list[float], float]:
    """Send ``requests`` over ``clients`` keep-alive connections; latencies and wall time.

    Closed loop (each client sends its next request when it has the answer)
    unless ``rate`` is given: then requests arrive at that rate (open loop).
    """
    try:
        if rate > 0:
            return asyncio.run(_pace(server.base_url, server.tokens, requests, clients, rate))
        return asyncio.run(_drive(server.base_url, server.tokens, requests, clients))
    except httpx.TransportError as exc:
        raise BenchFailure(server.lost(exc)) from exc


@dataclasses.dataclass
class Figures:
    backend: str
    kind: str
    #: "50 clients" (closed loop), "1 client", or "10/s paced" (open loop).
    load: str
    latencies: list[float]
    seconds: float

    @property
    def key(self) -> str:
        """``c50``, ``c1`` (clients) or ``10ps`` (paced per second), for the JSON summary."""
        count, unit = self.load.split()[:2]
        return count.replace("/s", "ps") if unit == "paced" else f"c{count}"

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies) * 1000

    @property
    def p99(self) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] * 1000
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[98] * 1000

    @property
    def mean(self) -> float:
        return statistics.fmean(self.latencies) * 1000

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds


def breakdown(probes: dict[str, Any], requests: int) -> list[str]:
    """Server-side milliseconds per request, by step and statement family."""
    lines = []
    for name, (count, total, longest) in sorted(
        probes["timers"].items(), key=lambda item: -item[1][1]
    ):
        lines.append(
            f"{name:<44} {total * 1000 / requests:7.2f} ms/request  "
            f"{count / requests:5.2f}/request  max {longest * 1000:7.1f} ms"
        )
    return lines


def measure_backend(
    server: Server, population: Population, options: argparse.Namespace
) -> list[Figures]:
    """Warm up, then each query type at full concurrency, one at a time, and paced."""
    figures = []
    phases = [
        (f"{options.clients} clients", options.clients, options.requests, 0.0),
        ("1 client", 1, options.alone, 0.0),
        (f"{options.rate:g}/s paced", options.clients, options.paced, options.rate),
    ]
    for kind in QUERIES:
        warm = plan_requests(population, kind, options.warmup, options.seed + 1)
        drive(server, warm, options.clients)
        for number, (load, clients, count, rate) in enumerate(phases):
            if count <= 0 or (rate <= 0 and number == 2):
                continue
            requests = plan_requests(population, kind, count, options.seed + 10 + number)
            server.probes(reset=True)
            latencies, seconds = drive(server, requests, clients, rate)
            result = Figures(server.name, kind, load, latencies, seconds)
            figures.append(result)
            print(
                f"  {server.name:<10} {LABELS[kind]:<24} {load:>11}: "
                f"p50 {result.p50:7.1f} ms  p99 {result.p99:7.1f} ms  "
                f"{result.rate:7.1f}/s",
                flush=True,
            )
            if options.breakdown:
                probes = server.probes(explain=options.explain and clients == 1)
                for line in breakdown(probes, count):
                    print(f"      {line}")
                for name, plan in probes["plans"].items():
                    print(f"      plan of the slowest {name} ({plan['ms']} ms):")
                    for row in plan["plan"]:
                        print(f"        {row[:150]}")
    return figures


# --- S3 alone: list the bucket and read each object's metadata ---------------------

PAYLOAD = b"RIFF" + b"\0" * 1020


def fill_bucket(
    s3: S3Client, bucket: str, calls: list[tuple[str, str, str | None, str, str]]
) -> None:
    """One small object per call with what S3 can hold: key, metadata, a tag."""

    def put(call: tuple[str, str, str | None, str, str]) -> None:
        _recording_id, key, customer_id, started, reasons = call
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=PAYLOAD,
            ContentType="audio/wav",
            Metadata={"customer-id": customer_id or "-", "reasons": reasons, "started-at": started},
            Tagging="retention-class=standard",
        )

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(put, calls))


def s3_scan(
    s3: S3Client, bucket: str, prefixes: list[str], wanted: Callable[[dict[str, str]], bool]
) -> tuple[set[str], int]:
    """Ids of the objects under ``prefixes`` whose metadata is ``wanted``; HEADs sent."""
    keys = [
        item["Key"]
        for prefix in prefixes
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
    ]

    def metadata(key: str) -> dict[str, str]:
        return dict(s3.head_object(Bucket=bucket, Key=key)["Metadata"])

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        found = {
            key.rsplit("/", 1)[1].removesuffix(".wav")
            for key, meta in zip(keys, pool.map(metadata, keys), strict=True)
            if wanted(meta)
        }
    return found, len(keys)


def catalogue_ids(server: Server, params: tuple[tuple[str, str], ...]) -> set[str]:
    """Every recording the API finds for ``params``, following the cursor."""
    ids: set[str] = set()
    cursor: str | None = None
    headers = {"authorization": f"Bearer {server.tokens['dispute_handler']}"}
    with httpx.Client(base_url=server.base_url, timeout=120) as client:
        while True:
            query = (*params, ("limit", "200"), *((("cursor", cursor),) if cursor else ()))
            answer = client.get("/api/v1/recordings", params=query, headers=headers)
            if answer.status_code != 200:
                raise BenchFailure(f"catalogue search {dict(params)}: {answer.status_code}")
            page = answer.json()
            ids.update(item["id"] for item in page["items"])
            cursor = page["next_cursor"]
            if not cursor:
                return ids


def bucket_comparison(
    options: argparse.Namespace, work: Path, anchor: dt.date
) -> list[dict[str, Any]]:
    """S3 listing + HEADs against the catalogue, for the same recordings and questions."""
    from bench_s3 import CREATED, client

    s3 = client()
    bucket = f"bench-lookup-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    CREATED.append(bucket)
    generator = Generator(options.bucket_recordings, options.seed + 1000, 0, anchor)
    calls: list[tuple[str, str, str | None, str, str]] = []
    engine = create_catalogue_engine(f"sqlite:///{work / 'bucket-catalogue.db'}")
    fill(engine, generator, describe_wavs(make_wavs(options.cache_dir / "wavs")), keep=calls)
    engine.dispose()
    started = time.perf_counter()
    fill_bucket(s3, bucket, calls)
    print(f"bucket {bucket}: {len(calls)} objects put in {time.perf_counter() - started:.0f} s")
    s3_text = f'[s3]\nendpoint_url = "{os.environ["RECARCHIVE_S3_ENDPOINT_URL"]}"\n'
    s3_text += f'bucket = "{bucket}"\n'
    if os.environ.get("RECARCHIVE_S3_REGION"):
        s3_text += f'region = "{os.environ["RECARCHIVE_S3_REGION"]}"\n'
    config = write_config(
        work,
        "bucket",
        f"sqlite:///{work / 'bucket-catalogue.db'}",
        {"backend": "s3", "s3": s3_text},
    )
    server = start_server("bucket", config, with_s3=True)
    population = generator.population
    rows = []
    try:
        rng = random.Random(options.seed)
        questions: list[tuple[str, tuple[tuple[str, str], ...]]] = [
            ("customer", (("customer_id", customer),))
            for customer in rng.sample(population.callers, options.bucket_queries)
        ]
        questions += [
            ("date_reason", request.params)
            for request in plan_requests(
                population, "date_reason", options.bucket_queries, options.seed
            )
        ]
        for kind, params in questions:
            catalogue_times = []
            for _ in range(5):
                begun = time.perf_counter()
                found = catalogue_ids(server, params)
                catalogue_times.append(time.perf_counter() - begun)
            begun = time.perf_counter()
            listed, heads = s3_only(s3, bucket, kind, dict(params))
            s3_seconds = time.perf_counter() - begun
            if listed != found:
                raise BenchFailure(
                    f"S3 scan and catalogue disagree on {dict(params)}: "
                    f"{len(listed)} against {len(found)} recordings"
                )
            catalogue_s = statistics.median(catalogue_times)
            row: dict[str, Any] = {
                "kind": kind,
                "results": len(found),
                "heads": heads,
                "s3_s": s3_seconds,
                "catalogue_s": catalogue_s,
                "ratio": s3_seconds / catalogue_s,
            }
            rows.append(row)
            print(
                f"  {LABELS[kind]:<24} {len(found):>4} found: S3 {s3_seconds:7.2f} s "
                f"({heads} HEADs), catalogue {row['catalogue_s'] * 1000:7.1f} ms, "
                f"ratio {row['ratio']:,.0f}",
                flush=True,
            )
    finally:
        server.stop()
    return rows


def s3_only(s3: S3Client, bucket: str, kind: str, params: dict[str, str]) -> tuple[set[str], int]:
    """Answer a question with S3 alone: keys carry the UTC day, metadata the rest."""
    if kind == "customer":
        return s3_scan(
            s3,
            bucket,
            ["recordings/"],
            lambda meta: meta.get("customer-id") == params["customer_id"],
        )
    first = dt.datetime.combine(dt.date.fromisoformat(params["from"]), dt.time(), TZ)
    last = dt.datetime.combine(dt.date.fromisoformat(params["to"]), dt.time(), TZ)
    start, end = first.astimezone(dt.UTC), last.astimezone(dt.UTC)
    days = {(start + dt.timedelta(days=n)).date() for n in range((end - start).days + 1)}
    days |= {(end - dt.timedelta(microseconds=1)).date()}
    prefixes = sorted(f"recordings/{day:%Y/%m/%d}/" for day in days)

    def wanted(meta: dict[str, str]) -> bool:
        at = dt.datetime.fromisoformat(meta["started-at"])
        return start <= at < end and params["reason"] in meta["reasons"].split(",")

    return s3_scan(s3, bucket, prefixes, wanted)


# --- running it all --------------------------------------------------------------------


def verify_audit(config: Path) -> str:
    """Whether the audit chain the benchmark appended to is intact."""
    from recarchive.access.audit import verify_chain
    from recarchive.config import load_settings
    from recarchive.runtime import Runtime

    runtime = Runtime(load_settings(config, env=clean_environment(False)))
    try:
        report = verify_chain(runtime.sessions)
    finally:
        runtime.close()
    if report.intact:
        return f"audit chain intact ({report.entries} entries)"
    return f"AUDIT CHAIN BROKEN at entry {report.broken_at} of {report.entries}: {report.problem}"


def run_backend(
    backend: str, options: argparse.Namespace, work: Path, wav_paths: list[Path], anchor: dt.date
) -> tuple[list[Figures], str]:
    cache = cache_for(options)
    if backend == "sqlite":
        population = build_sqlite(options, wav_paths, anchor)
        database = work / "catalogue.db"
        print(f"sqlite: copying the cached catalogue to {database}")
        shutil.copyfile(cache / "catalogue.db", database)
        url, cleanup = f"sqlite:///{database}", None
    else:
        name = f"recarchive_bench_{uuid.uuid4().hex[:10]}"
        url, population = build_postgresql(options, name, wav_paths, anchor)
        cleanup = name
    store_audio(cache / "objects", population.playable, wav_paths)
    config = write_config(
        work, backend, url, {"backend": "filesystem", "root": str(cache / "objects")}
    )
    try:
        server = start_server(backend, config, workers=options.workers)
        try:
            figures = measure_backend(server, population, options)
        finally:
            server.stop()
        return figures, verify_audit(config)
    finally:
        if cleanup and not options.keep:
            drop_postgresql(options, cleanup)
        elif cleanup:
            print(f"postgresql: kept database {cleanup}")


def target(f: Figures) -> tuple[str, bool]:
    """The target for this backend and load, and whether the figures meet it."""
    if f.load == "1 client":
        p50, p99 = TARGET_ALONE_MS
        return f"p50 < {p50:g}, p99 < {p99:g} ms", f.p50 < p50 and f.p99 < p99
    if f.load.endswith("paced"):
        return f"p99 < {TARGET_PACED_P99_MS:g} ms", f.p99 < TARGET_PACED_P99_MS
    rate = TARGET_CLOSED_PER_S.get(f.backend, TARGET_CLOSED_PER_S["postgresql"])
    return f">= {rate:g}/s", f.rate >= rate


def print_table(figures: list[Figures]) -> None:
    print()
    print(
        f"{'backend':<11}{'query':<24}{'load':>12}{'requests':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'mean ms':>9}{'req/s':>8}  target (issue 18)"
    )
    for f in figures:
        wanted, met = target(f)
        print(
            f"{f.backend:<11}{LABELS[f.kind]:<24}{f.load:>12}{len(f.latencies):>9}"
            f"{f.p50:>9.1f}{f.p99:>9.1f}{f.mean:>9.1f}{f.rate:>8.1f}  "
            f"{'yes' if met else 'NO'} ({wanted})"
        )


def print_bucket(rows: list[dict[str, Any]], options: argparse.Namespace) -> None:
    print(
        f"\nS3 alone (list + HEAD each object, 16 threads) against the catalogue (API, "
        f"all pages), {options.bucket_recordings:,} recordings:\n"
        f"{'query':<25}{'found':>6}{'HEADs':>7}{'S3 s':>9}{'catalogue ms':>14}{'ratio':>9}"
    )
    for row in rows:
        print(
            f"{LABELS[row['kind']]:<25}{row['results']:>6}{row['heads']:>7}{row['s3_s']:>9.2f}"
            f"{row['catalogue_s'] * 1000:>14.1f}{row['ratio']:>9,.0f}"
        )
    heads = sum(r["heads"] for r in rows if r["kind"] == "customer")
    seconds = sum(r["s3_s"] for r in rows if r["kind"] == "customer")
    if heads and seconds:
        estimate = options.recordings / (heads / seconds)
        spelled = f"{estimate / 60:,.0f} min" if estimate >= 120 else f"{estimate:.0f} s"
        print(
            f"at {heads / seconds:,.0f} HEADs/s, one customer's calls among "
            f"{options.recordings:,} objects would take {spelled} with S3 alone"
        )


# fmt: off
#: Options whose default depends on --quick: name, full run, --quick, help.
SIZES = [
    ("recordings", 1_000_000, 20_000, "calls in the catalogue"),
    ("clients", 50, 10, "concurrent keep-alive clients"),
    ("requests", 2000, 200, "measured requests per query type"),
    ("warmup", 200, 30, "warm-up requests per query type"),
    ("alone", 200, 50, "requests per query type sent one at a time, 0 to skip"),
    ("paced", 300, 20, "requests per query type sent at --rate, 0 to skip"),
    ("playable", 500, 200, "calls with real audio"),
    ("bucket-recordings", 5000, 500, "recordings in the S3 comparison"),
    ("bucket-queries", 3, 1, "questions of each kind in the S3 comparison"),
]


def parse_options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller defaults, for a try-out")
    for name, full, quick, text in SIZES:
        parser.add_argument(f"--{name}", type=int, help=f"{text} ({full:,}; --quick {quick:,})")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both",
                        help="catalogue backend(s) to measure")
    parser.add_argument("--rate", type=float, default=10.0,
                        help="arrivals per second of the paced phase (open loop, Poisson; "
                        "10: 50 staff searching every 5 s)")
    parser.add_argument("--workers", type=int, default=1,
                        help="API processes (recarchive serve --workers); the breakdown needs 1")
    parser.add_argument("--no-bucket", action="store_true", help="skip the S3 comparison")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated data")
    parser.add_argument("--postgres-url", default=os.environ.get(
                            "RECARCHIVE_TEST_POSTGRES_URL",
                            "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
                        help="PostgreSQL account that may create recarchive_bench_* databases")
    parser.add_argument("--cache-dir", type=Path, default=REPO / "var" / "bench",
                        help="where built SQLite catalogues and audio are kept")
    parser.add_argument("--work", type=Path, help="work directory (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the PostgreSQL database and the work directory")
    parser.add_argument("--breakdown", action="store_true",
                        help="print where the server spent its time in each phase")
    parser.add_argument("--explain", action="store_true",
                        help="with --breakdown: plans of the slowest statements (one client)")
    parser.add_argument("--api-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    for name, full, quick, _text in SIZES:
        if getattr(options, name.replace("-", "_")) is None:
            setattr(options, name.replace("-", "_"), quick if options.quick else full)
    options.playable = max(1, min(options.playable, options.recordings // 10))
    return options


# fmt: on


def main() -> None:
    options = parse_options()
    if options.api_child:
        serve(options.api_child, options.port, options.workers)
        return
    bucket = not options.no_bucket
    if bucket and not os.environ.get("RECARCHIVE_S3_ENDPOINT_URL"):
        print(
            "S3 comparison skipped: RECARCHIVE_S3_ENDPOINT_URL is not set "
            '(eval "$(scripts/s3-server start)"), or pass --no-bucket'
        )
        bucket = False
    if bucket:  # the endpoint without its keys: one line, exit status 2
        from bench_s3 import require_environment

        require_environment("bench_lookup.py")
    work = options.work or Path(tempfile.mkdtemp(prefix="recarchive-bench-lookup-"))
    work.mkdir(parents=True, exist_ok=True)
    backends = ["sqlite", "postgresql"] if options.backend == "both" else [options.backend]
    print(f"recarchive at {describe_checkout()}")
    print(
        f"{options.recordings:,} recordings, {options.clients} clients, {options.requests} "
        f"requests per query type, backends {', '.join(backends)}; work {work}"
    )
    figures: list[Figures] = []
    audits: dict[str, str] = {}
    bucket_rows: list[dict[str, Any]] = []
    try:
        wav_paths = make_wavs(options.cache_dir / "wavs")
        anchor = anchor_for(options)
        for backend in backends:
            results, audits[backend] = run_backend(backend, options, work, wav_paths, anchor)
            figures += results
        if bucket:
            print(f"S3 comparison on {options.bucket_recordings:,} recordings")
            bucket_rows = bucket_comparison(options, work, anchor)
    except BenchFailure as failure:
        sys.exit(f"benchmark aborted: {failure}")
    finally:
        if bucket:
            from bench_s3 import remove_buckets

            remove_buckets()
        if not options.keep and not options.work:
            shutil.rmtree(work, ignore_errors=True)
    print_table(figures)
    for backend, audit in audits.items():
        print(f"{backend}: {audit}")
    if RETRIED:
        print(
            f"{len(RETRIED)} requests sent twice (keep-alive connection closed by the "
            f"server as it was reused): {'; '.join(RETRIED[:3])}"
        )
    if bucket_rows:
        print_bucket(bucket_rows, options)
    summary: dict[str, Any] = {
        f"{f.backend}_{f.kind}_{f.key}": {
            "p50_ms": round(f.p50, 1), "p99_ms": round(f.p99, 1), "per_s": round(f.rate, 1),
            "target_met": target(f)[1],
        }
        for f in figures
    }  # fmt: skip
    summary["s3_ratio_median"] = {
        kind: round(statistics.median(r["ratio"] for r in bucket_rows if r["kind"] == kind))
        for kind in sorted({r["kind"] for r in bucket_rows})
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
