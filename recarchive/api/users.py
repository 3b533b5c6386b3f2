"""Users and their tokens, managed by an admin: create, list, issue, revoke, disable,
and an agent's telephony agent identifiers (link, unlink).

Thin: the use cases in :mod:`recarchive.access.users` decide who may (only
``users.admin``) and audit every call; a token appears in a response once,
when it is issued, and never again.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter

from recarchive.access.actors import Actor
from recarchive.access.agent_ids import link_agent_id, unlink_agent_id
from recarchive.access.policy import Action
from recarchive.access.services import IssuedToken
from recarchive.access.users import (
    add_user,
    disable_user,
    issue_token,
    list_tokens,
    list_users,
    revoke_token,
    show_user,
)
from recarchive.api.deps import CacheDep, ClientDep, PrincipalDep, RuntimeDep
from recarchive.api.schemas import (
    COMMON_ERRORS,
    AgentIdIn,
    AgentIdsOut,
    ErrorOut,
    IssuedTokenOut,
    TokenIn,
    TokenListOut,
    TokenOut,
    TokenRevokedOut,
    UserDisabledOut,
    UserIn,
    UserListOut,
    UserOut,
)
from recarchive.catalogue.database import utcnow

router = APIRouter(prefix="/api/v1", tags=["users"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such user or token."}
}
_REFUSED: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "The change was refused; `message` says why."}
}


def _issued(issued: IssuedToken) -> IssuedTokenOut:
    return IssuedTokenOut(
        user=issued.user_name,
        token_id=issued.token_id,
        token=issued.token,
        expires_at=issued.expires_at,
    )


@router.get("/users", response_model=UserListOut, responses=COMMON_ERRORS)
def users_list(runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep) -> UserListOut:
    """Every user with their role, state, number of usable tokens and last use (audited)."""
    users = list_users(runtime, actor=Actor.staff(principal, client))
    return UserListOut(
        items=[
            UserOut(
                name=u.name,
                role=u.role.value,
                created_at=u.created_at,
                disabled_at=u.disabled_at,
                active_tokens=u.active_tokens,
                last_used_at=u.last_used_at,
                agent_ids=list(u.agent_ids),
            )
            for u in users
        ]
    )


@router.post(
    "/users",
    response_model=IssuedTokenOut,
    status_code=201,
    responses={**COMMON_ERRORS, **_REFUSED},
)
def users_add(
    body: UserIn, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> IssuedTokenOut:
    """Create a user and their first token; the token is in this response only (audited)."""
    actor = Actor.staff(principal, client)
    actor.require(Action.USERS_ADMIN)  # before the body is looked at
    issued = add_user(
        runtime,
        body.name,
        body.role,
        actor=actor,
        token_days=body.token_days,
        description=body.description,
    )
    return _issued(issued)


@router.get(
    "/users/{name}/tokens",
    response_model=TokenListOut,
    responses={**COMMON_ERRORS, **_NOT_FOUND},
)
def users_tokens(
    name: str, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> TokenListOut:
    """A user's tokens, newest first, without their secrets (audited)."""
    tokens = list_tokens(runtime, name, actor=Actor.staff(principal, client))
    now = utcnow()
    return TokenListOut(
        items=[
            TokenOut(
                token_id=t.token_id,
                description=t.description,
                created_at=t.created_at,
                expires_at=t.expires_at,
                revoked_at=t.revoked_at,
                last_used_at=t.last_used_at,
                in_force=t.in_force(now),
            )
            for t in tokens
        ]
    )


@router.post(
    "/users/{name}/tokens",
    response_model=IssuedTokenOut,
    status_code=201,
    responses={**COMMON_ERRORS, **_NOT_FOUND, **_REFUSED},
)
def users_issue_token(
    name: str, body: TokenIn, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> IssuedTokenOut:
    """Issue another token to an enabled user; the token is in this response only (audited)."""
    actor = Actor.staff(principal, client)
    actor.require(Action.USERS_ADMIN)
    issued = issue_token(runtime, name, actor=actor, days=body.days, description=body.description)
    return _issued(issued)


@router.post(
    "/users/{name}/disable",
    response_model=UserDisabledOut,
    responses={**COMMON_ERRORS, **_NOT_FOUND, **_REFUSED},
)
def users_disable(
    name: str, runtime: RuntimeDep, cache: CacheDep, principal: PrincipalDep, client: ClientDep
) -> UserDisabledOut:
    """Disable a user and revoke all their tokens at once (audited).

    The last enabled admin cannot be disabled.
    """
    revoked = disable_user(runtime, name, actor=Actor.staff(principal, client))
    cache.forget_where(user_name=name)
    return UserDisabledOut(user=name, revoked_tokens=revoked)


@router.post(
    "/tokens/{token_id}/revoke",
    response_model=TokenRevokedOut,
    responses={**COMMON_ERRORS, **_NOT_FOUND, **_REFUSED},
)
def tokens_revoke(
    token_id: uuid.UUID,
    runtime: RuntimeDep,
    cache: CacheDep,
    principal: PrincipalDep,
    client: ClientDep,
) -> TokenRevokedOut:
    """Revoke one token: it stops working now in this process, within
    ``api.token_cache_s`` in the others (audited)."""
    user = revoke_token(runtime, token_id, actor=Actor.staff(principal, client))
    cache.forget_where(token_id=token_id)
    return TokenRevokedOut(user=user, token_id=token_id)


@router.post(
    "/users/{name}/agent-ids",
    response_model=AgentIdsOut,
    status_code=201,
    responses={**COMMON_ERRORS, **_NOT_FOUND, **_REFUSED},
)
def users_agent_link(
    name: str, body: AgentIdIn, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> AgentIdsOut:
    """Link a telephony agent identifier to agent-role user NAME (audited).

    An identifier belongs to at most one user (409 when taken).
    """
    actor = Actor.staff(principal, client)
    actor.require(Action.USERS_ADMIN)  # before the body is looked at
    link_agent_id(runtime, name, body.agent_id, actor=actor)
    return AgentIdsOut(user=name, agent_ids=list(show_user(runtime, name, actor=actor).agent_ids))


@router.delete(
    "/users/{name}/agent-ids/{agent_id}",
    response_model=AgentIdsOut,
    responses={**COMMON_ERRORS, **_NOT_FOUND, **_REFUSED},
)
def users_agent_unlink(
    name: str, agent_id: str, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> AgentIdsOut:
    """Unlink a telephony agent identifier from user NAME (audited)."""
    actor = Actor.staff(principal, client)
    unlink_agent_id(runtime, name, agent_id, actor=actor)
    return AgentIdsOut(user=name, agent_ids=list(show_user(runtime, name, actor=actor).agent_ids))
