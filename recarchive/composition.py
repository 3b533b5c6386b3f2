"""The composition root: which domain acts on which other domain's events.

Imports point down (docs/architecture.md); where a lower domain's event
must reach a higher one, the lower one publishes to a topic
(:mod:`recarchive.events`) and this module subscribes the higher one's
handler. :func:`compose` is called by every entry point before it does any
work: the CLI (``cli/common.py: AppContext``) and the API (``api/app.py:
create_app``); the tests call it once for the whole run. Calling it again
changes nothing.

- a hold released (``retention/events.py: HOLD_RELEASED``) → pending erasures
  resume (``privacy/erasure.py: resume_after_hold_release``);
- the nightly run has expired what was due (``NIGHTLY_EXPIRY_DONE``) → pending
  erasures resume, their count goes into the run's audit entry
  (``resume_after_nightly_expiry``); closed dispute cases past their keep
  period are deleted, their count goes there too
  (``disputes/keeping.py: purge_after_nightly_expiry``); training clips whose
  calls expired or went are deleted (``qa/clip_purge.py:
  purge_after_nightly_expiry``), and QA evaluations past
  ``qa.keep_evaluations_years`` (``qa/keeping.py: purge_after_nightly_expiry``),
  their counts going there too;
- a restriction or an objection recorded (``privacy/events.py:
  TRAINING_EXCLUDED``) → the QA samples' picks it covers are withdrawn
  (``qa/withdrawal.py: withdraw_after_exclusion``), and the training clips
  of the calls it covers are deleted (``qa/clip_purge.py: purge_after_exclusion``);
- every table of wrapped data keys, for ``keys rotate`` and ``keys retire``
  (:func:`wrapped_key_tables`: the recordings' and the training clips');
- an erasure ran (``privacy/events.py: SUBJECT_ERASED``) → every training
  clip of the subject's calls is deleted (``purge_after_erasure``);
- an agent asks to play a call for ``self_review`` (``lookup/events.py:
  SELF_REVIEW_ASKED``) → the QA workspace answers whether it is one of their
  own evaluated calls (``qa/agent_access.py: may_self_review``).

The handlers import their domain when first called, so that a command that
never releases a hold or runs the nightly job does not pay for their
imports at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping

from recarchive.catalogue.data_keys import RECORDING_KEYS, WrappedKeyTable
from recarchive.lookup.events import SELF_REVIEW_ASKED, SelfReviewAsked
from recarchive.privacy.events import (
    SUBJECT_ERASED,
    TRAINING_EXCLUDED,
    SubjectErased,
    TrainingExcluded,
)
from recarchive.retention.events import (
    HOLD_RELEASED,
    NIGHTLY_EXPIRY_DONE,
    HoldReleased,
    NightlyExpiryDone,
)

__all__ = ["compose", "wrapped_key_tables"]


def compose() -> None:
    """Subscribe every handler to its topic (idempotent)."""
    HOLD_RELEASED.subscribe(resume_erasures_after_release)
    NIGHTLY_EXPIRY_DONE.subscribe(resume_erasures_after_expiry)
    NIGHTLY_EXPIRY_DONE.subscribe(purge_cases_after_expiry)
    NIGHTLY_EXPIRY_DONE.subscribe(purge_clips_after_expiry)
    NIGHTLY_EXPIRY_DONE.subscribe(purge_evaluations_after_expiry)
    TRAINING_EXCLUDED.subscribe(withdraw_from_samples)
    TRAINING_EXCLUDED.subscribe(purge_clips_after_exclusion)
    SUBJECT_ERASED.subscribe(purge_clips_after_erasure)
    SELF_REVIEW_ASKED.subscribe(self_review_of_own_call)


def self_review_of_own_call(event: SelfReviewAsked) -> bool:
    from recarchive.qa.agent_access import may_self_review

    return may_self_review(event)


def wrapped_key_tables() -> tuple[WrappedKeyTable, ...]:
    """Every table that keeps wrapped data keys: none may be left under a retired key."""
    from recarchive.qa.clip_audio import CLIP_KEYS

    return (RECORDING_KEYS, CLIP_KEYS)


def resume_erasures_after_release(event: HoldReleased) -> None:
    from recarchive.privacy.erasure import resume_after_hold_release

    resume_after_hold_release(event)


def resume_erasures_after_expiry(event: NightlyExpiryDone) -> Mapping[str, int]:
    from recarchive.privacy.erasure import resume_after_nightly_expiry

    return resume_after_nightly_expiry(event)


def purge_cases_after_expiry(event: NightlyExpiryDone) -> Mapping[str, int]:
    from recarchive.disputes.keeping import purge_after_nightly_expiry

    return purge_after_nightly_expiry(event)


def purge_evaluations_after_expiry(event: NightlyExpiryDone) -> Mapping[str, int]:
    from recarchive.qa.keeping import purge_after_nightly_expiry

    return purge_after_nightly_expiry(event)


def withdraw_from_samples(event: TrainingExcluded) -> None:
    from recarchive.qa.withdrawal import withdraw_after_exclusion

    withdraw_after_exclusion(event)


def purge_clips_after_expiry(event: NightlyExpiryDone) -> Mapping[str, int]:
    from recarchive.qa.clip_purge import purge_after_nightly_expiry

    return purge_after_nightly_expiry(event)


def purge_clips_after_exclusion(event: TrainingExcluded) -> None:
    from recarchive.qa.clip_purge import purge_after_exclusion

    purge_after_exclusion(event)


def purge_clips_after_erasure(event: SubjectErased) -> None:
    from recarchive.qa.clip_purge import purge_after_erasure

    purge_after_erasure(event)
