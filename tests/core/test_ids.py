"""Job ids: the pattern, ordering by creation time, uniqueness, determinism of derived ids."""

from __future__ import annotations

import pytest

from farro_core.errors import BadInput
from farro_core.ids import ID_PATTERN, check_id, derived_id, new_id


def test_new_id_matches_the_pattern_and_is_26_crockford_chars() -> None:
    for _ in range(200):
        i = new_id()
        assert ID_PATTERN.match(i), i
        assert len(i) == 26
        assert set(i) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def test_ids_sort_by_creation_time_whatever_the_random_part() -> None:
    earlier = new_id(1_000, b"\xff" * 10)
    later = new_id(1_001, b"\x00" * 10)
    assert earlier < later
    stamps = [0, 1, 31, 32, 1023, 1024, 1_700_000_000_000, 2**48 - 1]
    ids = [new_id(ms, b"\x00" * 10) for ms in stamps]
    assert ids == sorted(ids)


def test_random_part_makes_ids_unique() -> None:
    ids = {new_id(42) for _ in range(5000)}
    assert len(ids) == 5000


def test_derived_id_is_deterministic_and_input_sensitive() -> None:
    a = derived_id(5, "inbox/x.json", "0")
    assert a == derived_id(5, "inbox/x.json", "0")
    assert a != derived_id(5, "inbox/x.json", "1")
    assert a != derived_id(5, "inbox/x.jso", "n0")  # parts are separated, not concatenated
    assert ID_PATTERN.match(a)


@pytest.mark.parametrize("good", ["abcdefgh", "0" * 64, "A1b2-C3_d4", new_id(), "x" + "_" * 7])
def test_check_id_accepts_valid(good: str) -> None:
    assert check_id(good) == good


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "short",
        "abcdefg",  # 7 chars
        "a" * 65,
        "../x",
        "a/b/cdefgh",
        "-abcdefgh",
        "_abcdefgh",
        ".abcdefgh",
        "abcdefgh\n",
        "abcdefgh ",
        "abcd efgh",
        "abcdéfghi",
        "abcdefgh\0",
        "..abcdefgh",
    ],
)
def test_check_id_refuses_invalid(bad: str) -> None:
    with pytest.raises(BadInput, match="invalid job id"):
        check_id(bad)


def test_check_id_refuses_non_strings() -> None:
    with pytest.raises(BadInput):
        check_id(12345678)  # type: ignore[arg-type]
