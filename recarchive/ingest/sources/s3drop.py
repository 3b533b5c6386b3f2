"""An Amazon Connect-style drop: recordings and contact records in an S3 bucket.

Under ``prefix`` in ``bucket``:

- ``CallRecordings/YYYY/MM/DD/<ContactId>_<YYYYMMDDTHH:MM>_UTC.wav``: the
  recording, stereo, customer on the left channel and agent on the right;
- ``ContactTraceRecords/.../<ContactId>*.json``: the contact trace record
  (CTR), delivered at least once, so possibly under several names.

The source reference is the ContactId (a UUID). A recording is taken with
its CTR once that is there. Without a usable CTR it waits (:class:`Waiting`)
until the object is ``record_wait_s`` old, then is archived from what its
key tells (:func:`~recarchive.ingest.sources.s3drop_records.key_facts`) and
logged as such. A CTR that arrives after that is handed to the pipeline
(:class:`LateCdr`), which enriches the recording; each late CTR is read once
per process (with ``delete_after_archive``, deleted once the pass that
handed it over is committed). A CTR still without its recording after 24
hours is reported. Of several CTR copies the first by key gives the facts;
every further copy counts as a duplicate delivery, and with
``delete_after_archive`` all of them go with the recording once the archive
acknowledges it. Object keys hold no personal data; CTR contents (numbers,
agent names) go to the catalogue only, never to logs or messages.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from collections.abc import Generator, Iterator, Mapping
from pathlib import Path
from typing import Any

from recarchive.config import S3DropSourceSettings, Settings
from recarchive.errors import ConfigError, InvalidObjectKey, ObjectNotFound, StoreError
from recarchive.ingest.interfaces import (
    CallFacts,
    Discovery,
    Fetched,
    KnownRefs,
    LateCdr,
    Problem,
    RecordingGone,
    SourceError,
    SourceItem,
    Waiting,
)
from recarchive.ingest.sources import source_secret, source_secret_variable
from recarchive.ingest.sources.s3drop_records import (
    MAX_RECORD_BYTES,
    Malformed,
    key_facts,
    parse_record,
    record_facts,
    stamp,
)
from recarchive.private_files import open_private
from recarchive.storage.interfaces import ObjectInfo, validate_key
from recarchive.storage.s3 import S3ObjectStore

logger = logging.getLogger(__name__)

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_RECORDING_KEY = re.compile(r"^CallRecordings/\d{4}/\d{2}/\d{2}/(?P<name>[^/]+)$")
_RECORDING_NAME = re.compile(rf"^(?P<contact>{_UUID})_(?P<stamp>\d{{8}}T\d{{2}}:\d{{2}})_UTC\.wav$")
_CTR_KEY = re.compile(r"^ContactTraceRecords/(?:[^/]+/)*(?P<name>[^/]+)$")
_CTR_NAME = re.compile(rf"^(?P<contact>{_UUID})(?:[^0-9a-fA-F][^/]*)?\.json$")
#: How long a CTR may wait for its recording before it is reported.
_PAIRING_WAIT = dt.timedelta(hours=24)
#: CTRs are only looked at this long after they arrive: to report one without its
#: recording, or to hand a late one over (each is read to tell).
_MISSING_REPORT_WINDOW = dt.timedelta(days=7)
#: A CTR read, by key and last modification: one read per process is enough.
_Read = tuple[str, dt.datetime]


class S3DropSource:
    """Reads an Amazon Connect-style drop bucket; see the module docstring."""

    def __init__(self, settings: S3DropSourceSettings, *, store: S3ObjectStore) -> None:
        prefix = settings.prefix
        if prefix.startswith("/") or "//" in prefix:
            raise ConfigError(f"source {settings.name}: prefix must be a relative key prefix")
        self.name = settings.name
        self.settings = settings
        self.prefix = prefix if not prefix or prefix.endswith("/") else f"{prefix}/"
        self.store = store
        self.wait = dt.timedelta(seconds=settings.record_wait_s)
        #: Late CTRs handed over (or found malformed) in passes the pipeline committed.
        self._settled: set[_Read] = set()
        #: Those of this pass, settled by :meth:`committed`.
        self._read: set[_Read] = set()
        #: Usable late CTRs of this pass whose recording is gone from the drop: with
        #: ``delete_after_archive``, deleted by :meth:`committed`.
        self._to_delete: list[str] = []

    @classmethod
    def from_settings(cls, config: S3DropSourceSettings, settings: Settings) -> S3DropSource:
        """With ``RECARCHIVE_SOURCE_<NAME>_ACCESS_KEY_ID`` / ``_SECRET_ACCESS_KEY`` if set,
        else boto3's default credential chain."""
        key_id = source_secret(settings, config.name, "ACCESS_KEY_ID")
        secret = source_secret(settings, config.name, "SECRET_ACCESS_KEY")
        if (key_id is None) != (secret is None):
            missing = "SECRET_ACCESS_KEY" if secret is None else "ACCESS_KEY_ID"
            raise ConfigError(
                f"source {config.name}: set {source_secret_variable(config.name, missing)} "
                "too, or neither to use the default AWS credential chain"
            )
        store = S3ObjectStore(
            bucket=config.bucket,
            endpoint_url=config.endpoint_url or None,
            region=config.region,
            access_key_id=key_id,
            secret_access_key=secret,
            connect_timeout=settings.s3.connect_timeout_s,
            read_timeout=settings.s3.read_timeout_s,
            max_attempts=settings.s3.max_attempts,
        )
        return cls(config, store=store)

    def _error(self, action: str, exc: StoreError) -> SourceError:
        return SourceError(
            f"source {self.name}: {action} in bucket {self.settings.bucket!r}: {exc.message}"
        )

    # --- discovery -----------------------------------------------------------

    def discover(self, now: dt.datetime, known: KnownRefs) -> Iterator[SourceItem]:
        """The recordings with their CTR (or from their key after the wait), those
        waiting for it, late CTRs (:class:`LateCdr`) and problems."""
        self._read, self._to_delete = set(), []
        recordings: dict[str, ObjectInfo] = {}
        records: dict[str, list[ObjectInfo]] = {}
        for info in self._list("CallRecordings/"):
            found = self._contact(info.key, _RECORDING_KEY, _RECORDING_NAME)
            if found is None:
                yield self._misnamed(info, "CallRecordings/YYYY/MM/DD/<ContactId>_<stamp>_UTC.wav")
            elif found in recordings:
                yield Problem(
                    info.key,
                    "ambiguous_recording",
                    f"contact {found} has another recording, {recordings[found].key}, "
                    "which is taken; this one is left in the drop",
                    kept_at=self._where(info.key),
                )
            else:
                recordings[found] = info
        for info in self._list("ContactTraceRecords/"):
            found = self._contact(info.key, _CTR_KEY, _CTR_NAME)
            if found is None:
                yield self._misnamed(info, "ContactTraceRecords/.../<ContactId>*.json")
            else:
                records.setdefault(found, []).append(info)
        recent = now - _MISSING_REPORT_WINDOW
        alone = {
            contact: copies
            for contact, copies in records.items()
            if contact not in recordings and max(c.last_modified for c in copies) >= recent
        }
        states = known([*recordings, *alone]) if recordings or alone else {}
        for contact, info in recordings.items():
            yield from self._recording(contact, info, records.get(contact, []), states, now)
        for contact, copies in alone.items():
            state = states.get(contact)
            if state == "done":  # archived, its recording gone from the drop since
                yield from self._late_records(contact, None, copies, now)
            elif state is None and recent <= copies[0].last_modified <= now - _PAIRING_WAIT:
                yield from self._record_without_recording(contact, copies)

    def committed(self) -> None:
        """The pipeline committed this pass and applied its late CTRs: they are not read
        again by this process, and with ``delete_after_archive`` those whose recording
        is gone from the drop are deleted. A failure is logged, not raised (the next
        process reads them again; applying one twice changes nothing)."""
        self._settled |= self._read
        self._read = set()
        keys, self._to_delete = self._to_delete, []
        if not keys or not self.settings.delete_after_archive:
            return
        try:
            failed = len(self.store.delete_many(keys).failed)
        except StoreError as exc:
            extra = {"source": self.name, "count": len(keys), "error": exc.message}
            logger.warning("late_record_delete_failed", extra=extra)
            return
        if failed:
            extra = {"source": self.name, "count": failed, "error": "delete refused"}
            logger.warning("late_record_delete_failed", extra=extra)

    def _list(self, folder: str) -> list[ObjectInfo]:
        try:
            listed = [i for i in self.store.list(self.prefix + folder) if not i.key.endswith("/")]
        except StoreError as exc:
            raise self._error("listing", exc) from exc
        return sorted(listed, key=lambda i: i.key)

    def _where(self, key: str) -> str:
        return f"s3://{self.settings.bucket}/{key}"

    def _misnamed(self, info: ObjectInfo, layout: str) -> Problem:
        detail = f"not named the way the drop names its objects ({layout})"
        return Problem(info.key, "invalid_name", detail, kept_at=self._where(info.key))

    def _malformed(self, info: ObjectInfo, why: str) -> Problem:
        detail = f"contact record {info.key}: {why}"
        return Problem(info.key, "malformed_contact_record", detail, kept_at=self._where(info.key))

    def _contact(self, key: str, layout: re.Pattern[str], name: re.Pattern[str]) -> str | None:
        """The ContactId in ``key`` when the key follows ``layout`` and ``name``, else None."""
        if not key.startswith(self.prefix) or not _valid_key(key):
            return None
        match = layout.match(key[len(self.prefix) :])
        found = name.match(match.group("name")) if match else None
        return found.group("contact") if found else None

    def _recording(
        self,
        contact: str,
        info: ObjectInfo,
        copies: list[ObjectInfo],
        states: Mapping[str, str],
        now: dt.datetime,
    ) -> Iterator[SourceItem]:
        state = states.get(contact)
        if state == "done":
            yield from self._late_records(contact, info, copies, now)
            if self.settings.delete_after_archive:
                yield Discovery(
                    source_ref=contact,
                    facts=CallFacts(started_at=stamp(info.key, now), call_id=contact),
                    extension="wav",
                    locator=_locator(info, copies),
                )
            return
        if state is not None:
            return  # queued or quarantined
        facts, usable = yield from self._usable(contact, copies)
        if facts is None:
            if now - info.last_modified < self.wait:
                yield Waiting(contact, "contact_record")
                return  # the contact record may still come
            facts = key_facts(contact, info.key, info.last_modified)
            logger.warning(
                "archived_without_contact_record",
                extra={"source": self.name, "contact_id": contact},
            )
        discovery = Discovery(
            source_ref=contact, facts=facts, extension="wav", locator=_locator(info, usable)
        )
        for _copy in usable or [info]:  # each further copy is counted as a duplicate delivery
            yield discovery

    def _usable(
        self, contact: str, copies: list[ObjectInfo]
    ) -> Generator[Problem, None, tuple[CallFacts | None, list[ObjectInfo]]]:
        """Reads ``copies``: yields a problem for each malformed one, returns the facts
        of the first usable one (None if there is none) and the usable ones."""
        facts: CallFacts | None = None
        usable: list[ObjectInfo] = []
        for copy in copies:
            try:
                record = self._read_record(copy)
                found = record_facts(contact, record) if record is not None else None
            except Malformed as exc:
                yield self._malformed(copy, str(exc))
                continue
            if found is not None:
                usable.append(copy)
                facts = facts or found
        return facts, usable

    def _late_records(
        self, contact: str, recording: ObjectInfo | None, copies: list[ObjectInfo], now: dt.datetime
    ) -> Iterator[LateCdr | Problem]:
        """The CTR of an archived contact that came after its recording could wait.

        Its recording may have been archived from its key: the pipeline looks
        (only recordings archived from their name or key are enriched). A copy
        is read once per process; one that came in time (before the recording
        was archived) is not read at all.
        """
        recent = now - _MISSING_REPORT_WINDOW
        late = [
            c
            for c in copies
            if c.last_modified >= recent
            and (recording is None or c.last_modified > recording.last_modified + self.wait)
            and (c.key, c.last_modified) not in self._settled
        ]
        if not late:
            return
        facts, usable = yield from self._usable(contact, late)
        self._read.update((c.key, c.last_modified) for c in late)
        if facts is None:
            return
        if recording is None:
            self._to_delete.extend(c.key for c in usable)
        yield LateCdr(contact, facts)

    def _record_without_recording(
        self, contact: str, copies: list[ObjectInfo]
    ) -> Iterator[Problem]:
        first = copies[0]
        try:
            record = self._read_record(first)
        except Malformed as exc:
            yield self._malformed(first, str(exc))
            return
        if record is None or not isinstance(record.get("Recording"), dict):
            return  # gone meanwhile, or the call was not recorded
        yield Problem(
            first.key,
            "contact_record_without_recording",
            f"contact {contact} was recorded, but no recording arrived "
            f"{_PAIRING_WAIT.total_seconds() / 3600:g} hours after its contact record",
            kept_at=self._where(first.key),
        )

    def _read_record(self, info: ObjectInfo) -> Mapping[str, Any] | None:
        """The parsed contact record; None when it is gone. Raises :class:`Malformed`."""
        if info.size > MAX_RECORD_BYTES:
            raise Malformed(f"{info.size} bytes, too large for a contact record")
        try:
            with self.store.get(info.key) as reader:
                data = reader.read()
        except ObjectNotFound:
            return None
        except StoreError as exc:
            raise self._error(f"reading {info.key}", exc) from exc
        return parse_record(data)

    # --- fetch and acknowledge ---------------------------------------------------

    def _keys(self, discovery: Discovery) -> tuple[str, list[str]]:
        """The recording's key and its CTR keys, checked against the drop's layout."""
        recording = discovery.locator.get("recording_key")
        records = discovery.locator.get("record_keys")
        checks = [(recording, _RECORDING_KEY, _RECORDING_NAME)]
        checks += [(key, _CTR_KEY, _CTR_NAME) for key in records or []]
        for key, layout, name in checks:
            contact = self._contact(key, layout, name) if isinstance(key, str) else None
            if contact is None or contact.lower() != discovery.source_ref.lower():
                raise SourceError(f"source {self.name}: locator does not match the reference")
        return str(recording), [str(key) for key in records or []]

    def fetch(self, discovery: Discovery, work_dir: Path) -> Fetched:
        key, _records = self._keys(discovery)
        target = work_dir / f"download-{uuid.uuid4().hex}.wav"
        written = 0
        try:
            try:
                with self.store.get(key) as reader, open_private(target) as out:
                    for chunk in reader.iter_chunks():
                        written += out.write(chunk)
                    expected = reader.info.size
            except ObjectNotFound as exc:
                raise RecordingGone(f"source {self.name}: {key} is gone from the drop") from exc
            except StoreError as exc:
                raise self._error(f"download of {key}", exc) from exc
            except OSError as exc:
                raise SourceError(f"source {self.name}: cannot save {key}: {exc.strerror}") from exc
            if written != expected:
                raise SourceError(
                    f"source {self.name}: download of {key} truncated ({written} of {expected})"
                )
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return Fetched(path=target, size=written, temporary=True)

    def acknowledge(self, discovery: Discovery) -> None:
        """With ``delete_after_archive``: delete the contact records, then the recording.

        In that order, so that a failure part way leaves the recording, and
        the next pass (finding it archived) finishes the job. A failure is
        logged, not raised.
        """
        if not self.settings.delete_after_archive:
            return
        key, records = self._keys(discovery)
        try:
            result = self.store.delete_many(records)
            if result.failed:
                raise SourceError(
                    f"source {self.name}: could not delete {len(result.failed)} contact records"
                )
            self.store.delete(key)
        except (StoreError, SourceError) as exc:
            extra = {"source": self.name, "contact_id": discovery.source_ref, "error": exc.message}
            logger.warning("acknowledge_failed", extra=extra)
            return
        logger.info(
            "source_deleted",
            extra={"source": self.name, "contact_id": discovery.source_ref, "object_key": key},
        )


def _valid_key(key: str) -> bool:
    try:
        validate_key(key)
    except InvalidObjectKey:
        return False
    return True


def _locator(recording: ObjectInfo, records: list[ObjectInfo]) -> dict[str, Any]:
    return {"recording_key": recording.key, "record_keys": [r.key for r in records]}
