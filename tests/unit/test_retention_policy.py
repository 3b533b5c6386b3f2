"""Retention decisions: default, matching rules, longest wins."""

from __future__ import annotations

import datetime as dt

from recarchive.config import RetentionRule, RetentionSettings
from recarchive.retention.policy import RetentionPolicy

START = dt.datetime(2026, 3, 14, 9, 0, tzinfo=dt.UTC)
POLICY = RetentionPolicy(
    RetentionSettings(
        rules=[
            RetentionRule(name="contracts", field="reason", values=["new_contract"], days=730),
            RetentionRule(name="billing-queue", field="queue", values=["601"], days=500),
            RetentionRule(name="short", field="source", values=["lab"], days=30),
        ]
    )
)


def decide(reasons: list[str], queue: str | None = None, source: str = "pbx") -> tuple[str, int]:
    decision = POLICY.decide(started_at=START, reasons=reasons, queue=queue, source=source)
    assert decision.retain_until == START + dt.timedelta(days=decision.days)
    return decision.rule, decision.days


def test_no_rule_matches_gives_the_default_year() -> None:
    assert decide(["billing"]) == ("default", 365)


def test_a_matching_rule_decides() -> None:
    assert decide(["billing"], queue="601") == ("billing-queue", 500)
    assert decide([], source="lab") == ("short", 30)


def test_the_longest_matching_rule_wins() -> None:
    assert decide(["new_contract", "billing"], queue="601") == ("contracts", 730)
