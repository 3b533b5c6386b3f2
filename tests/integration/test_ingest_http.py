"""Ingest from a Twilio-style Recordings REST API, end to end.

A small HTTP server started by the tests plays the API (basic auth, paging by
``next_page_uri``, Calls, media, DELETE) with real audio made by ffmpeg; the
pipeline runs the way ``recarchive ingest --once`` does, on SQLite and
PostgreSQL, with the filesystem store.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import subprocess
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from recarchive.catalogue.database import create_catalogue_engine
from recarchive.catalogue.intake import QuarantineEntry
from recarchive.catalogue.migrate import upgrade_schema
from recarchive.catalogue.models import Direction, Recording
from recarchive.config import Settings, load_settings
from recarchive.ingest.interfaces import CallFacts, Discovery, SourceError
from recarchive.ingest.sources import build_sources
from recarchive.ingest.sources.http import HttpSource
from recarchive.ingest.tasks import IngestIncomplete, run_ingest
from recarchive.runtime import Runtime

ACCOUNT = "AC" + "1f" * 16
TOKEN = "test-auth-token-5d41402abc4b2a76"
API = f"/2010-04-01/Accounts/{ACCOUNT}"


def sid(prefix: str, n: int) -> str:
    return f"{prefix}{n:032x}"


INBOUND, OUTBOUND, CUT, PROCESSING, GONE, ABSENT = (sid("RE", n) for n in range(1, 7))
BAD_SID = "RE../../Calls/CA00000000000000000000000000000001"
CALLS = {
    INBOUND: ("+358401234567", "+358201234000", "inbound"),
    OUTBOUND: ("+358201234000", "0509998888", "outbound-dial"),
    CUT: ("+358441112233", "+358201234000", "inbound"),
    PROCESSING: ("+358441112234", "+358201234000", "inbound"),
    GONE: ("+358441112235", "+358201234000", "inbound"),
    ABSENT: ("+358441112236", "+358201234000", "inbound"),
}
STATUS = {PROCESSING: "processing", ABSENT: "absent"}


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(HttpSource, "retry_delays_s", (0.01, 0.01, 0.01))


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    base = tmp_path_factory.mktemp("media")
    tone = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000:duration=1", "-ac", "1"]
    ffmpeg(*tone, "-c:a", "pcm_s16le", str(base / "a.wav"))
    ffmpeg(*tone, "-c:a", "libmp3lame", "-b:a", "32k", str(base / "a.mp3"))
    return {"wav": (base / "a.wav").read_bytes(), "mp3": (base / "a.mp3").read_bytes()}


class FakeApi:
    """State of the fake API; every request is recorded as ``(method, path?query)``."""

    def __init__(self, media: dict[str, bytes]) -> None:
        self.media = media
        self.listed = [BAD_SID, *CALLS]
        self.cut_once = {CUT}
        self.cut_always = False
        self.requests: list[tuple[str, str]] = []
        self.deleted: list[str] = []
        self.on_delete: Callable[[str], None] = lambda _sid: None
        self.lock = threading.Lock()

    def listing(self, query: dict[str, list[str]]) -> dict[str, object]:
        size, page = int(query["PageSize"][0]), int(query.get("Page", ["0"])[0])
        with self.lock:
            rows = self.listed[page * size : (page + 1) * size]
            more = len(self.listed) > (page + 1) * size
        entries = [
            {
                "sid": s,
                "call_sid": "CA" + s[2:],
                "status": STATUS.get(s, "completed"),
                "start_time": "Sat, 14 Mar 2026 09:26:53 +0000",
                "duration": "1",
            }
            for s in rows
        ]
        next_uri = f"{API}/Recordings.json?PageSize={size}&Page={page + 1}&PageToken=PA{page + 1}"
        return {
            "recordings": entries,
            "next_page_uri": next_uri if more else None,
            "page": page,
            "page_size": size,
            "uri": f"{API}/Recordings.json?PageSize={size}&Page={page}",
        }

    def count(self, method: str, part: str) -> int:
        return sum(1 for m, path in self.requests if m == method and part in path)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ApiServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def reply(self, status: int, body: bytes = b"", kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def route(self, method: str) -> None:
        api = self.server.api
        url = urllib.parse.urlsplit(self.path)
        with api.lock:
            api.requests.append((method, self.path))
        expected = "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.reply(401, b'{"code": 20003, "message": "Authenticate", "status": 401}')
            return
        name = url.path.removeprefix(f"{API}/")
        stem, _, ext = name.rpartition("/")[2].partition(".")
        if method == "GET" and name == "Recordings.json":
            query = urllib.parse.parse_qs(url.query)
            self.reply(200, json.dumps(api.listing(query)).encode())
        elif method == "GET" and name.startswith("Calls/") and "RE" + stem[2:] in CALLS:
            caller, called, direction = CALLS["RE" + stem[2:]]
            call = {"sid": stem, "from": caller, "to": called, "direction": direction}
            self.reply(200, json.dumps(call).encode())
        elif method == "GET" and name.startswith("Recordings/") and stem in CALLS and stem != GONE:
            data = api.media[ext]
            if stem in api.cut_once or api.cut_always:
                api.cut_once.discard(stem)
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 3])
                self.close_connection = True
                return
            self.reply(200, data, "audio/x-wav" if ext == "wav" else "audio/mpeg")
        elif method == "DELETE" and name.startswith("Recordings/") and ext == "json":
            with api.lock:
                present = stem in api.listed
                if present:
                    api.listed.remove(stem)
                    api.deleted.append(stem)
            if present:
                api.on_delete(stem)
            self.reply(204 if present else 404)
        else:
            self.reply(404, b'{"status": 404}')

    def do_GET(self) -> None:
        self.route("GET")

    def do_DELETE(self) -> None:
        self.route("DELETE")


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, api: FakeApi) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.api = api


@pytest.fixture
def api(media: dict[str, bytes]) -> Iterator[tuple[FakeApi, str]]:
    fake = FakeApi(media)
    server = ApiServer(fake)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def catalogue(empty_catalogue_url: str) -> str:
    engine = create_catalogue_engine(empty_catalogue_url)
    upgrade_schema(engine)
    engine.dispose()
    return empty_catalogue_url


def make_settings(
    tmp_path: Path, catalogue: str, base_url: str, *, token: str = TOKEN, extra: str = ""
) -> Settings:
    config = tmp_path / "recarchive.toml"
    config.write_text(
        f'[general]\ndata_dir = "{tmp_path / "var"}"\n'
        f'[catalogue]\nurl = "{catalogue}"\n'
        '[storage]\nbackend = "filesystem"\n'
        "[ingest]\nsettle_s = 0\nlease_s = 60\n"
        f'[[sources]]\nkind = "http"\nname = "cloud-pbx"\nbase_url = "{base_url}"\n'
        f'account_sid = "{ACCOUNT}"\npage_size = 2\ntimeout_s = 5\n{extra}',
        encoding="utf-8",
    )
    settings = load_settings(config, env={"RECARCHIVE_SOURCE_CLOUD_PBX_TOKEN": token})
    Runtime(settings).store.create()
    return settings


def archived(settings: Settings) -> dict[str, Recording]:
    runtime = Runtime(settings)
    try:
        with runtime.sessions() as session:
            return {r.source_ref: r for r in session.scalars(select(Recording))}
    finally:
        runtime.close()


def quarantined(settings: Settings) -> dict[str, str]:
    runtime = Runtime(settings)
    try:
        with runtime.sessions() as session:
            return {e.source_ref: e.reason for e in session.scalars(select(QuarantineEntry))}
    finally:
        runtime.close()


def test_api_pass_archives_completed_recordings_and_leaves_the_rest(
    api: tuple[FakeApi, str], catalogue: str, tmp_path: Path, media: dict[str, bytes]
) -> None:
    fake, url = api
    settings = make_settings(tmp_path, catalogue, url)
    summary = run_ingest(settings, once=True)

    assert summary.archived == 3
    rows = archived(settings)
    assert set(rows) == {INBOUND, OUTBOUND, CUT}
    inbound, outbound = rows[INBOUND], rows[OUTBOUND]
    assert inbound.direction is Direction.INBOUND
    assert (inbound.caller_number, inbound.called_number) == ("+358401234567", "+358201234000")
    assert inbound.call_id == "CA" + INBOUND[2:]
    assert outbound.direction is Direction.OUTBOUND
    assert outbound.called_number == "+358509998888"
    expected_sha = hashlib.sha256(media["wav"]).hexdigest()
    store = Runtime(settings).store
    for row in rows.values():
        assert row.sha256 == expected_sha, "the cut-short download was not retried whole"
        with store.get(row.object_key) as reader:
            assert hashlib.sha256(reader.read()).hexdigest() == expected_sha
        assert row.started_at.isoformat() == "2026-03-14T09:26:53+00:00"
    assert fake.count("GET", f"Recordings/{CUT}.wav") == 2

    reasons = quarantined(settings)
    assert reasons[GONE] == "recording_gone"
    assert reasons[ABSENT] == "source_recording_failed"
    [bad] = [ref for ref, reason in reasons.items() if reason == "invalid_name"]
    assert "RE.." in bad
    assert PROCESSING not in reasons
    assert PROCESSING not in rows
    assert not any(".." in path or "%2E%2E" in path.upper() for _m, path in fake.requests)
    called = {path.rpartition("/")[2] for m, path in fake.requests if "/Calls/" in path}
    assert called == {f"CA{s[2:]}.json" for s in (INBOUND, OUTBOUND, CUT, GONE)}
    assert fake.deleted == [], "deleted although delete_after_archive is false"
    assert not list((tmp_path / "var" / "work").iterdir()), "temporary downloads left"


def test_second_pass_archives_nothing_and_looks_up_no_known_call(
    api: tuple[FakeApi, str], catalogue: str, tmp_path: Path
) -> None:
    fake, url = api
    settings = make_settings(tmp_path, catalogue, url, extra='media_format = "mp3"\n')
    assert run_ingest(settings, once=True).archived == 3
    assert {r.format for r in archived(settings).values()} == {"mp3"}
    before = len(fake.requests)

    again = run_ingest(settings, once=True)

    assert again.archived == 0
    assert sum(again.quarantined.values()) == 0
    assert fake.count("GET", "/Calls/") == 4, "call details asked again for known recordings"
    assert all("/Recordings.json" in path for _m, path in fake.requests[before:])


def test_delete_after_archive_deletes_only_archived_recordings(
    api: tuple[FakeApi, str], catalogue: str, tmp_path: Path
) -> None:
    fake, url = api
    settings = make_settings(tmp_path, catalogue, url, extra="delete_after_archive = true\n")
    archived_when_deleted: dict[str, bool] = {}
    fake.on_delete = lambda s: archived_when_deleted.update({s: s in archived(settings)})

    run_ingest(settings, once=True)

    assert sorted(fake.deleted) == sorted([INBOUND, OUTBOUND, CUT])
    assert archived_when_deleted == dict.fromkeys(fake.deleted, True)
    assert {PROCESSING, GONE, ABSENT} <= set(fake.listed)


def test_recordings_archived_earlier_are_deleted_once_deletion_is_enabled(
    api: tuple[FakeApi, str], catalogue: str, tmp_path: Path
) -> None:
    fake, url = api
    run_ingest(make_settings(tmp_path, catalogue, url), once=True)
    lookups = fake.count("GET", "/Calls/")

    settings = make_settings(tmp_path, catalogue, url, extra="delete_after_archive = true\n")
    summary = run_ingest(settings, once=True)

    assert sorted(fake.deleted) == sorted([INBOUND, OUTBOUND, CUT])
    assert summary.archived == 0
    assert summary.duplicates == 3
    assert fake.count("GET", "/Calls/") == lookups
    assert len(archived(settings)) == 3


def test_wrong_token_is_a_clear_error_and_archives_nothing(
    api: tuple[FakeApi, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake, url = api
    wrong = "wrong-token-9f86d081884c7d659a2f"
    catalogue = f"sqlite:///{tmp_path / 'catalogue.db'}"
    upgrade_schema(engine := create_catalogue_engine(catalogue))
    engine.dispose()
    settings = make_settings(tmp_path, catalogue, url, token=wrong)

    with (
        caplog.at_level(logging.ERROR, logger="recarchive"),
        pytest.raises(IngestIncomplete, match="cloud-pbx could not be read") as stopped,
    ):
        run_ingest(settings, once=True)
    summary = stopped.value.summary
    assert summary.archived == 0
    assert summary.discovered == 0
    assert "HTTP 401" in summary.unreadable_sources["cloud-pbx"]
    [record] = [r for r in caplog.records if r.getMessage() == "source_unreadable"]
    error = str(getattr(record, "error", ""))
    assert "cloud-pbx" in error
    assert "HTTP 401" in error
    assert "RECARCHIVE_SOURCE_CLOUD_PBX_TOKEN" in error
    assert wrong not in caplog.text

    source = build_sources(settings)["cloud-pbx"]
    with pytest.raises(SourceError, match="HTTP 401") as raised:
        list(source.discover(dt.datetime.now(dt.UTC), lambda refs: {}))
    assert wrong not in str(raised.value)
    assert fake.count("GET", "/Calls/") == 0


def test_download_cut_short_every_time_fails_cleanly(
    api: tuple[FakeApi, str], tmp_path: Path
) -> None:
    fake, url = api
    fake.cut_always = True
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'unused.db'}", url)
    source = build_sources(settings)["cloud-pbx"]
    work = tmp_path / "work"
    work.mkdir()
    facts = CallFacts(started_at=dt.datetime(2026, 3, 14, tzinfo=dt.UTC))

    with pytest.raises(SourceError, match="download truncated") as raised:
        source.fetch(Discovery(INBOUND, facts, "wav"), work)

    assert "after 4 attempts" in str(raised.value)
    assert TOKEN not in str(raised.value)
    assert not list(work.iterdir()), "the partial download was left behind"
