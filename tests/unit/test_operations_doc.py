"""docs/install.md, docs/operations.md and docs/examples/ say only what the code does.

- Every quarantine reason the code can give is in the troubleshooting table
  (and in docs/ingest.md's), and neither names one the code cannot give. The
  reasons are not listed in one place in the code, so they are collected from
  it: the string literal given as the reason to every call that creates a
  quarantine entry (``Problem(...)``, ``_quarantine(...)``,
  ``_retry_or_quarantine(...)``, ``queue.quarantine(...)``,
  ``QuarantineEntry(...)``), plus the ``reason`` of every media error the
  ingest pipeline quarantines (the one place a reason is passed as
  ``exc.reason``). Any other reason that is not a literal fails the test, so
  a new way of quarantining is looked at before it is trusted.
- Every ``recarchive …`` command line of the systemd units, and every ``rca …``
  line of docs/install.md, parses with the real click CLI.
- Every setting (``section.key``) and ``RECARCHIVE_*`` variable these docs
  and the examples name exists; the example configuration loads with the
  real settings model, with the example environment file.
- The metrics docs/operations.md lists are the ones recarchive/api/metrics.py
  defines.
"""

from __future__ import annotations

import ast
import functools
import importlib
import re
import shlex
from collections.abc import Iterable, Iterator
from pathlib import Path

import click
import pytest

from recarchive.cli import cli
from recarchive.cli.common import EXIT_USAGE
from recarchive.cli.staff import TOKEN_ENV
from recarchive.config import (
    CONFIG_ENV,
    SECRETS,
    Settings,
    SpoolSourceSettings,
    load_settings,
    setting_names,
)
from recarchive.errors import ConfigError
from recarchive.ingest.interfaces import INFRASTRUCTURE_FAILURES, InputRejected
from recarchive.ingest.sources import source_secret_variable
from recarchive.media.interfaces import MediaError

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "recarchive"
DOCS = REPO / "docs"
INSTALL = DOCS / "install.md"
OPERATIONS = DOCS / "operations.md"
EXAMPLES = DOCS / "examples"
UNITS = sorted((EXAMPLES / "systemd").glob("*.service"))
ENV_FILE = EXAMPLES / "systemd" / "recarchive.env"
PRODUCTION = EXAMPLES / "production.toml"
PROGRAM = "/opt/recarchive/.venv/bin/recarchive"

# --- quarantine reasons, from the code ---------------------------------------

#: Calls that create a quarantine entry, and the position of the reason among
#: their arguments (None: only as the keyword ``reason=``).
QUARANTINING_CALLS = {
    "Problem": 1,
    "_quarantine": 1,
    "_retry_or_quarantine": 1,
    "quarantine": None,
    "QuarantineEntry": None,
    "InputRejected": None,
}
#: The reasons passed on rather than written out, as (module, expression).
#: ``exc.reason`` is a media error's (checked below); the others forward a
#: parameter whose callers are scanned themselves.
FORWARDED = {
    ("recarchive/ingest/services.py", "exc.reason"),
    ("recarchive/ingest/services.py", "reason"),
    ("recarchive/ingest/queue.py", "reason"),
    ("recarchive/ingest/queue.py", "problem.reason"),
    ("recarchive/ingest/sources/spool_legs.py", "exc.reason"),
}
#: Where ``exc.reason`` is quarantined, and the exceptions it may come from there: a
#: media error's reason, or a rejected input's (:func:`rejected_reasons`, or a media
#: error's passed on by the spool's split legs).
REASON_HANDLERS = {
    "recarchive/ingest/services.py": {"MediaError", "InputRejected"},
    "recarchive/ingest/sources/spool_legs.py": {"MediaError"},
}


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _reason_argument(call: ast.Call, position: int | None) -> ast.expr | None:
    if position is not None and len(call.args) > position:
        return call.args[position]
    return next((k.value for k in call.keywords if k.arg == "reason"), None)


def reasons_in_source(source: str, module: str) -> tuple[set[str], set[tuple[str, str]], list[str]]:
    """(literal reasons, forwarded reasons as (module, expression), calls without a reason)."""
    literals: set[str] = set()
    forwarded: set[tuple[str, str]] = set()
    unreadable: list[str] = []
    for node in ast.walk(ast.parse(source, module)):
        if not isinstance(node, ast.Call):
            continue
        name = _called_name(node)
        if name not in QUARANTINING_CALLS:
            continue
        argument = _reason_argument(node, QUARANTINING_CALLS[name])
        if argument is None:
            unreadable.append(f"{module}:{node.lineno} {name}(...) without a reason")
        elif isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            literals.add(argument.value)
        else:
            forwarded.add((module, ast.unparse(argument)))
    return literals, forwarded, unreadable


@functools.cache
def package_modules() -> tuple[tuple[str, str], ...]:
    """(path from the repository's root, source) of every module of the package."""
    return tuple(
        (path.relative_to(REPO).as_posix(), path.read_text(encoding="utf-8"))
        for path in sorted(PACKAGE.rglob("*.py"))
    )


def _subclasses(cls: type[MediaError]) -> Iterator[type[MediaError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def media_reasons() -> set[str]:
    """The reasons of the media errors the pipeline quarantines (``exc.reason``).

    Not those that are infrastructure failures (ffmpeg missing or crashed: the
    item is retried), and the base class's only if something raises it itself.
    Every module that names ``MediaError`` is imported first, so that each
    subclass is defined.
    """
    for module, source in package_modules():
        if "MediaError" in source:
            importlib.import_module(module.removesuffix(".py").replace("/", "."))
    reasons = {
        cls.reason
        for cls in _subclasses(MediaError)
        if not issubclass(cls, INFRASTRUCTURE_FAILURES)
    }
    raised_as_such = any(
        isinstance(node, ast.Call) and _called_name(node) == "MediaError"
        for _, source in package_modules()
        for node in ast.walk(ast.parse(source))
    )
    return reasons | ({MediaError.reason} if raised_as_such else set())


@functools.cache
def quarantine_reasons() -> frozenset[str]:
    literals: set[str] = set()
    forwarded: set[tuple[str, str]] = set()
    unreadable: list[str] = []
    for module, source in package_modules():
        found, passed_on, missing = reasons_in_source(source, module)
        literals |= found
        forwarded |= passed_on
        unreadable += missing
    assert not unreadable, unreadable
    assert forwarded == FORWARDED, (
        "a quarantine reason is passed on in a way this test does not know: "
        f"{sorted(forwarded - FORWARDED)}; find where it comes from and teach the test"
    )
    return frozenset(literals | media_reasons() | rejected_reasons())


def rejected_reasons() -> set[str]:
    """The reasons :class:`InputRejected` subclasses carry of their own (``recording_gone``)."""
    classes, reasons = list(InputRejected.__subclasses__()), set()
    while classes:
        cls = classes.pop()
        classes += cls.__subclasses__()
        if "reason" in vars(cls):
            reasons.add(vars(cls)["reason"])
    return reasons


def documented_reasons(doc: Path, heading: str) -> set[str]:
    """The codes in the first cell of each row of the table under ``heading``."""
    text = doc.read_text(encoding="utf-8")
    assert heading in text, f"{doc.name} lost its section {heading!r}"
    section = text.split(heading, 1)[1]
    section = re.split(r"\n#{1,3} ", section, maxsplit=1)[0]
    found: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            found.update(re.findall(r"`([a-z_0-9]+)`", line.split("|")[1]))
    return found


def test_the_reasons_are_collected_from_every_kind_of_call() -> None:
    reasons = quarantine_reasons()
    # one of each way in: a media error, a problem found by a source, the
    # pipeline's own, a redelivery
    assert {"zero_byte", "cdr_without_recording", "too_large", "conflicting_redelivery"} <= reasons
    assert "media_tool_failed" not in reasons  # retried, never quarantined
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", reason) for reason in reasons)


def test_a_new_reason_would_be_noticed() -> None:
    source = (
        "Problem(ref, 'brand_new', detail)\n"
        "self._quarantine(item, 'another_one', detail, None)\n"
        "queue.quarantine(session, item, reason=why, detail=d, kept_at=None)\n"
        "Problem(ref)\n"
    )
    literals, forwarded, unreadable = reasons_in_source(source, "m.py")
    assert literals == {"brand_new", "another_one"}
    assert forwarded == {("m.py", "why")}
    assert unreadable == ["m.py:4 Problem(...) without a reason"]


@pytest.mark.parametrize(("module", "allowed"), sorted(REASON_HANDLERS.items()))
def test_exc_reason_is_always_a_media_errors_reason(module: str, allowed: set[str]) -> None:
    tree = ast.parse((REPO / module).read_text(encoding="utf-8"))
    handlers = 0
    for handler in ast.walk(tree):
        if not isinstance(handler, ast.ExceptHandler) or handler.name is None:
            continue
        uses = [
            node
            for node in ast.walk(handler)
            if isinstance(node, ast.Call)
            and any(
                ast.unparse(arg) == f"{handler.name}.reason"
                for arg in [*node.args, *(k.value for k in node.keywords)]
            )
        ]
        if uses:
            handlers += 1
            assert handler.type is not None
            assert ast.unparse(handler.type) in allowed
    assert handlers >= 1


#: Reasons earlier versions gave, whose entries may still be open in a catalogue: the
#: docs keep explaining them, no code gives them now.
RETIRED_REASONS = frozenset({"recording_without_contact_record"})


@pytest.mark.parametrize(
    ("doc", "heading"),
    [(OPERATIONS, "### Quarantine reasons"), (DOCS / "ingest.md", "## Quarantine reasons")],
)
def test_the_tables_list_exactly_the_reasons_of_the_code(doc: Path, heading: str) -> None:
    code, documented = quarantine_reasons(), documented_reasons(doc, heading)
    assert not code - documented, f"{doc.name} does not explain: {sorted(code - documented)}"
    assert not code & RETIRED_REASONS, "a retired reason is given again: move it back"
    unknown = documented - code - RETIRED_REASONS
    assert not unknown, f"{doc.name} names reasons no code gives: {unknown}"


# --- the systemd units and the commands of install.md --------------------------


def directives(unit: Path) -> dict[str, list[str]]:
    """``Key=value`` lines of a unit file, every value of a key in order."""
    found: dict[str, list[str]] = {}
    for raw in unit.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        found.setdefault(key.strip(), []).append(value.strip())
    return found


def _remaining(ctx: click.Context) -> list[str]:
    """What a group's context left for its subcommand (click 8.1 and 8.2+ alike)."""
    protected = ctx.__dict__.get("_protected_args", ctx.__dict__.get("protected_args", []))
    return [*protected, *ctx.args]


def parse_command_line(args: list[str]) -> click.Context:
    """The context of the command ``args`` names, parsed as the CLI would; UsageError if wrong."""
    ctx = cli.make_context("recarchive", list(args))
    while isinstance(ctx.command, click.Group):
        rest = _remaining(ctx)
        if not rest:
            raise click.UsageError("no command given", ctx=ctx)
        name, command, rest = ctx.command.resolve_command(ctx, rest)
        assert name is not None
        assert command is not None
        ctx = command.make_context(name, rest, parent=ctx)
    return ctx


def command_path(ctx: click.Context) -> tuple[str, ...]:
    return tuple(ctx.command_path.split()[1:])


def exec_start(unit: Path) -> list[str]:
    [line] = directives(unit)["ExecStart"]
    argv = shlex.split(line.lstrip("-@+!:"))
    assert argv[0] == PROGRAM, f"{unit.name} runs {argv[0]}, not {PROGRAM}"
    return argv[1:]


def test_there_is_a_unit_for_each_service() -> None:
    assert [unit.name for unit in UNITS] == [
        "recarchive-ingest.service",
        "recarchive-scheduler.service",
        "recarchive-serve.service",
    ]


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_every_unit_command_line_parses_with_the_cli(unit: Path) -> None:
    ctx = parse_command_line(exec_start(unit))
    service = unit.name.removeprefix("recarchive-").removesuffix(".service")
    assert command_path(ctx) == (service,)
    assert not ctx.params.get("once"), "a unit runs the service for good, not --once"


def test_a_renamed_option_or_command_fails_the_parse() -> None:
    for wrong in (
        ["serve", "--listen", "127.0.0.1:8080"],
        ["ingest", "--workers", "0"],
        ["scheduler", "--nightly"],
        ["schedule"],
        ["--conf", "x.toml", "serve"],
    ):
        with pytest.raises(click.UsageError):
            parse_command_line(wrong)
    assert parse_command_line(["--config", "x.toml", "serve", "--workers", "2"]).params == {
        "bind": None,
        "workers": 2,
    }


def shell_commands(doc: Path, program: str) -> Iterator[list[str]]:
    """The arguments of every ``program …`` line in the doc's ``sh`` blocks."""
    text = doc.read_text(encoding="utf-8")
    for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] != [program]:
                continue
            for stop in (">", "|", "&&", ";"):
                if stop in words:
                    words = words[: words.index(stop)]
            yield words[1:]


def test_every_rca_command_of_install_md_parses_with_the_cli() -> None:
    commands = list(shell_commands(INSTALL, "rca"))
    assert len(commands) >= 4
    for args in commands:
        parse_command_line(args)


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_units_stop_and_restart_as_install_md_says(unit: Path) -> None:
    found = directives(unit)
    assert found["KillSignal"] == ["SIGTERM"]
    # SIGTERM to recarchive only: an ffmpeg stopped by SIGTERM would get its
    # recording quarantined as truncated_audio (docs/install.md).
    assert found["KillMode"] == ["mixed"]
    assert len(found["TimeoutStopSec"]) == 1
    assert found["Restart"] == ["on-failure"]
    assert str(EXIT_USAGE) in " ".join(found["RestartPreventExitStatus"]).split()
    assert found["User"] == ["recarchive"]
    assert found["EnvironmentFile"] == ["/etc/recarchive/recarchive.env"]


def production_settings() -> Settings:
    return load_settings(PRODUCTION, env=environment_file())


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_units_may_write_where_the_configuration_says(unit: Path) -> None:
    settings = production_settings()
    found = directives(unit)
    writable = {path.lstrip("-") for value in found["ReadWritePaths"] for path in value.split()}
    data_dir = str(settings.general.data_dir)
    assert found["WorkingDirectory"] == [data_dir]
    needed = {data_dir, str(settings.work_dir)}
    if unit.name == "recarchive-ingest.service":
        for source in settings.sources:
            if isinstance(source, SpoolSourceSettings):
                needed.add(str(source.path))
                if source.after_archive == "move" and source.done_dir is not None:
                    needed.add(str(source.done_dir))
    for path in needed:
        assert any(Path(path).is_relative_to(w) for w in writable), (unit.name, path)
    assert found["ProtectSystem"] == ["strict"]


def test_install_md_names_every_example_file() -> None:
    text = INSTALL.read_text(encoding="utf-8")
    for example in [PRODUCTION, *sorted((EXAMPLES / "systemd").iterdir())]:
        assert example.relative_to(REPO).as_posix() in text, example.name


# --- settings and variables ----------------------------------------------------


def environment_file() -> dict[str, str]:
    env: dict[str, str] = {}
    for raw in ENV_FILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = value
    return env


def test_the_production_example_loads_with_the_environment_file() -> None:
    env = environment_file()
    assert env[CONFIG_ENV] == "/etc/recarchive/recarchive.toml"
    settings = production_settings()
    assert settings.is_production
    assert settings.catalogue_url.startswith("postgresql+psycopg://")
    assert settings.storage.backend == "s3"
    assert settings.encryption.enabled


def _foreign_source_variable(variable: str) -> bool:
    """``RECARCHIVE_SOURCE_<NAME>_<SUFFIX>[_FILE]`` for a source of the example and a
    suffix the sources read (collected from their ``source_secret`` calls)."""
    suffixes = set()
    for _, source in package_modules():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and _called_name(node) == "source_secret":
                argument = node.args[2]
                assert isinstance(argument, ast.Constant)
                suffixes.add(str(argument.value))
    names = [source.name for source in production_settings().sources]
    known = {source_secret_variable(n, s) for n in names for s in suffixes}
    return variable.removesuffix("_FILE") in known


def variable_is_known(variable: str) -> bool:
    secrets = {spec.env for spec in SECRETS.values()}
    if variable in {CONFIG_ENV, TOKEN_ENV} or variable.removesuffix("_FILE") in secrets:
        return True
    if variable.startswith("RECARCHIVE_SOURCE_"):
        return _foreign_source_variable(variable)
    if variable.startswith(("RECARCHIVE_CONFIG", "RECARCHIVE_TEST_", "RECARCHIVE_CEPH_")):
        return False  # the scripts' and tests' own: not for an operator
    try:
        load_settings(None, env={variable: "x"})
    except ConfigError as exc:
        return "names no setting" not in exc.message
    return True


def variables_named(texts: Iterable[str]) -> set[str]:
    """``RECARCHIVE_*`` names, without the templates (``RECARCHIVE_<SECTION>_<KEY>``)."""
    found: set[str] = set()
    for text in texts:
        found.update(v for v in re.findall(r"RECARCHIVE_[A-Z0-9_]*", text) if not v.endswith("_"))
    return found


def new_texts() -> dict[str, str]:
    paths = [INSTALL, OPERATIONS, PRODUCTION, *sorted((EXAMPLES / "systemd").iterdir())]
    return {path.relative_to(REPO).as_posix(): path.read_text(encoding="utf-8") for path in paths}


def test_every_variable_named_exists() -> None:
    named = variables_named(new_texts().values())
    assert {CONFIG_ENV, "RECARCHIVE_AUDIT_KEY", "RECARCHIVE_SOURCE_PBX_CDR_PASSWORD_FILE"} <= named
    unknown = sorted(v for v in named if not variable_is_known(v))
    assert not unknown, f"no such variable: {unknown}"


def test_an_unknown_variable_is_noticed() -> None:
    for wrong in (
        "RECARCHIVE_CATALOGUE_URI",
        "RECARCHIVE_OIDC_ROLES",  # a table: set in the file only
        "RECARCHIVE_SOURCE_PBX_PASSWORD",
        "RECARCHIVE_SOURCE_NOSUCH_TOKEN",
    ):
        assert not variable_is_known(wrong), wrong
    assert variable_is_known("RECARCHIVE_API_WORKERS")


def _setting_pattern() -> re.Pattern[str]:
    sections = "|".join(sorted(setting_names(), key=len, reverse=True))
    # not inside a host name, a path, a file name or a call (s3.example.internal,
    # docs/api.md, secrets.token_urlsafe(48))
    return re.compile(rf"(?<![\w./:@-])({sections})\.([a-z_][a-z0-9_]*)(?![\w(-])(?!\.\w)")


def code_of(markdown: str) -> str:
    """The code spans and code blocks of a Markdown text, where settings are named."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", markdown, re.DOTALL)
    prose = re.sub(r"```[a-z]*\n.*?```", "", markdown, flags=re.DOTALL)
    return "\n".join([*blocks, *re.findall(r"``?(.+?)``?", prose)])


def settings_named(text: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in _setting_pattern().finditer(text)]


def test_every_setting_named_exists() -> None:
    known = setting_names()
    counted = 0
    for name, text in new_texts().items():
        named = settings_named(code_of(text) if name.endswith(".md") else text)
        counted += len(named)
        wrong = sorted({f"{s}.{k}" for s, k in named if k not in known[s]})
        assert not wrong, f"{name} names settings that do not exist: {wrong}"
    assert counted > 40


def test_a_wrong_setting_is_noticed_and_hosts_are_not_settings() -> None:
    named = settings_named(
        "`catalogue.pool` at https://s3.example.internal, docs/api.md, secrets.token_hex(8)"
    )
    assert named == [("catalogue", "pool")]


def test_every_toml_snippet_of_install_md_loads(tmp_path: Path) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", INSTALL.read_text(encoding="utf-8"), re.DOTALL)
    assert len(blocks) >= 2
    for number, block in enumerate(blocks):
        path = tmp_path / f"snippet{number}.toml"
        path.write_text(block, encoding="utf-8")
        load_settings(path, env={})


# --- metrics ---------------------------------------------------------------------


def test_the_metrics_documented_are_the_metrics_served() -> None:
    source = (PACKAGE / "api" / "metrics.py").read_text(encoding="utf-8")
    served = {
        node.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.fullmatch(r"recarchive_[a-z_]+", node.value)
    }
    text = OPERATIONS.read_text(encoding="utf-8").split("### `/metrics`", 1)[1]
    section = text.split("\n### ", 1)[0]
    documented = {
        re.sub(r"_total$", "", name) for name in re.findall(r"`(recarchive_[a-z_]+)`", section)
    }
    assert served == documented
