"""The custody record of an evidence package: the audit entries about it, and their anchor.

Every audit entry about the package's recordings or its case, oldest first,
each in the form its hash covers (:func:`recarchive.access.audit.entry_content`)
with its ``seq`` and ``hash``, so that each hash recomputes from the entry
alone; and the audit chain's newest signed anchor with the audit key's
public key, so that the entries can be checked against the anchored chain.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

from sqlalchemy import or_, select

from recarchive.access.anchoring import AnchorInvalid, newest_anchor
from recarchive.access.audit import entry_content
from recarchive.access.models import AuditEvent
from recarchive.runtime import Runtime

_ROWS = 1000


def anchor_document(runtime: Runtime) -> tuple[dict[str, Any], int]:
    """The audit chain's head, anchored now, with the audit key's public key."""
    keys = runtime.audit_keys.get()
    installation = str(runtime.catalogue_guard.opened.installation_id)
    runtime.anchors.publish()
    anchor = newest_anchor(runtime.anchors.sink, keys, installation)
    if anchor is None:
        raise AnchorInvalid(
            f"the audit log has no anchor in {runtime.anchors.sink.where}: "
            "the custody record could not be proven"
        )
    document = {
        "installation_id": installation,
        "public_key_ed25519": base64.b64encode(keys.public_bytes).decode(),
        "key_id": keys.key_id,
        "anchor": json.loads(anchor.to_bytes()),
    }
    return document, anchor.seq


def custody_lines(
    runtime: Runtime, ids: list[uuid.UUID], reference: str, through_seq: int
) -> Iterator[bytes]:
    about = or_(AuditEvent.recording_id.in_(ids), AuditEvent.case_ref == reference)
    after = 0
    while True:
        with runtime.sessions() as session:
            events = list(
                session.scalars(
                    select(AuditEvent)
                    .where(about, AuditEvent.seq > after, AuditEvent.seq <= through_seq)
                    .order_by(AuditEvent.seq)
                    .limit(_ROWS)
                )
            )
        if not events:
            return
        for event in events:
            line = {"seq": event.seq, **entry_content(event), "hash": event.hash}
            yield (
                json.dumps(line, sort_keys=True, ensure_ascii=False, default=str) + "\n"
            ).encode()
        after = events[-1].seq
