#!/usr/bin/env python3
"""Generate synthetic customer-service calls, delivered the way real telephony systems do.

    python scripts/gen_calls.py --out DIR --layout spool --count 100 --day 2026-03-14 \\
        --formats wav,ulaw,gsm,mp3 --bad all --seed 1

Audio: a pool of about twenty utterances is synthesised once (espeak-ng's
Finnish voice, a lower, slower one for the customer and a higher, faster one
for the agent; or, without espeak-ng or with ``--engine tones``, voice-like
tones from ffmpeg's ``aevalsrc``) and cached. Each call is then built by ONE
ffmpeg run that concatenates pool clips and exact silences into turns: the
customer on the LEFT channel and the agent on the RIGHT for stereo layouts,
both mixed into one channel for the Asterisk spool. Every call has a whole
number of 40 ms steps (so GSM blocks and the manifest's durations are exact).

Layouts (what the ingest sources read):

- ``spool`` (Asterisk/FreePBX): ``monitor/YYYY/MM/DD/<type>-<exten>-<from>-<YYYYMMDD>-<HHMMSS>-
  <uniqueid>.<ext>``, mono 8 kHz, ``cdr/Master.csv`` (cdr_csv: no header, strings quoted,
  ``duration``/``billsec`` bare integers as Asterisk writes them, local Europe/Helsinki
  times), ``cdr/cdr-export.csv`` (the FreePBX ``cdr`` table, with a header and
  ``recordingfile``) and ``cdr/cdr.sql`` (the same rows as ``INSERT`` statements for
  FreePBX 16/17's ``asteriskcdrdb.cdr`` table, every column of it; load it with
  ``mariadb asteriskcdrdb < cdr/cdr.sql``).
- ``twilio``: ``twilio/recordings/<RecordingSid>.<wav|mp3>`` and ``twilio/index.json``
  (Recording resources plus a ``call`` object with from/to/direction).
- ``s3drop`` (Amazon Connect): ``connect/<instance>/CallRecordings/YYYY/MM/DD/
  <ContactId>_<YYYYMMDDTHH:MM>_UTC.wav`` (stereo) and contact trace records under
  ``connect/<instance>/ContactTraceRecords/YYYY/MM/DD/<ContactId>.json``.

Split legs (``--split-legs N``, spool layout): N answered calls are written as
MixMonitor's ``r()``/``t()`` legs, ``…-<uniqueid>-in.<ext>`` (the customer's turns
alone) and ``…-<uniqueid>-out.<ext>`` (the agent's), the two voices (or tones) told
apart; the archive is expected to make each pair ONE stereo recording, customer
left and agent right (manifest: ``split_legs``, ``expected_channels`` 2). One more
call is written as a lone ``-in`` leg whose partner never comes: archived alone,
mono, and reported (``expected_reason`` ``lone_leg``).

Every layout also gets ``customers.csv`` (the customer directory) and
``manifest.json`` (what was generated and what the archive is expected to do
with each call and each deliberately bad input).

Reason codes. Queues and the IVR digit (``ivr=N`` in the CDR userfield) share one
numbering; a ``reason=<code>`` in the userfield (or the Connect contact
attribute ``reason``) names the exact code:

    601  ivr=1  billing                                 (Connect queue "Billing")
    602  ivr=2  outage, fault_report                    (Connect queue "Outages")
    603  ivr=3  contract_change, new_contract           (Connect queue "Contracts")
    604  ivr=4  moving, personal_data_change            (Connect queue "MovingAndDetails")

Bad inputs (``--bad``, comma-separated or ``all``), each added as an extra call
or row, with the outcome the manifest expects: zero_byte, header_only,
truncated (truncated_audio: a WAV cut mid-sample less than a second before its
end, or an MP3 whose tail is zeros), header_lie (header_length_mismatch: a WAV
header claiming ten times its length), text_as_wav (not_audio), unsupported_codec
(a WAV in adpcm_ms), still_writing (deferred: a WAV whose RIFF/data sizes are
still 0), traversal_name (invalid_name: a recording reference of
``../../etc/passwd``), cdr_without_recording, recording_without_cdr (archived
from what the file name tells; in the s3drop layout no contact record is
ever written, so the recording is archived from its key after the source's
``record_wait_s``), duplicate (the same call delivered twice: archived once),
malformed_csv (broken Master.csv lines; customers.csv rows with a bad check
character or no customer_id), late_contact_record (s3drop only: the contact
record is written under ``late/`` instead, the same path below it, to be
uploaded after the recording was archived from its key: it then enriches it),
late_cdr_row (spool only, and only when named: the call's Master.csv lines are
written to ``late/Master.csv`` and its FreePBX row to ``late/cdr.sql`` instead,
to be appended after the recording was archived from its file name: they then
enrich it).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import dataclasses
import datetime as dt
import email.utils
import hashlib
import io
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import time
import uuid
import wave
from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

RATE = 8000
STEP = 320  # samples: 40 ms, a whole GSM (wav49) block
HELSINKI = ZoneInfo("Europe/Helsinki")

QUEUES: dict[str, tuple[str, ...]] = {
    "601": ("billing",),
    "602": ("outage", "fault_report"),
    "603": ("contract_change", "new_contract"),
    "604": ("moving", "personal_data_change"),
}
CONNECT_QUEUES = {"601": "Billing", "602": "Outages", "603": "Contracts", "604": "MovingAndDetails"}
REASON_QUEUE = {reason: queue for queue, reasons in QUEUES.items() for reason in reasons}
DIDS = ("0201234500", "0201234501")
SERVICE_E164 = "+358201234500"

BAD_CASES = (
    "zero_byte",
    "header_only",
    "truncated",
    "header_lie",
    "text_as_wav",
    "unsupported_codec",
    "still_writing",
    "traversal_name",
    "cdr_without_recording",
    "recording_without_cdr",
    "duplicate",
    "malformed_csv",
    "late_contact_record",
    "late_cdr_row",
)
#: Bad cases that only some layouts have (the others have every case).
LAYOUT_CASES = {"late_contact_record": ("s3drop",), "late_cdr_row": ("spool",)}
#: Bad cases only made when named: ``all`` leaves them out (the call's facts change
#: between two passes, which tests of one pass do not expect).
OPT_IN_CASES = ("late_cdr_row",)
EXPECTED_REASON = {
    "zero_byte": "zero_byte",
    "header_only": "header_only",
    "truncated": "truncated_audio",
    "header_lie": "header_length_mismatch",
    "text_as_wav": "not_audio",
    "unsupported_codec": "unsupported_codec",
}


@dataclasses.dataclass(frozen=True)
class OutputFormat:
    name: str
    extension: str
    args: tuple[str, ...]
    riff: bool
    mono_only: bool = False


FORMATS = {
    f.name: f
    for f in (
        OutputFormat("wav", "wav", ("-c:a", "pcm_s16le", "-f", "wav"), True),
        OutputFormat("ulaw", "wav", ("-c:a", "pcm_mulaw", "-f", "wav"), True),
        OutputFormat("alaw", "wav", ("-c:a", "pcm_alaw", "-f", "wav"), True),
        OutputFormat("gsm", "WAV", ("-c:a", "libgsm_ms", "-f", "wav"), True, mono_only=True),
        OutputFormat("mp3", "mp3", ("-c:a", "libmp3lame", "-b:a", "32k", "-f", "mp3"), False),
        OutputFormat("raw-ulaw", "ulaw", ("-c:a", "pcm_mulaw", "-f", "mulaw"), False, True),
        OutputFormat("raw-alaw", "alaw", ("-c:a", "pcm_alaw", "-f", "alaw"), False, True),
        OutputFormat("raw-sln", "sln", ("-c:a", "pcm_s16le", "-f", "s16le"), False, True),
        OutputFormat("raw-gsm", "gsm", ("-c:a", "libgsm", "-f", "gsm"), False, True),
    )
}
ADPCM_MS = OutputFormat("adpcm_ms", "wav", ("-c:a", "adpcm_ms", "-f", "wav"), True)

# --- speech ---------------------------------------------------------------------

AGENT, CUSTOMER = "agent", "customer"
PHRASES: tuple[tuple[str, str, str | None, str], ...] = (
    # (speaker, role, reason, text); role: greeting, opening, body, closing
    (
        AGENT,
        "greeting",
        None,
        "Hyvää päivää, Esimerkki Energian asiakaspalvelu. "
        "Puhelu nauhoitetaan laadun varmistamiseksi ja koulutusta varten.",
    ),
    (AGENT, "body", None, "Voisitteko kertoa henkilötunnuksenne tai asiakasnumeronne?"),
    (AGENT, "body", None, "Selvä, tarkistan tiedot järjestelmästä, hetkinen."),
    (AGENT, "body", None, "Kiitos odottamisesta."),
    (AGENT, "body", None, "Asia on nyt kirjattu, saatte vahvistuksen sähköpostiin."),
    (AGENT, "body", "billing", "Laskun eräpäivää voidaan siirtää kahdella viikolla."),
    (
        AGENT,
        "body",
        "outage",
        "Alueella on käynnissä korjaustyö, sähköt palaavat arviolta kahdessa tunnissa.",
    ),
    (AGENT, "body", "contract_change", "Kiinteähintainen sopimus on voimassa kaksi vuotta."),
    (AGENT, "body", "moving", "Muuttopäivän jälkeen lähetämme loppulaskun uuteen osoitteeseen."),
    (AGENT, "closing", None, "Kiitos soitosta ja hyvää päivänjatkoa."),
    (
        CUSTOMER,
        "opening",
        "billing",
        "Hei, soitan laskustani. Siinä on mielestäni liian iso summa.",
    ),
    (CUSTOMER, "opening", "outage", "Hei, meillä on sähkökatko Tampereella, Hervannassa."),
    (CUSTOMER, "opening", "fault_report", "Sähkömittari näyttää vikakoodia, eikä lukema päivity."),
    (CUSTOMER, "opening", "contract_change", "Haluaisin vaihtaa sopimukseni kiinteähintaiseen."),
    (CUSTOMER, "opening", "new_contract", "Haluaisin tehdä uuden sähkösopimuksen kesämökille."),
    (CUSTOMER, "opening", "moving", "Olen muuttamassa ensi kuussa, ja sopimus pitäisi siirtää."),
    (
        CUSTOMER,
        "opening",
        "personal_data_change",
        "Sukunimeni on muuttunut, haluaisin päivittää tietoni.",
    ),
    (CUSTOMER, "body", None, "Kyllä, se sopii minulle."),
    (CUSTOMER, "body", None, "Hetkinen, katson paperit."),
    (CUSTOMER, "body", None, "Ei, muuta ei tällä kertaa."),
    (CUSTOMER, "closing", None, "Kiitos paljon, hei hei."),
)
# espeak-ng voice, pitch, words per minute
VOICES = {CUSTOMER: ("fi+m3", "35", "150"), AGENT: ("fi+f3", "62", "172")}


@dataclasses.dataclass(frozen=True)
class Clip:
    speaker: str
    role: str
    reason: str | None
    text: str
    path: Path
    samples: int


def _run(args: Sequence[str]) -> None:
    result = subprocess.run(list(args), capture_output=True, check=False)
    if result.returncode != 0:
        tail = result.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise RuntimeError(f"{args[0]} failed: {' | '.join(tail)}")


def choose_engine(engine: str) -> str:
    if engine == "auto":
        return "espeak" if shutil.which("espeak-ng") else "tones"
    if engine == "espeak" and not shutil.which("espeak-ng"):
        raise SystemExit(
            "espeak-ng is not installed (apt-get install espeak-ng, or --engine tones)"
        )
    return engine


def synthesise_pool(cache: Path, engine: str) -> list[Clip]:
    """Render every phrase once (8 kHz mono s16 WAV, telephone band) into ``cache``."""
    cache.mkdir(parents=True, exist_ok=True)
    clips = []
    for number, (speaker, role, reason, text) in enumerate(PHRASES):
        key = hashlib.sha256(f"{engine}|{VOICES[speaker]}|{text}".encode()).hexdigest()[:16]
        path = cache / f"{engine}-{key}.wav"
        if not path.exists():
            partial = path.with_suffix(".partial.wav")
            if engine == "espeak":
                voice, pitch, speed = VOICES[speaker]
                source = path.with_suffix(".espeak.wav")
                _run(["espeak-ng", "-v", voice, "-p", pitch, "-s", speed, "-w", str(source), text])
                source_args = ["-i", str(source)]
            else:
                base = (190 if speaker == CUSTOMER else 330) + 7 * (number % 5)
                seconds = min(5.0, max(1.2, 0.065 * len(text)))
                expression = (
                    f"0.22*sin(2*PI*{base}*t)*abs(sin(2*PI*2.7*t))"
                    f"+0.08*sin(2*PI*{2 * base}*t)*abs(sin(2*PI*4.1*t))"
                    "+0.004*(random(0)*2-1)"
                )
                source = None
                source_args = ["-f", "lavfi", "-i", f"aevalsrc={expression}:s={RATE}:d={seconds}"]
            _run(
                [
                    "ffmpeg", "-nostdin", "-v", "error", "-y", *source_args,
                    "-af", f"highpass=f=250,lowpass=f=3400,aresample={RATE}",
                    "-ac", "1", "-c:a", "pcm_s16le", "-bitexact", "-f", "wav", str(partial),
                ]
            )  # fmt: skip
            if source is not None:
                source.unlink()
            partial.replace(path)
        with wave.open(str(path), "rb") as handle:
            samples = handle.getnframes()
        clips.append(Clip(speaker, role, reason, text, path, samples))
    return clips


# --- planning calls --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Turn:
    clip: int  # index into the pool
    start: int  # sample


def plan_turns(rng: random.Random, pool: Sequence[Clip], reason: str, total: int) -> list[Turn]:
    """A conversation of ``total`` samples: greeting, the customer's reason, talk, goodbyes."""

    def pick(speaker: str, role: str) -> int:
        group = REASON_QUEUE.get(reason)
        fitting = [
            i
            for i, clip in enumerate(pool)
            if clip.speaker == speaker
            and clip.role == role
            and (clip.reason is None or clip.reason == reason or REASON_QUEUE[clip.reason] == group)
        ]
        exact = [i for i in fitting if pool[i].reason == reason]
        return rng.choice(exact if exact and role == "opening" else fitting)

    turns: list[Turn] = []
    cursor = rng.randrange(2, 12) * STEP
    closing = [pick(AGENT, "closing"), pick(CUSTOMER, "closing")]
    closing_length = sum(pool[i].samples for i in closing) + 12 * STEP
    script = [pick(AGENT, "greeting"), pick(CUSTOMER, "opening")]
    speaker = AGENT
    while cursor < total:
        if script:
            clip = script.pop(0)
        elif total - cursor <= closing_length + 2 * RATE and closing:
            clip = closing.pop(0)
        elif not closing:
            break
        else:
            clip = pick(speaker, "body")
            speaker = CUSTOMER if speaker == AGENT else AGENT
        turns.append(Turn(clip, cursor))
        gap = rng.randrange(5, 30) * STEP
        if rng.random() < 0.08:  # the agent checks something: a longer pause
            gap += rng.randrange(50, 200) * STEP
        cursor += pool[clip].samples + gap
    return turns


def _timeline(
    turns: Sequence[Turn], pool: Sequence[Clip], labels: dict[int, list[str]], total: int, tag: str
) -> tuple[list[str], str]:
    """Filter lines that lay ``turns`` on one channel with exact silences; its output label."""
    lines, segments, cursor = [], [], 0
    for number, turn in enumerate(turns):
        if turn.start >= total:
            break
        if turn.start > cursor:
            lines.append(
                f"anullsrc=r={RATE}:cl=mono,atrim=end_sample={turn.start - cursor}[{tag}s{number}]"
            )
            segments.append(f"[{tag}s{number}]")
        segments.append(f"[{labels[turn.clip].pop()}]")
        cursor = turn.start + pool[turn.clip].samples
    if not segments:
        lines.append(f"anullsrc=r={RATE}:cl=mono,atrim=end_sample={total}[{tag}s]")
        segments.append(f"[{tag}s]")
    lines.append(
        f"{''.join(segments)}concat=n={len(segments)}:v=0:a=1,"
        f"apad=whole_len={total},atrim=end_sample={total}[{tag}]"
    )
    return lines, tag


def render_call(
    turns: Sequence[Turn],
    pool: Sequence[Clip],
    total: int,
    channels: int,
    output: OutputFormat,
    destination: Path,
) -> None:
    """Write one call with ONE ffmpeg run: customer left, agent right (or both mixed, mono)."""
    if channels == 1:
        sides = {"m": list(turns)}
    else:
        sides = {
            "l": [t for t in turns if pool[t.clip].speaker == CUSTOMER],
            "r": [t for t in turns if pool[t.clip].speaker == AGENT],
        }
    used = sorted({t.clip for t in turns if t.start < total})
    inputs: list[str] = []
    lines: list[str] = []
    labels: dict[int, list[str]] = {}
    for position, clip in enumerate(used):
        inputs += ["-i", str(pool[clip].path)]
        uses = sum(1 for t in turns if t.clip == clip and t.start < total)
        labels[clip] = [f"c{clip}u{n}" for n in range(uses)]
        lines.append(f"[{position}:a]asplit={uses}" + "".join(f"[{x}]" for x in labels[clip]))
    outs = []
    for tag, side_turns in sides.items():
        side_lines, label = _timeline(side_turns, pool, labels, total, tag)
        lines += side_lines
        outs.append(label)
    if channels == 2:
        lines.append(f"[{outs[0]}][{outs[1]}]join=inputs=2:channel_layout=stereo[out]")
    else:
        lines.append(f"[{outs[0]}]anull[out]")
    destination.parent.mkdir(parents=True, exist_ok=True)
    _run(
        [
            "ffmpeg", "-nostdin", "-v", "error", "-y", *inputs,
            "-filter_complex", ";".join(lines), "-map", "[out]",
            "-ar", str(RATE), "-ac", str(channels), *output.args, "-bitexact", str(destination),
        ]
    )  # fmt: skip


def render_long_call(
    pool: Sequence[Clip], hours: float, output: OutputFormat, destination: Path, work: Path
) -> None:
    """A call of ``hours``: a ten-minute conversation looped by one ffmpeg run (flat memory)."""
    base = work / "long-call-base.wav"
    rng = random.Random(7)
    base_total = 600 * RATE
    render_call(
        plan_turns(rng, pool, "billing", base_total), pool, base_total, 1, FORMATS["wav"], base
    )
    total = round(hours * 3600 * RATE / STEP) * STEP
    _run(
        [
            "ffmpeg", "-nostdin", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(base),
            "-af", f"atrim=end_sample={total}", "-ac", "1", *output.args, "-bitexact",
            str(destination),
        ]
    )  # fmt: skip
    base.unlink()


# --- deliberately broken audio ---------------------------------------------------


def wav_chunks(path: Path) -> dict[bytes, tuple[int, int]]:
    """Chunk id → (offset of its payload, declared size), up to and including ``data``."""
    chunks = {}
    with path.open("rb") as handle:
        handle.seek(12)
        while len(header := handle.read(8)) == 8:
            size = struct.unpack("<I", header[4:])[0]
            chunks[header[:4]] = (handle.tell(), size)
            if header[:4] == b"data":
                break
            handle.seek(size + (size & 1), os.SEEK_CUR)
    if b"data" not in chunks or b"fmt " not in chunks:
        raise ValueError("not a WAV file with fmt and data chunks")
    return chunks


def _patch(path: Path, offset: int, value: int) -> None:
    with path.open("r+b") as handle:
        handle.seek(offset)
        handle.write(struct.pack("<I", value))


def make_header_only(path: Path) -> None:
    """A 44-byte PCM WAV header with no samples (what Asterisk leaves for a dropped call)."""
    fmt = struct.pack("<HHIIHH", 1, 1, RATE, RATE * 2, 2, 16)
    header = b"RIFF" + struct.pack("<I", 36) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
    path.write_bytes(header + b"data" + struct.pack("<I", 0))


def make_still_writing(path: Path) -> None:
    """RIFF and data sizes back to 0, as Asterisk leaves them until it closes the file."""
    data_offset, _ = wav_chunks(path)[b"data"]
    _patch(path, 4, 0)
    _patch(path, data_offset - 4, 0)


def make_header_lie(path: Path, factor: int = 10) -> None:
    """The data chunk (and RIFF) size claim ``factor`` times the real audio."""
    data_offset, size = wav_chunks(path)[b"data"]
    _patch(path, data_offset - 4, size * factor)
    _patch(path, 4, path.stat().st_size - 8 + size * (factor - 1))


def make_truncated(path: Path, riff: bool) -> None:
    """Cut a PCM WAV mid-sample half a second before its end; zero an MP3's last 40 %.

    Both decode with errors. (A WAV cut by more than a second is caught as a
    header length mismatch instead; one cut on a sample boundary decodes cleanly.)
    """
    size = path.stat().st_size
    if riff:
        chunks = wav_chunks(path)
        fmt_offset, _ = chunks[b"fmt "]
        with path.open("rb") as handle:
            handle.seek(fmt_offset)
            _, _, _, byte_rate, block_align, _ = struct.unpack("<HHIIHH", handle.read(16))
        if block_align < 2:
            raise ValueError("only a WAV with samples of 2 bytes or more can be cut mid-sample")
        data_offset, _ = chunks[b"data"]
        cut = max(data_offset + block_align, size - byte_rate // 2)
        cut -= (cut - data_offset) % block_align
        os.truncate(path, cut - 1)
    else:
        with path.open("r+b") as handle:
            handle.seek(size * 6 // 10)
            handle.write(bytes(size - size * 6 // 10))


def make_text_as_wav(path: Path) -> None:
    path.write_text(
        "<html><head><title>502 Bad Gateway</title></head>\n"
        "<body><h1>502 Bad Gateway</h1><p>The recording could not be fetched.</p></body></html>\n",
        encoding="utf-8",
    )


# --- customers -------------------------------------------------------------------

FIRST_NAMES = (
    "Matti", "Liisa", "Juha", "Anna", "Mikko", "Aino", "Timo", "Helena", "Pekka", "Sari",
    "Jari", "Kaisa", "Ville", "Noora", "Antti", "Eeva", "Tuomas", "Riikka", "Heikki", "Laura",
)  # fmt: skip
LAST_NAMES = (
    "Meikäläinen", "Virtanen", "Korhonen", "Mäkinen", "Nieminen", "Mäkelä", "Hämäläinen",
    "Laine", "Heikkinen", "Koskinen", "Järvinen", "Lehtonen", "Saarinen", "Salminen",
    "Heinonen", "Niemi", "Kinnunen", "Ahonen",
)  # fmt: skip
BUSINESSES = ("Kotileipomo", "Lämpö ja Valo", "Rautakauppa Esimerkki", "Kuljetus", "Saunatalo")
AGENTS = (
    ("2101", "Aino Lahti", "aino.lahti"),
    ("2102", "Mikko Rantanen", "mikko.rantanen"),
    ("2103", "Sanna Koivisto", "sanna.koivisto"),
    ("2104", "Jussi Peltola", "jussi.peltola"),
    ("2105", "Emilia Hakala", "emilia.hakala"),
)
HETU_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"
MOBILE_PREFIXES = ("040", "041", "044", "045", "046", "050")


@dataclasses.dataclass
class Customer:
    customer_id: str
    name: str
    numbers: list[str]  # national form, 0401234567
    identity_code: str


def make_hetu(rng: random.Random) -> str:
    """A valid henkilötunnus: DDMMYY, century sign, individual number, check character."""
    birth = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(365 * 66))
    sign = rng.choice("------YXWVU") if birth.year < 2000 else rng.choice("AAAAAABCDEF")
    digits = f"{birth:%d%m}{birth.year % 100:02d}{rng.randrange(2, 900):03d}"
    return f"{digits[:6]}{sign}{digits[6:]}{HETU_CHECK[int(digits) % 31]}"


def make_ytunnus(rng: random.Random) -> str:
    """A valid Y-tunnus (business id): seven digits, a dash, a mod-11 check digit."""
    while True:
        digits = f"{rng.randrange(1000000, 3400000):07d}"
        remainder = sum(int(d) * w for d, w in zip(digits, (7, 9, 10, 5, 8, 4, 2), strict=True))
        remainder %= 11
        if remainder != 1:
            return f"{digits}-{0 if remainder == 0 else 11 - remainder}"


def make_number(rng: random.Random, used: set[str]) -> str:
    while True:
        number = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**7):07d}"
        if number not in used:
            used.add(number)
            return number


def e164(national: str) -> str:
    return national if national.startswith("+") else "+358" + national[1:]


def spell(number: str, rng: random.Random) -> str:
    """The number as people type it: ``040 123 4567``, ``+358401234567`` or ``0401234567``."""
    style = rng.randrange(3)
    if style == 0:
        return f"{number[:3]} {number[3:6]} {number[6:]}"
    return e164(number) if style == 1 else number


def make_customers(
    rng: random.Random, count: int, used: set[str]
) -> tuple[list[Customer], list[str]]:
    """The directory and the numbers two customers share (ambiguous callers)."""
    customers = []
    for index in range(count):
        numbers = [make_number(rng, used) for _ in range(1 if rng.random() < 0.7 else 2)]
        kind = rng.random()
        if kind < 0.1:
            name, code = f"{rng.choice(BUSINESSES)} Oy", make_ytunnus(rng)
        else:
            name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
            code = make_hetu(rng) if kind < 0.9 else ""
        customers.append(Customer(f"C{100001 + index}", name, numbers, code))
    shared = []
    for _ in range(min(2, count // 2)):
        owner, other = rng.sample(customers, 2)
        number = owner.numbers[0]
        if number not in other.numbers:
            other.numbers.append(number)
            shared.append(number)
    return customers, shared


def write_customers(
    path: Path, customers: Sequence[Customer], rng: random.Random, malformed: bool
) -> list[dict[str, object]]:
    """customers.csv; with ``malformed``, two invalid rows too. Returns those rows' lines."""
    rows = [[c.customer_id, c.name, ";".join(spell(n, rng) for n in c.numbers), c.identity_code]
            for c in customers]  # fmt: skip
    invalid: list[dict[str, object]] = []
    if malformed:
        good = make_hetu(rng)
        wrong = HETU_CHECK[(HETU_CHECK.index(good[-1]) + 7) % 31]
        bad_rows = [
            ([f"C{900001}", "Virhe Tunnus", "0409999999", good[:-1] + wrong],
             "invalid_identity_code"),
            (["", "Ilman Tunnusta", "0409999998", ""], "empty_customer_id"),
        ]  # fmt: skip
        for offset, (row, _) in enumerate(bad_rows):
            position = min(len(rows), (offset + 1) * len(rows) // 3)
            rows.insert(position, row)
        for line, row in enumerate(rows, start=2):
            for bad_row, problem in bad_rows:
                if row is bad_row:
                    invalid.append({"file": path.name, "line": line, "problem": problem})
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", "name", "phone_numbers", "identity_code"])
        writer.writerows(rows)
    return invalid


# --- calls -----------------------------------------------------------------------


@dataclasses.dataclass
class Call:
    call_id: str
    start: dt.datetime  # aware, Europe/Helsinki
    ring_s: int
    samples: int
    answered: bool
    kind: str  # in, q, out, internal
    number: str  # the customer's number as the network shows it ("" for internal calls)
    expected_customer: str | None  # customer_id, None (unknown) or "ambiguous"
    cnam: str
    reason: str | None
    queue: str | None
    userfield: str
    agent: tuple[str, str, str]
    fmt: OutputFormat
    channels: int
    bad: str | None = None
    long: bool = False
    uniqueid: str = ""
    source_ref: str | None = None
    recording: str | None = None  # relative to the output directory
    turns: list[Turn] = dataclasses.field(default_factory=list)
    cdr: dict[str, object] | None = None  # where the spool's CDR lines are
    late_record: str | None = None  # a contact record (s3drop) or CDR lines (spool) to add late
    attribute_reason: bool = False  # Connect: the contact attribute names the reason
    dial_legs: bool = False  # Master.csv: one line per dial leg, 21 columns (--legs)
    legs: str | None = None  # "pair": MixMonitor's -in/-out files; "lone": the -in alone
    #: A transfer's second part: the call's first part (their CDR lines share its linkedid).
    transfer_of: Call | None = None
    transferred: bool = False  # the first part of a transfer (--transfers)

    @property
    def answer(self) -> dt.datetime:
        # exact (UTC) arithmetic: a call in the hour repeated at the end of DST keeps its hour
        return _later(self.start, self.ring_s)

    @property
    def seconds(self) -> int:
        return -(-self.samples // RATE)

    @property
    def end(self) -> dt.datetime:
        return _later(self.answer, self.seconds if self.answered else 0)

    def reason_codes(self, attribute_reason: bool = False) -> list[str]:
        """The codes an ingest can derive: an exact ``reason=``, else the queue/IVR group."""
        if self.reason and ("reason=" in self.userfield or attribute_reason):
            return [self.reason]
        if self.queue:
            return list(QUEUES[self.queue])
        return []


def _later(moment: dt.datetime, seconds: int) -> dt.datetime:
    return (moment.astimezone(dt.UTC) + dt.timedelta(seconds=seconds)).astimezone(moment.tzinfo)


class Planner:
    """Draws calls for one day from a seeded RNG: who calls, why, how long, in what format."""

    def __init__(
        self,
        rng: random.Random,
        day: dt.date,
        customers: Sequence[Customer],
        shared: Sequence[str],
        used_numbers: set[str],
        formats: Sequence[OutputFormat],
        seconds: tuple[float, float],
        layout: str,
    ) -> None:
        self.rng, self.day, self.layout = rng, day, layout
        self.customers, self.shared, self.used = customers, list(shared), used_numbers
        self.formats, self.seconds = formats, seconds
        self.owners: dict[str, list[str]] = {}
        for customer in customers:
            for number in customer.numbers:
                self.owners.setdefault(number, []).append(customer.customer_id)
        self.count = 0

    def _caller(self) -> tuple[str, str | None, str]:
        index = self.count
        if index == 1 and self.shared:
            number = self.shared[0]
            return number, "ambiguous", number
        if (index == 2 or self.rng.random() < 0.05) or not self.customers:
            return make_number(self.rng, self.used), None, ""
        customer = self.rng.choice(self.customers)
        number = self.rng.choice(customer.numbers)
        owners = self.owners[number]
        expected = owners[0] if len(owners) == 1 else "ambiguous"
        cnam = customer.name if len(owners) == 1 and self.rng.random() < 0.5 else ""
        return number, expected, cnam

    def call(self, *, bad: str | None = None, duration_s: float | None = None) -> Call:
        rng = self.rng
        seconds = duration_s if duration_s is not None else rng.uniform(*self.seconds)
        samples = max(1, round(seconds * RATE / STEP)) * STEP
        start_s = rng.randrange(8 * 3600, 16 * 3600)
        # wall-clock arithmetic: 08:00-16:00 local never meets a DST change
        start = dt.datetime.combine(self.day, dt.time(), HELSINKI) + dt.timedelta(seconds=start_s)
        if self.layout == "spool":
            kind = rng.choices(("q", "in", "out", "internal"), (70, 15, 10, 5))[0]
        else:
            kind = "q"
        number, expected, cnam = self._caller()
        reason: str | None = rng.choice(sorted(REASON_QUEUE))
        queue = REASON_QUEUE[reason] if reason and kind == "q" else None
        userfield = ""
        if kind == "q":
            ivr = str(int(queue or "600") - 600)
            userfield = rng.choice(
                (f"ivr={ivr}", f"ivr={ivr}", f"reason={reason}", f"ivr={ivr};reason={reason}", "")
            )
        elif kind in ("in", "out") and rng.random() < 0.5:
            userfield = f"reason={reason}"
        if kind == "internal":
            number, expected, cnam, reason = "", None, "", None
        answered = bad is not None or self.layout == "twilio" or rng.random() > 0.08
        fmt = self.formats[self.count % len(self.formats)]  # every format, in turn
        channels = 1 if self.layout == "spool" else 2
        if self.layout == "twilio" and (fmt.name == "mp3" or rng.random() < 0.15):
            channels = 1
        if channels == 2 and fmt.mono_only:
            fmt = FORMATS["wav"]
        self.count += 1
        call = Call(
            call_id=f"call-{self.count:05d}",
            start=start,
            ring_s=rng.randrange(3, 40),
            samples=samples,
            answered=answered,
            kind=kind,
            number=number,
            expected_customer=expected,
            cnam=cnam,
            reason=reason,
            queue=queue,
            userfield=userfield,
            agent=rng.choice(AGENTS),
            fmt=fmt,
            channels=channels,
            bad=bad,
        )
        return call


def bad_format(call: Call, layout: str, formats: Sequence[OutputFormat]) -> OutputFormat:
    """The format a bad case needs (a PCM WAV mostly; an MP3 for a truncated MP3)."""
    if call.bad == "unsupported_codec":
        return ADPCM_MS
    if call.bad == "truncated" and layout != "s3drop" and FORMATS["mp3"] in formats:
        return FORMATS["mp3"]
    if call.bad in EXPECTED_REASON or call.bad == "still_writing":
        return FORMATS["wav"]
    return call.fmt


def expectation(call: Call) -> tuple[str, str | None]:
    """(expected outcome, reason) for a call."""
    if call.bad in EXPECTED_REASON:
        return "quarantined", EXPECTED_REASON[call.bad]
    if call.legs == "lone":
        return "archived", "lone_leg"
    outcomes = {
        "still_writing": ("deferred", "still_writing"),
        "traversal_name": ("rejected", "invalid_name"),
        "cdr_without_recording": ("missing_recording", "cdr_without_recording"),
        "recording_without_cdr": ("archived", "recording_without_cdr"),
        "late_contact_record": ("archived", "late_contact_record"),
        "late_cdr_row": ("archived", "late_cdr_row"),
        "duplicate": ("archived", "duplicate"),
    }
    if call.bad in outcomes:
        return outcomes[call.bad]
    return ("archived", None) if call.answered else ("no_recording", None)


def has_audio(call: Call) -> bool:
    return call.answered and call.bad not in ("cdr_without_recording", "traversal_name")


def produce(call: Call, pool: Sequence[Clip], out: Path) -> None:
    """Write a call's recording, then break it as its bad case says."""
    assert call.recording is not None
    if call.legs:
        produce_legs(call, pool, out)
        return
    path = out / call.recording
    path.parent.mkdir(parents=True, exist_ok=True)
    if call.bad == "zero_byte":
        path.write_bytes(b"")
    elif call.bad == "header_only":
        make_header_only(path)
    elif call.bad == "text_as_wav":
        make_text_as_wav(path)
    else:
        render_call(call.turns, pool, call.samples, call.channels, call.fmt, path)
        if call.bad == "still_writing":
            make_still_writing(path)
        elif call.bad == "header_lie":
            make_header_lie(path)
        elif call.bad == "truncated":
            make_truncated(path, call.fmt.riff)
    end = call.end.timestamp()
    if call.bad != "still_writing" and end < time.time():  # never a future mtime
        os.utime(path, (end, end))


def leg_paths(call: Call) -> dict[str, str]:
    """The files of a call written as split legs: ``caller`` (``-in``) and, for a pair,
    ``agent`` (``-out``), relative to the output directory."""
    assert call.recording is not None
    caller = call.recording
    legs = {"caller": caller}
    if call.legs == "pair":
        legs["agent"] = caller.replace(f"-in.{call.fmt.extension}", f"-out.{call.fmt.extension}")
    return legs


def produce_legs(call: Call, pool: Sequence[Clip], out: Path) -> None:
    """Write a call's legs, mono, each as long as the call: the customer's turns in the
    caller's leg, the agent's in the agent's."""
    for role, relative in leg_paths(call).items():
        speaker = CUSTOMER if role == "caller" else AGENT
        turns = [t for t in call.turns if pool[t.clip].speaker == speaker]
        path = out / relative
        render_call(turns, pool, call.samples, 1, call.fmt, path)
        end = call.end.timestamp()
        if end < time.time():
            os.utime(path, (end, end))


def mark_split_legs(calls: list[Call], count: int, planner: Planner) -> None:
    """Make ``count`` normal answered inbound calls split legs, and add one with a lone leg.

    Inbound only: FreePBX records them on the caller's channel, so ``-in`` is the
    customer, as the archive takes it (docs/ingest.md).
    """
    normal = [c for c in calls if c.answered and not c.bad and c.kind in ("q", "in")]
    for call in normal[:count]:
        call.legs = "pair"
    lone = planner.call()
    lone.answered, lone.legs = True, "lone"
    calls.append(lone)


def mark_transfers(calls: list[Call], count: int) -> None:
    """Make ``count`` normal answered inbound calls transfers: each gets a second part,
    its own recording from the moment the first agent hands the caller to another.

    Both parts' Master.csv lines are written as Asterisk's ``newcdrcolumns`` write
    them (21 columns), the second's with the first part's uniqueid as its
    ``linkedid``: the archive links the two recordings as one call.
    """
    normal = [c for c in calls if c.answered and not c.bad and not c.legs and c.kind in ("q", "in")]
    for call in normal[:count]:
        call.transferred, call.dial_legs = True, True
        second = dataclasses.replace(
            call,
            call_id=f"{call.call_id}-2",
            start=_later(call.end, 1),
            ring_s=3,
            agent=_other_agent(call),
            turns=[],
            transferred=False,
            transfer_of=call,
        )
        calls.append(second)


# --- layouts ---------------------------------------------------------------------

TIME = "%Y-%m-%d %H:%M:%S"
EXPORT_COLUMNS = (
    "calldate", "clid", "src", "dst", "dcontext", "channel", "dstchannel", "lastapp",
    "lastdata", "duration", "billsec", "disposition", "amaflags", "accountcode", "uniqueid",
    "userfield", "did", "recordingfile", "cnum", "cnam", "linkedid",
)  # fmt: skip
#: FreePBX 16/17's ``asteriskcdrdb.cdr`` columns, in the table's order.
CDR_TABLE_COLUMNS = (
    "calldate", "clid", "src", "dst", "dcontext", "channel", "dstchannel", "lastapp",
    "lastdata", "duration", "billsec", "disposition", "amaflags", "accountcode", "uniqueid",
    "userfield", "did", "recordingfile", "cnum", "cnam", "outbound_cnum", "outbound_cnam",
    "dst_cnam", "linkedid", "peeraccount", "sequence",
)  # fmt: skip
TRAVERSAL = "../../etc/passwd"


def _shown(call: Call) -> str:
    """The caller's number as Asterisk shows it: national, sometimes E.164 from the trunk."""
    sequence = int(call.uniqueid.split(".")[1])
    return e164(call.number) if call.number and sequence % 10 == 0 else call.number


def _did(call: Call) -> str:
    return DIDS[int(call.uniqueid.split(".")[1]) % len(DIDS)]


def _other_agent(call: Call) -> tuple[str, str, str]:
    return AGENTS[(AGENTS.index(call.agent) + 1) % len(AGENTS)]


def spool_name(call: Call) -> str:
    shown, ext = _shown(call), call.agent[0]
    exten, caller = {
        "q": (call.queue or "", shown),
        "in": (_did(call), shown),
        "out": (call.number, ext),
        "internal": (_other_agent(call)[0], ext),
    }[call.kind]
    stamp = call.start.strftime("%Y%m%d-%H%M%S")
    return f"{call.kind}-{exten}-{caller}-{stamp}-{call.uniqueid}.{call.fmt.extension}"


def _cdr_fields(call: Call) -> dict[str, object]:
    shown, (ext, agent_name, _) = _shown(call), call.agent
    channel_number = int(call.uniqueid.split(".")[1])
    trunk_in = f"PJSIP/elisa-trunk-{channel_number:08x}"
    agent_leg = f"PJSIP/{ext}-{channel_number + 1:08x}" if call.answered else ""
    fields: dict[str, object]
    if call.kind in ("q", "in"):
        fields = {
            "src": shown,
            "dst": call.queue if call.kind == "q" else _did(call),
            "dcontext": "ext-queues" if call.kind == "q" else "from-pstn",
            "clid": f'"{call.cnam or shown}" <{shown}>',
            "channel": trunk_in,
            "dstchannel": agent_leg,
            "lastapp": "Queue" if call.kind == "q" else "Dial",
            "lastdata": f"{call.queue},t" if call.kind == "q" else f"PJSIP/{ext},30,tr",
            "did": _did(call),
        }
    else:
        other = call.number if call.kind == "out" else _other_agent(call)[0]
        far_leg = (
            f"PJSIP/elisa-trunk-{channel_number + 1:08x}"
            if call.kind == "out"
            else f"PJSIP/{other}-{channel_number + 1:08x}"
        )
        fields = {
            "src": ext,
            "dst": other,
            "dcontext": "from-internal",
            "clid": f'"{agent_name}" <{ext}>',
            "channel": f"PJSIP/{ext}-{channel_number:08x}",
            "dstchannel": far_leg if call.answered else "",
            "lastapp": "Dial",
            "lastdata": (
                f"PJSIP/{other}@elisa-trunk,300,T" if call.kind == "out" else f"PJSIP/{other},20,tr"
            ),
            "did": "",
        }
    fields.update(
        start=call.start.strftime(TIME),
        answer=call.answer.strftime(TIME) if call.answered else "",
        end=call.end.strftime(TIME),
        duration=int((call.end - call.start).total_seconds()),
        billsec=call.seconds if call.answered else 0,
        disposition="ANSWERED" if call.answered else "NO ANSWER",
        uniqueid=call.uniqueid,
        userfield=call.userfield,
    )
    return fields


def master_row(call: Call) -> list[object]:
    """One Master.csv line: strings quoted (``""`` inside), duration and billsec bare."""
    f = _cdr_fields(call)
    return [
        "", f["src"], f["dst"], f["dcontext"], f["clid"], f["channel"], f["dstchannel"],
        f["lastapp"], f["lastdata"], f["start"], f["answer"], f["end"], f["duration"],
        f["billsec"], f["disposition"], "DOCUMENTATION", f["uniqueid"], f["userfield"],
    ]  # fmt: skip


def _leg(
    row: list[object], *, uniqueid: str, channel: str, dstchannel: str, answered: bool
) -> list[object]:
    """A copy of a Master.csv row for another leg (unanswered: it rang until the answer)."""
    leg = list(row)
    leg[5], leg[6], leg[16] = channel, dstchannel, uniqueid
    if not answered:
        rang = dt.datetime.strptime(str(row[10]), TIME) - dt.datetime.strptime(str(row[9]), TIME)
        leg[10], leg[11], leg[12], leg[13], leg[14] = "", row[10], 0, 0, "NO ANSWER"
        leg[12] = int(rang.total_seconds())
    return leg


def leg_rows(call: Call) -> list[list[object]]:
    """The call's Master.csv lines one per dial leg, as Asterisk writes them with
    ``newcdrcolumns`` (21 columns: peeraccount, linkedid, sequence).

    A direct inbound call rings a ring group: a leg to another phone that was not
    answered, then the agent's. A queue call reaches its members through Local
    channels: the queue's members are users of FreePBX's device-and-user mode
    (7xxx) logged in at the agents' phones; the caller's line dials
    ``Local/<user>@from-queue-<n>;1`` and the ``;2`` half's own line (its own
    uniqueid) dials the phone, the device that talked: the agent.
    """
    row = master_row(call)
    counter = int(call.uniqueid.split(".")[1])
    epoch = call.uniqueid.split(".")[0]
    rows = [row]
    if call.answered and call.bad is None and call.kind in ("q", "in"):
        ext, other = call.agent[0], _other_agent(call)[0]
        channel = str(row[5])
        if call.kind == "in":
            ring = f"PJSIP/{other}-{counter + 2:08x}"
            rows = [_leg(row, uniqueid=call.uniqueid, channel=channel, dstchannel=ring,
                         answered=False), row]  # fmt: skip
        else:
            rows = []
            for k, (phone, answered) in enumerate(((other, False), (ext, True))):
                local = f"Local/7{phone[1:]}@from-queue-{counter * 2 + k:08x}"
                device = f"PJSIP/{phone}-{counter + 2 + k:08x}"
                half = _leg(row, uniqueid=f"{epoch}.{counter}0{k}", channel=f"{local};2",
                            dstchannel=device, answered=answered)  # fmt: skip
                half[2], half[3], half[7], half[8] = f"7{phone[1:]}", "from-queue", "Dial", phone
                first = _leg(row, uniqueid=call.uniqueid, channel=channel,
                             dstchannel=f"{local};1", answered=answered)  # fmt: skip
                rows += [half, first]
    linkedid = (call.transfer_of or call).uniqueid  # a transfer's parts share the first's
    return [[*leg, "", linkedid, counter * 10 + k] for k, leg in enumerate(rows)]


def export_row(call: Call, recordingfile: str) -> list[object]:
    f = _cdr_fields(call)
    cnam = str(f["clid"]).split('" <')[0].lstrip('"')
    return [
        f["start"], f["clid"], f["src"], f["dst"], f["dcontext"], f["channel"], f["dstchannel"],
        f["lastapp"], f["lastdata"], f["duration"], f["billsec"], f["disposition"], 3, "",
        f["uniqueid"], f["userfield"], f["did"], recordingfile, f["src"], cnam, f["uniqueid"],
    ]  # fmt: skip


def table_row(call: Call, recordingfile: str) -> dict[str, object]:
    """The call's row of the FreePBX ``cdr`` table: the export's, and the columns it lacks."""
    row = dict(zip(EXPORT_COLUMNS, export_row(call, recordingfile), strict=True))
    sequence = int(call.uniqueid.split(".")[1])
    row.update(outbound_cnum="", outbound_cnam="", dst_cnam="", peeraccount="", sequence=sequence)
    return {column: row[column] for column in CDR_TABLE_COLUMNS}


def sql_literal(value: object) -> str:
    """A MariaDB literal: numbers bare, text quoted (quotes doubled, backslashes escaped)."""
    if isinstance(value, int):
        return str(value)
    text = str(value).replace("\\", "\\\\").replace("'", "''")
    return f"'{text}'"


def cdr_insert(row: dict[str, object]) -> str:
    columns = ", ".join(row)
    values = ", ".join(sql_literal(value) for value in row.values())
    # Every value is a literal made by sql_literal, the columns are CDR_TABLE_COLUMNS.
    return f"INSERT INTO cdr ({columns}) VALUES ({values});\n"  # noqa: S608


def _csv_line(row: Sequence[object]) -> str:
    """One line as Asterisk's cdr_csv writes it: strings quoted, numbers bare."""
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n").writerow(row)
    return buffer.getvalue()


def write_spool(out: Path, calls: Sequence[Call], bad: set[str]) -> list[dict[str, object]]:
    """monitor/ files' names, cdr/Master.csv and cdr/cdr-export.csv; returns bad rows."""
    for call in calls:
        if call.answered and call.bad != "traversal_name":
            relative = f"{call.start:%Y/%m/%d}/{spool_name(call)}"
            call.recording, call.source_ref = f"monitor/{relative}", relative
            if call.legs:  # MixMonitor's r() file; a pair's reference names both files
                stem, ext = relative.rsplit(".", 1)
                call.recording = f"monitor/{stem}-in.{ext}"
                pair = call.legs == "pair"
                call.source_ref = f"{stem}-{{in,out}}.{ext}" if pair else f"{stem}-in.{ext}"
    cdr_dir = out / "cdr"
    cdr_dir.mkdir(parents=True, exist_ok=True)
    lines: list[tuple[Call | None, str]] = []
    late_lines: list[str] = []
    for call in calls:
        if call.bad not in ("recording_without_cdr", "traversal_name"):
            rows = leg_rows(call) if call.dial_legs else [master_row(call)]
            if call.bad == "late_cdr_row":  # appended to Master.csv after the first pass
                late_lines += [_csv_line(row) for row in rows]
                call.late_record = "late/Master.csv"
                continue
            lines += [(call, _csv_line(row)) for row in rows]
    if late_lines:
        (out / "late").mkdir(parents=True, exist_ok=True)
        (out / "late" / "Master.csv").write_text("".join(late_lines), encoding="utf-8")
    lines += [(c, _csv_line(master_row(c))) for c in calls if c.bad == "duplicate"]
    problems: list[dict[str, object]] = []
    broken: list[tuple[str, str]] = []
    if "malformed_csv" in bad and calls:
        # copies of the first call's line under uniqueids no call has: half-written
        # (too few columns), and with a quote inside the caller name left unescaped
        row = master_row(calls[0])
        row[16] = f"{str(row[16]).split('.')[0]}.99001"
        broken.append((_csv_line(row[:12]), "wrong_column_count"))
        row[16] = f"{str(row[16]).split('.')[0]}.99002"
        valid = _csv_line(row)
        broken.append((valid.replace('"""', '""', 1), "broken_quote"))
    for number, (text, problem) in enumerate(broken):
        position = min(len(lines), (number + 1) * len(lines) // 3)
        lines.insert(position, (None, text))
        problems.append({"problem": problem, "text_index": position})
    cdr_lines: dict[str, list[int]] = {}
    with (cdr_dir / "Master.csv").open("w", encoding="utf-8", newline="") as handle:
        for line_number, (owner, text) in enumerate(lines, start=1):
            handle.write(text)
            if owner is not None:
                cdr_lines.setdefault(owner.call_id, []).append(line_number)
    for found in problems:
        found["line"] = int(str(found.pop("text_index"))) + 1
    export_lines: dict[str, int] = {}
    with (
        (cdr_dir / "cdr-export.csv").open("w", encoding="utf-8", newline="") as handle,
        (cdr_dir / "cdr.sql").open("w", encoding="utf-8", newline="") as sql,
    ):
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(EXPORT_COLUMNS)
        sql.write("-- The calls' rows of FreePBX's asteriskcdrdb.cdr (scripts/gen_calls.py)\n")
        line_number = 1
        for call in calls:
            if call.bad == "recording_without_cdr":
                continue
            if call.bad == "late_cdr_row":  # inserted into the table after the first pass
                recordingfile = Path(call.recording).name if call.recording else ""
                late_sql = "-- rows to insert after the first pass (scripts/gen_calls.py)\n"
                late_sql += cdr_insert(table_row(call, recordingfile))
                (out / "late" / "cdr.sql").write_text(late_sql, encoding="utf-8")
                continue
            if call.bad == "traversal_name":
                recordingfile = TRAVERSAL
            else:
                recordingfile = Path(call.recording).name if call.recording else ""
            writer.writerow(export_row(call, recordingfile))
            sql.write(cdr_insert(table_row(call, recordingfile)))
            line_number += 1
            export_lines[call.call_id] = line_number
    for call in calls:
        call.cdr = {
            "master_csv_lines": cdr_lines.get(call.call_id, []),
            "export_line": export_lines.get(call.call_id),
        }
    return [
        {"case": "malformed_csv", "file": "cdr/Master.csv", "line": p["line"],
         "problem": p["problem"], "expected": "rejected", "reason": "malformed_csv"}
        for p in problems
    ]  # fmt: skip


def _hex(rng: random.Random, prefix: str) -> str:
    return prefix + f"{rng.getrandbits(128):032x}"


def write_twilio(out: Path, calls: Sequence[Call], rng: random.Random) -> None:
    account = _hex(rng, "AC")
    entries = []
    for call in calls:
        sid = _hex(rng, "RE")
        media = "mp3" if call.fmt.name == "mp3" else "wav"
        if call.bad != "traversal_name":
            call.recording, call.source_ref = f"twilio/recordings/{sid}.{media}", sid
        else:
            sid, call.source_ref = TRAVERSAL, TRAVERSAL
        answered_utc, end_utc = call.answer.astimezone(dt.UTC), call.end.astimezone(dt.UTC)
        entry = {
            "sid": sid,
            "account_sid": account,
            "call_sid": _hex(rng, "CA"),
            "conference_sid": None,
            "date_created": email.utils.format_datetime(answered_utc),
            "date_updated": email.utils.format_datetime(end_utc + dt.timedelta(seconds=4)),
            "start_time": email.utils.format_datetime(answered_utc),
            "duration": str(round(call.samples / RATE)),
            "channels": call.channels,
            "status": "completed",
            "source": "DialVerb",
            "media_format": media,
            "track": "both",
            "price": "-0.0025",
            "price_unit": "USD",
            "error_code": None,
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{account}/Recordings/{sid}.json",
            "call": {"from": e164(call.number), "to": SERVICE_E164, "direction": "inbound"},
        }
        if call.bad != "recording_without_cdr":
            entries.append(entry)
        if call.bad == "duplicate":
            entries.append(dict(entry))
    index = out / "twilio" / "index.json"
    index.parent.mkdir(parents=True, exist_ok=True)
    index.write_text(json.dumps(entries, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


BUCKET = "example-connect-recordings"


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_s3drop(out: Path, calls: Sequence[Call], rng: random.Random) -> str:
    instance = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    base = f"connect/{instance}"
    arn = f"arn:aws:connect:eu-north-1:123456789012:instance/{instance}"
    for call in calls:
        contact = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        utc = call.answer.astimezone(dt.UTC)
        key = f"{base}/CallRecordings/{utc:%Y/%m/%d}/{contact}_{utc:%Y%m%dT%H:%M}_UTC.wav"
        if call.answered and call.bad != "traversal_name":
            call.recording = key
        call.source_ref = contact
        location = f"{BUCKET}/{base}/CallRecordings/../../../../etc/passwd"
        if call.bad != "traversal_name":
            location = f"{BUCKET}/{key}"
        with_attribute = call.reason is not None and int(contact[:2], 16) % 10 < 7
        call.attribute_reason = with_attribute
        queue = call.queue or "601"
        ctr: dict[str, object] = {
            "AWSAccountId": "123456789012",
            "AWSContactTraceRecordFormatVersion": "2017-03-10",
            "Agent": None,
            "Attributes": {"reason": call.reason} if with_attribute else {},
            "Channel": "VOICE",
            "ContactId": contact,
            "InitialContactId": None,
            "PreviousContactId": None,
            "InitiationMethod": "INBOUND",
            "InitiationTimestamp": _iso(call.start),
            "ConnectedToSystemTimestamp": _iso(call.start + dt.timedelta(seconds=1)),
            "DisconnectTimestamp": _iso(call.end),
            "DisconnectReason": "CUSTOMER_DISCONNECT",
            "CustomerEndpoint": {"Address": e164(call.number), "Type": "TELEPHONE_NUMBER"},
            "SystemEndpoint": {"Address": SERVICE_E164, "Type": "TELEPHONE_NUMBER"},
            "InstanceARN": arn,
            "LastUpdateTimestamp": _iso(call.end + dt.timedelta(minutes=1)),
            "Queue": {
                "ARN": f"{arn}/queue/{uuid.UUID(int=int(queue), version=4)}",
                "Name": CONNECT_QUEUES[queue],
                "EnqueueTimestamp": _iso(call.start + dt.timedelta(seconds=2)),
                "DequeueTimestamp": _iso(call.answer),
                "Duration": call.ring_s,
            },
            "Recording": None,
        }
        if call.answered:
            ctr["Agent"] = {
                "ARN": f"{arn}/agent/{uuid.UUID(int=int(call.agent[0]), version=4)}",
                "Username": call.agent[2],
                "ConnectedToAgentTimestamp": _iso(call.answer),
                "AgentInteractionDuration": call.seconds,
                "HierarchyGroups": None,
            }
            ctr["Recording"] = {
                "DeletionReason": None,
                "Location": location,
                "Status": "AVAILABLE",
                "Type": "AUDIO",
            }
        if call.bad == "recording_without_cdr":
            continue
        late = out / "late" if call.bad == "late_contact_record" else out
        folder = late / base / "ContactTraceRecords" / f"{call.start.astimezone(dt.UTC):%Y/%m/%d}"
        folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps(ctr, indent=1, ensure_ascii=False) + "\n"
        (folder / f"{contact}.json").write_text(text, encoding="utf-8")
        if call.bad == "late_contact_record":
            call.late_record = (folder / f"{contact}.json").relative_to(out).as_posix()
        if call.bad == "duplicate":
            (folder / f"{contact}_1.json").write_text(text, encoding="utf-8")
    return instance


# --- the command -----------------------------------------------------------------

LAYOUT_FORMATS = {"spool": None, "twilio": ("wav", "mp3"), "s3drop": ("wav",)}


def call_manifest(call: Call, layout: str) -> dict[str, object]:
    outcome, reason = expectation(call)
    from_name = layout == "spool" and call.bad == "recording_without_cdr"
    known = call.bad != "recording_without_cdr" or from_name
    customer = call.expected_customer if known else None
    if layout == "twilio" or not known:
        reason_codes: list[str] = []
    elif from_name:
        reason_codes = list(QUEUES[call.queue]) if call.queue else []
    else:
        reason_codes = call.reason_codes(call.attribute_reason)
    entry: dict[str, object] = {
        "call_id": call.call_id,
        "source_ref": call.source_ref,
        "recording": call.recording if call.answered else None,
        "recording_written": call.answered and has_audio(call),
        "start": _iso(call.start),
        "answered": call.answered,
        "direction": {"q": "inbound", "in": "inbound", "out": "outbound"}.get(
            call.kind, "internal"
        ),
        "customer_number": e164(call.number) if call.number else None,
        "expected_customer_id": customer,
        "true_reason": call.reason,
        "expected_reason_codes": reason_codes,
        "format": call.fmt.name,
        "extension": call.fmt.extension,
        "channels": call.channels,
        "sample_rate": RATE,
        "duration_s": call.samples / RATE if call.answered else 0,
        "expected": outcome,
        "expected_reason": reason,
        "bad_case": call.bad,
    }
    if call.dial_legs and call.answered and call.bad in (None, "late_cdr_row"):
        entry["expected_agent"] = call.agent[0]  # the device that talked
    if call.transferred or call.transfer_of is not None:
        entry["expected_linked_call_id"] = (call.transfer_of or call).uniqueid
    if call.long:
        entry["long"] = True
    if call.legs:
        channels = 2 if call.legs == "pair" else 1
        entry["split_legs"] = {**leg_paths(call), "expected_channels": channels}
    if call.cdr is not None:
        entry["cdr"] = call.cdr
    if call.late_record is not None:
        entry["late_record"] = call.late_record
    return entry


def _formats(text: str, layout: str) -> list[OutputFormat]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in FORMATS]
    if unknown:
        raise SystemExit(f"unknown format(s): {', '.join(unknown)} (known: {', '.join(FORMATS)})")
    allowed = LAYOUT_FORMATS[layout]
    chosen = [FORMATS[name] for name in names if allowed is None or name in allowed]
    return chosen or [FORMATS["wav"]]


def layout_cases(layout: str) -> list[str]:
    """The bad cases ``layout`` has."""
    return [case for case in BAD_CASES if layout in LAYOUT_CASES.get(case, (layout,))]


def _bad_cases(text: str, layout: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    known = layout_cases(layout)
    if names == ["all"]:
        return [case for case in known if case not in OPT_IN_CASES]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(
            f"unknown bad case(s) for layout {layout}: {', '.join(unknown)} "
            f"(known: all, {', '.join(known)})"
        )
    return names


def repeated_hour_day(before: dt.date) -> dt.date:
    """The last Sunday of October before ``before``: Helsinki's clocks go from 04:00
    back to 03:00, and 03:00-04:00 local happens twice."""
    year = before.year if before > dt.date(before.year, 10, 31) else before.year - 1
    last = dt.date(year, 10, 31)
    return last - dt.timedelta(days=(last.weekday() + 1) % 7)


def repeated_hour_calls(planner: Planner, day: dt.date) -> list[Call]:
    """Two calls to the 24/7 fault line at 03:20 local on ``day``, once in each of the
    two 03:00 hours: the same local times, told apart by their uniqueid's epoch."""
    calls = []
    for fold in (0, 1):
        call = planner.call()
        call.start = dt.datetime.combine(day, dt.time(3, 20, 0, fold=fold), HELSINKI)
        call.kind, call.answered, call.bad = "q", True, None
        call.reason, call.queue, call.userfield = "outage", "602", "ivr=2"
        calls.append(call)
    return calls


def generate(args: argparse.Namespace) -> dict[str, object]:
    """Generate everything ``args`` asks for; return the manifest (also written to disk)."""
    started = time.monotonic()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    layout = args.layout
    formats = _formats(args.formats, layout)
    bad = _bad_cases(args.bad, layout)
    engine = choose_engine(args.engine)
    pool = synthesise_pool(args.cache or out / ".gen_cache", engine)

    used: set[str] = set()
    customers, shared = make_customers(rng, args.customers, used)
    invalid_rows = write_customers(out / "customers.csv", customers, rng, "malformed_csv" in bad)

    planner = Planner(
        rng, args.day, customers, shared, used, formats,
        (args.min_seconds, args.max_seconds), layout,
    )  # fmt: skip
    calls = [planner.call() for _ in range(args.count)]
    calls += [planner.call(bad=case) for case in bad if case != "malformed_csv"]
    if args.split_legs and layout == "spool":
        mark_split_legs(calls, args.split_legs, planner)
    if args.transfers and layout == "spool":
        mark_transfers(calls, args.transfers)
    if args.hours and layout == "spool":
        long_call = planner.call(duration_s=60)
        long_call.long, long_call.answered, long_call.kind = True, True, "q"
        long_call.reason, long_call.queue, long_call.userfield = "billing", "601", "ivr=1"
        long_call.fmt = formats[0] if formats[0].riff else FORMATS["wav"]
        long_call.samples = round(args.hours * 3600 * RATE / STEP) * STEP
        calls.append(long_call)
    if args.legs and layout == "spool":
        calls += repeated_hour_calls(planner, repeated_hour_day(args.day))
        for call in calls:
            call.dial_legs = True
    # in UTC: the calls of the repeated hour share their local times
    calls.sort(key=lambda c: (c.start.astimezone(dt.UTC), c.call_id))
    sequence = rng.randrange(100, 400)
    for call in calls:  # Asterisk's uniqueid: epoch seconds, then a counter that only grows
        sequence += rng.randrange(1, 5)
        call.uniqueid = f"{int(call.start.timestamp())}.{sequence}"
    for call in calls:
        call.fmt = bad_format(call, layout, formats) if call.bad else call.fmt
        if call.fmt.mono_only:
            call.channels = 1
        if not call.long:
            call.turns = plan_turns(rng, pool, call.reason or "billing", call.samples)

    bad_rows: list[dict[str, object]] = []
    if layout == "spool":
        bad_rows = write_spool(out, calls, set(bad))
        instance = None
    elif layout == "twilio":
        write_twilio(out, calls, rng)
        instance = None
    else:
        instance = write_s3drop(out, calls, rng)

    work = [c for c in calls if has_audio(c) and c.recording and not c.long]
    done = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as executor:
        for future in concurrent.futures.as_completed(
            executor.submit(produce, call, pool, out) for call in work
        ):
            future.result()
            done += 1
            if done % 100 == 0:
                print(f"{done}/{len(work)} calls written", file=sys.stderr)
    for call in calls:
        if call.long and call.recording:
            destination = out / call.recording
            destination.parent.mkdir(parents=True, exist_ok=True)
            render_long_call(pool, args.hours, call.fmt, destination, out)
    elapsed = time.monotonic() - started

    bad_cases: list[dict[str, object]] = []
    for call in calls:
        if call.bad:
            outcome, reason = expectation(call)
            bad_cases.append({
                "case": call.bad, "call_id": call.call_id, "path": call.recording,
                "source_ref": call.source_ref, "expected": outcome, "reason": reason,
            })  # fmt: skip
    bad_cases += [
        {"case": "lone_leg", "call_id": c.call_id, "path": c.recording,
         "source_ref": c.source_ref, "expected": "archived", "reason": "lone_leg"}
        for c in calls if c.legs == "lone"
    ]  # fmt: skip
    bad_cases += bad_rows
    bad_cases += [
        {"case": "malformed_csv", **row, "expected": "rejected", "reason": row["problem"]}
        for row in invalid_rows
    ]
    work += [c for c in calls if c.long and c.recording]
    audio_seconds = sum(c.samples / RATE for c in work)
    manifest: dict[str, object] = {
        "generator": "scripts/gen_calls.py",
        "layout": layout,
        "day": args.day.isoformat(),
        "seed": args.seed,
        "engine": engine,
        "formats": [f.name for f in formats],
        "timezone": "Europe/Helsinki",
        "connect_instance": instance,
        "customers": {
            "file": "customers.csv",
            "count": len(customers),
            "shared_numbers": [e164(n) for n in shared],
            "invalid_rows": invalid_rows,
        },
        "calls": [call_manifest(call, layout) for call in calls],
        "bad_cases": bad_cases,
        "stats": {
            "recordings": len(work),
            "audio_seconds": round(audio_seconds, 2),
            "elapsed_s": round(elapsed, 2),
            "calls_per_s": round(len(work) / elapsed, 2) if elapsed else None,
        },
    }
    (out / "manifest.json").write_text(
        json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return manifest


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Generate synthetic customer-service calls in a telephony system's layout.",
        epilog="See the module docstring for layouts, reason codes and bad cases.",
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument(
        "--layout", choices=("spool", "twilio", "s3drop"), required=True,
        help="delivery layout: Asterisk/FreePBX spool, Twilio recordings, Amazon Connect S3 drop",
    )  # fmt: skip
    parser.add_argument("--count", type=int, default=10, help="number of normal calls")
    parser.add_argument(
        "--day", type=dt.date.fromisoformat, default=dt.date(2026, 3, 14),
        help="day of the calls, YYYY-MM-DD (local time Europe/Helsinki)",
    )  # fmt: skip
    parser.add_argument(
        "--formats", default="wav,ulaw,gsm,mp3",
        help=f"comma-separated audio formats to mix ({', '.join(FORMATS)}); twilio keeps "
        "wav/mp3, s3drop wav",
    )  # fmt: skip
    parser.add_argument("--min-seconds", type=float, default=30, help="shortest call, seconds")
    parser.add_argument("--max-seconds", type=float, default=240, help="longest call, seconds")
    parser.add_argument("--seed", type=int, default=1, help="random seed (same seed, same output)")
    parser.add_argument(
        "--bad", default="",
        help=f"comma-separated bad inputs to add, or 'all': {', '.join(BAD_CASES)} "
        "(late_contact_record: s3drop only; late_cdr_row: spool only, not in 'all')",
    )  # fmt: skip
    parser.add_argument("--customers", type=int, default=200, help="customers in the directory")
    parser.add_argument(
        "--split-legs", type=int, default=0,
        help="spool layout: write this many answered calls as MixMonitor's -in/-out legs, "
        "plus one lone -in leg whose partner never comes",
    )  # fmt: skip
    parser.add_argument(
        "--hours", type=float, default=0,
        help="also write one call of this many hours (spool layout; for memory tests)",
    )  # fmt: skip
    parser.add_argument(
        "--transfers", type=int, default=0,
        help="spool: this many inbound calls get a second part (a transfer to another agent), "
        "its own recording, linked to the first by the CDR's linkedid",
    )  # fmt: skip
    parser.add_argument(
        "--legs", action="store_true",
        help="spool: Master.csv as Asterisk writes real calls: one 21-column line per dial "
        "leg (ring-group forks, queue members through Local channels), and two calls in the "
        "hour repeated when daylight saving time ends",
    )  # fmt: skip
    parser.add_argument(
        "--engine", choices=("auto", "espeak", "tones"), default="auto",
        help="speech: espeak-ng Finnish voices, or ffmpeg tones (auto: espeak-ng if installed)",
    )  # fmt: skip
    parser.add_argument(
        "--cache", type=Path, default=None,
        help="directory for the synthesised utterance pool (default OUT/.gen_cache)",
    )  # fmt: skip
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="ffmpeg processes run in parallel"
    )
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.min_seconds <= 0 or args.max_seconds < args.min_seconds:
        parser.error("need 0 < --min-seconds <= --max-seconds")
    if args.count < 0 or args.customers < 2:
        parser.error("need --count >= 0 and --customers >= 2")
    if args.split_legs < 0:
        parser.error("need --split-legs >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    manifest = generate(args)
    stats = manifest["stats"]
    assert isinstance(stats, dict)
    print(
        f"{stats['recordings']} recordings ({stats['audio_seconds'] / 3600:.2f} h of audio) "
        f"in {stats['elapsed_s']} s: {stats['calls_per_s']} calls/s -> {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
