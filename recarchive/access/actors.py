"""Who does something: a member of staff, proven by their token, or the system.

Every use case that acts for someone takes an :class:`Actor` and decides
there whether it may (:meth:`Actor.require`), from the one role-by-action
matrix (:mod:`recarchive.access.policy`). The adapters only say who is
asking: the API and the CLI from a personal token (:meth:`Actor.staff`),
the system commands (ingest, expiry, reconcile) as the system with the OS
user and host that ran them (:meth:`Actor.system`). The audit log records
the actor's name, role and client address as given here.
"""

from __future__ import annotations

import dataclasses
import getpass
import socket
import uuid

from recarchive.access.models import Role
from recarchive.access.policy import Action, Forbidden, require
from recarchive.access.services import Principal


@dataclasses.dataclass(frozen=True)
class Actor:
    """A member of staff (with a role) or the system (without one)."""

    name: str
    role: Role | None
    client_addr: str | None = None
    user_id: uuid.UUID | None = None

    @classmethod
    def staff(cls, principal: Principal, client_addr: str | None = None) -> Actor:
        """The person a valid token speaks for, asking from ``client_addr``."""
        return cls(principal.user_name, principal.role, client_addr, principal.user_id)

    @classmethod
    def system(cls) -> Actor:
        """The system, as run by this OS user on this host (a timer, an operator's shell)."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no name for this uid (a container)
            user = "unknown"
        host = socket.gethostname()
        return cls(f"system:{user}@{host}"[:128], None, f"shell:{host}"[:64])

    @property
    def role_name(self) -> str | None:
        return self.role.value if self.role is not None else None

    def require(self, action: Action) -> None:
        """Raise :class:`~recarchive.access.policy.Forbidden` unless this actor may ``action``.

        The system may do none of the staff actions: a hold, a tag or a user
        change is always some person's, on record.
        """
        if self.role is None:
            raise Forbidden(f"{action.value} needs a member of staff's token, not the system")
        require(self.role, action)
