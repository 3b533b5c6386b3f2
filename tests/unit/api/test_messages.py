"""The web pages' message catalogues: Finnish and English say the same things, and every
text the pages ask for is there."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from recarchive.api import case_pages, qa_agent_pages, qa_pages, staff_pages
from recarchive.api.i18n import LANGUAGES, Messages, catalogue

API = Path(case_pages.__file__).resolve().parent
FIELD = re.compile(r"\{([a-z_]+)\}")
#: t("key") or t('key', ...) in a template or a script.
LITERAL_KEY = re.compile(r"""\bt\(\s*["']([a-z0-9_.]+)["']""")
#: t(`prefix.${...}`) in a script: a key built from data (a kind, a status, a role).
BUILT_KEY = re.compile(r"""\b(?:t|hasMessage)\(\s*`([a-z0-9_.]+)\$\{""")
TEMPLATES = sorted(
    [*(API / "templates").glob("case*.html"), *(API / "templates").glob("qa_*.html")]
)
CASE_SCRIPTS = [API / "static" / name for name in ("pages.js", "cases.js", "case.js")]
#: The QA pages' scripts; player.js and player_notes.js speak English where the page
#: brings no messages (the search page) and the QA call page's language where it does.
QA_SCRIPTS = [
    *(API / "static").glob("qa_*.js"),
    API / "static" / "player.js",
    API / "static" / "player_notes.js",
]
#: The agent's pages and the disputes page get fewer messages than the trainer's QA pages.
AGENT_SCRIPTS = [
    API / "static" / name
    for name in ("qa_agent.js", "qa_my.js", "qa_my_evaluation.js", "qa_disputes.js")
]
SCRIPTS = CASE_SCRIPTS + sorted(QA_SCRIPTS)


def raw(language: str) -> dict[str, str]:
    texts: dict[str, str] = json.loads((API / "messages" / f"{language}.json").read_text("utf-8"))
    return texts


def test_finnish_and_english_have_the_same_keys_and_no_empty_text() -> None:
    fi, en = raw("fi"), raw("en")
    assert sorted(fi) == sorted(en)
    assert [key for key, text in {**fi, **en}.items() if not text.strip()] == []
    assert [key for key in fi if fi[key] != fi[key].strip() or en[key] != en[key].strip()] == []


def test_a_text_names_the_same_values_in_both_languages() -> None:
    fi, en = raw("fi"), raw("en")
    differ = {
        k: (fi[k], en[k]) for k in fi if set(FIELD.findall(fi[k])) != set(FIELD.findall(en[k]))
    }
    assert differ == {}


def test_the_finnish_catalogue_is_finnish() -> None:
    fi, en = raw("fi"), raw("en")
    same = [key for key in fi if fi[key] == en[key] and not key.startswith("lang.")]
    assert len(same) <= 3, same  # the dash of a missing value, "{user}, {at}"
    assert fi["custody.title"] == "Luovutusketju"
    assert fi["hold.title"] == "Pito"
    assert fi["cases.title"] == "Riita-asiat"
    assert fi["exports.title"] == "Todisteaineisto"


@pytest.mark.parametrize("path", TEMPLATES + SCRIPTS, ids=lambda path: path.name)
def test_every_text_a_page_asks_for_is_in_the_catalogues(path: Path) -> None:
    source = path.read_text("utf-8")
    found = set(LITERAL_KEY.findall(source))
    assert found or path.name == "pages.js"
    keys = {key for key in found if not key.endswith(".")}
    for language in LANGUAGES:
        assert sorted(keys - set(raw(language))) == [], language
    # t("kind." ~ kind) in a template, t(`kind.${kind}`) in a script: some text has the prefix
    for prefix in (found - keys) | set(BUILT_KEY.findall(source)):
        assert any(key.startswith(prefix) for key in raw("en")), prefix


@pytest.mark.parametrize(
    ("scripts", "prefixes"),
    [
        (CASE_SCRIPTS, case_pages._SCRIPT_PREFIXES),
        (QA_SCRIPTS, qa_pages.SCRIPT_PREFIXES),
        (AGENT_SCRIPTS, qa_agent_pages.SCRIPT_PREFIXES),
    ],
    ids=["cases", "qa", "agent"],
)
def test_the_scripts_get_every_text_they_ask_for(
    scripts: list[Path], prefixes: tuple[str, ...]
) -> None:
    """A script sees only the messages under its page's prefixes and the shared ones."""
    assert scripts
    for path in scripts:
        source = path.read_text("utf-8")
        keys = set(LITERAL_KEY.findall(source)) | set(BUILT_KEY.findall(source))
        shared = (*staff_pages.SHARED_PREFIXES, *prefixes)
        outside = [k for k in keys if not k.startswith(shared)]
        assert outside == [], path.name


def test_values_are_filled_in_and_unknown_names_are_left_alone() -> None:
    messages = Messages("fi")
    assert messages.text("case.title", reference="R-1") == "Asia R-1"
    assert messages.text("case.title") == "Asia {reference}"
    assert messages.text("case.title", reference="{user}", user="x") == "Asia {user}"
    with pytest.raises(KeyError):
        messages.text("no.such.key")
    assert catalogue("en") is catalogue("en")  # read once
