"""The filesystem store keeps every directory 0700 and every file 0600, whatever the umask."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from recarchive.storage.filesystem import FilesystemObjectStore


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def modes(root: Path) -> dict[str, int]:
    """Every path under ``root`` (and itself) with its permission bits."""
    paths = [root, *root.rglob("*")]
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in paths}


def expected_mode(path: Path) -> int:
    return 0o700 if path.is_dir() else 0o600


def test_objects_sidecars_and_their_directories_are_private(tmp_path: Path) -> None:
    root = tmp_path / "install" / "objects"
    store = FilesystemObjectStore(root)
    assert store.create() is True
    store.put("2026/03/14/a.opus", io.BytesIO(b"audio"), tags={"class": "standard"})
    store.set_tags("2026/03/14/a.opus", {"class": "held"})
    store.delete("2026/03/14/a.opus")  # prunes its directories; a new put makes them again
    store.put("2026/03/15/b.opus", io.BytesIO(b"audio"))
    found = modes(root)
    assert {
        "2026/03/15/b.opus",
        ".recarchive/meta/2026/03/15/b.opus.json",
        ".recarchive/tmp",
        ".recarchive/lock",
    } <= set(found)
    loose = {
        path: f"{mode:04o}" for path, mode in found.items() if mode != expected_mode(root / path)
    }
    assert loose == {}
    assert stat.S_IMODE((tmp_path / "install").stat().st_mode) == 0o700
