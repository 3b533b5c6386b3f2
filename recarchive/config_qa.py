"""Settings of the QA workspace: the ``[qa]`` section (docs/qa.md).

A field of :class:`recarchive.config.Settings`.
"""

from __future__ import annotations

from pydantic import Field

from recarchive.config_base import _Section


class QaSettings(_Section):
    #: Years an evaluation is kept after its last change; the nightly job deletes it then.
    keep_evaluations_years: int = Field(default=2, ge=1, le=30)
