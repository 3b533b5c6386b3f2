"""The retention policy: until when a recording is kept, and which rule says so.

``retain_until`` is computed at ingest from the call's start: the default
period (``retention.default_days``), or, when ``[[retention.rules]]`` match the
call's reason codes, queue or source, the longest period among the matching
rules. The name of the deciding rule (``default`` or the rule's name) is
stored with the recording, so every deletion can say under which rule it
happened.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection

from recarchive.config import RetentionSettings

DEFAULT_RULE = "default"


@dataclasses.dataclass(frozen=True)
class RetentionDecision:
    retain_until: dt.datetime
    rule: str
    days: int
    #: Object tag value: the default class, or the deciding rule's name.
    retention_class: str


class RetentionPolicy:
    """Decides ``retain_until`` for a call from the configured rules."""

    def __init__(self, settings: RetentionSettings) -> None:
        self.settings = settings

    def decide(
        self,
        *,
        started_at: dt.datetime,
        reasons: Collection[str],
        queue: str | None,
        source: str,
    ) -> RetentionDecision:
        fields: dict[str, set[str]] = {
            "reason": set(reasons),
            "queue": {queue} if queue else set(),
            "source": {source},
        }
        matching = [rule for rule in self.settings.rules if fields[rule.field] & set(rule.values)]
        if matching:
            # Longest wins; among equals, the first configured.
            best = max(matching, key=lambda rule: rule.days)
            days, rule_name = best.days, best.name
        else:
            days, rule_name = self.settings.default_days, DEFAULT_RULE
        return RetentionDecision(
            retain_until=started_at + dt.timedelta(days=days),
            rule=rule_name,
            days=days,
            retention_class=self.class_for(rule_name),
        )

    def class_for(self, rule: str) -> str:
        """The object tag value of recordings decided by ``rule``."""
        return self.settings.retention_class if rule == DEFAULT_RULE else rule

    def classes(self) -> dict[str, int]:
        """Every retention class and its period in days (for the bucket's backstop rules)."""
        periods = {self.settings.retention_class: self.settings.default_days}
        periods.update({rule.name: rule.days for rule in self.settings.rules})
        return periods
