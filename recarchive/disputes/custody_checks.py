"""Checking an evidence package's custody record: the audit entries, the anchor, an export.

Part of :mod:`recarchive.disputes.verify`; imports nothing of the archive.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from recarchive.disputes.package_format import (
    ANCHOR,
    CUSTODY,
    READ_ERRORS,
    VerificationReport,
    canonical_entry_hash,
)


@dataclasses.dataclass
class Custody:
    entries: dict[int, str]  # seq -> hash, of entries whose hash recomputes
    last_seq: int | None


def check_custody(lines: Iterator[bytes] | None, report: VerificationReport) -> Custody | None:
    """Every custody entry's hash recomputes; consecutive entries link; in order."""
    if lines is None:
        report.add("custody", False, f"{CUSTODY} is missing")
        return None
    hashes: dict[int, str] = {}
    problems: list[str] = []
    previous: tuple[int, str] | None = None
    try:
        for number, line in enumerate(lines, 1):
            problem, seq, digest = _custody_line(number, line, previous)
            if problem is not None:
                problems.append(problem)
            if seq is not None and digest is not None:
                hashes[seq] = digest
                previous = (seq, digest)
    except READ_ERRORS as exc:
        problems.append(f"{CUSTODY} cannot be read ({exc})")
    if problems:
        report.add("custody", False, "; ".join(problems[:20]))
    else:
        report.add(
            "custody",
            True,
            f"{len(hashes)} audit entr{'y' if len(hashes) == 1 else 'ies'}: every hash "
            "recomputes and consecutive entries link",
        )
    return Custody(hashes, max(hashes) if hashes else None)


def _custody_line(
    number: int, line: bytes, previous: tuple[int, str] | None
) -> tuple[str | None, int | None, str | None]:
    """One custody line: (problem, seq, hash)."""
    try:
        entry = json.loads(line)
        seq, stated = int(entry["seq"]), str(entry["hash"])
    except (ValueError, KeyError, TypeError):
        return f"line {number} is not an audit entry", None, None
    if previous is not None and seq <= previous[0]:
        return f"entry {seq} (line {number}) is out of order", None, None
    if canonical_entry_hash(entry) != stated:
        return f"entry {seq} (line {number}) does not match its hash: it was changed", None, None
    if previous is not None and seq == previous[0] + 1 and entry.get("prev_hash") != previous[1]:
        return f"entry {seq} does not link to entry {previous[0]}", seq, stated
    return None, seq, stated


def check_anchor(
    data: bytes | None,
    manifest: dict[str, Any] | None,
    custody: Custody | None,
    report: VerificationReport,
) -> None:
    """The anchor's signature, its installation, and that it covers the custody record."""
    if data is None:
        report.add("anchor", False, f"{ANCHOR} is missing or unreadable")
        return
    try:
        document = json.loads(data)
        anchor = dict(document["anchor"])
        public = Ed25519PublicKey.from_public_bytes(
            base64.b64decode(document["public_key_ed25519"], validate=True)
        )
        payload = {k: v for k, v in anchor.items() if k != "signature"}
        signed = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        public.verify(base64.b64decode(anchor["signature"], validate=True), signed)
        seq = int(anchor["seq"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        report.add("anchor", False, f"{ANCHOR} cannot be read")
        return
    except InvalidSignature:
        report.add("anchor", False, f"the anchor in {ANCHOR} has no valid signature by its key")
        return
    problems = []
    installation = (manifest or {}).get("installation_id")
    if manifest is not None and anchor.get("installation_id") != installation:
        problems.append("it is another installation's anchor")
    last = custody.last_seq if custody else None
    if last is not None and seq < last:
        problems.append(f"the custody entries after entry {seq} are newer than the anchor")
    if custody and seq in custody.entries and custody.entries[seq] != anchor.get("hash"):
        problems.append(f"custody entry {seq} differs from the anchored hash")
    where = (
        f"the audit chain's entry {seq} (hash {str(anchor.get('hash'))[:16]}…), "
        f"anchored {anchor.get('at')} by the audit key {anchor.get('key_id')}"
    )
    if problems:
        report.add("anchor", False, f"{where}: " + "; ".join(problems))
    else:
        report.add("anchor", True, f"{where}: it covers every custody entry")


def check_audit_export(path: Path, custody: Custody | None, report: VerificationReport) -> None:
    try:
        exported, chain_problem = _read_export(path)
    except OSError as exc:
        report.add("audit export", False, f"{path} cannot be read: {exc.strerror}")
        return
    problems = [chain_problem] if chain_problem else []
    for seq, digest in sorted((custody.entries if custody else {}).items()):
        found = exported.get(seq)
        if found is None:
            problems.append(f"custody entry {seq} is not in the export")
        elif found != digest:
            problems.append(f"custody entry {seq} differs from entry {seq} of the export")
    if problems:
        report.add("audit export", False, "; ".join(problems[:20]))
    else:
        report.add(
            "audit export",
            True,
            f"{len(exported)} exported entries link; every custody entry is in it at its place",
        )


def _read_export(path: Path) -> tuple[dict[int, str], str | None]:
    """seq -> hash of an audit export, and the first problem of its chain (or None)."""
    hashes: dict[int, str] = {}
    problem: str | None = None
    previous: tuple[int, str] | None = None
    with path.open("rb") as handle:
        for number, line in enumerate(_nonblank(handle), 1):
            try:
                entry = json.loads(line)
                seq, stated = int(entry["seq"]), str(entry["hash"])
            except (ValueError, KeyError, TypeError):
                problem = problem or f"line {number} of the export is not an audit entry"
                continue
            if problem is None and canonical_entry_hash(entry) != stated:
                problem = f"entry {seq} of the export does not match its hash"
            linked = (
                previous is None or seq != previous[0] + 1 or entry.get("prev_hash") == previous[1]
            )
            if problem is None and not linked:
                problem = f"entry {seq} of the export does not link to entry {seq - 1}"
            hashes[seq] = stated
            previous = (seq, stated)
    return hashes, problem


def _nonblank(lines: Iterable[bytes]) -> Iterator[bytes]:
    return (line for line in lines if line.strip())
