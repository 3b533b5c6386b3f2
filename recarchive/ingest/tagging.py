"""Reason codes for a call, assigned by the configured rules from its CDR fields."""

from __future__ import annotations

import re

from recarchive.config import ReasonSettings
from recarchive.ingest.interfaces import CallFacts


class ReasonTagger:
    """Applies ``[[reasons.rules]]``: every matching rule adds its code.

    A call that no rule matches gets ``reasons.default_code`` (if set). Codes
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
            )
            for rule in settings.rules
        ]

    def reasons_for(self, facts: CallFacts) -> list[str]:
        codes = {
            code
            for field, pattern, code in self.rules
            if (value := facts.fields.get(field)) and pattern.search(value)
        }
        if not codes and self.default_code:
            codes = {self.default_code}
        return sorted(codes, key=lambda code: self.order.get(code, len(self.order)))

    def is_known(self, code: str) -> bool:
        return code in self.order
