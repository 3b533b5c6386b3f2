"""A case's evidence package, as a dispute handler makes it: the API, the shell, a real TSA.

The package is made from the case itself (its facts and linked recordings),
checked with ``recarchive evidence verify``'s checks, kept in the case's
exports, and its making is in the case's custody record. A linked recording
deleted since is named in the package, never silently left out; a case with
nothing archived exports nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from recarchive.access.models import Role
from recarchive.catalogue.database import transaction
from recarchive.catalogue.models import Recording, RecordingStatus
from recarchive.disputes.keys import create_evidence_key, evidence_key_path
from recarchive.disputes.package_format import MANIFEST
from recarchive.disputes.verify import verify_package
from tests.api_fixtures import (
    ApiClient,
    RoleClient,
    add_customer,
    add_recording,
    build_runtime,
    close_runtime,
    tokens,
)
from tests.integration.test_evidence import tsa_env
from tests.tsa import Tsa

D, P, Q = Role.DISPUTE_HANDLER, Role.PRIVACY_OFFICER, Role.QA_TRAINER


@pytest.fixture(scope="module")
def api(
    catalogue_url: str, tmp_path_factory: pytest.TempPathFactory, tsa: Tsa
) -> Iterator[ApiClient]:
    runtime = build_runtime(
        catalogue_url, Path(tmp_path_factory.mktemp("case-export")), extra_env=tsa_env(tsa)
    )
    create_evidence_key(evidence_key_path(runtime.settings))
    runtime.anchors.sink.create()
    add_customer(runtime, "C-EXPORT", "Export Customer")
    with ApiClient(runtime, tokens(runtime)) as client:
        yield client
    close_runtime(runtime)


def _case(client: RoleClient, recording_ids: list[uuid.UUID]) -> dict[str, object]:
    opened = client.post(
        "/api/v1/cases",
        json={
            "reference": f"EXP-{uuid.uuid4().hex[:8]}",
            "kind": "contract",
            "customer_id": "C-EXPORT",
            "document_ref": "CONTRACT-55",
        },
    )
    assert opened.status_code == 201, opened.text
    case: dict[str, object] = opened.json()
    if recording_ids:
        linked = client.post(
            f"/api/v1/cases/{case['id']}/recordings",
            json={"recording_ids": [str(i) for i in recording_ids]},
        )
        assert linked.status_code == 200, linked.text
        case = linked.json()
    return case


def test_the_case_page_export_is_a_package_that_verifies(api: ApiClient, tmp_path: Path) -> None:
    handler = api.as_role(D)
    recordings = [
        add_recording(api.runtime, seconds=0.5, customer_id="C-EXPORT", agent="exp-agent"),
        add_recording(api.runtime, seconds=0.5, channels=2, customer_id="C-EXPORT"),
    ]
    case = _case(handler, [r.id for r in recordings])
    played = handler.get(
        f"/api/v1/recordings/{recordings[0].id}/audio",
        params={"purpose": "dispute", "case": str(case["reference"])},
    )
    assert played.status_code == 200, played.text

    response = handler.post(f"/api/v1/cases/{case['id']}/export")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert f"evidence-{case['reference']}.zip" in response.headers["content-disposition"]
    package = tmp_path / "package.zip"
    package.write_bytes(response.content)
    report = verify_package(package)
    assert report.ok, report
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        manifest_bytes = archive.read(MANIFEST)
    manifest = json.loads(manifest_bytes)
    assert manifest["case"]["reference"] == case["reference"]
    assert manifest["case"]["document_ref"] == "CONTRACT-55"
    assert {r["id"] for r in manifest["recordings"]} == {str(r.id) for r in recordings}
    assert "recordings_no_longer_archived" not in manifest["case"]

    detail = handler.get(f"/api/v1/cases/{case['id']}").json()
    (export,) = detail["exports"]
    assert export["manifest_sha256"] == hashlib.sha256(manifest_bytes).hexdigest()
    assert (export["made_by"], export["recordings"]) == ("dispute_handler", 2)
    assert export["timestamped_at"] is not None
    custody = handler.get(f"/api/v1/cases/{case['id']}/custody").json()["entries"]
    actions = [e["action"] for e in custody]
    assert {"case.export", "play", "case.link"} <= set(actions)
    # Nothing is left behind in the work directory once the answer is sent.
    assert not list(api.runtime.settings.work_dir.glob("evidence-*"))


def test_a_recording_deleted_since_it_was_linked_is_named_not_dropped(api: ApiClient) -> None:
    officer = api.as_role(P)
    kept, gone = (add_recording(api.runtime, seconds=0.5) for _ in range(2))
    case = _case(officer, [kept.id, gone.id])
    with transaction(api.runtime.sessions) as session:
        session.execute(
            update(Recording)
            .where(Recording.id == gone.id)
            .values(status=RecordingStatus.DELETING, deleting_by="test", deleting_rule="erasure")
        )

    response = officer.post(f"/api/v1/cases/{case['id']}/export")

    assert response.status_code == 200, response.text
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        manifest = json.loads(archive.read(MANIFEST))
    assert [r["id"] for r in manifest["recordings"]] == [str(kept.id)]
    assert manifest["case"]["recordings_no_longer_archived"] == [str(gone.id)]


def test_a_case_with_nothing_archived_exports_nothing(api: ApiClient) -> None:
    handler = api.as_role(D)
    case = _case(handler, [])

    response = handler.post(f"/api/v1/cases/{case['id']}/export")

    assert response.status_code == 409
    assert "no archived recording" in response.json()["error"]["message"]
    assert handler.get(f"/api/v1/cases/{case['id']}").json()["exports"] == []


def test_only_case_roles_export_and_an_unknown_case_is_404(api: ApiClient) -> None:
    assert api.as_role(Q).post(f"/api/v1/cases/{uuid.uuid4()}/export").status_code == 403
    assert api.as_role(D).post(f"/api/v1/cases/{uuid.uuid4()}/export").status_code == 404
