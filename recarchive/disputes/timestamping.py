"""RFC 3161 timestamps from the configured time-stamping authority (``disputes.tsa_url``).

:func:`request_timestamp` asks the TSA for a token over SHA-256 of some bytes
(with a nonce, and the TSA's certificate in the token) and checks the answer
before anyone keeps it: granted, the nonce echoed, the message imprint the
one asked for, and the signature verified under the TSA's CA certificate
(``disputes.tsa_ca_file``). A TSA that cannot be reached, times out or
answers anything else raises :class:`TimestampUnavailable` naming its host.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import urllib.parse
from pathlib import Path

import httpx
from cryptography import x509
from rfc3161_client import (
    HashAlgorithm,
    TimestampRequestBuilder,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from recarchive.errors import ConfigError, UnavailableError

_MAX_REPLY = 1024 * 1024


class TimestampUnavailable(UnavailableError):
    """The time-stamping authority gave no usable timestamp: nothing was written."""

    log_event = "timestamp_unavailable"


@dataclasses.dataclass(frozen=True)
class Timestamp:
    """A checked RFC 3161 response (DER) and the time it states."""

    token: bytes
    at: dt.datetime


def read_tsa_ca(path: Path) -> tuple[bytes, list[x509.Certificate]]:
    """The TSA's CA file: its bytes and certificates (:class:`ConfigError` when unusable)."""
    try:
        data = path.read_bytes()
        return data, x509.load_pem_x509_certificates(data)
    except OSError as exc:
        raise ConfigError(f"disputes.tsa_ca_file: cannot read {path}: {exc.strerror}") from None
    except ValueError:
        raise ConfigError(f"disputes.tsa_ca_file: {path} holds no PEM certificate") from None


def request_timestamp(
    url: str, roots: list[x509.Certificate], data: bytes, *, timeout_s: float
) -> Timestamp:
    """A timestamp over SHA-256(``data``) from the TSA at ``url``, checked under ``roots``."""
    host = urllib.parse.urlsplit(url).hostname or url
    request = (
        TimestampRequestBuilder()
        .data(data)
        .hash_algorithm(HashAlgorithm.SHA256)
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
    )
    try:
        answer = httpx.post(
            url,
            content=request.as_bytes(),
            headers={"Content-Type": "application/timestamp-query"},
            timeout=timeout_s,
        )
    except httpx.TimeoutException:
        raise TimestampUnavailable(
            f"the time-stamping authority {host} did not answer within {timeout_s:g} s: "
            "no evidence package was written"
        ) from None
    except httpx.HTTPError as exc:
        raise TimestampUnavailable(
            f"the time-stamping authority {host} cannot be reached ({type(exc).__name__}): "
            "no evidence package was written"
        ) from None
    if answer.status_code != 200 or len(answer.content) > _MAX_REPLY:
        raise TimestampUnavailable(
            f"the time-stamping authority {host} answered HTTP {answer.status_code}: "
            "no evidence package was written"
        )
    try:
        response = decode_timestamp_response(answer.content)
        if response.tst_info.message_imprint.message != hashlib.sha256(data).digest():
            raise VerificationError("the token is not over the data sent")
        verifier = VerifierBuilder(roots=roots, nonce=request.nonce).build()
        verifier.verify_message(response, data)
    except (VerificationError, ValueError) as exc:
        raise TimestampUnavailable(
            f"the time-stamping authority {host} gave a timestamp that does not verify "
            f"under disputes.tsa_ca_file ({exc}): no evidence package was written"
        ) from None
    return Timestamp(answer.content, response.tst_info.gen_time)
