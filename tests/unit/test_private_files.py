"""Private files and directories: created 0600/0700 whatever the umask; loose ones reported.

The tests read mode bits, not ``os.access``: the suite may run as root,
who can open anything.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from recarchive.private_files import (
    LooseMode,
    create_private_file,
    find_loose_modes,
    make_private_dir,
    open_private,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The common default umask, under which plain mkdir/open give 0755/0644."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


class TestMakePrivateDir:
    def test_creates_missing_parents_0700_and_leaves_existing_ones(self, tmp_path: Path) -> None:
        existing = tmp_path / "existing"
        existing.mkdir(mode=0o755)
        target = existing / "a" / "b" / "c"
        created = make_private_dir(target)
        assert created == [existing / "a", existing / "a" / "b", target]
        assert [mode(p) for p in created] == [0o700, 0o700, 0o700]
        assert mode(existing) == 0o755

    def test_an_existing_directory_is_kept_as_it_is(self, tmp_path: Path) -> None:
        target = tmp_path / "loose"
        target.mkdir(mode=0o755)
        assert make_private_dir(target) == []
        assert mode(target) == 0o755

    def test_a_file_in_the_way_is_refused(self, tmp_path: Path) -> None:
        (tmp_path / "file").write_bytes(b"")
        with pytest.raises(FileExistsError):
            make_private_dir(tmp_path / "file" / "sub")
        with pytest.raises(FileExistsError):
            make_private_dir(tmp_path / "file")

    def test_a_relative_path(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        assert make_private_dir("var/work") == [Path("var"), Path("var/work")]
        assert mode(tmp_path / "var" / "work") == 0o700


class TestPrivateFiles:
    def test_create_private_file_once(self, tmp_path: Path) -> None:
        path = tmp_path / "db"
        assert create_private_file(path) is True
        assert mode(path) == 0o600
        assert path.read_bytes() == b""
        path.write_bytes(b"kept")
        assert create_private_file(path) is False
        assert path.read_bytes() == b"kept"

    def test_open_private_creates_0600_and_truncates(self, tmp_path: Path) -> None:
        path = tmp_path / "audio.wav"
        with open_private(path) as out:
            out.write(b"first, longer")
        assert mode(path) == 0o600
        with open_private(path) as out:
            out.write(b"second")
        assert path.read_bytes() == b"second"

    def test_open_private_exclusive_and_append(self, tmp_path: Path) -> None:
        path = tmp_path / "secret"
        with open_private(path, "xb") as out:
            out.write(b"a")
        with pytest.raises(FileExistsError):
            open_private(path, "xb")
        with open_private(path, "ab") as out:
            out.write(b"b")
        assert path.read_bytes() == b"ab"
        assert mode(path) == 0o600

    def test_an_existing_file_keeps_its_mode(self, tmp_path: Path) -> None:
        path = tmp_path / "shared"
        path.write_bytes(b"x")
        path.chmod(0o640)
        with open_private(path) as out:
            out.write(b"y")
        assert mode(path) == 0o640


class TestFindLooseModes:
    def test_reports_group_and_other_bits_with_the_fix(self, tmp_path: Path) -> None:
        loose_dir = tmp_path / "data dir"
        loose_dir.mkdir(mode=0o750)
        loose_file = loose_dir / "catalogue.db"
        loose_file.write_bytes(b"")
        loose_file.chmod(0o604)
        private_dir = tmp_path / "private"
        private_dir.mkdir(mode=0o700)
        private_file = private_dir / "ok"
        private_file.write_bytes(b"")
        private_file.chmod(0o600)
        found = find_loose_modes(
            [loose_dir, loose_file, private_dir, private_file, tmp_path / "missing", loose_dir]
        )
        assert found == [LooseMode(loose_dir, 0o750, 0o700), LooseMode(loose_file, 0o604, 0o600)]
        assert found[0].chmod_command == f"chmod 700 '{loose_dir}'"
        assert found[1].describe() == (
            f"{loose_file} has mode 0604, expected 0600 (fix: chmod 600 '{loose_file}')"
        )

    def test_the_fix_fixes_it(self, tmp_path: Path) -> None:
        path = tmp_path / "db"
        path.write_bytes(b"")
        path.chmod(0o666)
        [finding] = find_loose_modes([path])
        path.chmod(finding.expected)
        assert find_loose_modes([path]) == []

    def test_a_path_below_a_file_is_missing(self, tmp_path: Path) -> None:
        (tmp_path / "file").write_bytes(b"")
        assert find_loose_modes([tmp_path / "file" / "below"]) == []
