"""Settings of the QA workspace: the ``[qa]`` section (docs/qa.md).

A field of :class:`recarchive.config.Settings`.
"""

from __future__ import annotations

from pydantic import Field

from recarchive.config_base import _Section


class QaSettings(_Section):
    #: Years an evaluation is kept after its last change; the nightly job deletes it then.
    keep_evaluations_years: int = Field(default=2, ge=1, le=30)
    #: Years a sample (its candidates' agents and picks) is kept after its period ended; the
    #: nightly job deletes it then.
    keep_samples_years: int = Field(default=2, ge=1, le=30)
    #: Days an agent may dispute an evaluation, counted from the submission of its
    #: current version (docs/qa.md, "Agents: reviewing your own evaluations").
    dispute_window_days: int = Field(default=14, ge=1, le=365)
