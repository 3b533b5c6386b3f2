"""A real RFC 3161 time-stamping authority for the tests: OpenSSL's ``ts`` behind HTTP.

:func:`run_tsa` makes a CA and a TSA certificate (extendedKeyUsage critical
timeStamping) with the ``openssl`` command, writes an ``openssl ts`` config,
and serves RFC 3161 over HTTP on a free 127.0.0.1 port from a thread: each
POST (``application/timestamp-query``) is answered by ``openssl ts -reply``
and its DER (``application/timestamp-reply``). Nothing of the token format
is imitated: every token the tests check was made by OpenSSL.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

_CONFIG = """\
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = placeholder

[ ca_ext ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ tsa_ext ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ tsa ]
default_tsa = tsa_config

[ tsa_config ]
dir = {dir}
serial = $dir/tsaserial
crypto_device = builtin
signer_cert = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


@dataclasses.dataclass
class Tsa:
    """A running TSA: its URL, its CA certificate (PEM file), the requests it answered."""

    url: str
    ca_file: Path
    directory: Path
    answered: int = 0


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(directory: Path, name: str = "Test TSA") -> Path:
    """A CA and a TSA certificate signed by it, and the ``openssl ts`` config; the config."""
    config = directory / "openssl.cnf"
    config.write_text(_CONFIG.format(dir=directory), encoding="utf-8")
    (directory / "tsaserial").write_text("01\n", encoding="ascii")
    common = ("-config", str(config))
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", "ca.key", cwd=directory)  # fmt: skip
    _openssl("req", "-new", "-x509", *common, "-key", "ca.key", "-subj", f"/CN={name} CA",
             "-days", "3650", "-extensions", "ca_ext", "-out", "ca.pem", cwd=directory)  # fmt: skip
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", "tsa.key", cwd=directory)  # fmt: skip
    _openssl("req", "-new", *common, "-key", "tsa.key", "-subj", f"/CN={name}",
             "-out", "tsa.csr", cwd=directory)  # fmt: skip
    _openssl("x509", "-req", "-in", "tsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "3650", "-extfile", str(config),
             "-extensions", "tsa_ext", "-out", "tsa.pem", cwd=directory)  # fmt: skip
    return config


def _handler(
    tsa: Tsa, config: Path, lock: threading.Lock
) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            query = self.rfile.read(length)
            if self.headers.get("Content-Type") != "application/timestamp-query":
                self.send_error(415)
                return
            with lock, tempfile.TemporaryDirectory(dir=tsa.directory) as tmp:
                query_file, reply_file = Path(tmp) / "q.tsq", Path(tmp) / "r.tsr"
                query_file.write_bytes(query)
                done = subprocess.run(
                    ["openssl", "ts", "-reply", "-config", str(config), "-queryfile",
                     str(query_file), "-out", str(reply_file)],
                    capture_output=True,
                    timeout=60,
                    check=False,
                )  # fmt: skip
                reply = reply_file.read_bytes() if done.returncode == 0 else b""
                tsa.answered += 1
            if not reply:
                self.send_error(500)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextlib.contextmanager
def run_tsa(directory: Path) -> Iterator[Tsa]:
    """A TSA with fresh certificates under ``directory``, served until the block ends."""
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is needed for the time-stamping tests")
    config = make_certificates(directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    tsa = Tsa(f"http://127.0.0.1:{server.server_address[1]}/tsa", directory / "ca.pem", directory)
    server.RequestHandlerClass = _handler(tsa, config, threading.Lock())
    thread = threading.Thread(target=server.serve_forever, name="test-tsa", daemon=True)
    thread.start()
    try:
        yield tsa
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
