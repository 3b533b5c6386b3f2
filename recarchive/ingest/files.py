"""Names, keys and files of the ingest pipeline: nothing here knows a person.

Object keys are a date and the recording id; workers are named by host and
process id so that a dead worker's claims can be recognised.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import uuid
from pathlib import Path

from recarchive.ingest.interfaces import Fetched

CONTENT_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "flac": "audio/flac",
    "ulaw": "audio/basic",
    "mu": "audio/basic",
}
#: Raw and odd extensions stored under a canonical one (the bytes stay as delivered).
_EXTENSION_ALIASES = {"wav49": "wav", "mu": "ulaw", "al": "alaw", "pcm": "ulaw"}
_HASH_CHUNK = 1024 * 1024


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            return not any(line.startswith("State:\tZ") for line in status)
    except OSError:
        return True


def object_key(started_at: dt.datetime, recording_id: uuid.UUID, extension: str) -> str:
    """``recordings/YYYY/MM/DD/<uuid>.<ext>``: a date and an id, no personal data."""
    day = started_at.astimezone(dt.UTC)
    return f"recordings/{day:%Y/%m/%d}/{recording_id}.{extension}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def source_digest(fetched: Fetched) -> str:
    """The SHA-256 that stands for what the source delivered: its own, or the file's."""
    return fetched.digest or sha256_file(fetched.path)


def stored_extension(extension: str) -> str:
    lowered = extension.lower()
    return _EXTENSION_ALIASES.get(lowered, lowered)


def release(fetched: Fetched) -> None:
    if fetched.temporary:
        fetched.path.unlink(missing_ok=True)
