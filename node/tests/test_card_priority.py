"""The priority class a kiosk node derives from a resident ID card's birth date (node/card.py
`priority_class`): the edges by hand, the rule as properties, and the [kiosk] priority_age
setting."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onewindow.node.card import age_on, birth_date, priority_class
from onewindow.node.config import NodeConfigError, from_dict

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id18(born: date, region: str = "310101", seq: str = "123") -> str:
    """An 18-character resident ID number with its GB 11643 check character."""
    first17 = f"{region}{born:%Y%m%d}{seq}"
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


def id15(born: date, region: str = "310101", seq: str = "123") -> str:
    """A first-generation 15-digit number: YYMMDD of 19YY."""
    return f"{region}{born:%y%m%d}{seq}"


def test_known_numbers():
    # GB 11643's own example number (check character X)
    assert birth_date("11010519491231002X") == date(1949, 12, 31)
    assert birth_date("11010519491231002x") == date(1949, 12, 31)  # lower-case x
    assert birth_date(" 110105 19491231 002X ") == date(1949, 12, 31)  # spaces ignored
    assert birth_date("110105491231002") == date(1949, 12, 31)  # the same person, 15 digits
    today = date(2026, 11, 24)
    assert priority_class("11010519491231002X", today) == "priority"
    assert priority_class("110105491231002", today) == "priority"
    assert priority_class(id18(date(1996, 5, 4)), today) is None


def test_birthday_today_counts_tomorrow_does_not():
    today = date(2026, 6, 15)
    sixty_today = id18(date(1966, 6, 15))
    sixty_tomorrow = id18(date(1966, 6, 16))
    assert priority_class(sixty_today, today) == "priority"
    assert priority_class(sixty_tomorrow, today) is None
    assert priority_class(sixty_tomorrow, today + timedelta(days=1)) == "priority"
    # the year boundary: born on 1 January, checked on 31 December and the day after
    new_year = id18(date(1966, 1, 1))
    assert priority_class(new_year, date(2025, 12, 31)) is None
    assert priority_class(new_year, date(2026, 1, 1)) == "priority"


def test_leap_day_birth():
    leap = id18(date(1964, 2, 29))
    assert birth_date(leap) == date(1964, 2, 29)
    # sixty years on from a leap year is a leap year: sixty on 29 February 2024
    assert priority_class(leap, date(2024, 2, 28)) is None
    assert priority_class(leap, date(2024, 2, 29)) == "priority"
    # at 65 (2029 is common) the birthday is 1 March
    assert priority_class(leap, date(2029, 2, 28), age=65) is None
    assert priority_class(leap, date(2029, 3, 1), age=65) == "priority"
    assert age_on(date(1964, 2, 29), date(2025, 2, 28)) == 60
    assert age_on(date(1964, 2, 29), date(2025, 3, 1)) == 61
    # 29 February 1965 does not exist: the number is not read, a normal ticket
    fake = "31010119650229123"
    total = sum(int(d) * w for d, w in zip(fake, WEIGHTS, strict=True))
    assert priority_class(fake + "10X98765432"[total % 11], date(2026, 1, 1)) is None


def test_fifteen_digit_numbers_are_19xx():
    born = date(1950, 7, 1)
    assert birth_date(id15(born)) == born
    assert priority_class(id15(born), date(2026, 1, 1)) == "priority"
    assert priority_class(id15(date(1990, 7, 1)), date(2026, 1, 1)) is None
    assert birth_date("310101990230123") is None  # 30 February


@pytest.mark.parametrize("ident", [
    None, "", "   ", "abc", "04A1B2C3D4E5F6",  # no number; a UID-like string
    "31010119900101123",  # 17 characters
    "3101011990010112345",  # 19
    "31010119901301123X",  # month 13 (and the check would not save it)
    "310101199002301237",  # 30 February
    "310101199001011234",  # a wrong check character
    "31010119900101123Y",  # a check character that is no check character
    "31010A199001011237",  # a letter in the region
    "３１０１０１１９９００１０１１２３７",  # full-width digits are not ASCII digits
    "31010190010112",  # 14 digits
    "3101019001011２3",  # 15 characters, one of them full-width
])
def test_garbage_is_a_normal_ticket(ident):
    assert priority_class(ident, date(2026, 11, 24)) is None


def test_impossible_births_are_normal():
    today = date(2026, 11, 24)
    assert priority_class(id18(today + timedelta(days=1)), today) is None  # not born yet
    assert priority_class(id18(date(1850, 1, 1)), today) is None  # 176 years old
    assert priority_class(id18(date(1880, 1, 1)), today) == "priority"  # 146: still possible


def test_age_zero_disables_and_the_threshold_is_configurable():
    today = date(2026, 11, 24)
    seventy = id18(date(1956, 1, 1))
    assert priority_class(seventy, today, age=0) is None
    assert priority_class(seventy, today, age=70) == "priority"
    assert priority_class(seventy, today, age=71) is None
    assert priority_class(id18(date(1961, 11, 24)), today, age=65) == "priority"


@given(born=st.dates(date(1901, 1, 1), date(2030, 12, 31)),
       today=st.dates(date(1960, 1, 1), date(2040, 12, 31)),
       age=st.integers(1, 120))
def test_rule_matches_the_sixtieth_birthday(born, today, age):
    """'priority' exactly when today is on or after the age-th birthday (1 March for one born
    on 29 February whose year is common), for both number forms."""
    try:
        birthday = born.replace(year=born.year + age)
    except ValueError:  # 29 February in a common year
        birthday = date(born.year + age, 3, 1)
    expected = "priority" if born <= today and today >= birthday else None
    assert priority_class(id18(born), today, age) == expected
    if 1900 <= born.year <= 1999:
        assert priority_class(id15(born), today, age) == expected


@given(st.text(max_size=24))
def test_any_text_gives_a_class_or_none_and_never_raises(text):
    assert priority_class(text, date(2026, 11, 24)) in (None, "priority")


def test_node_config_priority_age():
    base = {"node": {"id": "k", "centre": "c", "role": "kiosk", "secret": "s" * 16},
            "kiosk": {"item": "SOC-001"}}
    assert from_dict(base).priority_age == 60
    assert from_dict({**base, "kiosk": {"item": "SOC-001", "priority_age": 0}}).priority_age == 0
    assert from_dict({**base, "kiosk": {"item": "SOC-001", "priority_age": 65}}).priority_age == 65
    for bad in (-1, 121, "60", 60.5, True):
        with pytest.raises(NodeConfigError, match="priority_age"):
            from_dict({**base, "kiosk": {"item": "SOC-001", "priority_age": bad}})
