"""A spool whose CDR is FreePBX's database: real MariaDB, real ffmpeg, real catalogues.

The CDR table is FreePBX 16/17's own (``tests/fixtures/freepbx_cdr.sql``),
in a database of its own per test, read by an account with SELECT on it only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from recarchive.access.models import AuditEvent
from recarchive.catalogue.database import create_catalogue_engine
from recarchive.catalogue.directory import import_directory
from recarchive.catalogue.intake import QuarantineEntry, SourceBookmark, WorkItem
from recarchive.catalogue.migrate import upgrade_schema
from recarchive.catalogue.models import Recording
from recarchive.config import Settings, load_settings
from recarchive.ingest.services import Pipeline
from recarchive.ingest.sources import build_sources
from recarchive.ingest.sources.spool import SpoolSource
from recarchive.ingest.tasks import IngestIncomplete, run_ingest
from recarchive.runtime import Runtime
from tests.conftest import REPO, require_ffmpeg
from tests.mariadb import CdrDatabase, mysql_admin_url

pytestmark = pytest.mark.mysql

PASSWORD_VARIABLE = "RECARCHIVE_SOURCE_PBX_CDR_PASSWORD"
#: Files of calls long over: older than the settle time.
OLD = dt.datetime(2026, 3, 14, 12, 0, tzinfo=dt.UTC).timestamp()
RULES = """
[[reasons.rules]]
code = "billing"
field = "queue"
pattern = "^601$"

[[reasons.rules]]
code = "moving"
field = "userfield"
pattern = "reason=moving"
"""


@pytest.fixture
def cdr_db() -> Iterator[CdrDatabase]:
    database = CdrDatabase(mysql_admin_url())
    yield database
    database.drop()


@pytest.fixture(scope="module")
def tone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_ffmpeg()
    path = tmp_path_factory.mktemp("audio") / "tone.wav"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
         "sine=frequency=440:sample_rate=8000:duration=2", "-ac", "1", str(path)],
        check=True,
    )  # fmt: skip
    return path


def write_config(
    tmp_path: Path, catalogue_url: str, *, cdr: str, spool: Path, extra: str = ""
) -> Path:
    config = tmp_path / "recarchive.toml"
    config.write_text(
        f'[general]\ndata_dir = "{tmp_path / "var"}"\nlog_format = "json"\n'
        f'[catalogue]\nurl = "{catalogue_url}"\n'
        '[storage]\nbackend = "filesystem"\n'
        "[ingest]\nsettle_s = 5\n"
        f"{RULES}"
        "[[sources]]\n"
        f'kind = "spool"\nname = "pbx"\npath = "{spool}"\n{cdr}\n'
        "expect_recording_for_answered = false\n"
        f"{extra}",
        encoding="utf-8",
    )
    return config


def database_settings(
    tmp_path: Path, catalogue_url: str, cdr_db: CdrDatabase, *, password: str | None = None,
    extra: str = "", url: str | None = None,
) -> Settings:  # fmt: skip
    cdr = f'cdr_url = "{url or cdr_db.url}"'
    config = write_config(tmp_path, catalogue_url, cdr=cdr, spool=tmp_path / "monitor", extra=extra)
    secret = cdr_db.password if password is None else password
    return with_store(load_settings(config, env={PASSWORD_VARIABLE: secret}))


def with_store(settings: Settings) -> Settings:
    runtime = Runtime(settings)
    runtime.store.create()
    runtime.close()
    return settings


def migrated(url: str) -> str:
    engine = create_catalogue_engine(url)
    upgrade_schema(engine)
    engine.dispose()
    return url


def put(path: Path, audio: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(audio, path)
    os.utime(path, (OLD, OLD))


@dataclasses.dataclass(frozen=True)
class Call:
    """One call: its CDR row and its FreePBX recording name."""

    uniqueid: str
    calldate: str
    agent: str = "2001"
    userfield: str | bytes = ""
    cnam: bytes = b"Asiakas"

    @property
    def filename(self) -> str:
        stamp = self.calldate.replace("-", "").replace(":", "").replace(" ", "-")
        return f"q-601-0401234567-{stamp}-{self.uniqueid}.wav"

    def row(self) -> dict[str, object]:
        return {
            "calldate": self.calldate,
            "clid": b'"' + self.cnam + b'" <0401234567>',
            "src": "0401234567",
            "dst": "601",
            "dcontext": "ext-queues",
            "channel": f"PJSIP/trunk-{self.uniqueid[-3:]}",
            "dstchannel": f"PJSIP/{self.agent}-{self.uniqueid[-3:]}",
            "lastapp": "Queue",
            "lastdata": "601,t",
            "duration": 32,
            "billsec": 30,
            "disposition": "ANSWERED",
            "amaflags": 3,
            "uniqueid": self.uniqueid,
            "userfield": self.userfield,
            "did": "0201234000",
            "recordingfile": self.filename,
            "cnum": "0401234567",
            "cnam": self.cnam,
            "linkedid": self.uniqueid,
            "sequence": int(self.uniqueid.split(".")[1]),
        }


def deliver(tmp_path: Path, cdr_db: CdrDatabase, tone: Path, *calls: Call) -> None:
    """The PBX writes each call's recording and, as the call ends, its CDR row."""
    for call in calls:
        put(tmp_path / "monitor" / "2026" / "03" / "14" / call.filename, tone)
    cdr_db.insert(call.row() for call in calls)


def archived(runtime_or_settings: Runtime | Settings) -> dict[str, Recording]:
    settings = getattr(runtime_or_settings, "settings", runtime_or_settings)
    runtime = Runtime(settings)
    try:
        with runtime.sessions() as session:
            rows = session.scalars(select(Recording)).all()
            for row in rows:
                _ = row.reasons
            return {Path(row.source_ref).name: row for row in rows}
    finally:
        runtime.close()


def one_pass(pipeline: Pipeline) -> Any:
    summary = pipeline.discover()
    pipeline.drain(summary=summary)
    return summary


def cdr_reader(pipeline: Pipeline) -> Any:
    source = pipeline.sources["pbx"]
    assert isinstance(source, SpoolSource)
    assert source.cdr_database is not None
    return source.cdr_database


# --- the same calls, from Master.csv and from the database ------------------------------


def generate_spool(out: Path) -> dict[str, Any]:
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_calls.py"), "--out", str(out),
         "--layout", "spool", "--count", "14", "--day", "2026-03-14", "--engine", "tones",
         "--min-seconds", "2", "--max-seconds", "3", "--seed", "5", "--customers", "20",
         "--formats", "wav,ulaw,mp3", "--bad", "recording_without_cdr", "--jobs", "2"],
        check=True, capture_output=True,
    )  # fmt: skip
    manifest: dict[str, Any] = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return manifest


@pytest.mark.slow
def test_ingest_from_the_database_matches_ingest_from_master_csv(
    tmp_path: Path, cdr_db: CdrDatabase
) -> None:
    require_ffmpeg()
    generated = tmp_path / "generated"
    manifest = generate_spool(generated)
    cdr_db.load(generated / "cdr" / "cdr.sql")
    assert cdr_db.count() == len(manifest["calls"]) - 1  # all but the recording without CDR

    results: dict[str, dict[str, Recording]] = {}
    for way in ("csv", "database"):
        base = tmp_path / way
        shutil.copytree(generated / "monitor", base / "monitor")
        url = migrated(f"sqlite:///{base / 'catalogue.db'}")
        if way == "csv":
            cdr = f'cdr_path = "{generated / "cdr" / "Master.csv"}"'
            config = write_config(base, url, cdr=cdr, spool=base / "monitor")
            settings = with_store(load_settings(config))
        else:
            settings = database_settings(base, url, cdr_db)
        runtime = Runtime(settings)
        key = settings.secret("identity_hash_key") or ""
        import_directory(runtime.sessions, generated / "customers.csv", hash_key=key)
        runtime.close()
        run_ingest(settings, once=True)
        results[way] = archived(settings)

    from_csv, from_database = results["csv"], results["database"]
    expected = {c["source_ref"].rsplit("/", 1)[-1] for c in manifest["calls"] if c["source_ref"]}
    assert set(from_csv) == expected
    assert set(from_database) == set(from_csv)
    for name, csv_row in from_csv.items():
        row = from_database[name]
        assert row.reason_codes == csv_row.reason_codes, name
        assert row.agent == csv_row.agent, name
        assert row.queue == csv_row.queue, name
        assert (row.customer_id, row.customer_match) == (
            csv_row.customer_id,
            csv_row.customer_match,
        ), name
        assert row.direction == csv_row.direction, name
        assert row.started_at == csv_row.started_at, name
        assert row.duration_ms == csv_row.duration_ms, name
        assert row.retain_until == csv_row.retain_until, name
        assert (row.caller_number, row.called_number) == (
            csv_row.caller_number,
            csv_row.called_number,
        ), name
    # Not trivially equal: the CDR said something about most calls.
    assert sum(1 for row in from_database.values() if row.agent) >= len(from_database) // 2
    assert any(row.reason_codes != ["other"] for row in from_database.values())


# --- incremental reading ---------------------------------------------------------------------


def test_each_pass_reads_the_new_rows_and_a_late_row_with_an_older_calldate(
    tmp_path: Path, cdr_db: CdrDatabase, tone: Path, empty_catalogue_url: str
) -> None:
    settings = database_settings(
        tmp_path, migrated(empty_catalogue_url), cdr_db, extra="cdr_window_minutes = 30\n"
    )
    early = Call("1773468000.101", "2026-03-14 08:00:00")
    first = Call("1773475500.105", "2026-03-14 10:05:00", userfield="reason=moving")
    deliver(tmp_path, cdr_db, tone, early, first)
    runtime = Runtime(settings)
    pipeline = Pipeline(runtime, build_sources(settings))
    try:
        summary = one_pass(pipeline)
        assert summary.archived == 2
        reader = cdr_reader(pipeline)
        assert (reader.rows_read, reader.rows_new) == (2, 2)  # no bookmark yet: the whole table

        # A long call that started before `first` ends now: its row arrives late,
        # with an older calldate; and a new call.
        late = Call(
            "1773475080.103", "2026-03-14 09:58:00", agent="2002", userfield="reason=moving"
        )
        later = Call("1773475800.107", "2026-03-14 10:10:00", agent="2003")
        deliver(tmp_path, cdr_db, tone, late, later)
        summary = one_pass(pipeline)

        assert summary.archived == 2
        # From 10:05 less the 30-minute window: `first` again (not new), `late`, `later`.
        assert (reader.rows_read, reader.rows_new) == (3, 2)
        rows = archived(runtime)
        assert rows[late.filename].agent == "2002"
        assert rows[late.filename].reason_codes == ["billing", "moving"]
        assert rows[later.filename].agent == "2003"
        assert rows[later.filename].reason_codes == ["billing"]
        summary = one_pass(pipeline)
        assert (summary.discovered, reader.rows_new) == (0, 0)
    finally:
        runtime.close()
    with runtime.sessions() as session:
        bookmark = session.get(SourceBookmark, "pbx")
        assert bookmark is not None
        assert bookmark.value["calldate"] == "2026-03-14 10:10:00"


def test_a_restarted_ingest_resumes_from_the_bookmark_without_duplicates(
    tmp_path: Path, cdr_db: CdrDatabase, tone: Path, empty_catalogue_url: str
) -> None:
    settings = database_settings(
        tmp_path, migrated(empty_catalogue_url), cdr_db, extra="cdr_window_minutes = 30\n"
    )
    config = tmp_path / "recarchive.toml"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RECARCHIVE_")},
        PASSWORD_VARIABLE: cdr_db.password,
        "PYTHONPATH": str(REPO),
    }

    def ingest_process() -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "recarchive", "--config", str(config), "-v", "ingest", "--once",
             "--json"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        reads = [
            json.loads(line)
            for line in done.stderr.splitlines()
            if line.startswith("{") and '"cdr_rows_read"' in line
        ]
        assert cdr_db.password not in done.stderr + done.stdout
        return {"summary": json.loads(done.stdout.splitlines()[-1]), "reads": reads}

    deliver(
        tmp_path, cdr_db, tone,
        Call("1773468000.101", "2026-03-14 08:00:00"),
        Call("1773475500.105", "2026-03-14 10:05:00"),
    )  # fmt: skip
    # A row Asterisk wrote without a uniqueid: reported once, by the same name after the restart.
    cdr_db.insert([{"calldate": "2026-03-14 10:06:00", "disposition": "ANSWERED", "sequence": 9}])
    first = ingest_process()
    assert first["summary"]["archived"] == 2
    assert first["summary"]["quarantined"] == {"malformed_cdr": 1}
    assert [(r["rows"], r["new_rows"]) for r in first["reads"]] == [(3, 3)]

    late = Call("1773475080.103", "2026-03-14 09:58:00", agent="2002", userfield="reason=moving")
    deliver(tmp_path, cdr_db, tone, late, Call("1773475800.107", "2026-03-14 10:10:00"))
    second = ingest_process()

    # The new process starts at the committed bookmark (10:06) less the window, not at
    # the table's start: the 08:00 row is not read again.
    assert [(r["rows"], r["new_rows"]) for r in second["reads"]] == [(4, 4)]
    assert second["summary"]["archived"] == 2
    assert second["summary"]["duplicates"] == 0
    assert second["summary"]["quarantined"] == {}
    rows = archived(settings)
    assert len(rows) == 4
    assert rows[late.filename].agent == "2002"
    assert rows[late.filename].reason_codes == ["billing", "moving"]
    runtime = Runtime(settings)
    try:
        with runtime.sessions() as session:
            refs = session.scalars(select(WorkItem.source_ref)).all()
            assert len(refs) == len(set(refs)) == 4
            entries = session.scalars(select(QuarantineEntry)).all()
            assert [(e.reason, e.source_ref) for e in entries] == [
                ("malformed_cdr", f"cdr:{cdr_db.name}.cdr:@2026-03-14 10:06:00#9")
            ]
    finally:
        runtime.close()


# --- outages and configuration errors --------------------------------------------------------


class Relay:
    """A TCP relay in front of the MariaDB server that the test can take down and back up:
    the database going away under a running ingest, without stopping the shared server."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(8)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        """Refuse new connections and cut the open ones."""
        with self._lock:
            if self._listener is not None:
                # shutdown wakes the thread blocked in accept(); close alone would not
                with contextlib.suppress(OSError):
                    self._listener.shutdown(socket.SHUT_RDWR)
                self._listener.close()
                self._listener = None
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            with self._lock:
                self._open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def test_the_database_going_away_pauses_the_source_until_it_is_back(
    tmp_path: Path, cdr_db: CdrDatabase, tone: Path, caplog: pytest.LogCaptureFixture
) -> None:
    relay = Relay((cdr_db.host, cdr_db.port))
    relay.up()
    url = f"mysql+pymysql://{cdr_db.user}@127.0.0.1:{relay.port}/{cdr_db.name}"
    settings = database_settings(
        tmp_path, migrated(f"sqlite:///{tmp_path / 'catalogue.db'}"), cdr_db, url=url,
        extra="cdr_timeout_s = 3\n",
    )  # fmt: skip
    before = Call("1773468000.101", "2026-03-14 08:00:00")
    during = Call("1773475500.105", "2026-03-14 10:05:00", agent="2004", userfield="reason=moving")
    deliver(tmp_path, cdr_db, tone, before)
    runtime = Runtime(settings)
    pipeline = Pipeline(runtime, build_sources(settings))
    caplog.set_level(logging.INFO, logger="recarchive")
    try:
        assert one_pass(pipeline).archived == 1
        relay.down()
        deliver(tmp_path, cdr_db, tone, during)
        for _ in range(3):
            summary = one_pass(pipeline)
            reason = summary.unreadable_sources["pbx"]
            assert "CDR database" in reason
            assert "\n" not in reason
            assert cdr_db.password not in reason
            assert summary.discovered == 0  # not archived from its name meanwhile
        paused = [r for r in caplog.records if r.getMessage() == "paused"]
        assert len(paused) == 1  # reported once, not every pass

        relay.up()
        summary = one_pass(pipeline)
        assert summary.unreadable_sources == {}
        assert summary.archived == 1
        assert [r.getMessage() for r in caplog.records].count("resumed") == 1
        row = archived(runtime)[during.filename]
        assert row.agent == "2004"
        assert row.reason_codes == ["billing", "moving"]
    finally:
        runtime.close()
        relay.down()


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("password", "the server refuses the account (user or password): Access denied"),
        ("table", "no table nosuch"),
        ("database", "the account may not use this database"),
    ],
)
def test_a_wrong_password_table_or_database_is_one_clear_line(
    tmp_path: Path, cdr_db: CdrDatabase, tone: Path, case: str, expected: str
) -> None:
    deliver(tmp_path, cdr_db, tone, Call("1773468000.101", "2026-03-14 08:00:00"))
    url = cdr_db.url if case != "database" else cdr_db.url + "_other"
    settings = database_settings(
        tmp_path, migrated(f"sqlite:///{tmp_path / 'catalogue.db'}"), cdr_db, url=url,
        password="not-the-password" if case == "password" else None,
        extra='cdr_table = "nosuch"\n' if case == "table" else "",
    )  # fmt: skip

    with pytest.raises(IngestIncomplete, match="source\\(s\\) pbx could not be read") as caught:
        run_ingest(settings, once=True)

    reason = caught.value.summary.unreadable_sources["pbx"]
    assert expected in reason
    assert reason.startswith(f"source pbx: CDR database mysql+pymysql://{cdr_db.user}:***@")
    assert "\n" not in reason
    assert "not-the-password" not in reason
    assert cdr_db.password not in reason
    assert caught.value.summary.discovered == 0  # nothing archived from names instead


def test_a_caller_name_that_is_not_utf8_does_not_stop_the_reader(
    tmp_path: Path, cdr_db: CdrDatabase, tone: Path
) -> None:
    latin1 = Call("1773468000.101", "2026-03-14 08:00:00", cnam="Mäkinen Öljy".encode("latin-1"))
    # The bytes of a UTF-8 name stored as they came, and bytes no encoding makes sense of.
    utf8 = Call("1773468060.102", "2026-03-14 08:01:00", cnam="Mäkinen".encode(), agent="2002")
    garbage = Call(
        "1773468120.104", "2026-03-14 08:02:00", cnam=b"\xff\xfe\x81 x", agent="2003",
        userfield=b"reason=moving;note=\xe4\xff",
    )  # fmt: skip
    deliver(tmp_path, cdr_db, tone, latin1, utf8, garbage)
    settings = database_settings(
        tmp_path, migrated(f"sqlite:///{tmp_path / 'catalogue.db'}"), cdr_db
    )

    summary = run_ingest(settings, once=True)

    assert summary.archived == 3
    rows = archived(settings)
    assert [rows[c.filename].agent for c in (latin1, utf8, garbage)] == ["2001", "2002", "2003"]
    assert rows[garbage.filename].reason_codes == ["billing", "moving"]


LATE_RULES = """cdr_wait_s = 0
[[retention.rules]]
name = "moving-cases"
field = "reason"
values = ["moving"]
days = 500
"""


@pytest.mark.parametrize("process", ["same", "new"])
def test_a_row_inserted_after_its_recording_was_archived_from_its_name_enriches_it(
    tmp_path: Path, cdr_db: CdrDatabase, tone: Path, process: str
) -> None:
    """The row comes after the recording was archived from its name; the next pass (of
    the same process, or of a new one from the bookmark) enriches it, audited, once."""
    url = migrated(f"sqlite:///{tmp_path / 'catalogue.db'}")
    settings = database_settings(tmp_path, url, cdr_db, extra=LATE_RULES)
    early = Call("1773478800.300", "2026-03-14 10:00:00")
    late = Call("1773479400.301", "2026-03-14 10:10:00", agent="2007", userfield="reason=moving")
    deliver(tmp_path, cdr_db, tone, early)
    put(tmp_path / "monitor" / "2026" / "03" / "14" / late.filename, tone)
    runtime = Runtime(settings)
    try:
        pipeline = Pipeline(runtime, build_sources(settings))
        one_pass(pipeline)
        before = archived(settings)
        assert before[late.filename].facts_from_name
        assert before[late.filename].agent is None
        assert before[late.filename].reason_codes == ["billing"]  # the queue in its name
        assert not before[early.filename].facts_from_name

        cdr_db.insert([late.row()])  # the call's row, at last
        if process == "new":
            pipeline = Pipeline(runtime, build_sources(settings))
        summary = one_pass(pipeline)
        assert summary.enriched == 1
        again = one_pass(pipeline)
        assert again.enriched == 0
        with runtime.sessions() as session:
            entries = session.scalars(
                select(AuditEvent).where(AuditEvent.action == "recording.enriched")
            ).all()
    finally:
        runtime.close()
    after = archived(settings)
    row = after[late.filename]
    assert not row.facts_from_name
    assert row.agent == "2007"
    assert row.reason_codes == ["billing", "moving"]
    assert row.retention_rule == "moving-cases"
    assert row.retain_until == row.started_at + dt.timedelta(days=500)
    assert after[early.filename].updated_at == before[early.filename].updated_at
    [entry] = entries
    assert entry.recording_id == row.id
    assert entry.details["reasons"] == {"before": ["billing"], "after": ["billing", "moving"]}
    assert "0401234567" not in json.dumps(entry.details)
