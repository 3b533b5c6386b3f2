"""Scorecard forms and scores: hand-computed examples, strict validation, and properties.

The example form is docs/examples/qa-form.json (what docs/qa.md walks
through): opening (greeting w1, identity w2 critical "form"), handling
(understood scale 1..5 w3, accurate w3 critical "section", hold w1),
closing (summary w1, remarks text).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recarchive.qa.scoring import (
    MAX_QUESTIONS,
    AnswerError,
    FormDefinition,
    FormError,
    check_answers,
    parse_definition,
    score,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "qa-form.json"


@pytest.fixture(scope="module")
def form() -> FormDefinition:
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data.pop("name")
    return parse_definition(data)


def answers(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "greeting": "yes",
        "identity": "yes",
        "understood": 4,
        "accurate": "yes",
        "hold": "na",
        "summary": "no",
        "remarks": "Clear and friendly.",
    }
    return {**base, **changes}


def scored(form: FormDefinition, given: dict[str, Any]) -> Any:
    return score(form, check_answers(form, given))


def test_the_documented_example(form: FormDefinition) -> None:
    # opening (1 + 2) / 3 = 100; handling (3 * 0.75 + 3) / 6 (hold n/a) = 87.5;
    # closing 0 / 1 = 0; total (3 * 1 + 6 * 0.875 + 1 * 0) / 10 = 82.5
    result = scored(form, answers())
    assert result.sections == {"opening": 100.0, "handling": 87.5, "closing": 0.0}
    assert result.total == 82.5
    assert result.critical_failed == ()


def test_a_section_critical_zeroes_its_section_only(form: FormDefinition) -> None:
    # handling zeroed; total (3 * 1 + 6 * 0 + 1 * 0) / 10 = 30
    result = scored(form, answers(accurate="no"))
    assert result.sections == {"opening": 100.0, "handling": 0.0, "closing": 0.0}
    assert result.total == 30.0
    assert result.critical_failed == ("accurate",)


def test_a_form_critical_zeroes_the_whole_score(form: FormDefinition) -> None:
    result = scored(form, answers(identity="no", summary="yes"))
    assert result.sections == {"opening": 0.0, "handling": 87.5, "closing": 100.0}
    assert result.total == 0.0
    assert result.critical_failed == ("identity",)


def test_a_section_of_only_na_answers_is_left_out(form: FormDefinition) -> None:
    # understood at the scale's minimum counts 0 (it is not critical);
    # handling (0 + 3 + 1) / 7 = 57.14; closing all n/a; total (3 + 4) / 10 = 70
    result = scored(form, answers(understood=1, hold="yes", summary="na"))
    assert result.sections == {"opening": 100.0, "handling": 57.14, "closing": None}
    assert result.total == 70.0


def test_every_answer_na_has_no_score() -> None:
    form = parse_definition(
        {"sections": [{"id": "s", "title": "S", "questions": [_q("a"), _q("b", weight=2)]}]}
    )
    result = scored(form, {"a": "na", "b": "na"})
    assert (result.total, result.sections) == (None, {"s": None})


def test_a_critical_scale_fails_at_its_minimum() -> None:
    scale = _q("sc", kind="scale", min=0, max=10, critical="section", weight=2)
    form = parse_definition(
        {
            "sections": [
                {"id": "a", "title": "A", "questions": [scale, _q("y")]},
                {"id": "b", "title": "B", "questions": [_q("z")]},
            ]
        }
    )
    assert scored(form, {"sc": 0, "y": "yes", "z": "yes"}).sections["a"] == 0.0
    # (2 * 0.1 + 1) / 3 = 40; total (3 * 0.4 + 1) / 4 = 55
    result = scored(form, {"sc": 1, "y": "yes", "z": "yes"})
    assert (result.sections["a"], result.total) == (40.0, 55.0)


def test_a_scale_may_be_na_only_when_it_says_so() -> None:
    form = parse_definition(
        {
            "sections": [
                {
                    "id": "s",
                    "title": "S",
                    "questions": [
                        _q("a", kind="scale", min=1, max=3, allow_na=True),
                        _q("b", kind="scale", min=1, max=3),
                    ],
                }
            ]
        }
    )
    assert scored(form, {"a": "na", "b": 2}).total == 50.0
    with pytest.raises(AnswerError, match="'b'"):
        check_answers(form, {"a": 1, "b": "na"})


def _q(qid: str, **fields: Any) -> dict[str, Any]:
    return {"id": qid, "text": f"question {qid}", "kind": "yes_no_na", **fields}


def _form(*questions: dict[str, Any]) -> dict[str, Any]:
    return {"sections": [{"id": "s", "title": "S", "questions": list(questions)}]}


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (_form(_q("a"), _q("a")), "'a' is used twice"),
        (_form(_q("a", weight=-1)), "weight"),
        (_form(_q("a", weight=0)), "at least one scored question"),
        (_form(_q("t", kind="text")), "at least one scored question"),
        (_form(_q("a"), _q("s", kind="scale", min=3, max=3)), "question 's'"),
        (_form(_q("a"), _q("s", kind="scale", min=0)), "question 's': a scale needs min and max"),
        (_form(_q("a"), _q("s", kind="scale", min=0, max=1000)), "question 's'"),
        (_form(_q("a", min=1, max=2)), "question 'a'"),
        (_form(_q("a", critical="section", weight=0), _q("b")), "question 'a'"),
        (_form(_q("a"), _q("t", kind="text", critical="form")), "question 't'"),
        (_form(_q("a", critical="everything")), "critical"),
        (_form(_q("A B")), "id"),
        (_form(_q("a", kind="stars")), "kind"),
        (_form(_q("a", colour="red")), "colour"),
        ({"sections": []}, "sections"),
        ({"sections": [{"id": "s", "title": "S", "questions": []}]}, "questions"),
        ({"sections": "all"}, "sections"),
        ([], "valid dictionary"),
    ],
)
def test_a_bad_form_is_refused_naming_the_problem(data: Any, named: str) -> None:
    with pytest.raises(FormError, match=named):
        parse_definition(data)


def test_a_huge_form_is_refused() -> None:
    many = [_q(f"q{n}") for n in range(MAX_QUESTIONS + 1)]
    with pytest.raises(FormError, match="at most"):
        parse_definition(_form(*many))
    sections = [
        {"id": f"s{n}", "title": "S", "questions": [_q(f"q{n}-{m}") for m in range(5)]}
        for n in range(41)
    ]
    with pytest.raises(FormError, match=f"at most {MAX_QUESTIONS} questions"):
        parse_definition({"sections": sections})
    with pytest.raises(FormError):
        parse_definition(_form({**_q("a"), "text": "x" * 100_000}))


@pytest.mark.parametrize(
    ("given", "named"),
    [
        (answers(nosuch="yes"), "'nosuch' is not in this form"),
        ({k: v for k, v in answers().items() if k != "identity"}, "'identity' needs an answer"),
        (answers(understood=6), "'understood' takes a whole number 1 to 5"),
        (answers(understood=0), "'understood'"),
        (answers(understood=2.5), "'understood'"),
        (answers(understood=True), "'understood'"),
        (answers(understood="na"), "'understood'"),
        (answers(greeting="maybe"), "'greeting' takes yes, no or na"),
        (answers(greeting=1), "'greeting'"),
        (answers(remarks="x" * 5000), "'remarks'"),
        (answers(remarks=["a"]), "'remarks'"),
        (["yes"], "an object"),
    ],
)
def test_answers_that_do_not_fit_are_refused(form: FormDefinition, given: Any, named: str) -> None:
    with pytest.raises(AnswerError, match=named):
        check_answers(form, given)


def test_text_answers_are_optional_and_never_scored(form: FormDefinition) -> None:
    without = {k: v for k, v in answers().items() if k != "remarks"}
    assert scored(form, without) == scored(form, answers(remarks="anything at all"))


# --- properties ---------------------------------------------------------------

question = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["yes_no_na", "scale", "text"]),
        "weight": st.integers(0, 5),
        "critical": st.sampled_from([None, None, "section", "form"]),
        "low": st.integers(-5, 5),
        "span": st.integers(1, 10),
    }
)


def _definition(shape: list[list[dict[str, Any]]]) -> dict[str, Any]:
    sections = []
    for s, questions in enumerate(shape):
        built = []
        for n, q in enumerate(questions):
            data = _q(f"q{s}-{n}", kind=q["kind"])
            if q["kind"] == "text":
                data["weight"] = 0
            else:
                data["weight"] = q["weight"] or (1 if q["critical"] else 0)
                if q["critical"]:
                    data["critical"] = q["critical"]
            if q["kind"] == "scale":
                data.update(min=q["low"], max=q["low"] + q["span"], allow_na=True)
            built.append(data)
        sections.append({"id": f"s{s}", "title": "S", "questions": built})
    sections[0]["questions"].append(_q("anchor", weight=1))
    return {"sections": sections}


@st.composite
def form_and_answers(draw: st.DrawFn) -> tuple[FormDefinition, dict[str, Any]]:
    shape = draw(st.lists(st.lists(question, min_size=1, max_size=5), min_size=1, max_size=4))
    form = parse_definition(_definition(shape))
    given: dict[str, Any] = {}
    for q in form.questions().values():
        if q.kind == "yes_no_na":
            given[q.id] = draw(st.sampled_from(["yes", "no", "na"]))
        elif q.kind == "scale":
            assert q.min is not None
            assert q.max is not None
            given[q.id] = draw(st.one_of(st.just("na"), st.integers(q.min, q.max)))
        elif draw(st.booleans()):
            given[q.id] = draw(st.text(max_size=20))
    return form, given


def _failed(form: FormDefinition, given: dict[str, Any], level: str) -> list[str]:
    failed = []
    for section in form.sections:
        for q in section.questions:
            answer = given.get(q.id)
            if q.critical != level and not (level == "section" and q.critical == "form"):
                continue
            if answer == "no" or (q.kind == "scale" and answer == q.min):
                failed.append(section.id)
    return failed


@settings(max_examples=300, deadline=None)
@given(form_and_answers())
def test_scores_stay_within_0_to_100_and_criticals_zero_what_they_say(
    drawn: tuple[FormDefinition, dict[str, Any]],
) -> None:
    form, given = drawn
    result = scored(form, given)
    values = [v for v in result.sections.values() if v is not None]
    assert all(0 <= v <= 100 for v in values)
    assert (result.total is None) == (not values)
    if result.total is not None:
        assert 0 <= result.total <= 100
        assert min(values) - 0.01 <= result.total <= max(values) + 0.01 or _failed(
            form, given, "form"
        )
    for section_id in _failed(form, given, "section"):
        assert result.sections[section_id] == 0.0
    if _failed(form, given, "form"):
        assert result.total == 0.0
