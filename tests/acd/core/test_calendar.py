from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from acd.config import CalendarConfig, Section
from acd.core.calendar import Calendar, easter, french_holidays

PARIS = ZoneInfo("Europe/Paris")


def paris(*args: int) -> float:
    return datetime(*args, tzinfo=PARIS).timestamp()


@pytest.mark.parametrize(
    ("year", "sunday"),
    [
        (2000, date(2000, 4, 23)),
        (2019, date(2019, 4, 21)),
        (2024, date(2024, 3, 31)),
        (2025, date(2025, 4, 20)),
        (2026, date(2026, 4, 5)),
        (2038, date(2038, 4, 25)),
    ],
)
def test_easter(year, sunday):
    assert easter(year) == sunday


def test_french_holidays_2026():
    days = french_holidays(2026)
    assert len(days) == 11
    assert days[date(2026, 4, 6)] == "Lundi de Pâques"
    assert days[date(2026, 5, 14)] == "Ascension"
    assert days[date(2026, 5, 25)] == "Lundi de Pentecôte"
    assert date(2026, 7, 14) in days and date(2026, 12, 26) not in days


def town_hall(**extra) -> Calendar:
    data = {
        "hours": {d: "08:00-19:00" for d in ("mon", "tue", "wed", "thu", "fri")}
        | {"sat": "08:00-13:00"},
        "holidays": "FR",
        **extra,
    }
    return Calendar(CalendarConfig.from_section(Section(data, "calendars.main")), PARIS)


@pytest.mark.parametrize(
    ("when", "is_open"),
    [
        ((2026, 11, 30, 7, 59), False),  # Monday before opening
        ((2026, 11, 30, 8, 0), True),
        ((2026, 11, 30, 18, 59), True),
        ((2026, 11, 30, 19, 0), False),
        ((2026, 12, 5, 12, 59), True),  # Saturday morning
        ((2026, 12, 5, 13, 0), False),
        ((2026, 12, 6, 10, 0), False),  # Sunday
        ((2026, 12, 25, 10, 0), False),  # Christmas, a Friday
        ((2026, 5, 14, 10, 0), False),  # Ascension
        ((2026, 3, 30, 8, 30), True),  # the Monday after the switch to summer time
    ],
)
def test_opening_hours(when, is_open):
    assert town_hall().is_open(paris(*when)) is is_open


def test_state_says_until_when_it_holds():
    cal = town_hall()
    assert cal.state(paris(2026, 11, 30, 9, 0)) == (True, paris(2026, 11, 30, 19, 0))
    assert cal.state(paris(2026, 11, 30, 6, 0)) == (False, paris(2026, 11, 30, 8, 0))
    assert cal.state(paris(2026, 11, 30, 20, 0)) == (False, paris(2026, 12, 1, 0, 0))


def test_exceptional_closures_and_openings():
    cal = town_hall(
        closures=["2026-12-24", "2026-08-10/2026-08-12"],
        openings={"2026-12-06": ["09:00-12:00"], "2026-12-25": "10:00-11:00"},
    )
    assert not cal.is_open(paris(2026, 12, 24, 10, 0))
    assert not cal.is_open(paris(2026, 8, 11, 10, 0))
    assert cal.is_open(paris(2026, 8, 13, 10, 0))
    assert cal.is_open(paris(2026, 12, 6, 10, 0))  # an opening on a Sunday
    assert cal.is_open(paris(2026, 12, 25, 10, 30))  # an opening beats a holiday
    assert cal.closed_reason(date(2026, 12, 24)) == "exceptional closure"
