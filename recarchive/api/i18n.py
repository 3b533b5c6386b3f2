"""The web pages' languages: Finnish and English message catalogues, and which one a page uses.

The catalogues are ``messages/fi.json`` and ``messages/en.json``: one flat
object each, key to text, with the same keys (a test keeps them in step).
A text may name values in braces (``"Asia {reference}"``), filled in by
:func:`Messages.text` for the templates and by the pages' script, which gets
the catalogue of its page's language in the page itself (a JSON data block,
never run as script). Values are escaped where they are shown: Jinja escapes
what the templates print, the script sets ``textContent``.

The language is the browser's choice (:data:`LANGUAGE_COOKIE`, set by the
FI | EN switch on the pages, :func:`language_response`), else the
installation's ``api.language``. The switch also keeps the choice with the
signed-in user (``users.language``, :mod:`recarchive.access.preferences`);
signing in on another browser sets its cookie from it, so the language is
chosen per user as well as per browser.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from recarchive.access.preferences import remember_language
from recarchive.runtime import Runtime

Language = Literal["fi", "en"]
LANGUAGES: tuple[Language, ...] = ("fi", "en")
#: The browser's choice of language: not a secret, nothing but ``fi`` or ``en`` is believed.
LANGUAGE_COOKIE = "recarchive_lang"
_COOKIE_MAX_AGE_S = 400 * 24 * 3600  # the longest a browser keeps a cookie
_CATALOGUES = Path(__file__).resolve().parent / "messages"
_FIELD = re.compile(r"\{([a-z_]+)\}")


@functools.cache
def catalogue(language: Language) -> dict[str, str]:
    """The messages of ``language``, key to text (read once per process)."""
    with (_CATALOGUES / f"{language}.json").open(encoding="utf-8") as file:
        messages: dict[str, str] = json.load(file)
    return messages


class Messages:
    """One page's language and its catalogue; ``t`` in the templates."""

    def __init__(self, language: Language) -> None:
        self.language = language
        self.catalogue = catalogue(language)

    def text(self, key: str, **values: object) -> str:
        """The text of ``key`` with its ``{names}`` filled from ``values`` (a missing key
        raises ``KeyError``: the tests render every page in both languages)."""
        template = self.catalogue[key]
        return _FIELD.sub(lambda match: str(values.get(match.group(1), match.group(0))), template)

    def prefixed(self, prefix: str) -> dict[str, str]:
        """The messages whose keys start with ``prefix``: what a page's script needs."""
        return {key: text for key, text in self.catalogue.items() if key.startswith(prefix)}


def chosen_language(request: Request) -> Language:
    """The language the browser chose (its cookie), else the installation's default."""
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    default: Language = request.app.state.runtime.settings.api.language
    return default


def messages_for(request: Request) -> Messages:
    return Messages(chosen_language(request))


def _local_path(target: str) -> str:
    """``target`` if it is a path of this site (no scheme, no host, no ``//``), else ``/``."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    if "\\" in target or any(ord(char) < 0x20 for char in target):
        return "/"
    return target


def remember_in_browser(response: Response, runtime: Runtime, language: str) -> None:
    """Set the browser's language cookie (only ``fi`` or ``en``)."""
    if language in LANGUAGES:
        response.set_cookie(
            LANGUAGE_COOKIE,
            language,
            max_age=_COOKIE_MAX_AGE_S,
            path="/",
            secure=runtime.settings.api.secure_cookies,
            httponly=True,
            samesite="lax",
        )


def language_response(
    request: Request, language: str, back_to: str, user_id: uuid.UUID | None = None
) -> RedirectResponse:
    """Remember ``language`` in the browser, and with the user when signed in (``user_id``),
    and go back to the page it was chosen on (a path of this site only: anything else goes
    to ``/``)."""
    runtime: Runtime = request.app.state.runtime
    response = RedirectResponse(_local_path(back_to), status_code=303)
    remember_in_browser(response, runtime, language)
    if user_id is not None:
        remember_language(runtime, user_id, language)
    return response
