"""Settings of the ingest pipeline: polling, audio, retention, reason codes and sources.

The sections here are fields of :class:`recarchive.config.Settings`, which
re-exports every name: import them from :mod:`recarchive.config`.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from recarchive.config_base import OptionalPath, _Section

_SOURCE_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"
#: Drivers a spool source's ``cdr_url`` may name: FreePBX keeps its CDR in MariaDB/MySQL.
CDR_URL_SCHEMES = ("mysql+pymysql://", "mariadb+pymysql://")
_SQL_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
#: Files a spool source leaves alone unless configured otherwise: hidden files
#: and directories (copy tools' temporary files, ``.snapshot``...). Asterisk and
#: FreePBX write nothing but recordings into the monitor spool.
DEFAULT_SPOOL_IGNORE = (".*",)


class IngestSettings(_Section):
    poll_interval_s: float = Field(default=30.0, gt=0)
    default_region: str = Field(default="FI", pattern=r"^[A-Z]{2}$")
    work_dir: OptionalPath = None
    lease_s: int = Field(default=60, ge=30)
    #: Stored recordings catalogued in one transaction (group commit; 1: each on its own).
    group_commit: int = Field(default=16, ge=1, le=500)
    max_attempts: int = Field(default=5, ge=1, le=100)
    settle_s: float = Field(default=10.0, ge=0)
    max_size_mb: int = Field(default=2048, ge=1)
    #: Days a resolved quarantine entry is kept (0: deleted at the next housekeeping).
    quarantine_keep_days: int = Field(default=30, ge=0, le=36500)
    #: Days an unresolved quarantine entry is kept (the retention promise).
    quarantine_max_days: int = Field(default=365, ge=1, le=36500)


class AudioSettings(_Section):
    store_format: Literal["original", "opus"] = "original"
    opus_bitrate_kbps: int = Field(default=16, ge=6, le=256)
    allowed_codecs: list[str] = Field(default_factory=list)
    decode_timeout_s: float = Field(default=1800.0, gt=0)


class RetentionRule(_Section):
    """Keep calls whose ``field`` is one of ``values`` for ``days`` days after the call."""

    #: Also the retention class tagged on the objects it decides (the backstop matches it).
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    field: Literal["reason", "queue", "source"]
    values: list[str] = Field(min_length=1)
    days: int = Field(ge=1, le=36500)


class RetentionSettings(_Section):
    default_days: int = Field(default=365, ge=1, le=36500)
    retention_class: str = Field(default="standard", pattern=r"^[a-z0-9_-]{1,32}$")
    held_class: str = Field(default="held", pattern=r"^[a-z0-9_-]{1,32}$")
    backstop_grace_days: int = Field(default=7, ge=0, le=3650)
    expiry_time: dt.time = dt.time(2, 30)
    #: Minutes after which a ``deleting`` recording's claim counts as abandoned
    #: (its run died) and another run may take it over.
    claim_stale_minutes: int = Field(default=30, ge=1, le=1440)
    rules: list[RetentionRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _distinct(self) -> RetentionSettings:
        if self.held_class == self.retention_class:
            raise ValueError("held_class must differ from retention_class")
        names = [rule.name for rule in self.rules]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates or "default" in names:
            raise ValueError(f"retention rule names must be unique and not 'default': {duplicates}")
        return self


DEFAULT_REASON_CODES = (
    "contract_change",
    "outage",
    "new_contract",
    "personal_data_change",
    "billing",
    "fault_report",
    "moving",
    "other",
)


class ReasonRule(_Section):
    """Assign ``code`` when the call field ``field`` matches the regular expression ``pattern``."""

    code: str
    field: Literal["userfield", "ivr", "queue", "did", "dcontext", "agent", "attribute"]
    pattern: str
    #: For ``field = "attribute"``: the contact attribute to look at.
    attribute: str = ""
    #: When this rule matches, the rules after it are not applied.
    stop: bool = False

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class ReasonSettings(_Section):
    codes: list[str] = Field(default_factory=lambda: list(DEFAULT_REASON_CODES))
    default_code: str = "other"
    rules: list[ReasonRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _codes_known(self) -> ReasonSettings:
        known = set(self.codes)
        if self.default_code and self.default_code not in known:
            raise ValueError(f"default_code {self.default_code!r} is not in codes")
        for number, rule in enumerate(self.rules, start=1):
            if rule.code not in known:
                raise ValueError(f"rule {number} assigns {rule.code!r}, which is not in codes")
        return self


class SpoolSourceSettings(_Section):
    kind: Literal["spool"]
    name: str = Field(pattern=_SOURCE_NAME)
    path: Path
    cdr_path: OptionalPath = None
    cdr_format: Literal["asterisk_master", "freepbx_export"] = "asterisk_master"
    #: The FreePBX CDR database (``mysql+pymysql://user@host/asteriskcdrdb``), read in
    #: place of ``cdr_path``; the password is a secret, never part of this URL.
    cdr_url: str = ""
    #: The CDR table in that database.
    cdr_table: str = Field(default="cdr", pattern=_SQL_NAME)
    #: Minutes of CDR rows (by ``calldate``, the call's start) read again on every
    #: pass: a row is written when its call ends, so a long call's row arrives after
    #: rows of later calls. Rows older than this when they arrive are missed.
    cdr_window_minutes: float = Field(default=360.0, gt=0, le=7 * 24 * 60)
    #: Seconds allowed to connect to the CDR database, and for one query.
    cdr_timeout_s: float = Field(default=10.0, gt=0, le=600)
    timezone: str = ""
    after_archive: Literal["delete", "move"] = "delete"
    done_dir: OptionalPath = None
    #: With ``after_archive = "move"``: days a moved file stays in ``done_dir``
    #: (0: deleted at the next housekeeping). Ignored with ``"delete"``.
    done_keep_days: int = Field(default=7, ge=0, le=3650)
    expect_recording_for_answered: bool = True
    #: Minutes after an answered call's end before its CDR row, still without a
    #: recording, is reported (quarantined) as ``cdr_without_recording``.
    cdr_wait_minutes: float = Field(default=60.0, ge=0)
    #: With a CDR (``cdr_path`` or ``cdr_url``): seconds a recording whose CDR row has
    #: not arrived waits (counted as awaiting its CDR, from the file's last write)
    #: before it is archived from its file name alone. A row arriving later still
    #: enriches the archived recording. 0: archived from the name at once.
    cdr_wait_s: float = Field(default=300.0, ge=0)
    #: Seconds a split leg (MixMonitor's ``<base>-in``/``-out`` files) whose partner is
    #: not in the spool waits for it (from its last write; counted as awaiting its
    #: partner) before it is archived alone, mono, and reported. 0: at once.
    legs_wait_s: float = Field(default=300.0, ge=0)
    #: Glob patterns (``fnmatch``, case-sensitive) of files and directories the
    #: source leaves alone, matched against the name and the path relative to the
    #: spool root; counted as ignored. Any other file is archived or quarantined.
    ignore: list[str] = Field(default_factory=lambda: list(DEFAULT_SPOOL_IGNORE))

    @model_validator(mode="after")
    def _done_dir_for_move(self) -> SpoolSourceSettings:
        if self.after_archive == "move" and self.done_dir is None:
            raise ValueError("after_archive = 'move' needs done_dir")
        return self

    @field_validator("cdr_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value:
            return value
        if not value.startswith(CDR_URL_SCHEMES):
            raise ValueError("must be a mysql+pymysql:// URL (FreePBX's CDR database)")
        credentials = value.split("://", 1)[1].split("@", 1)[0] if "@" in value else ""
        if ":" in credentials:
            # The value is not echoed: it holds the password.
            raise ValueError(
                "holds a password; give the password as the secret "
                "RECARCHIVE_SOURCE_<NAME>_CDR_PASSWORD (or ..._FILE) instead"
            )
        database = value.split("://", 1)[1].partition("/")[2].partition("?")[0]
        if not database:
            raise ValueError("names no database (mysql+pymysql://user@host/asteriskcdrdb)")
        return value

    @model_validator(mode="after")
    def _one_cdr(self) -> SpoolSourceSettings:
        if self.cdr_url and self.cdr_path is not None:
            raise ValueError("cdr_path and cdr_url are both set; the CDR comes from one of them")
        return self


class HttpSourceSettings(_Section):
    kind: Literal["http"]
    name: str = Field(pattern=_SOURCE_NAME)
    base_url: str
    account_sid: str
    media_format: Literal["wav", "mp3"] = "wav"
    page_size: int = Field(default=100, ge=1, le=1000)
    delete_after_archive: bool = False
    timeout_s: float = Field(default=60.0, gt=0)


class S3DropSourceSettings(_Section):
    kind: Literal["s3drop"]
    name: str = Field(pattern=_SOURCE_NAME)
    bucket: str
    prefix: str = ""
    endpoint_url: str = ""
    region: str = "us-east-1"
    delete_after_archive: bool = False
    #: Seconds a recording without a usable contact record waits for one (counted as
    #: awaiting it, from the object's last modification) before it is archived from
    #: what its key tells. A contact record arriving later still enriches the
    #: archived recording. 0: archived from the key at once.
    record_wait_s: float = Field(default=300.0, ge=0)


SourceSettings = Annotated[
    SpoolSourceSettings | HttpSourceSettings | S3DropSourceSettings, Field(discriminator="kind")
]
