"""A scorecard form's definition, its strict validation, and the score of a set of answers.

The rules (docs/qa.md, "How a score is computed"):

- a yes/no/n/a answer counts yes = 1, no = 0; "na" leaves the question out;
- a scale answer v on min..max counts (v - min) / (max - min); a scale that
  allows it may be answered "na";
- a text question is never scored;
- a section's score is 100 * sum(weight * value) / sum(weight) over its
  applicable questions (answered, not "na", weight > 0); None when none applies;
- the total is the mean of the applicable sections weighted by each one's
  sum(weight) of applicable questions, which is the same as the weighted mean
  of every applicable question of the form;
- a critical question failed ("no", or the scale's minimum) zeroes its
  section (``critical: "section"``), or its section and the total
  (``critical: "form"``).

Scores are computed exactly (fractions) and rounded to two decimals at the end.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from recarchive.errors import InvalidInputError

__all__ = [
    "AnswerError",
    "FormDefinition",
    "FormError",
    "Question",
    "Score",
    "Section",
    "check_answers",
    "parse_definition",
    "score",
]

MAX_SECTIONS = 50
MAX_QUESTIONS = 200
MAX_WEIGHT = 1000
MAX_TEXT_ANSWER = 4000
#: Scale bounds: min and max within ±SCALE_LIMIT, at most MAX_SCALE_STEPS apart.
SCALE_LIMIT = 1000
MAX_SCALE_STEPS = 100

Ident = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]


class FormError(InvalidInputError):
    """the scorecard form is not valid"""

    field = "sections"


class AnswerError(InvalidInputError):
    """the answers do not fit the form"""

    field = "answers"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Question(_Strict):
    id: Ident
    text: str = Field(min_length=1, max_length=1000)
    kind: Literal["yes_no_na", "scale", "text"]
    weight: float = Field(default=1, ge=0, le=MAX_WEIGHT, allow_inf_nan=False)
    #: A failed answer zeroes the question's section, or its section and the total.
    critical: Literal["section", "form"] | None = None
    #: Must be answered (default: scored questions yes, text questions no).
    required: bool | None = None
    #: Scale questions only: the lowest and highest answer.
    min: int | None = Field(default=None, ge=-SCALE_LIMIT, le=SCALE_LIMIT)
    max: int | None = Field(default=None, ge=-SCALE_LIMIT, le=SCALE_LIMIT)
    #: Scale questions only: "na" is an answer too.
    allow_na: bool = False

    @model_validator(mode="before")
    @classmethod
    def _text_weighs_nothing(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("kind") == "text" and "weight" not in data:
            return {**data, "weight": 0}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Question:
        where = f"question {self.id!r}"
        if self.kind == "scale":
            if self.min is None or self.max is None:
                raise ValueError(f"{where}: a scale needs min and max")
            if self.min >= self.max:
                raise ValueError(f"{where}: the scale's min must be less than its max")
            if self.max - self.min > MAX_SCALE_STEPS:
                raise ValueError(f"{where}: a scale spans at most {MAX_SCALE_STEPS} steps")
        elif self.min is not None or self.max is not None or self.allow_na:
            raise ValueError(f"{where}: min, max and allow_na belong to scale questions")
        if self.kind == "text" and (self.critical or self.weight):
            raise ValueError(f"{where}: a text question is not scored (weight 0, not critical)")
        if self.critical and self.weight <= 0:
            raise ValueError(f"{where}: a critical question needs a weight above 0")
        return self

    @property
    def scored(self) -> bool:
        return self.kind != "text" and self.weight > 0

    @property
    def must_answer(self) -> bool:
        return self.required if self.required is not None else self.kind != "text"


class Section(_Strict):
    id: Ident
    title: str = Field(min_length=1, max_length=200)
    questions: list[Question] = Field(min_length=1, max_length=MAX_QUESTIONS)


class FormDefinition(_Strict):
    """One version of a form: its sections and their questions."""

    description: str = Field(default="", max_length=2000)
    sections: list[Section] = Field(min_length=1, max_length=MAX_SECTIONS)

    @model_validator(mode="after")
    def _whole(self) -> FormDefinition:
        questions = [q for s in self.sections for q in s.questions]
        if len(questions) > MAX_QUESTIONS:
            raise ValueError(f"a form holds at most {MAX_QUESTIONS} questions")
        seen: set[str] = set()
        for question in questions:
            if question.id in seen:
                raise ValueError(f"question id {question.id!r} is used twice")
            seen.add(question.id)
        sections = [s.id for s in self.sections]
        if len(set(sections)) != len(sections):
            raise ValueError("section ids must be unique")
        if not any(q.scored for q in questions):
            raise ValueError("a form needs at least one scored question (weight above 0)")
        return self

    def questions(self) -> dict[str, Question]:
        return {q.id: q for s in self.sections for q in s.questions}


def parse_definition(data: Any) -> FormDefinition:
    """A form version from JSON data; :class:`FormError` naming the first problem."""
    try:
        return FormDefinition.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        raise FormError(f"{where}: {message}" if where else message) from None


def check_answers(form: FormDefinition, answers: Any) -> dict[str, Any]:
    """The answers, checked against the form; :class:`AnswerError` naming the question."""
    if not isinstance(answers, dict):
        raise AnswerError("answers must be an object of question id to answer")
    questions = form.questions()
    for key in answers:
        if key not in questions:
            raise AnswerError(f"question {str(key)[:64]!r} is not in this form")
    checked: dict[str, Any] = {}
    for qid, question in questions.items():
        answer = answers.get(qid)
        if answer is None:
            if question.must_answer:
                raise AnswerError(f"question {qid!r} needs an answer")
            continue
        checked[qid] = _checked(question, answer)
    return checked


def _checked(question: Question, answer: Any) -> Any:
    where = f"question {question.id!r}"
    if question.kind == "yes_no_na":
        if answer not in ("yes", "no", "na"):
            raise AnswerError(f"{where} takes yes, no or na")
        return answer
    if question.kind == "scale":
        if answer == "na" and question.allow_na:
            return answer
        if isinstance(answer, bool) or not isinstance(answer, int):
            raise AnswerError(f"{where} takes a whole number {question.min} to {question.max}")
        assert question.min is not None
        assert question.max is not None
        if not question.min <= answer <= question.max:
            raise AnswerError(f"{where} takes a whole number {question.min} to {question.max}")
        return answer
    if not isinstance(answer, str) or len(answer) > MAX_TEXT_ANSWER:
        raise AnswerError(f"{where} takes text of at most {MAX_TEXT_ANSWER} characters")
    return answer


@dataclasses.dataclass(frozen=True)
class Score:
    #: 0..100, rounded to two decimals; None when no question applied.
    total: float | None
    #: Section id -> 0..100 or None (no question of it applied).
    sections: dict[str, float | None]
    #: Ids of the critical questions failed.
    critical_failed: tuple[str, ...]


def _value(question: Question, answer: Any) -> Fraction | None:
    """The answer's value 0..1, None when it does not count."""
    if not question.scored or answer is None or answer == "na":
        return None
    if question.kind == "yes_no_na":
        return Fraction(1 if answer == "yes" else 0)
    assert question.min is not None
    assert question.max is not None
    return Fraction(answer - question.min, question.max - question.min)


def _round(value: Fraction) -> float:
    return round(float(value * 100), 2)


def score(form: FormDefinition, answers: dict[str, Any]) -> Score:
    """The score of checked ``answers`` (:func:`check_answers`) on ``form``."""
    sections: dict[str, float | None] = {}
    failed: list[str] = []
    total_weight = Fraction(0)
    total_sum = Fraction(0)
    form_failed = False
    for section in form.sections:
        weight, points, zeroed = Fraction(0), Fraction(0), False
        for question in section.questions:
            value = _value(question, answers.get(question.id))
            if value is None:
                continue
            w = Fraction(question.weight)
            weight += w
            points += w * value
            if question.critical and value == 0:
                failed.append(question.id)
                zeroed = True
                form_failed = form_failed or question.critical == "form"
        if weight == 0:
            sections[section.id] = None
            continue
        section_score = Fraction(0) if zeroed else points / weight
        sections[section.id] = _round(section_score)
        total_weight += weight
        total_sum += weight * section_score
    if total_weight == 0:
        return Score(None, sections, tuple(failed))
    total = Fraction(0) if form_failed else total_sum / total_weight
    return Score(_round(total), sections, tuple(failed))
