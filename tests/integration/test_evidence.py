"""Evidence packages: made from recordings in the real stores, checked with recarchive and openssl.

A package is built from recordings stored in the filesystem store and on
the S3 server, in plaintext and encrypted, on SQLite and PostgreSQL, with a
timestamp from a real RFC 3161 authority (OpenSSL's ``ts``, tests/tsa.py).
It verifies with ``recarchive evidence verify``'s checks and with the
README's ``sha256sum`` and ``openssl`` commands; then every file of it is
changed by one byte, removed, or joined by another, and each time the check
fails naming the file. An export that cannot be whole (stored bytes changed
behind the archive's back, a time-stamping authority down) leaves nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import random
import socket
import subprocess
import tracemalloc
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select

from recarchive.access.actors import Actor
from recarchive.access.audit import AuditEntry, append_event
from recarchive.access.audit_reads import AuditQuery, read_audit
from recarchive.access.models import AuditEvent, Role
from recarchive.access.policy import Forbidden
from recarchive.catalogue.database import transaction
from recarchive.catalogue.models import Recording
from recarchive.disputes.evidence import (
    EvidenceIntegrityError,
    EvidenceSummary,
    write_evidence_package,
)
from recarchive.disputes.keys import create_evidence_key, evidence_key_path
from recarchive.disputes.package_format import (
    ANCHOR,
    CUSTODY,
    MANIFEST,
    PUBLIC_KEY,
    README,
    SIGNATURE,
    SUMS,
    TIMESTAMP,
    TSA_CA,
    VerificationReport,
)
from recarchive.disputes.timestamping import TimestampUnavailable
from recarchive.disputes.verify import verify_package
from recarchive.runtime import Runtime
from tests.actors import staff
from tests.api_fixtures import (
    STORE_VARIANTS,
    add_recording,
    build_runtime,
    close_runtime,
    new_number,
    variant_runtime,
    wav_bytes,
)
from tests.tsa import Tsa, make_certificates

REFERENCE = "RIITA-2026-0117"
CASE = {
    "reference": REFERENCE,
    "kind": "billing",
    "document_ref": "INV-778812",
    "customer_id": "C-4471",
    "handler": "handler-1",
    "status": "open",
}
HANDLER = staff("handler-1", Role.DISPUTE_HANDLER)
#: One audit key for every runtime on a module's catalogue (entries are sealed with it);
#: anchors in a bucket the tests can leave behind (GOVERNANCE, one day).
ANCHOR_ENV = {
    "RECARCHIVE_AUDIT_KEY": "evidence-test-audit-key-0123456789abcdef",
    "RECARCHIVE_AUDIT_ANCHOR_LOCK_MODE": "GOVERNANCE",
    "RECARCHIVE_AUDIT_ANCHOR_RETAIN_DAYS": "1",
}


def tsa_env(tsa: Tsa) -> dict[str, str]:
    return {
        "RECARCHIVE_DISPUTES_TSA_URL": tsa.url,
        "RECARCHIVE_DISPUTES_TSA_CA_FILE": str(tsa.ca_file),
        **ANCHOR_ENV,
    }


@dataclasses.dataclass
class World:
    runtime: Runtime
    recordings: list[Recording]
    package: Path
    summary: EvidenceSummary
    tmp: Path

    @property
    def data(self) -> bytes:
        return self.package.read_bytes()


def make_world(runtime: Runtime, tmp: Path) -> World:
    """Two recordings (mono and stereo), a play and a case entry on record, their package."""
    create_evidence_key(evidence_key_path(runtime.settings))
    runtime.anchors.sink.create()
    recordings = [
        add_recording(
            runtime,
            seconds=0.5,
            customer_id="C-4471",
            caller_number=new_number(),
            agent="agent-7",
            queue="billing",
        ),
        add_recording(runtime, seconds=0.5, channels=2, customer_id="C-4471"),
    ]
    runtime.audit.record(
        AuditEntry(
            actor="handler-1",
            actor_role="dispute_handler",
            action="play",
            recording_id=recordings[0].id,
            purpose="dispute",
            case_ref=REFERENCE,
        )
    )
    with transaction(runtime.sessions) as session:
        append_event(session, actor="handler-1", action="case.open", case_ref=REFERENCE)
    target = tmp / "evidence.zip"
    summary = write_evidence_package(
        runtime, target, recording_ids=[r.id for r in recordings], case=CASE, actor=HANDLER
    )
    return World(runtime, recordings, target, summary, tmp)


@pytest.fixture(scope="module", params=STORE_VARIANTS)
def store_world(
    request: pytest.FixtureRequest,
    catalogue_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    tsa: Tsa,
) -> Iterator[World]:
    """A package from each store (plaintext and encrypted), on each catalogue."""
    tmp = tmp_path_factory.mktemp("evidence-store")
    runtime = variant_runtime(catalogue_url, tmp / "data", request.param, extra_env=tsa_env(tsa))
    yield make_world(runtime, tmp)
    close_runtime(runtime)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, tsa: Tsa) -> Iterator[World]:
    """One package (SQLite, filesystem store), for the checks of the package itself."""
    tmp = tmp_path_factory.mktemp("evidence")
    runtime = build_runtime(
        f"sqlite:///{tmp / 'catalogue.db'}", tmp / "data", extra_env=tsa_env(tsa)
    )
    yield make_world(runtime, tmp)
    close_runtime(runtime)


def other_runtime(world: World, env: Mapping[str, str]) -> Runtime:
    """The world's installation (catalogue, data, keys) with other settings."""
    return build_runtime(
        world.runtime.settings.catalogue_url,
        world.runtime.settings.general.data_dir,
        extra_env={**ANCHOR_ENV, **env},
    )


# --- the package as made -------------------------------------------------------------


def extract(data: bytes, directory: Path) -> Path:
    directory.mkdir()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(directory)
    return directory


def run(directory: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=directory, capture_output=True, text=True, timeout=60, check=False
    )


def run_bytes(directory: Path, *command: str, stdin: bytes | None = None) -> bytes:
    done = subprocess.run(
        command, cwd=directory, input=stdin, capture_output=True, timeout=60, check=True
    )
    return done.stdout


def failed(report: VerificationReport) -> dict[str, str]:
    return {check.name: check.detail for check in report.checks if not check.ok}


def test_the_package_verifies_with_recarchive_and_with_the_readmes_commands(
    store_world: World,
) -> None:
    report = verify_package(store_world.package)
    assert report.ok, failed(report)
    names = {check.name for check in report.checks}
    assert {
        "files",
        "unexpected files",
        SUMS,
        "signature",
        "timestamp",
        "custody",
        "anchor",
    } <= names
    directory = extract(store_world.data, store_world.tmp / f"unpacked-{id(report)}")
    sums = run(directory, "sha256sum", "-c", SUMS)
    assert sums.returncode == 0, sums.stdout + sums.stderr
    manifest = json.loads((directory / MANIFEST).read_text())
    assert run(directory, "sha256sum", SUMS).stdout.split()[0] == manifest["files"][SUMS]
    assert sums.stdout.count(": OK") == len(store_world.recordings) + 5
    signature = run(
        directory, "openssl", "pkeyutl", "-verify", "-pubin", "-inkey", PUBLIC_KEY,
        "-rawin", "-in", MANIFEST, "-sigfile", SIGNATURE,
    )  # fmt: skip
    assert signature.returncode == 0, signature.stderr
    assert "Signature Verified Successfully" in signature.stdout
    stamp = run(directory, "openssl", "ts", "-verify", "-data", MANIFEST, "-in", TIMESTAMP,
                "-CAfile", TSA_CA)  # fmt: skip
    assert stamp.returncode == 0, stamp.stderr
    assert "Verification: OK" in stamp.stdout
    der = run_bytes(directory, "openssl", "pkey", "-pubin", "-in", PUBLIC_KEY, "-outform", "DER")
    fingerprint = run_bytes(directory, "sha256sum", stdin=der).decode().split()[0]
    assert fingerprint == store_world.summary.public_key_sha256
    readme = (directory / README).read_text()
    assert fingerprint in readme
    for command in ("sha256sum -c SHA256SUMS", "openssl pkeyutl -verify", "openssl ts -verify"):
        assert command in readme


def test_the_audio_is_the_original_bytes_and_the_manifest_says_what_each_call_is(
    store_world: World,
) -> None:
    with zipfile.ZipFile(store_world.package) as archive:
        manifest = json.loads(archive.read(MANIFEST))
        assert (
            hashlib.sha256(archive.read(MANIFEST)).hexdigest()
            == store_world.summary.manifest_sha256
        )
        for recording, row in zip(
            sorted(store_world.recordings, key=lambda r: (r.started_at, str(r.id))),
            manifest["recordings"],
            strict=True,
        ):
            audio = archive.read(row["file"])
            assert audio == wav_bytes(0.5, recording.channels)  # as ingested, not re-encoded
            assert archive.getinfo(row["file"]).compress_type == zipfile.ZIP_STORED
            assert row["file"] == f"audio/{recording.id}.wav"
            assert row["sha256"] == recording.sha256 == hashlib.sha256(audio).hexdigest()
            assert row["size_bytes"] == len(audio)
            assert row["source_ref"] == recording.source_ref
            assert row["caller_number"] == recording.caller_number
            assert row["ingested_at"] == recording.created_at.isoformat()
            assert row["started_at"] == recording.started_at.isoformat()
            assert row["duration_ms"] == 500
        custody = [json.loads(line) for line in archive.read(CUSTODY).splitlines()]
        anchor = json.loads(archive.read(ANCHOR))
    assert manifest["case"] == CASE
    assert manifest["generated_by"] == "handler-1"
    assert manifest["installation_id"] == anchor["installation_id"]
    assert {e["action"] for e in custody} >= {"play", "case.open"}
    assert [e["seq"] for e in custody] == sorted(e["seq"] for e in custody)
    assert anchor["anchor"]["seq"] >= custody[-1]["seq"]
    assert store_world.summary.recordings == 2
    assert store_world.summary.timestamped_at is not None


def test_the_export_is_on_record(store_world: World) -> None:
    with store_world.runtime.sessions() as session:
        entries = session.scalars(
            select(AuditEvent).where(
                AuditEvent.case_ref == REFERENCE, AuditEvent.action.in_(("case.export", "export"))
            )
        ).all()
    made = store_world.summary.manifest_sha256  # the module's catalogue holds other worlds' too
    summary = [
        e for e in entries if e.action == "case.export" and e.details["manifest_sha256"] == made
    ]
    assert len(summary) == 1
    assert summary[0].actor == "handler-1"
    assert summary[0].details["manifest_sha256"] == store_world.summary.manifest_sha256
    assert summary[0].details["recordings"] == 2
    ids = {r.id for r in store_world.recordings}
    exports = [e.recording_id for e in entries if e.action == "export" and e.recording_id in ids]
    assert sorted(map(str, exports)) == sorted(map(str, ids))
    assert {e.purpose for e in entries if e.action == "export"} == {"dispute"}


def test_stored_bytes_changed_behind_the_archives_back_stop_the_export(store_world: World) -> None:
    runtime = store_world.runtime
    victim = add_recording(runtime, seconds=0.5, caller_number=new_number())
    inner = getattr(runtime.store, "inner", runtime.store)
    with inner.get(victim.object_key) as reader:
        stored = b"".join(reader.iter_chunks())
    middle = len(stored) // 2
    changed = stored[:middle] + bytes([stored[middle] ^ 0x40]) + stored[middle + 1 :]
    inner.put(victim.object_key, io.BytesIO(changed))
    target = store_world.tmp / "refused.zip"
    ids = [store_world.recordings[0].id, victim.id]
    with pytest.raises(EvidenceIntegrityError) as refused:
        write_evidence_package(runtime, target, recording_ids=ids, case=CASE, actor=HANDLER)
    assert str(victim.id) in refused.value.message
    assert victim.caller_number not in refused.value.message
    assert not target.exists()
    assert not [p.name for p in store_world.tmp.iterdir() if p.name.endswith(".part")]
    with runtime.sessions() as session:
        found = session.scalars(
            select(AuditEvent).where(
                AuditEvent.recording_id == victim.id, AuditEvent.action == "integrity.mismatch"
            )
        ).all()
    assert len(found) == 1
    assert found[0].details["expected_sha256"] == victim.sha256
    assert found[0].case_ref == REFERENCE


# --- every file of it ------------------------------------------------------------------


def rewrite(
    data: bytes,
    *,
    change: Mapping[str, bytes | None] | None = None,
    add: Mapping[str, bytes] | None = None,
) -> bytes:
    """The package with entries changed (None: removed) or added; the rest as they were."""
    change = change or {}
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            content = change.get(info.filename, source.read(info))
            if content is not None:
                target.writestr(info, content)
        for name, content in (add or {}).items():
            target.writestr(name, content)
    return out.getvalue()


def flipped(content: bytes) -> bytes:
    middle = len(content) // 2
    return content[:middle] + bytes([content[middle] ^ 0x01]) + content[middle + 1 :]


def names(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.namelist()


def content(data: bytes, name: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read(name)


#: Files whose change a check of their own names besides the file list.
OWN_CHECK = {MANIFEST: "signature", SIGNATURE: "signature", TIMESTAMP: "timestamp"}


def test_one_byte_changed_in_any_file_fails_naming_it(world: World) -> None:
    every = names(world.data)
    assert len(every) == 2 + 9
    for name in every:
        report = verify_package(
            io.BytesIO(rewrite(world.data, change={name: flipped(content(world.data, name))}))
        )
        problems = failed(report)
        assert problems, f"a changed {name} verified"
        assert any(name in detail for detail in problems.values()), (name, problems)
        if name in OWN_CHECK:
            assert OWN_CHECK[name] in problems, (name, problems)


def test_any_file_removed_fails_naming_it(world: World) -> None:
    for name in names(world.data):
        report = verify_package(io.BytesIO(rewrite(world.data, change={name: None})))
        problems = failed(report)
        assert any(name in detail for detail in problems.values()), (name, problems)
        if name in OWN_CHECK:
            assert OWN_CHECK[name] in problems, (name, problems)


@pytest.mark.parametrize("extra", ["notes.txt", "audio/another-call.wav", "manifest.json.bak"])
def test_a_file_added_fails_naming_it(world: World, extra: str) -> None:
    problems = failed(verify_package(io.BytesIO(rewrite(world.data, add={extra: b"x"}))))
    assert list(problems) == ["unexpected files"]
    assert extra in problems["unexpected files"]


@pytest.mark.parametrize("name", ["../manifest.json", "/etc/passwd", "audio/../../x", "a\\b"])
def test_a_zip_with_a_path_for_a_name_is_refused_unread(world: World, name: str) -> None:
    problems = failed(verify_package(io.BytesIO(rewrite(world.data, add={name: b"x"}))))
    assert list(problems) == ["package"]


def test_a_zip_holding_one_name_twice_is_refused(world: World) -> None:
    with pytest.warns(UserWarning, match="Duplicate name"):
        data = rewrite(world.data, add={README: b"another README"})
    problems = failed(verify_package(io.BytesIO(data)))
    assert list(problems) == ["package"]
    assert "twice" in problems["package"]


@pytest.mark.parametrize(
    "manifest",
    [b"[]", b"{}", b'{"format": "recarchive-evidence/1", "files": {"a": 1}}',
     b'{"format": "recarchive-evidence/1", "files": {}, "recordings": [1], "case": {}}',
     b'{"format": "recarchive-evidence/1", "files": {}, "recordings": [], "case": "x"}',
     "ä".encode("latin-1")],
)  # fmt: skip
def test_a_manifest_of_another_shape_is_named_not_a_crash(world: World, manifest: bytes) -> None:
    problems = failed(verify_package(io.BytesIO(rewrite(world.data, change={MANIFEST: manifest}))))
    assert "cannot be read" in problems["manifest"]
    assert "signature" in problems


def test_damage_anywhere_in_the_zip_is_found_or_changes_no_file(world: World) -> None:
    """Random bits of the zip itself flipped (headers, compressed data, the directory):
    the check never crashes, and when it holds, every file reads as it was."""
    rng = random.Random(17)
    original = {name: content(world.data, name) for name in names(world.data)}
    for _ in range(300):
        damaged = bytearray(world.data)
        damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
        report = verify_package(io.BytesIO(bytes(damaged)))
        if report.ok:
            assert {n: content(bytes(damaged), n) for n in original} == original


def test_not_a_zip_at_all(world: World) -> None:
    assert list(failed(verify_package(io.BytesIO(b"PK\x03\x04 not really")))) == ["package"]


def test_a_package_signed_by_another_key_fails_against_the_pinned_key(world: World) -> None:
    runtime = world.runtime
    key_file = evidence_key_path(runtime.settings)
    real_key = key_file.read_bytes()
    real_pem = content(world.data, PUBLIC_KEY)
    key_file.unlink()
    try:
        create_evidence_key(key_file)  # someone else's archive, or a stolen package rebuilt
        forged = world.tmp / "forged.zip"
        ids = [r.id for r in world.recordings]
        write_evidence_package(runtime, forged, recording_ids=ids, case=CASE, actor=HANDLER)
    finally:
        key_file.unlink()
        key_file.write_bytes(real_key)
    alone = verify_package(forged)
    assert alone.ok  # consistent in itself: only the published key tells
    assert world.summary.public_key_sha256 not in json.dumps(alone.to_dict())
    pinned = failed(verify_package(forged, public_key_pem=real_pem))
    assert set(pinned) == {"signature", "public key"}
    assert world.summary.public_key_sha256 in pinned["signature"]
    genuine = verify_package(world.package, public_key_pem=real_pem)
    assert genuine.ok, failed(genuine)
    other = Ed25519PrivateKey.generate().public_key()
    other_pem = other.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    assert set(failed(verify_package(world.package, public_key_pem=other_pem))) == {
        "signature",
        "public key",
    }


def test_another_tsa_ca_fails_the_timestamp(world: World) -> None:
    other = world.tmp / "other-tsa"
    other.mkdir(exist_ok=True)
    make_certificates(other, name="Another TSA")
    problems = failed(verify_package(world.package, tsa_ca_pem=(other / "ca.pem").read_bytes()))
    assert list(problems) == ["timestamp"]
    assert "pinned TSA CA" in problems["timestamp"]
    pinned = verify_package(world.package, tsa_ca_pem=content(world.data, TSA_CA))
    assert pinned.ok, failed(pinned)
    assert "existed at" in {c.name: c.detail for c in pinned.checks}["timestamp"]


# --- the custody record ------------------------------------------------------------------


def audit_export(
    runtime: Runtime, path: Path, *, edit: Mapping[int, dict[str, Any]] | None = None
) -> Path:
    """What ``recarchive audit export`` prints, with entries edited if asked."""
    auditor = Actor("auditor-1", Role.AUDITOR, "test")
    items = read_audit(runtime, auditor, AuditQuery(), limit=1000).items
    lines = [
        json.dumps({**item, **(edit or {}).get(item["seq"], {})}, sort_keys=True) for item in items
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def custody_lines(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in content(data, CUSTODY).splitlines()]


def with_custody(data: bytes, entries: list[dict[str, Any]]) -> bytes:
    text = "".join(json.dumps(e, sort_keys=True, ensure_ascii=False) + "\n" for e in entries)
    return rewrite(data, change={CUSTODY: text.encode()})


def test_an_edited_custody_entry_is_named(world: World) -> None:
    entries = custody_lines(world.data)
    entries[0] = {**entries[0], "actor": "someone-else"}
    problems = failed(verify_package(io.BytesIO(with_custody(world.data, entries))))
    assert f"entry {entries[0]['seq']} (line 1) does not match its hash" in problems["custody"]
    assert CUSTODY in problems["files"]


def test_custody_entries_are_found_in_an_export_of_the_audit_log(world: World) -> None:
    export = audit_export(world.runtime, world.tmp / "audit.jsonl")
    report = verify_package(world.package, audit_export=export)
    assert report.ok, failed(report)
    entries = custody_lines(world.data)
    first = entries[0]["seq"]
    # A custody entry rewritten with its hash recomputed: only the chain shows it.
    forged = {**entries[0], "actor": "someone-else"}
    from recarchive.disputes.package_format import canonical_entry_hash

    forged["hash"] = canonical_entry_hash(forged)
    data = with_custody(world.data, [forged, *entries[1:]])
    problems = failed(verify_package(io.BytesIO(data), audit_export=export))
    assert (
        f"custody entry {first} differs from entry {first} of the export"
        in problems["audit export"]
    )
    # An export whose own chain was edited.
    broken = audit_export(
        world.runtime, world.tmp / "audit-broken.jsonl", edit={first: {"actor": "x"}}
    )
    problems = failed(verify_package(world.package, audit_export=broken))
    assert f"entry {first} of the export does not match its hash" in problems["audit export"]


# --- time-stamping authority -----------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_tsa_down_or_silent_stops_the_export_and_leaves_nothing(world: World, tsa: Tsa) -> None:
    ids = [r.id for r in world.recordings]
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        for url, words in (
            (f"http://127.0.0.1:{closed_port()}/tsa", "cannot be reached"),
            (f"http://127.0.0.1:{silent.getsockname()[1]}/tsa", "did not answer within 0.5 s"),
        ):
            runtime = other_runtime(
                world,
                {
                    "RECARCHIVE_DISPUTES_TSA_URL": url,
                    "RECARCHIVE_DISPUTES_TSA_CA_FILE": str(tsa.ca_file),
                    "RECARCHIVE_DISPUTES_TSA_TIMEOUT_S": "0.5",
                },
            )
            target = world.tmp / "no-tsa-answer.zip"
            try:
                with pytest.raises(TimestampUnavailable) as refused:
                    write_evidence_package(
                        runtime, target, recording_ids=ids, case=CASE, actor=HANDLER
                    )
            finally:
                runtime.close()
            assert "time-stamping authority 127.0.0.1" in refused.value.message
            assert words in refused.value.message
            assert not target.exists()
            assert not [p.name for p in world.tmp.iterdir() if p.name.endswith(".part")]


def test_a_timestamp_that_does_not_verify_under_the_configured_ca_stops_the_export(
    world: World, tsa: Tsa
) -> None:
    other = world.tmp / "unrelated-ca"
    other.mkdir(exist_ok=True)
    make_certificates(other, name="Unrelated")
    runtime = other_runtime(
        world,
        {
            "RECARCHIVE_DISPUTES_TSA_URL": tsa.url,
            "RECARCHIVE_DISPUTES_TSA_CA_FILE": str(other / "ca.pem"),
        },
    )
    target = world.tmp / "unverified-timestamp.zip"
    answered = tsa.answered
    try:
        with pytest.raises(TimestampUnavailable) as refused:
            write_evidence_package(
                runtime, target, recording_ids=[world.recordings[0].id], case=CASE, actor=HANDLER
            )
    finally:
        runtime.close()
    assert tsa.answered == answered + 1  # it did answer: the token is what was refused
    assert "does not verify under disputes.tsa_ca_file" in refused.value.message
    assert not target.exists()


def test_without_a_tsa_the_package_has_no_timestamp_and_still_verifies(world: World) -> None:
    runtime = other_runtime(world, {})
    try:
        target = world.tmp / "untimed.zip"
        summary = write_evidence_package(
            runtime, target, recording_ids=[world.recordings[0].id], case=CASE, actor=HANDLER
        )
    finally:
        runtime.close()
    assert summary.timestamped_at is None
    assert TIMESTAMP not in names(target.read_bytes())
    assert TSA_CA not in names(target.read_bytes())
    report = verify_package(target)
    assert report.ok, failed(report)
    assert "carries no timestamp" in {c.name: c.detail for c in report.checks}["timestamp"]
    grafted = rewrite(target.read_bytes(), add={TIMESTAMP: content(world.data, TIMESTAMP)})
    problems = failed(verify_package(io.BytesIO(grafted)))
    assert TIMESTAMP in problems["unexpected files"]


def test_a_long_recording_is_packed_in_flat_memory(world: World) -> None:
    """A 20-minute call (19 MB of WAV) goes through a few MiB of memory: streamed, not held."""
    long_call = add_recording(world.runtime, seconds=1200.0)
    target = world.tmp / "long.zip"
    tracemalloc.start()
    try:
        write_evidence_package(
            world.runtime, target, recording_ids=[long_call.id], case=CASE, actor=HANDLER
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert long_call.size_bytes > 19_000_000
    assert peak < 6 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"
    report = verify_package(target)
    assert report.ok, failed(report)


# --- who may, and what is refused --------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.QA_TRAINER, Role.AUDITOR, Role.ADMIN])
def test_only_dispute_handlers_and_privacy_officers_export_evidence(
    world: World, role: Role
) -> None:
    target = world.tmp / f"refused-{role.value}.zip"
    with pytest.raises(Forbidden):
        write_evidence_package(
            world.runtime,
            target,
            recording_ids=[world.recordings[0].id],
            case=CASE,
            actor=staff("x", role),
        )
    assert not target.exists()


def test_an_existing_file_is_never_overwritten(world: World) -> None:
    before = world.data
    with pytest.raises(FileExistsError):
        write_evidence_package(
            world.runtime,
            world.package,
            recording_ids=[world.recordings[0].id],
            case=CASE,
            actor=HANDLER,
        )
    assert world.data == before
