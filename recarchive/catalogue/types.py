"""Column helpers shared by every domain's models."""

from __future__ import annotations

import enum
import uuid
from typing import Any

from sqlalchemy import BigInteger, Enum, Integer, Uuid
from sqlalchemy.orm import mapped_column

#: A 64-bit integer primary key that still auto-increments on SQLite.
BigIntegerKey = BigInteger().with_variant(Integer(), "sqlite")


def enum_column(enum_type: type[enum.StrEnum], **kwargs: Any) -> Any:
    """A column holding a :class:`enum.StrEnum` as its plain string value.

    No native database enum and no CHECK constraint: adding a value later is a
    code change, not a migration. Unknown values read back raise ``LookupError``.
    """
    return mapped_column(
        Enum(
            enum_type,
            native_enum=False,
            create_constraint=False,
            length=32,
            values_callable=lambda members: [member.value for member in members],
        ),
        **kwargs,
    )


def uuid_key() -> Any:
    """A UUID primary key generated in Python (uuid4), so ids exist before the INSERT."""
    return mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
