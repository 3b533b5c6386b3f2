"""The paths of an installation that must be private: what the settings name, and no more."""

from __future__ import annotations

from pathlib import Path

from recarchive.config import Settings, SpoolSourceSettings
from recarchive.installation import installation_paths


class TestInstallationPaths:
    def test_the_embedded_default(self, tmp_path: Path) -> None:
        data = tmp_path / "var"
        (data / "secrets").mkdir(parents=True)
        (data / "secrets" / "token_pepper").write_bytes(b"x")
        settings = Settings.model_validate({"general": {"data_dir": str(data)}})
        paths = installation_paths(settings, data / "recarchive.db")
        internal = data / "objects" / ".recarchive"
        for expected in (
            data,
            data / "recarchive.db",
            data / "recarchive.db-wal",
            data / "recarchive.db-shm",
            data / "work",
            data / "secrets",
            data / "secrets" / "token_pepper",
            data / "objects",
            internal / "tmp",
            internal / "meta",
        ):
            assert expected in paths
        assert len(paths) == len(set(paths))

    def test_postgres_s3_and_a_spool_moving_recordings(self, tmp_path: Path) -> None:
        spool = SpoolSourceSettings(
            kind="spool", name="pbx", path=tmp_path / "spool", after_archive="move",
            done_dir=tmp_path / "done",
        )  # fmt: skip
        kept = SpoolSourceSettings(kind="spool", name="kept", path=tmp_path / "other")
        settings = Settings.model_validate(
            {
                "general": {"data_dir": str(tmp_path / "var")},
                "catalogue": {"url": "postgresql+psycopg://u@db/recarchive"},
                "storage": {"backend": "s3"},
                "sources": [spool.model_dump(), kept.model_dump()],
            }
        )
        paths = installation_paths(settings, None)
        assert tmp_path / "done" in paths
        assert not any(p.name.startswith("recarchive.db") for p in paths)
        assert not any(p.name == "objects" for p in paths)
