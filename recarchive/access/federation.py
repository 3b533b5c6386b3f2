"""Users from an OpenID provider: who a verified sign-on is, and with which role.

A verified sign-on (:class:`VerifiedIdentity`, from :mod:`recarchive.access.oidc`)
names the provider (issuer) and the person's subject there. The user is
found by that pair (``federated_identities``), never by name:

- first sign-in: a user is provisioned only if the role claim maps to a
  known role (``oidc.roles``); its name comes from ``oidc.username_claim``
  and must not be taken (a local user of that name is never taken over).
  Audited as ``users.provision``.
- later sign-ins: a disabled user stays refused, whatever the provider
  says; a role that changed at the provider is changed here (audited as
  ``users.role_change``); a role claim that no longer maps to a role refuses
  the sign-in and leaves the user as it was.

Every refusal is a :class:`SignInRefused` with a reason code (nothing is
written then); the API audits it as a refusal.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import select

from recarchive.access.audit import append_event
from recarchive.access.interfaces import AccessContext
from recarchive.access.models import FederatedIdentity, Role, User
from recarchive.access.services import NAME_PATTERN, Principal
from recarchive.catalogue.database import lock_for_write, transaction, utcnow
from recarchive.config_oidc import OidcSettings
from recarchive.errors import RefusedError

logger = logging.getLogger(__name__)

_NOT_IN_NAMES = re.compile(r"[^a-z0-9._-]+")


class SignInRefused(RefusedError):
    """your account at the sign-in provider may not use recarchive"""

    def __init__(
        self,
        reason: str,
        message: str | None = None,
        *,
        user_name: str | None = None,
        role: Role | None = None,
        claimed: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        #: ``missing_role_claim``, ``unknown_role``, ``ambiguous_role``,
        #: ``malformed_role_claim``, ``user_disabled``, ``no_user_name``, ``name_taken``.
        self.reason = reason
        self.user_name = user_name
        self.role = role
        #: The role claim's values (not personal: the provider's group or role names).
        self.claimed = claimed
        #: On a first sign-in, the name the person would have had (who was refused).
        self.claimed_user: str | None = None


@dataclasses.dataclass(frozen=True)
class VerifiedIdentity:
    """A person the provider vouched for: its ID token's signature and claims were checked."""

    issuer: str
    subject: str
    #: The ID token's claims, with the userinfo endpoint's added.
    claims: Mapping[str, Any]


def find_claim(claims: Mapping[str, Any], name: str) -> Any:
    """The claim ``name``: a top-level claim of that name, else a dotted path into nested ones
    (``realm_access.roles``); None when absent."""
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def role_values(claims: Mapping[str, Any], claim: str) -> tuple[str, ...] | None:
    """The role claim's values (a string or a list of strings); None when it is absent.

    Raises :class:`SignInRefused` (``malformed_role_claim``) for any other shape.
    """
    value = find_claim(claims, claim)
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise SignInRefused(
        "malformed_role_claim", f"the role claim {claim!r} is neither a string nor strings"
    )


def role_from_claims(claims: Mapping[str, Any], oidc: OidcSettings) -> Role:
    """The recarchive role the claims give, through ``oidc.roles``.

    Values the mapping does not name are ignored (a ``groups`` claim names
    many groups); exactly one role must remain. Raises :class:`SignInRefused`:
    ``missing_role_claim``, ``unknown_role`` (no value maps to a role),
    ``ambiguous_role`` (values map to different roles), ``malformed_role_claim``.
    """
    values = role_values(claims, oidc.role_claim)
    if not values:
        raise SignInRefused(
            "missing_role_claim",
            "your account at the sign-in provider has no role for recarchive; ask the person "
            "responsible for the register to give you one",
        )
    roles = {Role(oidc.roles[value]) for value in values if value in oidc.roles}
    if not roles:
        raise SignInRefused(
            "unknown_role",
            "your role at the sign-in provider is not one recarchive knows; ask the person "
            "responsible for the register to give you one",
            claimed=values,
        )
    if len(roles) > 1:
        names = ", ".join(sorted(role.value for role in roles))
        raise SignInRefused(
            "ambiguous_role",
            f"your account at the sign-in provider gives several roles ({names}); "
            "recarchive needs exactly one",
            claimed=values,
        )
    return roles.pop()


def user_name_from_claims(claims: Mapping[str, Any], claim: str) -> str:
    """The name a first sign-in gets: the claim lower-cased, every run of characters other
    than letters, digits, ".", "_" and "-" made "-" (``Anna.Virtanen@example.fi`` becomes
    ``anna.virtanen-example.fi``). :class:`SignInRefused` (``no_user_name``) if none is left."""
    value = find_claim(claims, claim)
    name = _NOT_IN_NAMES.sub("-", value.strip().lower()) if isinstance(value, str) else ""
    name = name.lstrip("._-")[:64].rstrip("._-") if name else ""
    if not NAME_PATTERN.match(name):
        raise SignInRefused(
            "no_user_name", f"the sign-in provider gives no usable user name (claim {claim!r})"
        )
    return name


def _actor(issuer: str) -> str:
    """Who provisions and changes users on the provider's word, in the audit log."""
    return f"oidc:{issuer}"[:128]


def sign_in(runtime: AccessContext, identity: VerifiedIdentity) -> Principal:
    """The user ``identity`` is, provisioned or updated as the module says; :class:`SignInRefused`.

    The caller opens the web session (:func:`~recarchive.access.sessions.open_session`).
    """
    try:
        return _sign_in(runtime, identity)
    except sa_exc.IntegrityError:
        # The same person's first sign-in, twice at once: the second finds the first's user.
        return _sign_in(runtime, identity)


def _sign_in(runtime: AccessContext, identity: VerifiedIdentity) -> Principal:
    oidc = runtime.settings.oidc
    now = utcnow()
    with transaction(runtime.sessions) as session:
        lock_for_write(session)
        link = session.scalar(
            select(FederatedIdentity)
            .where(
                FederatedIdentity.issuer == identity.issuer,
                FederatedIdentity.subject == identity.subject,
            )
            .with_for_update()
        )
        if link is not None:
            user = session.get_one(User, link.user_id, with_for_update=True)
            if user.disabled_at is not None:
                raise SignInRefused(
                    "user_disabled",
                    "your recarchive account is disabled",
                    user_name=user.name,
                    role=user.role,
                )
            try:
                role = role_from_claims(identity.claims, oidc)
            except SignInRefused as refused:
                refused.user_name, refused.role = user.name, user.role
                raise
            if role != user.role:
                details = {"user": user.name, "from": user.role.value, "to": role.value}
                append_event(
                    session,
                    actor=_actor(identity.issuer),
                    action="users.role_change",
                    details={**details, "issuer": identity.issuer},
                )
                logger.info("user_role_changed", extra={"user_id": str(user.id)})
                user.role = role
            link.last_sign_in_at = now
            return Principal(user.id, user.name, user.role)
        try:
            role = role_from_claims(identity.claims, oidc)
        except SignInRefused as refused:
            with contextlib.suppress(SignInRefused):
                refused.claimed_user = user_name_from_claims(identity.claims, oidc.username_claim)
            raise
        name = user_name_from_claims(identity.claims, oidc.username_claim)
        if session.scalar(select(User.id).where(User.name == name)) is not None:
            raise SignInRefused(
                "name_taken",
                f"a recarchive user named {name!r} exists and is not linked to this sign-in "
                "provider; ask the person responsible for the register",
            )
        user = User(name=name, role=role)
        session.add(user)
        session.flush()
        session.add(
            FederatedIdentity(
                user_id=user.id,
                issuer=identity.issuer,
                subject=identity.subject,
                created_at=now,
                last_sign_in_at=now,
            )
        )
        session.flush()
        append_event(
            session,
            actor=_actor(identity.issuer),
            action="users.provision",
            details={"user": name, "role": role.value, "issuer": identity.issuer},
        )
        logger.info("user_provisioned", extra={"user_id": str(user.id)})
        return Principal(user.id, user.name, user.role)
