"""Reason codes from CDR fields by the configured rules."""

from __future__ import annotations

import datetime as dt

from recarchive.config import ReasonRule, ReasonSettings
from recarchive.ingest.interfaces import CallFacts
from recarchive.ingest.tagging import ReasonTagger

START = dt.datetime(2026, 3, 14, 9, 0, tzinfo=dt.UTC)


def facts(**fields: str) -> CallFacts:
    return CallFacts(started_at=START, fields=fields)


def tagger(*rules: ReasonRule, default: str = "other") -> ReasonTagger:
    return ReasonTagger(ReasonSettings(rules=list(rules), default_code=default))


def test_every_matching_rule_adds_its_code_in_taxonomy_order() -> None:
    reasons = tagger(
        ReasonRule(code="moving", field="userfield", pattern=r"reason=moving"),
        ReasonRule(code="billing", field="queue", pattern=r"^601$"),
        ReasonRule(code="outage", field="ivr", pattern=r"^3$"),
    )
    assert reasons.reasons_for(facts(queue="601", userfield="reason=moving")) == [
        "billing",
        "moving",
    ]


def test_unmatched_call_gets_the_default_code_or_nothing() -> None:
    rule = ReasonRule(code="billing", field="queue", pattern=r"^601$")
    assert tagger(rule).reasons_for(facts(queue="999")) == ["other"]
    assert tagger(rule, default="").reasons_for(facts(queue="999")) == []


def test_attribute_rules_look_at_contact_attributes() -> None:
    rule = ReasonRule(code="fault_report", field="attribute", attribute="reason", pattern="vika")
    assert tagger(rule).reasons_for(facts(**{"attribute:reason": "vikailmoitus"})) == [
        "fault_report"
    ]


def test_a_stop_rule_ends_the_evaluation() -> None:
    reasons = tagger(
        ReasonRule(code="moving", field="userfield", pattern=r"reason=moving", stop=True),
        ReasonRule(code="billing", field="queue", pattern=r"^601$"),
    )
    assert reasons.reasons_for(facts(queue="601", userfield="reason=moving")) == ["moving"]
    assert reasons.reasons_for(facts(queue="601")) == ["billing"]
