"""Checking an evidence package offline, years later, without the archive.

:func:`verify_package` reads the zip written by
:mod:`recarchive.disputes.evidence` and checks, without extracting anything
to disk: every file the manifest lists is there with its SHA-256 and nothing
else is; ``SHA256SUMS`` agrees; the Ed25519 signature over ``manifest.json``
(with the package's key or a pinned one); the RFC 3161 timestamp over it,
when the package has one; the custody record (every entry's hash recomputes,
consecutive entries link, the signed audit anchor covers them) and, given an
export of the audit log, that each custody entry is in it at its place.

It imports no part of the archive (no catalogue, store or settings): only
the standard library, ``cryptography`` and ``rfc3161_client``, so that it
runs on a court expert's machine with no configuration at all.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from rfc3161_client import VerificationError, VerifierBuilder, decode_timestamp_response

from recarchive.disputes.custody_checks import check_anchor, check_audit_export, check_custody
from recarchive.disputes.package_format import (
    ANCHOR,
    CUSTODY,
    FORMAT,
    MANIFEST,
    PUBLIC_KEY,
    READ_ERRORS,
    SIGNATURE,
    SUMS,
    TIMESTAMP,
    TSA_CA,
    VerificationReport,
    key_fingerprint,
    read_public_key,
)

_CHUNK = 1024 * 1024
_MAX_ENTRIES = 100_000
_MAX_FILE = 64 * 1024**3  # one recording: far beyond a day of WAV
_MAX_SMALL = 256 * 1024**2  # the manifest, sums, keys, anchor, timestamp: read whole
_NAME = re.compile(r"^(audio/)?[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class PackageUnreadable(Exception):
    """The zip cannot be read, or holds names or sizes no package has."""


class _Package:
    """The zip, its names checked, read by name only (never extracted)."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        infos = archive.infolist()
        if len(infos) > _MAX_ENTRIES:
            raise PackageUnreadable(f"the zip holds {len(infos)} entries: no package has as many")
        self.infos: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            if info.filename in self.infos:
                raise PackageUnreadable(f"the zip holds {info.filename!r} twice")
            if not _NAME.match(info.filename) or ".." in info.filename:
                raise PackageUnreadable(f"the zip holds a file named {info.filename!r}")
            if info.file_size > _MAX_FILE:
                raise PackageUnreadable(f"{info.filename} claims {info.file_size} bytes")
            self.infos[info.filename] = info

    def digest(self, name: str) -> str:
        """SHA-256 of one file, streamed; OSError/zipfile errors when it cannot be read."""
        sha = hashlib.sha256()
        with self.archive.open(self.infos[name]) as entry:
            while chunk := entry.read(_CHUNK):
                sha.update(chunk)
        return sha.hexdigest()

    def read(self, name: str) -> bytes | None:
        """A small file's bytes; None when missing or unreadable."""
        info = self.infos.get(name)
        if info is None or info.file_size > _MAX_SMALL:
            return None
        try:
            return self.archive.read(info)
        except READ_ERRORS:
            return None

    def lines(self, name: str) -> Iterator[bytes]:
        with self.archive.open(self.infos[name]) as entry:
            yield from entry


def verify_package(
    path: Path | IO[bytes],
    *,
    public_key_pem: bytes | None = None,
    tsa_ca_pem: bytes | None = None,
    audit_export: Path | None = None,
) -> VerificationReport:
    """Check the package at ``path``; the report lists every check and says what failed.

    ``public_key_pem``: the installation's published key, pinned (else the
    package's own key is used, and its fingerprint reported for comparison).
    ``tsa_ca_pem``: the TSA's CA certificate, pinned (else the package's
    ``tsa-ca.pem``). ``audit_export``: the output of ``recarchive audit export``.
    """
    report = VerificationReport()
    try:
        with zipfile.ZipFile(path) as archive:
            package = _Package(archive)
            _verify(package, report, public_key_pem, tsa_ca_pem, audit_export)
    except (zipfile.LargeZipFile, PackageUnreadable, *READ_ERRORS) as exc:
        report.add("package", False, f"not a readable evidence package: {exc}")
    return report


def _verify(
    package: _Package,
    report: VerificationReport,
    public_key_pem: bytes | None,
    tsa_ca_pem: bytes | None,
    audit_export: Path | None,
) -> None:
    manifest_bytes = package.read(MANIFEST)
    manifest = _parse_manifest(manifest_bytes, report)
    files: dict[str, str] = manifest.get("files", {}) if manifest else {}
    _check_files(package, files, manifest, report)
    _check_sums(package, files, report)
    _check_signature(package, manifest_bytes, public_key_pem, report)
    _check_timestamp(package, manifest_bytes, manifest, tsa_ca_pem, report)
    custody = check_custody(package.lines(CUSTODY) if CUSTODY in package.infos else None, report)
    check_anchor(package.read(ANCHOR), manifest, custody, report)
    if audit_export is not None:
        check_audit_export(audit_export, custody, report)


def _parse_manifest(data: bytes | None, report: VerificationReport) -> dict[str, Any] | None:
    if data is None:
        report.add("manifest", False, f"{MANIFEST} is missing or unreadable")
        return None
    try:
        manifest = json.loads(data)
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} manifest")
        files = manifest.get("files")
        if not isinstance(files, dict) or not all(
            isinstance(v, str) and _HEX64.match(v) for v in files.values()
        ):
            raise ValueError("its file list is not {name: sha256}")
        recordings = manifest.get("recordings")
        if not isinstance(recordings, list) or not all(
            isinstance(r, dict) and isinstance(r.get("file"), str) for r in recordings
        ):
            raise ValueError("its recordings are not a list of files")
        if not isinstance(manifest.get("case"), dict):
            raise ValueError("it names no case")
    except ValueError as exc:
        report.add("manifest", False, f"{MANIFEST} cannot be read: {exc}")
        return None
    report.add(
        "manifest",
        True,
        f"case {manifest['case'].get('reference')}, {len(recordings)} recording(s), "
        f"made {manifest.get('generated_at')} by {manifest.get('generated_by')}",
    )
    return manifest


def _check_files(
    package: _Package,
    files: dict[str, str],
    manifest: dict[str, Any] | None,
    report: VerificationReport,
) -> None:
    """Every listed file present with its SHA-256; every recording's file listed; nothing else."""
    if manifest is None:
        report.add("files", False, "no file can be checked without a readable manifest")
        return
    missing, differing = [], []
    for name, expected in sorted(files.items()):
        if name not in package.infos:
            missing.append(name)
            continue
        try:
            actual = package.digest(name)
        except READ_ERRORS:
            actual = None  # a damaged entry (its CRC fails): as good as changed
        if actual != expected:
            differing.append(name)
    for row in manifest["recordings"]:
        if files.get(row["file"]) != row.get("sha256"):
            differing.append(f"{row.get('file')} (its recording's SHA-256 in the manifest)")
    problems = [f"{name}: missing" for name in missing]
    problems += [f"{name}: does not match its SHA-256" for name in differing]
    if problems:
        report.add("files", False, "; ".join(problems))
    else:
        report.add("files", True, f"{len(files)} file(s) present, each matching its SHA-256")
    allowed = set(files) | {MANIFEST, SIGNATURE}
    if manifest.get("timestamp"):
        allowed.add(TIMESTAMP)
    unexpected = sorted(set(package.infos) - allowed)
    if unexpected:
        report.add(
            "unexpected files", False, "not listed in the manifest: " + ", ".join(unexpected)
        )
    else:
        report.add("unexpected files", True, "none: every file is listed in the signed manifest")


def _check_sums(package: _Package, files: dict[str, str], report: VerificationReport) -> None:
    data = package.read(SUMS)
    if data is None:
        report.add(SUMS, False, f"{SUMS} is missing or unreadable")
        return
    try:
        listed = dict(_parse_sums(data.decode()))
    except (UnicodeDecodeError, ValueError) as exc:
        report.add(SUMS, False, f"{SUMS} cannot be read: {exc}")
        return
    expected = {name: digest for name, digest in files.items() if name != SUMS}
    wrong = sorted(n for n in set(listed) | set(expected) if listed.get(n) != expected.get(n))
    if wrong:
        report.add(SUMS, False, "disagrees with the manifest about: " + ", ".join(wrong))
    else:
        report.add(SUMS, True, f"lists the same {len(listed)} file(s) and SHA-256s as the manifest")


def _parse_sums(text: str) -> Iterator[tuple[str, str]]:
    for line in text.splitlines():
        match = re.fullmatch(r"([0-9a-f]{64}) [ *](.+)", line)
        if match is None:
            raise ValueError(f"a line is not '<sha256>  <file>': {line[:80]!r}")
        yield match.group(2), match.group(1)


def _check_signature(
    package: _Package,
    manifest_bytes: bytes | None,
    pinned_pem: bytes | None,
    report: VerificationReport,
) -> None:
    included = package.read(PUBLIC_KEY)
    which = "the pinned public key" if pinned_pem is not None else f"the package's {PUBLIC_KEY}"
    pem = pinned_pem if pinned_pem is not None else included
    if pem is None:
        report.add("signature", False, f"{PUBLIC_KEY} is missing: no key to check the signature")
        return
    try:
        key = read_public_key(pem)
    except ValueError as exc:
        report.add("signature", False, f"{which} cannot be read: {exc}")
        return
    fingerprint = key_fingerprint(key)
    if pinned_pem is not None:
        try:
            same = (
                included is not None and key_fingerprint(read_public_key(included)) == fingerprint
            )
        except ValueError:
            same = False
        report.add(
            "public key",
            same,
            f"the package's {PUBLIC_KEY} is the pinned key (SHA-256 {fingerprint})"
            if same
            else f"the package's {PUBLIC_KEY} is not the pinned key (SHA-256 {fingerprint})",
        )
    signature = package.read(SIGNATURE)
    if signature is None or manifest_bytes is None:
        missing = SIGNATURE if signature is None else MANIFEST
        report.add("signature", False, f"{missing} is missing: the signature cannot be checked")
        return
    try:
        key.verify(signature, manifest_bytes)
    except InvalidSignature:
        report.add(
            "signature",
            False,
            f"{SIGNATURE} is not a signature of {MANIFEST} by {which} (SHA-256 {fingerprint}): "
            "the manifest or the signature was changed, or another key signed it",
        )
        return
    report.add(
        "signature",
        True,
        f"{MANIFEST} is signed (Ed25519) by {which}, SHA-256 fingerprint {fingerprint}"
        + ("" if pinned_pem is not None else ": compare it with the one the archive publishes"),
    )


def _check_timestamp(
    package: _Package,
    manifest_bytes: bytes | None,
    manifest: dict[str, Any] | None,
    pinned_ca: bytes | None,
    report: VerificationReport,
) -> None:
    expected = bool(manifest and manifest.get("timestamp"))
    token = package.read(TIMESTAMP)
    if not expected and token is None:
        report.add("timestamp", True, "the package carries no timestamp (no TSA was configured)")
        return
    if token is None or manifest_bytes is None:
        report.add("timestamp", False, f"{TIMESTAMP if token is None else MANIFEST} is missing")
        return
    ca_pem = pinned_ca if pinned_ca is not None else package.read(TSA_CA)
    which = "the pinned TSA CA" if pinned_ca is not None else f"the package's {TSA_CA}"
    if ca_pem is None:
        report.add("timestamp", False, f"{TSA_CA} is missing: no CA to check the timestamp with")
        return
    try:
        roots = x509.load_pem_x509_certificates(ca_pem)
        response = decode_timestamp_response(token)
        digest = hashlib.sha256(manifest_bytes).digest()
        if response.tst_info.message_imprint.message != digest:
            raise VerificationError(f"it is not over the SHA-256 of {MANIFEST}")
        VerifierBuilder(roots=roots).build().verify_message(response, manifest_bytes)
    except (VerificationError, ValueError) as exc:
        report.add("timestamp", False, f"{TIMESTAMP} does not verify under {which}: {exc}")
        return
    report.add(
        "timestamp",
        True,
        f"{MANIFEST} existed at {response.tst_info.gen_time.isoformat()} "
        f"(RFC 3161 token, serial {response.tst_info.serial_number}, verified under {which})",
    )
