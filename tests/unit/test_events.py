"""Events: what a topic does with its handlers, and that every entry point composes the process."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from recarchive.api.app import create_app
from recarchive.cli.common import AppContext
from recarchive.composition import (
    compose,
    purge_cases_after_expiry,
    purge_clips_after_erasure,
    purge_clips_after_exclusion,
    purge_clips_after_expiry,
    purge_evaluations_after_expiry,
    resume_erasures_after_expiry,
    resume_erasures_after_release,
    withdraw_from_samples,
)
from recarchive.config import load_settings
from recarchive.events import Topic
from recarchive.privacy.events import SUBJECT_ERASED, TRAINING_EXCLUDED
from recarchive.retention.events import HOLD_RELEASED, NIGHTLY_EXPIRY_DONE
from recarchive.runtime import Runtime


class TestTopic:
    def test_handlers_run_in_order_and_their_results_come_back(self) -> None:
        topic: Topic[int, str] = Topic("test.numbers")
        heard: list[str] = []

        def first(n: int) -> str:
            heard.append("first")
            return f"first {n}"

        def second(n: int) -> str:
            heard.append("second")
            return f"second {n}"

        topic.subscribe(first)
        topic.subscribe(second)
        assert topic.publish(7) == ["first 7", "second 7"]
        assert heard == ["first", "second"]

    def test_a_handler_subscribed_twice_runs_once(self) -> None:
        topic: Topic[int, int] = Topic("test.twice")
        topic.subscribe(abs)
        topic.subscribe(abs)
        assert topic.publish(-3) == [3]
        topic.unsubscribe(abs)
        topic.unsubscribe(abs)  # not subscribed any more: nothing happens
        assert topic.handlers == ()

    def test_what_a_handler_raises_reaches_the_publisher(self) -> None:
        topic: Topic[int, None] = Topic("test.raises")

        def fails(n: int) -> None:
            raise ValueError(f"handler failed on {n}")

        topic.subscribe(fails)
        with pytest.raises(ValueError, match="handler failed on 1"):
            topic.publish(1)

    def test_an_event_nobody_hears_is_logged_as_an_error(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        topic: Topic[int, None] = Topic("test.unheard")
        with caplog.at_level(logging.ERROR, logger="recarchive.events"):
            assert topic.publish(1) == []
        [record] = [r for r in caplog.records if r.name == "recarchive.events"]
        assert record.getMessage() == "event_unheard"
        assert record.__dict__["topic"] == "test.unheard"


@pytest.fixture
def uncomposed() -> Iterator[None]:
    """No handler on the domains' topics for the test; the session's are put back after it."""
    topics = (HOLD_RELEASED, NIGHTLY_EXPIRY_DONE, TRAINING_EXCLUDED, SUBJECT_ERASED)
    saved = {topic: topic.handlers for topic in topics}
    for topic, handlers in saved.items():
        for handler in handlers:
            topic.unsubscribe(handler)  # type: ignore[arg-type]
    yield
    for topic, handlers in saved.items():
        for handler in handlers:
            topic.subscribe(handler)  # type: ignore[arg-type]


def assert_composed() -> None:
    assert HOLD_RELEASED.handlers == (resume_erasures_after_release,)
    assert NIGHTLY_EXPIRY_DONE.handlers == (
        resume_erasures_after_expiry,
        purge_cases_after_expiry,
        purge_clips_after_expiry,
        purge_evaluations_after_expiry,
    )
    assert TRAINING_EXCLUDED.handlers == (withdraw_from_samples, purge_clips_after_exclusion)
    assert SUBJECT_ERASED.handlers == (purge_clips_after_erasure,)


@pytest.mark.usefixtures("uncomposed")
class TestComposition:
    def test_pending_erasures_hear_of_released_holds_and_of_the_nightly_run(self) -> None:
        compose()
        compose()  # again: nothing changes
        assert_composed()

    def test_the_cli_composes_before_any_command_runs(self) -> None:
        AppContext(None)
        assert_composed()

    def test_the_api_composes_when_its_application_is_built(self) -> None:
        create_app(Runtime(load_settings(env={})))
        assert_composed()
