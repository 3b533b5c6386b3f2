"""Timing probes: a timed function is the function itself, and reports each call when asked."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

from recarchive import probes
from recarchive.catalogue.database import transaction


class Heard:
    """A recorder: what it was told, in order (thread-safe, as a recorder must be)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[str, float]] = []

    def __call__(self, name: str, seconds: float) -> None:
        with self.lock:
            self.calls.append((name, seconds))

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture(autouse=True)
def no_recorder_left() -> Iterator[None]:
    probes.install(None)
    yield
    probes.install(None)


@pytest.fixture
def heard() -> Heard:
    recorder = Heard()
    probes.install(recorder)
    return recorder


class Failure(Exception):
    pass


@probes.timed("test: add")
def add(a: int, b: int = 0) -> int:
    """Adds."""
    return a + b


@probes.timed("test: fail")
def fail(error: Exception) -> None:
    raise error


def test_without_a_recorder_the_result_and_the_exception_pass_through() -> None:
    assert add(2, b=3) == 5
    error = Failure("as raised")
    with pytest.raises(Failure) as caught:
        fail(error)
    assert caught.value is error
    assert (add.__name__, add.__doc__) == ("add", "Adds.")


def test_each_call_is_reported_once_with_its_name_and_seconds(heard: Heard) -> None:
    assert add(1) == 1
    assert add(1, b=1) == 2
    assert heard.names == ["test: add", "test: add"]
    assert all(seconds >= 0 for _, seconds in heard.calls)


def test_a_call_that_raises_is_reported_and_its_exception_passes_through(heard: Heard) -> None:
    error = Failure("still raised")
    with pytest.raises(Failure) as caught:
        fail(error)
    assert caught.value is error
    assert heard.names == ["test: fail"]


def test_after_uninstalling_nothing_is_reported(heard: Heard) -> None:
    add(1)
    probes.install(None)
    add(2)
    assert heard.names == ["test: add"]


def test_a_call_reports_to_the_recorder_installed_when_it_began(heard: Heard) -> None:
    later = Heard()

    @probes.timed("test: switch")
    def switch() -> None:
        probes.install(later)

    switch()
    switch()
    assert (heard.names, later.names) == (["test: switch"], ["test: switch"])


def test_calls_from_many_threads_are_each_reported(heard: Heard) -> None:
    def work() -> None:
        for n in range(200):
            add(n)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert heard.names == ["test: add"] * 1600


def test_a_transaction_reports_its_commit_once_and_a_rolled_back_one_none(heard: Heard) -> None:
    engine = create_engine("sqlite://")
    sessions = sessionmaker(engine)

    def insert_then_fail() -> None:
        with transaction(sessions) as session:
            session.execute(text("INSERT INTO t VALUES (2)"))
            raise Failure("rolled back")

    with transaction(sessions) as session:
        session.execute(text("CREATE TABLE t (n INTEGER)"))
        session.execute(text("INSERT INTO t VALUES (1)"))
    with pytest.raises(Failure, match="rolled back"):
        insert_then_fail()
    with transaction(sessions) as session:
        assert session.execute(text("SELECT n FROM t")).scalars().all() == [1]
    engine.dispose()
    assert heard.names == ["step: commit", "step: commit"]
