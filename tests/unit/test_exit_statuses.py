"""The exit statuses the CLI uses are the ones docs/operations.md documents, in one table."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from recarchive.cli import common

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def test_the_table_documents_every_status_the_cli_uses() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Exit statuses", 1)[1].split("\n## ", 1)[0]
    documented = {
        int(m.group(1)): m.group(2) for m in re.finditer(r"^\| (\d) \| ([^|]+) \|", section, re.M)
    }
    used = {
        common.EXIT_DONE: "all done",
        common.EXIT_FAILED: "failed",
        common.EXIT_USAGE: "usage",
        common.EXIT_WORK_REMAINS: "done, but work remains",
    }
    assert set(documented) == set(used)
    for status, meaning in used.items():
        assert documented[status].startswith(meaning), (status, documented[status])


def test_ctrl_c_says_what_was_kept_and_how_to_go_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import recarchive.cli as cli_module

    def interrupted(**_options: object) -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:  # as click turns Ctrl-C into Abort
            raise click.exceptions.Abort() from exc

    monkeypatch.setattr(cli_module.cli, "main", interrupted)
    with pytest.raises(SystemExit) as stopped:
        cli_module.main()
    assert stopped.value.code == 1
    assert capsys.readouterr().err == (
        "Interrupted: what was done is kept; run the command again to go on.\n"
    )
