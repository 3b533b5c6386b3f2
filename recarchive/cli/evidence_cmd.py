"""``recarchive evidence``: the evidence key, and checking an evidence package offline.

``evidence verify`` needs no configuration and no catalogue: it runs on a
court expert's machine with nothing but the package (it never reads the
settings nor opens the catalogue; :mod:`recarchive.disputes.verify` imports
no part of the archive).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from recarchive.cli.common import AppContext, pass_app


@click.group("evidence")
def evidence_group() -> None:
    """Evidence packages: the key that signs them, and checking one offline."""


@evidence_group.command("key")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
@pass_app
def key_command(app: AppContext, as_json: bool) -> None:
    """Print the evidence key's public key (PEM) and its SHA-256 fingerprint.

    Publish both where a court expert can find them: a package verifies
    against this key (`recarchive evidence verify --public-key`, or the
    package README's openssl commands). The fingerprint is the SHA-256 of
    the key's DER SubjectPublicKeyInfo (`openssl pkey -pubin -outform DER |
    sha256sum`). The key is made by `recarchive init`.
    """
    from recarchive.disputes.keys import (
        evidence_key_path,
        key_fingerprint,
        load_evidence_key,
        public_key_pem,
    )

    key = load_evidence_key(evidence_key_path(app.settings))
    pem = public_key_pem(key).decode()
    fingerprint = key_fingerprint(key.public_key())
    if as_json:
        click.echo(json.dumps({"public_key_pem": pem, "sha256": fingerprint}))
        return
    click.echo(pem, nl=False)
    click.echo(f"SHA-256 fingerprint: {fingerprint}")


@evidence_group.command("verify")
@click.argument("package", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--public-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The archive's published evidence key (PEM): pin it instead of the package's own.",
)
@click.option(
    "--tsa-ca",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The time-stamping authority's CA certificate (PEM): pin it instead of the package's.",
)
@click.option(
    "--audit-export",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Output of `recarchive audit export`: check each custody entry's place in the log.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
def verify_command(
    package: Path,
    public_key: Path | None,
    tsa_ca: Path | None,
    audit_export: Path | None,
    as_json: bool,
) -> None:
    """Check an evidence package: every hash, the signature, the timestamp, the custody record.

    Needs no configuration and no catalogue. Prints each check, ok or
    FAILED, with what holds and what does not; exits 0 only when every
    check holds, 1 otherwise.
    """
    from recarchive.disputes.verify import verify_package

    report = verify_package(
        package,
        public_key_pem=public_key.read_bytes() if public_key else None,
        tsa_ca_pem=tsa_ca.read_bytes() if tsa_ca else None,
        audit_export=audit_export,
    )
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        for check in report.checks:
            click.echo(f"{'ok' if check.ok else 'FAILED':<6} {check.name}: {check.detail}")
    if report.ok:
        click.echo(f"{package}: every check holds", err=True)
        return
    failed = ", ".join(check.name for check in report.checks if not check.ok)
    click.echo(f"{package}: does NOT verify ({failed})", err=True)
    raise click.exceptions.Exit(1)
