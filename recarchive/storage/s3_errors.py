"""Translation of botocore errors into :class:`~recarchive.errors.StoreError` subclasses.

:func:`boundary` (used by :class:`~recarchive.storage.s3.S3ObjectStore` and the anchor sink)
catches every botocore (and urllib3) error and raises what these functions
return, chained with ``from``, so that callers never see boto.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from recarchive.errors import (
    BucketNotFound,
    ChecksumMismatch,
    InvalidRange,
    ObjectNotFound,
    StoreAccessDenied,
    StoreError,
    StoreUnavailable,
)

#: The store's error boundary (``action``, object key or None): helpers of the store
#: get it handed, so that they need not know the store.
Boundary = Callable[[str, str | None], AbstractContextManager[None]]

_DENIED_CODES = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "Forbidden"}
)
#: The server found that the body it received does not match the signed SHA-256 (or MD5).
_CORRUPTED_CODES = frozenset({"XAmzContentSHA256Mismatch", "BadDigest", "InvalidDigest"})
#: The server is overloaded or down: waiting cures it.
_BUSY_CODES = frozenset(
    {
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "RequestTimeTooSkewed",
        "503",
        "500",
    }
)
_TRANSPORT_ERRORS = (BotoConnectionError, HTTPClientError, IncompleteReadError, Urllib3HTTPError)


def client_error(
    exc: ClientError, action: str, key: str | None, *, bucket: str, endpoint_url: str
) -> StoreError:
    """The StoreError for an error response of the S3 server to ``action`` on ``key``."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    where = f"key {key!r} in bucket {bucket!r}" if key else f"bucket {bucket!r}"
    if code == "NoSuchBucket" or (key is None and code in ("404", "NotFound", "NoSuchKey")):
        return BucketNotFound(
            f"S3 bucket {bucket!r} does not exist at {endpoint_url}; `recarchive init` creates it"
        )
    if code in ("NoSuchKey", "404", "NotFound"):
        return ObjectNotFound(f"no object under key {key!r}")
    if code in _DENIED_CODES or status == 403:
        return StoreAccessDenied(
            f"S3 at {endpoint_url} refused {action} on {where} ({code or status}): "
            "check s3.access_key_id / s3.secret_access_key and the bucket's permissions"
        )
    if code in _CORRUPTED_CODES:
        return ChecksumMismatch(
            f"S3 refused {action} on {where}: the bytes it received differ from the ones "
            f"signed ({code}); nothing was stored under that key"
        )
    if code == "InvalidRange" or status == 416:
        return InvalidRange(f"byte range lies outside object {key!r}")
    if code in _BUSY_CODES or (isinstance(status, int) and status >= 500):
        # Still failing after botocore's own retries (standard mode: 5xx and
        # throttling are retried with backoff): the server is down or overloaded.
        return StoreUnavailable(
            f"S3 at {endpoint_url} could not serve {action} on {where} ({code or status})"
        )
    message = error.get("Message") or ""
    return StoreError(f"S3 {action} on {where} failed: {code or status} {message}".strip())


def transport_error(exc: Exception, action: str, *, endpoint_url: str) -> StoreError:
    """The StoreError for any other botocore or urllib3 error raised during ``action``."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return StoreAccessDenied(
            "no complete S3 credentials found: set s3.access_key_id / s3.secret_access_key"
        )
    if isinstance(exc, _TRANSPORT_ERRORS):
        return StoreUnavailable(
            f"cannot reach the S3 endpoint {endpoint_url} ({action}): {type(exc).__name__}"
        )
    return StoreError(f"S3 {action} failed: {exc}")


@contextlib.contextmanager
def boundary(action: str, key: str | None, *, bucket: str, endpoint_url: str) -> Iterator[None]:
    """Translate every botocore (and urllib3) error raised inside into a StoreError."""
    try:
        yield
    except ClientError as exc:
        raise client_error(exc, action, key, bucket=bucket, endpoint_url=endpoint_url) from exc
    except (BotoCoreError, Urllib3HTTPError) as exc:
        raise transport_error(exc, action, endpoint_url=endpoint_url) from exc
