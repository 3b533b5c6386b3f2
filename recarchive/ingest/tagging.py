"""Reason codes for a call, assigned by the configured rules from its CDR fields."""

from __future__ import annotations

import re

from recarchive.config import ReasonSettings
from recarchive.ingest.interfaces import CallFacts


class ReasonTagger:
    """Applies ``[[reasons.rules]]`` in order: every matching rule adds its code.

    A matching rule with ``stop = true`` ends the evaluation (an exact
    ``reason=`` in the userfield can so override what the queue suggests). A
    call that no rule matches gets ``reasons.default_code`` (if set). Codes
    come back in taxonomy order, each once.
    """

    def __init__(self, settings: ReasonSettings) -> None:
        self.order = {code: index for index, code in enumerate(settings.codes)}
        self.default_code = settings.default_code
        self.rules = [
            (
                f"attribute:{rule.attribute}" if rule.field == "attribute" else rule.field,
                re.compile(rule.pattern),
                rule.code,
                rule.stop,
            )
            for rule in settings.rules
        ]

    def reasons_for(self, facts: CallFacts) -> list[str]:
        codes: set[str] = set()
        for field, pattern, code, stop in self.rules:
            value = facts.fields.get(field)
            if value and pattern.search(value):
                codes.add(code)
                if stop:
                    break
        if not codes and self.default_code:
            codes = {self.default_code}
        return sorted(codes, key=lambda code: self.order.get(code, len(self.order)))

    def is_known(self, code: str) -> bool:
        return code in self.order
