"""Settings: the example file, precedence, errors that name the setting, secrets."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from recarchive.config import (
    SECRETS,
    HttpSourceSettings,
    ReasonRule,
    RetentionRule,
    S3DropSourceSettings,
    Settings,
    SpoolSourceSettings,
    environment_variable,
    load_settings,
    setting_names,
)
from recarchive.errors import ConfigError, SecretMissing

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recarchive.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _keys_of(model: type[BaseModel]) -> list[str]:
    return sorted(model.model_fields)


class TestExampleFile:
    example = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))

    def test_example_lists_exactly_the_settings(self) -> None:
        documented = {s: sorted(t) for s, t in self.example.items() if s != "sources"}
        assert documented == {s: sorted(k) for s, k in setting_names().items()}

    def test_example_shows_every_source_kind_with_every_key(self) -> None:
        shown = {table["kind"]: sorted(table) for table in self.example["sources"]}
        kinds = {
            "spool": SpoolSourceSettings,
            "http": HttpSourceSettings,
            "s3drop": S3DropSourceSettings,
        }
        assert shown == {kind: _keys_of(model) for kind, model in kinds.items()}

    def test_example_rule_has_every_key(self) -> None:
        for rule in self.example["reasons"]["rules"]:
            assert sorted(rule) == _keys_of(ReasonRule)
        for rule in self.example["retention"]["rules"]:
            assert sorted(rule) == _keys_of(RetentionRule)

    def test_every_setting_has_a_comment_above_it(self) -> None:
        lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            if "=" in line and not line.startswith(("#", "[")):
                assert lines[number - 1].startswith("#"), f"no comment above {line!r}"

    def test_example_values_are_the_defaults(self) -> None:
        loaded = load_settings(EXAMPLE, env={}).model_dump(exclude={"sources"})
        defaults = Settings().model_dump(exclude={"sources"})
        for section in ("reasons", "retention"):
            loaded[section].pop("rules")
            defaults[section].pop("rules")
        assert loaded == defaults

    def test_every_secret_is_documented(self) -> None:
        text = EXAMPLE.read_text(encoding="utf-8")
        for spec in SECRETS.values():
            assert spec.env in text
            assert f"{spec.env}_FILE" in text


class TestPrecedence:
    def test_defaults_give_the_embedded_installation(self) -> None:
        settings = load_settings(env={})
        assert settings.catalogue_url == "sqlite:///var/recarchive.db"
        assert settings.storage_root == Path("var/objects")
        assert settings.storage.backend == "filesystem"

    def test_file_then_environment(self, tmp_path: Path) -> None:
        path = write(tmp_path, '[s3]\nbucket = "from-file"\nmax_attempts = 3\n')
        settings = load_settings(path, env={"RECARCHIVE_S3_MAX_ATTEMPTS": "7"})
        assert settings.s3.bucket == "from-file"
        assert settings.s3.max_attempts == 7

    def test_config_file_from_environment(self, tmp_path: Path) -> None:
        path = write(tmp_path, '[general]\ndata_dir = "/srv/recarchive"\n')
        settings = load_settings(env={"RECARCHIVE_CONFIG": str(path)})
        assert settings.catalogue_url == "sqlite:////srv/recarchive/recarchive.db"

    def test_environment_names_are_derived_from_section_and_key(self) -> None:
        assert environment_variable("catalogue", "url") == "RECARCHIVE_CATALOGUE_URL"


class TestErrors:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("[catalogue]\nurl = 5\n", "setting catalogue.url (from "),
            ("[catalogue]\npool_size = 'many'\n", "catalogue.pool_size"),
            ("[catalogue]\nulr = 'x'\n", "unknown setting catalogue.ulr"),
            ("[catalog]\nurl = 'x'\n", "unknown section [catalog]"),
            ("[storage]\nbackend = 'ftp'\n", "setting storage.backend"),
            ("[general]\ntimezone = 'Mars/Olympus'\n", "unknown time zone"),
            ("[catalogue]\nurl = 'mysql://x'\n", "sqlite:/// or postgresql"),
            ("[s3]\nendpoint_url = 'ftp://x'\n", "s3.endpoint_url"),
            ("[s3]\nbucket = 'Bad_Bucket'\n", "s3.bucket"),
            ("catalogue = 3\n", "must be a table"),
            ("[general\n", "not valid TOML"),
        ],
    )
    def test_bad_file_names_the_setting(self, tmp_path: Path, text: str, expected: str) -> None:
        with pytest.raises(ConfigError) as caught:
            load_settings(write(tmp_path, text), env={})
        message = str(caught.value)
        assert expected in message
        assert "\n" not in message

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="does not exist"):
            load_settings(tmp_path / "nope.toml", env={})

    def test_bad_environment_value_names_the_variable(self) -> None:
        with pytest.raises(
            ConfigError, match=r"s3\.max_attempts \(from RECARCHIVE_S3_MAX_ATTEMPTS\)"
        ):
            load_settings(env={"RECARCHIVE_S3_MAX_ATTEMPTS": "0"})

    def test_unknown_environment_variable_is_refused(self) -> None:
        with pytest.raises(ConfigError, match="RECARCHIVE_CATALOGUE_ULR names no setting"):
            load_settings(env={"RECARCHIVE_CATALOGUE_ULR": "sqlite://"})

    def test_list_settings_from_environment_are_comma_separated(self) -> None:
        settings = load_settings(env={"RECARCHIVE_AUDIO_ALLOWED_CODECS": "pcm_s16le, opus"})
        assert settings.audio.allowed_codecs == ["pcm_s16le", "opus"]

    def test_reason_rules_must_use_known_codes(self, tmp_path: Path) -> None:
        path = write(
            tmp_path,
            '[[reasons.rules]]\ncode = "gossip"\nfield = "queue"\npattern = "1"\n',
        )
        with pytest.raises(ConfigError, match="'gossip', which is not in codes"):
            load_settings(path, env={})

    def test_bad_rule_pattern(self, tmp_path: Path) -> None:
        path = write(
            tmp_path,
            '[[reasons.rules]]\ncode = "billing"\nfield = "queue"\npattern = "(("\n',
        )
        with pytest.raises(ConfigError, match=r"reasons\.rules\.0\.pattern"):
            load_settings(path, env={})

    def test_source_needs_its_kind_keys(self, tmp_path: Path) -> None:
        path = write(tmp_path, '[[sources]]\nkind = "spool"\nname = "pbx"\n')
        with pytest.raises(ConfigError, match=r"setting sources\.0\.spool\.path .*Field required"):
            load_settings(path, env={})

    def test_retention_rule_names_are_unique(self, tmp_path: Path) -> None:
        rule = '[[retention.rules]]\nname = "x"\nfield = "queue"\nvalues = ["601"]\ndays = 9\n'
        with pytest.raises(ConfigError, match="retention rule names must be unique"):
            load_settings(write(tmp_path, rule * 2), env={})

    def test_source_names_are_unique(self, tmp_path: Path) -> None:
        table = '[[sources]]\nkind = "spool"\nname = "pbx"\npath = "/x"\n'
        with pytest.raises(ConfigError, match="source names must be unique: pbx"):
            load_settings(write(tmp_path, table * 2), env={})

    def test_move_needs_done_dir(self, tmp_path: Path) -> None:
        path = write(
            tmp_path,
            '[[sources]]\nkind = "spool"\nname = "p"\npath = "/x"\nafter_archive = "move"\n',
        )
        with pytest.raises(ConfigError, match="needs done_dir"):
            load_settings(path, env={})

    def test_cdr_url_names_a_mysql_database_without_its_password(self, tmp_path: Path) -> None:
        spool = '[[sources]]\nkind = "spool"\nname = "pbx"\npath = "/x"\n'
        ok = load_settings(
            write(tmp_path, spool + 'cdr_url = "mysql+pymysql://ro@127.0.0.1/asteriskcdrdb"\n'),
            env={},
        )
        assert ok.sources[0].cdr_url == "mysql+pymysql://ro@127.0.0.1/asteriskcdrdb"  # type: ignore[union-attr]
        refused = {
            "mysql+pymysql://ro:hunter2-secret@127.0.0.1/asteriskcdrdb": "holds a password",
            "postgresql://ro@127.0.0.1/asteriskcdrdb": "must be a mysql\\+pymysql:// URL",
            "mysql+pymysql://ro@127.0.0.1/": "names no database",
        }
        for url, message in refused.items():
            path = write(tmp_path, spool + f'cdr_url = "{url}"\n')
            with pytest.raises(ConfigError, match=message) as caught:
                load_settings(path, env={})
            assert "hunter2-secret" not in caught.value.message

    def test_cdr_comes_from_a_file_or_a_database_not_both(self, tmp_path: Path) -> None:
        path = write(
            tmp_path,
            '[[sources]]\nkind = "spool"\nname = "pbx"\npath = "/x"\ncdr_path = "/m.csv"\n'
            'cdr_url = "mysql+pymysql://ro@127.0.0.1/asteriskcdrdb"\n',
        )
        with pytest.raises(ConfigError, match="cdr_path and cdr_url are both set"):
            load_settings(path, env={})

    def test_script_and_test_variables_are_not_settings(self) -> None:
        load_settings(env={"RECARCHIVE_TEST_POSTGRES_URL": "x", "RECARCHIVE_CEPH_PORT": "1"})


class TestSecrets:
    def test_secret_from_environment_is_not_part_of_the_dump(self) -> None:
        settings = load_settings(env={"RECARCHIVE_S3_SECRET_ACCESS_KEY": "s3cr3t-value"})
        assert settings.secret("s3_secret_access_key") == "s3cr3t-value"
        assert "s3cr3t-value" not in settings.model_dump_json()
        assert "s3cr3t-value" not in repr(settings)

    def test_secret_from_file_named_in_environment(self, tmp_path: Path) -> None:
        secret = tmp_path / "key"
        secret.write_text("from-a-file\n")
        settings = load_settings(env={"RECARCHIVE_S3_ACCESS_KEY_ID_FILE": str(secret)})
        assert settings.secret("s3_access_key_id") == "from-a-file"

    def test_secret_from_file_named_in_toml(self, tmp_path: Path) -> None:
        secret = tmp_path / "key"
        secret.write_text("k" * 40)
        path = write(tmp_path, f'[secrets]\nidentity_hash_key_file = "{secret}"\n')
        settings = load_settings(path, env={})
        assert settings.secret("identity_hash_key") == "k" * 40

    def test_unreadable_secret_file(self, tmp_path: Path) -> None:
        settings = load_settings(env={"RECARCHIVE_TOKEN_PEPPER_FILE": str(tmp_path / "none")})
        with pytest.raises(ConfigError, match="RECARCHIVE_TOKEN_PEPPER_FILE: cannot read"):
            settings.secret("token_pepper")

    def test_optional_secret_may_be_unset(self) -> None:
        assert load_settings(env={}).secret("s3_access_key_id", required=False) is None

    def test_missing_secret_in_production_names_the_ways_to_set_it(self) -> None:
        settings = load_settings(env={"RECARCHIVE_GENERAL_ENVIRONMENT": "production"})
        with pytest.raises(SecretMissing) as caught:
            settings.secret("identity_hash_key")
        assert "RECARCHIVE_IDENTITY_HASH_KEY" in str(caught.value)
        assert "secrets.identity_hash_key_file" in str(caught.value)

    @pytest.mark.parametrize("value", ["changeme", "short-key"])
    def test_placeholder_refused_in_production(self, value: str) -> None:
        settings = load_settings(
            env={"RECARCHIVE_GENERAL_ENVIRONMENT": "production", "RECARCHIVE_TOKEN_PEPPER": value}
        )
        with pytest.raises(ConfigError, match="placeholder or shorter"):
            settings.secret("token_pepper")

    def test_development_generates_a_private_stable_secret(self, tmp_path: Path) -> None:
        env = {"RECARCHIVE_GENERAL_DATA_DIR": str(tmp_path)}
        first = load_settings(env=env).secret("identity_hash_key")
        second = load_settings(env=env).secret("identity_hash_key")
        assert first == second
        assert first is not None
        assert len(first) >= 32
        mode = stat.S_IMODE(os.stat(tmp_path / "secrets" / "identity_hash_key").st_mode)
        assert mode == 0o600
