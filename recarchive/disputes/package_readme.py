"""The README of an evidence package: what it is and how to check it without recarchive."""

from __future__ import annotations

from recarchive.disputes.package_format import (
    ANCHOR,
    CUSTODY,
    MANIFEST,
    PUBLIC_KEY,
    SIGNATURE,
    SUMS,
    TIMESTAMP,
    TSA_CA,
)

_README = """Evidence package: call recordings of case {reference}
{underline}

Made {generated} (UTC) by {actor}, from the call-recording archive of
installation {installation}. It holds {count} recording(s).

What the files are
------------------
audio/<id>.<ext>         Each recording exactly as the archive received it: the
                         same bytes whose SHA-256 the archive recorded when it
                         took the call in (not converted, not re-encoded).
{manifest:<24} What each recording is (time, duration, direction, numbers,
                         agent, queue, customer, the source file it came from,
                         when it was archived, its SHA-256 and size), the case,
                         and the SHA-256 of every other file of the package.
{signature:<24} Ed25519 signature over the exact bytes of {manifest}, made
                         with the archive's evidence key.
{public_key:<24} The public half of that key. Its SHA-256 fingerprint
                         (of the DER SubjectPublicKeyInfo) is
                         {fingerprint}
                         Compare it with the fingerprint the archive's owner
                         publishes: a package signed by another key proves nothing.
{custody:<24} The custody record: every entry of the archive's audit log
                         about these recordings or this case (who searched,
                         played, downloaded, held or exported them, when, and why),
                         oldest first, each with its place (seq) and hash in the
                         log's hash chain.
{anchor:<24} The audit log's signed anchor (the chain's head, published
                         outside the archive's database) and its public key: the
                         custody entries can be checked against it.
{timestamp_lines}{sums:<24} SHA-256 of every file above except {manifest},
                         {signature} and {timestamp}, in `sha256sum -c` form.
README.txt               This file.

The manifest lists the SHA-256 of every file, {sums} included, and the
signature covers the manifest: a change to any byte of any file shows.

How to check it without recarchive (Linux, OpenSSL 3)
-----------------------------------------------------
Unpack the zip into an empty directory and run, in that directory:

1. Every file is the one listed (each line must say OK):

       sha256sum -c {sums}

   and {sums} is the one the manifest lists:

       sha256sum {sums}        # compare with "files" -> "{sums}" in {manifest}

2. The manifest is signed by the archive's evidence key (prints
   "Signature Verified Successfully"):

       openssl pkeyutl -verify -pubin -inkey {public_key} -rawin -in {manifest} -sigfile {signature}

3. The key is the archive's (the output must equal the published fingerprint):

       openssl pkey -pubin -in {public_key} -outform DER | sha256sum
{timestamp_check}
With recarchive installed, `recarchive evidence verify PACKAGE.zip` runs all of
these checks and the custody record's: each entry's hash recomputed from its
content, the links between consecutive entries, the anchor's signature, and
(with --audit-export) each entry's place in an export of the whole audit log.
Give --public-key with the published key to pin it.

What it proves and what it does not
-----------------------------------
It proves that every file is the one listed in the manifest, and that the
manifest was signed by the holder of the evidence key{timestamp_claim}. The
audio files are the bytes whose SHA-256 the archive recorded when it took
each call in; the custody record is what the archive's audit log says about
who accessed these recordings and this case, and it can be checked against
the anchored audit chain.

It does not prove what the telephony system handed over before the archive
received it, nor that the evidence key was kept secret by its holder.
"""

_TIMESTAMP_FILES = """{timestamp:<24} An RFC 3161 timestamp over SHA-256 of {manifest}, from the
                         time-stamping authority {tsa}: proof that the manifest
                         existed at the time it states.
{tsa_ca:<24} The certificate of that authority's certification authority.
"""

_TIMESTAMP_CHECK = """
4. The timestamp is over this manifest and signed under the authority's CA
   (prints "Verification: OK"; `openssl ts -reply -in {timestamp} -text` shows
   its time):

       openssl ts -verify -data {manifest} -in {timestamp} -CAfile {tsa_ca}
"""

_NO_TIMESTAMP = """
This package carries no timestamp: the archive had no time-stamping authority
configured when it was made.
"""


def readme_text(
    *,
    reference: str,
    generated: str,
    actor: str,
    installation: str,
    count: int,
    fingerprint: str,
    tsa_host: str | None,
) -> str:
    """The README of a package; ``tsa_host`` None when it carries no timestamp."""
    names = {
        "manifest": MANIFEST,
        "signature": SIGNATURE,
        "public_key": PUBLIC_KEY,
        "custody": CUSTODY,
        "anchor": ANCHOR,
        "sums": SUMS,
        "timestamp": TIMESTAMP,
        "tsa_ca": TSA_CA,
    }
    stamped = tsa_host is not None
    return _README.format(
        reference=reference,
        underline="=" * (47 + len(reference)),
        generated=generated,
        actor=actor,
        installation=installation,
        count=count,
        fingerprint=fingerprint,
        timestamp_lines=_TIMESTAMP_FILES.format(tsa=tsa_host, **names) if stamped else "",
        timestamp_check=_TIMESTAMP_CHECK.format(**names) if stamped else _NO_TIMESTAMP,
        timestamp_claim=", no later than the time its RFC 3161 timestamp states" if stamped else "",
        **names,
    )
