"""The base of every settings section, shared by :mod:`recarchive.config` and its parts.

Kept apart so that :mod:`recarchive.config_ingest` can define sections without
importing :mod:`recarchive.config`, which imports it in turn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict


def _empty_is_none(value: object) -> object:
    return None if value == "" else value


#: A path setting that may be left empty ("" in TOML or the environment) to mean unset.
OptionalPath = Annotated[Path | None, BeforeValidator(_empty_is_none)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
