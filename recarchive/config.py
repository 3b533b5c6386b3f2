"""Settings: one typed object, read from a TOML file and then ``RECARCHIVE_*`` variables.

Nothing reads configuration at import time. The entry point (CLI, server,
scheduler) calls :func:`load_settings` once and passes the result down.

Precedence, lowest first: built-in defaults, the TOML file (``--config FILE``
or ``RECARCHIVE_CONFIG``), environment variables named
``RECARCHIVE_<SECTION>_<KEY>`` (``RECARCHIVE_CATALOGUE_URL``). Relative paths
are taken relative to the working directory.

Secrets (S3 keys, the identity-hash key, the token pepper) are never read
from the TOML file itself: they come from ``RECARCHIVE_<NAME>`` or from a file
named by ``RECARCHIVE_<NAME>_FILE`` or by the matching ``*_file`` setting.
Every setting is documented in ``config.example.toml``; a test keeps the two
in step.
"""

from __future__ import annotations

import dataclasses
import os
import secrets as _secrets
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from recarchive.config_api import ApiSettings
from recarchive.config_base import OptionalPath, _Section
from recarchive.config_disputes import DisputesSettings
from recarchive.config_encryption import EncryptionSettings
from recarchive.config_ingest import (
    DEFAULT_REASON_CODES,
    AudioSettings,
    HttpSourceSettings,
    IngestSettings,
    ReasonRule,
    ReasonSettings,
    RetentionRule,
    RetentionSettings,
    S3DropSourceSettings,
    SourceSettings,
    SpoolSourceSettings,
)
from recarchive.config_oidc import OidcSettings
from recarchive.config_qa import QaSettings
from recarchive.errors import ConfigError, SecretMissing
from recarchive.private_files import make_private_dir, open_private

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_REASON_CODES",
    "ENV_PREFIX",
    "SECRETS",
    "ApiSettings",
    "AudioSettings",
    "CatalogueSettings",
    "GeneralSettings",
    "HttpSourceSettings",
    "IngestSettings",
    "OidcSettings",
    "OptionalPath",
    "ReasonRule",
    "ReasonSettings",
    "RetentionRule",
    "RetentionSettings",
    "S3DropSourceSettings",
    "S3Settings",
    "SecretsSettings",
    "Settings",
    "SourceSettings",
    "SpoolSourceSettings",
    "StorageSettings",
    "environment_variable",
    "load_settings",
    "setting_names",
]

ENV_PREFIX = "RECARCHIVE_"
CONFIG_ENV = "RECARCHIVE_CONFIG"
#: Variables with these prefixes belong to the scripts and test suite, not to settings.
_FOREIGN_ENV_PREFIXES = (
    "RECARCHIVE_CONFIG",
    "RECARCHIVE_TEST_",
    "RECARCHIVE_CEPH_",
    "RECARCHIVE_SOURCE_",  # per-source secrets, read by recarchive.ingest.sources
    "RECARCHIVE_USER_TOKEN",  # the staff token of `recarchive lookup` and `recarchive get`
)

#: Secret values that are refused outside development.
_PLACEHOLDERS = frozenset(
    {"", "changeme", "change-me", "secret", "password", "example", "dev", "development", "test"}
)
_MIN_SECRET_BYTES = 32


class GeneralSettings(_Section):
    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("var")
    timezone: str = "Europe/Helsinki"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "text", "json"] = "auto"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class CatalogueSettings(_Section):
    url: str = ""
    pool_size: int = Field(default=5, ge=1, le=100)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _supported_url(cls, value: str) -> str:
        if value and not value.startswith(("sqlite://", "sqlite+pysqlite://", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        return value


class StorageSettings(_Section):
    backend: Literal["filesystem", "s3"] = "filesystem"
    root: OptionalPath = None
    #: Age after which the leftovers of an unfinished write are swept (at most 30 days).
    abandoned_after_hours: int = Field(default=24, ge=1, le=720)


class S3Settings(_Section):
    endpoint_url: str = ""
    region: str = "us-east-1"
    bucket: str = Field(default="recarchive", pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    addressing_style: Literal["path", "virtual", "auto"] = "path"
    multipart_threshold_mb: int = Field(default=16, ge=5, le=5120)
    part_size_mb: int = Field(default=8, ge=5, le=5120)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=20)
    access_key_id_file: OptionalPath = None
    secret_access_key_file: OptionalPath = None

    @field_validator("endpoint_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class SecretsSettings(_Section):
    identity_hash_key_file: OptionalPath = None
    token_pepper_file: OptionalPath = None
    audit_key_file: OptionalPath = None


class AuditSettings(_Section):
    #: Filesystem store: the file anchors are appended to (default <data_dir>/audit-anchors.jsonl).
    anchor_file: OptionalPath = None
    #: S3 store: the Object Lock bucket of the anchors (default "<s3.bucket>-audit").
    anchor_bucket: str = Field(default="", pattern=r"^$|^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    anchor_lock_mode: Literal["COMPLIANCE", "GOVERNANCE"] = "COMPLIANCE"
    anchor_retain_days: int = Field(default=3650, ge=1, le=36500)
    #: Shortest time between two anchors of one process (a busy server anchors once per period).
    anchor_min_interval_s: float = Field(default=5.0, ge=0, le=3600)


@dataclasses.dataclass(frozen=True)
class _SecretSpec:
    env: str
    section: str
    file_setting: str
    #: Development installations may generate the secret under the data dir.
    generated_in_development: bool


SECRETS: Mapping[str, _SecretSpec] = {
    "s3_access_key_id": _SecretSpec(
        "RECARCHIVE_S3_ACCESS_KEY_ID", "s3", "access_key_id_file", False
    ),
    "s3_secret_access_key": _SecretSpec(
        "RECARCHIVE_S3_SECRET_ACCESS_KEY", "s3", "secret_access_key_file", False
    ),
    "identity_hash_key": _SecretSpec(
        "RECARCHIVE_IDENTITY_HASH_KEY", "secrets", "identity_hash_key_file", True
    ),
    "token_pepper": _SecretSpec("RECARCHIVE_TOKEN_PEPPER", "secrets", "token_pepper_file", True),
    "audit_key": _SecretSpec("RECARCHIVE_AUDIT_KEY", "secrets", "audit_key_file", True),
    "oidc_client_secret": _SecretSpec(
        "RECARCHIVE_OIDC_CLIENT_SECRET", "oidc", "client_secret_file", False
    ),
    "pkcs11_pin": _SecretSpec("RECARCHIVE_PKCS11_PIN", "encryption", "pkcs11_pin_file", False),
}


class Settings(BaseModel):
    """The whole configuration of one recarchive installation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    general: GeneralSettings = GeneralSettings()
    catalogue: CatalogueSettings = CatalogueSettings()
    storage: StorageSettings = StorageSettings()
    s3: S3Settings = S3Settings()
    ingest: IngestSettings = IngestSettings()
    audio: AudioSettings = AudioSettings()
    retention: RetentionSettings = RetentionSettings()
    reasons: ReasonSettings = ReasonSettings()
    api: ApiSettings = ApiSettings()
    secrets: SecretsSettings = SecretsSettings()
    encryption: EncryptionSettings = EncryptionSettings()
    audit: AuditSettings = AuditSettings()
    oidc: OidcSettings = OidcSettings()
    disputes: DisputesSettings = DisputesSettings()
    qa: QaSettings = QaSettings()
    sources: list[SourceSettings] = Field(default_factory=list)

    #: Environment the secrets are read from (not a setting; kept for lookups).
    env: Mapping[str, str] = Field(default_factory=dict, exclude=True, repr=False)

    @property
    def tz(self) -> ZoneInfo:
        """The installation's time zone (``general.timezone``)."""
        return ZoneInfo(self.general.timezone)

    @property
    def catalogue_url(self) -> str:
        """The catalogue URL, defaulting to SQLite in the data directory."""
        if self.catalogue.url:
            return self.catalogue.url
        return f"sqlite:///{(self.general.data_dir / 'recarchive.db').as_posix()}"

    @property
    def storage_root(self) -> Path:
        """Root directory of the filesystem object store."""
        return self.storage.root or self.general.data_dir / "objects"

    @property
    def anchor_file(self) -> Path:
        """The file audit anchors are appended to on the filesystem store."""
        return self.audit.anchor_file or self.general.data_dir / "audit-anchors.jsonl"

    @property
    def anchor_bucket(self) -> str:
        """The Object Lock bucket of the audit anchors on S3."""
        return self.audit.anchor_bucket or f"{self.s3.bucket}-audit"

    @property
    def work_dir(self) -> Path:
        """Scratch directory for downloads and transcodes (same filesystem as the data)."""
        return self.ingest.work_dir or self.general.data_dir / "work"

    @model_validator(mode="after")
    def _unique_source_names(self) -> Settings:
        names = [source.name for source in self.sources]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"source names must be unique: {', '.join(duplicates)}")
        return self

    @model_validator(mode="after")
    def _oidc_in_production(self) -> Settings:
        """In production the provider is reached over TLS and the redirect URL is fixed."""
        oidc = self.oidc
        if not (oidc.enabled and self.is_production):
            return self
        if not oidc.redirect_url:
            raise ValueError("oidc.redirect_url must be set with general.environment = production")
        for what, url in (("oidc.issuer", oidc.issuer), ("oidc.redirect_url", oidc.redirect_url)):
            if not url.startswith("https://"):
                raise ValueError(f"{what} must use https:// with general.environment = production")
        return self

    @property
    def is_production(self) -> bool:
        return self.general.environment == "production"

    def secret(self, name: str, *, required: bool = True) -> str | None:
        """Return the secret ``name`` (see :data:`SECRETS`), or None when optional and unset.

        Raises :class:`~recarchive.errors.SecretMissing` when a required secret
        is not set, and :class:`~recarchive.errors.ConfigError` when it is a
        placeholder in production or its file cannot be read. In development a
        missing generated secret (identity-hash key, token pepper) is created
        once under ``<data_dir>/secrets/`` with mode 0600.
        """
        spec = SECRETS[name]
        value = self._read_secret(name, spec)
        if value is None:
            if spec.generated_in_development and not self.is_production:
                return self._development_secret(name)
            if required:
                raise SecretMissing(
                    f"secret {name} is not set: set {spec.env}, {spec.env}_FILE "
                    f"or {spec.section}.{spec.file_setting}"
                )
            return None
        weak = value.lower() in _PLACEHOLDERS or len(value.encode()) < _MIN_SECRET_BYTES
        if self.is_production and spec.generated_in_development and weak:
            raise ConfigError(
                f"secret {name} is a placeholder or shorter than {_MIN_SECRET_BYTES} "
                "bytes; refused with general.environment = production"
            )
        return value

    def _read_secret(self, name: str, spec: _SecretSpec) -> str | None:
        if self.env.get(spec.env):
            return self.env[spec.env].strip()
        path_text = self.env.get(f"{spec.env}_FILE")
        source = f"{spec.env}_FILE"
        path: Path | None = Path(path_text) if path_text else None
        if path is None:
            path = getattr(getattr(self, spec.section), spec.file_setting)
            source = f"{spec.section}.{spec.file_setting}"
        if path is None:
            return None
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"{source}: cannot read secret {name} from {path}: {exc.strerror}"
            ) from None
        if not value:
            raise ConfigError(f"{source}: secret file {path} is empty")
        return value

    def _development_secret(self, name: str) -> str:
        path = self.general.data_dir / "secrets" / name
        try:
            if path.exists():
                return path.read_text(encoding="utf-8").strip()
            make_private_dir(path.parent)
            value = _secrets.token_urlsafe(48)
            with open_private(path, "xb") as handle:
                handle.write(value.encode() + b"\n")
            return value
        except FileExistsError:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"cannot keep the development secret {name} under {path.parent}: {exc.strerror}"
            ) from exc


def _sections() -> dict[str, type[_Section]]:
    sections: dict[str, type[_Section]] = {}
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, _Section):
            sections[name] = annotation
    return sections


def setting_names() -> dict[str, list[str]]:
    """Every setting, as ``{section: [key, ...]}`` (used by docs and tests)."""
    return {name: list(model.model_fields) for name, model in _sections().items()}


def environment_variable(section: str, key: str) -> str:
    """The variable that overrides ``section.key``."""
    return f"{ENV_PREFIX}{section}_{key}".upper()


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _check_toml_shape(data: Mapping[str, Any], path: Path) -> None:
    sections = _sections()
    for section, table in data.items():
        if section == "sources":
            if not isinstance(table, list):
                raise ConfigError(f"{path}: sources must be an array of tables, [[sources]]")
            continue
        if section not in sections:
            known = ", ".join(sorted([*sections, "sources"]))
            raise ConfigError(f"{path}: unknown section [{section}] (known: {known})")
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {section} must be a table, [{section}]")
        for key in table:
            if key not in sections[section].model_fields:
                raise ConfigError(f"{path}: unknown setting {section}.{key}")


def _environment_value(section: str, key: str, value: str) -> Any:
    """Environment values are text; list settings take comma-separated items."""
    annotation = _sections()[section].model_fields[key].annotation
    if getattr(annotation, "__origin__", None) is list:
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


#: Tables of tables are set in the TOML file only.
_NOT_FROM_ENVIRONMENT = frozenset({("reasons", "rules"), ("retention", "rules"), ("oidc", "roles")})


def _environment_overrides(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    known: dict[str, tuple[str, str]] = {}
    for section, keys in setting_names().items():
        for key in keys:
            if (section, key) not in _NOT_FROM_ENVIRONMENT:
                known[environment_variable(section, key)] = (section, key)
    secret_vars = {spec.env for spec in SECRETS.values()}
    secret_vars |= {f"{name}_FILE" for name in secret_vars}
    overrides: dict[str, dict[str, str]] = {}
    for variable, value in env.items():
        if not variable.startswith(ENV_PREFIX) or variable.startswith(_FOREIGN_ENV_PREFIXES):
            continue
        if variable in secret_vars:
            continue
        if variable not in known:
            raise ConfigError(f"environment variable {variable} names no setting")
        section, key = known[variable]
        overrides.setdefault(section, {})[key] = _environment_value(section, key, value)
    return overrides


def _describe(error: Mapping[str, Any], origins: Mapping[tuple[str, str], str]) -> str:
    location = tuple(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if not location:
        return f"configuration: {message}"
    origin = origins.get((location[0], location[1])) if len(location) >= 2 else None
    origin = origin or origins.get((location[0], "*"))
    where = f" (from {origin})" if origin else ""
    return f"setting {'.'.join(location)}{where}: {message}"


def load_settings(
    config_file: Path | str | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Build the settings from defaults, the TOML file and the environment.

    ``config_file`` defaults to ``$RECARCHIVE_CONFIG``; without either, only
    defaults and the environment apply. Raises
    :class:`~recarchive.errors.ConfigError` with one line naming the setting
    and what is wrong with it.
    """
    env = dict(os.environ if env is None else env)
    if config_file is None and env.get(CONFIG_ENV):
        config_file = env[CONFIG_ENV]
    data: dict[str, Any] = {}
    origins: dict[tuple[str, str], str] = {}
    if config_file is not None:
        path = Path(config_file)
        toml_data = _read_toml(path)
        _check_toml_shape(toml_data, path)
        for section, table in toml_data.items():
            data[section] = table
            origins[(section, "*")] = str(path)
            for key in table if isinstance(table, dict) else ():
                origins[(section, key)] = str(path)
    for section, table in _environment_overrides(env).items():
        data.setdefault(section, {}).update(table)
        for key in table:
            origins[(section, key)] = environment_variable(section, key)
    try:
        return Settings.model_validate({**data, "env": env})
    except ValidationError as exc:
        raise ConfigError(_describe(exc.errors()[0], origins)) from None
