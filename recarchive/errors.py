"""Every error recarchive raises on purpose derives from :class:`RecArchiveError`.

The docstring of each class is its default message, so ``raise ObjectNotFound()``
already says something useful; callers add specifics with a message argument.
Messages name the input and what is wrong with it, and never carry personal
data (names, identity codes, phone numbers): ids and object keys only.

Each error belongs to a category that carries its HTTP status and stable
code: :class:`NotFoundError` (404), :class:`GoneError` (410),
:class:`ConflictError` (409), :class:`RefusedError` (403),
:class:`InvalidInputError` (422) and :class:`UnavailableError` (503); what
belongs to none is a fault of recarchive or its backends (500). A domain
error subclasses its category, and the API answers by category
(``api/errors.py: domain_response``), so a new error is answered as its
category says, never by a list that forgets it.
"""

from __future__ import annotations

from typing import Any, ClassVar


class RecArchiveError(Exception):
    """recarchive failed."""

    #: The HTTP status and the stable ``error.code`` of the category.
    http_status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    #: Logged as an error (event name) when answered: a fault the operator must see.
    log_event: ClassVar[str | None] = None

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip().splitlines()[0]
        super().__init__(self.message)

    def details(self) -> dict[str, Any]:
        """Fields the API adds to the error body (``field``, ``candidates``...)."""
        return {}

    def headers(self) -> dict[str, str]:
        """HTTP headers that go with the answer (``Content-Range``...)."""
        return {}


# --- categories -------------------------------------------------------------


class NotFoundError(RecArchiveError):
    """Nothing has that id."""

    http_status = 404
    code = "not_found"

    def details(self) -> dict[str, Any]:
        return {}


class GoneError(RecArchiveError):
    """It existed and was deleted."""

    http_status = 410
    code = "gone"


class ConflictError(RecArchiveError):
    """The request conflicts with the current state."""

    http_status = 409
    code = "conflict"

    def details(self) -> dict[str, Any]:
        return {}


class RefusedError(RecArchiveError):
    """The caller may not do this."""

    http_status = 403
    code = "forbidden"


class InvalidInputError(RecArchiveError):
    """The input is not valid."""

    http_status = 422
    code = "invalid_request"
    #: The input field at fault, when one is.
    field: str | None = None

    def details(self) -> dict[str, Any]:
        return {"field": self.field} if self.field else {}


class UnavailableError(RecArchiveError):
    """A service recarchive needs cannot be reached."""

    http_status = 503
    code = "unavailable"
    log_event = "backend_unavailable"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}  # a blip: clients may try again soon


# --- configuration ----------------------------------------------------------


class ConfigError(RecArchiveError):
    """The configuration is not valid."""


class SecretMissing(ConfigError):
    """A secret the configuration needs is not set."""


# --- catalogue --------------------------------------------------------------


class CatalogueError(RecArchiveError):
    """The catalogue database failed."""


class CatalogueUnavailable(UnavailableError, CatalogueError):
    """The catalogue database cannot be reached."""


class CatalogueMisconfigured(CatalogueError):
    """The catalogue refuses this installation (credentials, database, schema).

    Waiting will not cure it: long-running processes stop, the operator must act.
    """

    http_status = 503
    code = "unavailable"
    log_event = "backend_unavailable"


class CatalogueReplaced(CatalogueUnavailable):
    """The catalogue this process opened is gone or was replaced: nothing more is served."""


# --- single sign-on ---------------------------------------------------------


class ProviderUnavailable(UnavailableError):
    """the sign-in provider cannot be reached or gave an unusable answer; try again later"""


# --- object storage ---------------------------------------------------------


class StoreError(RecArchiveError):
    """The object store failed."""


class StoreUnavailable(UnavailableError, StoreError):
    """The object store cannot be reached."""


class StoreAccessDenied(StoreError):
    """The object store refused the credentials or the request."""


class BucketNotFound(StoreError):
    """The configured bucket does not exist."""


class ObjectNotFound(StoreError):
    """No object is stored under that key."""


class InvalidObjectKey(StoreError):
    """The object key is not acceptable."""


class InvalidTags(StoreError):
    """The object tags are not acceptable."""


class InvalidMetadata(StoreError):
    """The object metadata or content type is not acceptable."""


class InvalidRange(StoreError):
    """The byte range lies outside the object."""


class IntegrityError(StoreError):
    """The data written does not match what was expected; nothing was stored."""


class ChecksumMismatch(IntegrityError):
    """The SHA-256 of the data does not match the expected one; nothing was stored."""


class SizeMismatch(IntegrityError):
    """The size of the data does not match the expected one; nothing was stored."""


class AudioIntegrityFailed(StoreError):
    """The audio read does not match the SHA-256 and size the catalogue holds; not served."""

    log_event = "audio_integrity_failed"


# --- encryption at rest -----------------------------------------------------


class EncryptionError(RecArchiveError):
    """The encrypted object cannot be decrypted."""


class UnsupportedEncryption(EncryptionError):
    """The object is not in an encryption format this version of recarchive reads."""


class HeaderMismatch(EncryptionError):
    """The object's encryption header does not belong to this data key (another object's?)."""


class ChunkAuthenticationFailed(EncryptionError):
    """A chunk of the encrypted object failed authentication: altered, moved or foreign."""

    def __init__(self, message: str | None = None, *, index: int | None = None) -> None:
        super().__init__(message)
        #: Index of the chunk that failed, when known.
        self.index = index


class TruncatedCiphertext(EncryptionError):
    """The encrypted object ends before its final chunk: it was cut short."""


class KeyUnwrapFailed(EncryptionError):
    """The data key does not unwrap: another key-encryption key, or altered bytes."""


class KeyEncryptionKeyNotFound(EncryptionError):
    """The key-encryption key that wrapped this data key is not held by the provider."""


class KeyProviderUnavailable(UnavailableError, EncryptionError):
    """The key provider (key file, hardware security module) cannot be reached."""


class DataKeyDestroyed(GoneError, EncryptionError):
    """The recording's data key was destroyed: its audio can never be decrypted again."""
