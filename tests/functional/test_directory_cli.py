"""``recarchive directory import`` as an operator runs it: output, exit statuses, dry run."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from recarchive.catalogue.database import create_catalogue_engine
from recarchive.catalogue.identity import identity_hash
from recarchive.catalogue.models import Customer
from tests.functional.helpers import Runner, assert_one_line_error

KEY = "functional-directory-key-" * 2
HEADER = "customer_id,name,phone_numbers,identity_code"


@pytest.fixture(scope="module")
def catalogue(catalogue_url: str) -> Iterator[Engine]:
    engine = create_catalogue_engine(catalogue_url)
    yield engine
    engine.dispose()


@pytest.fixture
def env(catalogue_url: str) -> dict[str, str]:
    return {"RECARCHIVE_CATALOGUE_URL": catalogue_url, "RECARCHIVE_IDENTITY_HASH_KEY": KEY}


def write(tmp_path: Path, *lines: str, name: str = "directory.csv") -> str:
    (tmp_path / name).write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return name


def stored(engine: Engine, customer_id: str) -> Customer | None:
    with Session(engine) as session:
        return session.scalar(select(Customer).where(Customer.customer_id == customer_id))


def test_help_states_the_exit_statuses(run_cli: Runner) -> None:
    result = run_cli("directory", "import", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "0 when every row loaded; 3 when some rows were invalid" in text
    assert "1 when FILE could not be imported at all" in text


@pytest.mark.process
def test_clean_file_exits_0(
    run_cli: Runner, env: dict[str, str], tmp_path: Path, catalogue: Engine
) -> None:
    name = write(
        tmp_path,
        'cli-ok-1,Matti Meikäläinen,"040 123 4567;09 123 4567",131052-308T',
        "cli-ok-2,Oy Sähkö Ab,,2077474-0",
    )
    result = run_cli("directory", "import", name, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "read 2 rows: 2 inserted, 0 updated, 0 unchanged, 0 removed, 0 invalid"
    ]
    assert "131052" not in result.stderr
    assert "Matti" not in result.stderr
    matti = stored(catalogue, "cli-ok-1")
    assert matti is not None
    assert matti.identity_hash == identity_hash("131052-308T", KEY)

    again = run_cli("directory", "import", name, env=env)
    assert again.returncode == 0, again.stderr
    assert "0 inserted, 0 updated, 2 unchanged" in again.stdout


def test_invalid_rows_exit_2_and_are_listed_without_personal_data(
    run_cli: Runner, env: dict[str, str], tmp_path: Path, catalogue: Engine
) -> None:
    name = write(
        tmp_path,
        "cli-bad-1,Liisa Laine,0401112223,",
        "cli-bad-2,,0402223334,",
        "cli-bad-3,Kalle Kaksi,0405556667;0800123,",
        "cli-bad-4,Heikki Hetu,,131052-308U",
        "cli-bad-5,Olli Ylimäärä,,,extra",
    )
    result = run_cli("directory", "import", name, env=env)
    assert result.returncode == 3, result.stderr  # done, but the invalid rows remain
    # stderr also carries the log event (JSON when not on a terminal): ids and counts only.
    assert [line for line in result.stderr.splitlines() if not line.startswith("{")] == [
        "line 3: name is empty",
        "line 4: phone_numbers: number #2 is not a valid phone number",
        "line 5: identity_code is invalid: henkilötunnus has an invalid check character",
        "line 6: wrong column count: expected 4, found 5",
    ]
    assert "read 5 rows: 1 inserted, 0 updated, 0 unchanged, 0 removed, 4 invalid" in result.stdout
    for personal in ("Kalle", "0800123", "Heikki", "131052", "308U", "Olli", "extra", "0402"):
        assert personal not in result.stdout + result.stderr
    assert stored(catalogue, "cli-bad-1") is not None
    assert stored(catalogue, "cli-bad-3") is None


def test_dry_run_writes_nothing(
    run_cli: Runner, env: dict[str, str], tmp_path: Path, catalogue: Engine
) -> None:
    keep = write(tmp_path, "cli-dry-0,Dagmar Dry,0406000000,", name="keep.csv")
    assert run_cli("directory", "import", keep, env=env).returncode == 0
    name = write(tmp_path, "cli-dry-1,Dora Dry,0406000001,", "cli-dry-2,Dan Dry,0406000002,")
    result = run_cli("directory", "import", "--dry-run", "--replace", name, env=env)
    assert result.returncode == 0, result.stderr
    summary = r"read 2 rows: 2 inserted, 0 updated, 0 unchanged, [1-9]\d* removed, 0 invalid"
    assert re.fullmatch(summary, result.stdout.splitlines()[0])
    assert result.stdout.splitlines()[1] == "dry run: nothing was written"
    assert stored(catalogue, "cli-dry-1") is None
    assert stored(catalogue, "cli-dry-0") is not None


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (None, ("missing.csv", "No such file or directory")),
        (b"customer_id,name,phone_numbers\ncli-h,Hilkka,,\n", ("header lacks column",)),
        (b"cli-h,Hilkka Header,0401234567,131052-308T\n", ("header column 1 is unknown",)),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", ("line 1 is not UTF-8 text",)),
        (b"", ("is empty",)),
    ],
)
@pytest.mark.process
def test_fatal_errors_exit_1_with_one_line(
    run_cli: Runner,
    env: dict[str, str],
    tmp_path: Path,
    content: bytes | None,
    fragments: tuple[str, ...],
) -> None:
    if content is not None:
        (tmp_path / "missing.csv").write_bytes(content)
    result = run_cli("directory", "import", "missing.csv", env=env)
    assert_one_line_error(result, *fragments)
    assert "Hilkka" not in result.stderr
    assert "0401234567" not in result.stderr


def test_unknown_region_is_a_one_line_error(
    run_cli: Runner, env: dict[str, str], tmp_path: Path
) -> None:
    name = write(tmp_path, "cli-region-1,Rauni,0401234567,")
    result = run_cli("directory", "import", "--region", "XX", name, env=env)
    assert_one_line_error(result, "region 'XX'")


def test_uninitialised_catalogue_says_what_to_do(
    run_cli: Runner, empty_catalogue_url: str, tmp_path: Path
) -> None:
    name = write(tmp_path, "cli-init-1,Inkeri,0401234567,")
    result = run_cli(
        "directory", "import", name, env={"RECARCHIVE_CATALOGUE_URL": empty_catalogue_url}
    )
    assert_one_line_error(result, "run `recarchive init`")
