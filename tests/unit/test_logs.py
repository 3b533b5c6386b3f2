"""Log lines show an exception's class and frames, never its message; SQL parameters stay out."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from recarchive.catalogue.database import create_catalogue_engine
from recarchive.errors import RecArchiveError
from recarchive.logs import SERVER_LOGGERS, JsonFormatter, TextFormatter, configure_logging

SECRET = "+358401234567"


def _failed_record() -> logging.LogRecord:
    try:
        try:
            raise KeyError(SECRET)
        except KeyError as inner:
            raise ValueError(f"lookup of {SECRET} failed") from inner
    except ValueError:
        return logging.makeLogRecord(
            {"name": "uvicorn.error", "msg": "Exception in ASGI application", "exc_info": _info()}
        )


def _info() -> tuple[type[BaseException], BaseException, object]:
    import sys

    info = sys.exc_info()
    assert info[0] is not None
    assert info[1] is not None
    return info[0], info[1], info[2]


@pytest.mark.parametrize("formatter", [JsonFormatter(), TextFormatter()])
def test_an_exception_is_logged_as_classes_and_frames(formatter: logging.Formatter) -> None:
    line = formatter.format(_failed_record())
    for shown in ("ValueError", "KeyError", "test_logs.py"):
        assert shown in line
    assert SECRET not in line


@pytest.fixture
def logging_restored() -> Iterator[None]:
    saved = {
        name: (lg.handlers[:], lg.level, lg.propagate)
        for name in ("recarchive", *SERVER_LOGGERS)
        for lg in [logging.getLogger(name)]
    }
    yield
    for name, (handlers, level, propagate) in saved.items():
        lg = logging.getLogger(name)
        lg.handlers[:], lg.level, lg.propagate = handlers, level, propagate


@pytest.mark.usefixtures("logging_restored")
def test_uvicorn_logs_through_recarchive_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    configure_logging("INFO", "json")
    try:
        raise RuntimeError(f"parameters ({SECRET!r})")
    except RuntimeError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    logging.getLogger("uvicorn.error").info("Started server process")  # below warning
    [line] = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["logger"] == "uvicorn.error"
    assert "RuntimeError" in entry["exception"]
    assert SECRET not in line


@pytest.mark.parametrize(
    ("statement", "error"),
    [
        # translated (no schema): recarchive's error names the catalogue, not the statement
        ("INSERT INTO nowhere (number) VALUES (:n)", RecArchiveError),
        # left to SQLAlchemy (a constraint refused it): parameters hidden all the same
        ("INSERT INTO t (number) VALUES (:n)", SQLAlchemyError),
    ],
)
def test_sql_parameters_are_in_no_error_message(statement: str, error: type[Exception]) -> None:
    engine = create_catalogue_engine("sqlite://")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("CREATE TABLE t (number TEXT CHECK (number = 'x'))")
            with pytest.raises(error) as failed:
                connection.execute(text(statement), {"n": SECRET})
        chain: BaseException | None = failed.value
        while chain is not None:  # the whole chain a traceback would show
            assert SECRET not in str(chain)
            chain = chain.__cause__
    finally:
        engine.dispose()
