"""A real OpenID provider for the single sign-on tests: Node's certified ``oidc-provider``.

``tests/oidc/provider.mjs`` (its version pinned by ``tests/oidc/package-lock.json``,
installed by ``scripts/test`` with ``npm ci``) runs on a free 127.0.0.1 port.
Each test registers a client of its own with its redirect URL (dynamic
registration), and signs in through the provider's own login form: with a
browser, or here with httpx (:meth:`OidcProvider.log_in`). The login name
selects the role claim (see the script's header); :meth:`OidcProvider.set_claims`
changes an account's claims at the provider between two sign-ins.

No mock of the protocol anywhere: discovery, keys, the authorisation
endpoint, PKCE, the token and userinfo endpoints are the provider's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

OIDC_DIR = Path(__file__).resolve().parent / "oidc"
SCRIPT = OIDC_DIR / "provider.mjs"
REQUIRE_ENV = "RECARCHIVE_TEST_REQUIRE_OIDC"
_FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')


#: The role claim's values the provider's accounts carry -> recarchive's roles.
ROLES = {
    "recarchive-qa": "qa_trainer",
    "recarchive-dispute": "dispute_handler",
    "recarchive-privacy": "privacy_officer",
    "recarchive-auditor": "auditor",
    "recarchive-admin": "admin",
}


def oidc_config(issuer: str, client_id: str, extra: str = "") -> str:
    """The ``[oidc]`` section of a recarchive configured for this provider."""
    roles = "\n".join(f'"{claim}" = "{role}"' for claim, role in ROLES.items())
    return (
        f'[oidc]\nissuer = "{issuer}"\nclient_id = "{client_id}"\ndisplay_name = "Test IdP"\n'
        f"{extra}\n[oidc.roles]\n{roles}\n"
    )


@dataclasses.dataclass
class RegisteredClient:
    client_id: str
    client_secret: str = dataclasses.field(repr=False)
    redirect_url: str


@dataclasses.dataclass
class OidcProvider:
    issuer: str
    accounts_file: Path
    process: subprocess.Popen[str]
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def register(self, redirect_url: str) -> RegisteredClient:
        """A confidential client (client_secret_basic) allowed ``redirect_url``."""
        response = httpx.post(
            f"{self.issuer}/reg",
            json={
                "redirect_uris": [redirect_url],
                "response_types": ["code"],
                "grant_types": ["authorization_code"],
                "token_endpoint_auth_method": "client_secret_basic",
            },
            timeout=10,
        )
        assert response.status_code == 201, response.text
        body = response.json()
        return RegisteredClient(body["client_id"], body["client_secret"], redirect_url)

    def set_claims(self, login: str, **claims: Any) -> None:
        """Replace claims of ``login`` at the provider (read at its next sign-in)."""
        with self._lock:
            accounts = (
                json.loads(self.accounts_file.read_text()) if self.accounts_file.exists() else {}
            )
            accounts.setdefault(login, {}).update(claims)
            self.accounts_file.write_text(json.dumps(accounts))

    def log_in(self, browser: httpx.Client, authorization_url: str, login: str) -> str:
        """Sign in as ``login`` on the provider's own form, as a browser would; the URL the
        provider then sends the browser to (the relying party's redirect URL with the answer).

        The browser's session at the provider is forgotten first, so the
        provider asks who signs in (else it would answer for the last person).
        """
        browser.cookies.clear()
        response = browser.get(authorization_url)
        while response.status_code in (302, 303) and response.headers["location"].startswith(
            (self.issuer, "/")
        ):
            location = response.headers["location"]
            response = browser.get(
                location if location.startswith("http") else self.issuer + location
            )
            if response.status_code == 200:
                action = _FORM_ACTION.search(response.text)
                assert action is not None, response.text[:500]
                response = browser.post(
                    action.group(1), data={"prompt": "login", "login": login, "password": "x"}
                )
        assert response.status_code in (302, 303), response.text[:500]
        return str(response.headers["location"])


def node_or_skip() -> str:
    node = shutil.which("node")
    if node is None:
        message = "node is not installed (Debian's nodejs and npm; scripts/test installs them)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(message)
        pytest.skip(message)
    if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail(
            f"oidc-provider is not installed: run `npm ci --ignore-scripts` in {OIDC_DIR} "
            "(scripts/test does this)"
        )
    return node


@contextlib.contextmanager
def run_provider(node: str, workdir: Path) -> Iterator[OidcProvider]:
    """The provider on a free 127.0.0.1 port, stopped (SIGTERM, then SIGKILL) at the end."""
    accounts = workdir / "accounts.json"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "OIDC_ACCOUNTS_FILE": str(accounts),
        "OIDC_PORT": "0",
    }
    log = (workdir / "provider.log").open("w")
    process = subprocess.Popen(
        [node, str(SCRIPT)], stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=OIDC_DIR
    )
    try:
        issuer = _read_issuer(process, deadline=time.monotonic() + 30)
        yield OidcProvider(issuer, accounts, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        log.close()


def _read_issuer(process: subprocess.Popen[str], *, deadline: float) -> str:
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the OpenID provider exited ({process.wait()}): see provider.log")
        if line.startswith('{"issuer"'):
            issuer = str(json.loads(line)["issuer"])
            # Drain what the provider prints later, so that its pipe never fills up.
            threading.Thread(
                target=lambda: [None for _ in process.stdout or ()], daemon=True
            ).start()
            return issuer
    raise RuntimeError("the OpenID provider did not start within 30 s")
