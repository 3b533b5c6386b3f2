"""The PKCS#11 key provider against a real SoftHSM2 token.

Each run makes its own token directory (``SOFTHSM2_CONF`` points SoftHSM2 at
it) and initialises tokens there with ``softhsm2-util --init-token --free``.
Skipped without SoftHSM2 (Debian's softhsm2), a failure when
``RECARCHIVE_TEST_REQUIRE_HSM=1`` (set by ``scripts/test``, which installs it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pkcs11
import pytest
from pkcs11 import Attribute, KeyType, ObjectClass
from sqlalchemy import select

from recarchive.catalogue.data_keys import key_context, new_data_key_for
from recarchive.catalogue.models import Recording, RecordingKey
from recarchive.composition import wrapped_key_tables
from recarchive.config import load_settings
from recarchive.crypto.chunked import new_data_key
from recarchive.crypto.hsm import Pkcs11KeyProvider, close_sessions, create_kek
from recarchive.crypto.interfaces import KeyProvider, WrappedKey
from recarchive.crypto.keyfile import FileKeyProvider, create_key_file
from recarchive.crypto.providers import key_file_path, open_key_provider, prepare_key_provider
from recarchive.errors import (
    ConfigError,
    KeyEncryptionKeyNotFound,
    KeyProviderUnavailable,
    KeyUnwrapFailed,
)
from recarchive.retention.key_rotation import rotate_keys
from recarchive.runtime import Runtime
from recarchive.storage.interfaces import ByteRange
from recarchive.storage.memory import InMemoryObjectStore
from recarchive.storage.sealed import ObjectSeal, SealedObjectStore, put_encrypted
from tests.api_fixtures import (
    IDENTITY_HASH_KEY,
    TOKEN_PEPPER,
    add_recording,
    build_runtime,
    close_runtime,
)

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN, PIN, SO_PIN = "recarchive-test", "314159", "27182818"
CONTEXT = b"recording 7c0d5f3e"
RECORDING = uuid.UUID("7c0d5f3e-0000-4000-8000-000000000001")


@dataclasses.dataclass(frozen=True)
class Token:
    label: str
    pin: str

    def provider(self, key_label: str = "kek-1", pin: str | None = None) -> Pkcs11KeyProvider:
        return Pkcs11KeyProvider(MODULE, self.label, pin or self.pin, key_label)


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Token]:
    if shutil.which("softhsm2-util") is None or not os.path.exists(MODULE):
        message = "SoftHSM2 not installed (Debian's softhsm2; scripts/test installs it)"
        if os.environ.get("RECARCHIVE_TEST_REQUIRE_HSM") == "1":
            pytest.fail(message)
        pytest.skip(message)
    directory = tmp_path_factory.mktemp("softhsm")
    (directory / "tokens").mkdir()
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {directory / 'tokens'}\n"
        "objectstore.backend = file\nlog.level = ERROR\n"
    )
    # SoftHSM2 reads SOFTHSM2_CONF once, when the module is first initialised in
    # this process: every test of this module shares the one token directory.
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    try:
        subprocess.run(
            [
                *("softhsm2-util", "--init-token", "--free", "--label", TOKEN),
                *("--pin", PIN, "--so-pin", SO_PIN),
            ],
            check=True,
            capture_output=True,
        )
        for label in ("kek-1", "kek-2"):
            create_kek(MODULE, TOKEN, PIN, label)
        yield Token(TOKEN, PIN)
    finally:
        close_sessions()
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous


def test_wrap_and_unwrap_in_the_token(token: Token) -> None:
    provider = token.provider()
    assert isinstance(provider, KeyProvider)
    data_key = new_data_key()
    wrapped = provider.wrap(data_key, CONTEXT)
    assert (wrapped.provider, wrapped.kek_id) == ("pkcs11", "kek-1")
    assert data_key not in wrapped.wrapped
    close_sessions()  # a new login, as in another process
    assert token.provider().unwrap(wrapped, CONTEXT) == data_key


def test_the_key_encryption_key_never_leaves_the_token(token: Token) -> None:
    token.provider().wrap(new_data_key(), CONTEXT)  # logged in: a new session is too
    lib = pkcs11.lib(MODULE)
    with lib.get_token(token_label=token.label).open() as session:
        key = session.get_key(
            object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label="kek-1"
        )
        assert key[Attribute.SENSITIVE]
        assert not key[Attribute.EXTRACTABLE]
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            key[Attribute.VALUE]


def test_a_wrong_kek_fails(token: Token) -> None:
    wrapped = token.provider("kek-1").wrap(new_data_key(), CONTEXT)
    with pytest.raises(KeyUnwrapFailed):
        token.provider("kek-2").unwrap(dataclasses.replace(wrapped, kek_id="kek-2"), CONTEXT)
    with pytest.raises(KeyEncryptionKeyNotFound, match="kek-9"):
        token.provider().unwrap(dataclasses.replace(wrapped, kek_id="kek-9"), CONTEXT)


def test_a_wrapped_key_opens_only_in_its_context_and_unaltered(token: Token) -> None:
    provider = token.provider()
    wrapped = provider.wrap(new_data_key(), CONTEXT)
    with pytest.raises(KeyUnwrapFailed):
        provider.unwrap(wrapped, b"recording 00000000")
    altered = bytearray(wrapped.wrapped)
    altered[-1] ^= 1
    with pytest.raises(KeyUnwrapFailed):
        provider.unwrap(dataclasses.replace(wrapped, wrapped=bytes(altered)), CONTEXT)
    # The provider keeps working after a failed unwrap.
    assert provider.unwrap(provider.wrap(b"k" * 32, CONTEXT), CONTEXT) == b"k" * 32


def test_keys_of_the_file_provider_and_the_token_do_not_mix(token: Token, tmp_path: Path) -> None:
    create_key_file(tmp_path / "keys")
    file_provider = FileKeyProvider(tmp_path / "keys")
    from_file = file_provider.wrap(new_data_key(), CONTEXT)
    with pytest.raises(KeyEncryptionKeyNotFound):
        token.provider().unwrap(from_file, CONTEXT)
    from_token = token.provider().wrap(new_data_key(), CONTEXT)
    with pytest.raises(KeyEncryptionKeyNotFound):
        file_provider.unwrap(from_token, CONTEXT)
    forged = WrappedKey("file", file_provider.current_kek_id(), from_token.wrapped)
    with pytest.raises(KeyUnwrapFailed):
        file_provider.unwrap(forged, CONTEXT)


def test_a_wrong_pin_or_token_is_unavailable(token: Token) -> None:
    close_sessions()
    with pytest.raises(KeyProviderUnavailable, match="PinIncorrect"):
        token.provider(pin="000000").wrap(new_data_key(), CONTEXT)
    token.provider().wrap(new_data_key(), CONTEXT)
    with pytest.raises(KeyProviderUnavailable, match="PinIncorrect"):
        token.provider(pin="000000").wrap(new_data_key(), CONTEXT)
    with pytest.raises(KeyProviderUnavailable):
        Pkcs11KeyProvider(MODULE, "no-such-token", PIN, "kek-1").wrap(new_data_key(), CONTEXT)
    with pytest.raises(KeyProviderUnavailable, match="cannot load"):
        Pkcs11KeyProvider("/nonexistent/libpkcs11.so", TOKEN, PIN, "kek-1").wrap(
            new_data_key(), CONTEXT
        )


def test_the_settings_choose_the_token(token: Token, tmp_path: Path) -> None:
    env = {
        "RECARCHIVE_GENERAL_DATA_DIR": str(tmp_path),
        "RECARCHIVE_ENCRYPTION_ENABLED": "true",
        "RECARCHIVE_ENCRYPTION_PROVIDER": "pkcs11",
        "RECARCHIVE_ENCRYPTION_PKCS11_MODULE": MODULE,
        "RECARCHIVE_ENCRYPTION_PKCS11_TOKEN": token.label,
        "RECARCHIVE_ENCRYPTION_PKCS11_KEY_LABEL": "kek-2",
        "RECARCHIVE_PKCS11_PIN": token.pin,
    }
    settings = load_settings(env=env)
    assert prepare_key_provider(settings) == f"key-encryption key kek-2 on PKCS#11 token {TOKEN}"
    assert not key_file_path(settings).exists()  # no key file with a security module
    provider = open_key_provider(settings)
    assert provider.current_kek_id() == "kek-2"
    # A recording's object sealed under a data key the token wrapped, read back through it.
    store, key = InMemoryObjectStore(), "recordings/2026/03/14/x.wav"
    data_key, wrapped = new_data_key_for(provider, RECORDING)
    put = put_encrypted(store, key, io.BytesIO(b"audio" * 30_000), data_key)
    sealed = SealedObjectStore(
        store,
        lambda _key: ObjectSeal(
            open_key_provider(settings).unwrap(wrapped, key_context(RECORDING)),
            put.header,
            put.plaintext_size,
        ),
    )
    assert (
        sealed.get(key, byte_range=ByteRange(65_530, 65_545)).read()
        == ((b"audio" * 30_000)[65_530:65_546])
    )
    incomplete = load_settings(env={**env, "RECARCHIVE_ENCRYPTION_PKCS11_TOKEN": ""})
    with pytest.raises(ConfigError, match="pkcs11_token"):
        open_key_provider(incomplete)


def hsm_env(token: Token, label: str) -> dict[str, str]:
    return {
        "RECARCHIVE_ENCRYPTION_ENABLED": "true",
        "RECARCHIVE_ENCRYPTION_PROVIDER": "pkcs11",
        "RECARCHIVE_ENCRYPTION_PKCS11_MODULE": MODULE,
        "RECARCHIVE_ENCRYPTION_PKCS11_TOKEN": token.label,
        "RECARCHIVE_ENCRYPTION_PKCS11_KEY_LABEL": label,
        "RECARCHIVE_PKCS11_PIN": token.pin,
    }


def hsm_runtime(catalogue_url: str, data_dir: Path, token: Token, label: str) -> Runtime:
    return build_runtime(catalogue_url, data_dir, extra_env=hsm_env(token, label))


def kill_a_rotation(catalogue_url: str, data_dir: Path, token: Token, label: str) -> None:
    """``recarchive keys rotate`` as a process, killed (SIGKILL) after its second batch."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RECARCHIVE_")}
    environment.update(hsm_env(token, label))
    environment.update(
        {
            "RECARCHIVE_GENERAL_DATA_DIR": str(data_dir),
            "RECARCHIVE_CATALOGUE_URL": catalogue_url,
            "RECARCHIVE_TOKEN_PEPPER": TOKEN_PEPPER,
            "RECARCHIVE_IDENTITY_HASH_KEY": IDENTITY_HASH_KEY,
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "recarchive", "keys", "rotate", "--batch-size", "1"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for seen, _line in enumerate(process.stderr, start=1):
        if seen >= 2:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=120)
    process.stderr.close()


def every_recording_plays(runtime: Runtime) -> dict[str, int]:
    """Read every recording back through the token; data keys by KEK."""
    with runtime.sessions() as session:
        recordings = list(session.scalars(select(Recording)))
        keys = list(session.scalars(select(RecordingKey)))
    for recording in recordings:
        with runtime.store.get(recording.object_key) as reader:
            assert hashlib.sha256(reader.read()).hexdigest() == recording.sha256
    by_kek: dict[str, int] = {}
    for key in keys:
        by_kek[key.kek_id] = by_kek.get(key.kek_id, 0) + 1
    return by_kek


def test_rotation_to_a_new_label_on_the_token_survives_a_kill(
    token: Token, catalogue_url: str, tmp_path: Path
) -> None:
    label_a, label_b = f"rot-a-{uuid.uuid4().hex[:6]}", f"rot-b-{uuid.uuid4().hex[:6]}"
    first = hsm_runtime(catalogue_url, tmp_path, token, label_a)
    try:
        # generated on the token
        assert rotate_keys(first, tables=wrapped_key_tables()).new_kek == label_a
        added = [add_recording(first).id for _ in range(10)]
        assert every_recording_plays(first).get(label_a) == len(added)
    finally:
        close_runtime(first)
    # The operator sets a new label; a rotation is killed after its first batches.
    second = hsm_runtime(catalogue_url, tmp_path, token, label_b)
    try:
        kill_a_rotation(catalogue_url, tmp_path, token, label_b)
        halfway = every_recording_plays(second)  # under one label or the other, all open
        assert set(halfway) <= {label_a, label_b}
        assert sum(halfway.values()) >= len(added)
        report = rotate_keys(second, tables=wrapped_key_tables(), batch_size=3)
        assert report.new_kek is None  # the label's key was made by the killed run
        assert report.complete
        by_kek = every_recording_plays(second)
        assert set(by_kek) == {label_b}
    finally:
        close_runtime(second)
