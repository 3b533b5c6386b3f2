"""Scorecard forms: defined, revised (a new version each time) and read by QA trainers.

A form version never changes once written (:class:`~recarchive.qa.models.FormVersion`):
an evaluation keeps the version it was made with, and a revision makes the
next version, which new evaluations use. The definition is validated
strictly (:func:`recarchive.qa.scoring.parse_definition`) before it is
stored. Every change is audited (``qa.form.add``), with ids and counts only.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from recarchive.access.actors import Actor
from recarchive.access.audit import append_event
from recarchive.access.policy import Action
from recarchive.catalogue.database import lock_for_write, transaction
from recarchive.errors import ConflictError, InvalidInputError, NotFoundError
from recarchive.parts import Sessions
from recarchive.qa.models import Form, FormVersion
from recarchive.qa.scoring import FormDefinition, parse_definition

__all__ = [
    "FormNameTaken",
    "FormNotFound",
    "create_form",
    "find_form",
    "form_dict",
    "get_form",
    "list_forms",
    "revise_form",
    "version_dict",
]


class FormNameTaken(ConflictError):
    """a form has that name"""


class FormNotFound(NotFoundError):
    """no such scorecard form"""


class FormNameError(InvalidInputError):
    """a form's name is 1 to 128 characters"""

    field = "name"


def _audit(session: Session, actor: Actor, form: Form, version: FormVersion, change: str) -> None:
    definition = parse_definition(version.definition)
    append_event(
        session,
        actor=actor.name,
        actor_role=actor.role_name,
        action="qa.form.add",
        client_addr=actor.client_addr,
        details={
            "form_id": str(form.id),
            "form_version_id": str(version.id),
            "version": version.version,
            "change": change,
            "sections": len(definition.sections),
            "questions": len(definition.questions()),
        },
    )


def _stored(definition: FormDefinition | dict[str, Any]) -> dict[str, Any]:
    parsed = definition if isinstance(definition, FormDefinition) else parse_definition(definition)
    return parsed.model_dump(mode="json", exclude_none=True)


def create_form(
    runtime: Sessions, *, name: str, definition: FormDefinition | dict[str, Any], actor: Actor
) -> Form:
    """A new form (version 1); :class:`FormNameTaken` if the name is in use."""
    actor.require(Action.QA_FORM)
    name = name.strip()
    if not name or len(name) > 128:
        raise FormNameError()
    stored = _stored(definition)
    try:
        with transaction(runtime.sessions) as session:
            if session.scalar(select(Form.id).where(Form.name == name)) is not None:
                raise FormNameTaken(f"a form named {name!r} exists; add a version to it instead")
            form = Form(name=name, current_version=1, created_by=actor.name)
            version = FormVersion(form=form, version=1, definition=stored, created_by=actor.name)
            session.add(form)
            session.flush()
            _audit(session, actor, form, version, "created")
    except IntegrityError:  # another request took the name between the check and the insert
        raise FormNameTaken(f"a form named {name!r} exists; add a version to it instead") from None
    return get_form(runtime, form.id, actor=actor)


def revise_form(
    runtime: Sessions,
    form_id: uuid.UUID,
    *,
    definition: FormDefinition | dict[str, Any],
    actor: Actor,
) -> Form:
    """The form's next version; evaluations made so far keep theirs."""
    actor.require(Action.QA_FORM)
    stored = _stored(definition)
    with transaction(runtime.sessions) as session:
        lock_for_write(session)  # SQLite ignores FOR UPDATE: the next version number is ours
        form = session.get(Form, form_id, with_for_update=True)
        if form is None:
            raise FormNotFound(f"no scorecard form {form_id}")
        form.current_version += 1
        version = FormVersion(
            form=form, version=form.current_version, definition=stored, created_by=actor.name
        )
        session.add(version)
        session.flush()
        _audit(session, actor, form, version, "revised")
    return get_form(runtime, form_id, actor=actor)


def _load(session: Session, form_id: uuid.UUID) -> Form:
    form = session.scalar(
        select(Form).where(Form.id == form_id).options(selectinload(Form.versions))
    )
    if form is None:
        raise FormNotFound(f"no scorecard form {form_id}")
    return form


def get_form(runtime: Sessions, form_id: uuid.UUID, *, actor: Actor) -> Form:
    """One form with every version (detached, loaded)."""
    actor.require(Action.QA_FORM)
    with runtime.sessions() as session:
        return _load(session, form_id)


def find_form(runtime: Sessions, name_or_id: str, *, actor: Actor) -> Form:
    """A form by its id or its name (what a shell user types)."""
    actor.require(Action.QA_FORM)
    try:
        return get_form(runtime, uuid.UUID(name_or_id), actor=actor)
    except ValueError:
        pass
    with runtime.sessions() as session:
        form_id = session.scalar(select(Form.id).where(Form.name == name_or_id.strip()))
        if form_id is None:
            raise FormNotFound(f"no scorecard form named {name_or_id[:128]!r}")
        return _load(session, form_id)


def list_forms(runtime: Sessions, *, actor: Actor) -> list[Form]:
    """Every form with its versions, by name."""
    actor.require(Action.QA_FORM)
    with runtime.sessions() as session:
        return list(
            session.scalars(select(Form).order_by(Form.name).options(selectinload(Form.versions)))
        )


def version_dict(version: FormVersion) -> dict[str, Any]:
    return {
        "id": str(version.id),
        "version": version.version,
        "definition": version.definition,
        "created_by": version.created_by,
        "created_at": version.created_at.isoformat(),
    }


def form_dict(form: Form) -> dict[str, Any]:
    """A form as the API and ``--json`` show it: the current version's id and every version."""
    versions = sorted(form.versions, key=lambda v: v.version)
    current = next(v for v in versions if v.version == form.current_version)
    return {
        "id": str(form.id),
        "name": form.name,
        "version": form.current_version,
        "current_version_id": str(current.id),
        "created_by": form.created_by,
        "created_at": form.created_at.isoformat(),
        "versions": [version_dict(v) for v in versions],
    }
