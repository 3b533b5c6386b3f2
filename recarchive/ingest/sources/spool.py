"""An Asterisk / FreePBX recording spool with its CDR.

Recordings are files under the spool root, either the FreePBX way
(``YYYY/MM/DD/<type>-<exten>-<from>-<YYYYMMDD>-<HHMMSS>-<uniqueid>.<ext>``) or
flat MixMonitor files whose name holds the call's ``uniqueid`` (with Asterisk's
``systemname`` set, prefixed by it: ``pbx1-1706420300.0``). Each is
matched with its CDR line by ``uniqueid`` (or, in a FreePBX export or
database, by the ``recordingfile`` column); a recording without a CDR line
waits ``cdr_wait_s`` for it (:class:`Waiting`), then is archived with what
its file name tells; a row that arrives later is handed to the pipeline
(:class:`LateCdr`), which enriches the archived recording. The CDR comes from ``Master.csv``,
an export of FreePBX's ``cdr`` table, or that table itself (``cdr_url``:
:mod:`recarchive.ingest.sources.cdr_db`); the matching is the same for all.

The source reference is the file's path relative to the spool root (split
legs, ``-in``/``-out``, are one recording: :mod:`~.spool_legs`). After the
archive acknowledges a recording, its files are deleted or moved to the
done directory, never before. Moved files are deleted by
:meth:`SpoolSource.sweep_done` (see :mod:`recarchive.ingest.sources.done_dir`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from recarchive.config import AudioSettings, SpoolSourceSettings
from recarchive.ingest.cdr import CdrCursor, read_freepbx_export, read_master_csv_tail
from recarchive.ingest.cdr_legs import (
    calls_without_recording,
    is_local_second_half,
    record_key,
)
from recarchive.ingest.interfaces import (
    Bookmark,
    Discovery,
    Fetched,
    Ignored,
    KnownRefs,
    LateCdr,
    Problem,
    RecordingGone,
    SourceError,
    SourceItem,
    Waiting,
)
from recarchive.ingest.sources import spool_legs as legs
from recarchive.ingest.sources.cdr_db import CdrDatabase
from recarchive.ingest.sources.done_dir import (
    DoneDirSweep,
    ForgottenRefs,
    move_to_done,
    prune_empty_parents,
    sweep_done_dir,
)
from recarchive.ingest.sources.spool_cdr import CdrRead, CdrState, uniqueids
from recarchive.ingest.sources.spool_names import (
    call_facts,
    match_names,
    record_for_name_time,
    recorded_call_id,
)
from recarchive.media.formats import RECORDING_EXTENSIONS

logger = logging.getLogger(__name__)

#: Extensions of recordings a spool holds (compared case-insensitively): every
#: format in :data:`recarchive.media.formats.RECORDING_FORMATS`.
AUDIO_EXTENSIONS = RECORDING_EXTENSIONS
#: How long after the call a missing recording is still worth reporting.
_MISSING_REPORT_WINDOW = dt.timedelta(days=7)


class SpoolSource:
    """Reads a recording spool and its CDR; see the module docstring."""

    def __init__(
        self,
        settings: SpoolSourceSettings,
        *,
        timezone: str,
        settle_s: float,
        cdr_password: str | None = None,
        audio: AudioSettings | None = None,
    ) -> None:
        self.name = settings.name
        self.settings = settings
        self.root = settings.path
        self.zone = ZoneInfo(settings.timezone or timezone)
        self.settle = dt.timedelta(seconds=settle_s)
        #: The codecs and decode deadline split legs are checked with before merging.
        self.audio = audio or AudioSettings()
        self._cdr: CdrState | None = None
        self._cdr_cursor: CdrCursor | None = None
        #: FreePBX's CDR database, when ``cdr_url`` names it.
        self.cdr_database: CdrDatabase | None = None
        if settings.cdr_url:
            self.cdr_database = CdrDatabase(
                settings.name,
                settings.cdr_url,
                password=cdr_password,
                table=settings.cdr_table,
                zone=self.zone,
                window=dt.timedelta(minutes=settings.cdr_window_minutes),
                timeout_s=settings.cdr_timeout_s,
            )

    def restore_bookmark(self, value: dict[str, object] | None) -> None:
        """Resume reading the CDR database from the bookmark the catalogue holds."""
        if self.cdr_database is not None:
            self.cdr_database.restore(value)
            self._cdr = None

    # --- discovery -----------------------------------------------------------

    def discover(self, now: dt.datetime, known: KnownRefs) -> Iterator[SourceItem]:
        """Every file under the spool: a recording to queue, a problem, ignored by a
        rule, or waiting for its CDR row; then the CDR rows that came after their
        recording (:class:`LateCdr`).

        Nothing is skipped silently: a file whose extension is no recording
        format (:data:`AUDIO_EXTENSIONS`) is quarantined as ``unknown_format``
        unless an ``ignore`` pattern matches it. With a CDR database, the last
        item is the bookmark of what was read from it.
        """
        if not self.root.is_dir():
            raise SourceError(f"source {self.name}: spool directory {self.root} does not exist")
        cdr = self._read_cdr(now)
        yield from cdr.problems
        seen_uniqueids: set[str] = set()
        entries = legs.unpair_taken(list(legs.pair_legs(self._walk())), self.root, known)
        for entry in entries:
            if isinstance(entry, tuple):
                item = self._file_item(*entry, cdr, now, seen_uniqueids)
            elif isinstance(entry, legs.LoneLeg):
                item = self._file_item(entry.leg.path, None, cdr, now, seen_uniqueids, entry.leg)
            else:  # split legs: one recording
                item = legs.pair_item(self, entry, cdr, now, seen_uniqueids)
            if item is not None:
                yield item
        if self.settings.expect_recording_for_answered:
            yield from self._missing_recordings(cdr, seen_uniqueids, now)
        yield from self._late_rows(cdr, seen_uniqueids)
        if self.cdr_database is not None:
            yield Bookmark(self.cdr_database.bookmark())

    @property
    def has_cdr(self) -> bool:
        """Whether the source is configured with a CDR (a file or a database)."""
        return self.settings.cdr_path is not None or self.cdr_database is not None

    def _file_item(
        self,
        path: Path,
        rule: str | None,
        cdr: CdrRead,
        now: dt.datetime,
        seen: set[str],
        lone: legs.Leg | None = None,
    ) -> Discovery | Problem | Ignored | Waiting | None:
        """What one file is this pass (None: not settled yet, or gone); ``lone``: it is a
        split leg without its partner."""
        relative = path.relative_to(self.root).as_posix()
        if rule is not None:
            return Ignored(relative, rule)
        if path.is_symlink():
            return Problem(
                f"file:{relative}",
                "invalid_name",
                "symbolic link in the spool; only regular files are taken",
                kept_at=str(path),
            )
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        modified = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC)
        if modified > now - self.settle:
            return None  # still being written, or just finished: next pass
        extension = path.name.rpartition(".")[2] if "." in path.name else ""
        if extension.lower() not in AUDIO_EXTENSIONS:
            return _unknown_format(relative, extension, path)
        locator: dict[str, Any] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        names = [path.name]
        if lone is not None:  # waits for its partner (its call seen), then is archived alone
            names, locator = [path.name, lone.call_name], {**locator, "lone_leg": lone.role}
        item = self.call_item(
            relative, names, (modified, cdr, now, seen), path.suffix[1:], locator, str(path)
        )
        wait_s = self.settings.legs_wait_s
        return legs.lone_leg_waits(lone, wait_s, relative, modified, now) or item

    def call_item(
        self,
        relative: str,
        names: Sequence[str],
        when: tuple[dt.datetime, CdrRead, dt.datetime, set[str]],
        extension: str,
        locator: dict[str, Any],
        kept_at: str,
    ) -> Discovery | Problem | Waiting:
        """The recording at ``relative`` (file ``names``, the first the file's own) matched
        with its CDR row; or waiting for the row; or a problem when nothing tells its call.

        ``when``: the file's last write, the CDR read this pass, now, and the
        uniqueids seen so far."""
        modified, cdr, now, seen = when
        record, name = match_names(names, cdr.by_file, cdr.by_uniqueid)
        if record is not None:  # a recordingfile's row: its call's leg that talked
            record = cdr.by_uniqueid.get(record.uniqueid, record)
        if record is None and name is not None and cdr.legs.anonymous:
            # a line logged without uniqueid: matched by time and numbers, given the name's
            anonymous = record_for_name_time(name, cdr.legs, self.zone)
            if anonymous is not None:
                seen.add(record_key(anonymous))
                record = dataclasses.replace(anonymous, uniqueid=name.group("uniqueid"))
        if record is not None:
            seen.add(record.uniqueid)
        elif self.has_cdr and modified > now - dt.timedelta(seconds=self.settings.cdr_wait_s):
            return Waiting(relative, "cdr")
        facts = call_facts(record, name, self.zone)
        if facts is None:
            return Problem(
                f"file:{relative}",
                "unrecognised_name",
                "file name tells no call time and no CDR line matches it",
                kept_at=kept_at,
            )
        return Discovery(relative, facts, extension, locator)

    def _late_rows(self, cdr: CdrRead, seen: set[str]) -> Iterator[LateCdr]:
        """The calls of the CDR rows read this pass whose recording is not in the spool.

        Their recording may have been archived from its name before the row
        arrived; the pipeline looks (only recordings archived from their name
        are enriched).
        """
        for uniqueid in dict.fromkeys(cdr.fresh):
            record = cdr.by_uniqueid.get(uniqueid)
            if uniqueid in seen or record is None or is_local_second_half(record):
                continue
            facts = call_facts(record, None, self.zone)
            if facts is not None:
                yield LateCdr(recorded_call_id(record), facts)

    def _walk(self) -> Iterator[tuple[Path, str | None]]:
        """Every file under the root (not done_dir), with the ignore pattern it matches.

        A directory that matches a pattern is not entered: it is yielded once
        with its pattern.
        """
        done_dir = self.settings.done_dir.resolve() if self.settings.done_dir else None
        for directory, subdirs, files in os.walk(self.root, followlinks=False):
            current = Path(directory)
            entered = []
            for name in sorted(subdirs):
                if (current / name).resolve() == done_dir:
                    continue
                rule = self._ignore_rule(current / name)
                if rule is None:
                    entered.append(name)
                else:
                    yield current / name, rule
            subdirs[:] = entered
            for filename in sorted(files):
                yield current / filename, self._ignore_rule(current / filename)

    def _ignore_rule(self, path: Path) -> str | None:
        relative = path.relative_to(self.root).as_posix()
        for pattern in self.settings.ignore:
            if fnmatch.fnmatchcase(path.name, pattern) or fnmatch.fnmatchcase(relative, pattern):
                return pattern
        return None

    def _read_cdr(self, now: dt.datetime) -> CdrRead:
        if self.cdr_database is not None:
            # Only the rows new since the last read; the state keeps the earlier ones.
            entries = self.cdr_database.read(now)
            if self._cdr is None:
                self._cdr = CdrState()
            label = self.cdr_database.label
            for entry in entries:
                self._cdr.add(entry, label, label)
            return CdrRead.of(self._cdr, uniqueids(entries))
        path = self.settings.cdr_path
        if path is None:
            return CdrRead.of(CdrState(), [])
        if not path.is_file():
            raise SourceError(f"source {self.name}: CDR file {path} does not exist")
        if self.settings.cdr_format == "freepbx_export":
            state = CdrState()
            for entry in read_freepbx_export(path, self.zone):
                state.add(entry, path.name, str(path))
            # Re-read whole every pass: only the recent calls' rows may be late ones.
            recent = now - dt.timedelta(minutes=self.settings.cdr_window_minutes)
            fresh = [r for r in state.by_uniqueid.values() if (r.end or r.start) >= recent]
            return CdrRead.of(state, uniqueids(fresh))
        # Master.csv only grows: read what was appended since the last pass.
        try:
            quiet = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC) <= now - self.settle
            entries, cursor, restarted = read_master_csv_tail(
                path, self.zone, self._cdr_cursor, take_unterminated=quiet
            )
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise SourceError(
                f"source {self.name}: cannot read CDR file {path}: {reason}"
            ) from None
        if restarted or self._cdr is None:
            self._cdr = CdrState()
        for entry in entries:
            self._cdr.add(entry, path.name, str(path))
        self._cdr_cursor = cursor
        return CdrRead.of(self._cdr, uniqueids(entries))

    def _missing_recordings(
        self, cdr: CdrRead, seen: set[str], now: dt.datetime
    ) -> Iterator[Problem]:
        """An answered call whose recording is not in the spool some minutes after it ended.

        One report per call, whichever of its legs answered; legs of other
        calls (Local ``;2`` rows) and legs never answered raise nothing
        (:func:`recarchive.ingest.cdr_legs.calls_without_recording`).
        """
        wait = dt.timedelta(minutes=self.settings.cdr_wait_minutes)
        freepbx = self.settings.cdr_format == "freepbx_export" or self.cdr_database is not None
        # FreePBX says which calls were recorded
        for record in calls_without_recording(cdr.legs, seen, need_recordingfile=freepbx):
            ended = record.end or record.start
            if now - _MISSING_REPORT_WINDOW <= ended <= now - wait:
                where = f"row {record.ref}" if record.ref else f"line {record.line}"
                yield Problem(
                    f"call:{record_key(record)}",
                    "cdr_without_recording",
                    f"CDR {where}: answered call, no recording "
                    f"{self.settings.cdr_wait_minutes:g} minutes after it ended",
                )

    # --- fetch and acknowledge -------------------------------------------------

    def files(self, discovery: Discovery) -> list[tuple[Path, str]]:
        """The file a recording is (a split-leg pair: its two files, the caller's first),
        each with its path relative to the spool."""
        paths = []
        for relative in legs.leg_refs(discovery) or [discovery.source_ref]:
            path = (self.root / relative).resolve()
            if not path.is_relative_to(self.root.resolve()):
                raise SourceError(f"source {self.name}: reference escapes the spool")
            paths.append((path, relative))
        return paths

    def fetch(self, discovery: Discovery, work_dir: Path) -> Fetched:
        if legs.is_pair(discovery):
            return legs.fetch_pair(self, discovery, work_dir)
        path = self.files(discovery)[0][0]
        try:
            stat = path.stat()
            provenance = legs.lone_leg_provenance(discovery, path)
        except FileNotFoundError:
            raise RecordingGone(f"source {self.name}: recording file is gone") from None
        return Fetched(path=path, size=stat.st_size, temporary=False, legs=provenance)

    def unsettled_locator(self, discovery: Discovery, now: dt.datetime) -> dict[str, Any] | None:
        """The file's new size and mtime if it changed since discovery and is still changing.

        A file that changed but has been quiet for the settle time (replaced
        by staff before a quarantine retry, say) is taken as it is now.
        """
        if legs.is_pair(discovery):
            return legs.unsettled_pair(self, discovery, now)
        try:
            stat = self.files(discovery)[0][0].stat()
        except FileNotFoundError:
            return None
        current = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        seen = {
            "size": discovery.locator.get("size"),
            "mtime_ns": discovery.locator.get("mtime_ns"),
        }
        modified = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC)
        if current == seen or modified <= now - self.settle:
            return None
        return {**discovery.locator, **current}

    def acknowledge(self, discovery: Discovery) -> None:
        """Delete or move the recording's file (both files of a split-leg pair)."""
        for path, relative in self.files(discovery):
            if not path.exists():
                continue
            if self.settings.after_archive == "move":
                assert self.settings.done_dir is not None
                if not move_to_done(path, self.settings.done_dir / relative):
                    continue
            else:
                path.unlink(missing_ok=True)
            prune_empty_parents(path.parent, self.root)

    # --- done_dir --------------------------------------------------------------

    def sweep_done(self, now: dt.datetime, forgotten: ForgottenRefs) -> DoneDirSweep:
        """Delete, irreversibly, the files in done_dir that are due; return the counts.

        Due: moved more than ``done_keep_days`` before ``now``, or (at once)
        their call was erased or expired, which ``forgotten`` tells from
        their references. Nothing is done with ``after_archive = "delete"``.
        Raises :class:`SourceError` when done_dir holds the spool itself.
        """
        done_dir = self.settings.done_dir
        if self.settings.after_archive != "move" or done_dir is None:
            return DoneDirSweep()
        if self.root.resolve().is_relative_to(done_dir.resolve()):
            raise SourceError(f"source {self.name}: done_dir contains the spool; not swept")
        cutoff = now - dt.timedelta(days=self.settings.done_keep_days)
        return sweep_done_dir(
            done_dir,
            cutoff=cutoff.timestamp(),
            forgotten=legs.with_pair_refs(forgotten),
            extensions=AUDIO_EXTENSIONS,
        )


def _unknown_format(relative: str, extension: str, path: Path) -> Problem:
    what = f"extension .{extension}" if extension else "a name without an extension"
    return Problem(
        f"file:{relative}",
        "unknown_format",
        f"{what} is no recording format the archive reads (docs/ingest.md); "
        "add a pattern to the source's ignore list to leave such files alone",
        kept_at=str(path),
    )
