"""Personal data in log lines: what the test data holds, and a scanner for every log record.

The scanner looks for two things in a line:

- the values the test data uses, in every spelling: phone numbers (E.164
  ``+358401234567``, ``358401234567``, national ``0401234567``, ``040 123
  4567`` and phonenumbers' own formats), identity codes (upper and lower
  case, with and without the century sign) and customer names. They come
  from the test sources and ``scripts/gen_calls.py`` (harvested once) and from
  what the fixtures make at run time (:func:`remember_customer`, and
  ``tests.api_fixtures.PERSONAL``);
- anything shaped like a Finnish mobile number, an E.164 number of Finland or
  a henkilötunnus, so that randomly generated data (``scripts/gen_calls.py``
  with a seed) is caught too.

Customer ids (``C-100``, ``C100001``) are pseudonymous ids and allowed.
``tests/conftest.py`` installs :class:`LogScan` on the root logger for the whole
session; the CLI tests feed it the JSON log lines of the commands they run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import traceback
from collections.abc import Iterable
from pathlib import Path

import phonenumbers

REPO = Path(__file__).resolve().parent.parent

#: Shapes of personal data, whatever the value: a Finnish number in E.164 or
#: international form, a mobile number in national form, a henkilötunnus.
SHAPES = re.compile(
    r"(?<![\w+])(?:\+|00)358[ -]?\d(?:[ -]?\d){5,11}(?!\d)"
    r"|(?<![\w.])0(?:4\d|50)[ -]?\d{3}[ -]?\d{3,4}(?!\d)"
    r"|(?<![\w-])\d{6}[-+A-FU-Y]\d{3}[0-9A-Y](?!\w)",
    re.IGNORECASE,
)

#: Opaque ids whose hex digits can spell a number by chance (UUIDs, digests): not scanned.
_OPAQUE = re.compile(
    r"(?<![0-9a-f])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![0-9a-f])"
    r"|(?<![0-9a-f])[0-9a-f]{32,}(?![0-9a-f])",
    re.IGNORECASE,
)

_NUMBER_LITERAL = re.compile(r"(?<![\w+])(?:\+358|0)\d[\d ]{5,13}\d(?!\d)")
_HETU_LITERAL = re.compile(r"(?<![\w-])\d{6}[-+A-FU-Y]\d{3}[0-9A-Y](?!\w)")
_NAME_IN_CALL = re.compile(r"add_customer\([^,()]+,\s*[^,()]+,\s*\"([^\"]+)\"")
_NAME_IN_CSV = re.compile(r"[\"'][\w.-]+,([A-ZÅÄÖ][^,\"'\n]{1,40}),")
_NAME_TUPLE = re.compile(r"^(FIRST_NAMES|LAST_NAMES) = \((.*?)\)", re.MULTILINE | re.DOTALL)


def number_spellings(number: str) -> set[str]:
    """``number`` (any Finnish spelling) as people and programs write it."""
    try:
        parsed = phonenumbers.parse(number, "FI")
    except phonenumbers.NumberParseException:
        return set()
    if parsed.country_code != 358 or not phonenumbers.is_possible_number(parsed):
        return set()
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    national = "0" + e164.removeprefix("+358")
    return {
        e164,
        e164.removeprefix("+"),
        "00" + e164.removeprefix("+"),
        national,
        f"{national[:3]} {national[3:6]} {national[6:]}",
        phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL),
        phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
    }


def code_spellings(code: str) -> set[str]:
    """An identity code in upper and lower case, with and without its century sign."""
    return {code, code.upper(), code.lower(), code[:6] + code[7:]}


def name_spellings(name: str) -> set[str]:
    """A name as written and as JSON writes it with ``ensure_ascii``."""
    return {name, json.dumps(name)[1:-1]}


def harvest(paths: Iterable[Path]) -> set[str]:
    """The numbers, identity codes and names written in test sources and data scripts."""
    values: set[str] = set()
    for path in paths:
        text = path.read_text(encoding="utf-8")
        for match in _NUMBER_LITERAL.finditer(text):
            values |= number_spellings(match.group())
        for match in _HETU_LITERAL.finditer(text):
            values |= code_spellings(match.group())
        for pattern in (_NAME_IN_CALL, _NAME_IN_CSV):
            for match in pattern.finditer(text):
                values |= name_spellings(match.group(1).strip())
        tuples = {
            m.group(1): re.findall(r'"([^"]+)"', m.group(2)) for m in _NAME_TUPLE.finditer(text)
        }
        for first in tuples.get("FIRST_NAMES", []):
            for last in tuples.get("LAST_NAMES", []):
                values |= name_spellings(f"{first} {last}")
    # Placeholders (000000-0000, 0000000000) are not anybody's data, and match any zero id.
    return {value for value in values if len(value) >= 4 and len(set(value)) >= 4}


def format_record(record: logging.LogRecord) -> str:
    """Everything a log line can show of ``record``: message, extra fields, exception text."""
    parts = [record.name, record.getMessage()]
    standard = _STANDARD_ATTRIBUTES
    extra = {k: v for k, v in record.__dict__.items() if k not in standard}
    if extra:
        parts.append(json.dumps(extra, default=str, ensure_ascii=False))
    if record.exc_info and record.exc_info[0] is not None:
        parts.append("".join(traceback.format_exception(*record.exc_info)))
    if record.exc_text:
        parts.append(record.exc_text)
    if record.stack_info:
        parts.append(record.stack_info)
    return "\n".join(parts)


_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


@dataclasses.dataclass(frozen=True)
class Finding:
    origin: str  # the logger, or the command whose output held the line
    value: str
    line: str


class PersonalDataScanner:
    """Finds the personal values of the test data, and personal-data shapes, in text."""

    def __init__(self, values: Iterable[str] = (), *, dynamic: Iterable[str] = ()) -> None:
        self.values: set[str] = set(values)
        self.dynamic = dynamic  # a live set that grows while tests run
        self._pattern: re.Pattern[str] | None = None
        self._size = -1

    def add(self, *values: str) -> None:
        self.values.update(v for v in values if v)

    def _compiled(self) -> re.Pattern[str]:
        values = self.values | set(self.dynamic)
        if self._pattern is None or len(values) != self._size:
            ordered = sorted(values, key=len, reverse=True)
            # Not within a longer run of digits (another number, a byte count).
            alternatives = "|".join(map(re.escape, ordered)) or r"(?!)"
            self._pattern = re.compile(rf"(?<!\d)(?:{alternatives})(?!\d)")
            self._size = len(values)
        return self._pattern

    def find(self, text: str) -> list[str]:
        """The personal values (and shapes) in ``text``; empty when it is clean."""
        text = _OPAQUE.sub(" ", text)
        found = {m.group() for m in self._compiled().finditer(text)}
        found |= {m.group() for m in SHAPES.finditer(text)}
        return sorted(found)


class LogScan(logging.Handler):
    """A handler that scans every record it sees; findings wait for :meth:`take`."""

    def __init__(self, scanner: PersonalDataScanner) -> None:
        super().__init__(logging.NOTSET)
        self.scanner = scanner
        self.findings: list[Finding] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = format_record(record)
        except Exception:  # a record that cannot be formatted is not a log line
            return
        self.findings += [Finding(record.name, v, text) for v in self.scanner.find(text)]

    def scan_output(self, origin: str, output: str) -> None:
        """Scan the JSON log lines of a command's output (other lines are its messages)."""
        for line in output.splitlines():
            if line.lstrip().startswith("{"):
                self.findings += [Finding(origin, v, line) for v in self.scanner.find(line)]

    def take(self) -> list[Finding]:
        taken, self.findings = self.findings, []
        return taken


def report(findings: Iterable[Finding]) -> str:
    lines = ["personal data in log lines:"]
    for finding in findings:
        excerpt = finding.line if len(finding.line) < 2000 else finding.line[:2000] + "..."
        lines.append(f"- {finding.value!r} from {finding.origin}:\n    {excerpt}")
    return "\n".join(lines)


#: The scanner of this test session (``tests/conftest.py`` installs its handler).
SCANNER = PersonalDataScanner(
    harvest([*sorted((REPO / "tests").rglob("*.py")), REPO / "scripts" / "gen_calls.py"])
)
SESSION = LogScan(SCANNER)


def remember_customer(name: str, phones: Iterable[str], identity_code: str | None) -> None:
    """Values a fixture stored: the scan looks for them from now on."""
    SCANNER.add(*name_spellings(name))
    for phone in phones:
        SCANNER.add(*number_spellings(phone))
    if identity_code:
        SCANNER.add(*code_spellings(identity_code))
