"""A Twilio-style Recordings REST API.

Relative to ``base_url``, under ``/2010-04-01/Accounts/<AccountSid>``:
``Recordings.json`` lists recordings page by page (``next_page_uri``),
``Calls/<CallSid>.json`` tells the call's numbers and direction,
``Recordings/<Sid>.wav`` (or ``.mp3``) is the audio and ``DELETE
Recordings/<Sid>.json`` removes it. Requests use HTTP basic auth with the
account sid and its token (``RECARCHIVE_SOURCE_<NAME>_TOKEN``).

The source reference is the Recording Sid. Sids are checked against their
published shape (``RE`` or ``CA`` and 32 hex digits) before they go into a
URL: anything else is quarantined as ``invalid_name`` and never requested.
Only ``completed`` recordings are taken; ``absent`` and ``failed`` ones are
reported once. Recordings the archive already knows are not looked up again;
with ``delete_after_archive`` they are deleted at the source, only after the
archive acknowledges them. Messages and logs carry sids, never numbers or
the token.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import re
import ssl
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx

from recarchive.catalogue.models import Direction
from recarchive.config import HttpSourceSettings, Settings
from recarchive.errors import ConfigError, SecretMissing
from recarchive.ingest.interfaces import (
    CallFacts,
    Discovery,
    Fetched,
    KnownRefs,
    Problem,
    RecordingGone,
    SourceError,
)
from recarchive.ingest.sources import source_secret, source_secret_variable
from recarchive.private_files import open_private

logger = logging.getLogger(__name__)

RECORDING_SID = re.compile(r"^RE[0-9a-f]{32}$")
CALL_SID = re.compile(r"^CA[0-9a-f]{32}$")
ACCOUNT_SID = re.compile(r"^AC[0-9a-f]{32}$")
_TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: Statuses of a recording that will never become ``completed``: reported once.
_FAILED_STATUSES = frozenset({"absent", "failed"})
_DIRECTIONS = {
    "inbound": Direction.INBOUND,
    "outbound-api": Direction.OUTBOUND,
    "outbound-dial": Direction.OUTBOUND,
}
_MAX_RETRY_AFTER_S = 30.0
_MAX_PAGES = 100_000
#: Call lookups failing one after another before the pass gives up on the source.
_MAX_LOOKUP_FAILURES = 3
_CHUNK = 1024 * 1024
_T = TypeVar("_T")


class _Transient(Exception):
    """A request that failed in a way worth retrying; the message says how."""

    def __init__(self, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.detail, self.retry_after = detail, retry_after


class _AccessDenied(SourceError):
    """The API refused the account's credentials."""


class HttpSource:
    """Pulls recordings from a Twilio-style REST API; see the module docstring."""

    #: Pauses before each retry of a request that failed transiently.
    retry_delays_s: tuple[float, ...] = (0.5, 2.0, 5.0)

    def __init__(self, settings: HttpSourceSettings, *, token: str) -> None:
        if not ACCOUNT_SID.match(settings.account_sid):
            raise ConfigError(f"source {settings.name}: account_sid must be AC and 32 hex digits")
        if not settings.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"source {settings.name}: base_url must be an http(s) URL")
        self.name = settings.name
        self.settings = settings
        self._token = token
        self._api = f"/2010-04-01/Accounts/{settings.account_sid}"
        self._lookups_failed = 0  # call lookups failed in a row in this pass
        self._tls: ssl.SSLContext | None = None  # built once: loading the CAs is slow

    @classmethod
    def from_settings(cls, config: HttpSourceSettings, settings: Settings) -> HttpSource:
        token = source_secret(settings, config.name, "TOKEN")
        if token is None:
            variable = source_secret_variable(config.name, "TOKEN")
            raise SecretMissing(
                f"source {config.name}: the API token is not set: set {variable} or {variable}_FILE"
            )
        return cls(config, token=token)

    def _client(self) -> httpx.Client:
        """A client for one pass or one download: no connection outlives its use."""
        self._tls = self._tls or httpx.create_ssl_context()
        timeout = self.settings.timeout_s
        return httpx.Client(
            base_url=self.settings.base_url,
            auth=httpx.BasicAuth(self.settings.account_sid, self._token),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            verify=self._tls,
            headers={"User-Agent": "recarchive"},
            follow_redirects=True,  # media may be served elsewhere; httpx drops auth there
        )

    # --- requests --------------------------------------------------------------

    def _retrying(self, attempt: Callable[[], _T], what: str) -> _T:
        """``attempt()``, again after a pause while it fails transiently."""
        for number, pause in enumerate((*self.retry_delays_s, None), start=1):
            try:
                return attempt()
            except _Transient as failure:
                if pause is None:
                    raise SourceError(
                        f"source {self.name}: {what} failed: {failure.detail} "
                        f"(after {number} attempts)"
                    ) from failure
                logger.info(
                    "source_request_retry",
                    extra={"source": self.name, "request": what, "error": failure.detail},
                )
                time.sleep(max(pause, failure.retry_after or 0.0))
        raise AssertionError("unreachable")  # pragma: no cover

    def _request(self, client: httpx.Client, method: str, path: str, what: str) -> httpx.Response:
        def attempt() -> httpx.Response:
            try:
                response = client.request(method, path, headers={"Accept": "application/json"})
            except httpx.TransportError as exc:
                raise _Transient(_transport_detail(exc)) from exc
            if response.status_code in _TRANSIENT_STATUSES:
                raise _Transient(f"HTTP {response.status_code}", _retry_after(response))
            return response

        return self._retrying(attempt, what)

    def _refused(self, response: httpx.Response, what: str) -> SourceError:
        status = response.status_code
        if status in (401, 403):
            return _AccessDenied(
                f"source {self.name}: the API at {self.settings.base_url} refused the "
                f"credentials of account {self.settings.account_sid} (HTTP {status}) for "
                f"{what}: check {source_secret_variable(self.name, 'TOKEN')}"
            )
        return SourceError(f"source {self.name}: {what} failed: HTTP {status}")

    def _get_json(self, client: httpx.Client, path: str, what: str) -> Mapping[str, Any] | None:
        """The JSON object at ``path``; None on 404."""
        response = self._request(client, "GET", path, what)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._refused(response, what)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise SourceError(f"source {self.name}: {what}: the answer is not a JSON object")
        return body

    # --- discovery ---------------------------------------------------------------

    def discover(self, now: dt.datetime, known: KnownRefs) -> Iterator[Discovery | Problem]:
        listing = f"{self._api}/Recordings.json"
        path = f"{listing}?PageSize={self.settings.page_size}"
        visited = {path}
        self._lookups_failed = 0
        with self._client() as client:
            while True:
                page = self._get_json(client, path, "listing recordings")
                if page is None:
                    raise SourceError(
                        f"source {self.name}: no recordings listing for account "
                        f"{self.settings.account_sid} (HTTP 404): check base_url and account_sid"
                    )
                entries = page.get("recordings")
                if not isinstance(entries, list):
                    raise SourceError(f"source {self.name}: listing page without 'recordings'")
                yield from self._page(client, entries, known, now)
                next_uri = page.get("next_page_uri")
                if next_uri is None:
                    return
                if not isinstance(next_uri, str) or not next_uri.startswith(f"{listing}?"):
                    raise SourceError(f"source {self.name}: next_page_uri leaves the listing")
                if next_uri in visited or len(visited) >= _MAX_PAGES:
                    raise SourceError(f"source {self.name}: the listing pages go round in a loop")
                visited.add(next_uri)
                path = next_uri

    def _page(
        self, client: httpx.Client, entries: list[Any], known: KnownRefs, now: dt.datetime
    ) -> Iterator[Discovery | Problem]:
        valid: list[tuple[str, Mapping[str, Any]]] = []
        for entry in entries:
            sid = entry.get("sid") if isinstance(entry, dict) else None
            if isinstance(sid, str) and RECORDING_SID.match(sid):
                valid.append((sid, entry))
                continue
            yield Problem(
                _unsafe_ref(sid),
                "invalid_name",
                "listed recording sid is not RE and 32 hex digits; nothing was requested with it",
            )
        states = known([sid for sid, _ in valid]) if valid else {}
        for sid, entry in valid:
            state = states.get(sid)
            if state == "done" and self.settings.delete_after_archive:
                # Minimal facts: enough for the pipeline to prove the bytes and acknowledge.
                started = _rfc2822(entry.get("start_time")) or now
                yield Discovery(sid, CallFacts(started_at=started), self.settings.media_format)
            elif state is None and (found := self._new_recording(client, sid, entry)):
                yield found

    def _new_recording(
        self, client: httpx.Client, sid: str, entry: Mapping[str, Any]
    ) -> Discovery | Problem | None:
        status = entry.get("status")
        if status in _FAILED_STATUSES:
            return Problem(
                sid, "source_recording_failed", f"recording {sid} has status {status} at the source"
            )
        if status != "completed":
            return None  # processing (or still in progress): next pass
        started = _rfc2822(entry.get("start_time"))
        if started is None:
            detail = f"recording {sid}: start_time is not an RFC 2822 date"
            return Problem(sid, "malformed_source_record", detail)
        call_sid = entry.get("call_sid")
        if not isinstance(call_sid, str) or not CALL_SID.match(call_sid):
            detail = f"recording {sid}: call sid is not CA and 32 hex digits; not requested"
            return Problem(sid, "invalid_name", detail)
        what = f"details of call {call_sid}"
        try:
            call = self._get_json(client, f"{self._api}/Calls/{call_sid}.json", what)
        except _AccessDenied:
            raise
        except SourceError as exc:  # skip the call this pass, unless the API is down
            self._lookups_failed += 1
            logger.warning("call_lookup_failed", extra={"source": self.name, "error": exc.message})
            if self._lookups_failed >= _MAX_LOOKUP_FAILURES:
                raise SourceError(f"{exc.message}; several call lookups failed in a row") from exc
            return None
        self._lookups_failed = 0
        if call is None:
            logger.warning("call_details_missing", extra={"source": self.name, "recording": sid})
        return Discovery(
            source_ref=sid,
            facts=_facts(call_sid, started, call or {}),
            extension=self.settings.media_format,
            locator={"call_sid": call_sid},
        )

    # --- fetch and acknowledge ---------------------------------------------------

    def _recording_path(self, discovery: Discovery, suffix: str) -> str:
        if not RECORDING_SID.match(discovery.source_ref):
            raise SourceError(f"source {self.name}: reference is not a recording sid")
        return f"{self._api}/Recordings/{discovery.source_ref}.{suffix}"

    def fetch(self, discovery: Discovery, work_dir: Path) -> Fetched:
        extension = discovery.extension
        if extension not in ("wav", "mp3"):
            raise SourceError(f"source {self.name}: cannot download format {extension!r}")
        path = self._recording_path(discovery, extension)
        what = f"download of recording {discovery.source_ref}"
        target = work_dir / f"download-{uuid.uuid4().hex}.{extension}"
        try:
            with self._client() as client:
                size = self._retrying(lambda: self._download(client, path, target, what), what)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return Fetched(path=target, size=size, temporary=True)

    def _download(self, client: httpx.Client, path: str, target: Path, what: str) -> int:
        """One download attempt into ``target``; returns its size."""
        written, expected = 0, None
        headers = {"Accept": "audio/*", "Accept-Encoding": "identity"}
        try:
            with client.stream("GET", path, headers=headers) as response:
                status = response.status_code
                if status == 404:
                    raise RecordingGone(f"source {self.name}: {what}: HTTP 404, gone")
                if status in _TRANSIENT_STATUSES:
                    raise _Transient(f"HTTP {status}", _retry_after(response))
                if status != 200:
                    raise self._refused(response, what)
                length = response.headers.get("Content-Length", "")
                expected = int(length) if length.isdigit() else None
                with open_private(target) as out:
                    for chunk in response.iter_raw(_CHUNK):
                        out.write(chunk)
                        written += len(chunk)
        except httpx.TransportError as exc:
            if expected is None and not written:
                raise _Transient(_transport_detail(exc)) from exc
            raise _Transient(_truncated(written, expected)) from exc
        except OSError as exc:
            raise SourceError(f"source {self.name}: cannot write {what}: {exc.strerror}") from exc
        if expected is not None and written != expected:
            raise _Transient(_truncated(written, expected))
        return written

    def acknowledge(self, discovery: Discovery) -> None:
        """Delete the recording at the source when ``delete_after_archive`` says so.

        A failed delete is logged, not raised: the recording is still listed
        on the next pass, found archived, and deleted then.
        """
        if not self.settings.delete_after_archive:
            return
        sid = discovery.source_ref
        what = f"delete of recording {sid}"
        try:
            with self._client() as client:
                path = self._recording_path(discovery, "json")
                response = self._request(client, "DELETE", path, what)
            if response.status_code not in (200, 204, 404):  # 404: already gone
                raise self._refused(response, what)
        except SourceError as exc:
            extra = {"source": self.name, "recording": sid, "error": exc.message}
            logger.warning("acknowledge_failed", extra=extra)
            return
        logger.info("source_deleted", extra={"source": self.name, "recording": sid})


def _facts(call_sid: str, started: dt.datetime, call: Mapping[str, Any]) -> CallFacts:
    direction = _DIRECTIONS.get(str(call.get("direction") or ""), Direction.UNKNOWN)
    caller, called = _text(call.get("from")), _text(call.get("to"))
    return CallFacts(
        started_at=started,
        call_id=call_sid,
        direction=direction,
        caller_number=caller,
        called_number=called,
        fields={"did": called} if direction is Direction.INBOUND and called else {},
    )


def _text(value: object) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def _rfc2822(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:  # "-0000": UTC, by RFC 2822
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _unsafe_ref(sid: object) -> str:
    """A quarantine reference for a sid that failed validation (shown, never requested)."""
    text = sid if isinstance(sid, str) else repr(sid)
    return f"invalid-sid:{text.encode('unicode_escape').decode('ascii')[:400]}"


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return min(max(float(response.headers.get("Retry-After", "")), 0.0), _MAX_RETRY_AFTER_S)
    except ValueError:
        return None


def _transport_detail(exc: httpx.TransportError) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _truncated(written: int, expected: int | None) -> str:
    return f"download truncated ({written} of {expected or 'unknown'} bytes received)"
