"""Access tables: staff users, their API tokens and provider identities, the telephony
agent identifiers an agent-role user answers for, web sessions, sign-ins in progress,
and the hash-chained audit log."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from recarchive.catalogue.database import Base, UTCDateTime, utcnow
from recarchive.catalogue.types import BigIntegerKey, enum_column, uuid_key


class Role(enum.StrEnum):
    QA_TRAINER = "qa_trainer"
    DISPUTE_HANDLER = "dispute_handler"
    PRIVACY_OFFICER = "privacy_officer"
    AUDITOR = "auditor"
    ADMIN = "admin"
    #: A telephony agent: sees and hears only the evaluations of their own calls.
    AGENT = "agent"


class User(Base):
    """A member of staff with personal credentials and one role."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = uuid_key()
    name: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[Role] = enum_column(Role)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: The web pages' language the user chose (``fi``, ``en``; None: the installation's).
    language: Mapped[str | None] = mapped_column(String(8))

    tokens: Mapped[list[ApiToken]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )
    agent_ids: Mapped[list[UserAgentId]] = relationship(
        back_populates="user", cascade="all, delete-orphan", order_by="UserAgentId.agent"
    )


class UserAgentId(Base):
    """A telephony agent identifier (the ``agent`` of recordings) and the user it is.

    An identifier belongs to at most one user (unique); a user of role
    ``agent`` may have several (two systems, a renamed login). Linked and
    unlinked by an admin (:mod:`recarchive.access.agent_ids`).
    """

    __tablename__ = "user_agent_ids"

    id: Mapped[uuid.UUID] = uuid_key()
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    agent: Mapped[str] = mapped_column(String(128), unique=True)
    linked_by: Mapped[str] = mapped_column(String(128))
    linked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="agent_ids")


class ApiToken(Base):
    """An API token: only its Argon2 hash is stored; the token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = uuid_key()
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    secret_hash: Mapped[str] = mapped_column(String(256))
    description: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(back_populates="tokens")


class AuditEvent(Base):
    """One entry of the append-only audit log.

    Each entry carries the hash of the entry before it (``prev_hash``) and its
    own hash over its content and ``prev_hash``, so an edited, removed or
    reordered entry breaks the chain. No foreign keys: the log outlives the
    users and recordings it names.
    """

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(BigIntegerKey, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(128), index=True)
    actor_role: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64), index=True)
    recording_id: Mapped[uuid.UUID | None] = mapped_column(Uuid(), index=True)
    purpose: Mapped[str | None] = mapped_column(String(32))
    case_ref: Mapped[str | None] = mapped_column(String(128))
    client_addr: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: HMAC of ``hash`` with the installation's audit key: only recarchive can write
    #: an entry that verifies (see :mod:`recarchive.access.anchoring`).
    seal: Mapped[str | None] = mapped_column(String(64))


class FederatedIdentity(Base):
    """A user's account at an OpenID provider: the provider's (issuer, subject) pair.

    A single sign-on finds its user by this pair only, never by name
    (:mod:`recarchive.access.federation`). Deleted with the user.
    """

    __tablename__ = "federated_identities"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: Mapped[uuid.UUID] = uuid_key()
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    issuer: Mapped[str] = mapped_column(String(512))
    #: The provider's identifier of the person (OpenID Connect allows 255 ASCII characters).
    subject: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_sign_in_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PendingSignIn(Base):
    """A single sign-on between its start and the provider's answer (minutes).

    Holds the request's state, nonce and PKCE verifier, bound to the browser
    that started it (the SHA-256 of a random cookie). Taken (deleted) by the
    first answer that names its state, whatever the outcome, so an answer
    replayed opens nothing; swept once expired (:mod:`recarchive.access.sign_ins`).
    """

    __tablename__ = "pending_sign_ins"

    id: Mapped[uuid.UUID] = uuid_key()
    #: SHA-256 (hex) of the state sent to the provider.
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: SHA-256 (hex) of the cookie that binds the sign-in to one browser.
    browser_hash: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(128))
    code_verifier: Mapped[str] = mapped_column(String(128))
    redirect_url: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class WebSession(Base):
    """A web-player sign-in: the browser's cookie holds a random secret, this row its hash.

    Tied to its user, and, when opened with a token, to that token: signing
    out, disabling the user or (for a token's session) revoking the token
    ends it. A single sign-on's session has no token. Deleted at sign-out,
    when found ended, and by the sweep each sign-in makes
    (:mod:`recarchive.access.sessions`).
    """

    __tablename__ = "web_sessions"

    id: Mapped[uuid.UUID] = uuid_key()
    #: SHA-256 (hex) of the cookie's secret; the secret itself is never stored.
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    #: The token the session was opened with; None for a single sign-on.
    token_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid(), ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
