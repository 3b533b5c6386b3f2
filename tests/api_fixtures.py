"""Helpers for tests that go through the HTTP API: a runtime, real audio, data, tokens, a client.

Plain functions, no fixtures, so that any test module can build the world it
needs (one per module and backend is usual: Argon2 makes users cost tens of
milliseconds each). A typical module::

    runtime = build_runtime(catalogue_url, tmp_path)
    role_tokens = tokens(runtime)
    recording = add_recording(runtime, customer_id="C-1", reasons=["billing"])
    with ApiClient(runtime, role_tokens) as api:
        api.as_role(Role.DISPUTE_HANDLER).get(f"/api/v1/recordings/{recording.id}")

Tests that take ``empty_catalogue_url`` or ``catalogue_url`` from
``tests/conftest.py`` run on SQLite and PostgreSQL; :func:`build_runtime`
migrates the schema if it is missing. Pass ``s3_environment()`` from
``tests/s3env.py`` as ``store_env`` for the S3 store (a fresh bucket is made).
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import random
import subprocess
import tempfile
import uuid
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import pytest
from sqlalchemy import inspect
from starlette.exceptions import StarletteDeprecationWarning
from stdnum.fi import hetu as stdnum_hetu

from recarchive.access.models import Role
from recarchive.access.users import add_user
from recarchive.api.app import create_app
from recarchive.catalogue.data_keys import keep_data_key, new_data_key_for
from recarchive.catalogue.database import create_catalogue_engine, transaction, utcnow
from recarchive.catalogue.identity import hash_identity_code, normalise_phone, phone_hash
from recarchive.catalogue.migrate import upgrade_schema
from recarchive.catalogue.models import (
    Customer,
    CustomerMatch,
    CustomerPhone,
    Direction,
    ReasonSource,
    Recording,
    RecordingCandidate,
    RecordingReason,
)
from recarchive.catalogue.services import CLASS_TAG
from recarchive.config import load_settings
from recarchive.crypto.providers import prepare_key_provider
from recarchive.runtime import Runtime
from recarchive.storage.sealed import put_encrypted
from tests import logscan
from tests.actors import ADMIN
from tests.s3env import s3_environment

with warnings.catch_warnings():
    # Starlette asks for httpx2 and warns (an error under filterwarnings) when it finds httpx.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

#: The fixed secrets every API test runtime gets (long enough to pass the weak-secret check).
TOKEN_PEPPER = "api-test-token-pepper-0123456789abcdef"
IDENTITY_HASH_KEY = "api-test-identity-hash-key-0123456789abcdef"

#: Sample rate of the test audio: what telephony systems hand over.
SAMPLE_RATE = 8000


# --- runtime ------------------------------------------------------------------


def build_runtime(
    catalogue_url: str,
    data_dir: Path,
    *,
    store_env: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> Runtime:
    """A runtime on ``catalogue_url`` (migrated here if empty), data under ``data_dir``.

    ``store_env`` holds the ``RECARCHIVE_*`` settings of another store (see
    ``tests/s3env.py``); for S3 a bucket with a fresh name is created. The
    token pepper and identity-hash key are :data:`TOKEN_PEPPER` and
    :data:`IDENTITY_HASH_KEY`. Close it with :func:`close_runtime`.
    """
    engine = create_catalogue_engine(catalogue_url)
    try:
        if "recordings" not in inspect(engine).get_table_names():
            upgrade_schema(engine)
    finally:
        engine.dispose()
    env: dict[str, str] = {
        "RECARCHIVE_GENERAL_DATA_DIR": str(data_dir),
        "RECARCHIVE_CATALOGUE_URL": catalogue_url,
        "RECARCHIVE_TOKEN_PEPPER": TOKEN_PEPPER,
        "RECARCHIVE_IDENTITY_HASH_KEY": IDENTITY_HASH_KEY,
    }
    if store_env:
        env.update(store_env)
        if env.get("RECARCHIVE_STORAGE_BACKEND") == "s3" and "RECARCHIVE_S3_BUCKET" not in env:
            env["RECARCHIVE_S3_BUCKET"] = f"recarchive-api-{uuid.uuid4().hex[:12]}"
    env.update(extra_env or {})
    runtime = Runtime(load_settings(env=env))
    runtime.store.create()
    return runtime


#: The stores the audio tests run on, each with recordings in plaintext and encrypted.
STORE_VARIANTS = [
    "filesystem",
    "filesystem-encrypted",
    pytest.param("s3", marks=pytest.mark.s3),
    pytest.param("s3-encrypted", marks=pytest.mark.s3),
]


def variant_runtime(
    catalogue_url: str,
    data_dir: Path,
    variant: str,
    *,
    extra_env: Mapping[str, str] | None = None,
) -> Runtime:
    """A runtime on ``catalogue_url`` for one of :data:`STORE_VARIANTS`.

    ``s3``: a fresh bucket on the S3 server; ``-encrypted``: every recording
    stored under a data key of its own (``encryption.enabled``, the key file
    made as ``recarchive init`` makes it), as ingest then stores it.
    ``extra_env``: more ``RECARCHIVE_*`` settings.
    """
    store, _, encrypted = variant.partition("-")
    runtime = build_runtime(
        catalogue_url,
        data_dir,
        store_env=s3_environment() if store == "s3" else None,
        extra_env={
            **(extra_env or {}),
            **({"RECARCHIVE_ENCRYPTION_ENABLED": "true"} if encrypted else {}),
        },
    )
    if encrypted:
        assert "created" in (prepare_key_provider(runtime.settings) or "")
    return runtime


def close_runtime(runtime: Runtime) -> None:
    """Empty an S3 bucket made by :func:`build_runtime` and close the catalogue connections."""
    if runtime.store.backend == "s3":
        runtime.store.delete_many([info.key for info in runtime.store.list("")])
        store: Any = runtime.store  # the boto3 client, to remove the test's own bucket
        store._client.delete_bucket(Bucket=store.bucket)
    runtime.close()


# --- audio ----------------------------------------------------------------------


@functools.cache
def wav_bytes(seconds: float = 2.0, channels: int = 1) -> bytes:
    """A real 8 kHz 16-bit PCM WAV of ``seconds`` (mono tone, or tone left and noise right).

    Made once per test session (per argument pair) with ffmpeg's lavfi sources.
    """
    tone = f"sine=frequency=440:sample_rate={SAMPLE_RATE}:duration={seconds}"
    if channels == 1:
        sources = ["-f", "lavfi", "-i", tone]
    elif channels == 2:
        noise = f"anoisesrc=c=pink:a=0.3:r={SAMPLE_RATE}:d={seconds}"
        sources = [
            "-f", "lavfi", "-i", tone,
            "-f", "lavfi", "-i", noise,
            "-filter_complex", "[0][1]join=inputs=2:channel_layout=stereo",
        ]  # fmt: skip
    else:
        raise ValueError(f"channels must be 1 or 2, not {channels}")
    with tempfile.TemporaryDirectory(prefix="recarchive-api-wav-") as tmp:
        path = Path(tmp) / "audio.wav"
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", *sources, "-ac", str(channels),
             "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le", str(path)],
            check=True,
            timeout=60,
        )  # fmt: skip
        return path.read_bytes()


def ffprobe(path: Path) -> dict[str, Any]:
    """Format name, codec, channels and decoded duration of an audio file (ffprobe)."""
    import json

    completed = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
         str(path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    data = json.loads(completed.stdout)
    stream = next(s for s in data["streams"] if s["codec_type"] == "audio")
    return {
        "format": data["format"]["format_name"],
        "codec": stream["codec_name"],
        "channels": int(stream["channels"]),
        "duration": float(data["format"].get("duration") or stream.get("duration") or 0),
    }


# --- catalogue data --------------------------------------------------------------


def add_recording(
    runtime: Runtime,
    *,
    started_at: dt.datetime | None = None,
    seconds: float = 2.0,
    channels: int = 1,
    reasons: Sequence[str] = (),
    customer_id: str | None = None,
    customer_match: CustomerMatch | None = None,
    candidates: Iterable[str] = (),
    caller_number: str | None = None,
    called_number: str | None = None,
    agent: str | None = None,
    queue: str | None = None,
    direction: Direction | str = Direction.INBOUND,
    retain_until: dt.datetime | None = None,
    source: str = "api-test",
    recording_id: uuid.UUID | None = None,
    linked_call_id: str | None = None,
    audio: bytes | None = None,
    split_legs: bool = False,
) -> Recording:
    """Store real audio (:func:`wav_bytes`) and catalogue it; return the (detached) row.

    ``audio`` replaces the generated WAV (give ``seconds`` and ``channels`` to
    match it); ``split_legs`` catalogues it as two merged legs (the caller on
    the left, the agent on the right), as ingest does.

    Numbers may be given in any spelling; they are stored in E.164 form, as
    ingest does. ``retain_until`` defaults to a year from now, whatever
    ``started_at`` is, so that expiry leaves the recording alone. The id is
    random unless ``recording_id`` is given. With ``encryption.enabled`` the
    audio is stored encrypted under a new data key, as ingest stores it.
    """
    recording_id = recording_id or uuid.uuid4()
    started_at = started_at or utcnow().replace(microsecond=0)
    if started_at.tzinfo is None:
        raise ValueError("started_at must be timezone-aware")
    data = audio if audio is not None else wav_bytes(seconds, channels)
    key = f"recordings/{started_at:%Y/%m/%d}/{recording_id}.wav"
    sealing = None
    if runtime.settings.encryption.enabled:  # as ingest stores it (ingest/storing.py)
        data_key, wrapped = new_data_key_for(runtime.key_provider, recording_id)
        sealed = put_encrypted(
            runtime.store, key, io.BytesIO(data), data_key, tags={CLASS_TAG: "standard"}
        )
        sha256, sealing = sealed.plaintext_sha256, (wrapped, sealed.header)
    else:
        info = runtime.store.put(
            key, io.BytesIO(data), content_type="audio/wav", tags={CLASS_TAG: "standard"}
        )
        sha256 = info.sha256 or ""
    region = runtime.settings.ingest.default_region
    caller = normalise_phone(caller_number, region=region) if caller_number else None
    called = normalise_phone(called_number, region=region) if called_number else None
    match = customer_match or (CustomerMatch.MATCHED if customer_id else CustomerMatch.UNKNOWN)
    recording = Recording(
        id=recording_id,
        source=source,
        source_ref=f"ref-{recording_id}",
        call_id=f"call-{recording_id.hex[:12]}",
        linked_call_id=linked_call_id,
        started_at=started_at,
        duration_ms=round(seconds * 1000),
        direction=Direction(direction),
        caller_number=caller,
        called_number=called,
        agent=agent,
        queue=queue,
        customer_id=customer_id,
        customer_match=match,
        object_key=key,
        format="wav",
        codec="pcm_s16le",
        channels=channels,
        sample_rate=SAMPLE_RATE,
        size_bytes=len(data),
        sha256=sha256,
        retain_until=retain_until or utcnow() + dt.timedelta(days=365),
        caller_leg_sha256="0" * 64 if split_legs else None,
        agent_leg_sha256="1" * 64 if split_legs else None,
    )
    recording.reasons = [
        RecordingReason(code=code, assigned_by=ReasonSource.RULE) for code in reasons
    ]
    recording.candidates = [RecordingCandidate(customer_id=c) for c in candidates]
    with transaction(runtime.sessions) as session:
        session.add(recording)
        if sealing is not None:
            keep_data_key(session, recording, *sealing)
        session.flush()
        session.refresh(recording, ["reasons", "candidates"])
    return recording


def add_customer(
    runtime: Runtime,
    customer_id: str,
    name: str,
    phones: Iterable[str] = (),
    identity_code: str | None = None,
) -> Customer:
    """A customer directory entry; the identity code is kept only as its keyed hash."""
    logscan.remember_customer(name, phones, identity_code)  # never to be logged
    kind = hashed = None
    key = runtime.settings.secret("identity_hash_key") or ""
    if identity_code is not None:
        kind, hashed = hash_identity_code(identity_code, key)
    region = runtime.settings.ingest.default_region
    customer = Customer(
        customer_id=customer_id, name=name, identity_hash=hashed, identity_kind=kind
    )
    customer.phones = [
        CustomerPhone(phone_hash=phone_hash(e164, key))
        for e164 in dict.fromkeys(normalise_phone(p, region=region) for p in phones)
    ]
    with transaction(runtime.sessions) as session:
        session.add(customer)
    return customer


def tokens(runtime: Runtime, *, prefix: str = "") -> dict[Role, str]:
    """One user per role (named ``<prefix><role>``, e.g. ``qa_trainer``) and its token."""
    return {
        role: add_user(runtime, f"{prefix}{role.value}", role, actor=ADMIN).token for role in Role
    }


# --- HTTP ------------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class RoleClient:
    """Requests as one role: every call carries that role's bearer token."""

    def __init__(self, client: TestClient, token: str) -> None:
        self.client = client
        self.token = token
        self.headers = bearer(token)

    def request(
        self, method: str, url: str, *, headers: Mapping[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        return self.client.request(
            method, url, headers={**self.headers, **(headers or {})}, **kwargs
        )

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)


class ApiClient:
    """``TestClient(create_app(runtime))`` plus the role tokens of :func:`tokens`.

    Server errors come back as 500 responses (``raise_server_exceptions``
    False) so that a test can assert on the status; the traceback is in the
    ``recarchive.api.errors`` log record ``request_failed``.
    """

    def __init__(
        self,
        runtime: Runtime,
        role_tokens: Mapping[Role, str] | None = None,
        *,
        raise_server_exceptions: bool = False,
    ) -> None:
        self.runtime = runtime
        self.app = create_app(runtime)
        self.client = TestClient(self.app, raise_server_exceptions=raise_server_exceptions)
        self.tokens = dict(role_tokens or {})

    def headers(self, role: Role) -> dict[str, str]:
        """The Authorization header of ``role``."""
        return bearer(self.tokens[role])

    def as_role(self, role: Role) -> RoleClient:
        return RoleClient(self.client, self.tokens[role])

    def anonymous(self) -> TestClient:
        return self.client

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


# --- personal data made up for tests -------------------------------------------------

#: Every number and identity code made by :func:`new_number` and :func:`new_hetu`, in
#: every spelling worth looking for in messages, logs and audit entries.
PERSONAL: set[str] = set()
logscan.SCANNER.dynamic = PERSONAL  # the log scan looks for them too
_rng = random.Random()


def new_number() -> str:
    """A fresh Finnish mobile number in E.164; its spellings are remembered in PERSONAL."""
    subscriber = f"40{_rng.randrange(10**7):07d}"
    PERSONAL.update({f"+358{subscriber}", f"358{subscriber}", f"0{subscriber}"})
    return f"+358{subscriber}"


def national(e164: str) -> str:
    """``+358401234567`` as people write it: ``040 123 4567``."""
    digits = "0" + e164.removeprefix("+358")
    return f"{digits[:3]} {digits[3:6]} {digits[6:]}"


def new_hetu() -> str:
    """A fresh, valid henkilötunnus (born in the 1900s); remembered in PERSONAL."""
    born = dt.date(1950, 1, 1) + dt.timedelta(days=_rng.randrange(365 * 45))
    body = f"{born:%d%m%y}{_rng.randrange(2, 900):03d}"
    code = f"{body[:6]}-{body[6:]}{'0123456789ABCDEFHJKLMNPRSTUVWXY'[int(body) % 31]}"
    assert stdnum_hetu.is_valid(code), code
    PERSONAL.update({code, code.lower(), code.replace("-", "")})
    return code


def leaks(*texts: str) -> list[str]:
    """The made-up personal data that appears in ``texts`` (should be none)."""
    return sorted({value for value in PERSONAL for text in texts if value in text})
