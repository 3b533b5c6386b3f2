"""Key, tag and metadata validation and byte-range arithmetic: no I/O."""

from __future__ import annotations

import posixpath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recarchive.errors import (
    ChecksumMismatch,
    InvalidMetadata,
    InvalidObjectKey,
    InvalidRange,
    InvalidTags,
    SizeMismatch,
)
from recarchive.storage.interfaces import (
    DEFAULT_CONTENT_TYPE,
    MAX_KEY_LENGTH,
    ByteRange,
    check_written,
    validate_content_type,
    validate_expected,
    validate_key,
    validate_metadata,
    validate_tags,
)

KEY_ALPHABET = "abcXYZ019!_.*'()/=+,:@-\\ ~%"


@pytest.mark.parametrize(
    "key",
    [
        "recordings/2026/11/28/0b7e6f0c-5a8e-4c57-9a0e-2b1f6d3c9e11.wav",
        "a",
        "a.b/c..d/...e",  # dots inside a segment are fine
        ".hidden/file",
        "k!_*'()=+,:@-",
        "x" * MAX_KEY_LENGTH,
    ],
)
def test_valid_keys_are_returned_unchanged(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty"),
        ("/abs", "absolute"),
        ("a//b", "segment"),
        ("a/", "segment"),
        ("./a", "segment"),
        ("a/./b", "segment"),
        ("..", "segment"),
        ("a/../../etc/passwd", "segment"),
        ("a\\b", "characters"),
        ("a b", "characters"),
        ("caf\u00e9", "characters"),
        ("a\nb", "characters"),
        ("a%2Fb", "characters"),
        ("x" * (MAX_KEY_LENGTH + 1), "longer"),
    ],
)
def test_unsafe_keys_are_refused_with_the_reason(key: str, reason: str) -> None:
    with pytest.raises(InvalidObjectKey, match=reason):
        validate_key(key)


def test_refusal_message_shortens_long_keys() -> None:
    with pytest.raises(InvalidObjectKey) as raised:
        validate_key("x" * 2000)
    assert len(raised.value.message) < 200


@given(st.text(alphabet=KEY_ALPHABET, max_size=40))
def test_every_accepted_key_stays_inside_a_root(key: str) -> None:
    try:
        validate_key(key)
    except InvalidObjectKey:
        return
    joined = posixpath.join("/root", key)
    assert posixpath.normpath(joined) == joined  # nothing to collapse: no '..', '.', '//'
    assert joined.startswith("/root/")


def test_tags_within_limits_are_accepted() -> None:
    tags = {f"k{n}": "v a+b=c:d/e@f_g.h-i" for n in range(10)}
    assert validate_tags(tags) == tags
    assert validate_tags({"k" * 128: "v" * 256, "empty": ""}) == {"k" * 128: "v" * 256, "empty": ""}


@pytest.mark.parametrize(
    ("tags", "match"),
    [
        ({f"k{n}": "v" for n in range(11)}, "at most 10"),
        ({"": "v"}, "tag name"),
        ({"k" * 129: "v"}, "tag name"),
        ({"bad*": "v"}, "tag name"),
        ({"k": "v" * 257}, "value"),
        ({"k": "semi;colon"}, "value"),
    ],
)
def test_tags_outside_limits_are_refused(tags: dict[str, str], match: str) -> None:
    with pytest.raises(InvalidTags, match=match):
        validate_tags(tags)


def test_metadata_rules() -> None:
    assert validate_metadata({"recording-id": "r-1", "n2": ""}) == {"recording-id": "r-1", "n2": ""}
    for bad in (
        {"Upper": "x"},
        {"under_score": "x"},
        {"-lead": "x"},
        {"sha256": "x"},
        {"k": "\u00e9"},
        {"k": "line\nbreak"},
        {"k": " padded"},
        {"k": "x" * 2048},
    ):
        with pytest.raises(InvalidMetadata):
            validate_metadata(bad)


def test_content_type_rules() -> None:
    assert validate_content_type(None) == DEFAULT_CONTENT_TYPE
    assert validate_content_type("audio/wav; codecs=1") == "audio/wav; codecs=1"
    for bad in ("", " audio/wav", "audio/wav\r\nX-Injected: 1"):
        with pytest.raises(InvalidMetadata):
            validate_content_type(bad)


def test_expected_values_are_checked_before_reading() -> None:
    assert validate_expected("k", 5, "AB" * 32) == "ab" * 32
    assert validate_expected("k", None, None) is None
    with pytest.raises(SizeMismatch, match="negative"):
        validate_expected("k", -1, None)
    with pytest.raises(ChecksumMismatch, match="64 hex"):
        validate_expected("k", None, "g" * 64)


def test_check_written_names_key_expected_and_actual() -> None:
    check_written("k", expected_size=3, expected_sha256="a" * 64, size=3, sha256="a" * 64)
    check_written("k", expected_size=None, expected_sha256=None, size=3, sha256="b" * 64)
    with pytest.raises(SizeMismatch, match=r"'rec/k'.*expected 4 bytes, got 3"):
        check_written("rec/k", expected_size=4, expected_sha256=None, size=3, sha256="")
    with pytest.raises(SizeMismatch, match="expected 2 bytes, the stream has more"):
        check_written("k", expected_size=2, expected_sha256=None, size=3, sha256="")
    with pytest.raises(ChecksumMismatch, match=f"'k'.*expected {'a' * 64}, got {'b' * 64}"):
        check_written("k", expected_size=3, expected_sha256="a" * 64, size=3, sha256="b" * 64)


@pytest.mark.parametrize(
    ("start", "end", "size", "expected"),
    [
        (0, None, 10, (0, 9)),
        (0, 0, 10, (0, 0)),
        (9, None, 10, (9, 9)),
        (3, 5, 10, (3, 5)),
        (3, 500, 10, (3, 9)),  # end past the object is clipped, as in HTTP
        (0, None, 1, (0, 0)),
    ],
)
def test_byte_range_resolves_within_the_object(
    start: int, end: int | None, size: int, expected: tuple[int, int]
) -> None:
    assert ByteRange(start, end).resolve(size) == expected


@pytest.mark.parametrize(("start", "size"), [(10, 10), (11, 10), (0, 0)])
def test_byte_range_starting_at_or_past_the_end_is_invalid(start: int, size: int) -> None:
    with pytest.raises(InvalidRange, match=f"starts at {start}, object has {size} bytes"):
        ByteRange(start).resolve(size)


@pytest.mark.parametrize(("start", "end"), [(-1, None), (5, 4), (-3, -1)])
def test_malformed_byte_ranges_are_refused(start: int, end: int | None) -> None:
    with pytest.raises(InvalidRange):
        ByteRange(start, end)


@given(st.integers(0, 10_000), st.one_of(st.none(), st.integers(0, 10_000)), st.integers(1, 5000))
def test_resolved_range_is_always_inside_the_object(start: int, end: int | None, size: int) -> None:
    if end is not None and end < start:
        return
    try:
        first, last = ByteRange(start, end).resolve(size)
    except InvalidRange:
        assert start >= size
        return
    assert 0 <= first == start <= last <= size - 1
    assert last == (size - 1 if end is None else min(end, size - 1))
