"""Every error recarchive raises on purpose derives from :class:`RecArchiveError`.

The docstring of each class is its default message, so ``raise ObjectNotFound()``
already says something useful; callers add specifics with a message argument.
Messages name the input and what is wrong with it, and never carry personal
data (names, identity codes, phone numbers): ids and object keys only.
"""

from __future__ import annotations


class RecArchiveError(Exception):
    """recarchive failed."""

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip().splitlines()[0]
        super().__init__(self.message)


# --- configuration ----------------------------------------------------------


class ConfigError(RecArchiveError):
    """The configuration is not valid."""


class SecretMissing(ConfigError):
    """A secret the configuration needs is not set."""


# --- catalogue --------------------------------------------------------------


class CatalogueError(RecArchiveError):
    """The catalogue database failed."""


class CatalogueUnavailable(CatalogueError):
    """The catalogue database cannot be reached."""


class CatalogueReplaced(CatalogueUnavailable):
    """The catalogue this process opened is gone or was replaced: nothing more is served."""


# --- object storage ---------------------------------------------------------


class StoreError(RecArchiveError):
    """The object store failed."""


class StoreUnavailable(StoreError):
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
