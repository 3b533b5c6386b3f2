"""The bucket's lifecycle backstop on the real Ceph S3 server.

``scripts/s3-server`` shortens a lifecycle "day" to 10 seconds
(``rgw_lc_debug_interval``), so a one-day expiry rule really runs here.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator

import pytest

from recarchive.catalogue.services import CLASS_TAG
from recarchive.storage.s3 import S3ObjectStore
from tests.s3env import s3_environment

pytestmark = [pytest.mark.s3, pytest.mark.slow]


@pytest.fixture
def store() -> Iterator[S3ObjectStore]:
    env = s3_environment()
    store = S3ObjectStore(
        bucket=f"recarchive-lc-{uuid.uuid4().hex[:10]}",
        endpoint_url=env["RECARCHIVE_S3_ENDPOINT_URL"],
        region=env["RECARCHIVE_S3_REGION"],
        access_key_id=env["RECARCHIVE_S3_ACCESS_KEY_ID"],
        secret_access_key=env["RECARCHIVE_S3_SECRET_ACCESS_KEY"],
    )
    store.create()
    yield store
    store.delete_many([info.key for info in store.list("")])


def test_backstop_expires_standard_objects_and_spares_held_ones(store: S3ObjectStore) -> None:
    assert store.install_expiry_rules({"standard": 1, "contracts": 3650}, tag=CLASS_TAG) == 2
    assert store.expiry_rules() == {"standard": 1, "contracts": 3650}
    store.put("recordings/a.wav", io.BytesIO(b"a" * 100), tags={CLASS_TAG: "standard"})
    store.put("recordings/b.wav", io.BytesIO(b"b" * 100), tags={CLASS_TAG: "held"})
    store.put("recordings/c.wav", io.BytesIO(b"c" * 100), tags={CLASS_TAG: "contracts"})
    deadline = time.monotonic() + 150
    while store.exists("recordings/a.wav") and time.monotonic() < deadline:
        time.sleep(3)
    assert not store.exists("recordings/a.wav"), "the lifecycle rule did not expire it"
    assert store.exists("recordings/b.wav")
    assert store.exists("recordings/c.wav")


def test_installing_again_replaces_the_rules(store: S3ObjectStore) -> None:
    store.install_expiry_rules({"standard": 372}, tag=CLASS_TAG)
    store.install_expiry_rules({"standard": 372, "contracts": 737}, tag=CLASS_TAG)
    assert store.expiry_rules() == {"standard": 372, "contracts": 737}
