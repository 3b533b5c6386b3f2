"""Settings of the HTTP service and the web player: the ``[api]`` section (docs/api.md).

A field of :class:`recarchive.config.Settings`.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator

from recarchive.config_base import _Section


class ApiSettings(_Section):
    bind: str = Field(default="127.0.0.1:8080", pattern=r"^[^\s:]+:[0-9]{1,5}$")
    workers: int = Field(default=1, ge=1, le=64)
    token_cache_s: float = Field(default=30.0, ge=0, le=3600)
    max_query_bytes: int = Field(default=4096, ge=512, le=65536)
    secure_cookies: bool = False
    transcode_timeout_s: float = Field(default=600.0, gt=0)
    #: Reverse proxies (IPs or CIDR networks) whose X-Forwarded-For/-Proto are believed.
    trusted_proxies: list[str] = Field(default_factory=list, max_length=64)
    #: A web-player session ends after this long without a request ...
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    #: ... and this long after sign-in, whatever happens.
    session_hours: float = Field(default=12.0, gt=0, le=7 * 24)
    #: Refusals (401, 403) audited per client address and reason per minute; the rest counted.
    refusal_audit_per_minute: int = Field(default=10, ge=1, le=10_000)
    #: The case pages' language until a user picks one in their browser.
    language: Literal["fi", "en"] = "fi"

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an IP address or CIDR network") from exc
        return [item.strip() for item in value]
