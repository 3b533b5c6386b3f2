"""The customer directory: imported from the customer system, used to match callers.

:func:`import_directory` loads the CSV export in batches, one transaction each,
so a million rows stream in flat memory: the customer ids met so far (to find
duplicates and, with ``replace``, the absent customers) go to a temporary table
on the import's own connection. An invalid row is reported by line with a
reason naming the column, never the value. Identity codes are stored as keyed hashes.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import itertools
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.schema import CreateTable, DropTable

from recarchive.catalogue import identity
from recarchive.catalogue.database import utcnow
from recarchive.catalogue.models import Customer, CustomerMatch, CustomerPhone
from recarchive.errors import CatalogueError, ConfigError, RecArchiveError

if TYPE_CHECKING:
    from _csv import Reader

logger = logging.getLogger(__name__)

COLUMNS = ("customer_id", "name", "phone_numbers", "identity_code")
BATCH_ROWS = 1000
MAX_ERRORS = 1000
MAX_CUSTOMER_ID = 64
MAX_NAME = 256
MAX_PHONE_FIELD = 1024
#: Numbers in ``phone_numbers`` are separated by ``;`` (a ``,`` is taken too).
_PHONE_SEPARATOR = re.compile(r"[;,]")
_NO_SYNC = {"synchronize_session": False}
_STORED = (Customer.customer_id, Customer.name, Customer.identity_hash, Customer.identity_kind)

#: Customer ids met so far in the file being imported, with the line of each.
_seen = sa.Table(
    "directory_import_seen",
    sa.MetaData(),
    sa.Column("customer_id", sa.String(MAX_CUSTOMER_ID), primary_key=True),
    sa.Column("line", sa.Integer, nullable=False),
    prefixes=["TEMPORARY"],
)


class DirectoryImportError(RecArchiveError):
    """The customer directory file cannot be imported."""


@dataclasses.dataclass(frozen=True)
class RowError:
    """A row that was not loaded: its physical line in the file (1 is the header), and why."""

    line: int
    reason: str


@dataclasses.dataclass
class DirectoryImportReport:
    """What an import read and did; ``rows_read`` = inserted + updated + unchanged + invalid."""

    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    invalid: int = 0
    #: The first :data:`MAX_ERRORS` invalid rows; ``errors_omitted`` counts the others.
    errors: list[RowError] = dataclasses.field(default_factory=list)
    errors_omitted: int = 0
    #: Invalid rows whose customer id could not be read at all.
    unattributed: int = 0
    #: With ``replace``: nothing was removed because some rows are unattributed.
    removal_skipped: bool = False
    dry_run: bool = False

    def add_error(self, line: int, reason: str) -> None:
        self.invalid += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(RowError(line, reason))
        else:
            self.errors_omitted += 1


@dataclasses.dataclass(frozen=True)
class CallerMatch:
    """Every customer with the caller's number, sorted; ``customer_id`` when exactly one."""

    status: CustomerMatch
    customer_id: str | None = None
    candidates: tuple[str, ...] = ()


@dataclasses.dataclass
class _Row:
    line: int
    customer_id: str | None = None
    #: The customer's columns as they are to be stored (keys as in :data:`_STORED`).
    values: dict[str, Any] = dataclasses.field(default_factory=dict)
    phones: frozenset[str] = frozenset()
    problems: list[str] = dataclasses.field(default_factory=list)


def _not_utf8(label: str, line: int) -> DirectoryImportError:
    return DirectoryImportError(f"{label}: line {line} is not UTF-8 text; export it as UTF-8")


def _decoded(lines: Iterable[bytes], label: str) -> Iterator[str]:
    for number, line in enumerate(lines, start=1):
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError:
            raise _not_utf8(label, number) from None


@contextlib.contextmanager
def _open_source(source: TextIO | Path) -> Iterator[tuple[Iterator[str], str]]:
    if not isinstance(source, Path):
        yield iter(source), "the input"
        return
    try:
        handle = source.open("rb")
    except OSError as exc:  # FileNotFoundError, IsADirectoryError, PermissionError...
        raise DirectoryImportError(f"cannot read {source}: {exc.strerror}") from None
    with handle:
        yield _decoded(handle, str(source)), str(source)


def _read_header(lines: Iterator[str], label: str) -> tuple[list[str], Reader]:
    """Check the header; return its column names and a reader positioned after it."""
    expected = ",".join(COLUMNS)
    first = next(lines, "").removeprefix("\ufeff")
    if not first.strip():
        raise DirectoryImportError(f"{label} is empty: expected the header {expected}")
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(itertools.chain([first], lines), delimiter=delimiter, strict=True)
    try:
        names = [name.strip().lower() for name in next(reader)]
    except csv.Error:
        raise DirectoryImportError(f"{label}: line 1 is not a CSV header ({expected})") from None
    for position, name in enumerate(names, start=1):
        # Name the column by position only: a file without a header has data on line 1.
        if name not in COLUMNS:
            raise DirectoryImportError(f"{label}: header column {position} is unknown ({expected})")
        if names.count(name) > 1:
            raise DirectoryImportError(f"{label}: header names column {name} twice")
    missing = ", ".join(name for name in COLUMNS if name not in names)
    if missing:
        raise DirectoryImportError(f"{label}: header lacks column {missing} (expected {expected})")
    return names, reader


def _check_row(line: int, fields: list[str], columns: list[str], key: str, region: str) -> _Row:
    row = _Row(line)
    if len(fields) != len(columns):
        row.problems.append(f"wrong column count: expected {len(columns)}, found {len(fields)}")
        return row
    text = dict(zip(columns, fields, strict=True))
    customer_id, name = text["customer_id"].strip(), text["name"].strip()
    if not customer_id:
        row.problems.append("customer_id is empty")
    elif len(customer_id) > MAX_CUSTOMER_ID:
        row.problems.append(f"customer_id is longer than {MAX_CUSTOMER_ID} characters")
    else:
        row.customer_id = customer_id
    if not name:
        row.problems.append("name is empty")
    elif len(name) > MAX_NAME:
        row.problems.append(f"name is longer than {MAX_NAME} characters")
    row.values = {"customer_id": customer_id, "name": name, "identity_hash": None}
    row.values["identity_kind"] = None
    phone_text = text["phone_numbers"]
    if len(phone_text) > MAX_PHONE_FIELD:
        row.problems.append(f"phone_numbers is longer than {MAX_PHONE_FIELD} characters")
        phone_text = ""
    numbers = filter(None, (part.strip() for part in _PHONE_SEPARATOR.split(phone_text)))
    phones: set[str] = set()
    for position, number in enumerate(numbers, start=1):
        try:
            phones.add(identity.phone_hash(identity.normalise_phone(number, region=region), key))
        except identity.InvalidPhoneNumber:
            row.problems.append(f"phone_numbers: number #{position} is not a valid phone number")
    row.phones = frozenset(phones)
    if text["identity_code"].strip():
        try:
            kind, digest = identity.hash_identity_code(text["identity_code"], key)
            row.values.update(identity_kind=kind, identity_hash=digest)
        except identity.InvalidIdentityCode as exc:
            row.problems.append(f"identity_code is invalid: {exc.message}")
    return row


def _rows(reader: Reader, columns: list[str], label: str, key: str, region: str) -> Iterator[_Row]:
    """Checked data rows, numbered by the physical line they start on; blank lines skipped."""
    previous = reader.line_num
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError:
            raise _not_utf8(label, previous + 1) from None
        except csv.Error as exc:
            problem = "value exceeds the CSV field size limit"
            problem = problem if "field limit" in str(exc) else "broken quoting"
            yield _Row(previous + 1, problems=[problem])
        else:
            if any(field.strip() for field in fields):
                yield _check_row(previous + 1, fields, columns, key, region)
        previous = reader.line_num


def _mark_seen(session: Session, rows: list[_Row], report: DirectoryImportReport) -> None:
    """Record each row's customer id; a row repeating an earlier one becomes invalid."""
    ids = {row.customer_id for row in rows if row.customer_id is not None}
    query = sa.select(_seen.c.customer_id, _seen.c.line).where(_seen.c.customer_id.in_(list(ids)))
    first_lines = dict(session.execute(query).all())
    new: list[dict[str, object]] = []
    for row in rows:
        if row.customer_id is None:
            report.unattributed += 1
        elif (first := first_lines.get(row.customer_id)) is not None:
            row.problems.append(f"customer_id repeats the one on line {first}")
        else:
            first_lines[row.customer_id] = row.line
            new.append({"customer_id": row.customer_id, "line": row.line})
    if new:
        session.execute(sa.insert(_seen), new)


def _apply(session: Session, rows: list[_Row], report: DirectoryImportReport, write: bool) -> None:
    """Count each valid row as inserted, updated or unchanged; write them when asked."""
    valid = {row.customer_id: row for row in rows if row.customer_id and not row.problems}
    query = sa.select(*_STORED).where(Customer.customer_id.in_(list(valid)))
    stored = {values["customer_id"]: dict(values) for values in session.execute(query).mappings()}
    stored_phones: dict[str, set[str]] = {customer_id: set() for customer_id in stored}
    phone_query = sa.select(CustomerPhone.customer_id, CustomerPhone.phone_hash)
    phone_query = phone_query.where(CustomerPhone.customer_id.in_(list(stored)))
    for customer_id, digest in session.execute(phone_query):
        stored_phones[customer_id].add(digest)
    now = utcnow()
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    phones: list[dict[str, Any]] = []
    for customer_id, row in valid.items():
        if customer_id not in stored:
            report.inserted += 1
            inserts.append(row.values | {"created_at": now, "updated_at": now})
        elif stored[customer_id] == row.values and stored_phones[customer_id] == row.phones:
            report.unchanged += 1
            continue
        else:
            report.updated += 1
            updates.append(row.values | {"updated_at": now})
        phones.extend({"customer_id": customer_id, "phone_hash": h} for h in row.phones)
    if write and inserts:
        session.execute(sa.insert(Customer), inserts)
    if write and updates:
        session.execute(sa.update(Customer), updates)
        replaced = CustomerPhone.customer_id.in_([values["customer_id"] for values in updates])
        session.execute(sa.delete(CustomerPhone).where(replaced), execution_options=_NO_SYNC)
    if write and phones:
        session.execute(sa.insert(CustomerPhone), phones)


def _remove_absent(session: Session, report: DirectoryImportReport, write: bool) -> None:
    """Remove (without ``write``: count) the customers the file did not mention."""
    if report.rows_read == 0:
        raise DirectoryImportError("the file has no customer rows: refusing to remove them all")
    if report.unattributed:
        report.removal_skipped = True
        return
    absent = ~sa.exists().where(_seen.c.customer_id == Customer.customer_id)
    if not write:
        count = sa.select(sa.func.count()).select_from(Customer).where(absent)
        report.removed = session.scalar(count) or 0
        return
    phone_absent = ~sa.exists().where(_seen.c.customer_id == CustomerPhone.customer_id)
    session.execute(sa.delete(CustomerPhone).where(phone_absent), execution_options=_NO_SYNC)
    result = session.execute(sa.delete(Customer).where(absent), execution_options=_NO_SYNC)
    report.removed = int(getattr(result, "rowcount", 0))


@contextlib.contextmanager
def _import_session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session on a connection of its own, which holds the temporary table of seen ids."""
    with sessions() as probe:
        bind = probe.get_bind()
    engine = bind if isinstance(bind, sa.Engine) else bind.engine
    with engine.connect() as connection, sessions(bind=connection) as session:
        try:
            session.execute(CreateTable(_seen, if_not_exists=True))
            session.execute(sa.delete(_seen))
            yield session
            session.rollback()
            session.execute(DropTable(_seen, if_exists=True))
            session.commit()
        except BaseException:
            with contextlib.suppress(SQLAlchemyError):
                session.rollback()
            connection.invalidate()  # closing it drops the temporary table too
            raise


def import_directory(
    sessions: sessionmaker[Session],
    source: TextIO | Path,
    *,
    hash_key: str,
    region: str = "FI",
    replace: bool = False,
    dry_run: bool = False,
    batch_rows: int = BATCH_ROWS,
    on_batch: Callable[[DirectoryImportReport], None] | None = None,
) -> DirectoryImportReport:
    """Load the customer directory CSV ``source`` into the catalogue; return what it did.

    Customers are inserted or get the file's name, identity and numbers; an
    invalid row is reported and skipped (its customer keeps what it had). With
    ``replace``, customers absent from the file are deleted irreversibly once it
    is all read, unless a row's customer id was unreadable. ``dry_run`` runs the
    same checks and counts in a transaction that is rolled back, writing nothing.
    Raises :class:`DirectoryImportError` for a file that is no directory export
    and :class:`~recarchive.errors.CatalogueError` when the catalogue fails;
    batches committed before either stay, and running the import again completes it.
    """
    if not hash_key:
        raise ConfigError("the identity-hash key is empty")
    identity.check_region(region)
    report = DirectoryImportReport(dry_run=dry_run)
    line = 1
    with _open_source(source) as (lines, label):
        columns, reader = _read_header(lines, label)
        rows = _rows(reader, columns, label, hash_key, region)
        try:
            with _import_session(sessions) as session:
                for batch in iter(lambda: list(itertools.islice(rows, batch_rows)), []):
                    line = batch[0].line
                    report.rows_read += len(batch)
                    _mark_seen(session, batch, report)
                    _apply(session, batch, report, write=not dry_run)
                    for row in batch:
                        if row.problems:
                            report.add_error(row.line, "; ".join(row.problems))
                    if not dry_run:
                        session.commit()
                    if on_batch is not None:
                        on_batch(report)
                if replace:
                    _remove_absent(session, report, write=not dry_run)
                if not dry_run:
                    session.commit()
        except CatalogueError as exc:  # unreachable or not set up (catalogue/failures.py)
            raise type(exc)(f"catalogue failed on rows from line {line}: {exc.message}") from None
        except SQLAlchemyError as exc:
            # The driver's message may quote values (names, numbers): keep only its kind.
            orig = getattr(exc, "orig", None) or exc
            detail = " ".join(filter(None, [type(orig).__name__, getattr(orig, "sqlstate", None)]))
            raise CatalogueError(f"catalogue failed on rows from line {line} ({detail})") from None
    counts = ("rows_read", "inserted", "updated", "unchanged", "removed", "invalid")
    extra: dict[str, object] = {name: getattr(report, name) for name in counts}
    logger.info("directory_imported", extra=extra | {"dry_run": dry_run, "replace": replace})
    return report


def match_caller(session: Session, e164: str | None, *, hash_key: str) -> CallerMatch:
    """Match a caller's E.164 number (None when withheld) against the directory."""
    if not e164:
        return CallerMatch(CustomerMatch.UNKNOWN)
    digest = identity.phone_hash(e164, hash_key)
    query = sa.select(CustomerPhone.customer_id).where(CustomerPhone.phone_hash == digest)
    candidates = tuple(session.scalars(query.distinct().order_by(CustomerPhone.customer_id)))
    if not candidates:
        return CallerMatch(CustomerMatch.UNKNOWN)
    if len(candidates) == 1:
        return CallerMatch(CustomerMatch.MATCHED, candidates[0], candidates)
    return CallerMatch(CustomerMatch.AMBIGUOUS, None, candidates)


def find_customers_by_identity(session: Session, text: str, *, hash_key: str) -> list[str]:
    """Ids of the customers with this identity code, sorted. Raises InvalidIdentityCode."""
    _, digest = identity.hash_identity_code(text, hash_key)
    query = sa.select(Customer.customer_id).where(Customer.identity_hash == digest)
    return list(session.scalars(query.order_by(Customer.customer_id)))


def find_customers_by_phone(
    session: Session, text: str, *, hash_key: str, region: str = "FI"
) -> list[str]:
    """Ids of the customers with this phone number, sorted. Raises InvalidPhoneNumber."""
    e164 = identity.normalise_phone(text, region=region)
    return list(match_caller(session, e164, hash_key=hash_key).candidates)
