"""Which telephony agent identifiers a user of role ``agent`` answers for.

The telephony system names the agent of each call (``Recording.agent``, copied
onto evaluations); an admin links such an identifier to the one user who is
that agent, and unlinks it. An identifier belongs to at most one user; a user
may have several. What an agent may see and hear follows from these links only
(:mod:`recarchive.qa.agent_access`): an agent-role user with no link sees
nothing. Links and unlinks are audited (``users.agent_link``,
``users.agent_unlink``) with the user's name and the identifier, an id of the
telephony system, never a caller's.
"""

from __future__ import annotations

import uuid

from sqlalchemy import exc as sa_exc
from sqlalchemy import select
from sqlalchemy.orm import Session

from recarchive.access.actors import Actor
from recarchive.access.audit import append_event
from recarchive.access.interfaces import AccessContext
from recarchive.access.models import Role, User, UserAgentId
from recarchive.access.policy import Action
from recarchive.access.services import AccessError
from recarchive.access.users import UserNotFound
from recarchive.catalogue.database import transaction
from recarchive.errors import InvalidInputError, NotFoundError

__all__ = [
    "AgentIdNotLinked",
    "AgentIdTaken",
    "agent_ids_of",
    "check_agent_id",
    "link_agent_id",
    "unlink_agent_id",
]

#: The longest agent identifier (the width of ``Recording.agent``).
MAX_AGENT_ID = 128


class AgentIdTaken(AccessError):
    """That agent identifier is already linked to a user."""


class AgentIdNotLinked(NotFoundError, AccessError):
    """That agent identifier is not linked to that user."""


class BadAgentId(InvalidInputError):
    """the agent identifier is not valid"""

    field = "agent_id"


def check_agent_id(agent_id: str) -> str:
    """The identifier stripped; :class:`BadAgentId` when empty or too long."""
    value = agent_id.strip()
    if not value or len(value) > MAX_AGENT_ID or any(ord(c) < 32 for c in value):
        raise BadAgentId(
            f"an agent identifier is 1 to {MAX_AGENT_ID} printable characters, "
            "as the telephony system names the agent"
        )
    return value


def agent_ids_of(session: Session, user_id: uuid.UUID | None) -> list[str]:
    """The agent identifiers linked to the user (none for an unknown id or no id)."""
    if user_id is None:
        return []
    statement = select(UserAgentId.agent).where(UserAgentId.user_id == user_id)
    return sorted(session.scalars(statement))


def _agent_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name).with_for_update())
    if user is None:
        raise UserNotFound(f"no user {name!r}")
    if user.role is not Role.AGENT:
        raise AccessError(f"user {name!r} has the role {user.role.value}; only agents are linked")
    return user


def _record(session: Session, actor: Actor, action: str, name: str, agent: str) -> None:
    append_event(
        session,
        actor=actor.name,
        actor_role=actor.role_name,
        client_addr=actor.client_addr,
        action=action,
        details={"user": name, "agent_id": agent},
    )


def link_agent_id(runtime: AccessContext, name: str, agent_id: str, *, actor: Actor) -> None:
    """An admin links ``agent_id`` to the agent-role user ``name`` (audited).

    Raises :class:`~recarchive.access.policy.Forbidden` unless an admin,
    :class:`~recarchive.access.users.UserNotFound`, :class:`AccessError` for a
    user of another role, and :class:`AgentIdTaken` when the identifier is
    any user's already (this one's included).
    """
    actor.require(Action.USERS_ADMIN)
    agent = check_agent_id(agent_id)
    with transaction(runtime.sessions) as session:
        user = _agent_user(session, name)
        owner = session.scalar(
            select(User.name).join(UserAgentId).where(UserAgentId.agent == agent)
        )
        if owner is not None:
            raise AgentIdTaken(f"agent identifier {agent!r} is already linked to user {owner!r}")
        session.add(UserAgentId(user_id=user.id, agent=agent, linked_by=actor.name))
        try:
            session.flush()
        except sa_exc.IntegrityError as exc:  # linked concurrently
            raise AgentIdTaken(f"agent identifier {agent!r} is already linked") from exc
        _record(session, actor, "users.agent_link", name, agent)


def unlink_agent_id(runtime: AccessContext, name: str, agent_id: str, *, actor: Actor) -> None:
    """An admin unlinks ``agent_id`` from user ``name`` (audited): from now on the
    user neither sees nor hears that identifier's evaluated calls.

    Raises :class:`~recarchive.access.policy.Forbidden`,
    :class:`~recarchive.access.users.UserNotFound` and :class:`AgentIdNotLinked`.
    """
    actor.require(Action.USERS_ADMIN)
    agent = check_agent_id(agent_id)
    with transaction(runtime.sessions) as session:
        user = _agent_user(session, name)
        link = session.scalar(
            select(UserAgentId).where(UserAgentId.user_id == user.id, UserAgentId.agent == agent)
        )
        if link is None:
            raise AgentIdNotLinked(f"agent identifier {agent!r} is not linked to user {name!r}")
        session.delete(link)
        _record(session, actor, "users.agent_unlink", name, agent)
