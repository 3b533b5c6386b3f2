"""The customer directory on SQLite and PostgreSQL: import, re-import, replace, matching."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from recarchive.catalogue.database import create_catalogue_engine, session_factory
from recarchive.catalogue.directory import (
    MAX_ERRORS,
    DirectoryImportError,
    DirectoryImportReport,
    RowError,
    find_customers_by_identity,
    find_customers_by_phone,
    import_directory,
    match_caller,
)
from recarchive.catalogue.identity import (
    InvalidIdentityCode,
    InvalidPhoneNumber,
    identity_hash,
    phone_hash,
)
from recarchive.catalogue.models import Customer, CustomerMatch, CustomerPhone, IdentityKind
from recarchive.errors import CatalogueError

KEY = "directory-test-key-" * 3
HEADER = "customer_id,name,phone_numbers,identity_code"
#: The numbers the tests expect to find (the directory holds only their keyed hashes).
KNOWN_NUMBERS = (
    "+358401234567",
    "+35891234567",
    "+46701234567",
    "+358401000003",
    "+358402000001",
    "+358409000001",
    "+358409000002",
)


def csv_file(*lines: str, header: str = HEADER) -> io.StringIO:
    return io.StringIO("\n".join([header, *lines]) + "\n")


def load(sessions: sessionmaker[Session], *lines: str, **options: object) -> DirectoryImportReport:
    return import_directory(sessions, csv_file(*lines), hash_key=KEY, **options)  # type: ignore[arg-type]


def phones_of(sessions: sessionmaker[Session], customer_id: str) -> set[str]:
    """The customer's numbers, as the E.164 numbers whose keyed hashes the directory holds."""
    with sessions() as session:
        query = select(CustomerPhone.phone_hash).where(CustomerPhone.customer_id == customer_id)
        stored = set(session.scalars(query))
    known = {phone_hash(number, KEY): number for number in KNOWN_NUMBERS}
    assert stored <= set(known), "the directory holds something that is not a known number's hash"
    return {known[digest] for digest in stored}


def customer(sessions: sessionmaker[Session], customer_id: str) -> Customer | None:
    with sessions() as session:
        return session.get(Customer, customer_id)


def test_valid_rows_load_with_normalised_numbers_and_hashed_identity(
    sessions: sessionmaker[Session],
) -> None:
    report = load(
        sessions,
        'load-1,Matti Meikäläinen,"040 123 4567;(09) 123 4567",131052-308t',
        "load-2,Oy Sähkö Ab,+358 50 765 4321,2077474-0",
        "load-3,Anna Andersson,0046701234567,",
    )
    assert (report.rows_read, report.inserted, report.invalid) == (3, 3, 0)
    assert report.errors == []
    matti = customer(sessions, "load-1")
    assert matti is not None
    assert matti.name == "Matti Meikäläinen"
    assert matti.identity_kind is IdentityKind.HENKILOTUNNUS
    assert matti.identity_hash == identity_hash("131052-308T", KEY)
    assert phones_of(sessions, "load-1") == {"+358401234567", "+35891234567"}
    company = customer(sessions, "load-2")
    assert company is not None
    assert company.identity_kind is IdentityKind.YTUNNUS
    anna = customer(sessions, "load-3")
    assert anna is not None
    assert (anna.identity_hash, anna.identity_kind) == (None, None)
    assert phones_of(sessions, "load-3") == {"+46701234567"}


def test_invalid_rows_are_reported_by_line_without_personal_data(
    sessions: sessionmaker[Session],
) -> None:
    lines = [
        "bad-ok-1,Liisa Laine,0401112223,",  # 2
        ",Pekka Puuttuva,0402223334,",  # 3
        "bad-ok-1,Liisa Toinen,0403334445,",  # 4
        "bad-3,,0404445556,",  # 5
        'bad-4,Kalle Kaksi,"0405556667;0800123",',  # 6
        "bad-5,Heikki Hetu,0406667778,131052-308U",  # 7
        f"bad-6,{'N' * 300},0407778889,",  # 8
        "bad-7,Olli Ylimäärä,0408889990,,extra",  # 9
        'bad-ok-2,"Ville\nMonirivi",0409990001,',  # 10-11
        'bad-8,"Sanna "Lainaus" Suomi,0401231231,',  # 12
        "",  # 13: blank lines are skipped
        "bad-9,Mikko Monivika,anonymous;0402,1234",  # 14
        "bad-ok-3,Eeva Viimeinen,0401231232,",  # 15
    ]
    report = load(sessions, *lines)
    assert report.errors == [
        RowError(3, "customer_id is empty"),
        RowError(4, "customer_id repeats the one on line 2"),
        RowError(5, "name is empty"),
        RowError(6, "phone_numbers: number #2 is not a valid phone number"),
        RowError(7, "identity_code is invalid: henkilötunnus has an invalid check character"),
        RowError(8, "name is longer than 256 characters"),
        RowError(9, "wrong column count: expected 4, found 5"),
        RowError(12, "broken quoting"),
        RowError(
            14,
            "phone_numbers: number #1 is not a valid phone number; "
            "phone_numbers: number #2 is not a valid phone number; "
            "identity_code is invalid: not a henkilötunnus or Y-tunnus",
        ),
    ]
    assert report.rows_read == 12
    assert (report.inserted, report.invalid) == (3, 9)
    personal = ["Pekka", "Liisa", "Kalle", "0800123", "0405556667", "131052", "308U", "Heikki"]
    personal += ["Olli", "extra", "Sanna", "Lainaus", "Mikko", "anonymous", "0402", "1234", "NNN"]
    for error in report.errors:
        for value in personal:
            assert value not in error.reason, (value, error)
    liisa = customer(sessions, "bad-ok-1")
    assert liisa is not None
    assert liisa.name == "Liisa Laine"  # the first row wins over its duplicate
    ville = customer(sessions, "bad-ok-2")
    assert ville is not None
    assert ville.name == "Ville\nMonirivi"
    assert customer(sessions, "bad-ok-3") is not None
    for customer_id in ("bad-3", "bad-4", "bad-5", "bad-6", "bad-7", "bad-8", "bad-9"):
        assert customer(sessions, customer_id) is None


def test_identity_code_is_never_stored_in_clear(sessions: sessionmaker[Session]) -> None:
    load(sessions, "clear-1,Hanna Hetu,0401010101,010594Y9032")
    spellings = ("010594Y9032", "010594y9032", "010594", "Y9032")
    with sessions() as session:
        for table in ("customers", "customer_phones"):
            for row in session.execute(text(f"SELECT * FROM {table}")):  # noqa: S608
                for value in row:
                    for spelling in spellings:
                        assert spelling not in str(value)


def test_reimport_counts_updates_and_unchanged(sessions: sessionmaker[Session]) -> None:
    first = [
        "again-1,Aino Aalto,0401000001,131052-308T",
        "again-2,Bertta Berg,0401000002;0401000003,",
        "again-3,Cecilia Cohen,0401000004,",
        "again-4,Daniel Dahl,,",
    ]
    assert load(sessions, *first).inserted == 4
    same = load(sessions, *reversed(first))
    assert (same.inserted, same.updated, same.unchanged) == (0, 0, 4)
    changed = load(
        sessions,
        "again-1,Aino Aalto,0401000001,",  # identity removed
        "again-2,Bertta Berg,040 100 0003,",  # one number dropped
        "again-3,Cecilia Cohen-Berg,0401000004,",  # renamed
        "again-4,Daniel Dahl,,",
        "again-5,Eero Ek,0401000005,",
    )
    assert (changed.inserted, changed.updated, changed.unchanged) == (1, 3, 1)
    aino = customer(sessions, "again-1")
    assert aino is not None
    assert (aino.identity_hash, aino.identity_kind) == (None, None)
    assert phones_of(sessions, "again-2") == {"+358401000003"}
    renamed = customer(sessions, "again-3")
    assert renamed is not None
    assert renamed.name == "Cecilia Cohen-Berg"
    assert renamed.updated_at >= renamed.created_at


def test_an_invalid_row_leaves_the_stored_customer_alone(sessions: sessionmaker[Session]) -> None:
    load(sessions, "keep-1,Kirsi Kotka,0402000001,")
    report = load(sessions, "keep-1,Kirsi Kotka,not a number,")
    assert (report.updated, report.invalid) == (0, 1)
    assert phones_of(sessions, "keep-1") == {"+358402000001"}


def test_replace_removes_customers_absent_from_the_file(sessions: sessionmaker[Session]) -> None:
    load(sessions, "gone-1,Gunnar Gone,0403000001,", "gone-2,Greta Gone,0403000002,")
    with sessions() as session:
        before = session.scalar(select(func.count()).select_from(Customer)) or 0
    kept = ["stay-1,Stina Stay,0403000003,", "gone-1,Gunnar Gone,bad-number,"]

    dry = load(sessions, *kept, replace=True, dry_run=True)
    assert dry.removed == before - 1  # gone-1 is kept: its row is invalid, not absent
    assert customer(sessions, "gone-2") is not None
    assert customer(sessions, "stay-1") is None

    report = load(sessions, *kept, replace=True)
    assert (report.inserted, report.invalid, report.removed) == (1, 1, before - 1)
    assert customer(sessions, "gone-2") is None
    assert phones_of(sessions, "gone-2") == set()
    assert customer(sessions, "gone-1") is not None
    assert customer(sessions, "stay-1") is not None


def test_replace_removes_nothing_when_a_row_cannot_be_attributed(
    sessions: sessionmaker[Session],
) -> None:
    load(sessions, "unattr-1,Urho Uusi,0404000001,")
    report = load(sessions, "unattr-2,Ulla Uusi,0404000002,", ",Nimetön,,", replace=True)
    assert (report.removal_skipped, report.removed, report.unattributed) == (True, 0, 1)
    assert customer(sessions, "unattr-1") is not None


def test_replace_refuses_a_file_without_rows(sessions: sessionmaker[Session]) -> None:
    load(sessions, "empty-1,Erkki Empty,0405000001,")
    with pytest.raises(DirectoryImportError, match="no customer rows"):
        load(sessions, replace=True)
    assert customer(sessions, "empty-1") is not None


def test_dry_run_counts_but_writes_nothing(sessions: sessionmaker[Session]) -> None:
    load(sessions, "dry-1,Dora Dry,0406000001,")
    report = load(
        sessions, "dry-1,Dora Renamed,0406000001,", "dry-2,Dan Dry,0406000002,", dry_run=True
    )
    assert (report.inserted, report.updated, report.dry_run) == (1, 1, True)
    dora = customer(sessions, "dry-1")
    assert dora is not None
    assert dora.name == "Dora Dry"
    assert customer(sessions, "dry-2") is None


def test_matching_callers(sessions: sessionmaker[Session]) -> None:
    load(
        sessions,
        "match-2,Maija Match,0407000001;0407000002,",
        "match-1,Markku Match,0407000002,",
        "match-3,Minna Match,0407000002,",
    )
    with sessions() as session:
        unique = match_caller(session, "+358407000001", hash_key=KEY)
        assert unique.status is CustomerMatch.MATCHED
        assert (unique.customer_id, unique.candidates) == ("match-2", ("match-2",))
        shared = match_caller(session, "+358407000002", hash_key=KEY)
        assert shared.status is CustomerMatch.AMBIGUOUS
        assert shared.customer_id is None
        assert shared.candidates == ("match-1", "match-2", "match-3")
        unknown = match_caller(session, "+358407999999", hash_key=KEY)
        assert (unknown.status, unknown.customer_id, unknown.candidates) == (
            CustomerMatch.UNKNOWN,
            None,
            (),
        )
        assert match_caller(session, None, hash_key=KEY).status is CustomerMatch.UNKNOWN


def test_finding_customers_by_identity_and_phone(sessions: sessionmaker[Session]) -> None:
    load(
        sessions,
        "find-1,Fanni Find,0408000001,131052-308T",
        "find-2,Fanni Find (copy),0408000001,131052-308t",
        "find-3,Firma Oy,0408000003,2077474-0",
    )
    with sessions() as session:
        assert find_customers_by_identity(session, " 131052-308t", hash_key=KEY) == [
            "find-1",
            "find-2",
        ]
        assert find_customers_by_identity(session, "20774740", hash_key=KEY) == ["find-3"]
        assert find_customers_by_identity(session, "131052-308T", hash_key="other-" * 8) == []
        assert find_customers_by_phone(session, "+358 40 800 0001", hash_key=KEY) == [
            "find-1",
            "find-2",
        ]
        assert find_customers_by_phone(session, "040-8000003", hash_key=KEY) == ["find-3"]
        assert find_customers_by_phone(session, "040 899 9999", hash_key=KEY) == []
        with pytest.raises(InvalidIdentityCode):
            find_customers_by_identity(session, "131052-308U", hash_key=KEY)
        with pytest.raises(InvalidPhoneNumber):
            find_customers_by_phone(session, "anonymous", hash_key=KEY)


def test_semicolon_file_with_bom_and_crlf(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    path = tmp_path / "directory.csv"
    content = (
        'customer_id;name;phone_numbers;identity_code\r\nsemi-1;Selma;"0409000001;0409000002";\r\n'
    )
    path.write_bytes(b"\xef\xbb\xbf" + content.encode("utf-8"))
    report = import_directory(sessions, path, hash_key=KEY)
    assert (report.inserted, report.invalid) == (1, 0)
    assert phones_of(sessions, "semi-1") == {"+358409000001", "+358409000002"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("customer_id,name,phone_numbers\n", "header lacks column identity_code"),
        (HEADER + ",email\n", "header column 5 is unknown"),
        ("hdr-1,Hilkka Header,0401234567,131052-308T\n", "header column 1 is unknown"),
        ("customer_id,name,name,identity_code\n", "header names column name twice"),
        (HEADER + "\nlatin-1,M\xe4kinen,,\n", "line 2 is not UTF-8 text"),
    ],
)
def test_files_that_are_no_directory_export(
    sessions: sessionmaker[Session], tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "directory.csv"
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(DirectoryImportError, match=message) as caught:
        import_directory(sessions, path, hash_key=KEY)
    for personal in ("Hilkka", "0401234567", "131052", "kinen"):
        assert personal not in caught.value.message


def test_missing_file(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    with pytest.raises(DirectoryImportError, match="No such file or directory"):
        import_directory(sessions, tmp_path / "nope.csv", hash_key=KEY)


def test_error_list_is_capped(sessions: sessionmaker[Session]) -> None:
    report = load(sessions, *[f"cap-{n},,," for n in range(MAX_ERRORS + 5)])
    assert report.invalid == MAX_ERRORS + 5
    assert len(report.errors) == MAX_ERRORS
    assert report.errors_omitted == 5
    assert report.errors[-1].line == MAX_ERRORS + 1


def test_large_import_runs_in_batches(sessions: sessionmaker[Session]) -> None:
    rows = [f"big-{n},Customer {n},+35840{n:07d},\n" for n in range(20_000)]
    source = io.StringIO(HEADER + "\n" + "".join(rows))
    progress: list[int] = []
    report = import_directory(
        sessions, source, hash_key=KEY, on_batch=lambda r: progress.append(r.rows_read)
    )
    assert (report.rows_read, report.inserted, report.invalid) == (20_000, 20_000, 0)
    assert progress == list(range(1000, 20_001, 1000))
    with sessions() as session:
        count = select(func.count()).select_from(Customer).where(Customer.customer_id.like("big-%"))
        assert session.scalar(count) == 20_000
    source.seek(0)
    again = import_directory(sessions, source, hash_key=KEY)
    assert again.unchanged == 20_000


def test_an_interrupted_import_completes_when_run_again(sessions: sessionmaker[Session]) -> None:
    rows = [f"resume-{n},Customer {n},+358450{n:06d},\n" for n in range(2_500)]

    def stop_after_first_batch(report: DirectoryImportReport) -> None:
        raise RuntimeError("interrupted")

    source = io.StringIO(HEADER + "\n" + "".join(rows))
    with pytest.raises(RuntimeError):
        import_directory(sessions, source, hash_key=KEY, on_batch=stop_after_first_batch)
    source.seek(0)
    report = import_directory(sessions, source, hash_key=KEY)
    assert (report.unchanged, report.inserted) == (1_000, 1_500)


def test_catalogue_failure_is_reported_without_personal_data(empty_catalogue_url: str) -> None:
    engine = create_catalogue_engine(empty_catalogue_url)
    try:
        with pytest.raises(CatalogueError) as caught:
            import_directory(
                session_factory(engine),
                csv_file("nodb-1,Noora Tietokanta,0401234567,131052-308T"),
                hash_key=KEY,
            )
    finally:
        engine.dispose()
    assert "rows from line 2" in caught.value.message
    for personal in ("Noora", "0401234567", "+358401234567", "131052", "nodb-1"):
        assert personal not in caught.value.message
    assert caught.value.__cause__ is None
