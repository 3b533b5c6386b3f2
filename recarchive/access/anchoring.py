"""Keys, seals and anchors: an audit log whose tail cannot be cut nor its entries forged.

The hash chain (:mod:`recarchive.access.audit`) shows any edit, removal or
reordering *inside* the log, but whoever can write the catalogue can also
cut its tail, append an entry with a correct hash, or rewrite the whole
chain with hashes recomputed. Two things close those gaps, both keyed by the
installation's audit key (a secret, never in the catalogue):

- a **seal** on every entry: HMAC-SHA-256 over the entry's hash with a key
  derived from the audit key. An entry recarchive did not write has no
  valid seal: forged appends and rewritten chains are named.
- **anchors**: the chain's head (sequence number and hash), signed with an
  Ed25519 key derived from the same secret, published outside the catalogue
  (:mod:`recarchive.storage.anchors`) shortly after entries are committed
  (:class:`AnchorPublisher`). An anchor names an entry that must still be
  there, with that hash: a cut tail or a rewritten entry is named.

``recarchive audit verify`` checks both; ``recarchive audit anchors
export`` hands the anchors and the public key to an auditor, who can check
the signatures and compare the anchored hashes with an export of the log
without any secret.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from recarchive.access.models import AuditEvent
from recarchive.catalogue.database import utcnow
from recarchive.catalogue.seals import AuditKeys
from recarchive.errors import RecArchiveError
from recarchive.storage.anchors import AnchorSink

logger = logging.getLogger(__name__)

#: Where a session finds the keys (``Session.info``), and marks that it appended.
KEYS_INFO = "recarchive.audit_keys"
APPENDED_INFO = "recarchive.audit_appended"
#: Entries whose seals the publisher checks before its first anchor in a process.
_FIRST_CHECK = 1000


class AnchorInvalid(RecArchiveError):
    """An audit anchor is not valid: unreadable, or its signature does not match."""


class LazyKeys:
    """The keys, read from the secret on first use: a command that writes no entry needs none."""

    def __init__(self, read_secret: Callable[[], str]) -> None:
        self._read_secret = read_secret
        self._keys: AuditKeys | None = None
        self._lock = threading.Lock()

    def get(self) -> AuditKeys:
        with self._lock:
            if self._keys is None:
                self._keys = AuditKeys.from_secret(self._read_secret())
            return self._keys


def session_keys(session: Session) -> AuditKeys | None:
    """The keys the session's factory carries (None for a bare session: tests, tools)."""
    keys = session.info.get(KEYS_INFO)
    if isinstance(keys, LazyKeys):
        return keys.get()
    return keys if isinstance(keys, AuditKeys) else None


@dataclasses.dataclass(frozen=True)
class Anchor:
    """The audit chain's head at one moment, signed."""

    installation_id: str
    seq: int
    hash: str
    at: dt.datetime
    key_id: str
    signature: str = ""

    def payload(self) -> bytes:
        content = {
            "v": 1,
            "installation_id": self.installation_id,
            "seq": self.seq,
            "hash": self.hash,
            "at": self.at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
            "key_id": self.key_id,
        }
        return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()

    def signed(self, keys: AuditKeys) -> Anchor:
        signature = base64.b64encode(keys.signing_key.sign(self.payload())).decode()
        return dataclasses.replace(self, key_id=keys.key_id, signature=signature)

    def to_bytes(self) -> bytes:
        document = json.loads(self.payload())
        document["signature"] = self.signature
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    @property
    def name(self) -> str:
        """Its name in a sink: sorts by sequence number, says which entry it names."""
        return f"{self.installation_id}/{self.seq:020d}-{self.hash}.json"

    @classmethod
    def parse(cls, data: bytes) -> Anchor:
        try:
            document: dict[str, Any] = json.loads(data)
            return cls(
                installation_id=str(document["installation_id"]),
                seq=int(document["seq"]),
                hash=str(document["hash"]),
                at=dt.datetime.fromisoformat(document["at"]),
                key_id=str(document["key_id"]),
                signature=str(document["signature"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise AnchorInvalid(f"an audit anchor cannot be read ({type(exc).__name__})") from None

    def verify(self, public_key: Ed25519PublicKey) -> None:
        """Raise :class:`AnchorInvalid` unless the signature is this content's."""
        try:
            public_key.verify(base64.b64decode(self.signature), self.payload())
        except (InvalidSignature, ValueError):
            raise AnchorInvalid(
                f"the anchor of entry {self.seq} published at {self.at.isoformat()} "
                "has no valid signature: it was not published by this installation"
            ) from None


def head(session: Session) -> tuple[int, str] | None:
    """The chain's last entry: its sequence number and hash."""
    row = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    return (int(row[0]), str(row[1])) if row is not None else None


class AnchorPublisher:
    """Publishes the chain's head soon after entries are committed, from one thread.

    :meth:`poke` after a commit that appended entries; the thread publishes
    the head it then reads, at most every ``min_interval_s`` seconds, so a
    busy server writes one anchor per interval, not one per request; the
    thread ends after ``idle_s`` without a poke (an idle process holds none).
    Before anchoring, it checks the seals of the entries since its last
    anchor: it never anchors an entry it did not write (``audit_forgery``
    is logged instead). :meth:`close` publishes the last head (a command's
    entries are anchored before it exits). A failure is logged and tried
    again at the next poke; it never fails the request that committed.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        sink: AnchorSink,
        keys: Callable[[], AuditKeys],
        installation_id: Callable[[], str],
        *,
        min_interval_s: float = 5.0,
        idle_s: float = 2.0,
    ) -> None:
        self._sessions = sessions
        self.sink = sink
        self._keys = keys
        self._installation_id = installation_id
        self._min_interval_s = min_interval_s
        self._idle_s = idle_s
        self._dirty = threading.Event()
        self._flushing = threading.Event()
        self._closed = False
        self._lock = threading.Lock()
        #: One publish at a time in this process: the head is read and its anchor appended
        #: before another publish reads the head, so a sink's anchors follow the chain.
        self._publishing = threading.Lock()
        self._thread: threading.Thread | None = None
        self._last_published = 0.0
        self.last_seq: int | None = None
        self.published = 0

    def poke(self) -> None:
        """Entries were committed: anchor the head soon."""
        self._dirty.set()
        with self._lock:
            if self._closed or self._flushing.is_set():
                return
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="recarchive-anchor", daemon=True
                )
                self._thread.start()

    def flush(self, timeout_s: float = 30.0) -> None:
        """Publish now what is not anchored yet, and let the thread end (before a fork)."""
        with self._lock:
            self._flushing.set()
            thread = self._thread
        try:
            if thread is not None:
                thread.join(timeout_s)
            if self._dirty.is_set():
                self._dirty.clear()
                if not self._publish_safely():
                    self._dirty.set()
        finally:
            with self._lock:
                self._flushing.clear()

    def close(self, timeout_s: float = 30.0) -> None:
        """Publish the head if entries were committed since the last anchor; stop."""
        self.flush(timeout_s)
        with self._lock:
            self._closed = True

    def _run(self) -> None:
        """Publish while pokes come; end after a quiet while, or at a flush."""
        while True:
            if self._flushing.is_set():
                return  # flush() publishes what is left
            if not self._dirty.wait(self._idle_s):
                with self._lock:  # decided where poke() looks: its poke starts a new thread
                    if not self._dirty.is_set():
                        self._thread = None
                        return
                continue
            wait = self._last_published + self._min_interval_s - time.monotonic()
            if wait > 0 and self._flushing.wait(wait):
                return
            self._dirty.clear()
            if not self._publish_safely():
                self._dirty.set()
                if self._flushing.wait(1.0):
                    return

    def _publish_safely(self) -> bool:
        try:
            self.publish()
        except (RecArchiveError, SQLAlchemyError) as exc:
            error = exc.message if isinstance(exc, RecArchiveError) else type(exc).__name__
            logger.warning("audit_anchor_not_published", extra={"error": error})
            return False
        return True

    def publish(self) -> Anchor | None:
        """Sign and publish the current head; None when it is already anchored.

        The thread's publish and a caller's (an evidence export anchors the head
        it is about to export) never interleave: an anchor of an older head
        appended after a newer one would become the newest a file sink holds.
        """
        with self._publishing:
            return self._publish()

    def _publish(self) -> Anchor | None:
        keys = self._keys()
        with self._sessions() as session:
            current = head(session)
            if current is None or (self.last_seq is not None and current[0] <= self.last_seq):
                return None
            forged = _unsealed(session, keys, self.last_seq, current[0])
        if forged is not None:
            logger.error("audit_forgery", extra={"seq": forged})
            raise AnchorInvalid(f"audit entry {forged} has no valid seal: not anchored")
        anchor = Anchor(
            installation_id=self._installation_id(),
            seq=current[0],
            hash=current[1],
            at=utcnow(),
            key_id=keys.key_id,
        ).signed(keys)
        self.sink.append(anchor.name, anchor.to_bytes())
        self._last_published = time.monotonic()
        self.last_seq = current[0]
        self.published += 1
        return anchor


def _unsealed(session: Session, keys: AuditKeys, after: int | None, upto: int) -> int | None:
    """The first entry in ``(after, upto]`` whose seal does not match, if any."""
    query = select(AuditEvent.seq, AuditEvent.hash, AuditEvent.seal).where(AuditEvent.seq <= upto)
    if after is not None:
        query = query.where(AuditEvent.seq > after).order_by(AuditEvent.seq)
    else:
        query = query.order_by(AuditEvent.seq.desc()).limit(_FIRST_CHECK)
    for seq, entry_hash, seal in session.execute(query):
        if not keys.seal_matches(entry_hash, seal):
            return int(seq)
    return None


def load_anchors(sink: AnchorSink, keys: AuditKeys, installation_id: str) -> list[Anchor]:
    """This installation's anchors in ``sink``, each signature checked, oldest first.

    Raises :class:`AnchorInvalid` for one that cannot be read or whose
    signature is not this installation's: someone placed or changed it.
    """
    anchors = []
    for data in sink.read_all():
        anchor = Anchor.parse(data)
        if anchor.installation_id != installation_id:
            continue  # another installation's (a shared bucket or file)
        anchor.verify(keys.public_key)
        anchors.append(anchor)
    return sorted(anchors, key=lambda anchor: (anchor.seq, anchor.at))


def newest_anchor(sink: AnchorSink, keys: AuditKeys, installation_id: str) -> Anchor | None:
    """This installation's newest anchor, its signature checked (:class:`AnchorInvalid`)."""
    data = sink.read_newest(f"{installation_id}/")
    if data is None:
        return None
    anchor = Anchor.parse(data)
    anchor.verify(keys.public_key)
    return anchor
