"""Anchors and seals: a cut, forged or rewritten audit log is found, an untouched one verifies.

Each attack is what someone with write access to the catalogue (but not to
the anchors, nor the audit key) can do: delete the newest entries, append an
entry with a correct hash, rewrite the whole chain with recomputed hashes.
On both catalogues, anchors in the append-only file; the Object Lock bucket
is tried on the real Ceph server.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import threading
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import delete, func, select, text, update

from recarchive.access.anchoring import Anchor, AnchorInvalid, load_anchors
from recarchive.access.audit import (
    GENESIS_HASH,
    AuditChainBroken,
    AuditEntry,
    append_event,
    entry_hash,
    verify_chain,
)
from recarchive.access.models import AuditEvent, Role
from recarchive.access.users import add_user
from recarchive.catalogue.database import create_catalogue_engine, transaction
from recarchive.catalogue.migrate import upgrade_schema
from recarchive.catalogue.seals import AuditKeys
from recarchive.cli.staff import TOKEN_ENV
from recarchive.config import load_settings
from recarchive.errors import StoreError
from recarchive.runtime import Runtime
from recarchive.storage.anchors import S3AnchorSink
from recarchive.storage.s3 import S3ObjectStore
from tests.actors import ADMIN
from tests.functional.embedded import invoke
from tests.s3env import s3_environment

ENTRIES = 120


def _env(url: str, data_dir: Path) -> dict[str, str]:
    return {
        "RECARCHIVE_GENERAL_DATA_DIR": str(data_dir),
        "RECARCHIVE_CATALOGUE_URL": url,
        "RECARCHIVE_AUDIT_ANCHOR_MIN_INTERVAL_S": "0",
    }


@pytest.fixture
def logged(empty_catalogue_url: str, tmp_path: Path) -> dict[str, str]:
    """An installation whose log has :data:`ENTRIES` entries, anchored as they came."""
    env = _env(empty_catalogue_url, tmp_path / "var")
    runtime = Runtime(load_settings(env=env))
    upgrade_schema(runtime.engine, audit_key=runtime.settings.secret("audit_key"))
    runtime.store.create()
    runtime.check_catalogue()
    for number in range(ENTRIES):
        if number % 3:  # reads, through the group-commit writer
            runtime.audit.record(AuditEntry(actor="u1", action="search", case_ref=f"D-{number}"))
        else:  # changes, in the transaction of the change
            with transaction(runtime.sessions) as session:
                append_event(session, actor="admin", action="hold.place", case_ref=f"H-{number}")
        if number % 40 == 39:
            runtime.anchors.flush()  # several anchors along the way
    runtime.close()
    return env


def _verify(env: dict[str, str]) -> tuple[int, str]:
    """``recarchive audit verify``: its exit status and what it printed (the error line)."""
    try:
        result = invoke(env, "audit", "verify")
    except AuditChainBroken as exc:  # main() prints it as one line, exit status 1
        return 1, exc.message
    return result.exit_code, result.output


def _engine(env: dict[str, str]):  # type: ignore[no-untyped-def]
    return create_catalogue_engine(env["RECARCHIVE_CATALOGUE_URL"])


def test_an_untouched_log_verifies_against_its_anchors(logged: dict[str, str]) -> None:
    code, output = _verify(logged)
    assert code == 0, output
    assert f"audit log intact: {ENTRIES} entries, every one sealed" in output
    assert f"the newest names entry {ENTRIES}" in output or "the newest names entry" in output
    assert "0 entries since" in output


@pytest.mark.parametrize("cut", [1, 100, ENTRIES])
def test_deleting_the_newest_entries_is_found(logged: dict[str, str], cut: int) -> None:
    engine = _engine(logged)
    with engine.begin() as connection:
        last = connection.scalar(select(func.max(AuditEvent.seq)))
        connection.execute(delete(AuditEvent).where(AuditEvent.seq > last - cut))
    engine.dispose()
    code, output = _verify(logged)
    assert code == 1
    assert "entries were removed from its end" in output
    assert "Traceback" not in output


def test_a_forged_entry_with_a_correct_hash_is_found(logged: dict[str, str]) -> None:
    engine = _engine(logged)
    with engine.begin() as connection:
        head = connection.execute(
            select(AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
        ).scalar_one()
        forged = AuditEvent(
            at=dt.datetime.now(dt.UTC),
            actor="admin",
            actor_role="admin",
            action="hold.release",
            details={"hold_id": str(uuid.uuid4())},
            prev_hash=head,
        )
        forged.hash = entry_hash(forged)
        forged.seal = "0" * 64  # anything but the audit key's
        connection.execute(
            AuditEvent.__table__.insert().values(
                at=forged.at,
                actor=forged.actor,
                actor_role=forged.actor_role,
                action=forged.action,
                details=forged.details,
                prev_hash=forged.prev_hash,
                hash=forged.hash,
                seal=forged.seal,
            )
        )
    engine.dispose()
    code, output = _verify(logged)
    assert code == 1
    assert f"broken at entry {ENTRIES + 1}" in output
    assert "no valid seal" in output


def test_a_chain_rewritten_with_recomputed_hashes_is_found(logged: dict[str, str]) -> None:
    engine = _engine(logged)
    with engine.begin() as connection:
        events = connection.execute(select(AuditEvent).order_by(AuditEvent.seq)).all()
        previous = GENESIS_HASH
        for row in events:
            event = AuditEvent(**{k: getattr(row, k) for k in row._fields})
            event.prev_hash = previous
            if event.seq == 5:
                event.case_ref = "D-rewritten"
            event.hash = entry_hash(event)
            connection.execute(
                update(AuditEvent)
                .where(AuditEvent.seq == event.seq)
                .values(prev_hash=event.prev_hash, hash=event.hash, case_ref=event.case_ref)
            )
            previous = event.hash
    engine.dispose()
    code, output = _verify(logged)
    assert code == 1
    assert "broken at entry 5" in output
    assert "no valid seal" in output


def test_a_forged_anchor_is_refused(logged: dict[str, str]) -> None:
    settings = load_settings(env=logged)
    anchor_file = settings.anchor_file
    last = json.loads(anchor_file.read_bytes().splitlines()[-1])
    last["seq"] = last["seq"] + 5  # claims entries that never existed
    with anchor_file.open("ab") as handle:
        handle.write(json.dumps(last).encode() + b"\n")
    code, output = _verify(logged)
    assert code == 1
    assert "no valid signature" in output


def test_the_auditor_checks_the_exported_anchors_without_any_secret(
    logged: dict[str, str], tmp_path: Path
) -> None:
    runtime = Runtime(load_settings(env=logged))
    try:
        auditor = add_user(runtime, "aino", Role.AUDITOR, actor=ADMIN).token
    finally:
        runtime.close()
    out = tmp_path / "anchors.json"
    assert invoke(logged, "audit", "anchors", "export", "-o", str(out)).exit_code == 0
    entries = invoke({**logged, TOKEN_ENV: auditor}, "audit", "export")
    assert entries.exit_code == 0, entries.stderr
    hashes = {}
    for line in entries.stdout.splitlines():  # results only: a warning may go to stderr
        record = json.loads(line)
        hashes[record["seq"]] = record["hash"]
    document = json.loads(out.read_text())
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(document["public_key_ed25519"]))
    assert document["anchors"]
    for raw in document["anchors"]:
        anchor = Anchor.parse(json.dumps(raw).encode())
        anchor.verify(public)  # raises if not signed by the installation's key
        assert hashes[anchor.seq] == anchor.hash
    assert oct(out.stat().st_mode & 0o777) == "0o600"


def test_a_log_without_the_audit_key_cannot_be_told_from_a_forged_one(tmp_path: Path) -> None:
    """Seals need the key: another key sees every entry as unsealed."""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    engine = create_catalogue_engine(url)
    upgrade_schema(engine)
    engine.dispose()
    runtime = Runtime(load_settings(env=_env(url, tmp_path / "var")))
    with transaction(runtime.sessions) as session:
        append_event(session, actor="admin", action="users.add")
    report = verify_chain(runtime.sessions, keys=AuditKeys.from_secret("another key entirely!!"))
    runtime.close()
    assert report.broken_at == 1
    assert report.problem is not None
    assert "no valid seal" in report.problem


def test_sealing_the_existing_log_needs_the_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    engine = create_catalogue_engine(url)
    upgrade_schema(engine)
    engine.dispose()
    with pytest.raises(RuntimeError, match="needs the audit key"):
        _migrate_from_0007_with_entries(url, audit_key=None)


def _migrate_from_0007_with_entries(url: str, *, audit_key: str | None) -> None:
    from alembic import command

    from recarchive.catalogue.migrate import alembic_config

    engine = create_catalogue_engine(url)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0007")
        connection.execute(
            text(
                "INSERT INTO audit_events (at, actor, action, details, prev_hash, hash) "
                "VALUES ('2026-01-01 00:00:00', 'admin', 'users.add', '{}', :prev, :hash)"
            ),
            {"prev": GENESIS_HASH, "hash": "a" * 64},
        )
    engine.dispose()
    upgrade_schema(create_catalogue_engine(url), audit_key=audit_key)


def _s3_store(prefix: str) -> S3ObjectStore:
    """A store on the test S3 server, its bucket named ``prefix`` + a random suffix."""
    env = s3_environment()
    return S3ObjectStore(
        bucket=f"{prefix}{uuid.uuid4().hex[:10]}",
        endpoint_url=env["RECARCHIVE_S3_ENDPOINT_URL"],
        region=env["RECARCHIVE_S3_REGION"],
        access_key_id=env["RECARCHIVE_S3_ACCESS_KEY_ID"],
        secret_access_key=env["RECARCHIVE_S3_SECRET_ACCESS_KEY"],
    )


@pytest.mark.s3
def test_anchors_in_an_object_lock_bucket_cannot_be_deleted() -> None:
    store = _s3_store("recarchive-anchor-")
    sink = S3AnchorSink(
        store.client,
        store.bucket,
        endpoint_url=store.endpoint_url,
        mode="GOVERNANCE",
        retain_days=1,
    )
    assert sink.create()
    assert not sink.create()  # exists, with Object Lock
    keys = AuditKeys.from_secret("a test audit key of some length")
    anchor = Anchor("inst", 7, "b" * 64, dt.datetime.now(dt.UTC), keys.key_id).signed(keys)
    sink.append(anchor.name, anchor.to_bytes())
    assert load_anchors(sink, keys, "inst") == [anchor]
    client = store.client  # what the credentials could try
    versions = client.list_object_versions(Bucket=store.bucket)["Versions"]
    with pytest.raises(Exception, match="AccessDenied"):
        client.delete_object(
            Bucket=store.bucket, Key=versions[0]["Key"], VersionId=versions[0]["VersionId"]
        )
    assert load_anchors(sink, keys, "inst") == [anchor]
    # An anchor with another key is refused, not skipped.
    other = AuditKeys.from_secret("someone else's key, not ours")
    forged = dataclasses.replace(anchor, seq=8).signed(other)
    sink.append(forged.name, forged.to_bytes())
    with pytest.raises(AnchorInvalid, match="no valid signature"):
        load_anchors(sink, keys, "inst")


@pytest.mark.s3
def test_a_bucket_without_object_lock_is_refused_for_anchors() -> None:
    store = _s3_store("recarchive-plain-")
    store.create()  # a plain bucket
    sink = S3AnchorSink(store.client, store.bucket, endpoint_url=store.endpoint_url, retain_days=1)
    with pytest.raises(StoreError, match="Object Lock is not enabled"):
        sink.create()


def test_the_publisher_never_anchors_an_entry_it_did_not_write(logged: dict[str, str]) -> None:
    runtime = Runtime(load_settings(env=logged))
    try:
        runtime.check_catalogue()
        before = len(runtime.anchors.sink.read_all())
        with runtime.engine.begin() as connection:  # a bare connection: no seal
            head = connection.execute(
                select(AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
            ).scalar_one()
            forged = AuditEvent(
                at=dt.datetime.now(dt.UTC),
                actor="x",
                action="users.add",
                details={},
                prev_hash=head,
            )
            forged.hash = entry_hash(forged)
            connection.execute(
                AuditEvent.__table__.insert().values(
                    at=forged.at, actor="x", action="users.add", details={},
                    prev_hash=head, hash=forged.hash,
                )
            )  # fmt: skip
        with pytest.raises(AnchorInvalid, match=f"entry {ENTRIES + 1} has no valid seal"):
            runtime.anchors.publish()
        assert len(runtime.anchors.sink.read_all()) == before
    finally:
        runtime.close()


def test_a_busy_process_anchors_once_per_interval_and_once_more_at_the_end(
    empty_catalogue_url: str, tmp_path: Path
) -> None:
    env = {
        **_env(empty_catalogue_url, tmp_path / "var"),
        "RECARCHIVE_AUDIT_ANCHOR_MIN_INTERVAL_S": "60",
    }
    runtime = Runtime(load_settings(env=env))
    upgrade_schema(runtime.engine)
    runtime.check_catalogue()
    for number in range(50):
        runtime.audit.record(AuditEntry(actor="u1", action="search", case_ref=f"D-{number}"))
    runtime.close()  # the last head is anchored before the process ends
    anchors = [Anchor.parse(line) for line in runtime.anchors.sink.read_all()]
    assert 1 <= len(anchors) <= 2  # the first commit's, and the last head at close
    assert anchors[-1].seq == max(anchor.seq for anchor in anchors)
    report = verify_chain(runtime.sessions, keys=runtime.audit_keys.get(), anchors=anchors)
    assert report.intact, report.problem
    assert report.unanchored == 0


def test_publishes_at_once_from_threads_leave_the_newest_anchor_naming_the_head(
    empty_catalogue_url: str, tmp_path: Path
) -> None:
    """The publisher's thread and callers publish while entries keep arriving."""
    runtime = Runtime(load_settings(env=_env(empty_catalogue_url, tmp_path / "var")))
    upgrade_schema(runtime.engine)
    runtime.check_catalogue()
    try:
        stop = threading.Event()

        def publish_until_stopped() -> None:
            while not stop.is_set():
                runtime.anchors.publish()

        publishers = [threading.Thread(target=publish_until_stopped) for _ in range(3)]
        for thread in publishers:
            thread.start()
        for number in range(60):
            with transaction(runtime.sessions) as session:
                append_event(session, actor="u1", action="case.open", case_ref=f"D-{number}")
        stop.set()
        for thread in publishers:
            thread.join()
        runtime.anchors.publish()
        anchors = [Anchor.parse(line) for line in runtime.anchors.sink.read_all()]
        seqs = [anchor.seq for anchor in anchors]
        assert seqs == sorted(set(seqs)), seqs  # in the chain's order, none twice
        with runtime.sessions() as session:
            assert seqs[-1] == session.scalar(select(func.max(AuditEvent.seq)))
    finally:
        runtime.close()
