"""MixMonitor's split legs in a spool: the two files of one call, archived as one.

With its ``r(file)`` and ``t(file)`` options, Asterisk's MixMonitor writes
what the recorded channel *received* and what it *transmitted* to two mono
files. Dialplans (and FreePBX customisations) name them
``<base>-in.<ext>`` and ``<base>-out.<ext>``, the names the older
``Monitor()`` gave its two legs; ``<base>-rx.<ext>`` and ``<base>-tx.<ext>``
are taken too. A pair is two regular files in one directory with the same
``<base>`` and the same extension, the tags in lower case; any other file is
an ordinary recording.

Which side is which: the leg received from the recorded channel (``-in``,
``-rx``) is the voice of the party on that channel. FreePBX, and dialplans
that record on arrival, start MixMonitor on the inbound call's channel, the
caller's: so ``-in``/``-rx`` is the **caller**, laid on the **left**
channel, and ``-out``/``-tx`` (what the channel was sent: the agent) is the
**agent**, on the **right**, the archive's stereo convention
(:mod:`recarchive.media.merge`). An outbound call (its CDR row or its
FreePBX name says so) is recorded on the agent's channel, the one that
dialled: there ``-in`` is the agent and ``-out`` the customer, who goes on
the left all the same (:func:`voices`). A dialplan that records inbound
calls on the agent's channel swaps the sides; the file names cannot tell.

A pair is one work item under one source reference naming both files,
``<dir>/<base>-{in,out}.<ext>``: it is matched with its CDR row by the
uniqueid both names hold, fetched as the merged stereo WAV, and acknowledged
(deleted, or moved to ``done_dir``) file by file. A leg whose partner is not
there waits ``legs_wait_s`` (from its last write; counted as awaiting its
partner), then is archived alone, mono, and reported (``lone_legs`` in the
ingest summary, ``lone_leg_archived`` in the log); a partner that comes
after that goes on alone too (:func:`unpair_taken`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from recarchive.catalogue.models import Direction
from recarchive.ingest.files import sha256_file
from recarchive.ingest.interfaces import (
    Discovery,
    Fetched,
    InputRejected,
    KnownRefs,
    Problem,
    RecordingGone,
    SourceError,
    Waiting,
    legs_digest,
)
from recarchive.ingest.sources.done_dir import ForgottenRefs
from recarchive.media.formats import RECORDING_EXTENSIONS, canonical_codecs
from recarchive.media.interfaces import (
    DEFAULT_ALLOWED_CODECS,
    MediaError,
    MediaToolFailed,
    StillBeingWritten,
)
from recarchive.media.merge import LegFile, merge_legs

if TYPE_CHECKING:
    from recarchive.config import AudioSettings
    from recarchive.ingest.sources.spool_cdr import CdrRead


class SpoolSource(Protocol):
    """What pairing and fetching legs need of the spool source (which imports this module)."""

    name: str
    root: Path
    settle: dt.timedelta
    audio: AudioSettings

    def files(self, discovery: Discovery) -> list[tuple[Path, str]]: ...

    def call_item(
        self,
        relative: str,
        names: Sequence[str],
        when: tuple[dt.datetime, CdrRead, dt.datetime, set[str]],
        extension: str,
        locator: dict[str, Any],
        kept_at: str,
    ) -> Discovery | Problem | Waiting: ...


Role = Literal["caller", "agent"]
#: A leg's tag → its role and its partner's tag.
LEG_TAGS: Mapping[str, tuple[Role, str]] = {
    "in": ("caller", "out"),
    "out": ("agent", "in"),
    "rx": ("caller", "tx"),
    "tx": ("agent", "rx"),
}
_LEG_NAME = re.compile(r"^(?P<base>.+)-(?P<tag>in|out|rx|tx)\.(?P<ext>[A-Za-z0-9]+)$")
#: A pair's source reference: ``<dir>/<base>-{in,out}.<ext>``.
_PAIR_REF = re.compile(r"^(?P<stem>.*-)\{(?P<caller>in|rx),(?P<agent>out|tx)\}\.(?P<ext>[^./]+)$")


@dataclasses.dataclass(frozen=True)
class Leg:
    """One leg's file and what its name tells."""

    path: Path
    base: str
    tag: str
    extension: str

    @property
    def role(self) -> Role:
        return LEG_TAGS[self.tag][0]

    @property
    def partner_name(self) -> str:
        return f"{self.base}-{LEG_TAGS[self.tag][1]}.{self.extension}"

    def ref(self, root: Path) -> str:
        """The leg's own source reference, as it is queued when archived alone."""
        return self.path.relative_to(root).as_posix()

    @property
    def call_name(self) -> str:
        """The name without the leg's tag, as a single recording of the call would be named."""
        return f"{self.base}.{self.extension}"


@dataclasses.dataclass(frozen=True)
class LegPair:
    """The two legs of one call, both present."""

    caller: Leg
    agent: Leg

    def ref(self, root: Path) -> str:
        directory = self.caller.path.parent.relative_to(root).as_posix()
        prefix = "" if directory == "." else f"{directory}/"
        tags = f"{{{self.caller.tag},{self.agent.tag}}}"
        return f"{prefix}{self.caller.base}-{tags}.{self.caller.extension}"


@dataclasses.dataclass(frozen=True)
class LoneLeg:
    """A leg whose partner is not in the spool (yet)."""

    leg: Leg


#: What :func:`pair_legs` yields: a file (with the ignore rule it matches), a pair, a lone leg.
Entry = tuple[Path, str | None] | LegPair | LoneLeg


def leg_of(path: Path) -> Leg | None:
    """The leg a file is, or None: a name ending ``-in``/``-out``/``-rx``/``-tx`` + a recording
    extension."""
    match = _LEG_NAME.match(path.name)
    if match is None or match.group("ext").lower() not in RECORDING_EXTENSIONS:
        return None
    return Leg(path, match.group("base"), match.group("tag"), match.group("ext"))


def pair_legs(walked: Iterable[tuple[Path, str | None]]) -> Iterator[Entry]:
    """The spool's files as walked, with each directory's split legs paired.

    The walk yields a directory's files together, so legs are paired per
    directory as its files go by. A pair comes where its caller leg would
    have come; ignored files, symbolic links and other files come as they are.
    """
    batch: list[tuple[Path, str | None]] = []
    for path, rule in walked:
        if batch and path.parent != batch[0][0].parent:
            yield from _paired(batch)
            batch = []
        batch.append((path, rule))
    yield from _paired(batch)


def _paired(batch: list[tuple[Path, str | None]]) -> Iterator[Entry]:
    legs: dict[str, Leg] = {}
    for path, rule in batch:
        leg = leg_of(path) if rule is None else None
        if leg is not None and not path.is_symlink():
            legs[path.name] = leg
    for path, rule in batch:
        leg = legs.get(path.name) if rule is None else None
        if leg is None:
            yield path, rule
            continue
        partner = legs.get(leg.partner_name)
        if partner is None:
            yield LoneLeg(leg)
        elif leg.role == "caller":
            yield LegPair(leg, partner)


def unpair_taken(entries: list[Entry], root: Path, known: KnownRefs) -> list[Entry]:
    """``entries`` with each pair one of whose legs was already taken alone split into
    two lone legs.

    A leg taken alone (queued, archived or quarantined under its own reference
    after its wait) cannot become half of a stereo recording any more: its
    partner, come late, goes on alone too (waits, then is archived alone and
    reported), so that no leg is ever archived twice, once alone and once in
    a pair.
    """
    pairs = [entry for entry in entries if isinstance(entry, LegPair)]
    if not pairs:
        return entries
    refs = [leg.ref(root) for pair in pairs for leg in (pair.caller, pair.agent)]
    taken = set(known(refs))
    if not taken:
        return entries
    kept: list[Entry] = []
    for entry in entries:
        if isinstance(entry, LegPair) and {entry.caller.ref(root), entry.agent.ref(root)} & taken:
            kept += [LoneLeg(entry.caller), LoneLeg(entry.agent)]
        else:
            kept.append(entry)
    return kept


def pair_item(
    source: SpoolSource, pair: LegPair, cdr: CdrRead, now: dt.datetime, seen: set[str]
) -> Discovery | Problem | Waiting | None:
    """What a pair is this pass (None: a leg not settled yet, or gone)."""
    try:
        stats = {leg.role: leg.path.stat() for leg in (pair.caller, pair.agent)}
    except FileNotFoundError:
        return None
    newest = max(stat.st_mtime for stat in stats.values())
    modified = dt.datetime.fromtimestamp(newest, dt.UTC)
    if modified > now - source.settle:
        return None
    legs = {
        leg.role: {
            "name": leg.path.name,
            "size": stats[leg.role].st_size,
            "mtime_ns": stats[leg.role].st_mtime_ns,
        }
        for leg in (pair.caller, pair.agent)
    }
    names = [pair.caller.path.name, pair.agent.path.name, pair.caller.call_name]
    ref = pair.ref(source.root)
    return source.call_item(
        ref,
        names,
        (modified, cdr, now, seen),
        "wav",  # what fetch hands over: the merged recording
        {"legs": legs, "extension": pair.caller.extension},
        str(source.root / ref),
    )


def lone_leg_waits(
    lone: Leg | None, wait_s: float, relative: str, modified: dt.datetime, now: dt.datetime
) -> Waiting | None:
    """A lone leg waits for its partner ``wait_s`` seconds from its last write."""
    if lone is not None and modified > now - dt.timedelta(seconds=wait_s):
        return Waiting(relative, "partner_leg")
    return None


def is_pair(discovery: Discovery) -> bool:
    return "legs" in discovery.locator


def leg_refs(discovery: Discovery) -> list[str]:
    """The source references of a pair's two files (caller's first), or [] for one file."""
    match = _PAIR_REF.match(discovery.source_ref)
    if match is None or not is_pair(discovery):
        return []
    stem, ext = match.group("stem"), match.group("ext")
    return [f"{stem}{match.group('caller')}.{ext}", f"{stem}{match.group('agent')}.{ext}"]


def pair_of_leg_ref(ref: str) -> str | None:
    """The reference a pair holding the leg at ``ref`` is archived under."""
    directory, _, name = ref.rpartition("/")
    leg = leg_of(Path(name))
    if leg is None:
        return None
    caller, agent = (leg.tag, LEG_TAGS[leg.tag][1])[:: 1 if leg.role == "caller" else -1]
    prefix = f"{directory}/" if directory else ""
    return f"{prefix}{leg.base}-{{{caller},{agent}}}.{leg.extension}"


def with_pair_refs(forgotten: ForgottenRefs) -> ForgottenRefs:
    """``forgotten`` that also answers for a moved leg when its pair's call was forgotten."""

    def answer(refs: Iterable[str]) -> set[str]:
        refs = list(refs)
        pairs = {ref: pair for ref in refs if (pair := pair_of_leg_ref(ref)) is not None}
        gone = set(forgotten(sorted(set(refs) | set(pairs.values()))))
        return {ref for ref in refs if ref in gone or pairs.get(ref) in gone}

    return answer


def fetch_pair(source: SpoolSource, discovery: Discovery, work_dir: Path) -> Fetched:
    """Both legs merged into one stereo WAV in ``work_dir`` (caller left, agent right).

    A leg that is empty, not audio or broken has the pair quarantined
    (:class:`InputRejected`) with a reason whose detail names the leg; one
    still being written is tried again later.
    """
    received, transmitted = (path for path, _ in source.files(discovery))
    caller, agent = voices(discovery, received, transmitted)
    extension = str(discovery.locator.get("extension") or caller.suffix[1:])
    legs: dict[str, str] = {}
    for role, path in (("caller", caller), ("agent", agent)):
        try:
            legs[role] = sha256_file(path)
        except FileNotFoundError:
            raise RecordingGone(f"source {source.name}: the {role}'s leg is gone") from None
    destination = work_dir / f"legs-{uuid.uuid4()}.wav"
    audio = source.audio
    allowed = canonical_codecs(audio.allowed_codecs or DEFAULT_ALLOWED_CODECS)
    try:
        merge_legs(
            LegFile(caller, extension, f"caller leg (-{leg_tag(caller)})"),
            LegFile(agent, extension, f"agent leg (-{leg_tag(agent)})"),
            destination,
            allowed_codecs=allowed,
            timeout_s=audio.decode_timeout_s,
        )
    except StillBeingWritten as exc:
        raise SourceError(f"source {source.name}: split legs: {exc.message}") from None
    except MediaError as exc:
        if isinstance(exc, MediaToolFailed):
            raise
        kept_at = str(source.root / discovery.source_ref)
        message = f"split legs: {exc.message}"
        raise InputRejected(message, reason=exc.reason, kept_at=kept_at) from None
    size = destination.stat().st_size
    return Fetched(destination, size, temporary=True, digest=legs_digest(legs), legs=legs)


def voices(discovery: Discovery, received: Path, transmitted: Path) -> tuple[Path, Path]:
    """(the caller's leg, the agent's leg): whose voice each file holds.

    The received leg (``-in``, ``-rx``) is the voice of the party on the
    recorded channel. An inbound call is recorded on the caller's channel, so
    its received leg is the caller; FreePBX records an outbound call on the
    agent's channel (the one that dialled), so there the received leg is the
    agent and the transmitted one the customer, who goes on the left all the same.
    """
    if discovery.facts.direction is Direction.OUTBOUND:
        return transmitted, received
    return received, transmitted


def leg_tag(path: Path) -> str:
    leg = leg_of(path)
    return leg.tag if leg is not None else "?"


def lone_leg_provenance(discovery: Discovery, path: Path) -> dict[str, str]:
    """The SHA-256 of a lone leg archived alone, under its role; {} for any other file."""
    role = discovery.locator.get("lone_leg")
    if role not in ("caller", "agent"):
        return {}
    if discovery.facts.direction is Direction.OUTBOUND:  # recorded on the agent's channel
        role = "agent" if role == "caller" else "caller"
    return {str(role): sha256_file(path)}


def unsettled_pair(
    source: SpoolSource, discovery: Discovery, now: dt.datetime
) -> dict[str, Any] | None:
    """The pair's new locator if a leg changed since discovery and is still changing."""
    seen: Mapping[str, Mapping[str, Any]] = discovery.locator.get("legs") or {}
    current: dict[str, dict[str, Any]] = {}
    quiet = True
    for (path, _), role in zip(source.files(discovery), ("caller", "agent"), strict=True):
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        current[role] = {"name": path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        quiet = quiet and dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC) <= now - source.settle
    if current == {role: dict(value) for role, value in seen.items()} or quiet:
        return None
    return {**discovery.locator, "legs": current}
